"""Issue 4 over the wire: keyless verifies the SigV4 forms real clients send on its own STS
(header-signed POST from boto3 / the CLI / the JS SDK is covered in test_web_identity_clients.py),
presigned GET query strings from boto3, and answers bad signatures with AWS's error codes."""

from __future__ import annotations

import datetime as dt
import urllib.parse

import pytest
import requests
from botocore.exceptions import ClientError

from keyless_e2e import ACCOUNT, Issuer, Keyless, StsResult, assert_no_credentials


@pytest.fixture(scope="module")
def creds(keyless: Keyless, issuer: Issuer) -> dict[str, str]:
    res = keyless.awiwi(issuer.gha_token(), session="sigv4")
    assert res.credentials, res
    return res.credentials


ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/gha/sigv4"


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_presigned_get_caller_identity(keyless: Keyless, creds: dict[str, str]) -> None:
    url = keyless.boto3_client(creds).generate_presigned_url("get_caller_identity", ExpiresIn=300, HttpMethod="GET")
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert q["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and "X-Amz-Security-Token" in q
    r = requests.get(url, timeout=10)
    res = StsResult.parse(r.status_code, r.text)
    assert r.status_code == 200, res
    assert res.values.get("Arn") == ARN, res


def test_presigned_tampered_signature(keyless: Keyless, creds: dict[str, str]) -> None:
    url = keyless.boto3_client(creds).generate_presigned_url("get_caller_identity", ExpiresIn=300, HttpMethod="GET")
    sig = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["X-Amz-Signature"][0]
    bad = url.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
    r = requests.get(bad, timeout=10)
    res = StsResult.parse(r.status_code, r.text)
    assert (res.code, res.status) == ("SignatureDoesNotMatch", 403), res
    assert "Arn" not in res.values


def test_presigned_expired(keyless: Keyless, creds: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth

    past = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=10)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: past)
    url = keyless.boto3_client(creds).generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")
    monkeypatch.undo()
    r = requests.get(url, timeout=10)
    res = StsResult.parse(r.status_code, r.text)
    assert res.status == 403, res
    assert res.code in ("AccessDenied", "ExpiredToken", "SignatureDoesNotMatch"), res
    assert "Arn" not in res.values


def test_clock_skew_rejected(keyless: Keyless, creds: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth

    skewed = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=20)
    client = keyless.boto3_client(creds)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: skewed)
    with pytest.raises(ClientError) as ei:
        client.get_caller_identity()
    # S3 answers RequestTimeTooSkewed (see test_authorize_api); the query APIs (STS, IAM)
    # answer SignatureDoesNotMatch "Signature expired: …", which botocore's clock-skew
    # correction recognises.
    assert error_of(ei) == ("SignatureDoesNotMatch", 403), ei.value.response
    assert ei.value.response["Error"]["Message"].startswith("Signature expired"), ei.value.response


def test_within_skew_window_accepted(keyless: Keyless, creds: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth

    skewed = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=10)
    client = keyless.boto3_client(creds)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: skewed)
    assert client.get_caller_identity()["Arn"] == ARN


def test_unsigned_signed_action_is_missing_authentication_token(keyless: Keyless) -> None:
    res = keyless.sts_raw({"Action": "GetCallerIdentity"})
    assert (res.code, res.status) == ("MissingAuthenticationToken", 403), res
    assert_no_credentials(res)


def test_incomplete_signature(keyless: Keyless, creds: dict[str, str]) -> None:
    r = requests.post(keyless.url + "/", data={"Action": "GetCallerIdentity", "Version": "2011-06-15"}, timeout=10,
                      headers={"Authorization": f"AWS4-HMAC-SHA256 Credential={creds['AccessKeyId']}/20260101/us-east-1/sts/aws4_request",
                               "X-Amz-Date": dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
                               "X-Amz-Security-Token": creds["SessionToken"]})
    res = StsResult.parse(r.status_code, r.text)
    assert (res.code, res.status) == ("IncompleteSignature", 400), res


def test_session_token_missing(keyless: Keyless, creds: dict[str, str]) -> None:
    """An ASIA key signed without its session token cannot be authenticated."""
    with pytest.raises(ClientError) as ei:
        keyless.boto3_client({**creds, "SessionToken": ""}).get_caller_identity()
    code, status = error_of(ei)
    assert (code, status) == ("InvalidClientTokenId", 403), ei.value.response


def test_other_sessions_token_rejected(keyless: Keyless, issuer: Issuer, creds: dict[str, str]) -> None:
    """Key id and secret of one session with the session token of another: rejected."""
    other = keyless.awiwi(issuer.gha_token(), session="other").credentials
    assert other
    with pytest.raises(ClientError) as ei:
        keyless.boto3_client({**creds, "SessionToken": other["SessionToken"]}).get_caller_identity()
    code, status = error_of(ei)
    assert status == 403 and code in ("InvalidClientTokenId", "SignatureDoesNotMatch"), ei.value.response
