"""Issue 3 beyond GitHub: a GitLab CI job's ID token and a Kubernetes projected service-account
token, shaped as those platforms mint them, against trust policies written as their AWS guides
write them (`<provider>:sub`, `<provider>:aud`), driven with boto3 and the AWS CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from keyless_e2e import (
    ACCOUNT, AUD, Issuer, Keyless, _stop, assert_error, default_config, policy, role_toml, start_keyless,
)

PROJECT = "mygroup/myproject"


def gitlab_claims(project: str = PROJECT, ref: str = "main", ref_type: str = "branch",
                  protected: bool = True) -> dict[str, Any]:
    """The claims of a GitLab CI `id_tokens` token (GitLab's documented payload): string ids,
    an integer runner id, `ref_protected` as a string."""
    namespace = project.rsplit("/", 1)[0]
    return {
        "sub": f"project_path:{project}:ref_type:{ref_type}:ref:{ref}",
        "aud": AUD,
        "claims_json": json.dumps({
            "namespace_id": "72",
            "namespace_path": namespace,
            "project_id": "20",
            "project_path": project,
            "user_id": "1",
            "user_login": "sample-user",
            "user_email": "sample-user@example.com",
            "user_access_level": "developer",
            "pipeline_id": "574",
            "pipeline_source": "push",
            "job_id": "302",
            "ref": ref,
            "ref_type": ref_type,
            "ref_path": f"refs/heads/{ref}" if ref_type == "branch" else f"refs/tags/{ref}",
            "ref_protected": "true" if protected else "false",
            "environment": "production",
            "environment_protected": "true",
            "deployment_tier": "production",
            "runner_id": 1,
            "runner_environment": "gitlab-hosted",
            "sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
            "ci_config_ref_uri": f"gitlab.example.com/{project}//.gitlab-ci.yml@refs/heads/{ref}",
            "ci_config_sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
            "project_visibility": "private",
        }),
    }


def k8s_claims(namespace: str = "payments", account: str = "api", aud: list[str] | None = None) -> dict[str, Any]:
    """The claims of a projected service-account token (audience `sts.amazonaws.com`, as EKS
    IRSA mounts it): `aud` an array, the pod's facts in a nested `kubernetes.io` object."""
    now = int(time.time())
    return {
        "sub": f"system:serviceaccount:{namespace}:{account}",
        "aud": json.dumps(aud or [AUD]),
        "claims_json": json.dumps({
            "kubernetes.io": {
                "namespace": namespace,
                "pod": {"name": f"{account}-7d9c4b5f6-abcde", "uid": "0b1d2c3e-aaaa-bbbb-cccc-000000000001"},
                "serviceaccount": {"name": account, "uid": "0b1d2c3e-aaaa-bbbb-cccc-000000000002"},
                "node": {"name": "ip-10-0-1-23.ec2.internal", "uid": "0b1d2c3e-aaaa-bbbb-cccc-000000000003"},
                "warnafter": now + 3607,
            },
            "nbf": now,
        }),
    }


def platform_config(issuer: Issuer, data_dir: Path) -> str:
    h, fed = issuer.host, issuer.provider_arn
    allow = {"Effect": "Allow", "Principal": {"Federated": fed}, "Action": "sts:AssumeRoleWithWebIdentity"}
    # GitLab's AWS guide: the project's protected main branch only.
    gitlab = policy({**allow, "Condition": {
        "StringEquals": {f"{h}:aud": AUD,
                         f"{h}:sub": f"project_path:{PROJECT}:ref_type:branch:ref:main"}}})
    # Any branch of the project, but only protected refs (`ref_protected` is a scalar claim).
    gitlab_protected = policy({**allow, "Condition": {
        "StringEquals": {f"{h}:aud": AUD, f"{h}:ref_protected": "true"},
        "StringLike": {f"{h}:sub": f"project_path:{PROJECT}:ref_type:branch:ref:*"}}})
    # EKS IRSA: one service account of one namespace.
    k8s = policy({**allow, "Condition": {
        "StringEquals": {f"{h}:aud": AUD, f"{h}:sub": "system:serviceaccount:payments:api"}}})
    # A condition on a nested claim: AWS makes condition keys of scalar claims only, so this
    # key never exists and the statement never matches.
    k8s_nested = policy({**allow, "Condition": {
        "StringEquals": {f"{h}:kubernetes.io/namespace": "payments"}}})
    perms = {"inspect": policy({"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"})}
    return (default_config(issuer, data_dir)
            + role_toml("gitlab", gitlab, perms) + role_toml("gitlab-protected", gitlab_protected, perms)
            + role_toml("k8s", k8s, perms) + role_toml("k8s-nested", k8s_nested, perms) + "\n")


@pytest.fixture(scope="module")
def platform(module_workdir: Path, issuer: Issuer) -> Iterator[Keyless]:
    work = module_workdir / "platform"
    work.mkdir(exist_ok=True)
    srv = start_keyless(work, platform_config(issuer, work / "data"))
    try:
        yield srv
    finally:
        _stop(srv.proc)


def assumed(srv: Keyless, role: str, token: str, session: str) -> dict[str, Any]:
    return srv.boto3_client().assume_role_with_web_identity(
        RoleArn=srv.role_arn(role), RoleSessionName=session, WebIdentityToken=token)


def denied(srv: Keyless, role: str, token: str, session: str) -> None:
    before = srv.issued_total()
    res = srv.awiwi(token, role=role, session=session)
    assert_error(res, "AccessDenied", 403)
    if before is not None:
        assert srv.issued_total() == before


def test_gitlab_main_branch_assumes_the_role(platform: Keyless, issuer: Issuer) -> None:
    out = assumed(platform, "gitlab", issuer.token(**gitlab_claims()), "gl-main")
    assert out["SubjectFromWebIdentityToken"] == f"project_path:{PROJECT}:ref_type:branch:ref:main"
    assert out["Audience"] == AUD
    ident = platform.boto3_client(out["Credentials"]).get_caller_identity()
    assert ident["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/gitlab/gl-main"


@pytest.mark.parametrize("claims, why", [
    (dict(ref="feature"), "another branch"),
    (dict(ref="main", ref_type="tag"), "a tag named main"),
    (dict(project="mygroup/myproject-evil"), "a project whose path starts with the trusted one"),
    (dict(project="othergroup/myproject"), "another group"),
])
def test_gitlab_other_refs_and_projects_are_denied(platform: Keyless, issuer: Issuer, claims: dict[str, Any],
                                                   why: str) -> None:
    denied(platform, "gitlab", issuer.token(**gitlab_claims(**claims)), "gl-denied")


def test_gitlab_scalar_claims_are_condition_keys(platform: Keyless, issuer: Issuer) -> None:
    out = assumed(platform, "gitlab-protected", issuer.token(**gitlab_claims(ref="release")), "gl-prot")
    assert out["AssumedRoleUser"]["Arn"].endswith(":assumed-role/gitlab-protected/gl-prot")
    denied(platform, "gitlab-protected", issuer.token(**gitlab_claims(ref="wip", protected=False)), "gl-unprot")


def test_gitlab_token_with_the_cli_web_identity_provider(platform: Keyless, issuer: Issuer) -> None:
    env = platform.web_identity_env(issuer.token(**gitlab_claims()), "gl-cli", role="gitlab")
    out = json.loads(platform.aws("sts", "get-caller-identity", env=env).stdout)
    assert out["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/gitlab/gl-cli"


def test_kubernetes_service_account_assumes_the_role(platform: Keyless, issuer: Issuer) -> None:
    token = issuer.token(**k8s_claims())
    # The way IRSA hands it to a pod: AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE.
    env = platform.web_identity_env(token, "pod", role="k8s")
    out = json.loads(platform.aws("sts", "get-caller-identity", env=env).stdout)
    assert out["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/k8s/pod"
    res = assumed(platform, "k8s", token, "pod-boto3")
    assert res["SubjectFromWebIdentityToken"] == "system:serviceaccount:payments:api"
    assert res["Audience"] == AUD


@pytest.mark.parametrize("namespace, account", [("payments", "worker"), ("staging", "api"), ("payment", "sapi")])
def test_kubernetes_other_service_accounts_are_denied(platform: Keyless, issuer: Issuer, namespace: str,
                                                      account: str) -> None:
    denied(platform, "k8s", issuer.token(**k8s_claims(namespace, account)), "k8s-denied")


def test_a_nested_claim_is_no_condition_key(platform: Keyless, issuer: Issuer) -> None:
    denied(platform, "k8s-nested", issuer.token(**k8s_claims()), "k8s-nested")


def test_kubernetes_token_for_several_audiences_is_refused(platform: Keyless, issuer: Issuer) -> None:
    """Two audiences and no `azp`: AWS cannot tell which one the token is for."""
    res = platform.awiwi(issuer.token(**k8s_claims(aud=[AUD, "vault"])), role="k8s", session="k8s-two-aud")
    assert_error(res, "InvalidIdentityToken", 400)


def test_a_legacy_service_account_token_without_exp_is_refused(platform: Keyless, issuer: Issuer) -> None:
    """A pre-1.24 secret-based service-account token never expires: AWS requires `exp`."""
    claims = k8s_claims()
    res = platform.awiwi(issuer.token(**claims, omit="exp"), role="k8s", session="k8s-legacy")
    assert_error(res, "InvalidIdentityToken", 400)
    assert "exp" in (res.message or ""), res
