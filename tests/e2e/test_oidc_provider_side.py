"""The identity-provider side of AssumeRoleWithWebIdentity under review: what keyless fetches,
from where, and for how long."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from iam_support import admin_config, admin_creds, iam_client
from keyless_e2e import AUD, _stop, start_issuer, start_keyless


class Listener:
    """A TCP port on 127.0.0.1 that counts connections and closes each at once."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.count += 1
            conn.close()

    def stop(self) -> None:
        self.stopped = True
        self.thread.join()
        self.sock.close()


def test_a_deleted_provider_is_no_longer_fetched(workdir: Path) -> None:
    """A provider created through IAM is fetched in the background (every 15 s while it fails).
    Once deleted it must stop being fetched: otherwise creating and deleting providers in a loop
    grows the key cache without bound and has the server poll every URL ever named, for ever."""
    (workdir / "i").mkdir()
    issuer = start_issuer(workdir / "i")
    keyless = start_keyless(workdir / "keyless", admin_config(issuer, workdir / "keyless" / "data"))
    listener = Listener()
    try:
        iam = iam_client(keyless, admin_creds(keyless, issuer))
        arn = iam.create_open_id_connect_provider(
            Url=f"http://127.0.0.1:{listener.port}", ClientIDList=[AUD])["OpenIDConnectProviderArn"]
        deadline = time.monotonic() + 10
        while listener.count == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert listener.count >= 1, "the new provider was never fetched"
        iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
        seen = listener.count
        # The failed fetch is retried after 15 s; wait past that.
        time.sleep(18)
        assert listener.count == seen, f"the deleted provider was fetched {listener.count - seen} more times"
    finally:
        listener.stop()
        _stop(keyless.proc)
        _stop(issuer.proc)
