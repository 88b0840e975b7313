"""The audit trail end to end: real binary, real issuer, boto3 and the AWS CLI.

- issued credentials are found by repository, access key id and subject; failures carry errorCode;
- no secret access key, session token or WebIdentityToken appears in the log files;
- tampering (flip a byte, delete a record, swap two) is detected and located by `keyless audit verify`,
  and by the readers (`audit query`, `audit tail` with and without `--follow`, `sessions list`,
  `report credentials`), which print what they read, warn on stderr and exit 1;
- a line longer than any record (64 MiB without a newline) is a problem, read with bounded memory;
- kill -9 under concurrent AssumeRoleWithWebIdentity load loses no access key id a client received;
- a log that cannot be written fails issuance closed (503 ServiceUnavailable) and /readyz says why;
- rotation spans files; `sessions list`, `report credentials`, `/v1/authorize` decisions;
- retention removes old files after a signed retention record, and the rest still verifies;
- the benchmark switch cannot serve as a ready server.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from keyless_e2e import (ACCOUNT, REPO, AuditClock, Issuer, Keyless, _stop, _wait_for_line, default_config, keyless_bin,
                         start_issuer, start_keyless)


def run_cli(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    cp = subprocess.run([str(keyless_bin()), *args], capture_output=True, text=True, timeout=120,
                        stdin=subprocess.DEVNULL)
    if check and cp.returncode != 0:
        raise AssertionError(f"keyless {' '.join(args)} -> {cp.returncode}\n{cp.stdout}\n{cp.stderr}")
    return cp


def query(srv: Keyless, *filters: str) -> list[dict[str, Any]]:
    cp = run_cli("audit", "query", "--data-dir", str(srv.data_dir), "--format", "json", *filters, check=True)
    return [json.loads(line) for line in cp.stdout.splitlines() if line.strip()]


def issued_key(record: dict[str, Any]) -> str | None:
    return ((record.get("responseElements") or {}).get("credentials") or {}).get("accessKeyId")


def audit_bytes(srv: Keyless) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((srv.data_dir / "audit").glob("audit-*.jsonl")))


def stop_clean(srv: Keyless) -> None:
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(timeout=20)


@pytest.fixture
def stack(workdir: Path):
    procs: list[subprocess.Popen] = []

    def make(extra: str = "", throttle: tuple[float, int] | None = None, sub: str = "keyless",
             env: dict[str, str] | None = None) -> tuple[Issuer, Keyless]:
        iss = start_issuer(workdir)
        procs.append(iss.proc)
        cfg = default_config(iss, workdir / sub / "data", throttle) + extra
        srv = start_keyless(workdir / sub, cfg, env=env)
        procs.append(srv.proc)
        return iss, srv

    yield make
    for p in reversed(procs):
        _stop(p)


def test_issued_credentials_are_traceable_and_no_secret_is_logged(stack) -> None:
    issuer, srv = stack()
    main_token = issuer.gha_token()
    feature_token = issuer.gha_token(ref="refs/heads/feature")
    # boto3
    sts = srv.boto3_client()
    r1 = sts.assume_role_with_web_identity(RoleArn=srv.role_arn("gha"), RoleSessionName="boto",
                                           WebIdentityToken=main_token)
    c1 = r1["Credentials"]
    # AWS CLI v1
    cp = srv.aws("sts", "assume-role-with-web-identity", "--role-arn", srv.role_arn("gha-any-branch"),
                 "--role-session-name", "cli", "--web-identity-token", feature_token)
    c2 = json.loads(cp.stdout)["Credentials"]
    # A use of the first session, recorded as "last used".
    who = srv.boto3_client(creds=c1).get_caller_identity()
    assert who["Arn"].endswith("assumed-role/gha/boto")
    # Failures: a token the trust policy refuses, a garbage token, a missing parameter.
    denied = srv.awiwi(issuer.gha_token(repo="evil/repo"), role="gha", session="evil")
    assert denied.code == "AccessDenied", denied
    garbage = srv.awiwi("not-a-jwt-" + secrets.token_hex(8), role="gha", session="bad")
    assert garbage.code == "InvalidIdentityToken", garbage
    missing = srv.sts_raw({"Action": "AssumeRoleWithWebIdentity", "RoleArn": srv.role_arn("gha")})
    assert missing.code == "ValidationError", missing

    # By repository: both sessions (the denied one is another repository).
    by_repo = query(srv, "--repository", REPO)
    keys = {issued_key(r) for r in by_repo}
    assert {c1["AccessKeyId"], c2["AccessKeyId"]} <= keys, by_repo
    # By access key id: the issuance and the GetCallerIdentity made with it.
    by_key = query(srv, "--access-key-id", c1["AccessKeyId"])
    assert [r["eventName"] for r in by_key] == ["AssumeRoleWithWebIdentity", "GetCallerIdentity"], by_key
    issue = by_key[0]
    assert issue["eventSource"] == "sts.amazonaws.com"
    assert issue["userIdentity"]["type"] == "WebIdentityUser"
    fed = issue["userIdentity"]["sessionContext"]["webIdFederationData"]
    assert fed["federatedProvider"] == issuer.provider_arn
    attrs = fed["attributes"]
    assert attrs["sub"] == f"repo:{REPO}:ref:refs/heads/main"
    assert attrs["aud"] == "sts.amazonaws.com"
    assert attrs["repository"] == REPO and attrs["ref"] == "refs/heads/main"
    assert attrs["run_id"] == "4242" and attrs["job_workflow_ref"].startswith(f"{REPO}/.github/workflows/ci.yml@")
    assert issue["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] == srv.role_arn("gha")
    assert issue["responseElements"]["credentials"]["accessKeyId"] == c1["AccessKeyId"]
    assert issue["responseElements"]["assumedRoleUser"]["arn"].endswith("assumed-role/gha/boto")
    assert issue["requestParameters"] == {"roleArn": srv.role_arn("gha"), "roleSessionName": "boto"}
    assert issue["userAgent"].startswith("Boto3/") and issue["sourceIPAddress"] == "127.0.0.1"
    assert issue["requestID"] == r1["ResponseMetadata"]["RequestId"]
    use = by_key[1]
    assert use["userIdentity"]["type"] == "AssumedRole"
    assert use["userIdentity"]["accessKeyId"] == c1["AccessKeyId"]
    assert use["readOnly"] is True
    # By subject.
    by_sub = query(srv, "--subject", "repo:octo-org/demo:ref:refs/heads/feature")
    assert [issued_key(r) for r in by_sub] == [c2["AccessKeyId"]]
    assert by_sub[0]["userAgent"].startswith("aws-cli/")
    # Failures carry errorCode and decision.
    codes = [(r["errorCode"], r["decision"]) for r in query(srv, "--decision", "deny")]
    assert ("AccessDenied", "deny") in codes and ("InvalidIdentityToken", "deny") in codes
    assert ("ValidationError", "deny") in codes
    assert [r["requestParameters"]["roleSessionName"] for r in query(srv, "--error-code", "AccessDenied")] == ["evil"]
    assert query(srv, "--role", "gha-any-branch", "--decision", "allow")[0]["eventName"] == "AssumeRoleWithWebIdentity"
    # Time filters.
    assert query(srv, "--since", "2100-01-01T00:00:00Z") == []
    assert len(query(srv, "--until", "2100-01-01T00:00:00Z")) == 6
    bad = run_cli("audit", "query", "--data-dir", str(srv.data_dir), "--since", "yesterday")
    assert bad.returncode == 2 and "RFC 3339" in bad.stderr

    # Sessions and the credential report.
    listed = run_cli("sessions", "list", "--data-dir", str(srv.data_dir), "--format", "json", check=True)
    sessions = {s["accessKeyId"]: s for s in map(json.loads, listed.stdout.splitlines())}
    assert set(sessions) == {c1["AccessKeyId"], c2["AccessKeyId"]}
    assert sessions[c1["AccessKeyId"]]["lastUsed"] is not None
    assert sessions[c2["AccessKeyId"]]["lastUsed"] is None
    only = run_cli("sessions", "list", "--config", str(srv.config), "--subject",
                   f"repo:{REPO}:ref:refs/heads/feature", "--format", "json", check=True)
    assert [json.loads(l)["accessKeyId"] for l in only.stdout.splitlines()] == [c2["AccessKeyId"]]
    report = run_cli("report", "credentials", "--data-dir", str(srv.data_dir), check=True)
    rows = report.stdout.splitlines()
    assert rows[0].startswith("user,arn,credential_type,access_key_id")
    assert len(rows) == 3 and all(",session," in r for r in rows[1:])
    assert "0 long-term credentials" in report.stderr

    # Text output names the essentials.
    text = run_cli("audit", "tail", "-n", "2", "--data-dir", str(srv.data_dir), check=True).stdout.splitlines()
    assert len(text) == 2 and "error=ValidationError" in text[-1]

    # No secret, session token or web identity token anywhere in the files.
    stop_clean(srv)
    raw = audit_bytes(srv)
    for secret in (c1["SecretAccessKey"], c1["SessionToken"], c2["SecretAccessKey"], c2["SessionToken"],
                   main_token, feature_token, main_token.split(".")[1], main_token.split(".")[2]):
        assert secret.encode() not in raw
    # The parameter itself is never recorded (only names like subjectFromWebIdentityToken are).
    for line in raw.splitlines():
        params = json.loads(line).get("requestParameters") or {}
        assert not any(k.lower() == "webidentitytoken" for k in params), params
    ok = run_cli("audit", "verify", "--config", str(srv.config))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "audit log OK" in ok.stdout and "1 signed digests" in ok.stdout


def _tamper_copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return next(dst.glob("audit-*.jsonl"))


def test_time_filters_take_any_offset_and_refuse_an_empty_window(stack) -> None:
    issuer, srv = stack()
    creds = srv.awiwi(issuer.gha_token(), session="window").credentials
    assert creds
    rec = next(r for r in query(srv) if issued_key(r) == creds["AccessKeyId"])
    at = dt.datetime.fromisoformat(rec["eventTime"].replace("Z", "+00:00"))
    # The same window written in another time zone finds the record.
    plus_one = dt.timezone(dt.timedelta(hours=1))
    since = (at - dt.timedelta(seconds=1)).astimezone(plus_one).isoformat()
    until = (at + dt.timedelta(seconds=1)).astimezone(plus_one).isoformat()
    assert creds["AccessKeyId"] in {issued_key(r) for r in query(srv, "--since", since, "--until", until)}
    before = audit_bytes(srv)
    # Swapped bounds, or equal ones, can match nothing: an error, not an empty answer.
    for cmd in (("audit", "query"), ("sessions", "list"), ("audit", "tail")):
        for a, b in ((until, since), (since, since)):
            cp = run_cli(*cmd, "--data-dir", str(srv.data_dir), "--since", a, "--until", b)
            assert cp.returncode == 2, (cmd, cp.returncode, cp.stdout, cp.stderr)
            assert "is not before --until" in cp.stderr and "no record can match" in cp.stderr, cp.stderr
            assert cp.stdout == "", cp.stdout
    cp = run_cli("audit", "query", "--data-dir", str(srv.data_dir), "--since", "2026-12-01 21:00:00")
    assert cp.returncode == 2 and "is not an RFC 3339 instant" in cp.stderr, cp.stderr
    assert audit_bytes(srv) == before


def test_sessions_list_refuses_filters_that_select_records_not_sessions(stack) -> None:
    issuer, srv = stack()
    assert srv.awiwi(issuer.gha_token(), session="only").credentials
    for flag, value in (("--decision", "deny"), ("--error-code", "AccessDenied"), ("--event-name", "AssumeRole")):
        cp = run_cli("sessions", "list", "--data-dir", str(srv.data_dir), flag, value)
        assert cp.returncode == 2, (flag, cp.returncode, cp.stdout)
        assert f"{flag} selects audit records, not sessions" in cp.stderr, cp.stderr
        assert cp.stdout == "", cp.stdout
    ok = run_cli("sessions", "list", "--data-dir", str(srv.data_dir), "--repository", REPO, check=True)
    assert "assumed-role/gha/only" in ok.stdout, ok.stdout


def test_tampering_is_detected_and_located(stack, workdir: Path) -> None:
    issuer, srv = stack()
    token = issuer.gha_token()
    for i in range(6):
        assert srv.awiwi(token, role="gha", session=f"s{i}").credentials
    stop_clean(srv)
    audit_dir = srv.data_dir / "audit"
    intact = run_cli("audit", "verify", str(audit_dir), "--data-dir", str(srv.data_dir))
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "7 records (1 signed digests)" in intact.stdout
    lines = next(audit_dir.glob("audit-*.jsonl")).read_bytes().splitlines(keepends=True)
    ids = [json.loads(l).get("eventID") for l in lines]

    # Flip one byte inside record 3 (line 3).
    f = _tamper_copy(audit_dir, workdir / "flip")
    data = bytearray(f.read_bytes())
    at = sum(len(l) for l in lines[:2]) + lines[2].index(b'"roleSessionName":"s2"') + len('"roleSessionName":"s')
    data[at] ^= 0x01
    f.write_bytes(bytes(data))
    cp = run_cli("audit", "verify", str(f.parent), "--data-dir", str(srv.data_dir))
    assert cp.returncode == 1, cp.stdout
    assert f"{f}:3: broken (seq 3, eventID {ids[2]})" in cp.stdout and "does not match its hash" in cp.stdout

    # Delete record 4.
    f = _tamper_copy(audit_dir, workdir / "delete")
    f.write_bytes(b"".join(lines[:3] + lines[4:]))
    cp = run_cli("audit", "verify", str(f), "--data-dir", str(srv.data_dir))
    assert cp.returncode == 1, cp.stdout
    assert f"{f}:4: missing (seq 5, eventID {ids[4]})" in cp.stdout and "seq 4 missing" in cp.stdout

    # Swap records 2 and 3.
    f = _tamper_copy(audit_dir, workdir / "swap")
    f.write_bytes(b"".join([lines[0], lines[2], lines[1]] + lines[3:]))
    cp = run_cli("audit", "verify", str(f), "--data-dir", str(srv.data_dir))
    assert cp.returncode == 1, cp.stdout
    assert f"{f}:2: reordered (seq 3, eventID {ids[2]})" in cp.stdout and f"seq 2 is later, at {f}:3" in cp.stdout

    # A rewritten chain signed with another key is refused when the ring pins the key.
    f = _tamper_copy(audit_dir, workdir / "forged")
    other = srv.data_dir.parent / "other-data"
    other.mkdir()
    ring = other / "keyring.json"
    ring.write_text(json.dumps({"format": "keyless-keyring-v1", "keys": [
        {"id": 1, "created_at": "2026-01-01T00:00:00Z", "secret": base64.b64encode(os.urandom(32)).decode()}]}))
    ring.chmod(0o600)
    cp = run_cli("audit", "verify", str(f), "--data-dir", str(other))
    assert cp.returncode == 1 and "bad signature" in cp.stdout, cp.stdout


READERS = (("audit", "query", "--format", "json"), ("audit", "tail", "-n", "3", "--format", "json"),
           ("sessions", "list", "--format", "json"), ("report", "credentials"))


def _readers(data_dir: Path) -> list[tuple[tuple[str, ...], subprocess.CompletedProcess]]:
    return [(r, run_cli(*r, "--data-dir", str(data_dir))) for r in READERS]


def _assert_readers_clean(data_dir: Path) -> None:
    for reader, cp in _readers(data_dir):
        assert cp.returncode == 0 and "warning" not in cp.stderr, (reader, cp.stdout, cp.stderr)
        assert cp.stdout.strip(), (reader, "printed nothing")


def _assert_readers_warn(data_dir: Path, located: str) -> None:
    """Every reader prints what it read, names the first problem on stderr and exits 1."""
    for reader, cp in _readers(data_dir):
        assert cp.returncode == 1, (reader, cp.returncode, cp.stderr)
        assert f"warning: the audit log does not verify: {located}" in cp.stderr, (reader, cp.stderr)
        assert f"run `keyless audit verify --data-dir {data_dir}` for the full report" in cp.stderr, cp.stderr
        assert cp.stdout.strip(), (reader, "printed nothing")


def test_readers_verify_the_chain_as_they_read(stack, workdir: Path) -> None:
    issuer, srv = stack()
    token = issuer.gha_token()
    keys = [srv.awiwi(token, role="gha", session=f"s{i}").credentials["AccessKeyId"] for i in range(6)]
    # The server is running and writing: nothing to warn about.
    _assert_readers_clean(srv.data_dir)
    stop_clean(srv)
    _assert_readers_clean(srv.data_dir)
    live = run_cli("audit", "tail", "-n", "1", "--data-dir", str(srv.data_dir), check=True)
    assert f"issued={keys[-1]}" in live.stdout, live.stdout
    lines = next((srv.data_dir / "audit").glob("audit-*.jsonl")).read_bytes().splitlines(keepends=True)
    assert len(lines) == 7 and json.loads(lines[-1])["recordType"] == "digest"

    def tampered(name: str, new_lines: list[bytes], tail: bytes = b"") -> tuple[Path, Path]:
        data = workdir / name
        shutil.copytree(srv.data_dir, data)
        f = next((data / "audit").glob("audit-*.jsonl"))
        f.write_bytes(b"".join(new_lines) + tail)
        return data, f

    # A record being written (a torn final line) is not tampering.
    data, _ = tampered("torn", lines, lines[2][:40])
    _assert_readers_clean(data)

    # The issuance record of live session s3 deleted: sessions list no longer shows it, and says
    # the log does not verify.
    data, f = tampered("delete", lines[:3] + lines[4:])
    _assert_readers_warn(data, f"{f}:4: missing (seq 5")
    listed = run_cli("sessions", "list", "--data-dir", str(data), "--format", "json")
    assert {json.loads(l)["accessKeyId"] for l in listed.stdout.splitlines()} == set(keys) - {keys[3]}

    # One byte altered in record 3.
    altered = bytearray(lines[2])
    at = altered.index(b'"roleSessionName":"s2"') + len('"roleSessionName":"s')
    altered[at] ^= 0x01
    data, f = tampered("flip", lines[:2] + [bytes(altered)] + lines[3:])
    _assert_readers_warn(data, f"{f}:3: broken (seq 3")

    # Records 2 and 3 swapped.
    data, f = tampered("swap", [lines[0], lines[2], lines[1]] + lines[3:])
    _assert_readers_warn(data, f"{f}:2: reordered (seq 3")

    # A forged record appended (a copy of an issuance, given the next seq and the last hash).
    forged = json.loads(lines[1])
    forged["seq"], forged["prevHash"] = 8, json.loads(lines[-1])["hash"]
    data, f = tampered("forged", lines + [json.dumps(forged, separators=(",", ":")).encode() + b"\n"])
    _assert_readers_warn(data, f"{f}:8: broken (seq 8")
    report = run_cli("report", "credentials", "--data-dir", str(data))
    assert "does not match its hash" in report.stderr, report.stderr

    # Every file removed (a server creates the first at start-up): verify finds nothing to
    # verify and exits 1; the readers must not answer "no records, all well".
    data = workdir / "wiped"
    shutil.copytree(srv.data_dir, data)
    for f in (data / "audit").glob("audit-*.jsonl"):
        f.unlink()
    for reader, cp in _readers(data):
        assert cp.returncode == 1, (reader, cp.returncode, cp.stdout, cp.stderr)
        assert "warning: the audit log does not verify: no audit files" in cp.stderr, (reader, cp.stderr)
    v = run_cli("audit", "verify", "--data-dir", str(data))
    assert v.returncode == 1 and "no audit files found" in v.stdout, v.stdout + v.stderr


def test_a_huge_line_is_a_problem_read_with_bounded_memory(stack, workdir: Path) -> None:
    issuer, srv = stack()
    assert srv.awiwi(issuer.gha_token(), role="gha", session="big").credentials
    stop_clean(srv)
    data = workdir / "huge"
    shutil.copytree(srv.data_dir, data)
    f = next((data / "audit").glob("audit-*.jsonl"))
    with f.open("ab") as out:
        for _ in range(64):
            out.write(b"x" * (1 << 20))

    def run(args: tuple[str, ...], data_dir: Path) -> tuple[int, str, int]:
        out, err = workdir / "huge.out", workdir / "huge.err"
        proc = subprocess.Popen([str(keyless_bin()), *args, "--data-dir", str(data_dir)], stdout=out.open("wb"),
                                stderr=err.open("wb"), stdin=subprocess.DEVNULL)
        # Reaped here, for the peak resident size of that process alone (KiB on Linux; it counts
        # the forked interpreter too, hence the comparison with the same command on a small log).
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        return proc.returncode, out.read_text() + err.read_text(), usage.ru_maxrss

    for args in (("audit", "verify"), ("audit", "query")):
        code, text, rss = run(args, data)
        assert code == 1, text
        assert f"{f}:3: broken" in text and "67108864 bytes without a newline end the newest file" in text, text
        base_code, _, base_rss = run(args, srv.data_dir)
        assert base_code == 0
        assert rss - base_rss < 16 * 1024, f"{args}: peak RSS {rss} KiB against {base_rss} KiB on the intact log"


def test_tail_follow_warns_the_moment_the_chain_breaks(stack) -> None:
    issuer, srv = stack()
    token = issuer.gha_token()
    out, err = srv.workdir / "follow.out", srv.workdir / "follow.err"
    proc = subprocess.Popen([str(keyless_bin()), "audit", "tail", "-f", "-n", "0", "--data-dir", str(srv.data_dir)],
                            stdout=out.open("wb"), stderr=err.open("wb"), stdin=subprocess.DEVNULL)
    try:
        time.sleep(1)  # past its first read: -n 0 prints only what comes after
        first = srv.awiwi(token, role="gha", session="before").credentials["AccessKeyId"]
        _wait_for_line(out, re.compile(f"issued={first}"), proc, 10, "keyless audit tail -f", err)
        assert err.read_text() == ""
        # An insider appends a forged line to the file being written.
        f = sorted((srv.data_dir / "audit").glob("audit-*.jsonl"))[-1]
        last = json.loads(f.read_bytes().splitlines()[-1])
        forged = dict(last, seq=last["seq"] + 1, prevHash=last["hash"])
        with f.open("ab") as w:
            w.write(json.dumps(forged, separators=(",", ":")).encode() + b"\n")
        _wait_for_line(err, re.compile(rf"does not verify: {re.escape(str(f))}:\d+: broken \(seq {forged['seq']}"),
                       proc, 10, "keyless audit tail -f (stderr)", err)
        # It goes on printing what is written.
        after = srv.awiwi(token, role="gha", session="after").credentials["AccessKeyId"]
        _wait_for_line(out, re.compile(f"issued={after}"), proc, 10, "keyless audit tail -f", err)
        assert err.read_text().count("does not verify") == 1, err.read_text()
    finally:
        _stop(proc)


def test_kill_9_under_load_loses_no_acknowledged_credential(stack) -> None:
    issuer, srv = stack(throttle=(100000.0, 100000))
    token = issuer.gha_token()
    received: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []

    def worker(n: int) -> None:
        s = requests.Session()
        i = 0
        while not stop.is_set():
            i += 1
            try:
                r = s.post(srv.url + "/", data={"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
                                                "RoleArn": srv.role_arn("gha"), "RoleSessionName": f"w{n}-{i}",
                                                "WebIdentityToken": token}, timeout=10)
            except requests.RequestException:
                return  # the server died mid-request: that client got nothing
            m = re.search(r"<AccessKeyId>(ASIA[A-Z0-9]+)</AccessKeyId>", r.text)
            if m:
                with lock:
                    received.append(m.group(1))
            elif r.status_code != 200:
                errors.append(r.text[:300])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    time.sleep(2.5)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(timeout=10)
    stop.set()
    for t in threads:
        t.join(timeout=15)
    assert not errors, errors[:3]
    assert len(received) > 50, f"only {len(received)} credentials issued under load"

    # Before any restart: verify tolerates (and reports) at most a torn final line.
    before = run_cli("audit", "verify", "--data-dir", str(srv.data_dir))
    assert before.returncode == 0, before.stdout + before.stderr
    logged = {issued_key(r) for r in query(srv, "--event-name", "AssumeRoleWithWebIdentity")}
    missing = set(received) - logged
    assert not missing, f"{len(missing)} acknowledged credentials are not in the audit log: {sorted(missing)[:5]}"

    # Restart on the same data: the chain continues and verifies.
    srv2 = start_keyless(srv.workdir, srv.config.read_text())
    try:
        assert srv2.awiwi(token, role="gha", session="after").credentials
    finally:
        stop_clean(srv2)
    after = run_cli("audit", "verify", "--data-dir", str(srv.data_dir))
    assert after.returncode == 0, after.stdout + after.stderr
    assert "torn" not in after.stderr
    stats = f"{len(received)} issued before kill -9"
    print(stats)


def test_unwritable_log_fails_issuance_closed(stack) -> None:
    issuer, srv = stack(extra="\n[audit]\nmax_file_bytes = 1024\n")
    token = issuer.gha_token()
    assert srv.awiwi(token, role="gha", session="ok").credentials
    assert requests.get(srv.url + "/readyz", timeout=5).status_code == 200
    # The next commit must rotate; put a directory where each possible next file would go
    # (root cannot open those as files either). The file being written stays in place.
    audit_dir = srv.data_dir / "audit"
    for seq in range(1, 200):
        path = audit_dir / f"audit-{seq:020}.jsonl"
        if not path.exists():
            path.mkdir()
    res = srv.awiwi(token, role="gha", session="refused")
    assert res.status == 503 and res.code == "ServiceUnavailable", res
    assert "<Type>Receiver</Type>" in res.body and "AccessKeyId" not in res.body
    again = srv.awiwi(token, role="gha", session="refused-again")
    assert again.status == 503 and again.credentials is None
    ready = requests.get(srv.url + "/readyz", timeout=5)
    assert ready.status_code == 503
    assert "audit log: failed, issuance refused until restart" in ready.text
    assert "cannot create a new audit file" in ready.text


def test_removing_the_file_being_written_fails_issuance_closed(stack) -> None:
    issuer, srv = stack()
    token = issuer.gha_token()
    assert srv.awiwi(token, role="gha", session="ok").credentials
    (current,) = sorted((srv.data_dir / "audit").glob("audit-*.jsonl"))
    current.unlink()
    res = srv.awiwi(token, role="gha", session="unrecorded")
    assert res.status == 503 and res.code == "ServiceUnavailable" and res.credentials is None, res
    ready = requests.get(srv.url + "/readyz", timeout=5)
    assert ready.status_code == 503
    assert f"{current} was removed or replaced while it was being written" in ready.text, ready.text


def test_readyz_notices_a_removed_audit_file_before_any_request_does(stack) -> None:
    """The log's file gone while no request came: before, /readyz said `audit log: ok` (200),
    and the load balancer kept sending requests that could only fail."""
    issuer, srv = stack()
    assert srv.awiwi(issuer.gha_token(), role="gha", session="ok").credentials
    (current,) = sorted((srv.data_dir / "audit").glob("audit-*.jsonl"))
    current.unlink()
    ready = requests.get(srv.url + "/readyz", timeout=5)
    assert ready.status_code == 503, ready.text
    assert f"audit log: {current} was removed or replaced" in ready.text, ready.text


def test_rotation_tail_and_verify_across_files(stack) -> None:
    issuer, srv = stack(extra="\n[audit]\nmax_file_bytes = 4096\ndigest_every_records = 3\n")
    token = issuer.gha_token()
    keys = [srv.awiwi(token, role="gha", session=f"r{i}").credentials["AccessKeyId"] for i in range(8)]
    stop_clean(srv)
    files = sorted((srv.data_dir / "audit").glob("audit-*.jsonl"))
    assert len(files) >= 3, files
    cp = run_cli("audit", "verify", "--config", str(srv.config))
    assert cp.returncode == 0 and f"in {len(files)} file(s)" in cp.stdout, cp.stdout + cp.stderr
    assert [issued_key(r) for r in query(srv)] == keys
    tail = run_cli("audit", "tail", "-n", "3", "--format", "json", "--data-dir", str(srv.data_dir), check=True)
    assert [issued_key(json.loads(l)) for l in tail.stdout.splitlines()] == keys[-3:]
    # Removing a middle file is a missing range located at the next file.
    files[1].unlink()
    cp = run_cli("audit", "verify", "--data-dir", str(srv.data_dir))
    assert cp.returncode == 1 and f"{files[2]}:1: missing" in cp.stdout, cp.stdout


def test_retention_removes_old_files_and_the_rest_still_verifies(stack, workdir: Path) -> None:
    clock = AuditClock(workdir)
    issuer, srv = stack(extra="\n[audit]\nmax_file_bytes = 4096\ndigest_every_records = 3\nretention_days = 1\n",
                        env=clock.env())
    token = issuer.gha_token()
    old_keys = [srv.awiwi(token, role="gha", session=f"old{i}").credentials["AccessKeyId"] for i in range(8)]
    audit_dir = srv.data_dir / "audit"
    files = sorted(audit_dir.glob("audit-*.jsonl"))
    assert len(files) >= 3, files
    # Someone who may write the directory, but not read the key ring, dates every file two days
    # back. Retention judges age by the signed digest closing each file, so nothing goes,
    # however many rotations prompt a pass.
    two_days_ago = time.time() - 2 * 86400
    for f in files:
        os.utime(f, (two_days_ago, two_days_ago))
    rotations = len(files)
    while len(sorted(audit_dir.glob("audit-*.jsonl"))) < rotations + 3:
        srv.awiwi(token, role="gha", session=f"mid{rotations}")
    time.sleep(1)
    srv.awiwi(token, role="gha", session="mid-last")
    assert all(f.exists() for f in files), "a backdated mtime must not remove records"
    assert "keyless_audit_retention_removed_files_total 0" in srv.metrics()

    # Two days later (the writer's clock moved by the debug-build test hook), every closed file
    # is past retention, each dated by its signed closing digest.
    files = sorted(audit_dir.glob("audit-*.jsonl"))
    clock.advance(2)
    # The next rotation prompts a retention pass.
    new_keys: list[str] = []
    deadline = time.monotonic() + 30
    # One pass removes them oldest first, so wait for the last of them, not the first.
    while any(f.exists() for f in files[:-1]):
        assert time.monotonic() < deadline, "files past retention are removed after the next rotation"
        new_keys.append(srv.awiwi(token, role="gha", session=f"new{len(new_keys)}").credentials["AccessKeyId"])
    removed = [line for line in srv.metrics().splitlines()
               if line.startswith("keyless_audit_retention_removed_files_total ")]
    assert removed == [f"keyless_audit_retention_removed_files_total {len(files) - 1}"], removed
    stop_clean(srv)

    kept = sorted(audit_dir.glob("audit-*.jsonl"))
    records = [json.loads(line) for f in kept for line in f.read_text().splitlines()]
    retention = [r for r in records if r["recordType"] == "retention"]
    assert len(retention) == 1, retention
    assert retention[0]["removedFiles"] == [f.name for f in files[:-1]]
    assert retention[-1]["retainedFromSeq"] == records[0]["seq"] > 1
    assert retention[-1]["retainedFromPrevHash"] == records[0]["prevHash"]
    for r in retention:
        after = records[records.index(r) + 1]
        assert after["recordType"] == "digest" and after["lastSeq"] == r["seq"], after

    cp = run_cli("audit", "verify", "--config", str(srv.config))
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert f"seq {records[0]['seq']}.." in cp.stdout and "removed by retention" in cp.stderr, cp.stdout + cp.stderr
    # What was kept is still queried; the removed files' credentials are gone from it.
    found = [issued_key(r) for r in query(srv)]
    assert found[-len(new_keys):] == new_keys
    assert old_keys[0] not in found
    # A file removed by hand is not something retention accounts for.
    kept[0].unlink()
    cp = run_cli("audit", "verify", "--data-dir", str(srv.data_dir))
    assert cp.returncode == 1 and f"{kept[1]}:1: missing" in cp.stdout, cp.stdout
    assert "no signed retention record" in cp.stdout, cp.stdout


def test_retention_below_a_day_is_refused_at_start_up(workdir: Path) -> None:
    iss = start_issuer(workdir)
    try:
        cfg = workdir / "short.toml"
        cfg.write_text(default_config(iss, workdir / "data") + "\n[audit]\nretention_days = 0\n")
        cp = subprocess.run([str(keyless_bin()), "serve", "--config", str(cfg), "--listen", "127.0.0.1:0"],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert cp.returncode != 0
        assert f"{cfg}:" in cp.stderr and "retention_days must be 1-36500" in cp.stderr, cp.stderr
        assert not (workdir / "data" / "audit").exists()
    finally:
        _stop(iss.proc)


def test_tail_follow_prints_new_records(stack) -> None:
    issuer, srv = stack()
    token = issuer.gha_token()
    out = srv.workdir / "follow.out"
    proc = subprocess.Popen([str(keyless_bin()), "audit", "tail", "-f", "-n", "0", "--data-dir", str(srv.data_dir)],
                            stdout=out.open("wb"), stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        key = srv.awiwi(token, role="gha", session="followed").credentials["AccessKeyId"]
        _wait_for_line(out, re.compile(f"issued={key}"), proc, 10, "keyless audit tail -f", out)
    finally:
        _stop(proc)


def test_authorize_decisions_are_recorded(stack) -> None:
    token = secrets.token_hex(24)
    digest = hashlib.sha256(token.encode()).hexdigest()
    extra = f'\n[[authorize_clients]]\nname = "gw"\ntoken_sha256 = "{digest}"\n'
    issuer, srv = stack(extra=extra + "\n[audit]\nauthorize_allow_sample_rate = 0.0\n")
    issued = srv.awiwi(issuer.gha_token(), role="gha", session="authz")
    creds = issued.credentials
    import boto3
    from botocore.awsrequest import AWSRequest
    from botocore.auth import SigV4Auth
    from botocore.credentials import Credentials

    def signed(action: str, resource: str) -> dict[str, Any]:
        req = AWSRequest(method="GET", url="https://gw.example/bucket/key", headers={"host": "gw.example"})
        SigV4Auth(Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]),
                  action.split(":")[0], "us-east-1").add_auth(req)
        return {"method": "GET", "path": "/bucket/key", "query": "", "headers": [[k, v] for k, v in req.headers.items()],
                "action": action, "resource": resource, "body_sha256": hashlib.sha256(b"").hexdigest()}

    def call(body: dict[str, Any], bearer: str = token) -> dict[str, Any]:
        r = requests.post(srv.url + "/v1/authorize", json=body, headers={"Authorization": f"Bearer {bearer}"}, timeout=10)
        return r.json()

    # The gha role may sts:AssumeRole etc. but not s3:GetObject: an implicit deny.
    denied = call(signed("s3:GetObject", "arn:aws:s3:::bucket/key"))
    assert denied["allowed"] is False, denied
    allowed = call(signed("sts:GetAccessKeyInfo", "*"))
    assert allowed["allowed"] is True, allowed
    call(signed("s3:GetObject", "arn:aws:s3:::bucket/key"), bearer="wrong")
    time.sleep(0.3)  # authorize records are queued, not awaited; the next commit is ~1 ms away
    records = query(srv, "--event-name", "Authorize")
    # Allows are sampled at 0.0 here: only the deny and the unauthorized call are recorded.
    assert [(r["decision"], r.get("errorCode")) for r in records] == [("deny", "AccessDenied"), ("deny", "Unauthorized")]
    deny = records[0]
    assert deny["eventSource"] == "keyless" and deny["userIdentity"]["accessKeyId"] == creds["AccessKeyId"]
    # The session's ids, as CloudTrail writes an assumed role's: AROA...:session, the role's id,
    # and the OIDC provider the session came from.
    assumed_role_id = issued.values["AssumedRoleId"]
    assert assumed_role_id.endswith(":authz") and assumed_role_id.startswith("AROA"), assumed_role_id
    assert deny["userIdentity"]["principalId"] == assumed_role_id
    context = deny["userIdentity"]["sessionContext"]
    assert context["sessionIssuer"]["principalId"] == assumed_role_id.split(":")[0]
    assert context["webIdFederationData"]["federatedProvider"] == issuer.provider_arn
    assert deny["requestParameters"]["action"] == "s3:GetObject"
    assert deny["additionalEventData"]["client"] == "gw"
    assert query(srv, "--access-key-id", creds["AccessKeyId"], "--event-name", "Authorize") == [deny]
    raw = audit_bytes(srv)
    assert creds["SessionToken"].encode() not in raw and creds["SecretAccessKey"].encode() not in raw
    assert b"Signature=" not in raw


def test_benchmark_switch_is_never_ready(workdir: Path) -> None:
    binary = str(keyless_bin())
    out, err = workdir / "bench.out", workdir / "bench.err"
    proc = subprocess.Popen([binary, "serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", str(workdir / "d"),
                             "--unsafe-disable-audit-for-benchmark"],
                            stdout=out.open("wb"), stderr=err.open("wb"), stdin=subprocess.DEVNULL)
    try:
        m = _wait_for_line(out, re.compile(r"keyless listening on (http://127\.0\.0\.1:\d+)"), proc, 30, "serve", err)
        time.sleep(0.3)
        r = requests.get(m.group(1) + "/readyz", timeout=5)
        assert r.status_code == 503 and "DISABLED by --unsafe-disable-audit-for-benchmark" in r.text
        assert "AUDIT DISABLED" in err.read_text()
        assert not (workdir / "d" / "audit").exists()
    finally:
        _stop(proc)
    cfg = workdir / "open.toml"
    cfg.write_text(f'listen = "0.0.0.0:0"\ndata_dir = "{workdir / "d2"}"\n')
    cp = subprocess.run([binary, "serve", "--config", str(cfg), "--unsafe-disable-audit-for-benchmark"],
                        capture_output=True, text=True, timeout=30)
    assert cp.returncode == 2, cp.stderr
    assert "--unsafe-disable-audit-for-benchmark is for local benchmarks only" in cp.stderr


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_text_output_escapes_control_characters_a_caller_chose(stack) -> None:
    """A refused token's issuer is recorded as it claimed it: an unauthenticated caller must not
    reach the operator's terminal through `audit tail` or `audit query`."""
    _issuer, srv = stack()
    now = int(time.time())
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k"}).encode())
    claims = {"iss": "https://evil.example/\u001b]0;owned\u0007\u001b[2J", "sub": "x",
              "aud": "sts.amazonaws.com", "iat": now, "exp": now + 300}
    payload = _b64url(json.dumps(claims).encode())
    res = srv.awiwi(f"{header}.{payload}.{_b64url(b'sig' * 30)}", role="gha", session="esc")
    assert res.status == 400 and res.code == "InvalidIdentityToken", res
    for cmd in ("tail", "query"):
        out = run_cli("audit", cmd, "--data-dir", str(srv.data_dir), check=True).stdout
        line = out.splitlines()[-1]
        assert "\x1b" not in out and "\x07" not in out, repr(out)
        assert "principal=https://evil.example/\\u{1b}]0;owned\\u{7}\\u{1b}[2J " in line, line


def test_a_token_sent_with_the_iam_version_is_not_recorded(stack) -> None:
    """A call with IAM's Version is recorded with IAM's parameters, before dispatch and whatever
    the action: the STS secrets and an UploadServerCertificate private key must stay out."""
    issuer, srv = stack()
    token = issuer.gha_token()
    res = srv.sts_raw({"Version": "2010-05-08", "Action": "AssumeRoleWithWebIdentity",
                       "RoleArn": srv.role_arn("gha"), "RoleSessionName": "v", "WebIdentityToken": token})
    assert res.status >= 400 and res.credentials is None, res
    key = "-----BEGIN PRIVATE KEY-----" + secrets.token_hex(16)
    res = srv.sts_raw({"Version": "2010-05-08", "Action": "UploadServerCertificate",
                       "ServerCertificateName": "web", "CertificateBody": "x", "PrivateKey": key})
    assert res.status >= 400, res
    raw = audit_bytes(srv)
    assert token.encode() not in raw and token.split(".")[2].encode() not in raw
    assert key.encode() not in raw
    records = [json.loads(l) for l in raw.splitlines()]
    params = [r["requestParameters"] for r in records if r.get("recordType") == "event"][-2:]
    assert params[0]["webIdentityToken"] == "HIDDEN_DUE_TO_SECURITY_REASONS", params
    assert params[1]["privateKey"] == "HIDDEN_DUE_TO_SECURITY_REASONS", params


def test_anonymous_garbage_costs_a_bounded_record_and_a_summary(stack) -> None:
    """Unsigned IAM calls with 150 long parameters and a 20 KB user agent, and web identity calls
    naming roles that do not exist (each a fresh throttle bucket, so never throttled): each kind
    from one source is its first record, cut to a bounded size, and one summary."""
    issuer, srv = stack()
    ua = "garbage/" + "u" * 20_000
    token = issuer.gha_token()
    fields = {"Action": "CreateRole", "Version": "2010-05-08", "RoleName": "x",
              **{f"Tag{i:03}": "v" * 1000 for i in range(150)}}
    n = 60
    with requests.Session() as s:
        for i in range(n):
            r = s.post(srv.url + "/", data=fields, timeout=30, headers={"User-Agent": ua})
            assert r.status_code == 403 and "MissingAuthenticationToken" in r.text, r.text[:300]
            r = s.post(srv.url + "/", timeout=30, data={
                "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/nope-{i}-{secrets.token_hex(4)}",
                "RoleSessionName": "probe", "WebIdentityToken": token})
            assert r.status_code == 403 and "AccessDenied" in r.text and "<Credentials>" not in r.text, r.text[:300]
        ready = s.get(srv.url + "/readyz", timeout=10)
    assert re.search(r"^audit volume: (LOW, )?\d+ MiB free", ready.text, re.M), ready.text
    text = srv.metrics()
    assert re.search(r"^keyless_audit_volume_free_bytes [1-9]\d*$", text, re.M), text
    for code in ("MissingAuthenticationToken", "AccessDenied"):
        m = re.search(rf'^keyless_audit_folded_calls_total{{code="{code}"}} (\S+)$', text, re.M)
        assert m and float(m.group(1)) == n - 1, (code, m)
    stop_clean(srv)
    for code, name in (("MissingAuthenticationToken", "CreateRole"), ("AccessDenied", "AssumeRoleWithWebIdentity")):
        records = query(srv, "--error-code", code)
        full = [r for r in records if "aggregatedCalls" not in (r.get("additionalEventData") or {})]
        summaries = [r for r in records if r not in full]
        assert len(full) == 1 and len(summaries) == 1, records
        assert summaries[0]["eventName"] == name and summaries[0]["additionalEventData"]["aggregatedCalls"] == n - 1
        assert summaries[0]["sourceIPAddress"] == "127.0.0.1"
    first = query(srv, "--error-code", "MissingAuthenticationToken")[0]
    # The record of a hostile call is bounded, and says what it left out.
    assert len(json.dumps(first)) < 16_000, len(json.dumps(first))
    assert len(first["userAgent"]) == 1024
    assert "left out" in first["requestParameters"]["keylessTruncated"], first["requestParameters"]
    # Far fewer records than the 120 calls; the chain verifies.
    assert len(query(srv)) == 4
    cp = run_cli("audit", "verify", "--data-dir", str(srv.data_dir))
    assert cp.returncode == 0, cp.stdout + cp.stderr


def test_a_flood_of_unauthorized_authorize_calls_is_one_record_and_a_summary(stack) -> None:
    """`/v1/authorize` without a configured client's token is anonymous: its first refusal is
    recorded, the rest of the source's are one summary (written at SIGTERM here)."""
    token = secrets.token_hex(24)
    digest = hashlib.sha256(token.encode()).hexdigest()
    _, srv = stack(extra=f'\n[[authorize_clients]]\nname = "gw"\ntoken_sha256 = "{digest}"\n')
    n = 50
    with requests.Session() as s:
        for _ in range(n):
            r = s.post(srv.url + "/v1/authorize", json={}, headers={"Authorization": "Bearer wrong"}, timeout=10)
            assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthorized", r.text
    stop_clean(srv)
    records = query(srv, "--event-name", "Authorize", "--error-code", "Unauthorized")
    summaries = [r for r in records if "aggregatedCalls" in (r.get("additionalEventData") or {})]
    assert len(records) == 2 and len(summaries) == 1, records
    assert summaries[0]["additionalEventData"]["aggregatedCalls"] == n - 1
    assert summaries[0]["eventSource"] == "keyless" and summaries[0]["eventType"] == "KeylessDecision"
    assert run_cli("audit", "verify", "--data-dir", str(srv.data_dir)).returncode == 0
