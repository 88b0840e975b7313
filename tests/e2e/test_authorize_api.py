"""POST /v1/authorize with requests that real clients (boto3) signed with keyless credentials:
S3-shaped ones included (keys with spaces and '+', presigned URLs, aws-chunked uploads), and every
way a request can be wrong, each with its exact error."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import boto3
import botocore.auth
import pytest
import requests
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from keyless_e2e import ACCOUNT, AUD, REPO, Issuer, Keyless, _stop, default_config, policy, start_issuer, start_keyless

TOKEN = secrets.token_hex(24)
BUCKET = "artifacts"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Issuer, Keyless]]:
    work = tmp_path_factory.mktemp("authorize")
    issuer = start_issuer(work)
    h = issuer.host
    trust = policy({
        "Effect": "Allow",
        "Principal": {"Federated": issuer.provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{h}:aud": AUD}, "StringLike": {f"{h}:sub": f"repo:{REPO}:*"}},
    })
    perms = policy(
        {"Sid": "ReadArtifacts", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": f"arn:aws:s3:::{BUCKET}/*"},
        {"Sid": "NoSecrets", "Effect": "Deny", "Action": "s3:*", "Resource": f"arn:aws:s3:::{BUCKET}/secret/*"},
    )
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    config = default_config(issuer, work / "keyless" / "data") + "\n".join([
        "",
        "[[roles]]",
        f'account = "{ACCOUNT}"',
        'name = "reader"',
        f"trust_policy = '''{trust}'''",
        f"policies = {{ read = '''{perms}''' }}",
        "",
        "[[authorize_clients]]",
        'name = "e2e-gateway"',
        f'token_sha256 = "{digest}"',
        "",
    ])
    keyless = start_keyless(work / "keyless", config)
    try:
        yield issuer, keyless
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


@pytest.fixture(scope="module")
def creds(stack: tuple[Issuer, Keyless]) -> dict[str, str]:
    issuer, keyless = stack
    res = keyless.awiwi(issuer.gha_token(), role="reader", session="gw")
    c = res.credentials
    assert c, res
    return c


class Captured(Exception):
    pass


def s3_client(creds: dict[str, str], endpoint: str = "https://gw.example:9443", region: str = "us-east-2", **cfg: Any):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=region,
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **cfg),
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


def as_authorize(sent: dict[str, Any], action: str, resource: str, with_body: bool = True, **extra: Any) -> dict[str, Any]:
    u = urllib.parse.urlsplit(sent["url"])
    headers = [[k, v.decode() if isinstance(v, bytes) else str(v)] for k, v in sent["headers"].items()]
    if not any(k.lower() == "host" for k, _ in headers):
        headers.append(["host", u.netloc])
    req: dict[str, Any] = {"method": sent["method"], "path": u.path or "/", "query": u.query, "headers": headers,
                           "action": action, "resource": resource, **extra}
    if with_body and sent["body"]:
        import base64
        req["body_base64"] = base64.b64encode(sent["body"]).decode()
    return req


def authorize(keyless: Keyless, req: dict[str, Any], token: str = TOKEN) -> requests.Response:
    return requests.post(keyless.url + "/v1/authorize", json=req, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_get_object_key_with_space_and_plus(stack, creds) -> None:
    _, keyless = stack
    sent = capture(s3_client(creds), "get_object", Bucket=BUCKET, Key="a b/c+d.txt")
    assert "/a%20b/c%2Bd.txt" in sent["url"]
    r = authorize(keyless, as_authorize(sent, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/a b/c+d.txt"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["authenticated"] and body["allowed"] and body["decision"] == "Allowed", body
    p = body["principal"]
    assert p["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/reader/gw"
    assert p["access_key_id"] == creds["AccessKeyId"]
    assert p["subject"] == f"repo:{REPO}:ref:refs/heads/main"
    assert "ReadArtifacts" in body["explanation"]


def test_explicit_deny_is_explained(stack, creds) -> None:
    _, keyless = stack
    sent = capture(s3_client(creds), "get_object", Bucket=BUCKET, Key="secret/k")
    body = authorize(keyless, as_authorize(sent, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/secret/k")).json()
    assert body["authenticated"] and not body["allowed"] and body["decision"] == "ExplicitlyDenied", body
    assert "NoSecrets" in body["explanation"]


def test_put_object_plain_and_chunked(stack, creds) -> None:
    _, keyless = stack
    # Over https boto3 sends an aws-chunked body with an unsigned trailer (clients.md).
    sent = capture(s3_client(creds), "put_object", Bucket=BUCKET, Key="up/x.txt", Body=b"hello world")
    assert sent["headers"].get("X-Amz-Content-SHA256") == b"STREAMING-UNSIGNED-PAYLOAD-TRAILER", sent["headers"]
    body = authorize(keyless, as_authorize(sent, "s3:PutObject", f"arn:aws:s3:::{BUCKET}/up/x.txt")).json()
    assert body["authenticated"] and body["allowed"], body
    # Over http: a real payload hash, verified against the body.
    sent = capture(s3_client(creds, endpoint="http://gw.example:9000"), "put_object", Bucket=BUCKET, Key="up/y", Body=b"data")
    ok = authorize(keyless, as_authorize(sent, "s3:PutObject", f"arn:aws:s3:::{BUCKET}/up/y")).json()
    assert ok["authenticated"] and ok["allowed"] and ok["payload_verified"], ok
    sent["body"] = b"DATA"
    bad = authorize(keyless, as_authorize(sent, "s3:PutObject", f"arn:aws:s3:::{BUCKET}/up/y")).json()
    assert not bad["authenticated"] and bad["error"]["code"] == "XAmzContentSHA256Mismatch", bad


def test_presigned_url(stack, creds) -> None:
    _, keyless = stack
    url = s3_client(creds, signature_version="s3v4").generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "ü file"}, ExpiresIn=300)
    assert "X-Amz-Signature=" in url and "%C3%BC" in url
    sent = {"method": "GET", "url": url, "headers": {"host": urllib.parse.urlsplit(url).netloc}, "body": b""}
    body = authorize(keyless, as_authorize(sent, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/ü file")).json()
    assert body["authenticated"] and body["allowed"], body


def test_a_signature_for_another_service_is_refused(stack, creds) -> None:
    """A presigned STS GetCallerIdentity URL is handed out as proof of identity (Vault's and
    Kubernetes' AWS authenticators take one). Replayed to a gateway for S3, it must not act for
    its signer there: AWS refuses a credential scoped to another service."""
    _, keyless = stack
    sts = boto3.client("sts", endpoint_url="https://sts.example", region_name="us-east-2",
                       aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                       aws_session_token=creds["SessionToken"])
    url = sts.generate_presigned_url("get_caller_identity", ExpiresIn=300, HttpMethod="GET")
    assert "X-Amz-Credential=" in url and "%2Fsts%2Faws4_request" in url
    sent = {"method": "GET", "url": url, "headers": {"host": "sts.example"}, "body": b""}
    replayed = authorize(keyless, as_authorize(sent, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/k")).json()
    assert replayed["authenticated"] is False and replayed["allowed"] is False, replayed
    assert replayed["error"]["code"] == "AuthorizationHeaderMalformed", replayed
    assert "'s3'" in replayed["error"]["message"] and "'sts'" in replayed["error"]["message"], replayed
    # The gateway names its signing service when it differs from the action's prefix; a gateway
    # for S3 that says so is refused the same way.
    named = authorize(keyless, as_authorize(sent, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/k", service="s3")).json()
    assert named["authenticated"] is False and named["error"]["code"] == "AuthorizationHeaderMalformed", named
    # The same URL at the service it was signed for authenticates its signer.
    own = authorize(keyless, as_authorize(sent, "sts:GetCallerIdentity", "*",
                                          body_sha256=hashlib.sha256(b"").hexdigest())).json()
    assert own["authenticated"] is True, own


def test_presigned_expired(stack, creds, monkeypatch) -> None:
    _, keyless = stack
    past = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=10)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: past)
    url = s3_client(creds, signature_version="s3v4").generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "k"}, ExpiresIn=60)
    monkeypatch.undo()
    sent = {"method": "GET", "url": url, "headers": {"host": urllib.parse.urlsplit(url).netloc}, "body": b""}
    body = authorize(keyless, as_authorize(sent, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/k")).json()
    assert not body["authenticated"] and body["error"]["code"] == "AccessDenied", body
    assert "expired" in body["error"]["message"].lower()


def test_tampered_skewed_wrong_region(stack, creds, monkeypatch) -> None:
    _, keyless = stack
    sent = capture(s3_client(creds), "get_object", Bucket=BUCKET, Key="k")
    req = as_authorize(sent, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/k")
    req["path"] = req["path"].replace("/k", "/K")
    body = authorize(keyless, req).json()
    assert (body["authenticated"], body["error"]["code"]) == (False, "SignatureDoesNotMatch"), body

    wrong_region = as_authorize(sent, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/k", region="eu-west-1")
    body = authorize(keyless, wrong_region).json()
    assert not body["authenticated"] and body["error"]["code"] == "AuthorizationHeaderMalformed", body

    past = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: past)
    sent = capture(s3_client(creds), "get_object", Bucket=BUCKET, Key="k")
    monkeypatch.undo()
    body = authorize(keyless, as_authorize(sent, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/k")).json()
    assert not body["authenticated"] and body["error"]["code"] == "RequestTimeTooSkewed", body


def test_unknown_and_tampered_credentials(stack, creds) -> None:
    _, keyless = stack
    forged = dict(creds, SecretAccessKey="x" * 40)
    sent = capture(s3_client(forged), "get_object", Bucket=BUCKET, Key="k")
    body = authorize(keyless, as_authorize(sent, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/k")).json()
    assert body["error"]["code"] == "SignatureDoesNotMatch", body
    tok = creds["SessionToken"]
    forged = dict(creds, SessionToken=tok[:-8] + ("A" if tok[-8] != "A" else "B") + tok[-7:])
    sent = capture(s3_client(forged), "get_object", Bucket=BUCKET, Key="k")
    body = authorize(keyless, as_authorize(sent, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/k")).json()
    assert body["error"]["code"] == "InvalidToken", body


def test_callers_must_be_configured(stack, creds) -> None:
    _, keyless = stack
    sent = capture(s3_client(creds), "get_object", Bucket=BUCKET, Key="k")
    req = as_authorize(sent, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/k")
    for token in ["wrong", "", TOKEN + "x"]:
        r = authorize(keyless, req, token=token)
        assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthorized", r.text
    r = requests.post(keyless.url + "/v1/authorize", json=req, timeout=10)
    assert r.status_code == 401


def test_bad_authorize_requests(stack, creds) -> None:
    _, keyless = stack
    sent = capture(s3_client(creds), "get_object", Bucket=BUCKET, Key="k")
    good = as_authorize(sent, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/k")
    cases = [
        (dict(good, context={"aws:PrincipalArn": "arn:aws:iam::123456789012:role/admin"}), "InvalidParameterValue"),
        (dict(good, context={"s3:prefix": 3}), "InvalidParameterValue"),
        # Keys another service or the token would hold: never in an S3 request in AWS.
        (dict(good, context={"token.actions.githubusercontent.com:sub": "repo:octo-org/app:ref:refs/heads/main"}), "InvalidParameterValue"),
        (dict(good, context={"sts:ExternalId": "x"}), "InvalidParameterValue"),
        (dict(good, context={"prefix": "x"}), "InvalidParameterValue"),
        (dict(good, action=""), "InvalidParameterValue"),
        (dict(good, body_base64="!!!"), "InvalidParameterValue"),
        (dict(good, action="GetObject"), "InvalidParameterValue"),
        (dict(good, action="s3:*"), "InvalidParameterValue"),
        (dict(good, action="s3:DeleteObjec\u212a"), "InvalidParameterValue"),
        (dict(good, service=""), "InvalidParameterValue"),
        (dict(good, service="s" * 65), "InvalidParameterValue"),
        (dict(good, service=3), "MalformedRequest"),
        (dict(good, bogus=1), "MalformedRequest"),
        ({k: v for k, v in good.items() if k != "headers"}, "MalformedRequest"),
    ]
    for req, code in cases:
        r = authorize(keyless, req)
        assert r.status_code == 400 and r.json()["error"]["code"] == code, (req.keys(), r.text)
    # The service's own keys and global ones are the gateway's to pass.
    r = authorize(keyless, dict(good, context={"s3:prefix": "home/", "aws:ResourceTag/team": "blue"}))
    assert r.status_code == 200 and "decision" in r.json(), r.text
    r = requests.post(keyless.url + "/v1/authorize", data=b"{not json", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert r.status_code == 400


def _head_only(url: str, head: bytes, seconds: float = 5) -> bytes | None:
    """Sends a request head whose body never follows; what came back before the server closed,
    or None if it was still waiting after `seconds`."""
    import socket
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head)
        s.settimeout(seconds)
        got = b""
        try:
            while chunk := s.recv(65536):
                got += chunk
                if b"\r\n\r\n" in got and not got.startswith(b"HTTP/1.1 100"):
                    return got
        except (socket.timeout, TimeoutError):
            return None
        return got


def test_a_caller_is_authenticated_before_its_body_is_read(stack) -> None:
    """The body may be 12 MiB. Before, it was read (and held) before the bearer token was looked
    at, so anyone could make the server buffer 12 MiB per connection; `Expect: 100-continue` got
    `100 Continue` and a wait. Now a missing or unknown token is 401 after the head, and a
    body announced over the limit is 413 at once."""
    _, keyless = stack
    for token, want, code in [("wrong", "HTTP/1.1 401", "Unauthorized"),
                              (TOKEN, "HTTP/1.1 413", "RequestEntityTooLarge")]:
        length = 12 * 1024 * 1024 - 1 if token != TOKEN else 12 * 1024 * 1024 + 1
        for expect in (b"Expect: 100-continue\r\n", b""):
            answer = _head_only(keyless.url, b"POST /v1/authorize HTTP/1.1\r\nHost: keyless\r\n"
                                + f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n".encode()
                                + f"Content-Length: {length}\r\n".encode() + expect + b"\r\n")
            assert answer is not None, f"{token} {expect!r}: still waiting for the body"
            head, _, body = answer.decode().partition("\r\n\r\n")
            assert head.startswith(want), (token, expect, head)
            assert json.loads(body)["error"]["code"] == code, body
