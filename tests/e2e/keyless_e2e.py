"""Helpers for the keyless end-to-end tests (fixtures are in conftest.py).

Everything here drives real processes over loopback HTTP: the `keyless` binary (``KEYLESS_BIN``,
default ``target/debug/keyless``), a real OIDC issuer (``tests/js/oidc-issuer.mjs`` around
oauth2-mock-server) and real AWS clients (boto3, the AWS CLI v1 from the venv, the AWS SDK for
JavaScript v3 through ``tests/js/sts-client.mjs``). Nothing of keyless is mocked.

No real AWS configuration is ever read: every client gets ``AWS_CONFIG_FILE`` and
``AWS_SHARED_CREDENTIALS_FILE`` pointing at empty temp files, ``AWS_EC2_METADATA_DISABLED=true``
and an explicit ``AWS_ENDPOINT_URL_STS``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "tests" / "js"
ACCOUNT = "123456789012"
AUD = "sts.amazonaws.com"
REPO = "octo-org/demo"
REGION = "us-east-1"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
START_TIMEOUT = float(os.environ.get("KEYLESS_E2E_START_TIMEOUT", "30"))


def keyless_bin() -> Path:
    """The keyless binary under test."""
    return Path(os.environ.get("KEYLESS_BIN", ROOT / "target" / "debug" / "keyless"))


def venv_bin(name: str) -> str:
    """A tool from the project venv (falls back to the current interpreter's bin dir)."""
    for base in (ROOT / ".venv" / "bin", Path(sys.executable).parent):
        cand = base / name
        if cand.exists():
            return str(cand)
    raise FileNotFoundError(f"{name} not found in {ROOT / '.venv' / 'bin'}; run scripts/test first")


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (prefer `--listen 127.0.0.1:0` where possible)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_line(path: Path, pattern: re.Pattern[str], proc: subprocess.Popen, timeout: float,
                   what: str, stderr_path: Path) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        m = pattern.search(text)
        if m:
            return m
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc_state = (f"exited with {proc.returncode} before printing it" if proc.poll() is not None
                  else f"still running after {timeout}s")
    out = path.read_text(errors="replace") if path.exists() else ""
    err = stderr_path.read_text(errors="replace") if stderr_path.exists() else ""
    _stop(proc)
    raise RuntimeError(
        f"{what} did not print {pattern.pattern!r} ({proc_state}).\n"
        f"--- stdout ---\n{out[-4000:]}\n--- stderr ---\n{err[-4000:]}"
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# --------------------------------------------------------------------------------------------
# OIDC issuer


@dataclass
class Issuer:
    """A running tests/js/oidc-issuer.mjs."""

    url: str
    proc: subprocess.Popen

    @property
    def host(self) -> str:
        """The issuer without scheme, as used in provider ARNs and condition keys."""
        return self.url.split("://", 1)[1]

    @property
    def provider_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:oidc-provider/{self.host}"

    def _post(self, path: str, fields: dict[str, Any]) -> str:
        form = {k: (json.dumps(v) if isinstance(v, (dict, list)) else str(v)) for k, v in fields.items()}
        r = requests.post(self.url + path, data=form, timeout=10)
        r.raise_for_status()
        return r.json()["access_token"]

    def token(self, **claims: Any) -> str:
        """A token with exactly these extra claims (see oidc-issuer.mjs for the special fields)."""
        return self._post("/token", {"grant_type": "client_credentials", **claims})

    def gha_token(self, repo: str = REPO, ref: str = "refs/heads/main", aud: str = AUD,
                  **extra: Any) -> str:
        """A GitHub-Actions-shaped token for `repo` at `ref`."""
        return self.token(**gha_claims(repo, ref, aud), **extra)

    def forged(self, kind: str, **claims: Any) -> str:
        """kind: 'unknown-kid', 'hs256-pubkey' or 'alg-none'."""
        return self._post(f"/admin/token-{kind}", claims)

    def rotate(self) -> str:
        r = requests.post(self.url + "/admin/rotate", timeout=10)
        r.raise_for_status()
        return r.json()["kid"]

    def stats(self) -> dict[str, Any]:
        r = requests.get(self.url + "/admin/stats", timeout=10)
        r.raise_for_status()
        return r.json()


def gha_claims(repo: str = REPO, ref: str = "refs/heads/main", aud: str = AUD) -> dict[str, Any]:
    owner = repo.split("/", 1)[0]
    return {
        "sub": f"repo:{repo}:ref:{ref}",
        "aud": aud,
        "repository": repo,
        "repository_owner": owner,
        "ref": ref,
        "ref_type": "branch",
        "job_workflow_ref": f"{repo}/.github/workflows/ci.yml@{ref}",
        "workflow": "ci",
        "event_name": "push",
        "run_id": "4242",
        "run_attempt": "1",
        "actor": "octocat",
        "sha": "0123456789abcdef0123456789abcdef01234567",
    }


def start_issuer(workdir: Path) -> Issuer:
    out, err = workdir / "issuer.out", workdir / "issuer.err"
    proc = subprocess.Popen(
        ["node", str(JS_DIR / "oidc-issuer.mjs"), "0"],
        stdout=out.open("wb"), stderr=err.open("wb"), stdin=subprocess.DEVNULL, cwd=JS_DIR,
    )
    m = _wait_for_line(out, re.compile(r"oidc issuer listening on (http://127\.0\.0\.1:\d+)"), proc,
                       START_TIMEOUT, "oidc-issuer.mjs", err)
    return Issuer(url=m.group(1), proc=proc)


# --------------------------------------------------------------------------------------------
# keyless server


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def default_config(issuer: Issuer, data_dir: Path, throttle: tuple[float, int] | None = None) -> str:
    """The standard e2e configuration (TOML) trusting `issuer`."""
    h = issuer.host
    fed = issuer.provider_arn
    gha_role = f"arn:aws:iam::{ACCOUNT}:role/gha"
    trust_main = policy({
        "Effect": "Allow",
        "Principal": {"Federated": fed},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            f"{h}:aud": AUD,
            f"{h}:sub": f"repo:{REPO}:ref:refs/heads/main",
            f"{h}:repository": REPO,
        }},
    })
    trust_any_branch = policy({
        "Effect": "Allow",
        "Principal": {"Federated": fed},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{h}:aud": AUD},
                      "StringLike": {f"{h}:sub": f"repo:{REPO}:*"}},
    })
    trust_from_gha = policy({
        "Effect": "Allow",
        "Principal": {"AWS": gha_role},
        "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
    })
    trust_tagged = policy({
        "Effect": "Allow",
        "Principal": {"Federated": fed},
        "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession", "sts:SetSourceIdentity"],
        "Condition": {"StringEquals": {f"{h}:aud": AUD},
                      "StringLike": {f"{h}:sub": f"repo:{REPO}:*"}},
    })
    tagged_perms = policy({
        "Sid": "BlueTeamMayDecode",
        "Effect": "Allow",
        "Action": "sts:DecodeAuthorizationMessage",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalTag/team": "blue"}},
    })
    gha_perms = policy({
        "Sid": "ChainAndInspect",
        "Effect": "Allow",
        "Action": ["sts:AssumeRole", "sts:TagSession", "sts:DecodeAuthorizationMessage",
                   "sts:GetAccessKeyInfo"],
        "Resource": "*",
    })
    deploy_perms = policy({
        "Sid": "DeployAll",
        "Effect": "Allow",
        "Action": ["sts:DecodeAuthorizationMessage", "s3:*"],
        "Resource": "*",
    })
    guardrail = policy({
        "Sid": "DenyLockedRole",
        "Effect": "Deny",
        "Action": "sts:AssumeRole",
        "Resource": "arn:aws:iam::*:role/locked",
    })

    parts = [
        'listen = "127.0.0.1:0"',
        f'data_dir = "{data_dir}"',
        "",
        "[[accounts]]",
        f'id = "{ACCOUNT}"',
        'name = "ci"',
        'ou = "/workloads/ci"',
        "",
        "[[providers]]",
        f'account = "{ACCOUNT}"',
        f'url = "{issuer.url}"',
        f'client_ids = ["{AUD}"]',
        "allow_http = true",
    ]
    roles = [
        ("gha", 3600, trust_main, {"chain": gha_perms}),
        ("gha-any-branch", 3600, trust_any_branch, {"chain": gha_perms}),
        ("tagged", 3600, trust_tagged, {"by-tag": tagged_perms}),
        ("deploy", 7200, trust_from_gha, {"deploy": deploy_perms}),
        ("locked", 3600, trust_from_gha, {"deploy": deploy_perms}),
    ]
    for name, max_dur, trust, pols in roles:
        parts.append(role_toml(name, trust, pols, max_dur))
    parts += ["", "[[guardrails]]", 'target = "/"', 'name = "no-locked-role"',
              f"document = {toml_literal(guardrail)}"]
    if throttle is not None:
        parts += ["", "[throttle]", f"rate_per_second = {throttle[0]}", f"burst = {throttle[1]}"]
    return "\n".join(parts) + "\n"


def toml_literal(s: str) -> str:
    """A policy as a TOML multi-line literal string."""
    assert "'''" not in s
    return f"'''{s}'''"


def role_toml(name: str, trust: str, policies: dict[str, str], max_session_duration: int = 3600) -> str:
    """A `[[roles]]` table of the test account, its inline policies given by name."""
    inline = ", ".join(f"{k} = {toml_literal(v)}" for k, v in policies.items())
    return "\n".join(["", "[[roles]]", f'account = "{ACCOUNT}"', f'name = "{name}"',
                      f"max_session_duration = {max_session_duration}",
                      f"trust_policy = {toml_literal(trust)}", f"policies = {{ {inline} }}"])


def config_with_role(issuer: Issuer, data_dir: Path, role: str, conditions: dict[str, Any]) -> str:
    """The standard config plus `role`, trusting the main branch's tokens under `conditions`
    as well (e.g. {"Bool": {"aws:SecureTransport": "true"}})."""
    trust = policy({
        "Effect": "Allow",
        "Principal": {"Federated": issuer.provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{issuer.host}:aud": AUD,
                                       f"{issuer.host}:sub": f"repo:{REPO}:ref:refs/heads/main"},
                      **conditions},
    })
    return default_config(issuer, data_dir) + (
        f'\n[[roles]]\naccount = "{ACCOUNT}"\nname = "{role}"\nmax_session_duration = 3600\n'
        f"trust_policy = '''{trust}'''\n")


@dataclass
class Keyless:
    """A running `keyless serve`."""

    url: str
    proc: subprocess.Popen
    workdir: Path
    data_dir: Path
    config: Path | None
    stderr_path: Path
    # The CA bundle that verifies its TLS certificate, when it serves HTTPS.
    ca_bundle: Path | None = None

    @property
    def verify(self) -> str | bool:
        """`verify=` for requests and boto3."""
        return str(self.ca_bundle) if self.ca_bundle else True

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def role_arn(self, name: str) -> str:
        return f"arn:aws:iam::{ACCOUNT}:role/{name}"

    # raw HTTP ---------------------------------------------------------------------------
    def sts_raw(self, params: dict[str, Any], method: str = "POST") -> "StsResult":
        """An unsigned STS query-protocol call; returns status and parsed XML."""
        params = {"Version": "2011-06-15", **{k: str(v) for k, v in params.items()}}
        if method == "GET":
            r = requests.get(self.url + "/", params=params, timeout=30, verify=self.verify)
        else:
            r = requests.post(self.url + "/", data=params, timeout=30, verify=self.verify,
                              headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        return StsResult.parse(r.status_code, r.text)

    def awiwi(self, token: str, role: str = "gha", session: str = "e2e", **extra: Any) -> "StsResult":
        return self.sts_raw({"Action": "AssumeRoleWithWebIdentity", "RoleArn": self.role_arn(role),
                             "RoleSessionName": session, "WebIdentityToken": token, **extra})

    def metrics(self) -> str:
        r = requests.get(self.url + "/metrics", timeout=10, verify=self.verify)
        r.raise_for_status()
        return r.text

    def issued_total(self) -> float | None:
        """Sum of every metric sample whose name mentions issued credentials/sessions, or None
        when the server exposes no such metric."""
        text = self.metrics()
        exact = re.findall(r"^keyless_credentials_issued_total(?:\{[^}]*\})? (\S+)$", text, re.M)
        if exact:
            return sum(float(v) for v in exact)
        total, seen = 0.0, False
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if re.search(r"issued|credentials_total|sessions_created", name):
                try:
                    total += float(line.rsplit(" ", 1)[1])
                    seen = True
                except ValueError:
                    pass
        return total if seen else None

    # real clients ----------------------------------------------------------------------
    def client_env(self, **extra: str) -> dict[str, str]:
        """Environment for a client subprocess: no real AWS config, STS pointed at keyless."""
        cfg = self.workdir / "aws-empty-config"
        creds = self.workdir / "aws-empty-credentials"
        cfg.touch()
        creds.touch()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({
            "AWS_CONFIG_FILE": str(cfg),
            "AWS_SHARED_CREDENTIALS_FILE": str(creds),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL_STS": self.url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_PAGER": "",
        })
        if self.ca_bundle:
            # The AWS CLI and boto3 read AWS_CA_BUNDLE; Node reads NODE_EXTRA_CA_CERTS at start.
            env["AWS_CA_BUNDLE"] = str(self.ca_bundle)
            env["NODE_EXTRA_CA_CERTS"] = str(self.ca_bundle)
        env.update(extra)
        return env

    def web_identity_env(self, token: str, session: str, role: str = "gha") -> dict[str, str]:
        """A client environment for the SDKs' web-identity credential provider: `token` in a
        file, `AWS_ROLE_ARN`, `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_SESSION_NAME`."""
        token_file = self.workdir / f"token-{session}"
        token_file.write_text(token)
        return self.client_env(AWS_ROLE_ARN=self.role_arn(role), AWS_WEB_IDENTITY_TOKEN_FILE=str(token_file),
                               AWS_ROLE_SESSION_NAME=session)

    def aws(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
        """Runs the AWS CLI v1 from the venv with `--output json`."""
        cp = subprocess.run([venv_bin("aws"), *args, "--output", "json"], env=env or self.client_env(),
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if check and cp.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({cp.returncode}):\n{cp.stderr}\n{cp.stdout}"
                                 f"\n--- keyless stderr ---\n{self.stderr()[-3000:]}")
        return cp

    def node(self, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        """Runs tests/js/sts-client.mjs and returns its JSON output (errors included)."""
        cp = subprocess.run(["node", str(JS_DIR / "sts-client.mjs"), *args], env=env or self.client_env(),
                            capture_output=True, text=True, timeout=120, cwd=JS_DIR,
                            stdin=subprocess.DEVNULL)
        try:
            return json.loads(cp.stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError) as exc:
            raise AssertionError(f"sts-client.mjs {args} printed no JSON ({cp.returncode}):\n"
                                 f"{cp.stdout}\n{cp.stderr}") from exc

    def rust_sdk(self, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        """Runs the AWS SDK for Rust test peer (tests/rust-sdk, built beside the keyless binary)
        and returns its JSON output (errors included)."""
        binary = keyless_bin().parent / "rust-sdk-client"
        assert binary.exists(), f"{binary} is missing: cargo build -p keyless-rust-sdk-client"
        cp = subprocess.run([str(binary), *args], env=env or self.client_env(), capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL)
        try:
            return json.loads(cp.stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError) as exc:
            raise AssertionError(f"rust-sdk-client {args} printed no JSON ({cp.returncode}):\n"
                                 f"{cp.stdout}\n{cp.stderr}") from exc

    def boto3_client(self, creds: dict[str, str] | None = None, max_attempts: int = 1):
        """A boto3 STS client pointed at keyless, built from an isolated botocore session."""
        import boto3
        import botocore.config
        import botocore.session

        bs = botocore.session.Session()
        # Never read real config: isolated files, no instance metadata.
        bs.set_config_variable("config_file", str(self.workdir / "aws-empty-config"))
        bs.set_config_variable("credentials_file", str(self.workdir / "aws-empty-credentials"))
        (self.workdir / "aws-empty-config").touch()
        (self.workdir / "aws-empty-credentials").touch()
        session = boto3.Session(botocore_session=bs, region_name=REGION)
        kw: dict[str, Any] = {}
        if creds is not None:
            kw = {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
                  "aws_session_token": creds["SessionToken"]}
        else:
            kw = {"aws_access_key_id": "unused", "aws_secret_access_key": "unused"}
        return session.client("sts", endpoint_url=self.url, region_name=REGION, verify=self.verify,
                               config=botocore.config.Config(retries={"max_attempts": max_attempts, "mode": "standard"}),
                               **kw)

    def rotate_keyring(self) -> subprocess.CompletedProcess:
        args = ["keys", "rotate"]
        args += ["--config", str(self.config)] if self.config else ["--data-dir", str(self.data_dir)]
        return subprocess.run([str(keyless_bin()), *args], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)


@dataclass
class StsResult:
    status: int
    body: str
    root: ET.Element | None = None
    code: str | None = None
    message: str | None = None
    values: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def parse(status: int, body: str) -> "StsResult":
        res = StsResult(status=status, body=body)
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return res
        for el in root.iter():
            el.tag = el.tag.split("}", 1)[-1]
        res.root = root
        if root.tag == "ErrorResponse":
            res.code = root.findtext("Error/Code")
            res.message = root.findtext("Error/Message")
        for el in root.iter():
            if len(el) == 0 and el.text is not None:
                res.values.setdefault(el.tag, el.text)
        return res

    @property
    def credentials(self) -> dict[str, str] | None:
        if self.root is None:
            return None
        el = next((e for e in self.root.iter() if e.tag == "Credentials"), None)
        if el is None:
            return None
        return {c.tag: (c.text or "") for c in el}

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.body[:2000]}"

    __repr__ = __str__


def assert_no_credentials(res: StsResult) -> None:
    """A denial must never carry credentials."""
    assert "<Credentials>" not in res.body and "Credentials" not in res.values, res
    # Elements, not words: a validation message may name `minimumSessionTokenSize`.
    assert "<SecretAccessKey>" not in res.body and "<SessionToken>" not in res.body, res
    assert not re.search(r"ASIA[A-Z0-9]{12,}", res.body), res


def assert_error(res: StsResult, code: str, status: int) -> None:
    """The exact AWS error shape: ErrorResponse in the STS namespace with this code and status."""
    assert res.code == code, f"expected {code} ({status}), got {res}"
    assert res.status == status, f"expected HTTP {status} for {code}, got {res}"
    assert f'xmlns="{STS_NS}"' in res.body, res
    assert res.values.get("RequestId"), res
    assert_no_credentials(res)


def encoded_auth_message(message: str) -> str:
    """The encoded authorization message inside an AccessDenied message."""
    m = re.search(r"[Ee]ncoded authorization failure message:\s*(\S+)", message)
    if m:
        return m.group(1).rstrip(".")
    tokens = [t.strip(".,;()'\"") for t in message.split()]
    tokens = [t for t in tokens if not t.startswith("arn:")]
    longest = max(tokens, key=len, default="")
    assert len(longest) >= 32, f"no encoded authorization message in {message!r}"
    return longest


def start_keyless(workdir: Path, config_text: str | None = None, dev: bool = False,
                  extra_args: tuple[str, ...] = (), open_files: int | None = None,
                  ca_bundle: Path | None = None, env: dict[str, str] | None = None) -> Keyless:
    """Starts `keyless serve` on 127.0.0.1:0 and waits for the listening line and /readyz.
    `open_files` sets the server's open-files limit (soft and hard, so it cannot raise it);
    `ca_bundle` verifies its certificate when the config has a [tls] table; `env` adds to the
    server's environment."""
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / "data"
    config = None
    if dev:
        args = ["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)]
    else:
        assert config_text is not None
        config = workdir / "keyless.toml"
        config.write_text(config_text)
        args = ["serve", "--config", str(config), "--listen", "127.0.0.1:0"]
    binary = keyless_bin()
    if not binary.exists():
        pytest.fail(f"keyless binary {binary} not found (cargo build -p keyless)")
    out, err = workdir / "keyless.out", workdir / "keyless.err"
    env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info"), **(env or {})}
    def limit_open_files() -> None:
        if open_files is not None:
            import resource
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    proc = subprocess.Popen([str(binary), *args, *extra_args], stdout=out.open("wb"), stderr=err.open("wb"),
                            stdin=subprocess.DEVNULL, env=env, preexec_fn=limit_open_files)
    m = _wait_for_line(out, re.compile(r"keyless listening on (https?://127\.0\.0\.1:(\d+))"), proc,
                       START_TIMEOUT, "keyless serve", err)
    srv = Keyless(url=m.group(1), proc=proc, workdir=workdir, data_dir=data_dir, config=config, stderr_path=err,
                  ca_bundle=ca_bundle)
    deadline = time.monotonic() + START_TIMEOUT
    last = ""
    while time.monotonic() < deadline:
        try:
            r = requests.get(srv.url + "/readyz", timeout=2, verify=srv.verify)
            if r.status_code == 200:
                return srv
            last = f"HTTP {r.status_code}: {r.text[:500]}"
        except requests.RequestException as exc:
            last = repr(exc)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    _stop(proc)
    raise RuntimeError(f"keyless /readyz not 200 within {START_TIMEOUT}s (last: {last}).\n"
                       f"--- stderr ---\n{srv.stderr()[-4000:]}")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60,
                   stdin=subprocess.DEVNULL)


def make_pki(d: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate it signed for localhost and 127.0.0.1: (ca.pem, cert, key)."""
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", f"{name}-ca.key", "-out", f"{name}-ca.pem", "-days", "2",
             "-subj", f"/CN=keyless e2e {name} CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", "/CN=localhost", cwd=d)
    (d / f"{name}.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{name}-ca.pem", "-CAkey", f"{name}-ca.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    (d / f"{name}.key").chmod(0o600)
    return d / f"{name}-ca.pem", d / f"{name}.crt", d / f"{name}.key"


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url_encode(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def quote(s: str) -> str:
    return urllib.parse.quote(s, safe="")


AUDIT_CLOCK_ENV = "KEYLESS_DEBUG_AUDIT_CLOCK_OFFSET_FILE"


class AuditClock:
    """Moves a debug build's audit writer clock ahead (what dates files for retention), through
    the file `KEYLESS_DEBUG_AUDIT_CLOCK_OFFSET_FILE` names; the server re-reads it every 100 ms."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.path = workdir / "audit-clock-offset"
        self.offset = 0
        self.path.write_text("0")

    def env(self) -> dict[str, str]:
        return {AUDIT_CLOCK_ENV: str(self.path)}

    def advance(self, days: float) -> None:
        self.offset += int(days * 86400)
        self.path.write_text(str(self.offset))
        time.sleep(0.3)
