"""A trust policy naming a role by ARN trusts the role it named when it was saved, as IAM binds
the ARN to the role's unique id: whoever may delete and recreate the trusted role cannot chain
into the trusting one with the recreated role. Saving the trust policy again trusts the new
role. A trust policy naming a role that does not exist is refused, through IAM and in the
config file."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from iam_support import admin_config, admin_creds, assert_iam_error, iam_client, q
from keyless_e2e import (
    ACCOUNT, Issuer, Keyless, _stop, encoded_auth_message, keyless_bin, policy, start_issuer, start_keyless,
)

ADMIN_ARN = f"arn:aws:iam::{ACCOUNT}:role/admin"
DEPLOYER_ARN = f"arn:aws:iam::{ACCOUNT}:role/ci-deployer"


def trusting(arn: str) -> str:
    return policy({"Effect": "Allow", "Principal": {"AWS": arn}, "Action": "sts:AssumeRole"})


ASSUME_ANY = policy({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Issuer, Keyless]]:
    work = tmp_path_factory.mktemp("trust-ids")
    (work / "i").mkdir()
    issuer = start_issuer(work / "i")
    keyless = start_keyless(work / "keyless", admin_config(issuer, work / "keyless" / "data"))
    try:
        yield issuer, keyless
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def assume(keyless: Keyless, creds: dict[str, str], arn: str, session: str) -> dict[str, Any]:
    return keyless.boto3_client(creds).assume_role(RoleArn=arn, RoleSessionName=session)["Credentials"]


def create_deployer(iam) -> str:
    """ci-deployer, trusted by the admin role's sessions (the attacker's own trust policy)."""
    role = iam.create_role(RoleName="ci-deployer", AssumeRolePolicyDocument=trusting(ADMIN_ARN))["Role"]
    iam.put_role_policy(RoleName="ci-deployer", PolicyName="assume", PolicyDocument=ASSUME_ANY)
    return role["RoleId"]


def test_a_recreated_role_is_not_trusted_until_the_trust_policy_is_saved_again(stack) -> None:
    issuer, keyless = stack
    admin = admin_creds(keyless, issuer)
    iam = iam_client(keyless, admin)
    old_id = create_deployer(iam)
    prod_trust = trusting(DEPLOYER_ARN)
    prod = iam.create_role(RoleName="prod-admin", AssumeRolePolicyDocument=prod_trust)["Role"]

    deployer = assume(keyless, admin, DEPLOYER_ARN, "deploy-1")
    assert assume(keyless, deployer, prod["Arn"], "prod-1")["AccessKeyId"]

    # Delete ci-deployer as IAM requires (its inline policy first) and create it again.
    iam.delete_role_policy(RoleName="ci-deployer", PolicyName="assume")
    iam.delete_role(RoleName="ci-deployer")
    # As in IAM, the principal no longer maps back to an ARN: GetRole shows the id it is bound to.
    def shown_principal() -> Any:
        return iam.get_role(RoleName="prod-admin")["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert shown_principal() == {"AWS": old_id}
    # Saving the document back as shown is refused, as in IAM, and changes nothing.
    shown = iam.get_role(RoleName="prod-admin")["Role"]["AssumeRolePolicyDocument"]
    with pytest.raises(ClientError) as e:
        iam.update_assume_role_policy(RoleName="prod-admin", PolicyDocument=json.dumps(shown))
    assert_iam_error(e.value, "MalformedPolicyDocument", 400)
    assert e.value.response["Error"]["Message"] == f'Invalid principal in policy: "AWS":"{old_id}"'
    assert shown_principal() == {"AWS": old_id}
    new_id = create_deployer(iam)
    assert new_id != old_id
    recreated = assume(keyless, admin, DEPLOYER_ARN, "deploy-2")
    with pytest.raises(ClientError) as e:
        keyless.boto3_client(recreated).assume_role(RoleArn=prod["Arn"], RoleSessionName="escalate")
    err = e.value.response
    assert_iam_error(e.value, "AccessDenied", 403)
    assert "Credentials" not in err
    # The recreated role reads as a principal the trust policy does not name.
    cp = keyless.aws("sts", "decode-authorization-message", "--encoded-message",
                     encoded_auth_message(err["Error"]["Message"]), env=keyless.client_env(
                         AWS_ACCESS_KEY_ID=admin["AccessKeyId"], AWS_SECRET_ACCESS_KEY=admin["SecretAccessKey"],
                         AWS_SESSION_TOKEN=admin["SessionToken"]))
    decoded = json.loads(json.loads(cp.stdout)["DecodedMessage"])
    assert "failed on Principal" in decoded["explanation"], decoded

    # Nor does the recreated role make it read as the ARN again, in GetRole or ListRoles.
    assert shown_principal() == {"AWS": old_id}
    listed = [r for r in iam.list_roles()["Roles"] if r["RoleName"] == "prod-admin"]
    assert listed[0]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"AWS": old_id}

    # An administrator saves the trust policy again: the role holding the name now is trusted.
    iam.update_assume_role_policy(RoleName="prod-admin", PolicyDocument=prod_trust)
    assert assume(keyless, recreated, prod["Arn"], "prod-2")["AccessKeyId"]
    # Bound to the new role, the document shows as written.
    assert iam.get_role(RoleName="prod-admin")["Role"]["AssumeRolePolicyDocument"] == json.loads(prod_trust)


def test_a_trust_policy_naming_a_role_that_does_not_exist_is_refused(stack) -> None:
    issuer, keyless = stack
    iam = iam_client(keyless, admin_creds(keyless, issuer))
    ghost = f"arn:aws:iam::{ACCOUNT}:role/ghost"
    with pytest.raises(ClientError) as e:
        iam.create_role(RoleName="trusts-ghost", AssumeRolePolicyDocument=trusting(ghost))
    assert_iam_error(e.value, "MalformedPolicyDocument", 400)
    assert e.value.response["Error"]["Message"] == f'Invalid principal in policy: "AWS":"{ghost}"'
    with pytest.raises(ClientError) as e:
        iam.get_role(RoleName="trusts-ghost")
    assert_iam_error(e.value, "NoSuchEntity", 404)


def config_role(name: str, trust: str, perms: str = ASSUME_ANY) -> str:
    return "\n".join([
        "[[roles]]", f'account = "{ACCOUNT}"', f'name = "{name}"', f"trust_policy = {q(trust)}",
        f"policies = {{ assume = {q(perms)} }}", "",
    ])


def test_a_config_role_may_trust_one_defined_later_in_the_file(tmp_path: Path) -> None:
    (tmp_path / "i").mkdir()
    issuer = start_issuer(tmp_path / "i")
    extra = config_role("early", trusting(f"arn:aws:iam::{ACCOUNT}:role/late")) + config_role(
        "late", trusting(ADMIN_ARN))
    keyless = start_keyless(tmp_path / "keyless", admin_config(issuer, tmp_path / "data", extra))
    try:
        admin = admin_creds(keyless, issuer)
        late = assume(keyless, admin, keyless.role_arn("late"), "late")
        assert assume(keyless, late, keyless.role_arn("early"), "early")["AccessKeyId"]
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def test_a_config_role_trusting_a_role_that_does_not_exist_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "i").mkdir()
    issuer = start_issuer(tmp_path / "i")
    try:
        ghost = f"arn:aws:iam::{ACCOUNT}:role/ghost"
        cfg = tmp_path / "k.toml"
        cfg.write_text(admin_config(issuer, tmp_path / "data", config_role("trusts-ghost", trusting(ghost))))
        cp = subprocess.run([str(keyless_bin()), "serve", "--config", str(cfg), "--listen", "127.0.0.1:0"],
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        out = cp.stderr + cp.stdout
        assert cp.returncode != 0, out
        assert str(cfg) in out and "role trusts-ghost" in out, out
        assert f'Invalid principal in policy: "AWS":"{ghost}"' in out, out
    finally:
        _stop(issuer.proc)
