"""Issue 3: slow or hostile clients cannot take the service down. Half-sent request heads and
bodies that never arrive are cut off, and connections are capped under the open-files limit, so
a legitimate SDK call still gets through. Behind a trusted proxy, `aws:SourceIp`,
`aws:SecureTransport` and the audit's source address come from its forwarding headers, and from
nobody else's ([http] in the config, crates/keyless-server/src/http_front.rs)."""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
from pathlib import Path

from keyless_e2e import (Issuer, StsResult, _stop, assert_no_credentials, config_with_role, default_config,
                         start_issuer, start_keyless)

FAST = "\n[http]\nheader_read_timeout_seconds = 2\nrequest_timeout_seconds = 2\n"


def _closed_within(s: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing `s`, or None if it was still open after `seconds`."""
    s.settimeout(seconds)
    got = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return got
            got += chunk
    except socket.timeout:
        return None
    except ConnectionResetError:
        return got


def test_half_open_connections_past_the_fd_limit_do_not_stop_an_sdk_call(workdir: Path) -> None:
    iss = start_issuer(workdir)
    # 512 descriptors, which the server cannot raise: it serves at most 256 connections at once
    # and says so. Before the connection limits, 600 half-sent heads ran it out of descriptors
    # and nothing was accepted again while they stayed open.
    srv = start_keyless(workdir / "keyless", default_config(iss, workdir / "keyless" / "data") + FAST,
                        open_files=512)
    attackers: list[socket.socket] = []
    try:
        assert "serving at most 256 connections at once" in srv.stderr(), srv.stderr()[-2000:]
        host, port = srv.url.removeprefix("http://").split(":")
        for _ in range(600):
            s = socket.create_connection((host, int(port)), timeout=10)
            s.sendall(b"POST / HTTP/1.1\r\nHost: keyless\r\nContent-Type: application/x-www-form-urlencoded\r\n")
            attackers.append(s)
        before = srv.issued_total() or 0.0
        started = time.monotonic()
        sts = srv.boto3_client(max_attempts=3)
        out = sts.assume_role_with_web_identity(RoleArn=srv.role_arn("gha"), RoleSessionName="past-the-flood",
                                                WebIdentityToken=iss.gha_token())
        took = time.monotonic() - started
        assert out["Credentials"]["AccessKeyId"].startswith("ASIA"), out
        assert took < 45, f"the SDK call waited {took:.1f} s behind the flood"
        # Every half-sent head was cut off unanswered, none got credentials.
        for s in attackers[:50]:
            assert _closed_within(s, 30) == b"", "a half-sent head is closed without an answer"
        assert (srv.issued_total() or 0.0) == before + 1
        metrics = srv.metrics()
        timeouts = [line for line in metrics.splitlines() if line.startswith("keyless_http_header_timeouts_total ")]
        assert timeouts and float(timeouts[0].split()[1]) >= 256, timeouts
    finally:
        for s in attackers:
            s.close()
        _stop(srv.proc)
        _stop(iss.proc)


def test_a_body_that_stops_halfway_is_request_timeout_and_nothing_is_issued(workdir: Path, issuer: Issuer) -> None:
    srv = start_keyless(workdir / "keyless", default_config(issuer, workdir / "keyless" / "data") + FAST)
    try:
        before = srv.issued_total()
        form = urllib.parse.urlencode({
            "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": srv.role_arn("gha"),
            "RoleSessionName": "slow-body", "WebIdentityToken": issuer.gha_token()}).encode()
        host, port = srv.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: keyless\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                      + f"Content-Length: {len(form)}\r\n\r\n".encode() + form[: len(form) // 2])
            answer = _closed_within(s, 30)
        assert answer is not None, "the connection is closed after the answer"
        head, _, body = answer.decode().partition("\r\n\r\n")
        assert head.startswith("HTTP/1.1 408"), head
        assert "connection: close" in head.lower(), head
        res = StsResult.parse(408, body)
        assert res.code == "RequestTimeout", body
        assert "within 2 seconds" in body, body
        assert_no_credentials(res)
        assert srv.issued_total() == before
        # The whole request, sent promptly, is served.
        ok = srv.awiwi(issuer.gha_token(), session="prompt")
        assert ok.status == 200 and ok.credentials, ok
    finally:
        _stop(srv.proc)


def _source_ip_config(issuer: Issuer, data_dir: Path, trusted: bool) -> str:
    text = config_with_role(issuer, data_dir, "from-runners", {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"},
                                                                "Bool": {"aws:SecureTransport": "true"}})
    if trusted:
        text += '\n[http]\ntrusted_proxies = ["127.0.0.1"]\n'
    return text


def _awiwi_via_proxy(srv, token: str, headers: dict[str, str]) -> StsResult:
    import requests
    r = requests.post(srv.url + "/", timeout=30, headers=headers, data={
        "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": srv.role_arn("from-runners"),
        "RoleSessionName": "via-proxy", "WebIdentityToken": token})
    return StsResult.parse(r.status_code, r.text)


def test_behind_a_trusted_proxy_source_ip_and_transport_come_from_its_headers(workdir: Path, issuer: Issuer) -> None:
    import json
    import subprocess
    from keyless_e2e import assert_error, keyless_bin
    # The client wrote the first address itself; the proxy appended what it saw, and says it
    # took the request over TLS.
    via_proxy = {"X-Forwarded-For": "198.51.100.66, 203.0.113.7", "X-Forwarded-Proto": "https"}
    srv = start_keyless(workdir / "trusting", _source_ip_config(issuer, workdir / "trusting" / "data", True))
    try:
        ok = _awiwi_via_proxy(srv, issuer.gha_token(), via_proxy)
        assert ok.status == 200 and ok.credentials, ok
        # Straight from the proxy's own address, or a forged client address further left: denied.
        for headers in ({}, {"X-Forwarded-For": "203.0.113.7, 198.51.100.66", "X-Forwarded-Proto": "https"},
                        {"X-Forwarded-For": "203.0.113.7"}):
            denied = _awiwi_via_proxy(srv, issuer.gha_token(), headers)
            assert_error(denied, "AccessDenied", 403)
            assert_no_credentials(denied)
        cp = subprocess.run([str(keyless_bin()), "audit", "query", "--config", str(srv.config), "--format", "json",
                             "--event-name", "AssumeRoleWithWebIdentity"],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert cp.returncode == 0, cp.stderr
        sources = [json.loads(line)["sourceIPAddress"] for line in cp.stdout.splitlines() if line.strip()]
        assert sources[:2] == ["203.0.113.7", "127.0.0.1"], sources
    finally:
        _stop(srv.proc)
    # A server that trusts no proxy ignores the headers: nobody can claim an address.
    srv = start_keyless(workdir / "plain", _source_ip_config(issuer, workdir / "plain" / "data", False))
    try:
        before = srv.issued_total()
        denied = _awiwi_via_proxy(srv, issuer.gha_token(), via_proxy)
        assert_error(denied, "AccessDenied", 403)
        assert_no_credentials(denied)
        assert srv.issued_total() == before
    finally:
        _stop(srv.proc)


def _head_only(url: str, head: bytes, seconds: float = 5) -> bytes | None:
    """Sends a request head whose body never follows; what came back before the server closed,
    or None if it was still waiting after `seconds`."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head)
        return _closed_within(s, seconds)


def test_a_content_length_over_the_limit_is_refused_before_the_body_is_invited(workdir: Path, issuer: Issuer) -> None:
    """`Expect: 100-continue` asks whether to send the body. For a body the server will refuse
    anyway the answer is 413 at once: before, keyless said `100 Continue` and waited for 10 GB
    (then, after request_timeout_seconds, 408)."""
    srv = start_keyless(workdir / "keyless", default_config(issuer, workdir / "keyless" / "data"))

    def sts_code(body: str) -> str | None:
        res = StsResult.parse(413, body)
        assert_no_credentials(res)
        return res.code

    try:
        before = srv.issued_total()
        # The query API's form, and the revocation API's signed JSON (which said `100 Continue`
        # until the twentieth session).
        for path, content_type, code_of in [
            (b"/", b"application/x-www-form-urlencoded", sts_code),
            (b"/v1/revocations", b"application/json", lambda body: json.loads(body)["error"]["code"]),
        ]:
            for expect in (b"Expect: 100-continue\r\n", b""):
                answer = _head_only(srv.url, b"POST " + path + b" HTTP/1.1\r\nHost: keyless\r\n"
                                    b"Content-Type: " + content_type + b"\r\n"
                                    b"Content-Length: 10000000000\r\n" + expect + b"\r\n")
                assert answer is not None, f"{path!r}: still waiting for the body"
                head, _, body = answer.decode().partition("\r\n\r\n")
                assert head.startswith("HTTP/1.1 413"), (path, head)
                assert code_of(body) == "RequestEntityTooLarge", (path, body)
        assert srv.issued_total() == before
        # Nothing was revoked either.
        from test_audit import run_cli
        listed = run_cli("revoke", "list", "--data-dir", str(srv.data_dir), "--format", "json", check=True)
        assert listed.stdout.strip() == "", listed.stdout  # one JSON line per live revocation
    finally:
        _stop(srv.proc)


def test_a_request_in_flight_at_sigterm_is_answered_with_its_audit_record(workdir: Path, issuer: Issuer) -> None:
    """SIGTERM stops accepting, but a request whose body is still arriving is served to its end,
    and the credentials it gets are in the audit log that the shutdown signed."""
    import json
    import signal
    import subprocess
    from keyless_e2e import keyless_bin
    srv = start_keyless(workdir / "keyless", default_config(issuer, workdir / "keyless" / "data"))
    try:
        form = urllib.parse.urlencode({
            "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": srv.role_arn("gha"),
            "RoleSessionName": "in-flight", "WebIdentityToken": issuer.gha_token()}).encode()
        host, port = srv.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: keyless\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                      + f"Content-Length: {len(form)}\r\n\r\n".encode() + form[:100])
            time.sleep(0.3)
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            s.sendall(form[100:])
            answer = _closed_within(s, 15)
        assert answer is not None
        head, _, body = answer.decode().partition("\r\n\r\n")
        assert head.startswith("HTTP/1.1 200"), head
        res = StsResult.parse(200, body)
        key = (res.credentials or {}).get("AccessKeyId")
        assert key, body
        assert srv.proc.wait(timeout=15) == 0
    finally:
        _stop(srv.proc)
    cp = subprocess.run([str(keyless_bin()), "audit", "query", "--data-dir", str(srv.data_dir), "--format", "json",
                         "--event-name", "AssumeRoleWithWebIdentity"],
                        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, cp.stderr
    issued = [((json.loads(line).get("responseElements") or {}).get("credentials") or {}).get("accessKeyId")
              for line in cp.stdout.splitlines() if line.strip()]
    assert key in issued, issued
    cp = subprocess.run([str(keyless_bin()), "audit", "verify", "--data-dir", str(srv.data_dir)],
                        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, cp.stdout + cp.stderr



def test_an_iam_change_whose_caller_hangs_up_is_made_and_audited(workdir: Path) -> None:
    """A client that sends a signed IAM call and hangs up while it is being carried out. hyper
    dropped the handler then, wherever it was: between the store write and the audit record,
    the change stayed with no record. The handler now runs to its end once it has the request:
    every change made is audited."""
    import json
    import subprocess
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    from iam_support import admin_config, admin_creds, gha_trust, iam_client
    from keyless_e2e import REGION, keyless_bin
    (workdir / "issuer").mkdir()
    iss = start_issuer(workdir / "issuer")
    srv = start_keyless(workdir / "keyless", admin_config(iss, workdir / "keyless" / "data"))
    # The window between the store write and the audit record is about a millisecond wide.
    delays = [i * 0.0005 for i in range(30)]
    try:
        creds = admin_creds(srv, iss)
        host, port = srv.url.removeprefix("http://").split(":")
        for i, delay in enumerate(delays):
            body = urllib.parse.urlencode({"Version": "2010-05-08", "Action": "CreateRole", "RoleName": f"hung-up-{i}",
                                           "AssumeRolePolicyDocument": gha_trust(iss, "octo-org/app")})
            req = botocore.awsrequest.AWSRequest(method="POST", url=srv.url + "/", data=body, headers={
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
            botocore.auth.SigV4Auth(botocore.credentials.Credentials(
                creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]), "iam", REGION).add_auth(req)
            head = f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\n" \
                + "".join(f"{k}: {v}\r\n" for k, v in req.headers.items()) + f"Content-Length: {len(body)}\r\n\r\n"
            with socket.create_connection((host, int(port)), timeout=10) as s:
                s.sendall(head.encode() + body.encode())
                time.sleep(delay)
        time.sleep(2)
        iam = iam_client(srv, creds)
        made = set()
        for i in range(len(delays)):
            try:
                iam.get_role(RoleName=f"hung-up-{i}")
                made.add(f"hung-up-{i}")
            except iam.exceptions.NoSuchEntityException:
                pass
    finally:
        _stop(srv.proc)
        _stop(iss.proc)
    cp = subprocess.run([str(keyless_bin()), "audit", "query", "--data-dir", str(srv.data_dir), "--format", "json",
                         "--event-name", "CreateRole"],
                        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, cp.stderr
    audited = {(json.loads(line).get("requestParameters") or {}).get("roleName") for line in cp.stdout.splitlines()
               if line.strip()}
    assert made <= audited, f"made but not audited: {sorted(made - audited)}"
    # A request whose client stayed 10 ms was read whole before it left: it was carried out.
    assert {f"hung-up-{i}" for i, d in enumerate(delays) if d >= 0.01} <= made, sorted(made)
