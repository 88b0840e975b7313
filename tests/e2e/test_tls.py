"""Issue 3: keyless serves HTTPS itself ([tls] in the config). boto3, the AWS CLI and the AWS SDK
for JavaScript get credentials over it with the operator's CA, `aws:SecureTransport` is true
only there, a client that does not trust the certificate gets nothing, and a renewed certificate
is served without a restart, with its expiry exported and an expiring one warned about."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import requests

from keyless_e2e import (ACCOUNT, Issuer, Keyless, _stop, assert_error, assert_no_credentials, config_with_role,
                         keyless_bin, make_pki, start_keyless)


def tls_config(issuer: Issuer, data_dir: Path, cert: Path | None, key: Path | None) -> str:
    """The standard config, a role whose trust policy requires TLS, and [tls] when given."""
    text = config_with_role(issuer, data_dir, "tls-only", {"Bool": {"aws:SecureTransport": "true"}})
    if cert is not None and key is not None:
        text += f'\n[tls]\ncert_file = "{cert}"\nkey_file = "{key}"\n'
    return text


@pytest.fixture
def pki(workdir: Path) -> tuple[Path, Path, Path]:
    return make_pki(workdir / "pki", "one")


@pytest.fixture
def tls_keyless(workdir: Path, issuer: Issuer, pki: tuple[Path, Path, Path]):
    ca, cert, key = pki
    srv = start_keyless(workdir / "keyless", tls_config(issuer, workdir / "keyless" / "data", cert, key),
                        ca_bundle=ca)
    yield srv
    _stop(srv.proc)


def presented_cert(url: str, ca: Path) -> dict:
    """The certificate the server presents, verified against `ca`, as `ssl` decodes it."""
    host, port = url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as s:
            return s.getpeercert()


def presented_ca_subject(url: str, ca: Path) -> str:
    """The issuer CN of the certificate the server presents, verified against `ca`."""
    return dict(x[0] for x in presented_cert(url, ca)["issuer"])["commonName"]


def metric(srv: Keyless, name: str, ca: Path | None = None) -> float:
    """A metric without labels, from `/metrics` (verified against `ca` after a renewal)."""
    text = srv.metrics() if ca is None else requests.get(srv.url + "/metrics", timeout=10, verify=str(ca)).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not in /metrics")


def served_expiry(srv: Keyless, ca: Path) -> int:
    return int(ssl.cert_time_to_seconds(presented_cert(srv.url, ca)["notAfter"]))


def test_boto3_cli_and_js_get_credentials_over_https(tls_keyless: Keyless, issuer: Issuer, workdir: Path) -> None:
    assert tls_keyless.url.startswith("https://127.0.0.1:"), tls_keyless.url
    sts = tls_keyless.boto3_client()
    out = sts.assume_role_with_web_identity(RoleArn=tls_keyless.role_arn("tls-only"), RoleSessionName="boto3-tls",
                                            WebIdentityToken=issuer.gha_token())
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    me = tls_keyless.boto3_client(creds).get_caller_identity()
    assert me["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/tls-only/boto3-tls"

    token_file = workdir / "token"
    token_file.write_text(issuer.gha_token())
    cli = tls_keyless.aws("sts", "assume-role-with-web-identity", "--role-arn", tls_keyless.role_arn("tls-only"),
                          "--role-session-name", "cli-tls", "--web-identity-token", token_file.read_text())
    assert json.loads(cli.stdout)["AssumedRoleUser"]["Arn"].endswith("assumed-role/tls-only/cli-tls")

    js = tls_keyless.node("assume-role-with-web-identity", tls_keyless.role_arn("tls-only"), str(token_file), "js-tls")
    assert js.get("AssumedRoleUser", {}).get("Arn", "").endswith("assumed-role/tls-only/js-tls"), js


def test_a_client_that_does_not_trust_the_certificate_gets_nothing(tls_keyless: Keyless, issuer: Issuer,
                                                                   workdir: Path) -> None:
    import botocore.exceptions
    other_ca, _, _ = make_pki(workdir / "other", "other")
    before = tls_keyless.issued_total()
    untrusting = Keyless(url=tls_keyless.url, proc=tls_keyless.proc, workdir=workdir, data_dir=tls_keyless.data_dir,
                         config=tls_keyless.config, stderr_path=tls_keyless.stderr_path, ca_bundle=other_ca)
    with pytest.raises(botocore.exceptions.SSLError):
        untrusting.boto3_client().assume_role_with_web_identity(
            RoleArn=tls_keyless.role_arn("tls-only"), RoleSessionName="untrusted", WebIdentityToken=issuer.gha_token())
    cli = untrusting.aws("sts", "assume-role-with-web-identity", "--role-arn", tls_keyless.role_arn("tls-only"),
                         "--role-session-name", "untrusted-cli", "--web-identity-token", issuer.gha_token(),
                         check=False)
    assert cli.returncode != 0 and "SSL" in cli.stderr, cli.stderr
    # Plain HTTP to the HTTPS port is no request at all.
    host, port = tls_keyless.url.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: keyless\r\n\r\n")
        s.settimeout(10)
        assert b"200 OK" not in s.recv(4096)
    assert tls_keyless.issued_total() == before
    assert "keyless_tls_handshake_failures_total" in tls_keyless.metrics()


def test_secure_transport_is_true_over_https_only(tls_keyless: Keyless, issuer: Issuer, workdir: Path) -> None:
    ok = tls_keyless.awiwi(issuer.gha_token(), role="tls-only", session="secure")
    assert ok.status == 200 and ok.credentials, ok
    plain = start_keyless(workdir / "plain", tls_config(issuer, workdir / "plain" / "data", None, None))
    try:
        before = plain.issued_total()
        denied = plain.awiwi(issuer.gha_token(), role="tls-only", session="insecure")
        assert_error(denied, "AccessDenied", 403)
        assert_no_credentials(denied)
        assert plain.issued_total() == before
        # The same token on a role without the condition is fine over plain HTTP.
        assert plain.awiwi(issuer.gha_token(), role="gha", session="plain").credentials
    finally:
        _stop(plain.proc)


def test_a_renewed_certificate_is_served_without_a_restart(tls_keyless: Keyless, workdir: Path,
                                                           pki: tuple[Path, Path, Path]) -> None:
    ca, cert, key = pki
    assert presented_ca_subject(tls_keyless.url, ca) == "keyless e2e one CA"
    # The served certificate's notAfter is exported; the test certificates live two days, which
    # is soon enough to be warned about at start-up.
    first_expiry = served_expiry(tls_keyless, ca)
    assert metric(tls_keyless, "keyless_tls_certificate_expiry_timestamp_seconds") == first_expiry
    assert f"the TLS certificate {cert} expires at" in tls_keyless.stderr()
    assert "renew it" in tls_keyless.stderr()
    time.sleep(1.1)  # so that the renewal's notAfter is a later second
    new_ca, new_cert, new_key = make_pki(workdir / "renewed", "two")
    # Written as a renewal tool would: the key first, then the certificate.
    key.write_bytes(new_key.read_bytes())
    cert.write_bytes(new_cert.read_bytes())
    deadline = time.monotonic() + 30
    while True:
        try:
            if presented_ca_subject(tls_keyless.url, new_ca) == "keyless e2e two CA":
                break
        except ssl.SSLError:
            pass
        assert time.monotonic() < deadline, "the renewed certificate is served within 30 s"
        time.sleep(0.5)
    assert "TLS certificate reloaded" in tls_keyless.stderr()
    renewed_expiry = served_expiry(tls_keyless, new_ca)
    assert renewed_expiry > first_expiry
    assert metric(tls_keyless, "keyless_tls_certificate_expiry_timestamp_seconds", new_ca) == renewed_expiry
    # (A check between the two writes above would have seen a key that does not fit: counted too.)
    failures = metric(tls_keyless, "keyless_tls_certificate_reload_failures_total", new_ca)
    # A broken renewal keeps the working certificate, and is counted.
    cert.write_text("not a certificate\n")
    time.sleep(7)
    assert presented_ca_subject(tls_keyless.url, new_ca) == "keyless e2e two CA"
    assert "TLS certificate not reloaded" in tls_keyless.stderr()
    assert metric(tls_keyless, "keyless_tls_certificate_reload_failures_total", new_ca) == failures + 1
    assert metric(tls_keyless, "keyless_tls_certificate_expiry_timestamp_seconds", new_ca) == renewed_expiry


def test_a_key_that_does_not_fit_stops_start_up_naming_the_files(workdir: Path, issuer: Issuer,
                                                                 pki: tuple[Path, Path, Path]) -> None:
    _, cert, _ = pki
    _, _, other_key = make_pki(workdir / "other", "other")
    config = workdir / "bad.toml"
    config.write_text(tls_config(issuer, workdir / "data", cert, other_key))
    cp = subprocess.run([str(keyless_bin()), "serve",
                         "--config", str(config), "--listen", "127.0.0.1:0"],
                        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert cp.returncode != 0
    assert f"{config}:" in cp.stderr and "does not fit the certificate" in cp.stderr, cp.stderr
    assert str(other_key) in cp.stderr


def test_the_revoke_cli_reaches_an_https_endpoint_through_aws_ca_bundle(tls_keyless: Keyless, issuer: Issuer) -> None:
    import botocore.exceptions
    sts = tls_keyless.boto3_client()
    creds = sts.assume_role_with_web_identity(RoleArn=tls_keyless.role_arn("gha"), RoleSessionName="self-revoke",
                                              WebIdentityToken=issuer.gha_token())["Credentials"]
    env = tls_keyless.client_env(AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
                                 AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
                                 AWS_SESSION_TOKEN=creds["SessionToken"])
    revoke = [str(keyless_bin()), "revoke", "session", creds["AccessKeyId"], "--endpoint", tls_keyless.url]
    # Without the CA the endpoint's certificate is not trusted, and nothing is revoked.
    untrusted = subprocess.run(revoke, env={k: v for k, v in env.items() if k != "AWS_CA_BUNDLE"},
                               capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert untrusted.returncode != 0, untrusted.stdout
    assert "certificate" in untrusted.stderr.lower(), untrusted.stderr
    assert tls_keyless.boto3_client(creds).get_caller_identity()["Arn"].endswith("/self-revoke")
    bad = subprocess.run(revoke, env={**env, "AWS_CA_BUNDLE": str(tls_keyless.workdir / "absent.pem")},
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert bad.returncode != 0 and "AWS_CA_BUNDLE" in bad.stderr and "absent.pem" in bad.stderr, bad.stderr
    garbage = tls_keyless.workdir / "garbage.pem"
    garbage.write_text("not a certificate\n")
    bad = subprocess.run(revoke, env={**env, "AWS_CA_BUNDLE": str(garbage)},
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert bad.returncode != 0 and "AWS_CA_BUNDLE" in bad.stderr and "garbage.pem" in bad.stderr, bad.stderr
    assert tls_keyless.boto3_client(creds).get_caller_identity()["Arn"].endswith("/self-revoke"), "nothing revoked"
    done = subprocess.run(revoke, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 5
    while True:
        try:
            tls_keyless.boto3_client(creds).get_caller_identity()
        except botocore.exceptions.ClientError as exc:
            assert exc.response["Error"]["Code"] == "InvalidClientTokenId", exc
            break
        assert time.monotonic() < deadline, "the revoked session stops working"
        time.sleep(0.1)


def test_operator_tools_work_while_a_certificate_renewal_is_broken(tls_keyless: Keyless, issuer: Issuer,
                                                                  pki: tuple[Path, Path, Path]) -> None:
    """A broken renewal keeps the server serving its previous certificate; the tools that read the
    config for its data dir and store (revoke, audit, sessions, keys) have no use for the TLS files
    and must keep working, in an incident above all, and without reading the private key."""
    ca, cert, _ = pki
    res = tls_keyless.awiwi(issuer.gha_token(), session="renewal")
    victim = res.credentials
    assert victim, res
    cert.write_text("not a certificate\n")
    config = str(tls_keyless.config)
    for args in (("audit", "query", "--access-key-id", victim["AccessKeyId"]), ("sessions", "list"),
                 ("keys", "list"), ("audit", "verify")):
        cp = subprocess.run([str(keyless_bin()), *args, "--config", config], capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
        assert cp.returncode == 0, (args, cp.returncode, cp.stderr)
        assert "TLS" not in cp.stderr, (args, cp.stderr)
    cp = subprocess.run([str(keyless_bin()), "revoke", "session", victim["AccessKeyId"], "--config", config],
                        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, cp.stderr
    assert f"session accessKeyId={victim['AccessKeyId']}" in cp.stdout, cp.stdout
    # The server itself still checks the files at start-up.
    bad = subprocess.run([str(keyless_bin()), "serve", "--config", config, "--listen", "127.0.0.1:0"],
                         capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert bad.returncode == 2 and "has no CERTIFICATE block" in bad.stderr, bad.stderr
