"""The IAM API end to end, from a config holding only an admin role and a provider: the admin
federates, creates a provider, a role, inline and managed policies with boto3 and the AWS CLI;
a CI token assumes the role and /v1/authorize answers exactly what the policies allow; edits
and deletion change the live session's answers at once; long-term keys are impossible; risky
trust policies need an acknowledgement; a guardrail caps session duration."""
from __future__ import annotations

import json
import secrets
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from iam_support import (
    ADMIN_REPO, AUTHZ_TOKEN, BUCKET, IAM_NS, admin_config, admin_creds, assert_iam_error,
    authorize_s3, cli_env, gha_trust, iam_client, iam_raw,
)
from keyless_e2e import (
    ACCOUNT, AUD, Issuer, Keyless, _stop, encoded_auth_message, keyless_bin, policy, start_issuer, start_keyless,
)

CI_REPO = "octo-org/app"
CAP_GUARDRAIL = policy({
    "Sid": "CapCappedSessions",
    "Effect": "Deny",
    "Action": "sts:AssumeRole*",
    "Resource": "arn:aws:iam::*:role/capped/*",
    "Condition": {"NumericGreaterThan": {"sts:DurationSeconds": "900"}},
})


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Issuer, Issuer, Keyless]]:
    work = tmp_path_factory.mktemp("iam-flow")
    for sub in ("a", "b"):
        (work / sub).mkdir()
    admin_issuer = start_issuer(work / "a")
    ci_issuer = start_issuer(work / "b")
    extra = "\n".join(["[[guardrails]]", f'target = "{ACCOUNT}"', 'name = "cap-capped-sessions"',
                       f"document = '''{CAP_GUARDRAIL}'''"])
    keyless = start_keyless(work / "keyless", admin_config(admin_issuer, work / "keyless" / "data", extra))
    try:
        yield admin_issuer, ci_issuer, keyless
    finally:
        _stop(keyless.proc)
        _stop(ci_issuer.proc)
        _stop(admin_issuer.proc)


@pytest.fixture(scope="module")
def admin(stack) -> dict[str, str]:
    admin_issuer, _, keyless = stack
    return admin_creds(keyless, admin_issuer)


def test_end_to_end_role_lifecycle(stack, admin) -> None:
    admin_issuer, ci_issuer, keyless = stack
    iam = iam_client(keyless, admin)

    # (2) a provider for the CI issuer, created with the AWS CLI.
    env = cli_env(keyless, admin)
    out = json.loads(keyless.aws("iam", "create-open-id-connect-provider", "--url", ci_issuer.url,
                                 "--client-id-list", AUD, env=env).stdout)
    provider_arn = out["OpenIDConnectProviderArn"]
    assert provider_arn == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ci_issuer.host}"
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=provider_arn)
    assert got["Url"] == ci_issuer.host and got["ClientIDList"] == [AUD]
    listed = [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]
    assert provider_arn in listed and admin_issuer.provider_arn in listed

    # A role with a GitHub trust policy, an inline policy and a managed policy.
    trust = gha_trust(ci_issuer, CI_REPO)
    role = iam.create_role(RoleName="ci", AssumeRolePolicyDocument=trust, Description="CI deploys",
                           Tags=[{"Key": "team", "Value": "blue"}])["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/ci" and role["RoleId"].startswith("AROA")
    assert role["AssumeRolePolicyDocument"] == json.loads(trust)  # boto3 URL-decodes it
    iam.put_role_policy(RoleName="ci", PolicyName="read", PolicyDocument=policy(
        {"Sid": "ReadArtifacts", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{BUCKET}/*"}))
    write_v1 = policy({"Sid": "WriteUploads", "Effect": "Allow", "Action": "s3:PutObject",
                       "Resource": f"arn:aws:s3:::{BUCKET}/up/*"})
    managed = iam.create_policy(PolicyName="uploads", PolicyDocument=write_v1)["Policy"]
    assert managed["Arn"] == f"arn:aws:iam::{ACCOUNT}:policy/uploads" and managed["DefaultVersionId"] == "v1"
    iam.attach_role_policy(RoleName="ci", PolicyArn=managed["Arn"])
    assert iam.get_policy(PolicyArn=managed["Arn"])["Policy"]["AttachmentCount"] == 1
    attached = iam.list_attached_role_policies(RoleName="ci")["AttachedPolicies"]
    assert attached == [{"PolicyName": "uploads", "PolicyArn": managed["Arn"]}]
    assert iam.list_role_policies(RoleName="ci")["PolicyNames"] == ["read"]
    doc = iam.get_role_policy(RoleName="ci", PolicyName="read")["PolicyDocument"]
    assert doc["Statement"][0]["Sid"] == "ReadArtifacts"

    # (3) a CI token assumes it; the session may do exactly what the policies allow.
    res = keyless.awiwi(ci_issuer.gha_token(repo=CI_REPO), role="ci", session="build-1")
    ci = res.credentials
    assert ci, res
    other = keyless.awiwi(ci_issuer.gha_token(repo="octo-org/other"), role="ci", session="other")
    assert other.code == "AccessDenied", other

    def decide(op: str, action: str, key: str, **kw: Any) -> str:
        body = authorize_s3(keyless, ci, op, action, key, **kw)
        if not body["authenticated"]:
            return "unauthenticated"
        return body["decision"]

    assert decide("get_object", "s3:GetObject", "a/b.txt") == "Allowed"
    assert decide("put_object", "s3:PutObject", "up/x", Body=b"x") == "Allowed"
    assert decide("put_object", "s3:PutObject", "other/x", Body=b"x") == "ImplicitlyDenied"
    assert decide("delete_object", "s3:DeleteObject", "a/b.txt") == "ImplicitlyDenied"

    # (4) edits change the live session's answers at once.
    iam.put_role_policy(RoleName="ci", PolicyName="read", PolicyDocument=policy(
        {"Sid": "ReadOnlyDocs", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{BUCKET}/docs/*"}))
    assert decide("get_object", "s3:GetObject", "a/b.txt") == "ImplicitlyDenied"
    assert decide("get_object", "s3:GetObject", "docs/b.txt") == "Allowed"
    v2 = iam.create_policy_version(PolicyArn=managed["Arn"], SetAsDefault=True, PolicyDocument=policy(
        {"Sid": "WriteOther", "Effect": "Allow", "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{BUCKET}/other/*"}))["PolicyVersion"]
    assert v2["VersionId"] == "v2" and v2["IsDefaultVersion"]
    assert decide("put_object", "s3:PutObject", "up/x", Body=b"x") == "ImplicitlyDenied"
    assert decide("put_object", "s3:PutObject", "other/x", Body=b"x") == "Allowed"
    iam.set_default_policy_version(PolicyArn=managed["Arn"], VersionId="v1")
    assert decide("put_object", "s3:PutObject", "up/x", Body=b"x") == "Allowed"
    iam.detach_role_policy(RoleName="ci", PolicyArn=managed["Arn"])
    assert decide("put_object", "s3:PutObject", "up/x", Body=b"x") == "ImplicitlyDenied"

    # The simulator explains with the same engine.
    sim = iam_raw(keyless, admin, {"Action": "SimulatePrincipalPolicy",
                                   "PolicySourceArn": role["Arn"],
                                   "ActionNames.member.1": "s3:GetObject",
                                   "ResourceArns.member.1": f"arn:aws:s3:::{BUCKET}/docs/k"})
    assert sim.status == 200, sim
    assert sim.all("EvalDecision") == ["allowed"], sim
    assert "ReadOnlyDocs" in sim.all("Explanation")[0], sim
    assert sim.all("SourcePolicyType") == ["role"], sim
    assert sim.all("AllowedByOrganizations") == ["true"], sim

    # (5) deleting the role ends the session.
    with pytest.raises(ClientError) as e:
        iam.delete_role(RoleName="ci")
    assert_iam_error(e.value, "DeleteConflict", 409)
    iam.delete_role_policy(RoleName="ci", PolicyName="read")
    iam.delete_role(RoleName="ci")
    with pytest.raises(ClientError) as e:
        iam.get_role(RoleName="ci")
    assert_iam_error(e.value, "NoSuchEntity", 404)
    body = authorize_s3(keyless, ci, "get_object", "s3:GetObject", "docs/b.txt")
    assert not body["authenticated"], body
    assert keyless.awiwi(ci_issuer.gha_token(repo=CI_REPO), role="ci").code == "AccessDenied"
    # The managed policy is free now; it deletes only after its extra version is gone.
    with pytest.raises(ClientError) as e:
        iam.delete_policy(PolicyArn=managed["Arn"])
    assert_iam_error(e.value, "DeleteConflict", 409)
    iam.delete_policy_version(PolicyArn=managed["Arn"], VersionId="v2")
    iam.delete_policy(PolicyArn=managed["Arn"])
    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=provider_arn)
    with pytest.raises(ClientError) as e:
        iam.get_open_id_connect_provider(OpenIDConnectProviderArn=provider_arn)
    assert_iam_error(e.value, "NoSuchEntity", 404)


def decoded_denial(keyless: Keyless, admin: dict[str, str], message: str) -> dict[str, Any]:
    encoded = encoded_auth_message(message)
    cp = keyless.aws("sts", "decode-authorization-message", "--encoded-message", encoded,
                     env=cli_env(keyless, admin))
    return json.loads(json.loads(cp.stdout)["DecodedMessage"])


@pytest.mark.parametrize("call,kwargs", [
    ("create_access_key", {"UserName": "deployer"}),
    ("create_access_key", {}),
    ("create_user", {"UserName": "deployer"}),
    ("create_login_profile", {"UserName": "deployer", "Password": "Sup3r-s3cret!"}),
    ("update_access_key", {"UserName": "deployer", "AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "Status": "Active"}),
])
def test_long_term_keys_are_denied_even_for_the_admin(stack, admin, call, kwargs) -> None:
    _, _, keyless = stack
    iam = iam_client(keyless, admin)
    with pytest.raises(ClientError) as e:
        getattr(iam, call)(**kwargs)
    assert_iam_error(e.value, "AccessDenied", 403)
    message = e.value.response["Error"]["Message"]
    assert "explicit deny in a service control policy" in message, message
    assert "Sup3r" not in message
    decoded = decoded_denial(keyless, admin, message)
    assert decoded["explicitDeny"] is True
    assert "no-long-term-keys" in decoded["explanation"], decoded
    assert "no-long-term-keys" in json.dumps(decoded["matchedStatements"]), decoded


def test_long_term_keys_with_the_cli(stack, admin) -> None:
    _, _, keyless = stack
    cp = keyless.aws("iam", "create-user", "--user-name", "deployer", env=cli_env(keyless, admin), check=False)
    assert cp.returncode != 0 and "AccessDenied" in cp.stderr, cp.stderr
    assert "no-long-term-keys" in cp.stderr, cp.stderr


def test_risky_trust_policy_needs_the_acknowledgement_tag(stack, admin) -> None:
    admin_issuer, _, keyless = stack
    iam = iam_client(keyless, admin)
    h = admin_issuer.host
    no_sub = policy({"Effect": "Allow", "Principal": {"Federated": admin_issuer.provider_arn},
                     "Action": "sts:AssumeRoleWithWebIdentity",
                     "Condition": {"StringEquals": {f"{h}:aud": AUD}}})
    with pytest.raises(ClientError) as e:
        iam.create_role(RoleName="open", AssumeRolePolicyDocument=no_sub)
    assert_iam_error(e.value, "MalformedPolicyDocument", 400)
    assert "MISSING_SUB_CONDITION" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        iam.get_role(RoleName="open")
    # A tag naming another finding does not acknowledge this one.
    with pytest.raises(ClientError) as e:
        iam.create_role(RoleName="open", AssumeRolePolicyDocument=no_sub,
                        Tags=[{"Key": "keyless:acknowledge-risk", "Value": "OVERLY_BROAD_GITHUB_SUB"}])
    assert_iam_error(e.value, "MalformedPolicyDocument", 400)
    role = iam.create_role(RoleName="open", AssumeRolePolicyDocument=no_sub,
                           Tags=[{"Key": "keyless:acknowledge-risk", "Value": "MISSING_SUB_CONDITION"}])["Role"]
    assert role["RoleName"] == "open"
    assert "trust policy risk acknowledged" in keyless.stderr()
    acked = [r for r in audit_records(keyless, "--event-name", "CreateRole", "--decision", "allow")
             if r["requestParameters"].get("roleName") == "open"]
    assert len(acked) == 1, acked
    risks = acked[0]["additionalEventData"]["acknowledgedRisks"]
    assert [r["findingCode"] for r in risks] == ["MISSING_SUB_CONDITION"], risks
    assert risks[0]["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/open"
    # UpdateAssumeRolePolicy: the role's tag is the acknowledgement; without it, refused.
    safe = gha_trust(admin_issuer, ADMIN_REPO)
    iam.update_assume_role_policy(RoleName="open", PolicyDocument=safe)
    iam.untag_role(RoleName="open", TagKeys=["keyless:acknowledge-risk"])
    with pytest.raises(ClientError) as e:
        iam.update_assume_role_policy(RoleName="open", PolicyDocument=no_sub)
    assert_iam_error(e.value, "MalformedPolicyDocument", 400)
    assert iam.get_role(RoleName="open")["Role"]["AssumeRolePolicyDocument"] == json.loads(safe)
    # Duplicate keys are always an error, acknowledged or not.
    dup = '{"Version":"2012-10-17","Version":"2012-10-17","Statement":[]}'
    with pytest.raises(ClientError) as e:
        iam.create_role(RoleName="dup", AssumeRolePolicyDocument=dup,
                        Tags=[{"Key": "keyless:acknowledge-risk", "Value": "DUPLICATE_KEY"}])
    assert_iam_error(e.value, "MalformedPolicyDocument", 400)
    iam.delete_role(RoleName="open")


def test_guardrail_caps_session_duration(stack, admin) -> None:
    _, ci_issuer, keyless = stack
    iam = iam_client(keyless, admin)
    iam.create_open_id_connect_provider(Url=ci_issuer.url, ClientIDList=[AUD])
    iam.create_role(RoleName="short", Path="/capped/", AssumeRolePolicyDocument=gha_trust(ci_issuer, CI_REPO),
                    MaxSessionDuration=7200)
    token = ci_issuer.gha_token(repo=CI_REPO)
    denied = keyless.sts_raw({"Action": "AssumeRoleWithWebIdentity",
                              "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/capped/short",
                              "RoleSessionName": "capped", "WebIdentityToken": token, "DurationSeconds": 3600})
    assert denied.code == "AccessDenied" and denied.status == 403, denied
    decoded = decoded_denial(keyless, admin, denied.message or "")
    assert "cap-capped-sessions" in decoded["explanation"], decoded
    ok = keyless.sts_raw({"Action": "AssumeRoleWithWebIdentity",
                          "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/capped/short",
                          "RoleSessionName": "capped", "WebIdentityToken": token, "DurationSeconds": 900})
    assert ok.credentials, ok
    # The same guardrail applies to the simulator.
    sim = iam_raw(keyless, admin, {"Action": "SimulateCustomPolicy",
                                   "PolicyInputList.member.1": policy({"Effect": "Allow", "Action": "iam:*", "Resource": "*"}),
                                   "ActionNames.member.1": "iam:CreateAccessKey",
                                   "ActionNames.member.2": "iam:GetRole"})
    assert sim.all("EvalDecision") == ["explicitDeny", "allowed"], sim
    assert sim.all("AllowedByOrganizations") == ["false", "true"], sim
    assert "no-long-term-keys" in sim.all("Explanation")[0], sim


def test_config_entities_are_visible_but_unmodifiable(stack, admin) -> None:
    admin_issuer, _, keyless = stack
    iam = iam_client(keyless, admin)
    role = iam.get_role(RoleName="admin")["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/admin"
    for call, kw in [
        ("delete_role", {"RoleName": "admin"}),
        ("update_role", {"RoleName": "admin", "MaxSessionDuration": 7200}),
        ("put_role_policy", {"RoleName": "admin", "PolicyName": "x",
                             "PolicyDocument": policy({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})}),
        ("delete_role_policy", {"RoleName": "admin", "PolicyName": "admin"}),
        ("tag_role", {"RoleName": "admin", "Tags": [{"Key": "k", "Value": "v"}]}),
        ("update_assume_role_policy", {"RoleName": "admin", "PolicyDocument": gha_trust(admin_issuer, ADMIN_REPO)}),
        ("delete_open_id_connect_provider", {"OpenIDConnectProviderArn": admin_issuer.provider_arn}),
        ("add_client_id_to_open_id_connect_provider", {"OpenIDConnectProviderArn": admin_issuer.provider_arn,
                                                        "ClientID": "other"}),
    ]:
        with pytest.raises(ClientError) as e:
            getattr(iam, call)(**kw)
        assert_iam_error(e.value, "UnmodifiableEntity", 400)
    after = iam.get_role(RoleName="admin")["Role"]
    assert after == role
    assert iam.list_role_policies(RoleName="admin")["PolicyNames"] == ["admin"]
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=admin_issuer.provider_arn)
    assert got["ClientIDList"] == [AUD]


def test_api_entities_survive_a_restart(tmp_path: Path) -> None:
    (tmp_path / "i").mkdir()
    issuer = start_issuer(tmp_path / "i")
    config = admin_config(issuer, tmp_path / "keyless" / "data")
    keyless = start_keyless(tmp_path / "keyless", config)
    try:
        iam = iam_client(keyless, admin_creds(keyless, issuer))
        created = iam.create_role(RoleName="kept", AssumeRolePolicyDocument=gha_trust(issuer, "octo-org/x"))["Role"]
        iam.create_policy(PolicyName="kept-policy", PolicyDocument=policy({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}))
        iam.attach_role_policy(RoleName="kept", PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/kept-policy")
    finally:
        _stop(keyless.proc)
    keyless = start_keyless(tmp_path / "keyless2", config)
    try:
        iam = iam_client(keyless, admin_creds(keyless, issuer))
        role = iam.get_role(RoleName="kept")["Role"]
        assert role["RoleId"] == created["RoleId"]
        assert [p["PolicyName"] for p in iam.list_attached_role_policies(RoleName="kept")["AttachedPolicies"]] == ["kept-policy"]
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def test_policy_arns_session_policies_resolve_to_managed_policies(stack, admin) -> None:
    _, ci_issuer, keyless = stack
    iam = iam_client(keyless, admin)
    try:
        iam.create_open_id_connect_provider(Url=ci_issuer.url, ClientIDList=[AUD])
    except ClientError as e:
        assert_iam_error(e, "EntityAlreadyExists", 409)
    iam.create_role(RoleName="scoped", AssumeRolePolicyDocument=gha_trust(ci_issuer, CI_REPO))
    iam.put_role_policy(RoleName="scoped", PolicyName="all-reads", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}))
    arn = iam.create_policy(PolicyName="docs-only", PolicyDocument=policy(
        {"Sid": "DocsOnly", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{BUCKET}/docs/*"}))["Policy"]["Arn"]
    token = ci_issuer.gha_token(repo=CI_REPO)
    missing = keyless.awiwi(token, role="scoped", session="scoped",
                            **{"PolicyArns.member.1.arn": f"arn:aws:iam::{ACCOUNT}:policy/missing"})
    assert (missing.code, missing.status) == ("MalformedPolicyDocument", 400), missing
    res = keyless.awiwi(token, role="scoped", session="scoped", **{"PolicyArns.member.1.arn": arn})
    creds = res.credentials
    assert creds and res.values.get("PackedPolicySize"), res

    def decide(key: str) -> str:
        body = authorize_s3(keyless, creds, "get_object", "s3:GetObject", key)
        return body["decision"] if body["authenticated"] else "unauthenticated"

    assert decide("docs/a") == "Allowed"
    assert decide("src/a") == "ImplicitlyDenied"
    # A new default version bounds the live session at once.
    iam.create_policy_version(PolicyArn=arn, SetAsDefault=True, PolicyDocument=policy(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/src/*"}))
    assert decide("docs/a") == "ImplicitlyDenied"
    assert decide("src/a") == "Allowed"
    # Deleting the policy leaves the session with nothing (fail closed).
    iam.delete_policy_version(PolicyArn=arn, VersionId="v1")
    iam.delete_policy(PolicyArn=arn)
    assert decide("src/a") == "ImplicitlyDenied"
    iam.delete_role_policy(RoleName="scoped", PolicyName="all-reads")
    iam.delete_role(RoleName="scoped")


def test_builtin_guardrail_can_be_turned_off_but_keys_still_do_not_exist(tmp_path: Path) -> None:
    (tmp_path / "i").mkdir()
    issuer = start_issuer(tmp_path / "i")
    config = admin_config(issuer, tmp_path / "keyless" / "data", "[builtin_guardrails]\nno_long_term_keys = false\n")
    keyless = start_keyless(tmp_path / "keyless", config)
    try:
        iam = iam_client(keyless, admin_creds(keyless, issuer))
        with pytest.raises(ClientError) as e:
            iam.create_access_key(UserName="deployer")
        assert_iam_error(e.value, "AccessDenied", 403)
        message = e.value.response["Error"]["Message"]
        assert "no long-term access keys" in message and "service control policy" not in message, message
        sim = iam_raw(keyless, admin_creds(keyless, issuer), {
            "Action": "SimulatePrincipalPolicy", "PolicySourceArn": f"arn:aws:iam::{ACCOUNT}:role/admin",
            "ActionNames.member.1": "iam:CreateUser"})
        assert sim.all("EvalDecision") == ["allowed"], sim
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def test_config_may_not_redeclare_the_builtin_guardrail(tmp_path: Path) -> None:
    import subprocess

    from keyless_e2e import keyless_bin
    (tmp_path / "i").mkdir()
    issuer = start_issuer(tmp_path / "i")
    try:
        deny = policy({"Effect": "Deny", "Action": "iam:*", "Resource": "*"})
        text = admin_config(issuer, tmp_path / "data", "\n".join([
            "[[guardrails]]", 'target = "/"', 'name = "no-long-term-keys"', f"document = '''{deny}'''"]))
        cfg = tmp_path / "k.toml"
        cfg.write_text(text)
        cp = subprocess.run([str(keyless_bin()), "serve", "--config", str(cfg), "--listen", "127.0.0.1:0"],
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert cp.returncode != 0
        assert "no-long-term-keys is attached at the root already" in cp.stderr + cp.stdout
    finally:
        _stop(issuer.proc)


def test_permissions_boundary_bounds_live_sessions(stack, admin) -> None:
    _, ci_issuer, keyless = stack
    iam = iam_client(keyless, admin)
    try:
        iam.create_open_id_connect_provider(Url=ci_issuer.url, ClientIDList=[AUD])
    except ClientError as e:
        assert_iam_error(e, "EntityAlreadyExists", 409)
    boundary = iam.create_policy(PolicyName="read-boundary", Path="/boundaries/", PolicyDocument=policy(
        {"Sid": "OnlyReads", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}))["Policy"]["Arn"]
    assert boundary == f"arn:aws:iam::{ACCOUNT}:policy/boundaries/read-boundary"
    iam.create_role(RoleName="bounded", AssumeRolePolicyDocument=gha_trust(ci_issuer, CI_REPO))
    iam.put_role_policy(RoleName="bounded", PolicyName="all-s3", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}))
    creds = keyless.awiwi(ci_issuer.gha_token(repo=CI_REPO), role="bounded", session="bounded").credentials
    assert creds
    assert authorize_s3(keyless, creds, "put_object", "s3:PutObject", "k", Body=b"x")["decision"] == "Allowed"
    iam.put_role_permissions_boundary(RoleName="bounded", PermissionsBoundary=boundary)
    got = iam.get_role(RoleName="bounded")["Role"]["PermissionsBoundary"]
    assert got == {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": boundary}
    assert authorize_s3(keyless, creds, "put_object", "s3:PutObject", "k", Body=b"x")["decision"] == "ImplicitlyDenied"
    assert authorize_s3(keyless, creds, "get_object", "s3:GetObject", "k")["decision"] == "Allowed"
    assert iam.get_policy(PolicyArn=boundary)["Policy"]["PermissionsBoundaryUsageCount"] == 1
    with pytest.raises(ClientError) as e:
        iam.delete_policy(PolicyArn=boundary)
    assert_iam_error(e.value, "DeleteConflict", 409)
    iam.delete_role_permissions_boundary(RoleName="bounded")
    assert "PermissionsBoundary" not in iam.get_role(RoleName="bounded")["Role"]
    assert authorize_s3(keyless, creds, "put_object", "s3:PutObject", "k", Body=b"x")["decision"] == "Allowed"
    iam.delete_policy(PolicyArn=boundary)
    iam.delete_role_policy(RoleName="bounded", PolicyName="all-s3")
    iam.delete_role(RoleName="bounded")


def test_guardrails_restrict_issuers_and_require_claims(tmp_path: Path) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    trusted = start_issuer(tmp_path / "a")
    other = start_issuer(tmp_path / "b")
    h = trusted.host
    only_trusted = policy(
        {"Sid": "OnlyTrustedIssuer", "Effect": "Deny", "Action": "sts:AssumeRoleWithWebIdentity", "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:FederatedProvider": trusted.provider_arn}}},
        {"Sid": "OnlyOurOrg", "Effect": "Deny", "Action": "sts:AssumeRoleWithWebIdentity", "Resource": "*",
         "Condition": {"StringNotEqualsIfExists": {f"{h}:repository_owner": "octo-org"}}},
    )
    extra = "\n".join(["[[guardrails]]", 'target = "/workloads"', 'name = "issuers-and-claims"',
                       f"document = '''{only_trusted}'''"])
    keyless = start_keyless(tmp_path / "keyless", admin_config(trusted, tmp_path / "keyless" / "data", extra))
    try:
        admin = admin_creds(keyless, trusted)
        iam = iam_client(keyless, admin)
        iam.create_open_id_connect_provider(Url=other.url, ClientIDList=[AUD])
        iam.create_role(RoleName="from-other", AssumeRolePolicyDocument=gha_trust(other, "octo-org/app"))
        iam.create_role(RoleName="from-trusted", AssumeRolePolicyDocument=gha_trust(trusted, "*/app"),
                        Tags=[{"Key": "keyless:acknowledge-risk", "Value": "OVERLY_BROAD_GITHUB_SUB"}])
        denied = keyless.awiwi(other.gha_token(repo="octo-org/app"), role="from-other", session="other")
        assert (denied.code, denied.status) == ("AccessDenied", 403), denied
        assert "OnlyTrustedIssuer" in decoded_denial(keyless, admin, denied.message or "")["explanation"]
        ok = keyless.awiwi(trusted.gha_token(repo="octo-org/app"), role="from-trusted", session="ours")
        assert ok.credentials, ok
        foreign = keyless.awiwi(trusted.gha_token(repo="evil-org/app"), role="from-trusted", session="theirs")
        assert (foreign.code, foreign.status) == ("AccessDenied", 403), foreign
        assert "OnlyOurOrg" in decoded_denial(keyless, admin, foreign.message or "")["explanation"]
    finally:
        _stop(keyless.proc)
        _stop(other.proc)
        _stop(trusted.proc)


def audit_records(keyless: Keyless, *filters: str) -> list[dict[str, Any]]:
    cp = subprocess.run([str(keyless_bin()), "audit", "query", "--config", str(keyless.config), "--format", "json",
                         *filters], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, cp.stderr
    return [json.loads(line) for line in cp.stdout.splitlines() if line.strip()]


def test_iam_calls_are_in_the_audit_trail_with_the_password_hidden(stack, admin) -> None:
    _, _, keyless = stack
    iam = iam_client(keyless, admin)
    name = f"audited-{secrets.token_hex(3)}"
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                                "Action": "sts:AssumeRole"}]}))
    with pytest.raises(ClientError):
        iam.create_login_profile(UserName="deployer", Password="Sup3r-s3cret!")
    created = [r for r in audit_records(keyless, "--event-name", "CreateRole")
               if r.get("requestParameters", {}).get("roleName") == name]
    assert len(created) == 1, created
    rec = created[0]
    assert rec["eventSource"] == "iam.amazonaws.com" and rec["decision"] == "allow" and not rec["readOnly"]
    assert rec["userIdentity"]["type"] == "AssumedRole"
    assert rec["userIdentity"]["accessKeyId"] == admin["AccessKeyId"]
    denied = audit_records(keyless, "--event-name", "CreateLoginProfile", "--error-code", "AccessDenied")
    assert denied, "the refused CreateLoginProfile must be recorded"
    assert all(r["requestParameters"].get("password") == "HIDDEN_DUE_TO_SECURITY_REASONS" for r in denied), denied
    log = b"".join(p.read_bytes() for p in sorted((keyless.data_dir / "audit").glob("*.jsonl")))
    assert b"Sup3r-s3cret!" not in log
    assert admin["SecretAccessKey"].encode() not in log and admin["SessionToken"].encode() not in log
