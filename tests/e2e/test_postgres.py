"""Issues 3 and 6: keyless on Postgres (`database_url`). The real binary keeps its state in a fresh
database of the test server (`KEYLESS_TEST_DATABASE_URL`, started by scripts/test), issues
credentials to boto3 through AssumeRoleWithWebIdentity, copies every audit record into the
`audit_events` table (the file stays the durable source, and a table outage neither blocks
issuance nor loses rows; retention never removes a file the table has not copied), revokes
through `keyless revoke --config` on Postgres, refuses an
unreachable database at start-up naming the host, and never shows the password.

Without KEYLESS_TEST_DATABASE_URL these tests are skipped locally and fail under CI=true."""
from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Iterator

import pytest
import requests
from botocore.exceptions import ClientError

from keyless_e2e import (REPO, AuditClock, Issuer, Keyless, _stop, default_config, free_port, keyless_bin, make_pki, start_issuer,
                         start_keyless)


def server_url() -> str:
    url = os.environ.get("KEYLESS_TEST_DATABASE_URL", "").strip()
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("KEYLESS_TEST_DATABASE_URL is not set and CI=true: the Postgres tests must run "
                        "(scripts/test starts a server)")
        pytest.skip("KEYLESS_TEST_DATABASE_URL is not set (scripts/test sets it)")
    return url


def psql_bin() -> str:
    found = shutil.which("psql") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)), None)
    if not found:
        pytest.fail("psql not found (the postgresql package provides it)")
    return found


def with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def psql(url: str, sql: str) -> list[list[str]]:
    """Runs one statement; rows as lists of strings (unaligned, tab-separated)."""
    cp = subprocess.run([psql_bin(), url, "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, f"psql failed: {cp.stderr}"
    return [line.split("\t") for line in cp.stdout.splitlines() if line]


def password_of(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).password or "")


@pytest.fixture(scope="module")
def database() -> str:
    """A fresh database on the test server; its URL."""
    base = server_url()
    name = f"keyless_e2e_{secrets.token_hex(6)}"
    psql(base, f"CREATE DATABASE {name}")
    return with_database(base, name)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[tuple[Issuer, Keyless, str]]:
    work = tmp_path_factory.mktemp("postgres")
    issuer = start_issuer(work)
    config = f'database_url = "{database}"\n' + default_config(issuer, work / "keyless" / "data")
    keyless = start_keyless(work / "keyless", config)
    try:
        yield issuer, keyless, database
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def issue(issuer: Issuer, keyless: Keyless, session: str) -> dict[str, str]:
    sts = keyless.boto3_client()
    out = sts.assume_role_with_web_identity(RoleArn=keyless.role_arn("gha"), RoleSessionName=session,
                                           WebIdentityToken=issuer.gha_token())
    return out["Credentials"]


def wait_rows(database: str, sql: str, within: float = 10.0) -> list[list[str]]:
    deadline = time.monotonic() + within
    while True:
        rows = psql(database, sql)
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def file_record(keyless: Keyless, access_key_id: str) -> dict:
    for f in sorted((keyless.data_dir / "audit").glob("audit-*.jsonl")):
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            if (rec.get("responseElements") or {}).get("credentials", {}).get("accessKeyId") == access_key_id:
                return rec
    raise AssertionError(f"no record issuing {access_key_id} in the audit files")


def test_state_lives_in_postgres_and_issuance_is_copied_to_the_audit_table(stack) -> None:
    issuer, keyless, database = stack
    # The config entities are in Postgres; the data dir has the key ring and the audit log only.
    assert ["gha"] in psql(database, "SELECT name FROM roles WHERE from_config ORDER BY name")
    assert not (keyless.data_dir / "keyless.db").exists()
    assert (keyless.data_dir / "audit").is_dir()

    creds = issue(issuer, keyless, "pg-audit")
    akid = creds["AccessKeyId"]
    rows = wait_rows(database, "SELECT seq, hash, event_name, event_source, principal, role_arn, subject, repository, "
                               "decision, coalesce(error_code, '-'), record->>'eventID', "
                               "to_char(event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
                               f"FROM audit_events WHERE issued_access_key_id = '{akid}'")
    assert len(rows) == 1, f"the issuance record did not reach audit_events: {keyless.stderr()[-2000:]}"
    seq, hsh, name, source, principal, role_arn, subject, repository, decision, code, event_id, when = rows[0]
    rec = file_record(keyless, akid)
    # The row is the file's record: same place in the chain, same hash, same event.
    assert (int(seq), hsh, event_id, when) == (rec["seq"], rec["hash"], rec["eventID"], rec["eventTime"])
    assert (name, source, decision, code) == ("AssumeRoleWithWebIdentity", "sts.amazonaws.com", "allow", "-")
    assert role_arn == keyless.role_arn("gha")
    assert subject == f"repo:{REPO}:ref:refs/heads/main" and repository == REPO
    assert principal.endswith(f":repo:{REPO}:ref:refs/heads/main"), principal

    # A signed call with the credentials is recorded with the caller's key id.
    keyless.boto3_client(creds).get_caller_identity()
    rows = wait_rows(database, f"SELECT event_name, role_arn FROM audit_events WHERE access_key_id = '{akid}'")
    assert rows == [["GetCallerIdentity", keyless.role_arn("gha")]]

    # A refusal lands too, with its error code.
    with pytest.raises(ClientError):
        keyless.boto3_client().assume_role_with_web_identity(
            RoleArn=keyless.role_arn("gha"), RoleSessionName="pg-bad", WebIdentityToken=issuer.forged("alg-none"))
    rows = wait_rows(database, "SELECT decision, error_code FROM audit_events WHERE error_code IS NOT NULL")
    assert ["deny", "InvalidIdentityToken"] in rows, rows

    r = requests.get(keyless.url + "/readyz", timeout=5)
    assert r.status_code == 200 and "store: ok" in r.text and "audit table: ok" in r.text, r.text
    metrics = keyless.metrics()
    assert "keyless_audit_table_rows_total" in metrics
    assert password_of(database) not in keyless.stderr()


def test_revoke_with_a_postgres_config(stack) -> None:
    issuer, keyless, database = stack
    victim, bystander = issue(issuer, keyless, "pg-victim"), issue(issuer, keyless, "pg-bystander")
    cp = subprocess.run([str(keyless_bin()), "revoke", "session", victim["AccessKeyId"], "--config", str(keyless.config),
                         "--reason", "pg test", "--format", "json"],
                        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["target"] == {"type": "session", "accessKeyId": victim["AccessKeyId"]}
    assert password_of(database) not in cp.stdout + cp.stderr
    assert psql(database, "SELECT kind, value, reason FROM revocations") == [["session", victim["AccessKeyId"], "pg test"]]
    # The running server recorded it once and marked the row with that record's seq.
    assert "audited by the running server" in cp.stderr, cp.stderr
    rid = json.loads(cp.stdout)["id"]
    logged = [json.loads(line) for f in sorted((keyless.data_dir / "audit").glob("audit-*.jsonl"))
              for line in f.read_text().splitlines()]
    recs = [r for r in logged
            if r.get("eventName") == "RevokeSessions" and (r.get("responseElements") or {}).get("id") == rid]
    assert len(recs) == 1, recs
    assert psql(database, f"SELECT audited_seq FROM revocations WHERE id = {int(rid)}") == [[str(recs[0]["seq"])]]
    deadline = time.monotonic() + 3
    while True:
        try:
            keyless.boto3_client(victim).get_caller_identity()
        except ClientError as e:
            assert (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]) == \
                ("InvalidClientTokenId", 403)
            break
        assert time.monotonic() < deadline, "the revoked session still works"
        time.sleep(0.05)
    keyless.boto3_client(bystander).get_caller_identity()
    listed = subprocess.run([str(keyless_bin()), "revoke", "list", "--config", str(keyless.config), "--format", "json"],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["target"]["accessKeyId"] for line in listed.stdout.splitlines()] == [victim["AccessKeyId"]]


def test_sessions_list_and_the_credential_report_read_revocations_from_postgres(stack) -> None:
    """With a `database_url` the revocations live in Postgres, not in the data dir: the readers
    must look there, not say "no store" and show a revoked session as live."""
    issuer, keyless, database = stack
    victim, bystander = issue(issuer, keyless, "pg-listed-victim"), issue(issuer, keyless, "pg-listed-bystander")
    cp = subprocess.run([str(keyless_bin()), "revoke", "session", victim["AccessKeyId"], "--config", str(keyless.config),
                         "--format", "json"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, cp.stderr
    rid = json.loads(cp.stdout)["id"]
    listed = subprocess.run([str(keyless_bin()), "sessions", "list", "--config", str(keyless.config), "--format", "json"],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert listed.returncode == 0, listed.stderr
    by_key = {s["accessKeyId"]: s for s in map(json.loads, listed.stdout.splitlines())}
    assert by_key[victim["AccessKeyId"]]["status"] == "revoked", by_key[victim["AccessKeyId"]]
    assert by_key[victim["AccessKeyId"]]["revocation"]["id"] == rid
    assert by_key[bystander["AccessKeyId"]]["status"] == "active", by_key[bystander["AccessKeyId"]]
    report = subprocess.run([str(keyless_bin()), "report", "credentials", "--config", str(keyless.config)],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert report.returncode == 0, report.stderr
    rows = {line.split(",")[3]: line.split(",")[4] for line in report.stdout.splitlines()[1:]}
    assert (rows[victim["AccessKeyId"]], rows[bystander["AccessKeyId"]]) == ("false", "true"), report.stdout
    for out in (listed, report):
        assert "no store" not in out.stderr, out.stderr
        assert password_of(database) not in out.stdout + out.stderr


def test_a_database_outage_blocks_nothing_and_the_table_catches_up(stack) -> None:
    issuer, keyless, database = stack
    name = urllib.parse.urlsplit(database).path.lstrip("/")
    admin = server_url()
    psql(admin, f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
    try:
        psql(admin, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        # /readyz pings the store at most once a second, so it may take that long to notice.
        deadline = time.monotonic() + 5
        while (r := requests.get(keyless.url + "/readyz", timeout=10)).status_code != 503:
            assert time.monotonic() < deadline, r.text
            time.sleep(0.2)
        assert "store: unreachable" in r.text, r.text
        # Issuance goes on: it never reads the database and the audit file is the durable record.
        creds = issue(issuer, keyless, "pg-outage")
        keyless.boto3_client(creds).get_caller_identity()
        deadline = time.monotonic() + 10
        while "audit table: behind" not in (text := requests.get(keyless.url + "/readyz", timeout=10).text):
            assert time.monotonic() < deadline, text
            time.sleep(0.1)
        failures = [line for line in keyless.metrics().splitlines() if line.startswith("keyless_audit_table_failures_total")]
        assert failures and float(failures[0].split()[-1]) >= 1, failures
    finally:
        psql(admin, f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
    rows = wait_rows(database, f"SELECT event_name FROM audit_events WHERE issued_access_key_id = '{creds['AccessKeyId']}'",
                     within=40)
    assert rows == [["AssumeRoleWithWebIdentity"]], "the table did not catch up after the outage"
    deadline = time.monotonic() + 10
    while requests.get(keyless.url + "/readyz", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "readyz did not recover"
        time.sleep(0.1)
    # Every event of the file is in the table, once, in chain order.
    events = [json.loads(line)["seq"] for f in sorted((keyless.data_dir / "audit").glob("audit-*.jsonl"))
              for line in f.read_text().splitlines() if '"recordType":"event"' in line[:120]]
    deadline = time.monotonic() + 10
    while (stored := [int(r[0]) for r in psql(database, "SELECT seq FROM audit_events ORDER BY seq")]) != events:
        assert time.monotonic() < deadline, (stored, events)
        time.sleep(0.1)


def test_unreachable_database_at_start_up_names_the_host_not_the_password(tmp_path: Path) -> None:
    server_url()
    port = free_port()
    secret = "pw-" + secrets.token_hex(8)
    cfg = tmp_path / "keyless.toml"
    cfg.write_text(f'database_url = "postgres://keyless:{secret}@127.0.0.1:{port}/keyless"\n'
                   f'data_dir = "{tmp_path / "data"}"\n')
    cp = subprocess.run([str(keyless_bin()), "serve", "--config", str(cfg), "--listen", "127.0.0.1:0"],
                        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert cp.returncode != 0
    msg = cp.stderr + cp.stdout
    assert f"cannot connect to Postgres at 127.0.0.1:{port} (database keyless, user keyless)" in msg, msg
    assert secret not in msg, msg
    # A URL that is not Postgres is a config error with its line, the URL not repeated.
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\ndatabase_url = "mysql://keyless:{secret}@db/keyless"\n')
    cp = subprocess.run([str(keyless_bin()), "serve", "--config", str(cfg), "--listen", "127.0.0.1:0"],
                        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    msg = cp.stderr + cp.stdout
    assert cp.returncode != 0 and "unsupported scheme \"mysql\"" in msg and ":2" in msg, msg
    assert secret not in msg, msg


def server_ca() -> Path:
    ca = os.environ.get("KEYLESS_TEST_DATABASE_CA", "").strip()
    if not ca:
        if os.environ.get("CI") == "true":
            pytest.fail("KEYLESS_TEST_DATABASE_CA is not set and CI=true (scripts/test sets it with its server)")
        pytest.skip("KEYLESS_TEST_DATABASE_CA is not set (scripts/test sets it)")
    return Path(ca)


def test_the_database_connection_is_tls_verified_against_sslrootcert(tmp_path: Path) -> None:
    """Managed Postgres (RDS since 15, Cloud SQL, Azure) wants TLS: keyless verifies the server
    with `sslmode=verify-full&sslrootcert=…`, and a server it cannot verify stops start-up."""
    base = server_url()
    name = f"keyless_tls_{secrets.token_hex(6)}"
    psql(base, f"CREATE DATABASE {name}")
    url = with_database(base, name)
    issuer = start_issuer(tmp_path)
    try:
        verified = f"{url}?sslmode=verify-full&sslrootcert={urllib.parse.quote(str(server_ca()))}"
        config = f'database_url = "{verified}"\n' + default_config(issuer, tmp_path / "keyless" / "data")
        srv = start_keyless(tmp_path / "keyless", config)
        try:
            assert issue(issuer, srv, "over-tls")["AccessKeyId"].startswith("ASIA")
            rows = psql(url, "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                             f"WHERE s.ssl AND a.datname = '{name}' AND a.pid <> pg_backend_pid()")
            assert int(rows[0][0]) >= 1, "keyless's connections use TLS"
        finally:
            _stop(srv.proc)

        other_ca, _, _ = make_pki(tmp_path / "other", "other")
        wrong = f"{url}?sslmode=verify-full&sslrootcert={urllib.parse.quote(str(other_ca))}"
        bad = tmp_path / "bad.toml"
        bad.write_text(f'database_url = "{wrong}"\n' + default_config(issuer, tmp_path / "bad-data"))
        cp = subprocess.run([str(keyless_bin()), "serve", "--config", str(bad), "--listen", "127.0.0.1:0"],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert cp.returncode != 0, cp.stdout
        assert "cannot connect to Postgres at 127.0.0.1" in cp.stderr, cp.stderr
        assert "certificate" in cp.stderr.lower(), cp.stderr
        assert password_of(url) not in cp.stderr + cp.stdout
    finally:
        _stop(issuer.proc)


def test_retention_keeps_every_file_the_audit_table_has_not_copied(tmp_path: Path) -> None:
    base = server_url()
    name = f"keyless_e2e_{secrets.token_hex(6)}"
    psql(base, f"CREATE DATABASE {name}")
    database = with_database(base, name)
    issuer = start_issuer(tmp_path)
    audit = "\n[audit]\nmax_file_bytes = 4096\ndigest_every_records = 3\nretention_days = 1\n"
    # Files are aged by moving the (debug build's) audit writer clock two days ahead: retention
    # dates a file by its signed closing digest.
    clock = AuditClock(tmp_path)
    keyless = start_keyless(tmp_path / "keyless", f'database_url = "{database}"\n'
                            + default_config(issuer, tmp_path / "keyless" / "data") + audit, env=clock.env())
    audit_dir = keyless.data_dir / "audit"

    def event_seqs() -> list[int]:
        return [json.loads(line)["seq"] for f in sorted(audit_dir.glob("audit-*.jsonl"))
                for line in f.read_text().splitlines() if '"recordType":"event"' in line[:120]]

    def table_seqs() -> list[int]:
        return [int(r[0]) for r in psql(database, "SELECT seq FROM audit_events ORDER BY seq")]

    def issue_until_rotated(prefix: str) -> None:
        """Issues until the current file is closed (the next retention pass follows a rotation)."""
        current = max(audit_dir.glob("audit-*.jsonl"))
        for i in range(40):
            issue(issuer, keyless, f"{prefix}{i}")
            if max(audit_dir.glob("audit-*.jsonl")) != current:
                time.sleep(0.5)
                return
        raise AssertionError("no rotation after 40 issuances")

    admin = server_url()
    try:
        for i in range(6):
            issue(issuer, keyless, f"copied{i}")
        deadline = time.monotonic() + 20
        while table_seqs() != event_seqs():
            assert time.monotonic() < deadline, "the table copies the first files"
            time.sleep(0.1)
        last_copied = max(table_seqs())
        # The table goes away; the records written now are not in it.
        psql(admin, f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
        psql(admin, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        for i in range(6):
            issue(issuer, keyless, f"uncopied{i}")
        before = sorted(audit_dir.glob("audit-*.jsonl"))
        uncopied = [f for f in before if any(json.loads(line)["seq"] > last_copied and '"recordType":"event"' in line[:120]
                                             for line in f.read_text().splitlines())]
        assert uncopied and uncopied[0] != before[0], (before, last_copied)
        clock.advance(2)
        issue_until_rotated("rotate")
        left = sorted(audit_dir.glob("audit-*.jsonl"))
        # The oldest files went; none with a record the table does not hold did.
        assert not before[0].exists(), (before, left)
        assert all(f.exists() for f in uncopied), (uncopied, left)
        # Back: the table catches up, and the next pass removes the rest of the aged files.
        psql(admin, f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
        deadline = time.monotonic() + 40
        while not set(event_seqs()) <= set(table_seqs()):
            assert time.monotonic() < deadline, "the table catches up after the outage"
            time.sleep(0.2)
        aged = sorted(audit_dir.glob("audit-*.jsonl"))
        clock.advance(2)
        issue_until_rotated("again")
        assert not any(f.exists() for f in aged[:-1]), (aged, sorted(audit_dir.glob("audit-*.jsonl")))
    finally:
        psql(admin, f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
        _stop(keyless.proc)
        _stop(issuer.proc)
    cp = subprocess.run([str(keyless_bin()), "audit", "verify", "--data-dir", str(keyless.data_dir)],
                        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0 and "removed by retention" in cp.stderr, cp.stdout + cp.stderr
    # The table holds every event ever written, the removed files' included.
    assert table_seqs()[0] == 1


def test_records_cut_from_the_end_are_found_against_the_audit_table(stack) -> None:
    issuer, keyless, database = stack
    for i in range(3):
        issue(issuer, keyless, f"anchor{i}")
    audit_dir = keyless.data_dir / "audit"
    newest_event = max(json.loads(line)["seq"] for f in audit_dir.glob("audit-*.jsonl")
                       for line in f.read_text().splitlines() if '"recordType":"event"' in line[:120])
    log_id = (keyless.data_dir / "audit-log-id").read_text().strip()
    deadline = time.monotonic() + 20
    while psql(database, f"SELECT max(seq) FROM audit_events WHERE log_id = '{log_id}'") != [[str(newest_event)]]:
        assert time.monotonic() < deadline, "the table copies the newest record"
        time.sleep(0.1)
    # A copy of the data dir whose newest file lost its last records: a shorter chain that
    # verifies on its own, but not against the table.
    copy = keyless.workdir / "cut"
    shutil.copytree(keyless.data_dir, copy / "data")
    newest = max((copy / "data" / "audit").glob("audit-*.jsonl"))
    lines = newest.read_text().splitlines(keepends=True)
    cut_at = next(i for i, line in enumerate(lines) if f'"seq":{newest_event},' in line[:40])
    newest.write_text("".join(lines[:cut_at]))
    config = copy / "keyless.toml"
    config.write_text(keyless.config.read_text().replace(str(keyless.data_dir), str(copy / "data")))
    alone = subprocess.run([str(keyless_bin()), "audit", "verify", "--data-dir", str(copy / "data")],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert alone.returncode == 0, alone.stdout + alone.stderr
    cp = subprocess.run([str(keyless_bin()), "audit", "verify", "--config", str(config)],
                        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert f"but the Postgres audit table holds seq {newest_event}: records were cut from the end" in cp.stdout, cp.stdout
    # The intact log holds the table's newest record.
    cp = subprocess.run([str(keyless_bin()), "audit", "verify", "--config", str(keyless.config)],
                        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0 and f"it holds seq {newest_event}" in cp.stdout, cp.stdout + cp.stderr


def test_iam_changes_made_through_one_replica_reach_the_other(tmp_path: Path) -> None:
    """Two servers on one database: a role created, then narrowed, through replica A's IAM API
    is in force on replica B within a couple of seconds, with no restart."""
    from iam_support import admin_config, admin_creds, gha_trust, iam_client

    base = server_url()
    name = f"keyless_e2e_{secrets.token_hex(6)}"
    psql(base, f"CREATE DATABASE {name}")
    database = with_database(base, name)
    issuer = start_issuer(tmp_path)
    replicas: list[Keyless] = []
    try:
        for r in ("a", "b"):
            config = f'database_url = "{database}"\n' + admin_config(issuer, tmp_path / r / "data")
            replicas.append(start_keyless(tmp_path / r, config))
        a, b = replicas
        iam = iam_client(a, admin_creds(a, issuer))
        token = issuer.gha_token()

        def on_b_within(seconds: float, ok: bool) -> None:
            deadline = time.monotonic() + seconds
            while True:
                res = b.awiwi(token, role="replicated")
                if (res.status == 200) == ok:
                    assert ok or res.credentials is None, res
                    return
                assert time.monotonic() < deadline, f"replica b still answers {res}\n{b.stderr()[-2000:]}"
                time.sleep(0.1)

        res = b.awiwi(token, role="replicated")
        assert res.status != 200 and res.credentials is None, res
        iam.create_role(RoleName="replicated", AssumeRolePolicyDocument=gha_trust(issuer, REPO))
        on_b_within(3.0, ok=True)
        iam.update_assume_role_policy(RoleName="replicated", PolicyDocument=gha_trust(issuer, "octo-org/other"))
        on_b_within(3.0, ok=False)
        assert b.awiwi(token, role="replicated").code == "AccessDenied"
        assert "directory reloaded" in b.stderr()
    finally:
        for k in replicas:
            _stop(k.proc)
        _stop(issuer.proc)


def test_a_trust_binding_made_on_one_replica_holds_on_the_other(tmp_path: Path) -> None:
    """Replica A binds prod-admin's trust to ci-deployer's unique id, then ci-deployer is deleted
    and recreated through A; on replica B the recreated role's session is refused, and trusted
    once A saves the trust policy again: the binding travels with the directory through Postgres."""
    from iam_support import admin_config, admin_creds, iam_client

    base = server_url()
    name = f"keyless_e2e_{secrets.token_hex(6)}"
    psql(base, f"CREATE DATABASE {name}")
    database = with_database(base, name)
    issuer = start_issuer(tmp_path)
    replicas: list[Keyless] = []
    account = "123456789012"
    admin_arn = f"arn:aws:iam::{account}:role/admin"
    deployer_arn = f"arn:aws:iam::{account}:role/ci-deployer"

    def trusting(arn: str) -> str:
        return json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": arn}, "Action": "sts:AssumeRole"}]})

    def create_deployer(iam) -> str:
        return iam.create_role(RoleName="ci-deployer", AssumeRolePolicyDocument=trusting(admin_arn))["Role"]["RoleId"]

    def within(seconds: float, check) -> None:
        deadline = time.monotonic() + seconds
        while not check():
            assert time.monotonic() < deadline
            time.sleep(0.1)

    try:
        for r in ("a", "b"):
            config = f'database_url = "{database}"\n' + admin_config(issuer, tmp_path / r / "data")
            replicas.append(start_keyless(tmp_path / r, config))
        a, b = replicas
        iam = iam_client(a, admin_creds(a, issuer))
        b_admin = admin_creds(b, issuer)
        iam_b = iam_client(b, b_admin)

        def deployer_on_b_assumes_prod() -> str:
            try:
                c = b.boto3_client(b_admin).assume_role(RoleArn=deployer_arn, RoleSessionName="deploy")["Credentials"]
                b.boto3_client(c).assume_role(RoleArn=b.role_arn("prod-admin"), RoleSessionName="prod")
                return "allowed"
            except ClientError as e:
                return e.response["Error"]["Code"]

        def deployer_id_on_b() -> str:
            try:
                return iam_b.get_role(RoleName="ci-deployer")["Role"]["RoleId"]
            except ClientError as e:
                return e.response["Error"]["Code"]

        create_deployer(iam)
        iam.create_role(RoleName="prod-admin", AssumeRolePolicyDocument=trusting(deployer_arn))
        within(5.0, lambda: deployer_on_b_assumes_prod() == "allowed")
        iam.delete_role(RoleName="ci-deployer")
        new_id = create_deployer(iam)
        within(5.0, lambda: deployer_id_on_b() == new_id)
        assert deployer_on_b_assumes_prod() == "AccessDenied"
        iam.update_assume_role_policy(RoleName="prod-admin", PolicyDocument=trusting(deployer_arn))
        within(5.0, lambda: deployer_on_b_assumes_prod() == "allowed")
    finally:
        for k in replicas:
            _stop(k.proc)
        _stop(issuer.proc)


def reloads(keyless: Keyless) -> dict[str, float]:
    """`keyless_revocation_reloads_total` by kind (full, incremental)."""
    import re
    found = re.findall(r'^keyless_revocation_reloads_total\{kind="(\w+)"\} (\S+)$', keyless.metrics(), re.M)
    return {kind: float(n) for kind, n in found}


def refused_within(keyless: Keyless, creds: dict[str, str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            keyless.boto3_client(creds).get_caller_identity()
        except ClientError as e:
            assert e.response["Error"]["Code"] == "InvalidClientTokenId", e.response
            return
        assert time.monotonic() < deadline, f"the revoked session still works\n{keyless.stderr()[-2000:]}"
        time.sleep(0.05)


def insert_revocation_sql(access_key_id: str, row_id: int | None = None) -> str:
    now_ms, expires = int(time.time() * 1000), int(time.time()) + 40_000
    cols, vals = "", ""
    if row_id is not None:
        cols, vals = "id, ", f"{int(row_id)}, "
    return (f"INSERT INTO revocations ({cols}kind, value, account, issued_before_ms, created_at_ms, expires_at, "
            f"reason, created_by) VALUES ({vals}'session', '{access_key_id}', NULL, {now_ms}, {now_ms}, {expires}, "
            "'e2e', 'operator') RETURNING id")


def test_revocations_from_another_process_reach_a_replica_incrementally_even_out_of_order(tmp_path: Path) -> None:
    """Replica b, among 20,000 live revocations on a shared database, takes what the CLI and a
    slower writer store by reading only new rows: a row whose id committed after a higher one
    is still put in force within a second. A row committed far below what b has read (beyond
    its lookback) makes b read every row instead, and is in force too."""
    database = with_database(server_url(), f"keyless_e2e_{secrets.token_hex(6)}")
    psql(server_url(), f"CREATE DATABASE {urllib.parse.urlsplit(database).path.lstrip('/')}")
    issuer = start_issuer(tmp_path)
    replicas: list[Keyless] = []
    slow = None
    try:
        for r in ("a", "b"):
            config = f'database_url = "{database}"\n' + default_config(issuer, tmp_path / r / "data")
            replicas.append(start_keyless(tmp_path / r, config))
            if r == "a":
                psql(database, "INSERT INTO revocations (kind, value, account, issued_before_ms, created_at_ms, "
                     "expires_at, reason, created_by, audited_seq) SELECT 'session', 'ASIA' || lpad(i::text, 16, '0'), "
                     f"NULL, 0, 0, {int(time.time()) + 40_000}, 'filler', 'operator', 1 "
                     "FROM generate_series(1, 20000) AS i")
        a, b = replicas
        assert reloads(b) == {"full": 1.0, "incremental": 0.0}
        # Each replica has its own key ring: b's sessions are checked on b.
        late, early = issue(issuer, b, "pg-late"), issue(issuer, b, "pg-early")
        # A writer takes an id and commits after the CLI took and committed the next one. (It
        # takes the id before its insert: an insert holds the revocations generation's row lock
        # until it commits, so the CLI's would wait for it.)
        slow = subprocess.Popen([psql_bin(), database, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert slow.stdin and slow.stdout
        slow.stdin.write("BEGIN;\nSELECT nextval(pg_get_serial_sequence('revocations', 'id'));\n")
        slow.stdin.flush()
        late_id = int(slow.stdout.readline())
        cp = subprocess.run([str(keyless_bin()), "revoke", "session", early["AccessKeyId"], "--config",
                             str(a.config), "--format", "json"],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert cp.returncode == 0, cp.stderr
        assert json.loads(cp.stdout)["id"] > late_id
        refused_within(b, early, 1.0)
        b.boto3_client(late).get_caller_identity()
        slow.stdin.write(f"{insert_revocation_sql(late['AccessKeyId'], row_id=late_id)};\nCOMMIT;\n")
        slow.stdin.close()
        assert slow.wait(30) == 0
        refused_within(b, late, 1.0)
        got = reloads(b)
        assert got["full"] == 1.0 and got["incremental"] >= 2.0, got
        # Far below: the sequence jumped ahead (ids 1,000 up are taken), then a row commits with
        # an id under the highest b has read, by more than the lookback.
        below = issue(issuer, b, "pg-below")
        psql(database, "SELECT setval(pg_get_serial_sequence('revocations', 'id'), "
                       "(SELECT MAX(id) FROM revocations) + 1000)")
        ahead = issue(issuer, b, "pg-ahead")
        psql(database, insert_revocation_sql(ahead["AccessKeyId"]))
        refused_within(b, ahead, 1.0)
        high = int(psql(database, "SELECT MAX(id) FROM revocations")[0][0])
        psql(database, insert_revocation_sql(below["AccessKeyId"], row_id=high - 500))
        refused_within(b, below, 1.0)
        assert reloads(b)["full"] == 2.0
        assert "revocations reloaded in full: the stored revocations differ" in b.stderr()
    finally:
        if slow is not None and slow.poll() is None:
            slow.kill()
        for k in replicas:
            _stop(k.proc)
        _stop(issuer.proc)


def test_a_stale_replica_cannot_write_back_what_another_removed(tmp_path: Path) -> None:
    """Replica A deletes a role's inline policy; replica B, whose directory has not caught up
    yet (it polls each second), tags the same role. IAM writes a role whole, so B wrote its stale
    copy back and the deleted grant returned, with both calls answered as successes. B's write
    must be refused by the store and B must redo the call on the current role."""
    from iam_support import admin_config, admin_creds, gha_trust, iam_client

    base = server_url()
    name = f"keyless_e2e_{secrets.token_hex(6)}"
    psql(base, f"CREATE DATABASE {name}")
    database = with_database(base, name)
    issuer = start_issuer(tmp_path)
    replicas: list[Keyless] = []
    try:
        for r in ("a", "b"):
            config = f'database_url = "{database}"\n' + admin_config(issuer, tmp_path / r / "data")
            replicas.append(start_keyless(tmp_path / r, config))
        a, b = replicas
        iam_a = iam_client(a, admin_creds(a, issuer))
        iam_b = iam_client(b, admin_creds(b, issuer))
        grant = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
        for attempt in range(3):
            role = f"shared{attempt}"
            iam_a.create_role(RoleName=role, AssumeRolePolicyDocument=gha_trust(issuer, REPO))
            iam_a.put_role_policy(RoleName=role, PolicyName="grant", PolicyDocument=grant)
            deadline = time.monotonic() + 5
            while True:
                try:
                    if "grant" in iam_b.list_role_policies(RoleName=role)["PolicyNames"]:
                        break
                except ClientError as e:
                    assert e.response["Error"]["Code"] == "NoSuchEntity", e
                assert time.monotonic() < deadline, "replica b never saw the grant"
                time.sleep(0.05)
            # Right after B's poll, so B's snapshot is at its stalest for the next call.
            iam_a.delete_role_policy(RoleName=role, PolicyName="grant")
            iam_b.tag_role(RoleName=role, Tags=[{"Key": "team", "Value": "blue"}])
            time.sleep(2.5)  # both replicas have polled since
            for iam in (iam_a, iam_b):
                assert iam.list_role_policies(RoleName=role)["PolicyNames"] == [], f"attempt {attempt}"
                assert iam.list_role_tags(RoleName=role)["Tags"] == [{"Key": "team", "Value": "blue"}]
        # The race was real: B decided on its stale copy and had to decide again.
        assert "decided on a stale directory" in b.stderr(), b.stderr()[-2000:]
    finally:
        for k in replicas:
            _stop(k.proc)
        _stop(issuer.proc)


def test_the_database_url_can_come_from_a_file(tmp_path: Path) -> None:
    """design.md: every secret can come from a *_file path. The URL holds the password, so the
    config (in git) names a file (in a secrets mount) instead; the server and the tools read it,
    and neither shows the password."""
    base = server_url()
    name = f"keyless_e2e_{secrets.token_hex(6)}"
    psql(base, f"CREATE DATABASE {name}")
    url = with_database(base, name)
    url_file = tmp_path / "db-url"
    url_file.write_text(url + "\n")
    url_file.chmod(0o600)
    issuer = start_issuer(tmp_path)
    config = f'database_url_file = "{url_file}"\n' + default_config(issuer, tmp_path / "keyless" / "data")
    keyless = start_keyless(tmp_path / "keyless", config)
    try:
        assert not (keyless.data_dir / "keyless.db").exists()
        assert ["gha"] in psql(url, "SELECT name FROM roles WHERE from_config ORDER BY name")
        victim = issue(issuer, keyless, "from-file")
        cp = subprocess.run([str(keyless_bin()), "revoke", "session", victim["AccessKeyId"], "--config",
                             str(keyless.config)], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert cp.returncode == 0, cp.stderr
        assert psql(url, "SELECT value FROM revocations") == [[victim["AccessKeyId"]]]
        for text in (cp.stdout + cp.stderr, keyless.stderr()):
            assert password_of(url) not in text
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)
