"""keyless migrate github-actions: PyYAML reads the output to the same structure as the input apart
from the intended changes; the output passes keyless lint with no findings; twice is a no-op."""

import copy
import json
import subprocess

import yaml

ROLE = "arn:aws:iam::123456789012:role/deploy"
STATIC_INPUTS = {"aws-access-key-id", "aws-secret-access-key", "aws-session-token"}
STATIC_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}

WORKFLOWS = {
    "deploy.yml": """\
# Deploys the app.  Comments must survive.
name: deploy
on:
  push:
    branches: [main]   # only main

permissions:
  contents: read

env:
  AWS_REGION: eu-west-1

jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: make build
  deploy:
    needs: build
    runs-on: ubuntu-latest
    environment: production
    steps:
      - uses: actions/checkout@v4
      # static keys, to be replaced
      - name: Configure AWS
        uses: aws-actions/configure-aws-credentials@v4
        with:
          aws-access-key-id: ${{ secrets.AWS_ACCESS_KEY_ID }}
          aws-secret-access-key: ${{ secrets.AWS_SECRET_ACCESS_KEY }}
          aws-region: ${{ env.AWS_REGION }}
          role-duration-seconds: 7200
      - run: aws s3 sync dist s3://bucket
""",
    "nightly.yml": """\
on:
  schedule:
    - cron: "0 3 * * *"
jobs:
  report:
    runs-on: ubuntu-latest
    env:
      AWS_ACCESS_KEY_ID: ${{ secrets.KEY }}
      AWS_SECRET_ACCESS_KEY: ${{ secrets.SECRET }}
      AWS_DEFAULT_REGION: us-east-1
    steps:
      - run: aws ce get-cost-and-usage --help
""",
}


def expected(orig):
    """Applies the intended changes to the parsed original, in Python."""
    w = copy.deepcopy(orig)
    for env_holder in [w] + list(w["jobs"].values()):
        env = env_holder.get("env")
        if isinstance(env, dict):
            for k in STATIC_ENV:
                env.pop(k, None)
            if not env:
                del env_holder["env"]
    for name, job in w["jobs"].items():
        oj = orig["jobs"][name]
        uses_aws = any(k in (oj.get("env") or {}) for k in STATIC_ENV) or any(k in (orig.get("env") or {}) for k in STATIC_ENV)
        has_action = False
        for step in job.get("steps", []):
            env = step.get("env")
            if isinstance(env, dict):
                for k in STATIC_ENV:
                    env.pop(k, None)
            if str(step.get("uses", "")).startswith("aws-actions/configure-aws-credentials"):
                has_action = uses_aws = True
                with_ = step["with"]
                for k in STATIC_INPUTS:
                    with_.pop(k, None)
                with_["role-to-assume"] = ROLE
                with_["role-duration-seconds"] = 900
        if uses_aws and not has_action:
            job["steps"].insert(0, {"name": "Configure AWS credentials (OIDC)", "uses": "aws-actions/configure-aws-credentials@v4",
                                    "with": {"role-to-assume": ROLE, "role-duration-seconds": 900, "aws-region": "us-east-1"}})
        if uses_aws:
            if "permissions" in job:
                job["permissions"]["id-token"] = "write"
            elif isinstance(w.get("permissions"), dict):
                w["permissions"]["id-token"] = "write"
            else:
                job["permissions"] = {"contents": "read", "id-token": "write"}
    return w


def test_migrate_structure_lint_and_idempotence(keyless_bin, tmp_path):
    wf_dir = tmp_path / ".github" / "workflows"
    wf_dir.mkdir(parents=True)
    for name, text in WORKFLOWS.items():
        (wf_dir / name).write_text(text)
    before = subprocess.run([str(keyless_bin), "lint", "--format", "json", "."], cwd=tmp_path, capture_output=True, text=True)
    assert before.returncode == 1 and len(json.loads(before.stdout)["findings"]) >= 4

    for name, text in WORKFLOWS.items():
        # The deploy job runs in an environment, the nightly one does not: the trust policy's sub
        # must be the one each job's token carries.
        scope = ["--environment", "production"] if name == "deploy.yml" else ["--branch", "main"]
        args = [str(keyless_bin), "migrate", "github-actions", f".github/workflows/{name}", "--role-arn", ROLE,
                "--repository", "acme/app", *scope]
        p = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        out = (wf_dir / name).read_text()
        assert yaml.safe_load(out) == expected(yaml.safe_load(text)), out
        # Comments and untouched lines are kept verbatim.
        for line in text.splitlines():
            if line.strip().startswith("#") or "only main" in line:
                assert line in out.splitlines()
        trust = json.loads((tmp_path / f"{name[:-4]}.trust-policy.json").read_text())
        cond = trust["Statement"][0]["Condition"]["StringEquals"]
        want_sub = "repo:acme/app:environment:production" if name == "deploy.yml" else "repo:acme/app:ref:refs/heads/main"
        assert cond["token.actions.githubusercontent.com:sub"] == want_sub
        assert cond["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
        again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True)
        assert again.returncode == 0 and "unchanged" in again.stderr
        assert (wf_dir / name).read_text() == out

    after = subprocess.run([str(keyless_bin), "lint", "--format", "json", "."], cwd=tmp_path, capture_output=True, text=True)
    assert after.returncode == 0, after.stdout
    assert json.loads(after.stdout)["findings"] == []


def test_migrate_refuses_a_trust_subject_the_job_cannot_present(keyless_bin, tmp_path):
    # The deploy job runs in `production`: its token's sub names the environment, so a
    # branch-scoped trust policy would refuse every run. migrate says so and writes nothing.
    wf = tmp_path / "deploy.yml"
    wf.write_text(WORKFLOWS["deploy.yml"])
    p = subprocess.run([str(keyless_bin), "migrate", "github-actions", "deploy.yml", "--role-arn", ROLE,
                        "--repository", "acme/app"], cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip() == ("keyless: error: cannot migrate deploy.yml: job `deploy`: it runs in environment "
                                "`production`, so its OIDC token's sub is repo:acme/app:environment:production; "
                                "pass --environment production")
    assert wf.read_text() == WORKFLOWS["deploy.yml"]
    assert not (tmp_path / "deploy.trust-policy.json").exists()
