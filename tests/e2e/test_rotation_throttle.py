"""Issue 3: issuer keys rotated mid-run, the keyless key ring rotated under live sessions, and the
per-(role, source) token bucket answering Throttling as AWS does."""

from __future__ import annotations

import time

from keyless_e2e import Keyless, assert_error


def test_issuer_keys_rotated_mid_run(own_stack) -> None:
    issuer, keyless = own_stack()
    first = keyless.awiwi(issuer.gha_token(), session="before")
    assert first.status == 200, first
    old_kid = issuer.stats()["kids"][0]
    new_kid = issuer.rotate()
    assert new_kid != old_kid and issuer.stats()["kids"] == [new_kid]
    # A token signed with the new key: unknown kid to keyless until it refetches the JWKS. The
    # refetch may be rate-limited (e.g. once per 30 s counting the start-up fetch), so allow 40 s.
    deadline = time.monotonic() + 40
    while True:
        second = keyless.awiwi(issuer.gha_token(), session="after")
        if second.status == 200 or time.monotonic() > deadline:
            break
        assert second.code == "InvalidIdentityToken", second
        assert "<Credentials>" not in second.body
        time.sleep(1)
    assert second.status == 200, f"{second}\n--- keyless stderr ---\n{keyless.stderr()[-3000:]}"
    assert second.credentials
    # Credentials issued before the rotation still work.
    ident = keyless.boto3_client(first.credentials).get_caller_identity()
    assert ident["Arn"].endswith("assumed-role/gha/before")


def test_keyring_rotation_keeps_sessions(own_stack) -> None:
    issuer, keyless = own_stack()
    old = keyless.awiwi(issuer.gha_token(), session="old").credentials
    assert old
    cp = keyless.rotate_keyring()
    assert cp.returncode == 0, f"keys rotate failed: {cp.stderr}"
    time.sleep(2.5)  # the server picks a new version up within ~2 s
    new = keyless.awiwi(issuer.gha_token(), session="new").credentials
    assert new
    assert new["SessionToken"] != old["SessionToken"]
    for c, name in ((old, "old"), (new, "new")):
        assert keyless.boto3_client(c).get_caller_identity()["Arn"].endswith(f"assumed-role/gha/{name}")


def test_keyring_file_is_owner_only(keyless: Keyless) -> None:
    ring = keyless.data_dir / "keyring.json"
    assert ring.exists(), list(keyless.data_dir.iterdir())
    assert ring.stat().st_mode & 0o077 == 0, oct(ring.stat().st_mode)


def test_throttling(own_stack) -> None:
    issuer, keyless = own_stack(throttle=(0.5, 3))
    token = issuer.gha_token()
    results = [keyless.awiwi(token, session=f"t{i}") for i in range(10)]
    ok = [r for r in results if r.status == 200]
    throttled = [r for r in results if r.code == "Throttling"]
    assert 1 <= len(ok) <= 4, [str(r)[:200] for r in results]
    assert throttled, [str(r)[:200] for r in results]
    for r in throttled:
        assert_error(r, "Throttling", 400)
        # AWS's shape, which botocore retries by its code: Sender, "Rate exceeded".
        assert "<Type>Sender</Type>" in r.body and r.message == "Rate exceeded", r
    assert keyless.issued_total() == len(ok)
    # Each throttled call has its audit record, with the error and no credentials.
    import json
    import subprocess
    from keyless_e2e import keyless_bin
    cp = subprocess.run([str(keyless_bin()), "audit", "query", "--config", str(keyless.config), "--format", "json",
                         "--event-name", "AssumeRoleWithWebIdentity"],
                        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, cp.stderr
    records = [json.loads(line) for line in cp.stdout.splitlines() if line.strip()]
    refused = [r for r in records if r.get("errorCode") == "Throttling"]
    assert len(refused) == len(throttled), [r.get("errorCode") for r in records]
    assert all("responseElements" not in r or not r["responseElements"] for r in refused), refused[0]
    # Another role is a separate bucket.
    other = keyless.awiwi(token, role="gha-any-branch", session="other-bucket")
    assert other.status == 200, other


def test_throttling_sdk_backs_off(own_stack) -> None:
    """boto3 retries Throttling and eventually succeeds once the bucket refills."""
    issuer, keyless = own_stack(throttle=(2.0, 1))
    token = issuer.gha_token()
    client = keyless.boto3_client(max_attempts=6)
    drained = [keyless.awiwi(token, session=f"drain{i}") for i in range(3)]
    assert any(r.code == "Throttling" for r in drained), [str(r)[:200] for r in drained]
    out = client.assume_role_with_web_identity(RoleArn=keyless.role_arn("gha"), RoleSessionName="backoff",
                                               WebIdentityToken=token)
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    assert out["ResponseMetadata"]["RetryAttempts"] >= 1
