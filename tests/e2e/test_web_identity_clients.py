"""Issue 3: the web-identity credential provider of each real SDK gets keyless credentials, and
GetCallerIdentity signed with them returns the assumed-role ARN."""

from __future__ import annotations

import datetime as dt
import json
import os
import re

import pytest

from keyless_e2e import ACCOUNT, AUD, REPO, Issuer, Keyless, assert_no_credentials

GHA_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/gha/"


def test_boto3_web_identity_provider(keyless: Keyless, issuer: Issuer, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    env = keyless.web_identity_env(issuer.gha_token(), "boto3-wi")
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k)
    for k, v in env.items():
        if k.startswith("AWS_"):
            monkeypatch.setenv(k, v)
    session = boto3.Session(region_name="us-east-1")
    creds = session.get_credentials()
    assert creds is not None
    frozen = creds.get_frozen_credentials()
    assert frozen.access_key.startswith("ASIA") and len(frozen.access_key) == 20, frozen.access_key
    assert frozen.token
    ident = session.client("sts").get_caller_identity()
    assert ident["Arn"] == GHA_ARN + "boto3-wi"
    assert ident["Account"] == ACCOUNT
    assert ident["UserId"].endswith(":boto3-wi") and ident["UserId"].startswith("AROA"), ident


def test_aws_cli_web_identity_provider(keyless: Keyless, issuer: Issuer) -> None:
    env = keyless.web_identity_env(issuer.gha_token(), "cli-wi")
    out = json.loads(keyless.aws("sts", "get-caller-identity", env=env).stdout)
    assert out["Arn"] == GHA_ARN + "cli-wi"
    assert out["Account"] == ACCOUNT


@pytest.mark.parametrize("mode", ["caller-identity", "web-identity-caller-identity"])
def test_js_sdk_web_identity_provider(keyless: Keyless, issuer: Issuer, mode: str) -> None:
    session = f"js-{mode[:3]}"
    env = keyless.web_identity_env(issuer.gha_token(), session)
    out = keyless.node(mode, env=env)
    assert "error" not in out, f"{out}\n--- keyless stderr ---\n{keyless.stderr()[-3000:]}"
    assert out["Arn"] == GHA_ARN + session
    assert out["Account"] == ACCOUNT


def test_js_sdk_assume_role_with_web_identity_fields(keyless: Keyless, issuer: Issuer) -> None:
    tok = keyless.workdir / "token-js-fields"
    tok.write_text(issuer.gha_token())
    out = keyless.node("assume-role-with-web-identity", keyless.role_arn("gha"), str(tok), "js-fields", "900")
    assert "error" not in out, out
    assert out["AssumedRoleUser"]["Arn"] == GHA_ARN + "js-fields"
    assert out["AssumedRoleUser"]["AssumedRoleId"].endswith(":js-fields")
    assert out["AccessKeyId"].startswith("ASIA") and out["HasSecret"] and out["HasSessionToken"]
    assert out["SubjectFromWebIdentityToken"] == f"repo:{REPO}:ref:refs/heads/main"
    assert out["Audience"] == AUD
    exp = dt.datetime.fromisoformat(out["Expiration"].replace("Z", "+00:00"))
    left = (exp - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert 800 < left <= 905, f"DurationSeconds=900 gave {left}s"


def test_cli_assume_role_with_web_identity_then_caller_identity(keyless: Keyless, issuer: Issuer) -> None:
    out = json.loads(keyless.aws(
        "sts", "assume-role-with-web-identity", "--role-arn", keyless.role_arn("gha"),
        "--role-session-name", "cli-explicit", "--web-identity-token", issuer.gha_token(),
        env=keyless.client_env(AWS_ACCESS_KEY_ID="unused", AWS_SECRET_ACCESS_KEY="unused")).stdout)
    c = out["Credentials"]
    assert re.fullmatch(r"ASIA[A-Z2-7]{16}", c["AccessKeyId"]), c["AccessKeyId"]
    assert len(c["SessionToken"]) <= 4096
    assert out["AssumedRoleUser"]["Arn"] == GHA_ARN + "cli-explicit"
    assert "PackedPolicySize" not in out, "AWS omits PackedPolicySize when no Policy is passed"
    env = keyless.client_env(AWS_ACCESS_KEY_ID=c["AccessKeyId"], AWS_SECRET_ACCESS_KEY=c["SecretAccessKey"],
                             AWS_SESSION_TOKEN=c["SessionToken"])
    ident = json.loads(keyless.aws("sts", "get-caller-identity", env=env).stdout)
    assert ident["Arn"] == GHA_ARN + "cli-explicit"
    assert ident["UserId"] == out["AssumedRoleUser"]["AssumedRoleId"]


def test_raw_post_and_get_forms_and_response_shape(keyless: Keyless, issuer: Issuer) -> None:
    for method in ("POST", "GET"):
        res = keyless.sts_raw({"Action": "AssumeRoleWithWebIdentity", "RoleArn": keyless.role_arn("gha"),
                               "RoleSessionName": f"raw-{method.lower()}",
                               "WebIdentityToken": issuer.gha_token()}, method=method)
        assert res.status == 200, res
        assert res.root is not None and res.root.tag == "AssumeRoleWithWebIdentityResponse", res
        assert '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">' in res.body
        creds = res.credentials
        assert creds is not None and set(creds) >= {"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", creds["Expiration"]), creds["Expiration"]
        assert res.values["Arn"] == GHA_ARN + f"raw-{method.lower()}"
        assert res.values["Provider"] in (issuer.url, issuer.host, issuer.provider_arn), res.values
        assert res.values["RequestId"]


def test_boto3_signed_calls_with_keyless_credentials(keyless: Keyless, issuer: Issuer) -> None:
    sts = keyless.boto3_client()
    out = sts.assume_role_with_web_identity(RoleArn=keyless.role_arn("gha"), RoleSessionName="boto3-direct",
                                            WebIdentityToken=issuer.gha_token())
    creds = out["Credentials"]
    signed = keyless.boto3_client(creds)
    ident = signed.get_caller_identity()
    assert ident["Arn"] == GHA_ARN + "boto3-direct"
    info = signed.get_access_key_info(AccessKeyId=creds["AccessKeyId"])
    assert info["Account"] == ACCOUNT


def test_get_access_key_info_all_clients(keyless: Keyless, issuer: Issuer) -> None:
    res = keyless.awiwi(issuer.gha_token(), session="akinfo")
    creds = res.credentials
    assert creds, res
    env = keyless.client_env(AWS_ACCESS_KEY_ID=creds["AccessKeyId"], AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
                             AWS_SESSION_TOKEN=creds["SessionToken"])
    cli = json.loads(keyless.aws("sts", "get-access-key-info", "--access-key-id", creds["AccessKeyId"], env=env).stdout)
    assert cli["Account"] == ACCOUNT
    js = keyless.node("access-key-info", creds["AccessKeyId"], env=env)
    assert js == {"Account": ACCOUNT}, js
    js_ident = keyless.node("caller-identity", env=env)
    assert js_ident.get("Arn") == GHA_ARN + "akinfo", js_ident


def test_tampered_session_token_rejected(keyless: Keyless, issuer: Issuer) -> None:
    """A signed call whose session token was altered gets InvalidClientTokenId (403)."""
    from botocore.exceptions import ClientError

    creds = keyless.awiwi(issuer.gha_token(), session="tamper").credentials
    assert creds
    tok = creds["SessionToken"]
    i = len(tok) // 2
    creds = {**creds, "SessionToken": tok[:i] + ("A" if tok[i] != "A" else "B") + tok[i + 1:]}
    with pytest.raises(ClientError) as ei:
        keyless.boto3_client(creds).get_caller_identity()
    err = ei.value.response
    assert err["Error"]["Code"] == "InvalidClientTokenId", err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_wrong_secret_signature_does_not_match(keyless: Keyless, issuer: Issuer) -> None:
    from botocore.exceptions import ClientError

    creds = keyless.awiwi(issuer.gha_token(), session="badsecret").credentials
    assert creds
    creds = {**creds, "SecretAccessKey": creds["SecretAccessKey"][::-1]}
    with pytest.raises(ClientError) as ei:
        keyless.boto3_client(creds).get_caller_identity()
    assert ei.value.response["Error"]["Code"] == "SignatureDoesNotMatch", ei.value.response
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_denied_web_identity_issues_nothing_via_sdk(keyless: Keyless, issuer: Issuer) -> None:
    """boto3 surfaces AccessDenied for a trust-policy mismatch, and no credentials exist."""
    from botocore.exceptions import ClientError

    before = keyless.issued_total()
    with pytest.raises(ClientError) as ei:
        keyless.boto3_client().assume_role_with_web_identity(
            RoleArn=keyless.role_arn("gha"), RoleSessionName="sdk-denied",
            WebIdentityToken=issuer.gha_token(ref="refs/heads/feature"))
    assert ei.value.response["Error"]["Code"] == "AccessDenied"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "Credentials" not in ei.value.response
    after = keyless.issued_total()
    if before is not None:
        assert after == before
    res = keyless.awiwi(issuer.gha_token(ref="refs/heads/feature"), session="raw-denied")
    assert_no_credentials(res)
