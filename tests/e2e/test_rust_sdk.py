"""Issue 3 with a fourth real client, the AWS SDK for Rust (aws-config + aws-sdk-sts, the test peer
in tests/rust-sdk), and the session token size fields of STS since 2026: `MinimumSessionTokenSize`
in, `SessionTokenSize` and `SessionTokenUtilization` out, as boto3, the JS SDK and the Rust SDK
model them."""

from __future__ import annotations

import json
import math
import time

import pytest
from botocore.exceptions import ClientError

from keyless_e2e import ACCOUNT, AUD, REPO, Issuer, Keyless, assert_error, encoded_auth_message

GHA_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/gha/"


def utilization(size: int) -> int:
    return math.ceil(size * 100 / 4096)


def test_rust_sdk_web_identity_provider(keyless: Keyless, issuer: Issuer) -> None:
    out = keyless.rust_sdk("caller-identity", env=keyless.web_identity_env(issuer.gha_token(), "rust-wi"))
    assert "error" not in out, f"{out}\n--- keyless stderr ---\n{keyless.stderr()[-3000:]}"
    assert out["Arn"] == GHA_ARN + "rust-wi"
    assert out["Account"] == ACCOUNT
    assert out["UserId"].startswith("AROA") and out["UserId"].endswith(":rust-wi"), out
    assert out["AccessKeyId"].startswith("ASIA") and out["HasSessionToken"], out


def test_rust_sdk_assume_role_with_web_identity_fields(keyless: Keyless, issuer: Issuer) -> None:
    token = keyless.workdir / "token-rust-fields"
    token.write_text(issuer.gha_token())
    out = keyless.rust_sdk("assume-role-with-web-identity", keyless.role_arn("gha"), str(token), "rust-fields", "900")
    assert "error" not in out, out
    assert out["Arn"] == GHA_ARN + "rust-fields"
    assert out["AssumedRoleId"].endswith(":rust-fields")
    assert out["AccessKeyId"].startswith("ASIA") and out["HasSecret"] and out["HasSessionToken"]
    assert out["SubjectFromWebIdentityToken"] == f"repo:{REPO}:ref:refs/heads/main"
    assert out["Audience"] == AUD
    assert out["Provider"]
    size = out["SessionTokenLength"]
    assert out["SessionTokenSize"] == size and out["SessionTokenUtilization"] == utilization(size), out


@pytest.mark.parametrize("case, modeled", [
    ("expired", "ExpiredTokenException"),
    ("wrong-aud", "InvalidIdentityTokenException"),
    ("tampered", "InvalidIdentityTokenException"),
])
def test_rust_sdk_maps_token_errors_to_its_modeled_exceptions(keyless: Keyless, issuer: Issuer, case: str,
                                                              modeled: str) -> None:
    """The Rust SDK turns the wire code into a modeled exception only when the code is exact."""
    if case == "expired":
        t = int(time.time())
        tok = issuer.gha_token(iat=t - 3600, nbf=t - 3600, exp=t - 600)  # beyond the 5-minute leeway
    elif case == "wrong-aud":
        tok = issuer.gha_token(aud="someone-else")
    else:
        head, payload, sig = issuer.gha_token().split(".")
        tok = f"{head}.{payload}.{sig[:-4]}AAAA"
    before = keyless.issued_total()
    path = keyless.workdir / f"token-rust-{case}"
    path.write_text(tok)
    out = keyless.rust_sdk("assume-role-with-web-identity", keyless.role_arn("gha"), str(path), f"rust-{case}")
    assert out["error"]["modeled"] == modeled, out
    assert out["error"]["status"] == 400, out
    assert "AccessKeyId" not in out
    if before is not None:
        assert keyless.issued_total() == before


def test_rust_sdk_denied_branch_gets_access_denied(keyless: Keyless, issuer: Issuer) -> None:
    path = keyless.workdir / "token-rust-feature"
    path.write_text(issuer.gha_token(ref="refs/heads/feature"))
    out = keyless.rust_sdk("assume-role-with-web-identity", keyless.role_arn("gha"), str(path), "rust-denied")
    assert out["error"]["code"] == "AccessDenied" and out["error"]["status"] == 403, out
    assert "AccessKeyId" not in out


def test_rust_sdk_chained_assume_role_narrowed_and_decode(keyless: Keyless, issuer: Issuer) -> None:
    env = keyless.web_identity_env(issuer.gha_token(), "rust-src")
    only_caller_identity = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]})
    out = keyless.rust_sdk("assume-role", keyless.role_arn("deploy"), "rust-chained", only_caller_identity, env=env)
    assert "error" not in out, out
    assert out["AssumedRoleArn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/rust-chained"
    assert out["Arn"] == out["AssumedRoleArn"], out
    assert out["PackedPolicySize"] == out["SessionTokenUtilization"] > 0, out
    assert out["SessionTokenSize"] > 0, out
    # A malformed session policy: the modeled exception, nothing issued.
    bad = keyless.rust_sdk("assume-role", keyless.role_arn("deploy"), "rust-bad", "{not json", env=env)
    assert bad["error"]["modeled"] == "MalformedPolicyDocumentException", bad
    # A guardrail denial's encoded message, decoded through the Rust SDK with the web-identity
    # session (the gha role may decode): the explanation names the guardrail.
    with pytest.raises(ClientError) as ei:
        keyless.boto3_client(keyless.awiwi(issuer.gha_token(), session="rust-locked").credentials).assume_role(
            RoleArn=keyless.role_arn("locked"), RoleSessionName="nope")
    encoded = encoded_auth_message(ei.value.response["Error"]["Message"])
    decoded = keyless.rust_sdk("decode-authorization-message", encoded, env=env)
    assert "error" not in decoded, decoded
    assert "no-locked-role" in decoded["DecodedMessage"] or "DenyLockedRole" in decoded["DecodedMessage"], decoded
    garbage = keyless.rust_sdk("decode-authorization-message", "garbage-not-a-message", env=env)
    assert garbage["error"]["modeled"] == "InvalidAuthorizationMessageException", garbage
    assert garbage["error"]["status"] == 400, garbage


def test_every_issued_token_reports_its_size(keyless: Keyless, issuer: Issuer) -> None:
    """`SessionTokenSize` is the token's length in bytes and `SessionTokenUtilization` the share
    of the 4,096-byte limit it uses (rounded up), on every AssumeRole*, with or without a policy."""
    res = keyless.awiwi(issuer.gha_token(), session="size-raw")
    assert res.credentials, res
    size = len(res.credentials["SessionToken"])
    assert res.values["SessionTokenSize"] == str(size), res.values
    assert res.values["SessionTokenUtilization"] == str(utilization(size)), res.values
    # boto3 parses them (botocore's model has them since mid-2026); PackedPolicySize only with a policy.
    sts = keyless.boto3_client()
    out = sts.assume_role_with_web_identity(RoleArn=keyless.role_arn("gha"), RoleSessionName="size-boto3",
                                            WebIdentityToken=issuer.gha_token())
    size = len(out["Credentials"]["SessionToken"])
    assert out["SessionTokenSize"] == size and out["SessionTokenUtilization"] == utilization(size), out
    assert "PackedPolicySize" not in out
    chained = keyless.boto3_client(out["Credentials"]).assume_role(RoleArn=keyless.role_arn("deploy"),
                                                                    RoleSessionName="size-chained")
    size = len(chained["Credentials"]["SessionToken"])
    assert chained["SessionTokenSize"] == size and chained["SessionTokenUtilization"] == utilization(size)


@pytest.mark.parametrize("minimum", [0, 1000, 3001, 4096])
def test_minimum_session_token_size_pads_the_token(keyless: Keyless, issuer: Issuer, minimum: int) -> None:
    sts = keyless.boto3_client()
    out = sts.assume_role_with_web_identity(RoleArn=keyless.role_arn("gha"), RoleSessionName=f"pad-{minimum}",
                                            WebIdentityToken=issuer.gha_token(), MinimumSessionTokenSize=minimum)
    token = out["Credentials"]["SessionToken"]
    natural = len(keyless.awiwi(issuer.gha_token(), session=f"pad-{minimum}").credentials["SessionToken"])
    want = max(minimum, natural)
    assert want <= len(token) < want + 4 and len(token) <= 4096, (minimum, natural, len(token))
    assert out["SessionTokenSize"] == len(token) and out["SessionTokenUtilization"] == utilization(len(token))
    # The padded token works like any other, and the audit records what was asked.
    ident = keyless.boto3_client(out["Credentials"]).get_caller_identity()
    assert ident["Arn"] == GHA_ARN + f"pad-{minimum}"
    # Chained, through AssumeRole.
    chained = keyless.boto3_client(out["Credentials"]).assume_role(
        RoleArn=keyless.role_arn("deploy"), RoleSessionName=f"padc-{minimum}", MinimumSessionTokenSize=minimum)
    assert len(chained["Credentials"]["SessionToken"]) >= minimum
    assert chained["SessionTokenSize"] == len(chained["Credentials"]["SessionToken"])


def test_minimum_session_token_size_through_the_js_and_rust_sdks(keyless: Keyless, issuer: Issuer) -> None:
    path = keyless.workdir / "token-js-pad"
    path.write_text(issuer.gha_token())
    js = keyless.node("assume-role-with-web-identity", keyless.role_arn("gha"), str(path), "js-pad", "900", "3500")
    assert "error" not in js, js
    assert 3500 <= js["SessionTokenLength"] == js["SessionTokenSize"] < 3504, js
    assert js["SessionTokenUtilization"] == utilization(js["SessionTokenSize"]), js
    path = keyless.workdir / "token-rust-pad"
    path.write_text(issuer.gha_token())
    rust = keyless.rust_sdk("assume-role-with-web-identity", keyless.role_arn("gha"), str(path), "rust-pad", "",
                            "4096")
    assert "error" not in rust, rust
    assert rust["SessionTokenLength"] == rust["SessionTokenSize"] == 4096, rust
    assert rust["SessionTokenUtilization"] == 100, rust


@pytest.mark.parametrize("value, message", [
    ("4097", "Value '4097' at 'minimumSessionTokenSize' failed to satisfy constraint: "
             "Member must have value less than or equal to 4096"),
    ("-1", "Value '-1' at 'minimumSessionTokenSize' failed to satisfy constraint: "
           "Member must have value greater than or equal to 0"),
    ("big", "at 'minimumSessionTokenSize' failed to satisfy constraint: Member must be an integer"),
])
def test_a_bad_minimum_session_token_size_is_a_validation_error(keyless: Keyless, issuer: Issuer, value: str,
                                                                message: str) -> None:
    before = keyless.issued_total()
    res = keyless.awiwi(issuer.gha_token(), session="pad-bad", MinimumSessionTokenSize=value)
    assert_error(res, "ValidationError", 400)
    assert res.message and message in res.message, res
    if before is not None:
        assert keyless.issued_total() == before
