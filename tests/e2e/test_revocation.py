"""Session revocation end to end: `keyless revoke` on the server's store and through the signed
API, every kind of target, propagation within a second, and every bad request refused with its
exact error and nothing revoked."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from keyless_e2e import (ACCOUNT, AUD, REGION, REPO, Issuer, Keyless, _stop, default_config, keyless_bin,
                         policy, role_toml, start_issuer, start_keyless)

GATEWAY_TOKEN = secrets.token_hex(24)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Issuer, Keyless]]:
    work = tmp_path_factory.mktemp("revocation")
    issuer = start_issuer(work)
    keyless = start_keyless(work / "keyless", stack_config(issuer, work / "keyless" / "data"))
    try:
        yield issuer, keyless
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def stack_config(issuer: Issuer, data_dir: Path) -> str:
    """The revocation suite's roles: revoker, worker, chainers, Spelled, limited."""
    h = issuer.host
    trust = policy({
        "Effect": "Allow",
        "Principal": {"Federated": issuer.provider_arn},
        "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession", "sts:SetSourceIdentity"],
        "Condition": {"StringEquals": {f"{h}:aud": AUD}, "StringLike": {f"{h}:sub": "repo:octo-org/*"}},
    })
    revoker = policy({"Sid": "Revoke", "Effect": "Allow",
                      "Action": ["keyless:RevokeSessions", "keyless:ListRevocations"], "Resource": "*"})
    # May revoke anything but the sessions of role Spelled.
    limited = policy({"Effect": "Allow", "Action": ["keyless:RevokeSessions", "keyless:ListRevocations"],
                      "Resource": "*"},
                     {"Effect": "Deny", "Action": "keyless:RevokeSessions",
                      "Resource": f"arn:aws:iam::{ACCOUNT}:role/Spelled"})
    reader = policy({"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    chain = policy({"Sid": "Chain", "Effect": "Allow", "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
                    "Resource": "*"})
    from_chainer = policy({"Effect": "Allow",
                           "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:role/chainer",
                                                 f"arn:aws:iam::{ACCOUNT}:role/relay"]},
                           "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"]})
    roles = [
        ("revoker", trust, {"revoke": revoker}),
        ("worker", trust, {"read": reader}),
        ("other", trust, {"read": reader}),
        ("chainer", trust, {"chain": chain}),
        ("chained", from_chainer, {"read": reader}),
        ("relay", from_chainer, {"chain": chain}),
        ("Spelled", trust, {"read": reader}),
        ("limited", trust, {"revoke": limited}),
    ]
    return default_config(issuer, data_dir) + "\n".join([
        *(role_toml(name, t, pols) for name, t, pols in roles),
        "", "[[authorize_clients]]", 'name = "gw"',
        f'token_sha256 = "{hashlib.sha256(GATEWAY_TOKEN.encode()).hexdigest()}"', "",
    ])


def session(stack: tuple[Issuer, Keyless], role: str = "worker", sub_repo: str = REPO,
            ref: str = "refs/heads/main", **claims: Any) -> dict[str, str]:
    issuer, keyless = stack
    tok = issuer.gha_token(repo=sub_repo, ref=ref, **claims) if claims else issuer.gha_token(repo=sub_repo, ref=ref)
    res = keyless.awiwi(tok, role=role, session=f"s{secrets.token_hex(3)}")
    assert res.credentials, res
    return res.credentials


def caller_ok(keyless: Keyless, creds: dict[str, str]) -> bool:
    try:
        keyless.boto3_client(creds).get_caller_identity()
        return True
    except ClientError as e:
        err = e.response["Error"]
        assert (err["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]) == ("InvalidClientTokenId", 403), err
        return False


def wait_revoked(keyless: Keyless, creds: dict[str, str], within: float = 1.0) -> float:
    """Seconds until the session is refused; fails if it still works after `within`."""
    start = time.monotonic()
    while time.monotonic() - start < within + 0.5:
        if not caller_ok(keyless, creds):
            return time.monotonic() - start
        time.sleep(0.05)
    pytest.fail("session still accepted after revocation")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(keyless_bin()), "revoke", *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env=env)


def store_args(keyless: Keyless) -> list[str]:
    return ["--config", str(keyless.config)]


def api_env(keyless: Keyless, creds: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=creds["AccessKeyId"], AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
               AWS_SESSION_TOKEN=creds["SessionToken"], AWS_REGION=REGION,
               AWS_SHARED_CREDENTIALS_FILE=str(keyless.workdir / "none"), AWS_CONFIG_FILE=str(keyless.workdir / "none"))
    return env


def live_revocations(keyless: Keyless) -> list[dict[str, Any]]:
    cp = cli("list", *store_args(keyless), "--format", "json")
    assert cp.returncode == 0, cp.stderr
    return [json.loads(line) for line in cp.stdout.splitlines() if line.strip()]


def signed_call(keyless: Keyless, creds: dict[str, str], body: bytes, method: str = "POST",
                service: str = "keyless") -> requests.Response:
    """The revocation API called with a request botocore's own SigV4 signer signed."""
    req = AWSRequest(method=method, url=keyless.url + "/v1/revocations", data=body,
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]),
              service, REGION).add_auth(req)
    prepared = req.prepare()
    return requests.request(method, prepared.url, headers=dict(prepared.headers), data=body, timeout=10)


def next_second() -> None:
    """Token times have one-second resolution; start the next session in a later second."""
    time.sleep(1.05 - (time.time() % 1.0))


# --------------------------------------------------------------------------------------------


def test_revoke_one_session_from_the_store_within_a_second(stack) -> None:
    _, keyless = stack
    victim, bystander = session(stack), session(stack)
    assert caller_ok(keyless, victim) and caller_ok(keyless, bystander)
    cp = cli("session", victim["AccessKeyId"], *store_args(keyless), "--reason", "leaked in a log", "--format", "json")
    assert cp.returncode == 0, cp.stderr
    out = json.loads(cp.stdout)
    assert out["target"] == {"type": "session", "accessKeyId": victim["AccessKeyId"]}
    assert out["createdBy"] == "operator" and out["reason"] == "leaked in a log" and out["account"] is None
    took = wait_revoked(keyless, victim)
    assert took <= 1.0, f"revocation took {took:.2f}s to reach the server"
    assert caller_ok(keyless, bystander), "another session was hit"
    # Chaining from a revoked session is refused too.
    with pytest.raises(ClientError) as ei:
        keyless.boto3_client(victim).assume_role(RoleArn=keyless.role_arn("deploy"), RoleSessionName="xx")
    assert ei.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_revoke_role_sessions_issued_before_now_new_ones_still_work(stack) -> None:
    _, keyless = stack
    old = [session(stack, role="other") for _ in range(3)]
    worker = session(stack)
    cp = cli("role", keyless.role_arn("other"), "--issued-before", "now", *store_args(keyless))
    assert cp.returncode == 0, cp.stderr
    assert "role" in cp.stdout and keyless.role_arn("other") in cp.stdout
    for c in old:
        wait_revoked(keyless, c)
    assert caller_ok(keyless, worker), "a session of another role was hit"
    next_second()
    fresh = session(stack, role="other")
    assert caller_ok(keyless, fresh), "a session issued after the instant must work"


def test_revoke_role_with_an_instant_in_the_past_spares_later_sessions(stack) -> None:
    _, keyless = stack
    before = session(stack, role="other")
    next_second()
    cut = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    next_second()
    after = session(stack, role="other")
    cp = cli("role", keyless.role_arn("other"), "--issued-before", cut.isoformat().replace("+00:00", "Z"),
             *store_args(keyless))
    assert cp.returncode == 0, cp.stderr
    wait_revoked(keyless, before)
    assert caller_ok(keyless, after)


def test_revoke_subject_ends_its_sessions_and_its_old_tokens(stack) -> None:
    issuer, keyless = stack
    leaked_repo = "octo-org/leaky"
    token = issuer.gha_token(repo=leaked_repo)
    res = keyless.awiwi(token, role="worker", session="leaky")
    victim = res.credentials
    assert victim, res
    other = session(stack)
    sub = f"repo:{leaked_repo}:ref:refs/heads/main"
    cp = cli("subject", sub, "--provider", issuer.url, *store_args(keyless))
    assert cp.returncode == 0, cp.stderr
    wait_revoked(keyless, victim)
    assert caller_ok(keyless, other)
    # The leaked OIDC token cannot mint a new session any more.
    again = keyless.awiwi(token, role="worker", session="leaky2")
    assert (again.code, again.status) == ("IDPRejectedClaim", 403), again
    assert again.credentials is None
    # A token the platform issues later for the same subject works.
    next_second()
    fresh = keyless.awiwi(issuer.gha_token(repo=leaked_repo), role="worker", session="leaky3")
    assert fresh.credentials, fresh


def test_revoke_source_identity_reaches_chained_sessions(stack) -> None:
    issuer, keyless = stack
    tok = issuer.gha_token(**{"https://aws.amazon.com/source_identity": "mallory"})
    res = keyless.awiwi(tok, role="chainer", session="si")
    base = res.credentials
    assert base, res
    chained = keyless.boto3_client(base).assume_role(RoleArn=keyless.role_arn("chained"), RoleSessionName="chained")
    c = {k: chained["Credentials"][k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
    assert chained["SourceIdentity"] == "mallory"
    bystander = session(stack)
    cp = cli("source-identity", "mallory", *store_args(keyless))
    assert cp.returncode == 0, cp.stderr
    wait_revoked(keyless, base)
    wait_revoked(keyless, c)
    assert caller_ok(keyless, bystander)


def chain_of_three(stack) -> list[dict[str, str]]:
    """A web-identity session, a session chained from it, and one chained from that."""
    _, keyless = stack
    out = [session(stack, role="chainer")]
    for role in ("relay", "chained"):
        r = keyless.boto3_client(out[-1]).assume_role(RoleArn=keyless.role_arn(role), RoleSessionName=role)
        out.append({k: r["Credentials"][k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")})
    assert all(caller_ok(keyless, c) for c in out)
    return out


def test_revoking_a_session_ends_the_sessions_chained_from_it(stack) -> None:
    """A leaked session's holder may already have chained to other roles; revoking the leaked
    key ends those sessions too, however far down the chain, and nothing above or beside it."""
    _, keyless = stack
    base, relay, leaf = chain_of_three(stack)
    other_base, other_relay, other_leaf = chain_of_three(stack)
    cp = cli("session", base["AccessKeyId"], *store_args(keyless), "--reason", "leaked")
    assert cp.returncode == 0, cp.stderr
    for c in (base, relay, leaf):
        took = wait_revoked(keyless, c)
        assert took <= 1.0, f"revocation took {took:.2f}s"
    assert all(caller_ok(keyless, c) for c in (other_base, other_relay, other_leaf))
    # Revoking the middle of a chain ends what hangs below it, not what is above it.
    cp = cli("session", other_relay["AccessKeyId"], *store_args(keyless))
    assert cp.returncode == 0, cp.stderr
    wait_revoked(keyless, other_relay)
    wait_revoked(keyless, other_leaf)
    assert caller_ok(keyless, other_base)
    # The inventory rebuilt from the audit log says the same.
    time.sleep(0.3)
    listed = sessions_list(keyless, "--format", "json")
    assert listed.returncode == 0, listed.stderr
    status = {s["accessKeyId"]: s["status"] for s in map(json.loads, listed.stdout.splitlines())}
    got = [status[c["AccessKeyId"]] for c in (base, relay, leaf, other_base, other_relay, other_leaf)]
    assert got == ["revoked", "revoked", "revoked", "active", "revoked", "revoked"], status


def test_a_chain_is_at_most_32_role_assumptions_long(stack) -> None:
    """Each chained session carries the key ids of the sessions above it, so that revoking one
    reaches down; the chain is bounded so that the token stays within its 4096 bytes."""
    _, keyless = stack
    creds = session(stack, role="chainer")
    for hop in range(32):
        r = keyless.boto3_client(creds).assume_role(RoleArn=keyless.role_arn("relay"), RoleSessionName=f"hop{hop}")
        creds = {k: r["Credentials"][k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
    assert len(creds["SessionToken"]) < 4096 and caller_ok(keyless, creds)
    with pytest.raises(ClientError) as ei:
        keyless.boto3_client(creds).assume_role(RoleArn=keyless.role_arn("relay"), RoleSessionName="hop32")
    err = ei.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == ("ValidationError", 400), err
    assert "chain of 32" in err["Error"]["Message"] and "Credentials" not in err


def test_revoke_key_version_after_rotation(tmp_path: Path) -> None:
    issuer = start_issuer(tmp_path)
    keyless = start_keyless(tmp_path / "keyless", default_config(issuer, tmp_path / "keyless" / "data"))
    try:
        old = keyless.awiwi(issuer.gha_token(), role="gha").credentials
        assert old
        # The current version cannot be revoked: new sessions would be born dead.
        cp = cli("key-version", "1", "--config", str(keyless.config))
        assert cp.returncode == 1 and "ValidationError" in cp.stderr and "rotate" in cp.stderr, cp.stderr
        assert live_revocations(keyless) == []
        assert keyless.rotate_keyring().returncode == 0
        time.sleep(1.2)  # the server reloads the ring within a second
        cp = cli("key-version", "1", "--config", str(keyless.config))
        assert cp.returncode == 0, cp.stderr
        wait_revoked(keyless, old)
        new = keyless.awiwi(issuer.gha_token(), role="gha").credentials
        assert new and caller_ok(keyless, new), "a session sealed with the new version must work"
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def test_revoked_session_is_refused_by_the_authorize_api(stack) -> None:
    _, keyless = stack
    creds = session(stack)

    def ask() -> dict[str, Any]:
        req = AWSRequest(method="GET", url="https://gw.example/artifacts/a.txt",
                         headers={"x-amz-content-sha256": hashlib.sha256(b"").hexdigest()})
        SigV4Auth(Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]),
                  "s3", REGION).add_auth(req)
        p = req.prepare()
        headers = [[k, v] for k, v in p.headers.items()] + [["host", "gw.example"]]
        r = requests.post(keyless.url + "/v1/authorize", timeout=10,
                          headers={"Authorization": f"Bearer {GATEWAY_TOKEN}"},
                          json={"method": "GET", "path": "/artifacts/a.txt", "headers": headers,
                                "action": "s3:GetObject", "resource": "arn:aws:s3:::artifacts/a.txt",
                                "region": REGION})
        assert r.status_code == 200, r.text
        return r.json()

    first = ask()
    assert first["allowed"] is True, first
    assert cli("session", creds["AccessKeyId"], *store_args(keyless)).returncode == 0
    deadline = time.monotonic() + 1.5
    body = ask()
    while body.get("authenticated") and time.monotonic() < deadline:
        time.sleep(0.05)
        body = ask()
    assert not body["authenticated"] and not body["allowed"], body
    assert body["error"]["code"] == "InvalidToken", body


def test_api_revocation_with_permission_takes_effect_at_once(stack) -> None:
    _, keyless = stack
    admin = session(stack, role="revoker")
    victim, bystander = session(stack), session(stack)
    cp = cli("session", victim["AccessKeyId"], "--endpoint", keyless.url, "--reason", "incident 42",
             "--format", "json", env=api_env(keyless, admin))
    assert cp.returncode == 0, cp.stderr
    out = json.loads(cp.stdout)
    assert out["account"] == ACCOUNT
    assert out["createdBy"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/revoker/")
    # Same process: refused on the very next request, no polling delay.
    assert not caller_ok(keyless, victim)
    assert caller_ok(keyless, bystander)
    listed = cli("list", "--endpoint", keyless.url, "--format", "json", env=api_env(keyless, admin))
    assert listed.returncode == 0, listed.stderr
    ids = [json.loads(line)["id"] for line in listed.stdout.splitlines()]
    assert out["id"] in ids


def test_api_revocation_without_permission_is_denied_and_changes_nothing(stack) -> None:
    _, keyless = stack
    worker, victim = session(stack), session(stack)
    before = live_revocations(keyless)
    cp = cli("session", victim["AccessKeyId"], "--endpoint", keyless.url, env=api_env(keyless, worker))
    assert cp.returncode == 1, cp.stderr
    assert "AccessDenied (HTTP 403)" in cp.stderr and "keyless:RevokeSessions" in cp.stderr, cp.stderr
    cp = cli("role", keyless.role_arn("other"), "--endpoint", keyless.url, env=api_env(keyless, worker))
    assert cp.returncode == 1 and "AccessDenied" in cp.stderr, cp.stderr
    cp = cli("list", "--endpoint", keyless.url, env=api_env(keyless, worker))
    assert cp.returncode == 1 and "AccessDenied" in cp.stderr, cp.stderr
    assert live_revocations(keyless) == before
    assert caller_ok(keyless, victim)


def test_a_session_may_always_revoke_itself(stack) -> None:
    _, keyless = stack
    me = session(stack)  # the worker role has no keyless:* permission
    r = signed_call(keyless, me, json.dumps({"type": "session", "value": me["AccessKeyId"],
                                             "reason": "job finished"}).encode())
    assert r.status_code == 200, r.text
    assert r.json()["revocation"]["target"]["accessKeyId"] == me["AccessKeyId"]
    assert not caller_ok(keyless, me)
    # Revoked: the session cannot even repeat the call.
    r = signed_call(keyless, me, json.dumps({"type": "session", "value": me["AccessKeyId"]}).encode())
    assert (r.status_code, r.json()["error"]["code"]) == (403, "InvalidClientTokenId"), r.text


def test_api_revocations_stay_in_the_callers_account(stack) -> None:
    _, keyless = stack
    admin = session(stack, role="revoker")
    before = live_revocations(keyless)
    r = signed_call(keyless, admin, json.dumps({"type": "role", "value": "arn:aws:iam::210987654321:role/x"}).encode())
    assert (r.status_code, r.json()["error"]["code"]) == (403, "AccessDenied"), r.text
    assert live_revocations(keyless) == before


@pytest.mark.parametrize("body,code,status", [
    (b"not json", "ValidationError", 400),
    (b"[]", "ValidationError", 400),
    (json.dumps({"type": "session"}).encode(), "ValidationError", 400),
    (json.dumps({"type": "session", "value": "AKIAIOSFODNN7EXAMPLE"}).encode(), "ValidationError", 400),
    (json.dumps({"type": "session", "value": 42}).encode(), "ValidationError", 400),
    (json.dumps({"type": "everything", "value": "x"}).encode(), "ValidationError", 400),
    (json.dumps({"type": "role", "value": "arn:aws:iam::123456789012:user/bob"}).encode(), "ValidationError", 400),
    (json.dumps({"type": "role", "value": f"arn:aws:iam::{ACCOUNT}:role/other",
                 "issuedBefore": "2999-01-01T00:00:00Z"}).encode(), "ValidationError", 400),
    (json.dumps({"type": "role", "value": f"arn:aws:iam::{ACCOUNT}:role/other",
                 "issuedBefore": "last tuesday"}).encode(), "ValidationError", 400),
    (json.dumps({"type": "subject", "value": "repo:o/r"}).encode(), "ValidationError", 400),
    (json.dumps({"type": "subject", "value": "x" * 5000, "issuer": "https://i.example"}).encode(),
     "ValidationError", 400),
    (json.dumps({"type": "source-identity", "value": "a b"}).encode(), "ValidationError", 400),
    (json.dumps({"type": "issuer", "value": "file:///etc/passwd"}).encode(), "ValidationError", 400),
    (json.dumps({"type": "key-version", "value": "0"}).encode(), "ValidationError", 400),
    (json.dumps({"type": "source-identity", "value": "alice", "extra": 1}).encode(), "ValidationError", 400),
    (json.dumps({"type": "source-identity", "value": "alice", "reason": "r" * 5000}).encode(),
     "ValidationError", 400),
])
def test_bad_revocation_requests_are_refused_and_change_nothing(stack, body: bytes, code: str, status: int) -> None:
    _, keyless = stack
    admin = session(stack, role="revoker")
    before = live_revocations(keyless)
    r = signed_call(keyless, admin, body)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    assert live_revocations(keyless) == before


def test_oversized_body_is_refused(stack) -> None:
    _, keyless = stack
    admin = session(stack, role="revoker")
    r = signed_call(keyless, admin, b'{"type":"session","value":"' + b"A" * 40000 + b'"}')
    assert r.status_code == 413, r.text


def test_unsigned_wrong_service_and_tampered_calls_are_refused(stack) -> None:
    _, keyless = stack
    admin = session(stack, role="revoker")
    before = live_revocations(keyless)
    body = json.dumps({"type": "source-identity", "value": "alice"}).encode()
    r = requests.post(keyless.url + "/v1/revocations", data=body, timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "MissingAuthenticationToken"), r.text
    r = signed_call(keyless, admin, body, service="sts")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "SignatureDoesNotMatch"), r.text
    req = AWSRequest(method="POST", url=keyless.url + "/v1/revocations", data=body,
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(admin["AccessKeyId"], admin["SecretAccessKey"], admin["SessionToken"]),
              "keyless", REGION).add_auth(req)
    p = req.prepare()
    tampered = body.replace(b"alice", b"alicf")
    r = requests.post(p.url, headers=dict(p.headers), data=tampered, timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "SignatureDoesNotMatch"), r.text
    assert live_revocations(keyless) == before


@pytest.mark.parametrize("args,needle", [
    (["session", "not-a-key"], "ValidationError"),
    (["role", "arn:aws:iam::123456789012:role/x", "--issued-before", "2999-01-01T00:00:00Z"], "future"),
    (["subject", "repo:o/r", "--provider", "ftp://x"], "ValidationError"),
    (["session", "ASIAAAAAAAAAAAAAAAAA", "--account", "12"], "--account"),
])
def test_cli_refuses_bad_input_and_changes_nothing(stack, args: list[str], needle: str) -> None:
    _, keyless = stack
    before = live_revocations(keyless)
    cp = cli(*args, *store_args(keyless))
    assert cp.returncode == 1, (cp.returncode, cp.stdout, cp.stderr)
    assert needle in cp.stderr, cp.stderr
    assert live_revocations(keyless) == before


def test_cli_usage_and_io_errors_exit_2(tmp_path: Path) -> None:
    cp = cli("session", "ASIAAAAAAAAAAAAAAAAA")
    assert cp.returncode == 2 and "--data-dir" in cp.stderr, cp.stderr
    cp = cli("session", "ASIAAAAAAAAAAAAAAAAA", "--data-dir", str(tmp_path))
    assert cp.returncode == 2 and "key ring" in cp.stderr.lower(), cp.stderr
    cp = cli("session", "ASIAAAAAAAAAAAAAAAAA", "--endpoint", "http://127.0.0.1:1",
             env={"PATH": os.environ.get("PATH", ""), "AWS_ACCESS_KEY_ID": "ASIAAAAAAAAAAAAAAAAA",
                  "AWS_SECRET_ACCESS_KEY": "x" * 40, "AWS_SESSION_TOKEN": "t"})
    assert cp.returncode == 2 and "cannot reach" in cp.stderr, cp.stderr
    cp = cli("session", "ASIAAAAAAAAAAAAAAAAA", "--endpoint", "http://127.0.0.1:1",
             env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)})
    assert cp.returncode == 2 and "no AWS credentials" in cp.stderr, cp.stderr


def audit_records(keyless: Keyless, *filters: str) -> list[dict[str, Any]]:
    cp = subprocess.run([str(keyless_bin()), "audit", "query", "--config", str(keyless.config), "--format", "json",
                         "--event-name", "RevokeSessions", *filters], capture_output=True, text=True, timeout=60,
                        stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, cp.stderr
    return [json.loads(line) for line in cp.stdout.splitlines() if line.strip()]


def test_revocations_are_in_the_audit_trail(stack) -> None:
    _, keyless = stack
    admin, worker = session(stack, role="revoker"), session(stack)
    api_victim, cli_victim, other = session(stack), session(stack), session(stack)
    assert cli("session", api_victim["AccessKeyId"], "--endpoint", keyless.url, "--reason", "audit me",
               env=api_env(keyless, admin)).returncode == 0
    assert cli("session", cli_victim["AccessKeyId"], *store_args(keyless), "--reason", "operator").returncode == 0
    assert cli("session", other["AccessKeyId"], "--endpoint", keyless.url, env=api_env(keyless, worker)).returncode == 1
    wait_revoked(keyless, cli_victim)

    def find(pred) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 3
        while True:
            found = [r for r in audit_records(keyless) if pred(r)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    api = find(lambda r: (r.get("responseElements") or {}).get("target", {}).get("accessKeyId") == api_victim["AccessKeyId"])
    assert len(api) == 1, api
    assert api[0]["eventSource"] == "keyless" and api[0]["decision"] == "allow"
    assert api[0]["userIdentity"]["accessKeyId"] == admin["AccessKeyId"]
    assert api[0]["requestParameters"]["reason"] == "audit me"
    op = find(lambda r: (r.get("responseElements") or {}).get("target", {}).get("accessKeyId") == cli_victim["AccessKeyId"])
    assert len(op) == 1 and op[0]["userIdentity"]["type"] == "Operator", op
    # Each row is marked with the seq of its one record: the API's own, the server's for the CLI's.
    for rec in (api[0], op[0]):
        assert audited_seq(keyless, rec["responseElements"]["id"]) == rec["seq"], rec
    denied = find(lambda r: r.get("errorCode") == "AccessDenied"
                  and (r.get("requestParameters") or {}).get("value") == other["AccessKeyId"])
    assert len(denied) == 1 and denied[0]["decision"] == "deny", denied
    assert denied[0]["userIdentity"]["accessKeyId"] == worker["AccessKeyId"]


def test_cli_credentials_from_a_profile_and_from_web_identity(stack, tmp_path: Path) -> None:
    issuer, keyless = stack
    admin, victim = session(stack, role="revoker"), session(stack)
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "AWS_REGION": REGION}
    # A profile without its secret is a usage error, and nothing is revoked.
    creds_file = tmp_path / "credentials"
    creds_file.write_text(f"[ops]\naws_access_key_id = {admin['AccessKeyId']}\n")
    env = {**base, "AWS_SHARED_CREDENTIALS_FILE": str(creds_file), "AWS_PROFILE": "ops"}
    cp = cli("session", victim["AccessKeyId"], "--endpoint", keyless.url, env=env)
    assert cp.returncode == 2 and "aws_secret_access_key" in cp.stderr, cp.stderr
    assert caller_ok(keyless, victim)
    # The complete profile works.
    creds_file.write_text(f"[default]\naws_access_key_id = x\n\n[ops]\naws_access_key_id = {admin['AccessKeyId']}\n"
                          f"aws_secret_access_key = {admin['SecretAccessKey']}\naws_session_token = {admin['SessionToken']}\n")
    cp = cli("session", victim["AccessKeyId"], "--endpoint", keyless.url, env=env)
    assert cp.returncode == 0, cp.stderr
    assert not caller_ok(keyless, victim)
    # Web identity: a garbage token is refused by STS and revokes nothing.
    other = session(stack)
    token_file = tmp_path / "token"
    token_file.write_text("not-a-jwt")
    env = {**base, "AWS_ROLE_ARN": keyless.role_arn("revoker"), "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file)}
    cp = cli("session", other["AccessKeyId"], "--endpoint", keyless.url, env=env)
    assert cp.returncode == 1 and "web identity exchange" in cp.stderr and "HTTP 400" in cp.stderr, cp.stderr
    assert caller_ok(keyless, other)
    # A real token from the platform works (a CI job revoking with its own identity).
    token_file.write_text(issuer.gha_token())
    cp = cli("session", other["AccessKeyId"], "--endpoint", keyless.url, env=env)
    assert cp.returncode == 0, cp.stderr
    assert not caller_ok(keyless, other)


def test_cli_refuses_half_set_environment_credentials_instead_of_falling_back(stack, tmp_path: Path) -> None:
    """As the AWS CLI and SDKs do (PartialCredentialsError): an access key id in the environment
    without its secret is an error, not a reason to sign with the next identity in the chain, here
    a more powerful profile the operator did not mean to use."""
    _, keyless = stack
    admin, victim = session(stack, role="revoker"), session(stack)
    creds_file = tmp_path / "credentials"
    creds_file.write_text(f"[default]\naws_access_key_id = {admin['AccessKeyId']}\n"
                          f"aws_secret_access_key = {admin['SecretAccessKey']}\naws_session_token = {admin['SessionToken']}\n")
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "AWS_REGION": REGION,
            "AWS_SHARED_CREDENTIALS_FILE": str(creds_file)}
    for env, missing in (({"AWS_ACCESS_KEY_ID": victim["AccessKeyId"]}, "AWS_SECRET_ACCESS_KEY"),
                         ({"AWS_SECRET_ACCESS_KEY": victim["SecretAccessKey"]}, "AWS_ACCESS_KEY_ID")):
        cp = cli("session", victim["AccessKeyId"], "--endpoint", keyless.url, env={**base, **env})
        assert cp.returncode == 2, (cp.returncode, cp.stdout, cp.stderr)
        assert f"{missing} is not" in cp.stderr, cp.stderr
        assert cp.stdout == ""
        assert caller_ok(keyless, victim), "revoked with the fallback profile's identity"


def sessions_list(keyless: Keyless, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(keyless_bin()), "sessions", "list", "--config", str(keyless.config), *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def records_of(keyless: Keyless, revocation_id: int) -> list[dict[str, Any]]:
    return [r for r in audit_records(keyless) if (r.get("responseElements") or {}).get("id") == revocation_id]


def audited_seq(keyless: Keyless, revocation_id: int) -> int | None:
    """The row's audit mark in the server's SQLite store (what `keyless revoke --config` opens)."""
    with sqlite3.connect(keyless.data_dir / "keyless.db") as db:
        row = db.execute("SELECT audited_seq FROM revocations WHERE id = ?", (revocation_id,)).fetchone()
    assert row is not None, f"revocation {revocation_id} not in the store"
    return row[0]


def wait_records(keyless: Keyless, revocation_id: int, within: float = 5.0) -> list[dict[str, Any]]:
    """The audit records of a revocation once there is at least one (or none after `within`)."""
    deadline = time.monotonic() + within
    while True:
        recs = records_of(keyless, revocation_id)
        if recs or time.monotonic() > deadline:
            return recs
        time.sleep(0.1)


def wait_audited_seq(keyless: Keyless, revocation_id: int, within: float = 5.0) -> int | None:
    """The row's audit mark once it is set: the server writes the record durably first and marks
    the row after it, so a record can be seen in the file a moment before its mark."""
    deadline = time.monotonic() + within
    while True:
        seq = audited_seq(keyless, revocation_id)
        if seq is not None or time.monotonic() > deadline:
            return seq
        time.sleep(0.05)


def insert_unaudited_session_row(keyless: Keyless, access_key_id: str, reason: str,
                                 created_by: str = "operator", account: str | None = None) -> int:
    """Writes a session revocation straight into the server's SQLite store, with no audit record
    and no mark: what a writer killed between its store write and its record leaves behind."""
    now = time.time()
    with sqlite3.connect(keyless.data_dir / "keyless.db") as db:
        return db.execute(
            "INSERT INTO revocations (kind, value, issuer, account, issued_before_ms, created_at_ms, "
            "expires_at, reason, created_by) VALUES ('session', ?, NULL, ?, ?, ?, ?, ?, ?)",
            (access_key_id, account, int(now * 1000), int(now * 1000), int(now) + 43_500, reason,
             created_by)).lastrowid


def verify_log(keyless: Keyless) -> None:
    ok = subprocess.run([str(keyless_bin()), "audit", "verify", "--config", str(keyless.config)],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "audit log OK" in ok.stdout, ok.stdout + ok.stderr


def test_sessions_list_marks_revoked_sessions_and_cli_revocations_are_audited_without_a_server(
        tmp_path: Path) -> None:
    issuer = start_issuer(tmp_path)
    keyless = start_keyless(tmp_path / "keyless", default_config(issuer, tmp_path / "keyless" / "data"))
    try:
        victim, bystander, later = (keyless.awiwi(issuer.gha_token(), role="gha", session=f"s{i}").credentials
                                    for i in range(3))
        assert victim and bystander and later
        cp = cli("session", victim["AccessKeyId"], "--config", str(keyless.config), "--format", "json")
        assert cp.returncode == 0, cp.stderr
        rev = json.loads(cp.stdout)
        # A running server holds the log: it records the revocation, the CLI waits to see it.
        assert "audited by the running server" in cp.stderr, cp.stderr
        recs = records_of(keyless, rev["id"])
        assert len(recs) == 1, recs
        # The server marked the row with its record; a hand-off is not a recovery.
        assert audited_seq(keyless, rev["id"]) == recs[0]["seq"]
        assert recs[0]["sourceIPAddress"] == "keyless-store" and not recs[0].get("additionalEventData"), recs
        wait_revoked(keyless, victim)

        listed = sessions_list(keyless, "--format", "json")
        assert listed.returncode == 0, listed.stderr
        by_key = {s["accessKeyId"]: s for s in map(json.loads, listed.stdout.splitlines())}
        assert by_key[victim["AccessKeyId"]]["status"] == "revoked"
        assert by_key[victim["AccessKeyId"]]["revocation"]["id"] == rev["id"]
        assert by_key[victim["AccessKeyId"]]["revocation"]["target"] == {"type": "session",
                                                                          "accessKeyId": victim["AccessKeyId"]}
        for c in (bystander, later):
            assert by_key[c["AccessKeyId"]]["status"] == "active" and by_key[c["AccessKeyId"]]["revocation"] is None
        text = sessions_list(keyless)
        assert text.returncode == 0, text.stderr
        line = next(l for l in text.stdout.splitlines() if l.startswith(victim["AccessKeyId"]))
        assert f"revoked(#{rev['id']} session {victim['AccessKeyId']})" in line, line
        assert "active" in next(l for l in text.stdout.splitlines() if l.startswith(bystander["AccessKeyId"]))
        assert "3 live session(s), 1 of them revoked" in text.stderr

        # The server is down: the CLI takes the log's lock and appends the record itself.
        keyless.proc.send_signal(signal.SIGTERM)
        keyless.proc.wait(timeout=20)
        cp = cli("role", keyless.role_arn("gha"), "--issued-before", "now", "--config", str(keyless.config),
                 "--format", "json", "--reason", "offline")
        assert cp.returncode == 0, cp.stderr
        offline = json.loads(cp.stdout)
        assert re.search(r"audited: record \d+ of ", cp.stderr), cp.stderr
        recs = records_of(keyless, offline["id"])
        assert len(recs) == 1, recs
        assert recs[0]["userIdentity"]["type"] == "Operator" and recs[0]["sourceIPAddress"] == "keyless-cli"
        assert recs[0]["responseElements"]["reason"] == "offline"
        assert audited_seq(keyless, offline["id"]) == recs[0]["seq"]
        assert not recs[0].get("additionalEventData"), recs
        ok = subprocess.run([str(keyless_bin()), "audit", "verify", "--config", str(keyless.config)],
                            capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0 and "audit log OK" in ok.stdout, ok.stdout + ok.stderr
        listed = sessions_list(keyless, "--format", "json")
        statuses = {s["accessKeyId"]: (s["status"], (s["revocation"] or {}).get("id"))
                    for s in map(json.loads, listed.stdout.splitlines())}
        assert statuses[victim["AccessKeyId"]] == ("revoked", rev["id"])
        assert statuses[bystander["AccessKeyId"]] == ("revoked", offline["id"])
        assert statuses[later["AccessKeyId"]] == ("revoked", offline["id"])

        # A restarted server applies it, does not record it a second time, and the chain holds.
        keyless = start_keyless(keyless.workdir, keyless.config.read_text())
        assert not caller_ok(keyless, bystander)
        next_second()
        fresh = keyless.awiwi(issuer.gha_token(), role="gha", session="fresh").credentials
        assert fresh and caller_ok(keyless, fresh)
        time.sleep(0.6)  # past a revocation poll
        keyless.proc.send_signal(signal.SIGTERM)
        keyless.proc.wait(timeout=20)
        assert len(records_of(keyless, offline["id"])) == 1
        ok = subprocess.run([str(keyless_bin()), "audit", "verify", "--config", str(keyless.config)],
                            capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stdout + ok.stderr
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def test_the_credential_report_shows_a_revoked_session_inactive(stack) -> None:
    """IAM's report says access_key_active false for a key that no longer works; a revoked
    session is refused everywhere, so its row must not say true."""
    _, keyless = stack
    victim, bystander = session(stack), session(stack)
    cp = cli("session", victim["AccessKeyId"], *store_args(keyless))
    assert cp.returncode == 0, cp.stderr
    wait_revoked(keyless, victim)
    report = subprocess.run([str(keyless_bin()), "report", "credentials", *store_args(keyless)],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert report.returncode == 0, report.stderr
    rows = {r["access_key_id"]: r for r in csv.DictReader(report.stdout.splitlines())}
    assert rows[victim["AccessKeyId"]]["access_key_active"] == "false", rows[victim["AccessKeyId"]]
    assert rows[bystander["AccessKeyId"]]["access_key_active"] == "true", rows[bystander["AccessKeyId"]]
    assert re.search(r"\d+ live session\(s\), [1-9]\d* of them revoked", report.stderr), report.stderr
    # A copy of the log with no store beside it cannot tell.
    copy = keyless.workdir / "report-copy"
    shutil.copytree(keyless.data_dir / "audit", copy / "audit", ignore=shutil.ignore_patterns("*.lock"))
    unchecked = subprocess.run([str(keyless_bin()), "report", "credentials", "--data-dir", str(copy)],
                               capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    rows = {r["access_key_id"]: r for r in csv.DictReader(unchecked.stdout.splitlines())}
    assert rows[victim["AccessKeyId"]]["access_key_active"] == "no_information", unchecked.stdout
    assert "revocations not checked" in unchecked.stderr, unchecked.stderr


def test_a_revocation_whose_record_was_lost_is_recorded_once_when_the_server_starts(tmp_path: Path) -> None:
    issuer = start_issuer(tmp_path)
    keyless = start_keyless(tmp_path / "keyless", default_config(issuer, tmp_path / "keyless" / "data"))
    try:
        victim = keyless.awiwi(issuer.gha_token(), role="gha", session="victim").credentials
        assert victim and caller_ok(keyless, victim)
        keyless.proc.send_signal(signal.SIGTERM)
        keyless.proc.wait(timeout=20)

        # What `keyless revoke --config` leaves when it is killed (kill -9) right after the store
        # write: the row, in force, with no audit record and no mark.
        rid = insert_unaudited_session_row(keyless, victim["AccessKeyId"], "killed before its record")
        assert audited_seq(keyless, rid) is None
        assert records_of(keyless, rid) == []

        # The next server applies it at once and records it, marked recovered.
        keyless = start_keyless(keyless.workdir, keyless.config.read_text())
        assert not caller_ok(keyless, victim)
        recs = wait_records(keyless, rid)
        assert len(recs) == 1, recs
        rec = recs[0]
        assert rec["additionalEventData"] == {"recovered": True}, rec
        assert rec["userIdentity"]["type"] == "Operator" and rec["sourceIPAddress"] == "keyless-store"
        assert rec["responseElements"]["id"] == rid
        assert rec["responseElements"]["target"] == {"type": "session", "accessKeyId": victim["AccessKeyId"]}
        assert rec["responseElements"]["reason"] == "killed before its record"
        assert wait_audited_seq(keyless, rid) == rec["seq"]

        # Restarted again, the server does not record it a second time; the chain holds.
        keyless.proc.send_signal(signal.SIGTERM)
        keyless.proc.wait(timeout=20)
        verify_log(keyless)
        keyless = start_keyless(keyless.workdir, keyless.config.read_text())
        assert not caller_ok(keyless, victim)
        time.sleep(1.0)  # past the startup pass and a revocation poll
        keyless.proc.send_signal(signal.SIGTERM)
        keyless.proc.wait(timeout=20)
        assert len(records_of(keyless, rid)) == 1
        assert audited_seq(keyless, rid) == rec["seq"]
        verify_log(keyless)
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def test_cli_records_rows_a_killed_revoke_left_before_its_own(tmp_path: Path) -> None:
    issuer = start_issuer(tmp_path)
    keyless = start_keyless(tmp_path / "keyless", default_config(issuer, tmp_path / "keyless" / "data"))
    try:
        lost, mine = (keyless.awiwi(issuer.gha_token(), role="gha", session=f"s{i}").credentials for i in range(2))
        assert lost and mine
        keyless.proc.send_signal(signal.SIGTERM)
        keyless.proc.wait(timeout=20)
        lost_id = insert_unaudited_session_row(keyless, lost["AccessKeyId"], "lost")

        # No server holds the log: the CLI records the row left behind, then its own, once each.
        cp = cli("session", mine["AccessKeyId"], "--config", str(keyless.config), "--format", "json")
        assert cp.returncode == 0, cp.stderr
        own = json.loads(cp.stdout)
        assert f"recovered: revocation {lost_id} had no audit record" in cp.stderr, cp.stderr
        assert re.search(r"audited: record \d+ of ", cp.stderr), cp.stderr
        lost_recs, own_recs = records_of(keyless, lost_id), records_of(keyless, own["id"])
        assert len(lost_recs) == 1 and len(own_recs) == 1, (lost_recs, own_recs)
        assert lost_recs[0]["additionalEventData"] == {"recovered": True}
        assert lost_recs[0]["sourceIPAddress"] == own_recs[0]["sourceIPAddress"] == "keyless-cli"
        assert not own_recs[0].get("additionalEventData"), own_recs
        assert audited_seq(keyless, lost_id) == lost_recs[0]["seq"]
        assert audited_seq(keyless, own["id"]) == own_recs[0]["seq"]
        verify_log(keyless)

        # A server started next finds nothing to record.
        keyless = start_keyless(keyless.workdir, keyless.config.read_text())
        assert not caller_ok(keyless, lost) and not caller_ok(keyless, mine)
        time.sleep(1.0)
        keyless.proc.send_signal(signal.SIGTERM)
        keyless.proc.wait(timeout=20)
        assert len(records_of(keyless, lost_id)) == 1 and len(records_of(keyless, own["id"])) == 1
        verify_log(keyless)
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def test_an_api_revocation_left_unmarked_by_another_process_is_recorded_after_the_grace(tmp_path: Path) -> None:
    issuer = start_issuer(tmp_path)
    keyless = start_keyless(tmp_path / "keyless", default_config(issuer, tmp_path / "keyless" / "data"))
    try:
        victim = keyless.awiwi(issuer.gha_token(), role="gha", session="victim").credentials
        assert victim
        # What another replica's API leaves if it dies between its store write and its record.
        rid = insert_unaudited_session_row(keyless, victim["AccessKeyId"], "replica died",
                                           created_by=f"arn:aws:sts::{ACCOUNT}:assumed-role/revoker/elsewhere",
                                           account=ACCOUNT)
        wait_revoked(keyless, victim)
        # In force at once; its own API gets 10 s to record and mark it before this server does.
        time.sleep(2)
        assert records_of(keyless, rid) == [] and audited_seq(keyless, rid) is None
        recs = wait_records(keyless, rid, within=15)
        assert len(recs) == 1, recs
        assert recs[0]["additionalEventData"] == {"recovered": True}, recs
        assert recs[0]["userIdentity"]["principalId"].endswith("assumed-role/revoker/elsewhere")
        assert wait_audited_seq(keyless, rid) == recs[0]["seq"]
        time.sleep(2.5)  # past another retry: nothing more
        assert len(records_of(keyless, rid)) == 1
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


# --------------------------------------------------------------------------------------------
# Review of revocation, the key ring and the token format.


def serve_or_exit(keyless: Keyless, timeout: float = 20) -> tuple[subprocess.Popen, str | None]:
    """Starts `keyless serve` on the same config; returns the process and its URL, or no URL if it
    exited before listening."""
    out, err = keyless.workdir / "restart.out", keyless.workdir / "restart.err"
    proc = subprocess.Popen([str(keyless_bin()), "serve", "--config", str(keyless.config), "--listen",
                             "127.0.0.1:0"], stdout=out.open("wb"), stderr=err.open("wb"),
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"keyless listening on (http://127\.0\.0\.1:\d+)", out.read_text(errors="replace"))
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            return proc, None
        time.sleep(0.05)
    _stop(proc)
    pytest.fail("keyless serve neither listened nor exited")


def test_a_server_that_cannot_read_its_revocations_refuses_to_start(tmp_path: Path) -> None:
    """Revocations are in force before the first request: a store whose revocations cannot be
    read (a row this version does not understand, written by a newer replica or by hand) stops
    start-up instead of serving with none, which accepted every revoked session."""
    issuer = start_issuer(tmp_path)
    keyless = start_keyless(tmp_path / "keyless", default_config(issuer, tmp_path / "keyless" / "data"))
    proc = keyless.proc
    try:
        victim = keyless.awiwi(issuer.gha_token(), role="gha", session="victim").credentials
        assert victim
        cp = cli("session", victim["AccessKeyId"], *store_args(keyless), "--reason", "leaked")
        assert cp.returncode == 0, cp.stderr
        wait_revoked(keyless, victim)
        keyless.proc.send_signal(signal.SIGTERM)
        keyless.proc.wait(timeout=20)
        now = time.time()
        with sqlite3.connect(keyless.data_dir / "keyless.db") as db:
            db.execute(
                "INSERT INTO revocations (kind, value, issuer, account, issued_before_ms, created_at_ms, "
                "expires_at, reason, created_by) VALUES ('everything', 'x', NULL, NULL, ?, ?, ?, 'r', 'operator')",
                (int(now * 1000), int(now * 1000), int(now) + 43_500))
        proc, url = serve_or_exit(keyless)
        if url is not None:
            accepted = caller_ok(Keyless(url=url, proc=proc, workdir=keyless.workdir, data_dir=keyless.data_dir,
                                         config=keyless.config, stderr_path=keyless.workdir / "restart.err"),
                                 victim)
            pytest.fail(f"the server started without its revocations (revoked session accepted: {accepted})")
        assert proc.returncode != 0
        err = (keyless.workdir / "restart.err").read_text(errors="replace")
        assert "revocations" in err and "everything" in err, err
    finally:
        _stop(proc)
        _stop(issuer.proc)


def test_a_revocation_row_that_cannot_be_read_makes_the_server_unready(tmp_path: Path) -> None:
    """Once serving, a reload that fails keeps the revocations in force, but revocations made
    since are not applied: /readyz says so (503) instead of answering ready."""
    issuer = start_issuer(tmp_path)
    keyless = start_keyless(tmp_path / "keyless", default_config(issuer, tmp_path / "keyless" / "data"))
    try:
        ready = requests.get(keyless.url + "/readyz", timeout=5)
        assert ready.status_code == 200 and "revocations: in force" in ready.text, ready.text
        now = time.time()
        with sqlite3.connect(keyless.data_dir / "keyless.db") as db:
            db.execute(
                "INSERT INTO revocations (kind, value, issuer, account, issued_before_ms, created_at_ms, "
                "expires_at, reason, created_by) VALUES ('everything', 'x', NULL, NULL, ?, ?, ?, 'r', 'operator')",
                (int(now * 1000), int(now * 1000), int(now) + 43_500))
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            ready = requests.get(keyless.url + "/readyz", timeout=5)
            if ready.status_code != 200:
                break
            time.sleep(0.1)
        assert ready.status_code == 503, ready.text
        assert "revocations: not reloaded" in ready.text, ready.text
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def test_a_role_revocation_ends_the_sessions_of_the_role_however_its_name_is_cased(stack) -> None:
    """Role names ignore case, so `role/spelled` names role Spelled; its sessions carry the stored
    ARN, and a revocation under another spelling used to be accepted and end nothing."""
    _, keyless = stack
    victim = session(stack, role="Spelled")
    cp = cli("role", f"arn:aws:iam::{ACCOUNT}:role/spelled", *store_args(keyless), "--format", "json")
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["target"] == {"type": "role", "roleArn": keyless.role_arn("Spelled")}
    wait_revoked(keyless, victim)
    next_second()
    victim = session(stack, role="Spelled")
    admin = session(stack, role="revoker")
    r = signed_call(keyless, admin, json.dumps({"type": "role",
                                                "value": f"arn:aws:iam::{ACCOUNT}:role/SPELLED"}).encode())
    assert r.status_code == 200, r.text
    assert r.json()["revocation"]["target"]["roleArn"] == keyless.role_arn("Spelled")
    assert not caller_ok(keyless, victim)


def test_a_role_revocation_is_authorized_on_the_stored_role_arn(stack) -> None:
    """A Deny on role/Spelled is not dodged by spelling the role role/SPELLED."""
    _, keyless = stack
    next_second()
    victim = session(stack, role="Spelled")
    limited = session(stack, role="limited")
    before = live_revocations(keyless)
    for name in ("Spelled", "SPELLED", "spelled"):
        r = signed_call(keyless, limited, json.dumps({"type": "role",
                                                      "value": f"arn:aws:iam::{ACCOUNT}:role/{name}"}).encode())
        assert (r.status_code, r.json()["error"]["code"]) == (403, "AccessDenied"), (name, r.text)
    assert live_revocations(keyless) == before
    assert caller_ok(keyless, victim)


def test_a_revocation_of_a_role_that_does_not_exist_is_no_such_entity(stack) -> None:
    _, keyless = stack
    admin = session(stack, role="revoker")
    before = live_revocations(keyless)
    for value in (f"arn:aws:iam::{ACCOUNT}:role/nosuch", f"arn:aws:iam::{ACCOUNT}:role/ci/worker"):
        r = signed_call(keyless, admin, json.dumps({"type": "role", "value": value}).encode())
        assert (r.status_code, r.json()["error"]["code"]) == (404, "NoSuchEntity"), r.text
        cp = cli("role", value, *store_args(keyless))
        assert cp.returncode == 1 and "NoSuchEntity" in cp.stderr, cp.stderr
    assert live_revocations(keyless) == before


def test_a_subject_revocation_names_its_provider_with_or_without_a_trailing_slash(stack) -> None:
    """Tokens carry the provider's URL exactly; a revocation naming it with a trailing slash
    used to be accepted and end nothing."""
    issuer, keyless = stack
    repo = "octo-org/slashed"
    victim = session(stack, sub_repo=repo)
    sub = f"repo:{repo}:ref:refs/heads/main"
    cp = cli("subject", sub, "--provider", issuer.url + "/", *store_args(keyless), "--format", "json")
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["target"] == {"type": "subject", "issuer": issuer.url, "subject": sub}
    wait_revoked(keyless, victim)


def access_key_id_of(account: str) -> str:
    """An ASIA key id that encodes `account`, as keyless mints them."""
    v = (int(account) << 40) | secrets.randbits(40)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return "ASIA" + "".join(alphabet[(v >> (5 * i)) & 31] for i in range(15, -1, -1))


def test_listing_shows_no_revocation_of_another_accounts_session_or_role(stack) -> None:
    """An operator revocation made for every account is listed to each account's callers, but
    one that names another account's session is that account's business (its key id, reason)."""
    _, keyless = stack
    foreign = access_key_id_of("210987654321")
    cp = cli("session", foreign, *store_args(keyless), "--reason", "tenant B incident", "--format", "json")
    assert cp.returncode == 0, cp.stderr
    foreign_id = json.loads(cp.stdout)["id"]
    mine = session(stack)
    cp = cli("session", mine["AccessKeyId"], *store_args(keyless), "--format", "json")
    assert cp.returncode == 0, cp.stderr
    mine_id = json.loads(cp.stdout)["id"]
    admin = session(stack, role="revoker")
    r = signed_call(keyless, admin, b"", method="GET")
    assert r.status_code == 200, r.text
    ids = [x["id"] for x in r.json()["revocations"]]
    assert mine_id in ids and foreign_id not in ids, ids


def test_sessions_revoking_themselves_cannot_use_up_an_operators_room(tmp_path: Path) -> None:
    """100,000 live session revocations refuse a session revoking itself (LimitExceeded, 409,
    nothing stored, the session still works) but not an operator's revocation."""
    issuer = start_issuer(tmp_path)
    config = stack_config(issuer, tmp_path / "k" / "data")
    _stop(start_keyless(tmp_path / "k", config).proc)
    db = tmp_path / "k" / "data" / "keyless.db"
    now_ms, expires = int(time.time() * 1000), int(time.time()) + 40_000
    with sqlite3.connect(db) as c:
        c.executemany("INSERT INTO revocations (kind, value, account, issued_before_ms, created_at_ms, expires_at, "
                      "reason, created_by, audited_seq) VALUES ('session', ?, ?, ?, ?, ?, 'filler', 'operator', 1)",
                      [(f"ASIA{i:016d}", ACCOUNT, now_ms, now_ms, expires) for i in range(100_000)])
    keyless = start_keyless(tmp_path / "k", config)
    try:
        stack = (issuer, keyless)
        me = session(stack)
        r = signed_call(keyless, me, json.dumps({"type": "session", "value": me["AccessKeyId"]}).encode())
        assert (r.status_code, r.json()["error"]["code"]) == (409, "LimitExceeded"), r.text
        assert "revoke itself" in r.json()["error"]["message"]
        assert caller_ok(keyless, me)
        with sqlite3.connect(db) as c:
            assert c.execute("SELECT COUNT(*) FROM revocations").fetchone() == (100_000,)
        r = signed_call(keyless, session(stack, role="revoker"),
                        json.dumps({"type": "session", "value": me["AccessKeyId"]}).encode())
        assert r.status_code == 200, r.text
        assert not caller_ok(keyless, me)
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def revocation_reloads(keyless: Keyless) -> dict[str, float]:
    """`keyless_revocation_reloads_total` by kind (full, incremental)."""
    found = re.findall(r'^keyless_revocation_reloads_total\{kind="(\w+)"\} (\S+)$', keyless.metrics(), re.M)
    return {kind: float(n) for kind, n in found}


def seed_session_revocations(db: Path, count: int) -> None:
    """`count` live session revocations of made-up keys, already audited, straight into the store."""
    now_ms, expires = int(time.time() * 1000), int(time.time()) + 40_000
    with sqlite3.connect(db) as c:
        c.executemany("INSERT INTO revocations (kind, value, account, issued_before_ms, created_at_ms, expires_at, "
                      "reason, created_by, audited_seq) VALUES ('session', ?, ?, ?, ?, ?, 'filler', 'operator', 1)",
                      [(f"ASIA{i:016d}", ACCOUNT, now_ms, now_ms, expires) for i in range(count)])


def test_a_cli_revocation_among_99000_is_read_incrementally_and_in_force_within_a_second(tmp_path: Path) -> None:
    """With 99,000 live revocations, each revocation the CLI writes to the store is in force on
    the running server within a second, and the server reads only the new rows: its one full read
    is the one at start-up."""
    issuer = start_issuer(tmp_path)
    config = stack_config(issuer, tmp_path / "k" / "data")
    _stop(start_keyless(tmp_path / "k", config).proc)
    seed_session_revocations(tmp_path / "k" / "data" / "keyless.db", 99_000)
    keyless = start_keyless(tmp_path / "k", config)
    try:
        stack = (issuer, keyless)
        assert revocation_reloads(keyless) == {"full": 1.0, "incremental": 0.0}
        for n in range(3):
            victim, bystander = session(stack), session(stack)
            cp = cli("session", victim["AccessKeyId"], *store_args(keyless), "--format", "json")
            assert cp.returncode == 0, cp.stderr
            assert "audited by the running server" in cp.stderr, cp.stderr
            took = wait_revoked(keyless, victim)
            assert took <= 1.0, f"revocation {n} took {took:.2f}s to reach the server"
            assert caller_ok(keyless, bystander), "another session was hit"
        reloads = revocation_reloads(keyless)
        assert reloads["full"] == 1.0 and reloads["incremental"] >= 3.0, reloads
        assert "revocations reloaded in full" not in keyless.stderr()
        r = requests.get(keyless.url + "/readyz", timeout=10)
        assert r.status_code == 200 and "revocations: in force" in r.text, r.text
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def test_a_purge_by_another_process_is_followed_without_reading_every_row(tmp_path: Path) -> None:
    """Another server's purge (expired rows deleted by its own clock) leaves fewer rows than this
    server holds: it drops its earliest-expiring ones to match, reads no row again, and still
    puts the next revocation in force within a second."""
    issuer = start_issuer(tmp_path)
    config = stack_config(issuer, tmp_path / "k" / "data")
    _stop(start_keyless(tmp_path / "k", config).proc)
    db = tmp_path / "k" / "data" / "keyless.db"
    seed_session_revocations(db, 5_000)
    now = int(time.time())
    with sqlite3.connect(db) as c:
        c.executemany("INSERT INTO revocations (kind, value, account, issued_before_ms, created_at_ms, expires_at, "
                      "reason, created_by, audited_seq) VALUES ('session', ?, NULL, 0, 0, ?, 'old', 'operator', 1)",
                      [(f"ASIAOLD{i:013d}", now - 100 + i % 50) for i in range(1_000)])
    keyless = start_keyless(tmp_path / "k", config)
    try:
        stack = (issuer, keyless)
        assert revocation_reloads(keyless) == {"full": 1.0, "incremental": 0.0}
        with sqlite3.connect(db) as c:
            assert c.execute("DELETE FROM revocations WHERE expires_at <= ?", (int(time.time()),)).rowcount == 1_000
        deadline = time.monotonic() + 2
        while revocation_reloads(keyless)["incremental"] < 1:
            assert time.monotonic() < deadline, revocation_reloads(keyless)
            time.sleep(0.05)
        victim = session(stack)
        cp = cli("session", victim["AccessKeyId"], *store_args(keyless), "--format", "json")
        assert cp.returncode == 0, cp.stderr
        assert wait_revoked(keyless, victim) <= 1.0
        reloads = revocation_reloads(keyless)
        assert reloads["full"] == 1.0 and reloads["incremental"] >= 2.0, reloads
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def stamp_checks(keyless: Keyless) -> dict[str, float]:
    """`keyless_revocation_stamp_checks_total` by cause (generation, safety_net)."""
    found = re.findall(r'^keyless_revocation_stamp_checks_total\{cause="(\w+)"\} (\S+)$', keyless.metrics(), re.M)
    return {cause: float(n) for cause, n in found}


def test_an_idle_server_polls_the_generation_not_the_whole_table(tmp_path: Path) -> None:
    """With 20,000 live revocations and nothing changing, the poll reads the store's revocations
    generation (one row) and never the stamp (an aggregate over every row, 4 times a second
    before); a revocation by the CLI moves the generation and is in force within a second. One
    through this server's API moves it too: the next poll compares the stamp, finds the row in
    force already, and reads nothing."""
    issuer = start_issuer(tmp_path)
    config = stack_config(issuer, tmp_path / "k" / "data")
    _stop(start_keyless(tmp_path / "k", config).proc)
    seed_session_revocations(tmp_path / "k" / "data" / "keyless.db", 20_000)
    keyless = start_keyless(tmp_path / "k", config)
    try:
        stack = (issuer, keyless)
        time.sleep(2)
        assert stamp_checks(keyless) == {"generation": 0.0, "safety_net": 0.0}
        victim = session(stack)
        cp = cli("session", victim["AccessKeyId"], *store_args(keyless), "--format", "json")
        assert cp.returncode == 0, cp.stderr
        assert wait_revoked(keyless, victim) <= 1.0
        checks = stamp_checks(keyless)["generation"]
        assert checks >= 1.0
        assert revocation_reloads(keyless) == {"full": 1.0, "incremental": 1.0}
        mine = session(stack)
        r = signed_call(keyless, session(stack, role="revoker"),
                        json.dumps({"type": "session", "value": mine["AccessKeyId"]}).encode())
        assert r.status_code == 200, r.text
        assert not caller_ok(keyless, mine)
        deadline = time.monotonic() + 2
        while stamp_checks(keyless)["generation"] == checks:
            assert time.monotonic() < deadline, stamp_checks(keyless)
            time.sleep(0.05)
        assert revocation_reloads(keyless) == {"full": 1.0, "incremental": 1.0}
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def test_a_write_that_bypasses_the_generation_is_caught_by_the_safety_net(tmp_path: Path) -> None:
    """A revocation written with the store's triggers out of the way (as a restore with triggers
    disabled would) leaves the generation where it was; the poll's periodic stamp check puts
    it in force anyway, within its 10 seconds."""
    issuer = start_issuer(tmp_path)
    keyless = start_keyless(tmp_path / "k", stack_config(issuer, tmp_path / "k" / "data"))
    try:
        victim = session((issuer, keyless))
        db = keyless.data_dir / "keyless.db"
        with sqlite3.connect(db) as c:
            (before,) = c.execute("SELECT generation FROM revocation_generation").fetchone()
            trigger = c.execute("SELECT sql FROM sqlite_master WHERE name = 'revocation_added'").fetchone()[0]
            c.execute("DROP TRIGGER revocation_added")
        insert_unaudited_session_row(keyless, victim["AccessKeyId"], "behind the triggers' back")
        with sqlite3.connect(db) as c:
            c.execute(trigger)
            assert c.execute("SELECT generation FROM revocation_generation").fetchone() == (before,)
        took = wait_revoked(keyless, victim, within=11.0)
        assert stamp_checks(keyless)["safety_net"] >= 1.0, (took, stamp_checks(keyless))
        assert "revocations changed without their generation moving" in keyless.stderr()
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def test_every_use_of_a_revoked_session_keeps_its_own_audit_record(stack) -> None:
    """A revoked session answers InvalidClientTokenId, as a forged token does; but its token opens
    under the key ring, so its uses are a real session's and are never folded into a summary."""
    _, keyless = stack
    victim = session(stack)
    assert cli("session", victim["AccessKeyId"], *store_args(keyless), "--reason", "flood").returncode == 0
    wait_revoked(keyless, victim)
    refused = 1
    for _ in range(5):
        assert not caller_ok(keyless, victim)
        refused += 1
    cp = subprocess.run([str(keyless_bin()), "audit", "query", "--config", str(keyless.config), "--format", "json",
                         "--access-key-id", victim["AccessKeyId"], "--error-code", "InvalidClientTokenId"],
                        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, cp.stderr
    records = [json.loads(line) for line in cp.stdout.splitlines() if line.strip()]
    assert len(records) >= refused, [r.get("additionalEventData") for r in records]
    assert not any("aggregatedCalls" in (r.get("additionalEventData") or {}) for r in records), records
