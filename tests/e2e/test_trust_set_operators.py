"""Set operators in a trust policy, against real tokens (iam-policy.md A.5): for ForAnyValue and
ForAllValues a claim whose value is the empty string is "a null data set", like an absent claim.
ForAnyValue is then false and ForAllValues true. Before the fix the empty string was tested as a
value, so `ForAnyValue:StringLike "*"` let a token with an empty claim assume the role."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from keyless_e2e import (AUD, REPO, Issuer, Keyless, _stop, assert_error, assert_no_credentials, default_config,
                         policy, role_toml, start_keyless)


def main_branch_trust(issuer: Issuer, conditions: dict[str, Any]) -> str:
    """Trusts the main branch's tokens when `conditions` hold as well."""
    return policy({
        "Effect": "Allow",
        "Principal": {"Federated": issuer.provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{issuer.host}:aud": AUD,
                                       f"{issuer.host}:sub": f"repo:{REPO}:ref:refs/heads/main"},
                      **conditions},
    })


def set_operator_config(issuer: Issuer, data_dir: Path) -> str:
    """The standard config plus two roles: one needs some `environment` claim, the other allows
    only `prod` where an environment is given."""
    env = f"{issuer.host}:environment"
    some = main_branch_trust(issuer, {"ForAnyValue:StringLike": {env: "*"}})
    prod_if_any = main_branch_trust(issuer, {"ForAllValues:StringEquals": {env: ["prod"]}})
    return (default_config(issuer, data_dir) + role_toml("some-environment", some, {})
            + role_toml("prod-if-any", prod_if_any, {}) + "\n")


@pytest.fixture(scope="module")
def srv(module_workdir: Path, issuer: Issuer) -> Iterator[Keyless]:
    server = start_keyless(module_workdir / "set-ops", set_operator_config(issuer, module_workdir / "set-ops" / "data"))
    yield server
    _stop(server.proc)


def assert_denied_and_nothing_issued(srv: Keyless, res) -> None:
    assert_error(res, "AccessDenied", 403)
    assert_no_credentials(res)


def test_for_any_value_needs_a_non_empty_claim(srv: Keyless, issuer: Issuer) -> None:
    ok = srv.awiwi(issuer.gha_token(environment="prod"), role="some-environment", session="prod")
    assert ok.status == 200 and ok.credentials, ok
    before = srv.issued_total()
    for token in (issuer.gha_token(environment=""), issuer.gha_token()):
        assert_denied_and_nothing_issued(srv, srv.awiwi(token, role="some-environment", session="empty"))
    if before is not None:
        assert srv.issued_total() == before


def test_for_all_values_holds_for_an_empty_or_absent_claim_as_aws_documents(srv: Keyless, issuer: Issuer) -> None:
    for token in (issuer.gha_token(environment="prod"), issuer.gha_token(environment=""), issuer.gha_token()):
        res = srv.awiwi(token, role="prod-if-any", session="all")
        assert res.status == 200 and res.credentials, res
    assert_denied_and_nothing_issued(
        srv, srv.awiwi(issuer.gha_token(environment="staging"), role="prod-if-any", session="staging"))
