"""Every IAM error path: the exact AWS code and HTTP status in the IAM namespace, and a check
that nothing changed (roles, their policies, attachments and tags, managed policies and their
versions, providers)."""
from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from iam_support import (
    IAM_NS, admin_config, admin_creds, assert_iam_error, gha_trust, iam_client, iam_raw,
)
from keyless_e2e import ACCOUNT, AUD, Issuer, Keyless, _stop, policy, start_issuer, start_keyless

ALLOW_S3 = policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
POLICY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/base-policy"
MISSING_ARN = f"arn:aws:iam::{ACCOUNT}:policy/missing"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Issuer, Keyless, dict[str, str]]]:
    work = tmp_path_factory.mktemp("iam-errors")
    (work / "i").mkdir()
    issuer = start_issuer(work / "i")
    keyless = start_keyless(work / "keyless", admin_config(issuer, work / "keyless" / "data"))
    try:
        creds = admin_creds(keyless, issuer)
        iam = iam_client(keyless, creds)
        iam.create_role(RoleName="base", AssumeRolePolicyDocument=gha_trust(issuer, "octo-org/app"),
                        Tags=[{"Key": "team", "Value": "blue"}])
        iam.put_role_policy(RoleName="base", PolicyName="inline", PolicyDocument=ALLOW_S3)
        iam.create_policy(PolicyName="base-policy", PolicyDocument=ALLOW_S3)
        iam.attach_role_policy(RoleName="base", PolicyArn=POLICY_ARN)
        iam.create_role(RoleName="empty", AssumeRolePolicyDocument=gha_trust(issuer, "octo-org/app"))
        yield issuer, keyless, creds
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


@pytest.fixture(scope="module")
def iam(stack):
    return iam_client(stack[1], stack[2])


def snapshot(iam) -> dict[str, Any]:
    roles = {r["RoleName"]: r for r in iam.list_roles()["Roles"]}
    out: dict[str, Any] = {"roles": roles, "providers": iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]}
    for name in roles:
        out[f"{name}/inline"] = {p: iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                                 for p in iam.list_role_policies(RoleName=name)["PolicyNames"]}
        out[f"{name}/attached"] = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        out[f"{name}/tags"] = iam.list_role_tags(RoleName=name)["Tags"]
        out[f"{name}/role"] = iam.get_role(RoleName=name)["Role"]
    for p in iam.list_policies(Scope="Local")["Policies"]:
        out[p["Arn"]] = (p, iam.list_policy_versions(PolicyArn=p["Arn"])["Versions"])
    return out


def expect_error(iam, call: str, kwargs: dict[str, Any], code: str, status: int) -> ClientError:
    before = snapshot(iam)
    with pytest.raises(ClientError) as e:
        getattr(iam, call)(**kwargs)
    assert_iam_error(e.value, code, status)
    assert snapshot(iam) == before, f"{call} changed state although it failed"
    return e.value


BOTO_CASES = [
    # NoSuchEntity 404
    ("get_role", {"RoleName": "nope"}, "NoSuchEntity", 404),
    ("delete_role", {"RoleName": "nope"}, "NoSuchEntity", 404),
    ("update_role", {"RoleName": "nope", "MaxSessionDuration": 7200}, "NoSuchEntity", 404),
    ("get_role_policy", {"RoleName": "base", "PolicyName": "nope"}, "NoSuchEntity", 404),
    ("delete_role_policy", {"RoleName": "base", "PolicyName": "nope"}, "NoSuchEntity", 404),
    ("put_role_policy", {"RoleName": "nope", "PolicyName": "p", "PolicyDocument": ALLOW_S3}, "NoSuchEntity", 404),
    ("get_policy", {"PolicyArn": MISSING_ARN}, "NoSuchEntity", 404),
    ("delete_policy", {"PolicyArn": MISSING_ARN}, "NoSuchEntity", 404),
    ("attach_role_policy", {"RoleName": "base", "PolicyArn": MISSING_ARN}, "NoSuchEntity", 404),
    ("attach_role_policy", {"RoleName": "base", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}, "NoSuchEntity", 404),
    ("detach_role_policy", {"RoleName": "empty", "PolicyArn": POLICY_ARN}, "NoSuchEntity", 404),
    ("get_policy_version", {"PolicyArn": POLICY_ARN, "VersionId": "v9"}, "NoSuchEntity", 404),
    ("set_default_policy_version", {"PolicyArn": POLICY_ARN, "VersionId": "v9"}, "NoSuchEntity", 404),
    ("delete_policy_version", {"PolicyArn": POLICY_ARN, "VersionId": "v9"}, "NoSuchEntity", 404),
    ("put_role_permissions_boundary", {"RoleName": "base", "PermissionsBoundary": MISSING_ARN}, "NoSuchEntity", 404),
    ("get_open_id_connect_provider", {"OpenIDConnectProviderArn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/nope.example"}, "NoSuchEntity", 404),
    ("delete_open_id_connect_provider", {"OpenIDConnectProviderArn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/nope.example"}, "NoSuchEntity", 404),
    ("list_role_tags", {"RoleName": "nope"}, "NoSuchEntity", 404),
    # EntityAlreadyExists 409 (role and policy names ignore case)
    ("create_role", {"RoleName": "BASE", "AssumeRolePolicyDocument": "{}"}, "EntityAlreadyExists", 409),
    ("create_policy", {"PolicyName": "Base-Policy", "PolicyDocument": ALLOW_S3}, "EntityAlreadyExists", 409),
    # MalformedPolicyDocument 400
    ("create_role", {"RoleName": "bad", "AssumeRolePolicyDocument": "{not json"}, "MalformedPolicyDocument", 400),
    ("create_role", {"RoleName": "bad", "AssumeRolePolicyDocument": policy({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})}, "MalformedPolicyDocument", 400),
    ("put_role_policy", {"RoleName": "base", "PolicyName": "p", "PolicyDocument": policy({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"})}, "MalformedPolicyDocument", 400),
    ("put_role_policy", {"RoleName": "base", "PolicyName": "p", "PolicyDocument": '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Effect":"Deny","Action":"s3:*","Resource":"*"}]}'}, "MalformedPolicyDocument", 400),
    ("create_policy", {"PolicyName": "bad", "PolicyDocument": policy({"Effect": "Maybe", "Action": "s3:*", "Resource": "*"})}, "MalformedPolicyDocument", 400),
    ("create_policy_version", {"PolicyArn": POLICY_ARN, "PolicyDocument": "[]"}, "MalformedPolicyDocument", 400),
    ("update_assume_role_policy", {"RoleName": "base", "PolicyDocument": policy({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole", "Condition": {"Bogus": {"a": "b"}}})}, "MalformedPolicyDocument", 400),
    # LimitExceeded 409 (size)
    ("put_role_policy", {"RoleName": "base", "PolicyName": "big", "PolicyDocument": policy(*[{"Sid": f"S{i}", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::bucket-{i:04d}/*"} for i in range(200)])}, "LimitExceeded", 409),
    # DeleteConflict 409
    ("delete_role", {"RoleName": "base"}, "DeleteConflict", 409),
    ("delete_policy", {"PolicyArn": POLICY_ARN}, "DeleteConflict", 409),
    ("delete_policy_version", {"PolicyArn": POLICY_ARN, "VersionId": "v1"}, "DeleteConflict", 409),
    # InvalidInput 400
    ("create_open_id_connect_provider", {"Url": "http://issuer.example.com", "ClientIDList": [AUD]}, "InvalidInput", 400),
    ("create_open_id_connect_provider", {"Url": "https://issuer.example.com?x=1", "ClientIDList": [AUD]}, "InvalidInput", 400),
    ("create_open_id_connect_provider", {"Url": "ftp://issuer.example.com"}, "InvalidInput", 400),
    ("tag_role", {"RoleName": "base", "Tags": [{"Key": "aws:owner", "Value": "x"}]}, "InvalidInput", 400),
    ("tag_role", {"RoleName": "base", "Tags": [{"Key": "a", "Value": "1"}, {"Key": "A", "Value": "2"}]}, "InvalidInput", 400),
    ("tag_role", {"RoleName": "base", "Tags": [{"Key": "équipe", "Value": "1"}, {"Key": "ÉQUIPE", "Value": "2"}]}, "InvalidInput", 400),
    ("create_role", {"RoleName": "tagged", "AssumeRolePolicyDocument": "{}", "Tags": [{"Key": "aws:x", "Value": "1"}]}, "InvalidInput", 400),
    ("simulate_principal_policy", {"PolicySourceArn": f"arn:aws:iam::{ACCOUNT}:user/alice", "ActionNames": ["s3:GetObject"]}, "InvalidInput", 400),
    # InvalidClientTokenId is tested below; AccessDenied with a weaker caller below.
]


@pytest.mark.parametrize("call,kwargs,code,status", BOTO_CASES, ids=[f"{c[0]}-{c[2]}-{i}" for i, c in enumerate(BOTO_CASES)])
def test_error_paths(iam, call, kwargs, code, status) -> None:
    expect_error(iam, call, kwargs, code, status)


def test_messages_say_what_is_wrong(iam) -> None:
    e = expect_error(iam, "get_role", {"RoleName": "nope"}, "NoSuchEntity", 404)
    assert e.response["Error"]["Message"] == "The role with name nope cannot be found."
    e = expect_error(iam, "create_role", {"RoleName": "BASE", "AssumeRolePolicyDocument": "{}"}, "EntityAlreadyExists", 409)
    assert e.response["Error"]["Message"] == "Role with name BASE already exists."
    e = expect_error(iam, "delete_role", {"RoleName": "base"}, "DeleteConflict", 409)
    assert e.response["Error"]["Message"] == "Cannot delete entity, must delete policies first."
    e = expect_error(iam, "delete_policy", {"PolicyArn": POLICY_ARN}, "DeleteConflict", 409)
    assert e.response["Error"]["Message"] == "Cannot delete a policy attached to entities."


def test_six_versions_and_eleven_attachments_are_limits(iam) -> None:
    arn = iam.create_policy(PolicyName="versions", PolicyDocument=ALLOW_S3)["Policy"]["Arn"]
    for _ in range(4):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=ALLOW_S3)
    assert len(iam.list_policy_versions(PolicyArn=arn)["Versions"]) == 5
    e = expect_error(iam, "create_policy_version", {"PolicyArn": arn, "PolicyDocument": ALLOW_S3}, "LimitExceeded", 409)
    assert "5 versions" in e.response["Error"]["Message"]
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert [v["VersionId"] for v in versions] == ["v5", "v4", "v3", "v2", "v1"]
    iam.delete_policy_version(PolicyArn=arn, VersionId="v3")
    v6 = iam.create_policy_version(PolicyArn=arn, PolicyDocument=ALLOW_S3, SetAsDefault=True)["PolicyVersion"]
    assert v6["VersionId"] == "v6" and v6["IsDefaultVersion"]
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v6"
    for v in ("v1", "v2", "v4", "v5"):
        iam.delete_policy_version(PolicyArn=arn, VersionId=v)
    iam.delete_policy(PolicyArn=arn)

    arns = [iam.create_policy(PolicyName=f"many-{i}", PolicyDocument=ALLOW_S3)["Policy"]["Arn"] for i in range(11)]
    for a in arns[:10]:
        iam.attach_role_policy(RoleName="empty", PolicyArn=a)
    iam.attach_role_policy(RoleName="empty", PolicyArn=arns[0])  # attaching twice is a no-op
    e = expect_error(iam, "attach_role_policy", {"RoleName": "empty", "PolicyArn": arns[10]}, "LimitExceeded", 409)
    assert "PoliciesPerRole: 10" in e.response["Error"]["Message"]
    for a in arns[:10]:
        iam.detach_role_policy(RoleName="empty", PolicyArn=a)
    for a in arns:
        iam.delete_policy(PolicyArn=a)


def statements_policy(prefix: str, count: int) -> str:
    return policy(*[{"Sid": f"{prefix}{i}", "Effect": "Allow", "Action": "s3:GetObject",
                     "Resource": f"arn:aws:s3:::{prefix}-bucket-{i:04d}/*"} for i in range(count)])


def iam_size(doc: str) -> int:
    return sum(1 for c in doc if not c.isspace())


def test_inline_policies_share_one_quota_per_role(iam) -> None:
    # One inline policy may be larger than a managed policy's 6,144 characters: a role's
    # inline policies share 10,240.
    large = statements_policy("large", 95)
    assert 6_144 < iam_size(large) < 10_240
    expect_error(iam, "create_policy", {"PolicyName": "too-large", "PolicyDocument": large}, "LimitExceeded", 409)
    iam.put_role_policy(RoleName="empty", PolicyName="large", PolicyDocument=large)
    # boto3 URL-decodes and parses the document.
    assert iam.get_role_policy(RoleName="empty", PolicyName="large")["PolicyDocument"] == json.loads(large)
    # The role stays usable: its last statement decides a simulation.
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/empty"
    sim = iam.simulate_principal_policy(PolicySourceArn=role_arn, ActionNames=["s3:GetObject"],
                                        ResourceArns=["arn:aws:s3:::large-bucket-0094/key"])
    assert sim["EvaluationResults"][0]["EvalDecision"] == "allowed"

    second = statements_policy("second", 30)
    assert iam_size(large) + iam_size(second) > 10_240
    e = expect_error(iam, "put_role_policy", {"RoleName": "empty", "PolicyName": "second", "PolicyDocument": second}, "LimitExceeded", 409)
    assert e.response["Error"]["Message"] == "Maximum policy size of 10240 bytes exceeded for role empty"
    # A single document above the shared quota gets the same answer.
    e = expect_error(iam, "put_role_policy", {"RoleName": "empty", "PolicyName": "huge", "PolicyDocument": statements_policy("huge", 140)}, "LimitExceeded", 409)
    assert e.response["Error"]["Message"] == "Maximum policy size of 10240 bytes exceeded for role empty"
    # Replacing a policy counts its new text only.
    iam.put_role_policy(RoleName="empty", PolicyName="large", PolicyDocument=statements_policy("large", 60))
    iam.put_role_policy(RoleName="empty", PolicyName="second", PolicyDocument=second)
    assert sorted(iam.list_role_policies(RoleName="empty")["PolicyNames"]) == ["large", "second"]
    for name in ("large", "second"):
        iam.delete_role_policy(RoleName="empty", PolicyName=name)


def test_fifty_tags_is_the_limit(iam) -> None:
    iam.tag_role(RoleName="empty", Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    expect_error(iam, "tag_role", {"RoleName": "empty", "Tags": [{"Key": "one-more", "Value": "v"}]}, "LimitExceeded", 409)
    iam.tag_role(RoleName="empty", Tags=[{"Key": "K0", "Value": "replaced"}])  # same key, other case
    tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName="empty", MaxItems=100)["Tags"]}
    assert len(tags) == 50 and tags["K0"] == "replaced" and "k0" not in tags
    iam.untag_role(RoleName="empty", TagKeys=[f"k{i}" for i in range(1, 50)] + ["K0"])
    assert iam.list_role_tags(RoleName="empty")["Tags"] == []


RAW_CASES = [
    ({"Action": "CreateRole", "AssumeRolePolicyDocument": "{}"}, "ValidationError"),
    ({"Action": "CreateRole", "RoleName": "x" * 65, "AssumeRolePolicyDocument": "{}"}, "ValidationError"),
    ({"Action": "CreateRole", "RoleName": "has space", "AssumeRolePolicyDocument": "{}"}, "ValidationError"),
    ({"Action": "CreateRole", "RoleName": "ok", "Path": "/no-trailing", "AssumeRolePolicyDocument": "{}"}, "ValidationError"),
    ({"Action": "CreateRole", "RoleName": "ok", "MaxSessionDuration": "100", "AssumeRolePolicyDocument": "{}"}, "ValidationError"),
    ({"Action": "CreateRole", "RoleName": "ok", "MaxSessionDuration": "43201", "AssumeRolePolicyDocument": "{}"}, "ValidationError"),
    ({"Action": "CreateRole", "RoleName": "ok", "MaxSessionDuration": "1e4", "AssumeRolePolicyDocument": "{}"}, "ValidationError"),
    ({"Action": "CreateRole", "RoleName": "ok", "Description": "bad\u0001char", "AssumeRolePolicyDocument": "{}"}, "ValidationError"),
    ({"Action": "CreateRole", "RoleName": "ok", "AssumeRolePolicyDocument": "x" * 131073}, "ValidationError"),
    ({"Action": "CreateRole", "RoleName": "ok", "AssumeRolePolicyDocument": "{\"\u0100\":1}"}, "ValidationError"),
    ({"Action": "PutRolePolicy", "RoleName": "base", "PolicyName": "bad/name", "PolicyDocument": ALLOW_S3}, "ValidationError"),
    ({"Action": "GetPolicyVersion", "PolicyArn": POLICY_ARN, "VersionId": "1"}, "ValidationError"),
    ({"Action": "CreateOpenIDConnectProvider", "Url": "https://x.example", "ThumbprintList.member.1": "abc"}, "ValidationError"),
    ({"Action": "CreateOpenIDConnectProvider", "Url": "https://x.example",
      **{f"ThumbprintList.member.{i}": "a" * 40 for i in range(1, 7)}}, "ValidationError"),
    ({"Action": "CreateRole", "RoleName": "ok", "AssumeRolePolicyDocument": "{}",
      **{k: v for i in range(1, 52) for k, v in ((f"Tags.member.{i}.Key", f"k{i}"), (f"Tags.member.{i}.Value", "v"))}}, "ValidationError"),
    ({"Action": "ListPolicies", "Scope": "Everything"}, "ValidationError"),
    ({"Action": "ListRoles", "Version": "2011-06-15"}, "InvalidAction"),
    ({"Action": "CreateGroup", "GroupName": "g"}, "InvalidAction"),
    ({"Action": "RoleName"}, "InvalidAction"),
]


@pytest.mark.parametrize("params,code", RAW_CASES, ids=[f"{p['Action']}-{i}" for i, (p, _) in enumerate(RAW_CASES)])
def test_validation_errors(stack, iam, params, code) -> None:
    _, keyless, creds = stack
    before = snapshot(iam)
    res = iam_raw(keyless, creds, params)
    assert (res.code, res.status) == (code, 400), res
    assert f'xmlns="{IAM_NS}"' in res.body and "<RequestId>" in res.body
    assert snapshot(iam) == before


def test_a_weaker_session_is_denied_and_told_why(stack, iam) -> None:
    issuer, keyless, _ = stack
    iam.create_role(RoleName="reader", AssumeRolePolicyDocument=gha_trust(issuer, "octo-org/app"))
    iam.put_role_policy(RoleName="reader", PolicyName="read", PolicyDocument=policy(
        {"Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"},
        {"Sid": "NoAdminPeek", "Effect": "Deny", "Action": "iam:GetRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/admin"}))
    res = keyless.awiwi(issuer.gha_token(repo="octo-org/app"), role="reader", session="reader")
    weak = iam_client(keyless, res.credentials)
    assert weak.get_role(RoleName="base")["Role"]["RoleName"] == "base"
    before = snapshot(iam)
    with pytest.raises(ClientError) as e:
        weak.create_role(RoleName="sneaky", AssumeRolePolicyDocument=gha_trust(issuer, "octo-org/app"))
    assert_iam_error(e.value, "AccessDenied", 403)
    msg = e.value.response["Error"]["Message"]
    assert msg.startswith(f"User: arn:aws:sts::{ACCOUNT}:assumed-role/reader/reader is not authorized to perform: "
                          f"iam:CreateRole on resource: arn:aws:iam::{ACCOUNT}:role/sneaky because no identity-based policy allows"), msg
    # Denied before existence is revealed.
    with pytest.raises(ClientError) as e:
        weak.delete_role(RoleName="does-not-exist")
    assert_iam_error(e.value, "AccessDenied", 403)
    with pytest.raises(ClientError) as e:
        weak.get_role(RoleName="admin")
    assert_iam_error(e.value, "AccessDenied", 403)
    assert "explicit deny in an identity-based policy" in e.value.response["Error"]["Message"]
    assert snapshot(iam) == before
    iam.delete_role_policy(RoleName="reader", PolicyName="read")
    iam.delete_role(RoleName="reader")


def test_bad_credentials(stack, iam) -> None:
    _, keyless, creds = stack
    forged = dict(creds, SessionToken=creds["SessionToken"][:-8] + "AAAAAAAA")
    res = iam_raw(keyless, forged, {"Action": "ListRoles"})
    assert res.status == 403 and res.code in ("InvalidClientTokenId", "ExpiredToken"), res
    assert f'xmlns="{IAM_NS}"' in res.body
    wrong_secret = dict(creds, SecretAccessKey="x" * 40)
    before = snapshot(iam)
    res = iam_raw(keyless, wrong_secret, {"Action": "CreateRole", "RoleName": "ghost", "AssumeRolePolicyDocument": "{}"})
    assert (res.code, res.status) == ("SignatureDoesNotMatch", 403), res
    assert snapshot(iam) == before


def test_documents_come_back_url_encoded(stack) -> None:
    _, keyless, creds = stack
    res = iam_raw(keyless, creds, {"Action": "GetRolePolicy", "RoleName": "base", "PolicyName": "inline"})
    assert res.status == 200, res
    raw = res.all("PolicyDocument")[0]
    assert raw.startswith("%7B%22Version%22") and " " not in raw
    import urllib.parse
    assert json.loads(urllib.parse.unquote(raw)) == json.loads(ALLOW_S3)
    role = iam_raw(keyless, creds, {"Action": "GetRole", "RoleName": "base"})
    assert role.all("CreateDate")[0].endswith("Z") and len(role.all("CreateDate")[0]) == 20


def test_unsigned_iam_calls_are_refused_in_the_iam_namespace(stack, iam) -> None:
    import requests
    _, keyless, _ = stack
    before = snapshot(iam)
    r = requests.post(keyless.url + "/", data={"Action": "CreateRole", "Version": "2010-05-08", "RoleName": "anon",
                                               "AssumeRolePolicyDocument": "{}"}, timeout=10)
    assert r.status_code == 403 and "<Code>MissingAuthenticationToken</Code>" in r.text, r.text
    assert f'xmlns="{IAM_NS}"' in r.text
    assert snapshot(iam) == before


def test_policy_tags(iam) -> None:
    iam.tag_policy(PolicyArn=POLICY_ARN, Tags=[{"Key": "owner", "Value": "platform"}])
    assert iam.list_policy_tags(PolicyArn=POLICY_ARN)["Tags"] == [{"Key": "owner", "Value": "platform"}]
    assert iam.get_policy(PolicyArn=POLICY_ARN)["Policy"]["Tags"] == [{"Key": "owner", "Value": "platform"}]
    expect_error(iam, "tag_policy", {"PolicyArn": MISSING_ARN, "Tags": [{"Key": "a", "Value": "b"}]}, "NoSuchEntity", 404)
    expect_error(iam, "tag_policy", {"PolicyArn": POLICY_ARN, "Tags": [{"Key": "aws:a", "Value": "b"}]}, "InvalidInput", 400)
    iam.untag_policy(PolicyArn=POLICY_ARN, TagKeys=["OWNER"])
    assert iam.list_policy_tags(PolicyArn=POLICY_ARN)["Tags"] == []


def test_echoed_noncharacters_leave_the_answer_parseable(iam) -> None:
    # XML 1.0 cannot carry U+FFFE or U+FFFF: an error echoing one was unparseable by botocore
    # (ResponseParserError instead of the ValidationError), and a managed policy description
    # holding one would have broken ListPolicies for the whole account.
    for name in ["\ufffe", "a\uffffb"]:
        expect_error(iam, "get_role", {"RoleName": name}, "ValidationError", 400)
    arn = iam.create_policy(PolicyName="odd-description", Description="odd \uffff text",
                            PolicyDocument=ALLOW_S3)["Policy"]["Arn"]
    listed = {p["Arn"]: p for p in iam.list_policies(Scope="Local")["Policies"]}
    assert listed[arn]["Description"] == "odd \ufffd text"
    iam.delete_policy(PolicyArn=arn)
