"""Guardrails and identity policies keyed on a role's tags (`aws:ResourceTag/<key>`,
`iam:ResourceTag/<key>`) and on the attached policy's ARN, checked with boto3 against the real
binary: each guarded call is refused and changes nothing, and each allowed one succeeds."""
from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from iam_support import admin_config, admin_creds, assert_iam_error, gha_trust, iam_client
from keyless_e2e import ACCOUNT, Issuer, Keyless, _stop, encoded_auth_message, policy, start_issuer, start_keyless

APP_REPO = "octo-org/app"
GUARDRAILS = [
    # No one reaches a production role by role chaining, whatever their own policies say.
    ("prod-by-break-glass-only", policy({
        "Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*",
        "Condition": {"StringEquals": {"aws:ResourceTag/tier": "prod"}}})),
    ("keep-security-policies", policy({
        "Effect": "Deny", "Action": "iam:DetachRolePolicy", "Resource": "*",
        "Condition": {"ArnLike": {"iam:PolicyARN": "arn:aws:iam::*:policy/Security/*"}}})),
]


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Issuer, Keyless, Any, dict[str, str]]]:
    work = tmp_path_factory.mktemp("iam-resource-tags")
    (work / "i").mkdir()
    issuer = start_issuer(work / "i")
    extra = "\n".join(
        line for name, doc in GUARDRAILS
        for line in ("[[guardrails]]", 'target = "/"', f'name = "{name}"', f"document = '''{doc}'''", ""))
    keyless = start_keyless(work / "keyless", admin_config(issuer, work / "keyless" / "data", extra))
    try:
        admin = admin_creds(keyless, issuer)
        iam = iam_client(keyless, admin)
        iam.create_role(RoleName="ci", AssumeRolePolicyDocument=gha_trust(issuer, APP_REPO))
        # CDK's bootstrap idiom: assume any role tagged as a bootstrap role, plus prod by name.
        iam.put_role_policy(RoleName="ci", PolicyName="hop", PolicyDocument=policy(
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*",
             "Condition": {"StringEquals": {"iam:ResourceTag/aws-cdk:bootstrap-role": "deploy"}}},
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn("prod")}))
        # Trusting the account delegates to the caller's own policies (a trust policy naming the
        # ci role would allow it by itself).
        trusts_ci = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                            "Action": "sts:AssumeRole"})
        iam.create_role(RoleName="deploy", AssumeRolePolicyDocument=trusts_ci,
                        Tags=[{"Key": "aws-cdk:bootstrap-role", "Value": "deploy"}])
        iam.create_role(RoleName="prod", AssumeRolePolicyDocument=trusts_ci,
                        Tags=[{"Key": "tier", "Value": "prod"}])
        iam.create_role(RoleName="untagged", AssumeRolePolicyDocument=trusts_ci)
        yield issuer, keyless, iam, admin
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def ci_sts(issuer: Issuer, keyless: Keyless):
    res = keyless.awiwi(issuer.gha_token(repo=APP_REPO), role="ci", session="ci")
    assert res.credentials, res
    return keyless.boto3_client(res.credentials)


def test_assume_role_sees_the_target_roles_tags(stack) -> None:
    issuer, keyless, _, admin = stack
    sts = ci_sts(issuer, keyless)
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=role_arn("prod"), RoleSessionName="cdk")
    assert_iam_error(e.value, "AccessDenied", 403)
    assert "Credentials" not in e.value.response
    decoded = keyless.boto3_client(admin).decode_authorization_message(
        EncodedMessage=encoded_auth_message(e.value.response["Error"]["Message"]))["DecodedMessage"]
    assert "prod-by-break-glass-only" in json.loads(decoded)["explanation"], decoded
    out = sts.assume_role(RoleArn=role_arn("deploy"), RoleSessionName="cdk")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/cdk"
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=role_arn("untagged"), RoleSessionName="cdk")
    assert_iam_error(e.value, "AccessDenied", 403)


def test_detach_with_another_spelling_neither_passes_the_guardrail_nor_detaches(stack) -> None:
    iam = stack[2]
    arn = iam.create_policy(PolicyName="Baseline", Path="/Security/", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="untagged", PolicyArn=arn)
    for spelled, code, status in [
        (arn, "AccessDenied", 403),
        (arn.replace("/Security/", "/security/"), "NoSuchEntity", 404),
        (arn.replace("arn:aws:iam:", "arn:AWS:IAM:"), "NoSuchEntity", 404),
    ]:
        with pytest.raises(ClientError) as e:
            iam.detach_role_policy(RoleName="untagged", PolicyArn=spelled)
        assert_iam_error(e.value, code, status)
        attached = iam.list_attached_role_policies(RoleName="untagged")["AttachedPolicies"]
        assert attached == [{"PolicyName": "Baseline", "PolicyArn": arn}], spelled


def test_tags_given_to_create_role_need_iam_tag_role(stack) -> None:
    """AWS authorizes CreateRole's Tags as iam:TagRole as well: a principal that may create
    roles but not tag them cannot create a role carrying the tag a guardrail or trust reads."""
    issuer, keyless, admin_iam, _ = stack
    repo = "octo-org/creator"
    admin_iam.create_role(RoleName="creator", AssumeRolePolicyDocument=gha_trust(issuer, repo))
    admin_iam.put_role_policy(RoleName="creator", PolicyName="create-only", PolicyDocument=policy(
        {"Effect": "Allow", "Action": ["iam:CreateRole", "iam:GetRole"], "Resource": "*"}))
    res = keyless.awiwi(issuer.gha_token(repo=repo), role="creator", session="creator")
    assert res.credentials, res
    iam = iam_client(keyless, res.credentials)
    trusts_ci = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                        "Action": "sts:AssumeRole"})
    with pytest.raises(ClientError) as e:
        iam.create_role(RoleName="self-tagged", AssumeRolePolicyDocument=trusts_ci,
                        Tags=[{"Key": "aws-cdk:bootstrap-role", "Value": "deploy"}])
    assert_iam_error(e.value, "AccessDenied", 403)
    assert "is not authorized to perform: iam:TagRole on resource" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        admin_iam.get_role(RoleName="self-tagged")
    assert_iam_error(e.value, "NoSuchEntity", 404)
    created = iam.create_role(RoleName="self-tagged", AssumeRolePolicyDocument=trusts_ci)["Role"]
    assert "Tags" not in created or created["Tags"] == []
