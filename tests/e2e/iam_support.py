"""Helpers for the IAM end-to-end tests: a config holding only an admin role and a provider,
boto3 IAM clients with keyless session credentials, raw signed IAM calls, and /v1/authorize
checks of S3-shaped requests."""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import requests
from botocore.awsrequest import AWSResponse

from keyless_e2e import ACCOUNT, AUD, REGION, Issuer, Keyless, policy

IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
ADMIN_REPO = "octo-org/platform"
AUTHZ_TOKEN = secrets.token_hex(24)
BUCKET = "artifacts"


def q(s: str) -> str:
    assert "'''" not in s
    return f"'''{s}'''"


def admin_config(issuer: Issuer, data_dir: Path, extra: str = "") -> str:
    """Only an admin role (trusted by `issuer` for ADMIN_REPO's main branch) and a provider."""
    h = issuer.host
    trust = policy({
        "Effect": "Allow",
        "Principal": {"Federated": issuer.provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{h}:aud": AUD, f"{h}:sub": f"repo:{ADMIN_REPO}:ref:refs/heads/main"}},
    })
    perms = policy({"Sid": "Administer", "Effect": "Allow",
                    "Action": ["iam:*", "sts:DecodeAuthorizationMessage"], "Resource": "*"})
    digest = hashlib.sha256(AUTHZ_TOKEN.encode()).hexdigest()
    return "\n".join([
        'listen = "127.0.0.1:0"',
        f'data_dir = "{data_dir}"',
        "",
        "[iam]",
        "allow_loopback_http_providers = true",
        "",
        "[[accounts]]",
        f'id = "{ACCOUNT}"',
        'name = "ci"',
        'ou = "/workloads"',
        "",
        "[[providers]]",
        f'account = "{ACCOUNT}"',
        f'url = "{issuer.url}"',
        f'client_ids = ["{AUD}"]',
        "allow_http = true",
        "",
        "[[roles]]",
        f'account = "{ACCOUNT}"',
        'name = "admin"',
        f"trust_policy = {q(trust)}",
        f"policies = {{ admin = {q(perms)} }}",
        "",
        "[[authorize_clients]]",
        'name = "e2e-gateway"',
        f'token_sha256 = "{digest}"',
        "",
        extra,
    ]) + "\n"


def admin_creds(keyless: Keyless, issuer: Issuer, **extra: Any) -> dict[str, str]:
    res = keyless.awiwi(issuer.gha_token(repo=ADMIN_REPO), role="admin", session="admin", **extra)
    c = res.credentials
    assert c, res
    return c


def iam_client(keyless: Keyless, creds: dict[str, str]):
    """A boto3 IAM client (signing service iam, region us-east-1) pointed at keyless."""
    import botocore.session

    bs = botocore.session.Session()
    for f in ("aws-empty-config", "aws-empty-credentials"):
        (keyless.workdir / f).touch()
    bs.set_config_variable("config_file", str(keyless.workdir / "aws-empty-config"))
    bs.set_config_variable("credentials_file", str(keyless.workdir / "aws-empty-credentials"))
    session = boto3.Session(botocore_session=bs, region_name=REGION)
    return session.client(
        "iam", endpoint_url=keyless.url, region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def cli_env(keyless: Keyless, creds: dict[str, str]) -> dict[str, str]:
    return keyless.client_env(
        AWS_ENDPOINT_URL_IAM=keyless.url,
        AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
        AWS_SESSION_TOKEN=creds["SessionToken"],
    )


class Raw:
    """The parsed answer of a raw signed IAM call."""

    def __init__(self, status: int, body: str) -> None:
        self.status, self.body = status, body
        self.root = ET.fromstring(body)
        self.code = self.root.findtext(f"{{{IAM_NS}}}Error/{{{IAM_NS}}}Code")
        self.message = self.root.findtext(f"{{{IAM_NS}}}Error/{{{IAM_NS}}}Message")

    def all(self, tag: str) -> list[str]:
        return [e.text or "" for e in self.root.iter(f"{{{IAM_NS}}}{tag}")]

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.body[:3000]}"


def iam_raw(keyless: Keyless, creds: dict[str, str], params: dict[str, Any]) -> Raw:
    """A form-encoded IAM call signed by botocore for service iam, region us-east-1."""
    form = {"Version": "2010-05-08", **{k: str(v) for k, v in params.items()}}
    body = urllib.parse.urlencode(form)
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=keyless.url + "/", data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    c = botocore.credentials.Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    botocore.auth.SigV4Auth(c, "iam", REGION).add_auth(req)
    r = requests.post(keyless.url + "/", data=body, headers=dict(req.headers), timeout=30)
    return Raw(r.status_code, r.text)


def assert_iam_error(err: Exception, code: str, status: int) -> None:
    """A botocore ClientError with this code and HTTP status."""
    resp = getattr(err, "response", None)
    assert resp is not None, f"not a ClientError: {err!r}"
    assert resp["Error"]["Code"] == code, resp
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == status, resp


# /v1/authorize -------------------------------------------------------------------------------

def s3_client(creds: dict[str, str]):
    return boto3.client(
        "s3", endpoint_url="http://gw.example:9000", region_name="us-east-2",
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def capture(client, op: str, **kwargs: Any) -> dict[str, Any]:
    """Runs a boto3 call up to the wire and returns what it would have sent."""
    seen: dict[str, Any] = {}

    def before_send(request, **_: Any) -> AWSResponse:
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        seen.update(method=request.method, url=request.url, headers=dict(request.headers), body=body or b"")
        return AWSResponse(request.url, 200, {}, None)

    client.meta.events.register("before-send", before_send)
    try:
        getattr(client, op)(**kwargs)
    except Exception:  # the fake 200 may not parse; the request is what we want
        pass
    assert seen, "boto3 sent nothing"
    if isinstance(seen["body"], str):
        seen["body"] = seen["body"].encode()
    return seen


def authorize_s3(keyless: Keyless, creds: dict[str, str], op: str, action: str, key: str, **kw: Any) -> dict[str, Any]:
    """Asks /v1/authorize about an S3 request boto3 signed with `creds`."""
    sent = capture(s3_client(creds), op, Bucket=BUCKET, Key=key, **kw)
    u = urllib.parse.urlsplit(sent["url"])
    headers = [[k, v.decode() if isinstance(v, bytes) else str(v)] for k, v in sent["headers"].items()]
    if not any(k.lower() == "host" for k, _ in headers):
        headers.append(["host", u.netloc])
    req: dict[str, Any] = {"method": sent["method"], "path": u.path or "/", "query": u.query, "headers": headers,
                           "action": action, "resource": f"arn:aws:s3:::{BUCKET}/{key}"}
    if sent["body"]:
        req["body_base64"] = base64.b64encode(sent["body"]).decode()
    r = requests.post(keyless.url + "/v1/authorize", json=req,
                      headers={"Authorization": f"Bearer {AUTHZ_TOKEN}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def gha_trust(issuer: Issuer, repo: str, actions: Any = "sts:AssumeRoleWithWebIdentity") -> str:
    h = issuer.host
    return policy({
        "Effect": "Allow",
        "Principal": {"Federated": issuer.provider_arn},
        "Action": actions,
        "Condition": {"StringEquals": {f"{h}:aud": AUD}, "StringLike": {f"{h}:sub": f"repo:{repo}:*"}},
    })


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc)
