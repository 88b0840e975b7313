"""Issue 3: trust-policy outcomes and every bad web-identity input with its exact AWS error.

Every denial also checks that no credential was issued: no <Credentials>/secret/ASIA key in the
body, and (when the server exposes an issued-credentials metric) the counter did not move."""

from __future__ import annotations

import json
import time

import pytest

from keyless_e2e import (ACCOUNT, AUD, REPO, Issuer, Keyless, StsResult, assert_error, assert_no_credentials,
                      b64url_decode, b64url_encode, gha_claims)


@pytest.fixture
def no_issue(keyless: Keyless):
    """Asserts, after the test, that the issued-credentials metric did not move."""
    before = keyless.issued_total()
    yield
    after = keyless.issued_total()
    if before is not None:
        assert after == before, f"credentials were issued during a denial test ({before} -> {after})"


# ---------------------------------------------------------------------------------------------
# trust-policy outcomes


def test_main_branch_allowed(keyless: Keyless, issuer: Issuer) -> None:
    res = keyless.awiwi(issuer.gha_token(), session="main")
    assert res.status == 200, res
    assert res.credentials and res.credentials["AccessKeyId"].startswith("ASIA")
    assert res.values["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/gha/main"
    assert res.values["SubjectFromWebIdentityToken"] == f"repo:{REPO}:ref:refs/heads/main"


@pytest.mark.parametrize("repo,ref,role", [
    (REPO, "refs/heads/feature", "gha"),                       # another branch
    ("octo-org/other", "refs/heads/main", "gha"),              # another repository
    (f"{REPO}-evil", "refs/heads/main", "gha"),                # prefix collision
    (f"{REPO}-evil", "refs/heads/main", "gha-any-branch"),     # prefix collision vs `repo:octo-org/demo:*`
    ("octo-org/other", "refs/heads/main", "gha-any-branch"),
], ids=["other-branch", "other-repo", "repo-evil-exact", "repo-evil-wildcard", "other-repo-wildcard"])
def test_trust_denied(keyless: Keyless, issuer: Issuer, no_issue: None, repo: str, ref: str, role: str) -> None:
    res = keyless.awiwi(issuer.gha_token(repo=repo, ref=ref), role=role, session="denied")
    assert_error(res, "AccessDenied", 403)
    assert "sts:AssumeRoleWithWebIdentity" in (res.message or ""), res


def test_wildcard_role_allows_other_branch(keyless: Keyless, issuer: Issuer) -> None:
    res = keyless.awiwi(issuer.gha_token(ref="refs/heads/feature"), role="gha-any-branch", session="feat")
    assert res.status == 200, res
    assert res.credentials


def test_sub_claim_collision_within_sub_denied(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    """The sub says main, but the repository claim is the evil prefix-collision repo."""
    claims = {**gha_claims(), "repository": f"{REPO}-evil"}
    res = keyless.awiwi(issuer.token(**claims), session="mixed")
    assert_error(res, "AccessDenied", 403)


@pytest.mark.parametrize("name,value", [
    ("SUB", f"repo:{REPO}:ref:refs/heads/main"),   # would have replaced the feature branch's sub
    ("Repository", REPO),
], ids=["SUB", "Repository"])
def test_claim_names_that_differ_only_in_case_are_refused(keyless: Keyless, issuer: Issuer, no_issue: None,
                                                          name: str, value: str) -> None:
    """Condition key names are case-insensitive, so `SUB` beside `sub` would name one key, and an
    IdP that lets users add claims would let them pick the subject a trust policy sees. Before
    the fix, the `SUB` claim replaced a feature branch's `sub` and the main-only role allowed it."""
    claims = {**gha_claims(ref="refs/heads/feature"), name: value}
    res = keyless.awiwi(issuer.token(**claims), session="case")
    assert_error(res, "InvalidIdentityToken", 400)
    assert "differ only in case" in (res.message or ""), res


def test_a_claim_named_aud_in_another_case_is_not_the_audience_key(keyless: Keyless, issuer: Issuer) -> None:
    """With `azp` deciding the audience and no `aud`, an `AUD` claim clashes with no name but
    must still not become `<issuer>:aud` (the trust policy requires the real audience)."""
    claims = {**gha_claims(), "azp": AUD, "AUD": "sts.amazonaws.com.evil", "omit": "aud"}
    res = keyless.awiwi(issuer.token(**claims), session="azp")
    assert res.status == 200, res
    assert res.values["Audience"] == AUD


def test_unknown_role_denied(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    res = keyless.awiwi(issuer.gha_token(), role="does-not-exist")
    assert_error(res, "AccessDenied", 403)


# ---------------------------------------------------------------------------------------------
# bad tokens


def now() -> int:
    return int(time.time())


def test_expired_token(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    t = now()
    tok = issuer.gha_token(iat=t - 3600, nbf=t - 3600, exp=t - 600)  # beyond the 5-minute leeway
    res = keyless.awiwi(tok)
    assert_error(res, "ExpiredTokenException", 400)


def test_expired_within_leeway_accepted(keyless: Keyless, issuer: Issuer) -> None:
    t = now()
    res = keyless.awiwi(issuer.gha_token(iat=t - 600, nbf=t - 600, exp=t - 60))
    assert res.status == 200, res


def test_a_token_older_than_a_day_is_refused_however_far_its_exp(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    # A subject revocation refuses tokens issued before it only while it is kept (a day and an
    # hour), so a token with a far exp must not mint for longer than that after its iat.
    t = now()
    res = keyless.awiwi(issuer.gha_token(iat=t - 86400 - 301, nbf=t - 86400 - 301, exp=t + 365 * 86400))
    assert_error(res, "ExpiredTokenException", 400)
    assert "Token too old" in res.message, res


def test_a_token_almost_a_day_old_is_accepted(keyless: Keyless, issuer: Issuer) -> None:
    t = now()
    res = keyless.awiwi(issuer.gha_token(iat=t - 86400 + 60, nbf=t - 86400 + 60, exp=t + 3600))
    assert res.status == 200, res


def test_not_yet_valid_token(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    t = now()
    tok = issuer.gha_token(iat=t, nbf=t + 3600, exp=t + 7200)
    res = keyless.awiwi(tok)
    # Well-formed and signed, but not acceptable yet: the claim is rejected (403), as AWS does
    # for claims outside their validity ("the claim has expired or has been explicitly revoked").
    assert_error(res, "IDPRejectedClaim", 403)
    assert "not yet valid" in res.message, res


def test_issued_in_future_token(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    t = now()
    res = keyless.awiwi(issuer.gha_token(iat=t + 3600, nbf=t - 10, exp=t + 7200))
    assert_error(res, "IDPRejectedClaim", 403)
    assert "issued in the future" in res.message, res


def test_wrong_audience(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    res = keyless.awiwi(issuer.gha_token(aud="https://github.com/octo-org"))
    assert_error(res, "InvalidIdentityToken", 400)


def test_multiple_audiences_without_azp(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    res = keyless.awiwi(issuer.gha_token(aud=json.dumps([AUD, "other"])))
    assert_error(res, "InvalidIdentityToken", 400)


def test_wrong_issuer(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    res = keyless.awiwi(issuer.gha_token(iss="https://token.actions.githubusercontent.com"))
    assert_error(res, "InvalidIdentityToken", 400)


def test_missing_sub(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    res = keyless.awiwi(issuer.gha_token(omit="sub"))
    assert_error(res, "InvalidIdentityToken", 400)


def test_unknown_kid(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    res = keyless.awiwi(issuer.forged("unknown-kid", **gha_claims()))
    assert_error(res, "InvalidIdentityToken", 400)


def test_unknown_kid_refetch_is_rate_limited(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    keyless.awiwi(issuer.forged("unknown-kid", **gha_claims()))
    before = issuer.stats()["jwks_requests"]
    for _ in range(5):
        assert_error(keyless.awiwi(issuer.forged("unknown-kid", **gha_claims())), "InvalidIdentityToken", 400)
    fetched = issuer.stats()["jwks_requests"] - before
    assert fetched <= 1, f"{fetched} JWKS fetches for 5 unknown-kid tokens: refetch is not rate-limited"


def tamper_signature(token: str) -> str:
    h, p, s = token.split(".")
    sig = bytearray(b64url_decode(s))
    sig[len(sig) // 2] ^= 0x01
    return f"{h}.{p}.{b64url_encode(bytes(sig))}"


def tamper_payload(token: str) -> str:
    h, p, s = token.split(".")
    claims = json.loads(b64url_decode(p))
    claims["sub"] = f"repo:{REPO}:ref:refs/heads/main"
    claims["repository"] = REPO
    return f"{h}.{b64url_encode(json.dumps(claims).encode())}.{s}"


def test_tampered_signature(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    res = keyless.awiwi(tamper_signature(issuer.gha_token()))
    assert_error(res, "InvalidIdentityToken", 400)


def test_tampered_payload(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    """A feature-branch token rewritten to claim main keeps its old signature: rejected."""
    res = keyless.awiwi(tamper_payload(issuer.gha_token(ref="refs/heads/feature")))
    assert_error(res, "InvalidIdentityToken", 400)


def test_alg_none(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    res = keyless.awiwi(issuer.forged("alg-none", **gha_claims()))
    assert_error(res, "InvalidIdentityToken", 400)


def test_hs256_signed_with_public_key(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    res = keyless.awiwi(issuer.forged("hs256-pubkey", **gha_claims()))
    assert_error(res, "InvalidIdentityToken", 400)


@pytest.mark.parametrize("token", ["not.a.jwt", "eyJhbGciOiJSUzI1NiJ9.e30", "a" * 100, "....."],
                         ids=["three-garbage-parts", "two-parts", "no-dots", "empty-parts"])
def test_garbage_tokens(keyless: Keyless, no_issue: None, token: str) -> None:
    res = keyless.awiwi(token)
    assert_error(res, "InvalidIdentityToken", 400)


# ---------------------------------------------------------------------------------------------
# bad parameters


def test_duration_above_role_max(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    res = keyless.awiwi(issuer.gha_token(), DurationSeconds=7200)  # role gha max is 3600
    assert_error(res, "ValidationError", 400)


@pytest.mark.parametrize("duration", ["899", "43201", "abc", "-1", "99999999999999999999"])
def test_duration_out_of_range(keyless: Keyless, issuer: Issuer, no_issue: None, duration: str) -> None:
    res = keyless.awiwi(issuer.gha_token(), DurationSeconds=duration)
    assert_error(res, "ValidationError", 400)


def test_malformed_session_policy(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    res = keyless.awiwi(issuer.gha_token(), Policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow"')
    assert_error(res, "MalformedPolicyDocument", 400)


def test_session_policy_bad_effect(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    pol = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}]})
    res = keyless.awiwi(issuer.gha_token(), Policy=pol)
    assert_error(res, "MalformedPolicyDocument", 400)


def test_oversized_session_policy(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    pol = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::bucket-{i:04d}/*"} for i in range(60)]})
    assert len(pol) > 2048
    res = keyless.awiwi(issuer.gha_token(), Policy=pol)
    assert res.code in ("ValidationError", "PackedPolicyTooLarge"), res
    assert_error(res, res.code or "", 400)


def test_session_policy_reports_packed_size(keyless: Keyless, issuer: Issuer) -> None:
    pol = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity",
                                                              "Resource": "*"}]})
    res = keyless.awiwi(issuer.gha_token(), Policy=pol)
    assert res.status == 200, res
    size = int(res.values["PackedPolicySize"])
    assert 0 < size <= 100


@pytest.mark.parametrize("params,code", [
    ({"RoleSessionName": "bad name!"}, "ValidationError"),
    ({"RoleSessionName": "x"}, "ValidationError"),
    ({"RoleSessionName": "s" * 65}, "ValidationError"),
    ({"RoleArn": "not-an-arn-at-all-really"}, "ValidationError"),
    ({"RoleArn": "arn"}, "ValidationError"),
    ({"WebIdentityToken": "abc"}, "ValidationError"),
    ({"WebIdentityToken": "a" * 20001}, "ValidationError"),
], ids=["session-bad-chars", "session-short", "session-long", "arn-garbage", "arn-short", "token-short",
        "token-long"])
def test_bad_parameters(keyless: Keyless, issuer: Issuer, no_issue: None, params: dict, code: str) -> None:
    base = {"Action": "AssumeRoleWithWebIdentity", "RoleArn": keyless.role_arn("gha"), "RoleSessionName": "ok",
            "WebIdentityToken": issuer.gha_token()}
    res = keyless.sts_raw({**base, **params})
    assert_error(res, code, 400)


def test_missing_token_parameter(keyless: Keyless, no_issue: None) -> None:
    res = keyless.sts_raw({"Action": "AssumeRoleWithWebIdentity", "RoleArn": keyless.role_arn("gha"),
                           "RoleSessionName": "ok"})
    assert res.code in ("ValidationError", "MissingParameter"), res
    assert_error(res, res.code or "", 400)


def test_unknown_action(keyless: Keyless, no_issue: None) -> None:
    res = keyless.sts_raw({"Action": "DefinitelyNotAnAction"})
    assert res.code in ("InvalidAction",), res
    assert res.status == 400, res
    assert_no_credentials(res)


def test_provider_id_rejected(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    res = keyless.awiwi(issuer.gha_token(), ProviderId="www.amazon.com")
    assert res.status == 400 and res.code, res
    assert_no_credentials(res)


def test_oversized_body_rejected(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    import requests

    body = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleSessionName=ok&RoleArn=" \
        + keyless.role_arn("gha") + "&WebIdentityToken=" + issuer.gha_token() + "&Junk=" + "x" * (2 * 1024 * 1024)
    r = requests.post(keyless.url + "/", data=body, timeout=30,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    res = StsResult.parse(r.status_code, r.text)
    assert_error(res, "RequestEntityTooLarge", 413)
    assert "262144 bytes" in (res.message or ""), res
    assert_no_credentials(res)
    # A body of exactly 256 KiB is read, and judged on its parameters; one byte more is not.
    prefix = "Action=GetCallerIdentity&Version=2011-06-15&Junk="
    for size, code, status in [(256 * 1024, "MissingAuthenticationToken", 403),
                               (256 * 1024 + 1, "RequestEntityTooLarge", 413)]:
        r = requests.post(keyless.url + "/", data=prefix + "x" * (size - len(prefix)), timeout=30,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert_error(StsResult.parse(r.status_code, r.text), code, status)


def test_binary_garbage_body(keyless: Keyless, no_issue: None) -> None:
    import requests

    r = requests.post(keyless.url + "/", data=bytes(range(256)) * 16, timeout=30,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    assert_no_credentials(StsResult.parse(r.status_code, r.text))


def post_raw_form(keyless: Keyless, body: str, query: str = "") -> StsResult:
    """POSTs a form body exactly as given (no client-side encoding)."""
    import requests

    r = requests.post(keyless.url + "/" + (f"?{query}" if query else ""), data=body.encode("latin-1"), timeout=30,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    return StsResult.parse(r.status_code, r.text)


def test_form_pieces_decode_the_same_on_both_paths(keyless: Keyless, issuer: Issuer) -> None:
    # Pieces without '+' or '%' are copied as they are; the others are decoded. A raw ARN and
    # a percent-encoded one name the same role.
    token = issuer.gha_token()
    raw = f"Action=AssumeRoleWithWebIdentity&RoleArn={keyless.role_arn('gha')}&RoleSessionName=raw&WebIdentityToken={token}"
    enc = ("Action=AssumeRoleWithWebIdentity&RoleArn=" + keyless.role_arn("gha").replace(":", "%3A").replace("/", "%2F")
           + f"&RoleSessionName=enc&WebIdentityToken={token}")
    for body, session in ((raw, "raw"), (enc, "enc")):
        res = post_raw_form(keyless, body)
        assert res.status == 200 and res.credentials, res
        assert res.values["Arn"].endswith(f"assumed-role/gha/{session}"), res


@pytest.mark.parametrize("session", ["a+b", "a%20b", "a%FFb", "%00ok"],
                         ids=["plus-is-space", "percent-space", "invalid-utf8", "nul"])
def test_decoded_session_names_are_validated(keyless: Keyless, issuer: Issuer, no_issue: None, session: str) -> None:
    body = (f"Action=AssumeRoleWithWebIdentity&RoleArn={keyless.role_arn('gha')}&RoleSessionName={session}"
            f"&WebIdentityToken={issuer.gha_token()}")
    res = post_raw_form(keyless, body)
    assert_error(res, "ValidationError", 400)
    assert_no_credentials(res)


def test_a_parameter_in_both_query_and_body_is_refused(keyless: Keyless, issuer: Issuer, no_issue: None) -> None:
    body = (f"Action=AssumeRoleWithWebIdentity&RoleArn={keyless.role_arn('gha')}&RoleSessionName=ok"
            f"&WebIdentityToken={issuer.gha_token()}")
    res = post_raw_form(keyless, body, query="RoleSessionName=other")
    assert_error(res, "InvalidParameterValue", 400)
    assert_no_credentials(res)


@pytest.mark.parametrize("repeat", ["RoleArn={arn}", "RoleSessionName=other", "Tags.member.1.Key=k",
                                    "Action=AssumeRoleWithWebIdentity"],
                         ids=["role-arn", "session-name", "tag-member", "action"])
def test_a_parameter_given_twice_in_the_body_is_refused(keyless: Keyless, issuer: Issuer, no_issue: None,
                                                        repeat: str) -> None:
    # The repeat is not next to its first occurrence, so it is found only once the names are sorted.
    arn = keyless.role_arn("gha")
    first = repeat.format(arn=arn)
    body = (f"Action=AssumeRoleWithWebIdentity&RoleArn={arn}&Tags.member.1.Key=k&RoleSessionName=ok"
            f"&WebIdentityToken={issuer.gha_token()}&DurationSeconds=900&{first}")
    res = post_raw_form(keyless, body)
    assert_error(res, "InvalidParameterValue", 400)
    name = first.split("=", 1)[0]
    assert res.message == f"The parameter {name} was given more than once.", res
    assert_no_credentials(res)
