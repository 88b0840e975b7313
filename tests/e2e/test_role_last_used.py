"""GetRole's RoleLastUsed, as IAM reports it: empty until a session of the role is issued, then
when and in which region; a denied AssumeRole is no use; kept across a restart; a role deleted
and created under the same name starts unused (uses belong to the role's unique id)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from iam_support import admin_config, admin_creds, assert_iam_error, iam_client
from keyless_e2e import ACCOUNT, REGION, _stop, policy, start_issuer, start_keyless

ADMIN_ARN = f"arn:aws:iam::{ACCOUNT}:role/admin"


def trusting(arn: str) -> str:
    return policy({"Effect": "Allow", "Principal": {"AWS": arn}, "Action": "sts:AssumeRole"})


def test_role_last_used_follows_issued_sessions(tmp_path: Path) -> None:
    (tmp_path / "i").mkdir()
    issuer = start_issuer(tmp_path / "i")
    config = admin_config(issuer, tmp_path / "keyless" / "data")
    keyless = start_keyless(tmp_path / "keyless", config)
    try:
        started = datetime.now(timezone.utc).replace(microsecond=0)
        admin = admin_creds(keyless, issuer)
        iam = iam_client(keyless, admin)
        used = iam.get_role(RoleName="admin")["Role"]["RoleLastUsed"]
        assert used["Region"] == REGION, used
        assert started <= used["LastUsedDate"] <= datetime.now(timezone.utc) + timedelta(seconds=1), used

        iam.create_role(RoleName="chained", AssumeRolePolicyDocument=trusting(ADMIN_ARN))
        iam.create_role(RoleName="closed", AssumeRolePolicyDocument=trusting(f"arn:aws:iam::{ACCOUNT}:role/chained"))
        assert iam.get_role(RoleName="chained")["Role"]["RoleLastUsed"] == {}
        # A denied AssumeRole issues nothing, so the role stays unused.
        sts = keyless.boto3_client(admin)
        with pytest.raises(ClientError) as e:
            sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/closed", RoleSessionName="nope")
        assert_iam_error(e.value, "AccessDenied", 403)
        assert iam.get_role(RoleName="closed")["Role"]["RoleLastUsed"] == {}

        sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/chained", RoleSessionName="chain")
        chained = iam.get_role(RoleName="chained")["Role"]["RoleLastUsed"]
        assert chained["Region"] == REGION and chained["LastUsedDate"] >= used["LastUsedDate"], chained
        # The AWS CLI reads the same element.
        env = keyless.client_env(AWS_ACCESS_KEY_ID=admin["AccessKeyId"], AWS_SECRET_ACCESS_KEY=admin["SecretAccessKey"],
                                 AWS_SESSION_TOKEN=admin["SessionToken"], AWS_ENDPOINT_URL_IAM=keyless.url)
        cli = json.loads(keyless.aws("iam", "get-role", "--role-name", "chained", env=env).stdout)
        assert cli["Role"]["RoleLastUsed"]["Region"] == REGION, cli
        assert "LastUsedDate" in cli["Role"]["RoleLastUsed"], cli
    finally:
        _stop(keyless.proc)

    # Written to the store when the server stops, and read back at the next start.
    keyless = start_keyless(tmp_path / "keyless", config)
    try:
        iam = iam_client(keyless, admin_creds(keyless, issuer))
        assert iam.get_role(RoleName="chained")["Role"]["RoleLastUsed"] == chained
        assert iam.get_role(RoleName="closed")["Role"]["RoleLastUsed"] == {}
        # The same name is another role once deleted and created again: unused.
        iam.delete_role(RoleName="chained")
        iam.create_role(RoleName="chained", AssumeRolePolicyDocument=trusting(ADMIN_ARN))
        assert iam.get_role(RoleName="chained")["Role"]["RoleLastUsed"] == {}
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)
