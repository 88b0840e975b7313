"""Issue 3: issuer keys rotated mid-run, the keyless key ring rotated under live sessions, and the
per-(role, source) token bucket answering Throttling as AWS does."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from keyless_e2e import Keyless, assert_error, assert_no_credentials, keyless_bin


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


def throttle_records(keyless: Keyless) -> list[dict[str, Any]]:
    """The audit records of throttled AssumeRoleWithWebIdentity calls (summaries included)."""
    cp = subprocess.run([str(keyless_bin()), "audit", "query", "--data-dir", str(keyless.data_dir), "--format",
                         "json", "--event-name", "AssumeRoleWithWebIdentity", "--error-code", "Throttling"],
                        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, cp.stderr
    return [json.loads(line) for line in cp.stdout.splitlines() if line.strip()]


def accounted(records: list[dict[str, Any]]) -> int:
    """The calls the records account for: one each, or a summary's aggregatedCalls."""
    return sum(int((r.get("additionalEventData") or {}).get("aggregatedCalls", 1)) for r in records)


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
    # Every throttled call is accounted for in the audit log: the first in a record of its own,
    # the rest of this source's in a summary record (written once the source is quiet for 5 s),
    # each with the error and no credentials.
    deadline = time.monotonic() + 20
    while True:
        refused = throttle_records(keyless)
        if accounted(refused) == len(throttled) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert accounted(refused) == len(throttled), refused
    assert len([r for r in refused if "aggregatedCalls" not in (r.get("additionalEventData") or {})]) == 1, refused
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


def test_a_throttled_flood_is_one_record_and_a_summary_and_survives_sigterm(own_stack) -> None:
    """Issue 6 bounded: a flood of throttled calls from one source costs its first record and a
    summary, not a record per call. The client still gets AWS's Throttling and no credentials;
    the summary's count makes up the rest; the chain verifies; SIGTERM writes what is pending."""
    issuer, keyless = own_stack(throttle=(0.5, 3))
    token = issuer.gha_token()
    body = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": keyless.role_arn("gha"),
            "RoleSessionName": "flood", "WebIdentityToken": token}
    calls = 600

    def one(_: int) -> tuple[int, str]:
        with requests.Session() as s:
            r = s.post(keyless.url + "/", data=body, timeout=30,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
            return r.status_code, r.text

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(one, range(calls)))
    from keyless_e2e import StsResult
    results = [StsResult.parse(status, text) for status, text in answers]
    ok = [r for r in results if r.status == 200]
    throttled = [r for r in results if r.code == "Throttling"]
    assert len(ok) + len(throttled) == calls, [str(r)[:200] for r in results if r.status != 200 and r.code != "Throttling"]
    assert 3 <= len(ok) <= 10, len(ok)
    for r in throttled:
        assert_error(r, "Throttling", 400)
        assert "<Type>Sender</Type>" in r.body and r.message == "Rate exceeded", r
        assert_no_credentials(r)
    assert keyless.issued_total() == len(ok)
    folded = re.search(r'^keyless_audit_folded_calls_total\{code="Throttling"\} (\S+)$', keyless.metrics(), re.M)
    assert folded and float(folded.group(1)) == len(throttled) - 1, folded
    # Stopped at once, before the source has been quiet long enough for the summary: the
    # shutdown writes it.
    keyless.proc.send_signal(signal.SIGTERM)
    assert keyless.proc.wait(timeout=20) == 0, keyless.stderr()[-3000:]
    refused = throttle_records(keyless)
    summaries = [r for r in refused if "aggregatedCalls" in (r.get("additionalEventData") or {})]
    assert len(refused) - len(summaries) == 1, refused
    assert len(summaries) == 1, summaries
    summary = summaries[0]
    data = summary["additionalEventData"]
    assert data["aggregatedCalls"] == len(throttled) - 1, data
    assert accounted(refused) == len(throttled)
    assert summary["errorCode"] == "Throttling" and summary["errorMessage"] == "Rate exceeded"
    assert summary["decision"] == "deny" and summary["sourceIPAddress"] == "127.0.0.1"
    assert summary["eventSource"] == "sts.amazonaws.com" and not summary.get("responseElements")
    assert data["firstEventTime"] <= data["lastEventTime"]
    throttled_ids = {r.values.get("RequestId") for r in throttled}
    assert summary["requestID"] in throttled_ids and data["lastRequestID"] in throttled_ids
    # Far fewer records than calls: the issued ones, one refusal and one summary (and digests).
    cp = subprocess.run([str(keyless_bin()), "audit", "query", "--data-dir", str(keyless.data_dir), "--format", "json"],
                        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, cp.stderr
    everything = [json.loads(line) for line in cp.stdout.splitlines() if line.strip()]
    assert len(everything) == len(ok) + 2, [(r["eventName"], r.get("errorCode")) for r in everything]
    verify = subprocess.run([str(keyless_bin()), "audit", "verify", "--data-dir", str(keyless.data_dir)],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert verify.returncode == 0, verify.stdout + verify.stderr
