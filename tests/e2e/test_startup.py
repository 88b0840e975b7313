"""Issue 3: start-up contract of `keyless serve`: health endpoints, config errors naming file and
line, the owner-only key ring, and `serve --dev` with `keyless dev token` and the AWS CLI."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import requests

from keyless_e2e import ACCOUNT, Issuer, Keyless, _stop, default_config, keyless_bin, start_keyless, venv_bin


def run_serve_expect_failure(config: Path, timeout: float = 20) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([str(keyless_bin()), "serve", "--config", str(config), "--listen", "127.0.0.1:0"],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"keyless serve kept running with a bad config {config}") from exc


def test_health_ready_metrics(keyless: Keyless, issuer: Issuer) -> None:
    assert requests.get(keyless.url + "/healthz", timeout=5).status_code == 200
    assert requests.get(keyless.url + "/readyz", timeout=5).status_code == 200
    keyless.awiwi(issuer.gha_token(), session="metrics")
    r = requests.get(keyless.url + "/metrics", timeout=5)
    assert r.status_code == 200
    # OpenMetrics, which Prometheus negotiates and parses natively.
    assert r.headers.get("content-type") == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert r.text.rstrip().endswith("# EOF"), r.text[-200:]
    assert re.search(r"^# (HELP|TYPE) \S+", r.text, re.M), r.text[:500]
    assert "jwks" in r.text.lower(), "metrics should count JWKS fetches"


def test_unknown_config_key_rejected(workdir: Path, issuer: Issuer) -> None:
    text = default_config(issuer, workdir / "data")
    lines = text.splitlines()
    lines.insert(2, "bogus_key = 1")  # line 3
    cfg = workdir / "bad.toml"
    cfg.write_text("\n".join(lines) + "\n")
    cp = run_serve_expect_failure(cfg)
    assert cp.returncode != 0
    msg = cp.stderr + cp.stdout
    assert str(cfg) in msg or cfg.name in msg, msg
    assert "bogus_key" in msg, msg
    assert re.search(r"\b3\b", msg), f"message should name line 3: {msg}"


def test_invalid_trust_policy_rejected(workdir: Path, issuer: Issuer) -> None:
    text = default_config(issuer, workdir / "data").replace('"Effect": "Allow", "Principal": {"Federated"',
                                                            '"Effect": "Perhaps", "Principal": {"Federated"', 1)
    assert "Perhaps" in text
    cfg = workdir / "badpolicy.toml"
    cfg.write_text(text)
    cp = run_serve_expect_failure(cfg)
    assert cp.returncode != 0
    msg = cp.stderr + cp.stdout
    assert cfg.name in msg and ("Perhaps" in msg or "Effect" in msg), msg


def test_syntax_error_config(workdir: Path) -> None:
    cfg = workdir / "syntax.toml"
    cfg.write_text('data_dir = "/tmp/x"\n[[accounts]\nid = 1\n')
    cp = run_serve_expect_failure(cfg)
    assert cp.returncode != 0
    msg = cp.stderr + cp.stdout
    assert cfg.name in msg and re.search(r"\b2\b", msg), msg


def test_http_provider_must_be_loopback(workdir: Path, issuer: Issuer) -> None:
    text = default_config(issuer, workdir / "data").replace(f'url = "{issuer.url}"', 'url = "http://example.com"')
    cfg = workdir / "http.toml"
    cfg.write_text(text)
    cp = run_serve_expect_failure(cfg)
    assert cp.returncode != 0
    assert "example.com" in cp.stderr + cp.stdout


def test_keyring_with_open_permissions_refused(workdir: Path, issuer: Issuer) -> None:
    srv = start_keyless(workdir / "k", default_config(issuer, workdir / "k" / "data"))
    _stop(srv.proc)
    ring = srv.data_dir / "keyring.json"
    assert ring.exists()
    os.chmod(ring, 0o644)
    cp = run_serve_expect_failure(srv.config)  # type: ignore[arg-type]
    assert cp.returncode != 0
    assert "keyring" in (cp.stderr + cp.stdout).lower(), cp.stderr


def test_keyring_in_a_directory_others_can_write_refused(workdir: Path, issuer: Issuer) -> None:
    data = workdir / "k" / "data"
    srv = start_keyless(workdir / "k", default_config(issuer, data))
    _stop(srv.proc)
    # keyless made the data dir owner-only; a group-writable one lets others swap the ring.
    assert data.stat().st_mode & 0o777 == 0o700
    os.chmod(data, 0o775)
    cp = run_serve_expect_failure(srv.config)  # type: ignore[arg-type]
    assert cp.returncode != 0
    assert f"{data}: the directory holding the key ring is writable by group or others" in cp.stderr, cp.stderr
    assert "chmod go-w" in cp.stderr


def test_config_is_applied_idempotently_on_restart(workdir: Path, issuer: Issuer) -> None:
    cfg_text = default_config(issuer, workdir / "k" / "data")
    for i in range(2):
        srv = start_keyless(workdir / "k", cfg_text)
        try:
            res = srv.awiwi(issuer.gha_token(), session=f"restart{i}")
            assert res.status == 200, f"start {i}: {res}\n{srv.stderr()[-2000:]}"
        finally:
            _stop(srv.proc)


def test_a_second_server_on_the_data_dir_is_refused_before_it_touches_the_store(workdir: Path, issuer: Issuer) -> None:
    """The audit log's lock makes one server per data dir. A second one (an edited config tried
    out, a unit started twice) must be refused before it applies its config: applied, it deleted
    the roles its file no longer lists, under the running server, whose sessions then ended."""
    cfg_text = default_config(issuer, workdir / "k" / "data")
    srv = start_keyless(workdir / "k", cfg_text)
    try:
        before = srv.awiwi(issuer.gha_token(), role="gha-any-branch", session="before").credentials
        assert before, "the role works to begin with"
        start = cfg_text.index('name = "gha-any-branch"')
        start = cfg_text.rindex("[[roles]]", 0, start)
        end = cfg_text.index("[[roles]]", start + 1)
        edited = workdir / "edited.toml"
        edited.write_text(cfg_text[:start] + cfg_text[end:])
        db = srv.data_dir / "keyless.db"
        with sqlite3.connect(db) as c:
            roles = sorted(r[0] for r in c.execute("SELECT name FROM roles"))
        cp = run_serve_expect_failure(edited)
        assert cp.returncode == 2, (cp.returncode, cp.stderr)
        assert "is held by another process (a running keyless server?)" in cp.stderr, cp.stderr
        with sqlite3.connect(db) as c:
            assert sorted(r[0] for r in c.execute("SELECT name FROM roles")) == roles
        time.sleep(1.5)  # past the running server's directory poll
        after = srv.awiwi(issuer.gha_token(), role="gha-any-branch", session="after")
        assert after.status == 200, f"the running server lost the role: {after}"
        srv.boto3_client(before).get_caller_identity()
    finally:
        _stop(srv.proc)


def test_a_listen_address_in_use_is_named(workdir: Path, issuer: Issuer) -> None:
    cfg = workdir / "keyless.toml"
    cfg.write_text(default_config(issuer, workdir / "data"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cp = subprocess.run([str(keyless_bin()), "serve", "--config", str(cfg), "--listen", f"127.0.0.1:{port}"],
                            capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert cp.returncode == 2, cp.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in cp.stderr, cp.stderr
    assert "give another --listen ADDR" in cp.stderr, cp.stderr


def test_an_account_dropped_from_the_config_with_api_roles_in_it_is_refused(workdir: Path, issuer: Issuer) -> None:
    """Config accounts are re-applied at every start. An account taken out of the file while the
    IAM API created roles in it left those roles issuing credentials, outside the account's OU,
    so the OU's guardrails no longer applied to them. Start-up refuses it and changes nothing."""
    from iam_support import admin_config, admin_creds, gha_trust, iam_client

    data = workdir / "k" / "data"
    deny = json.dumps({"Version": "2012-10-17",
                       "Statement": [{"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}]})
    guardrail = f'[[guardrails]]\ntarget = "/workloads"\nname = "no-s3-delete"\ndocument = \'{deny}\'\n'
    cfg_text = admin_config(issuer, data, guardrail)
    srv = start_keyless(workdir / "k", cfg_text)
    try:
        iam = iam_client(srv, admin_creds(srv, issuer))
        iam.create_role(RoleName="api-worker", AssumeRolePolicyDocument=gha_trust(issuer, "octo-org/app"))
    finally:
        _stop(srv.proc)
    other = "210987654321"
    moved = workdir / "moved.toml"
    moved.write_text(cfg_text.replace(ACCOUNT, other))
    with sqlite3.connect(data / "keyless.db") as c:
        accounts = sorted(c.execute("SELECT id FROM accounts"))
    cp = run_serve_expect_failure(moved)
    assert cp.returncode == 2, (cp.returncode, cp.stderr)
    assert f"account {ACCOUNT} is not declared any more" in cp.stderr, cp.stderr
    assert f"arn:aws:iam::{ACCOUNT}:role/api-worker" in cp.stderr, cp.stderr
    assert "keep the [[accounts]] entry, or delete those through the IAM API first" in cp.stderr, cp.stderr
    with sqlite3.connect(data / "keyless.db") as c:
        assert sorted(c.execute("SELECT id FROM accounts")) == accounts, "the store was changed"


def test_dev_mode_quick_start(workdir: Path) -> None:
    srv = start_keyless(workdir / "dev", dev=True)
    try:
        out = (workdir / "dev" / "keyless.out").read_text()
        assert "keyless dev token" in out and "assume-role-with-web-identity" in out, out
        disc = requests.get(srv.url + "/dev/oidc/.well-known/openid-configuration", timeout=5)
        assert disc.status_code == 200 and disc.json()["issuer"] == srv.url + "/dev/oidc"
        cp = subprocess.run([str(keyless_bin()), "dev", "token", "--endpoint", srv.url,
                             "--sub", "repo:octo-org/demo:ref:refs/heads/main", "--claim", "repository=octo-org/demo"],
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert cp.returncode == 0, cp.stderr
        token = cp.stdout.strip()
        assert token.count(".") == 2, token
        env = srv.client_env(AWS_ACCESS_KEY_ID="unused", AWS_SECRET_ACCESS_KEY="unused")
        res = json.loads(srv.aws("sts", "assume-role-with-web-identity", "--role-arn",
                                 f"arn:aws:iam::{ACCOUNT}:role/keyless-demo", "--role-session-name", "dev",
                                 "--web-identity-token", token, env=env).stdout)
        c = res["Credentials"]
        env = srv.client_env(AWS_ACCESS_KEY_ID=c["AccessKeyId"], AWS_SECRET_ACCESS_KEY=c["SecretAccessKey"],
                             AWS_SESSION_TOKEN=c["SessionToken"])
        ident = json.loads(srv.aws("sts", "get-caller-identity", env=env).stdout)
        assert ident["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/keyless-demo/dev"
        # A token for another repository is not trusted by the demo role.
        cp = subprocess.run([str(keyless_bin()), "dev", "token", "--endpoint", srv.url,
                             "--sub", "repo:octo-org/demo-evil:ref:refs/heads/main"],
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert cp.returncode == 0, cp.stderr
        denied = srv.awiwi(cp.stdout.strip(), role="keyless-demo")
        assert denied.code == "AccessDenied" and denied.status == 403, denied
        assert "<Credentials>" not in denied.body
        # A web page in the developer's browser can post to the loopback port too: a form post
        # (no CORS preflight) and a name rebound to 127.0.0.1 get no token.
        claims = '{"sub": "repo:octo-org/demo:ref:refs/heads/main"}'
        for headers in ({"Content-Type": "text/plain"},
                        {"Content-Type": "application/json", "Host": "evil.example:80"}):
            r = requests.post(srv.url + "/dev/oidc/token", data=claims, headers=headers, timeout=5)
            assert r.status_code == 403 and "token" not in r.json(), (headers, r.text)
        r = requests.post(srv.url + "/dev/oidc/token", data=claims, headers={"Content-Type": "application/json"}, timeout=5)
        assert r.status_code == 200 and r.json()["token"].count(".") == 2, r.text
    finally:
        _stop(srv.proc)


def test_dev_mode_banner_commands_run_as_printed(workdir: Path) -> None:
    """The commands `serve --dev` prints, pasted into a shell as they are: with the AWS CLI v1
    from the venv on PATH and no AWS configuration or variables of any kind."""
    srv = start_keyless(workdir / "dev", dev=True)
    try:
        out = (workdir / "dev" / "keyless.out").read_text()
        m = re.search(r"Try, in another shell:\n(.*?)\nAuthorize API", out, re.S)
        assert m, out
        script = m.group(1)
        home = workdir / "home"
        home.mkdir()
        env = {"PATH": f"{Path(venv_bin('aws')).parent}:{os.environ['PATH']}", "HOME": str(home)}
        cp = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert cp.returncode == 0, f"{script}\n--- stdout ---\n{cp.stdout}\n--- stderr ---\n{cp.stderr}"
        # Two JSON documents: the exchange, then the credential chain's caller identity.
        decoder = json.JSONDecoder()
        exchanged, end = decoder.raw_decode(cp.stdout)
        ident, _ = decoder.raw_decode(cp.stdout[end:].lstrip())
        assert exchanged["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/keyless-demo/demo"
        assert exchanged["Credentials"]["AccessKeyId"].startswith("ASIA")
        assert ident["Account"] == ACCOUNT
        assert ident["Arn"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/keyless-demo/"), ident
    finally:
        _stop(srv.proc)


def test_dev_mode_banner_commands_run_as_printed_on_ipv6_loopback_in_a_strict_shell(workdir: Path) -> None:
    """On `[::1]` the URLs hold brackets, a glob pattern: zsh (macOS's shell) stops at a pattern
    that matches no file ("no matches found"), as bash does with failglob. The banner quotes
    them."""
    from keyless_e2e import START_TIMEOUT, _wait_for_line
    with socket.socket(socket.AF_INET6) as s:
        try:
            s.bind(("::1", 0))
        except OSError:
            import pytest
            pytest.skip("no IPv6 loopback here")
    out, err = workdir / "keyless.out", workdir / "keyless.err"
    proc = subprocess.Popen([str(keyless_bin()), "serve", "--dev", "--listen", "[::1]:0", "--data-dir",
                             str(workdir / "data")], stdout=out.open("wb"), stderr=err.open("wb"),
                            stdin=subprocess.DEVNULL)
    try:
        _wait_for_line(out, re.compile(r"Authorize API"), proc, START_TIMEOUT, "keyless serve --dev", err)
        m = re.search(r"Try, in another shell:\n(.*?)\nAuthorize API", out.read_text(), re.S)
        assert m, out.read_text()
        script = m.group(1)
        home = workdir / "home"
        home.mkdir()
        env = {"PATH": f"{Path(venv_bin('aws')).parent}:{os.environ['PATH']}", "HOME": str(home)}
        cp = subprocess.run(["bash", "-O", "failglob", "-euo", "pipefail", "-c", script], env=env,
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert cp.returncode == 0, f"{script}\n--- stdout ---\n{cp.stdout}\n--- stderr ---\n{cp.stderr}"
        assert '"Account": "123456789012"' in cp.stdout, cp.stdout
    finally:
        _stop(proc)


def test_dev_mode_refuses_non_loopback(workdir: Path) -> None:
    try:
        cp = subprocess.run([str(keyless_bin()), "serve", "--dev", "--listen", "0.0.0.0:0", "--data-dir",
                             str(workdir / "d")], capture_output=True, text=True, timeout=20,
                            stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError("keyless serve --dev accepted 0.0.0.0") from exc
    assert cp.returncode != 0
    assert "loopback" in (cp.stderr + cp.stdout).lower(), cp.stderr


def test_one_api_created_provider_whose_issuer_is_down_does_not_take_the_server_out_of_service(
        workdir: Path) -> None:
    """/readyz is what a load balancer pulls a server out on. Any account's IAM admin can create
    a provider, and before this one whose issuer never answered made every replica answer 503,
    for every account. Issuers named in the config (the operator's own) still gate readiness,
    named in the reason; an IAM-created one that is down is counted, not named (the answer is
    unauthenticated), and its tokens alone are refused."""
    from iam_support import admin_config, admin_creds, iam_client
    from keyless_e2e import AUD, start_issuer

    (workdir / "issuer").mkdir()
    issuer = start_issuer(workdir / "issuer")
    keyless = start_keyless(workdir / "keyless", admin_config(issuer, workdir / "keyless" / "data"))
    try:
        iam = iam_client(keyless, admin_creds(keyless, issuer))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{s.getsockname()[1]}/nobody-home"
        iam.create_open_id_connect_provider(Url=dead, ClientIDList=[AUD])
        ready = requests.get(keyless.url + "/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert "1 provider created through the IAM API" in ready.text, ready.text
        assert dead not in ready.text, ready.text
        # Issuance from the config's issuer goes on.
        assert keyless.awiwi(issuer.gha_token(repo="octo-org/platform"), role="admin", session="still").status == 200
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def test_a_config_provider_whose_issuer_is_down_is_not_ready_and_named(workdir: Path) -> None:
    """The operator's own issuers gate readiness: 503, and the reason says which one."""
    from iam_support import admin_config
    from keyless_e2e import START_TIMEOUT, _wait_for_line, start_issuer

    (workdir / "issuer").mkdir()
    issuer = start_issuer(workdir / "issuer")
    config_text = admin_config(issuer, workdir / "data")
    _stop(issuer.proc)
    config = workdir / "keyless.toml"
    config.write_text(config_text)
    out, err = workdir / "keyless.out", workdir / "keyless.err"
    proc = subprocess.Popen([str(keyless_bin()), "serve", "--config", str(config), "--listen", "127.0.0.1:0"],
                            stdout=out.open("wb"), stderr=err.open("wb"), stdin=subprocess.DEVNULL)
    try:
        m = _wait_for_line(out, re.compile(r"keyless listening on (http://127\.0\.0\.1:\d+)"), proc,
                           START_TIMEOUT, "keyless serve", err)
        ready = requests.get(m.group(1) + "/readyz", timeout=10)
        assert ready.status_code == 503, ready.text
        assert f"issuer keys: not fetched for {issuer.url}" in ready.text, ready.text
    finally:
        _stop(proc)


def test_dev_mode_refuses_a_data_dir_a_configured_server_made(workdir: Path, issuer: Issuer) -> None:
    """`serve --dev --data-dir` on a real server's data dir replaced the config's roles and
    providers with the demo ones (a config's entities missing from the applied set are deleted,
    so the roles came back with new ids and their live sessions ended) and minted with the
    real key ring. It is refused, naming the way out; a dev data dir is reusable."""
    data = workdir / "prod" / "data"
    srv = start_keyless(workdir / "prod", default_config(issuer, data))
    _stop(srv.proc)
    with sqlite3.connect(data / "keyless.db") as c:
        before = c.execute("SELECT name, role_id FROM roles ORDER BY name").fetchall()
    assert before, "the configured server stored its roles"
    try:
        cp = subprocess.run([str(keyless_bin()), "serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", str(data)],
                            capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError("keyless serve --dev ran on a configured server's data dir") from exc
    assert cp.returncode != 0, cp.stdout
    assert "--dev" in cp.stderr and str(data) in cp.stderr and "empty" in cp.stderr, cp.stderr
    with sqlite3.connect(data / "keyless.db") as c:
        assert c.execute("SELECT name, role_id FROM roles ORDER BY name").fetchall() == before
    # A data dir --dev made serves --dev again, until a configured server takes it over.
    dev = start_keyless(workdir / "dev", dev=True)
    _stop(dev.proc)
    dev = start_keyless(workdir / "dev", dev=True)
    _stop(dev.proc)
    srv = start_keyless(workdir / "dev", default_config(issuer, workdir / "dev" / "data"))
    _stop(srv.proc)
    cp = subprocess.run([str(keyless_bin()), "serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir",
                         str(workdir / "dev" / "data")], capture_output=True, text=True, timeout=20,
                        stdin=subprocess.DEVNULL)
    assert cp.returncode != 0 and "--dev" in cp.stderr, cp.stderr
