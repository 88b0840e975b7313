"""The identity-provider side of AssumeRoleWithWebIdentity under review: what keyless fetches,
from where, and for how long."""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import rsa
from botocore.exceptions import ClientError

from iam_support import admin_config, admin_creds, iam_client
from keyless_e2e import (
    ACCOUNT, AUD, Issuer, _stop, assert_error, b64url_encode, default_config, gha_claims, policy,
    role_toml, start_issuer, start_keyless,
)

TAGS_CLAIM = "https://aws.amazon.com/tags"


def _int_b64(n: int) -> str:
    return b64url_encode(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Key:
    """An RS256 signing key (pure-Python `rsa`, as awscli ships it)."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.pub, self.priv = rsa.newkeys(2048)

    def jwk(self, private: bool = False) -> dict[str, Any]:
        k = {"kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig",
             "n": _int_b64(self.pub.n), "e": _int_b64(self.pub.e)}
        if private:
            k |= {"d": _int_b64(self.priv.d), "p": _int_b64(self.priv.p), "q": _int_b64(self.priv.q)}
        return k

    def sign(self, claims: dict[str, Any]) -> str:
        header = b64url_encode(json.dumps({"alg": "RS256", "typ": "JWT", "kid": self.kid}).encode())
        payload = b64url_encode(json.dumps(claims).encode())
        signature = rsa.sign(f"{header}.{payload}".encode(), self.priv, "SHA-256")
        return f"{header}.{payload}.{b64url_encode(signature)}"


class FakeIssuer:
    """An identity provider whose every answer the test chooses: discovery names `jwks_uri`,
    `/jwks` serves `keys`, `/away` redirects to `away`."""

    def __init__(self) -> None:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                issuer.paths.append(self.path)
                if self.path == "/.well-known/openid-configuration":
                    self._json({"issuer": issuer.url, "jwks_uri": issuer.jwks_uri})
                elif self.path == "/jwks":
                    self._json({"keys": issuer.keys})
                elif self.path == "/away" and issuer.away:
                    self.send_response(302)
                    self.send_header("Location", issuer.away)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self.send_error(404)

            def _json(self, doc: Any) -> None:
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.jwks_uri = f"{self.url}/jwks"
        self.keys: list[dict[str, Any]] = []
        self.away: str | None = None
        self.paths: list[str] = []
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, key: Key) -> str:
        now = int(time.time())
        return key.sign({**gha_claims(), "iss": self.url, "iat": now, "exp": now + 300})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_against(fake: FakeIssuer, workdir: Path):
    return start_keyless(workdir, default_config(Issuer(url=fake.url, proc=None), workdir / "data"))  # type: ignore[arg-type]


def test_keys_behind_a_redirect_to_another_host_are_not_trusted(workdir: Path) -> None:
    """`jwks_uri` must be on the issuer's host. A redirect from there to another host (an open
    redirect on the issuer's site) must not bring keys from it: a token signed by the other
    host's key is refused, and nothing is issued."""
    genuine, evil = Key("genuine"), Key("evil")
    idp, elsewhere = FakeIssuer(), FakeIssuer()
    idp.keys, elsewhere.keys = [genuine.jwk()], [evil.jwk()]
    # A redirect on the issuer's own host is followed.
    idp.jwks_uri, idp.away = f"{idp.url}/away", f"{idp.url}/jwks"
    keyless = start_against(idp, workdir)
    try:
        res = keyless.awiwi(idp.token(genuine))
        assert res.status == 200 and res.credentials, res
        # Now the redirect leads elsewhere; an unknown kid makes keyless refetch at once.
        idp.away = f"{elsewhere.url}/jwks"
        res = keyless.awiwi(idp.token(evil), session="evil")
        assert_error(res, "InvalidIdentityToken", 400)
        assert "/jwks" not in elsewhere.paths, elsewhere.paths
    finally:
        _stop(keyless.proc)
        idp.stop()
        elsewhere.stop()


def test_a_jwks_that_publishes_a_private_key_is_refused(workdir: Path) -> None:
    """A provider whose JWKS carries a key's private half (`d`, `p`, `q`) lets anyone who reads
    it sign tokens. Such a set is refused (the keys fetched before keep serving), so a token
    signed with the published key gets nothing."""
    genuine, leaked = Key("genuine"), Key("leaked")
    idp = FakeIssuer()
    idp.keys = [genuine.jwk()]
    keyless = start_against(idp, workdir)
    try:
        res = keyless.awiwi(idp.token(genuine))
        assert res.status == 200 and res.credentials, res
        idp.keys = [genuine.jwk(), leaked.jwk(private=True)]
        res = keyless.awiwi(idp.token(leaked), session="leaked")
        assert_error(res, "InvalidIdentityToken", 400)
        # The keys fetched before still verify.
        res = keyless.awiwi(idp.token(genuine), session="again")
        assert res.status == 200 and res.credentials, res
    finally:
        _stop(keyless.proc)
        idp.stop()


def test_a_trusted_key_whose_private_half_is_published_stops_working_at_once(workdir: Path) -> None:
    """When the provider publishes the private half of the very key keyless holds, anyone who
    read the set can sign with it. The refused set must not leave that key serving from the
    cache (stale keys serve for a day while a provider is broken): the next refetch drops it,
    and a token signed with it gets nothing."""
    genuine = Key("genuine")
    idp = FakeIssuer()
    idp.keys = [genuine.jwk()]
    keyless = start_against(idp, workdir)
    try:
        res = keyless.awiwi(idp.token(genuine))
        assert res.status == 200 and res.credentials, res
        # The provider's set now carries the private half, under another kid.
        leaked = genuine.jwk(private=True) | {"kid": "rotated"}
        idp.keys = [leaked]
        # A token naming a kid keyless has not seen makes it refetch; the set is refused.
        stranger = Key("stranger")
        assert_error(keyless.awiwi(idp.token(stranger), session="probe"), "InvalidIdentityToken", 400)
        # A token anyone could now sign with the published key: refused, nothing issued.
        assert_error(keyless.awiwi(idp.token(genuine), session="forged"), "InvalidIdentityToken", 400)
    finally:
        _stop(keyless.proc)
        idp.stop()


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


def test_a_transitive_tag_from_the_token_cannot_be_replaced_in_another_case(workdir: Path) -> None:
    """Tag keys are case-insensitive in every script (the policy context lowercases them as
    Unicode does), so a chained session must not pass `ÉQUIPE` beside the transitive `équipe`
    the identity provider set: with ASCII-only comparisons it could, and its value stood for
    `aws:PrincipalTag/équipe` in the new session."""
    (workdir / "i").mkdir()
    issuer = start_issuer(workdir / "i")
    h = issuer.host
    trust = policy({
        "Effect": "Allow", "Principal": {"Federated": issuer.provider_arn},
        "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
        "Condition": {"StringEquals": {f"{h}:aud": AUD}},
    })
    chain = policy({"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Resource": "*"})
    from_first = policy({
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/first"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
    })
    config = (default_config(issuer, workdir / "keyless" / "data")
              + role_toml("first", trust, {"chain": chain})
              + role_toml("second", from_first, {"chain": chain}) + "\n")
    keyless = start_keyless(workdir / "keyless", config)
    try:
        tags = {"principal_tags": {"équipe": ["rouge"]}, "transitive_tag_keys": ["équipe"]}
        res = keyless.awiwi(issuer.gha_token(**{TAGS_CLAIM: tags}), role="first", session="first")
        assert res.status == 200 and res.credentials, res
        sts = keyless.boto3_client(res.credentials)
        for key in ["ÉQUIPE", "Équipe", "équipe"]:
            with pytest.raises(ClientError) as e:
                sts.assume_role(RoleArn=keyless.role_arn("second"), RoleSessionName="second",
                                Tags=[{"Key": key, "Value": "bleu"}])
            err = e.value.response
            assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == \
                ("InvalidParameterValue", 400), (key, err)
            assert "Credentials" not in err
        # Without a clashing tag the chain works, and carries the transitive tag on.
        out = sts.assume_role(RoleArn=keyless.role_arn("second"), RoleSessionName="second")
        assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def test_a_subject_with_control_characters_is_refused(workdir: Path) -> None:
    """`sub` comes back as SubjectFromWebIdentityToken, and XML 1.0 cannot carry control
    characters: the answer, credentials inside, would not parse. The token is refused instead."""
    (workdir / "i").mkdir()
    issuer = start_issuer(workdir / "i")
    keyless = start_keyless(workdir / "keyless", default_config(issuer, workdir / "keyless" / "data"))
    try:
        claims = gha_claims()
        claims["sub"] = "repo:octo-org/demo:\u0001x"
        res = keyless.awiwi(issuer.token(**claims), role="gha-any-branch")
        assert_error(res, "InvalidIdentityToken", 400)
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def test_a_provider_created_through_iam_never_reaches_an_inward_address(workdir: Path) -> None:
    """Any account's IAM administrator can create a provider, and the server then fetches its
    discovery document. One named only through the API may reach public addresses only, so it
    cannot make the server connect into its own network: an address literal or a name that
    resolves inward is refused before a connection is made, and its tokens are refused with the
    reason. `[iam] allow_private_provider_addresses = true` lifts that (the config's own
    providers may always name internal issuers)."""
    (workdir / "i").mkdir()
    issuer = start_issuer(workdir / "i")
    for allowed in [False, True]:
        data = workdir / f"keyless-{allowed}"
        config = admin_config(issuer, data / "data")
        if allowed:
            config = config.replace("allow_loopback_http_providers = true",
                                    "allow_loopback_http_providers = true\nallow_private_provider_addresses = true")
        keyless = start_keyless(data, config)
        listener = Listener()
        try:
            iam = iam_client(keyless, admin_creds(keyless, issuer))
            inward = [f"https://127.0.0.1:{listener.port}", f"https://localhost:{listener.port}/oidc"]
            for url in inward:
                iam.create_open_id_connect_provider(Url=url, ClientIDList=[AUD])
            time.sleep(3)
            if allowed:
                assert listener.count >= 1, "the allowed provider was never fetched"
                continue
            assert listener.count == 0, f"{listener.count} connections to an inward address"
            # A token naming the provider is refused with the reason, and nothing is issued.
            before = keyless.issued_total()
            token = issuer.token(iss=inward[0], sub="x", aud=AUD)
            res = keyless.awiwi(token, role="admin", session="inward")
            assert_error(res, "InvalidIdentityToken", 400)
            assert "can reach only public addresses" in res.message, res.message
            assert keyless.issued_total() == before
            assert listener.count == 0
        finally:
            listener.stop()
            _stop(keyless.proc)
    _stop(issuer.proc)
