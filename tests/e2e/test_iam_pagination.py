"""Pagination (Marker / IsTruncated / MaxItems) over 1,501 roles: 1,200 declared in the config
file, 300 created through the API (boto3) and the admin role, listed with boto3 paginators and the AWS CLI's automatic
pagination; every role exactly once, in order, and bad MaxItems / Marker values refused."""
from __future__ import annotations

import json
import time
from typing import Iterator

import pytest
from iam_support import IAM_NS, admin_config, iam_raw, admin_creds, cli_env, gha_trust, iam_client, q
from keyless_e2e import ACCOUNT, Issuer, Keyless, _stop, start_issuer, start_keyless

CONFIG_ROLES = 1200
API_ROLES = 300
TOTAL = CONFIG_ROLES + API_ROLES + 1  # plus the admin role


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Issuer, Keyless]]:
    work = tmp_path_factory.mktemp("iam-pages")
    (work / "i").mkdir()
    issuer = start_issuer(work / "i")
    trust = gha_trust(issuer, "octo-org/app")
    roles = []
    for i in range(CONFIG_ROLES):
        roles += ["[[roles]]", f'account = "{ACCOUNT}"', f'name = "cfg-{i:04d}"',
                  f'path = "/team{i % 3}/"', f"trust_policy = {q(trust)}", ""]
    keyless = start_keyless(work / "keyless", admin_config(issuer, work / "keyless" / "data", "\n".join(roles)))
    try:
        iam = iam_client(keyless, admin_creds(keyless, issuer))
        for i in range(API_ROLES):
            iam.create_role(RoleName=f"api-{i:02d}", AssumeRolePolicyDocument=trust)
        yield issuer, keyless
    finally:
        _stop(keyless.proc)
        _stop(issuer.proc)


@pytest.fixture(scope="module")
def iam(stack):
    issuer, keyless = stack
    return iam_client(keyless, admin_creds(keyless, issuer))


def test_boto3_paginator_sees_every_role_once(iam) -> None:
    started = time.monotonic()
    pages = list(iam.get_paginator("list_roles").paginate(PaginationConfig={"PageSize": 100}))
    names = [r["RoleName"] for p in pages for r in p["Roles"]]
    assert len(names) == TOTAL and len(set(names)) == TOTAL
    assert names == sorted(names, key=str.lower)
    assert len(pages) == 16 and all(p["IsTruncated"] for p in pages[:-1]) and not pages[-1]["IsTruncated"]
    assert "Marker" not in pages[-1]
    assert time.monotonic() - started < 30


def test_default_page_is_100_and_max_is_1000(iam) -> None:
    first = iam.list_roles()
    assert len(first["Roles"]) == 100 and first["IsTruncated"] and first["Marker"]
    big = iam.list_roles(MaxItems=1000)
    assert len(big["Roles"]) == 1000 and big["IsTruncated"]
    rest = iam.list_roles(MaxItems=1000, Marker=big["Marker"])
    assert len(rest["Roles"]) == TOTAL - 1000 and not rest["IsTruncated"]
    assert big["Roles"][-1]["RoleName"] < rest["Roles"][0]["RoleName"]


def test_path_prefix_filters_before_paging(iam) -> None:
    names = [r["RoleName"] for p in iam.get_paginator("list_roles").paginate(PathPrefix="/team1/")
             for r in p["Roles"]]
    assert len(names) == CONFIG_ROLES // 3 + (1 if CONFIG_ROLES % 3 > 1 else 0)
    assert all(int(n.split("-")[1]) % 3 == 1 for n in names)


def test_cli_auto_pagination(stack) -> None:
    issuer, keyless = stack
    env = cli_env(keyless, admin_creds(keyless, issuer))
    out = json.loads(keyless.aws("iam", "list-roles", "--page-size", "250", env=env).stdout)
    names = [r["RoleName"] for r in out["Roles"]]
    assert len(names) == TOTAL and len(set(names)) == TOTAL
    out = json.loads(keyless.aws("iam", "list-roles", "--max-items", "7", env=env).stdout)
    assert len(out["Roles"]) == 7 and out.get("NextToken")


@pytest.mark.parametrize("params,code", [
    ({"MaxItems": "0"}, "ValidationError"),
    ({"MaxItems": "1001"}, "ValidationError"),
    ({"MaxItems": "ten"}, "ValidationError"),
    ({"Marker": "not-a-marker"}, "InvalidInput"),
    ({"Marker": "x" * 400}, "ValidationError"),
    ({"PathPrefix": "no-slash"}, "ValidationError"),
])
def test_bad_paging_values(stack, params, code) -> None:
    # Raw calls: boto3 would refuse some of these before sending.
    issuer, keyless = stack
    res = iam_raw(keyless, admin_creds(keyless, issuer), {"Action": "ListRoles", **params})
    assert (res.code, res.status) == (code, 400), res
    assert f'xmlns="{IAM_NS}"' in res.body
