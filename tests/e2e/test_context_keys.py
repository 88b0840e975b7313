"""Global condition keys of the request context as AWS sets them, seen through real clients:
`aws:RequestedRegion` (the signature's region; us-east-1 for the unsigned
AssumeRoleWithWebIdentity), `aws:UserAgent` (the client's header) and `aws:ResourceAccount`
(the role's account), in trust policies and identity policies, over STS and /v1/authorize."""
from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any, Iterator

import json

import boto3
import botocore.config
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
import pytest
import requests
from botocore.exceptions import ClientError

from keyless_e2e import (ACCOUNT, AUD, REPO, Issuer, Keyless, _stop, default_config, policy, role_toml, start_issuer,
                         start_keyless, toml_literal)
from test_authorize_api import as_authorize, capture, s3_client

TOKEN = secrets.token_hex(24)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Issuer, Keyless]]:
    work = tmp_path_factory.mktemp("context-keys")
    issuer = start_issuer(work)
    h = issuer.host

    def from_gha(condition: dict[str, Any]) -> str:
        statement = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/gha"},
                     "Action": "sts:AssumeRole"}
        return policy(statement | ({"Condition": condition} if condition else {}))

    def web(extra: dict[str, str]) -> str:
        return policy({"Effect": "Allow", "Principal": {"Federated": issuer.provider_arn},
                       "Action": "sts:AssumeRoleWithWebIdentity",
                       "Condition": {"StringEquals": {f"{h}:aud": AUD, **extra},
                                     "StringLike": {f"{h}:sub": f"repo:{REPO}:*"}}})

    chain_on = policy({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})
    from_web_sessions = policy({
        "Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:role/gha", f"arn:aws:iam::{ACCOUNT}:role/hop"]},
        "Condition": {"StringEquals": {"aws:FederatedProvider": issuer.provider_arn}}})
    reads = policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::artifacts/*",
                    "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"},
                                  "StringLike": {"aws:UserAgent": "Boto3/*"}}})
    roles = [
        ("eu-only", from_gha({"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}), {}),
        ("boto-only", from_gha({"StringLike": {"aws:UserAgent": "Boto3/*"}}), {}),
        ("own-account", from_gha({"StringEquals": {"aws:ResourceAccount": ACCOUNT}}), {}),
        ("web-us-east-1", web({"aws:RequestedRegion": "us-east-1", "aws:ResourceAccount": ACCOUNT}), {}),
        ("web-eu-west-1", web({"aws:RequestedRegion": "eu-west-1"}), {}),
        ("reader", web({}), {"read": reads}),
        ("hop", from_gha({}), {"chain": chain_on}),
        ("revoker", web({}), {"revoke": policy({
            "Effect": "Allow", "Action": "keyless:RevokeSessions", "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1", "aws:ResourceAccount": ACCOUNT}}})}),
        ("from-web-sessions", from_web_sessions, {}),
    ]
    config = default_config(issuer, work / "keyless" / "data")
    for name, trust, pols in roles:
        config += role_toml(name, trust, pols) + "\n"
    # Tokens may enter only roles tagged for CI (a guardrail on the role's tags, for roles that
    # carry the `ci-guarded` tag, so the other roles here are left alone).
    tagged_only = policy({"Effect": "Deny", "Action": "sts:AssumeRoleWithWebIdentity", "Resource": "*",
                          "Condition": {"StringNotEquals": {"aws:ResourceTag/ci": "yes"},
                                        "StringLike": {"iam:ResourceTag/ci-guarded": "*"}}})
    for name, tag in [("ci-tagged", "yes"), ("ci-untagged", "no")]:
        config += role_toml(name, web({}), {}) + f'\ntags = {{ ci = "{tag}", ci-guarded = "1" }}\n'
    config += "\n".join(["", "[[guardrails]]", 'target = "/"', 'name = "ci-tagged-roles"',
                         f"document = {toml_literal(tagged_only)}", ""])
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    config += f'\n[[authorize_clients]]\nname = "e2e-gateway"\ntoken_sha256 = "{digest}"\n'
    keyless = start_keyless(work / "keyless", config)
    try:
        yield issuer, keyless
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


@pytest.fixture(scope="module")
def gha_creds(stack: tuple[Issuer, Keyless]) -> dict[str, str]:
    issuer, keyless = stack
    res = keyless.awiwi(issuer.gha_token(), session="ctx-src")
    assert res.credentials, res
    return res.credentials


def sts(keyless: Keyless, creds: dict[str, str], region: str, user_agent: str | None = None):
    """A boto3 STS client for `region` (its signatures are scoped to it), optionally with its
    whole User-Agent replaced."""
    cfg = botocore.config.Config(retries={"max_attempts": 1}, user_agent=user_agent)
    return boto3.client("sts", endpoint_url=keyless.url, region_name=region, verify=keyless.verify, config=cfg,
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


def denied(call) -> dict[str, Any]:
    with pytest.raises(ClientError) as ei:
        call()
    err = ei.value.response
    assert err["Error"]["Code"] == "AccessDenied", err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "Credentials" not in err
    return err


def test_a_chained_assume_role_sees_the_region_it_was_signed_for(stack, gha_creds) -> None:
    _, keyless = stack
    arn = keyless.role_arn("eu-only")
    out = sts(keyless, gha_creds, "eu-west-1").assume_role(RoleArn=arn, RoleSessionName="eu")
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    denied(lambda: sts(keyless, gha_creds, "us-east-1").assume_role(RoleArn=arn, RoleSessionName="us"))


def test_a_trust_policy_on_the_user_agent_sees_the_clients_header(stack, gha_creds) -> None:
    _, keyless = stack
    arn = keyless.role_arn("boto-only")
    out = sts(keyless, gha_creds, "us-east-1").assume_role(RoleArn=arn, RoleSessionName="boto")
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    denied(lambda: sts(keyless, gha_creds, "us-east-1", user_agent="ci-tool/1.0").assume_role(
        RoleArn=arn, RoleSessionName="other"))


def test_a_user_agent_that_is_not_visible_ascii_is_no_key_and_a_long_one_is_bounded(stack, gha_creds) -> None:
    _, keyless = stack
    arn = keyless.role_arn("boto-only")
    # A byte outside ASCII (latin-1 \xff, UTF-8 é) makes no `aws:UserAgent`: the positive
    # `StringLike Boto3/*` then fails, whatever the rest of the header says. (A tab is a
    # header's own character, and stays in the key.)
    for hostile in ["Boto3/1.40 \xff", "Boto3/1.40 caf\u00c3\u00a9"]:
        denied(lambda: sts(keyless, gha_creds, "us-east-1", user_agent=hostile).assume_role(
            RoleArn=arn, RoleSessionName="hostile"))
    # A long one is a key like any other, up to the request head's 32 KiB...
    long_ua = "Boto3/1.40 " + "x" * 20_000
    out = sts(keyless, gha_creds, "us-east-1", user_agent=long_ua).assume_role(RoleArn=arn, RoleSessionName="long")
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    # ... and past it the request is refused by the HTTP front (431, no body an SDK reads)
    # before anything is decided.
    r = requests.post(keyless.url + "/", data={"Action": "GetCallerIdentity", "Version": "2011-06-15"},
                      headers={"User-Agent": "Boto3/1.40 " + "x" * 40_000}, timeout=10, verify=keyless.verify)
    assert r.status_code == 431, (r.status_code, r.text[:200])
    assert "AccessKeyId" not in r.text


def test_the_resource_account_of_assume_role_is_the_roles(stack, gha_creds) -> None:
    _, keyless = stack
    out = sts(keyless, gha_creds, "us-east-1").assume_role(RoleArn=keyless.role_arn("own-account"),
                                                           RoleSessionName="own")
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")


def test_web_identity_is_requested_of_us_east_1(stack) -> None:
    issuer, keyless = stack
    # Unsigned, so the client's region reaches keyless nowhere: whatever region boto3 is set to,
    # the call is made to keyless's one endpoint, which names us-east-1 as AWS's global one is.
    for region in ["us-east-1", "eu-west-1"]:
        client = boto3.client("sts", endpoint_url=keyless.url, region_name=region, verify=keyless.verify,
                              aws_access_key_id="unused", aws_secret_access_key="unused",
                              config=botocore.config.Config(retries={"max_attempts": 1}))
        out = client.assume_role_with_web_identity(RoleArn=keyless.role_arn("web-us-east-1"),
                                                   RoleSessionName="web", WebIdentityToken=issuer.gha_token())
        assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
        denied(lambda: client.assume_role_with_web_identity(
            RoleArn=keyless.role_arn("web-eu-west-1"), RoleSessionName="web", WebIdentityToken=issuer.gha_token()))


def test_authorize_sees_the_signatures_region_and_the_forwarded_user_agent(stack) -> None:
    issuer, keyless = stack
    res = keyless.awiwi(issuer.gha_token(), role="reader", session="gw")
    creds = res.credentials
    assert creds, res

    def decide(region: str, **extra: Any) -> dict[str, Any]:
        sent = capture(s3_client(creds, region=region), "get_object", Bucket="artifacts", Key="k")
        req = as_authorize(sent, "s3:GetObject", "arn:aws:s3:::artifacts/k", **extra)
        r = requests.post(keyless.url + "/v1/authorize", json=req, headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=10)
        return r.json() | {"status": r.status_code}

    ok = decide("eu-west-1")
    assert ok["authenticated"] and ok["decision"] == "Allowed", ok
    other = decide("us-east-2")
    assert other["authenticated"] and other["decision"] == "ImplicitlyDenied", other
    # Both are read from the signed request; a gateway cannot say otherwise.
    for key in ["aws:RequestedRegion", "aws:UserAgent"]:
        refused = decide("us-east-2", context={key: "eu-west-1"})
        assert refused["status"] == 400 and refused["error"]["code"] == "InvalidParameterValue", refused


def test_denials_issue_no_credentials_in_the_raw_answer(stack, gha_creds) -> None:
    # The raw XML of a denied chained call, not only what boto3 parsed.
    _, keyless = stack
    client = sts(keyless, gha_creds, "us-east-1")
    captured: dict[str, bytes] = {}
    client.meta.events.register("after-call", lambda http_response, **_: captured.update(body=http_response.content))
    denied(lambda: client.assume_role(RoleArn=keyless.role_arn("eu-only"), RoleSessionName="us"))
    assert b"<Code>AccessDenied</Code>" in captured["body"]
    assert b"<Credentials>" not in captured["body"] and b"<AccessKeyId>" not in captured["body"]


def test_the_federated_provider_is_the_web_identity_sessions_only(stack, gha_creds) -> None:
    # The session the token was exchanged for has it (the provider's ARN); a session chained from
    # it is another role's and has none, as on AWS.
    _, keyless = stack
    arn = keyless.role_arn("from-web-sessions")
    out = sts(keyless, gha_creds, "us-east-1").assume_role(RoleArn=arn, RoleSessionName="first-hop")
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    hop = sts(keyless, gha_creds, "us-east-1").assume_role(RoleArn=keyless.role_arn("hop"), RoleSessionName="hop")
    denied(lambda: sts(keyless, hop["Credentials"], "us-east-1").assume_role(RoleArn=arn, RoleSessionName="second"))


def test_a_revocation_sees_the_signatures_region_and_the_resource_account(stack) -> None:
    issuer, keyless = stack
    admin = keyless.awiwi(issuer.gha_token(), role="revoker", session="admin").credentials
    victim = keyless.awiwi(issuer.gha_token(), session="victim").credentials
    assert admin and victim

    def revoke(region: str) -> requests.Response:
        body = json.dumps({"type": "session", "value": victim["AccessKeyId"]}).encode()
        req = AWSRequest(method="POST", url=keyless.url + "/v1/revocations", data=body,
                         headers={"Content-Type": "application/json"})
        SigV4Auth(Credentials(admin["AccessKeyId"], admin["SecretAccessKey"], admin["SessionToken"]),
                  "keyless", region).add_auth(req)
        prepared = req.prepare()
        return requests.post(prepared.url, headers=dict(prepared.headers), data=body, timeout=10)

    r = revoke("us-east-1")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "AccessDenied"), r.text
    r = revoke("eu-west-1")
    assert r.status_code == 200, r.text


def test_a_guardrail_on_the_roles_tags_sees_them_in_web_identity(stack) -> None:
    issuer, keyless = stack
    ok = keyless.awiwi(issuer.gha_token(), role="ci-tagged", session="tagged")
    assert ok.credentials, ok
    no = keyless.awiwi(issuer.gha_token(), role="ci-untagged", session="untagged")
    assert (no.code, no.status) == ("AccessDenied", 403), no
    assert no.credentials is None
