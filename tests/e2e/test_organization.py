"""The `[organization]` table: the AWS Organizations ids an operator declares for keyless's OU
tree, so that `aws:PrincipalOrgID` and `aws:PrincipalOrgPaths` trust policies (AWS's usual
"anyone in our organization" cross-account trust) work as at AWS, through boto3. Without the
table the keys are absent and the same trust denies; a partial mapping is refused at start-up."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import boto3
import botocore.config
import pytest

from keyless_e2e import ACCOUNT, Issuer, Keyless, _stop, default_config, policy, role_toml, start_keyless
from test_context_keys import denied
from test_startup import run_serve_expect_failure

ORG = "o-a1b2c3d4e5"
CI_OU = "ou-ab12-22222222"
ORG_TABLE = f"""
[organization]
id = "{ORG}"
root = "r-ab12"
ous = {{ "/workloads" = "ou-ab12-11111111", "/workloads/ci" = "{CI_OU}" }}
"""


def org_roles() -> str:
    """Roles any principal may assume under an organization condition."""
    def anyone_when(condition: dict) -> str:
        return policy({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole",
                       "Condition": condition})
    return "".join([
        role_toml("org-members", anyone_when({"StringEquals": {"aws:PrincipalOrgID": ORG}}), {}),
        role_toml("workloads-ou", anyone_when(
            {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": f"{ORG}/r-ab12/ou-ab12-11111111/*"}}), {}),
        role_toml("sandbox-ou", anyone_when(
            {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": f"{ORG}/r-ab12/ou-ab12-99999999/*"}}), {}),
        role_toml("own-org-resource", anyone_when({"StringEquals": {
            "aws:PrincipalOrgID": ORG, "aws:ResourceOrgID": ORG}}), {}),
    ]) + "\n"


@pytest.fixture(scope="module")
def servers(module_workdir: Path, issuer: Issuer) -> Iterator[tuple[Keyless, Keyless]]:
    """One server whose account is in the declared organization, one with the same roles and
    no `[organization]`."""
    started: list[Keyless] = []
    try:
        for name, extra in [("in-org", ORG_TABLE), ("no-org", "")]:
            work = module_workdir / name
            config = default_config(issuer, work / "data") + org_roles() + extra
            started.append(start_keyless(work, config))
        yield started[0], started[1]
    finally:
        for k in started:
            _stop(k.proc)


def sts(keyless: Keyless, creds: dict[str, str]):
    return boto3.client("sts", endpoint_url=keyless.url, region_name="us-east-1",
                        config=botocore.config.Config(retries={"max_attempts": 1}),
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


def ci_session(keyless: Keyless, issuer: Issuer) -> dict[str, str]:
    res = keyless.awiwi(issuer.gha_token(), session="org-src")
    assert res.credentials, res
    return res.credentials


def test_anyone_in_the_organization_may_assume_and_the_session_works(servers, issuer: Issuer) -> None:
    in_org, _ = servers
    client = sts(in_org, ci_session(in_org, issuer))
    for role in ["org-members", "workloads-ou", "own-org-resource"]:
        out = client.assume_role(RoleArn=in_org.role_arn(role), RoleSessionName="via-org")
        creds = out["Credentials"]
        assert creds["AccessKeyId"].startswith("ASIA"), out
        who = sts(in_org, {"AccessKeyId": creds["AccessKeyId"], "SecretAccessKey": creds["SecretAccessKey"],
                           "SessionToken": creds["SessionToken"]}).get_caller_identity()
        assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/via-org", who


def test_an_ou_the_account_is_not_under_is_denied(servers, issuer: Issuer) -> None:
    in_org, _ = servers
    client = sts(in_org, ci_session(in_org, issuer))
    before = in_org.issued_total()
    denied(lambda: client.assume_role(RoleArn=in_org.role_arn("sandbox-ou"), RoleSessionName="denied"))
    assert in_org.issued_total() == before


def test_without_an_organization_the_keys_are_absent_and_the_trust_denies(servers, issuer: Issuer) -> None:
    _, no_org = servers
    client = sts(no_org, ci_session(no_org, issuer))
    before = no_org.issued_total()
    for role in ["org-members", "workloads-ou", "own-org-resource"]:
        denied(lambda: client.assume_role(RoleArn=no_org.role_arn(role), RoleSessionName="denied"))
    assert no_org.issued_total() == before
    # The operator was told at start-up, per policy.
    log = no_org.stderr()
    for role in ["org-members", "workloads-ou", "sandbox-ou", "own-org-resource"]:
        assert f"trust policy of role {role} names an aws:PrincipalOrg" in log, log[-3000:]
    in_org, _ = servers
    assert "names an aws:PrincipalOrg" not in in_org.stderr()


def test_a_partial_or_malformed_organization_is_refused_at_its_line(workdir: Path, issuer: Issuer) -> None:
    base = default_config(issuer, workdir / "data")
    for table, needle in [
        (ORG_TABLE.replace(f', "/workloads/ci" = "{CI_OU}"', ""), "OU /workloads/ci (account 123456789012) has no id"),
        (ORG_TABLE.replace(ORG, "o-short"), 'organization id "o-short"'),
        (ORG_TABLE.replace(CI_OU, "ou-cd34-22222222"), "not under root r-ab12"),
    ]:
        cfg = workdir / "org.toml"
        cfg.write_text(base + table)
        cp = run_serve_expect_failure(cfg)
        assert cp.returncode != 0
        msg = cp.stderr + cp.stdout
        assert needle in msg, msg
        line = len(base.splitlines()) + 2  # the [organization] header, or a line after it
        assert re.search(rf"{re.escape(cfg.name)}:({line}|{line + 1}|{line + 2}|{line + 3})\b", msg), msg
