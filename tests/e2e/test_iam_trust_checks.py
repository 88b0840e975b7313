"""Trust policies open to every identity are refused by CreateRole unless acknowledged, in the
shapes the validator once missed: a wildcard principal, NotAction, a subject pattern matching
every subject. Each one, once acknowledged, really lets a token of any repository in."""
from __future__ import annotations

from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from iam_support import admin_config, admin_creds, assert_iam_error, iam_client
from keyless_e2e import AUD, Issuer, Keyless, _stop, policy, start_issuer, start_keyless


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Issuer, Keyless, Any]]:
    work = tmp_path_factory.mktemp("iam-trust-checks")
    (work / "i").mkdir()
    issuer = start_issuer(work / "i")
    keyless = start_keyless(work / "keyless", admin_config(issuer, work / "keyless" / "data"))
    try:
        yield issuer, keyless, iam_client(keyless, admin_creds(keyless, issuer))
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


def open_trusts(issuer: Issuer) -> list[tuple[str, str, str]]:
    h, fed = issuer.host, {"Federated": issuer.provider_arn}
    aud = {"StringEquals": {f"{h}:aud": AUD}}
    return [
        ("wildcard", policy({"Effect": "Allow", "Principal": {"AWS": "*"},
                             "Action": "sts:AssumeRoleWithWebIdentity"}),
         "WILDCARD_PRINCIPAL_IN_TRUST_POLICY"),
        ("not-action", policy({"Effect": "Allow", "Principal": fed, "NotAction": "sts:AssumeRole",
                               "Condition": aud}),
         "MISSING_SUB_CONDITION"),
        ("any-subject", policy({"Effect": "Allow", "Principal": fed, "Action": "sts:AssumeRoleWithWebIdentity",
                                "Condition": {**aud, "StringLike": {f"{h}:sub": ["repo:octo-org/app:*", "*"]}}}),
         "MISSING_SUB_CONDITION"),
    ]


@pytest.mark.parametrize("case", range(3), ids=["wildcard", "not-action", "any-subject"])
def test_a_trust_policy_open_to_every_identity_needs_the_acknowledgement(stack, case: int) -> None:
    issuer, keyless, iam = stack
    name, trust, code = open_trusts(issuer)[case]
    with pytest.raises(ClientError) as e:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
    assert_iam_error(e.value, "MalformedPolicyDocument", 400)
    assert code in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        iam.get_role(RoleName=name)
    assert_iam_error(e.value, "NoSuchEntity", 404)

    # Acknowledged, the role is created, and it is as open as the finding said.
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust,
                    Tags=[{"Key": "keyless:acknowledge-risk", "Value": code}])
    res = keyless.awiwi(issuer.gha_token(repo="stranger/anything"), role=name, session="stranger")
    assert res.credentials, res
    iam.delete_role(RoleName=name)
