"""Builds the test corpus: a git repository with AWS credentials planted in files, deleted files,
other branches, workflows, Terraform, notebooks and credentials files, plus decoys (near-miss
strings, hashes, AWS's documented example keys), and a flat directory with every planted file."""

import base64
import hashlib
import json
import os
import random
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def key_id(prefix: str, account: int, rng: random.Random) -> str:
    """An access key id encoding `account` the way AWS does (public reverse-engineered scheme)."""
    v = ((account << 7) | (1 << 47) | rng.getrandbits(7)) << 2 | rng.getrandbits(2)
    body = "".join(B32[(v >> (i * 5)) & 31] for i in range(9, -1, -1))
    tail = "".join(rng.choice(B32) for _ in range(6))
    return prefix + body + tail


def secret(rng: random.Random) -> str:
    while True:
        s = base64.b64encode(bytes(rng.getrandbits(8) for _ in range(30))).decode()
        if any(c.isdigit() or c in "/+" for c in s) and any(c.islower() for c in s) and any(c.isupper() for c in s):
            return s


@dataclass
class Planted:
    key_id: str
    secret: str
    account: str
    where: str  # description
    path: str
    history_only: bool = False  # deleted, other branch or overwritten


@dataclass
class Corpus:
    repo: Path
    flat: Path
    planted: list = field(default_factory=list)
    decoy_strings: list = field(default_factory=list)
    example_ids: list = field(default_factory=list)

    def live_ids(self):
        return {p.key_id for p in self.planted}

    def sha1_to_planted(self):
        m = {}
        for p in self.planted:
            m[hashlib.sha1(p.key_id.encode()).hexdigest()] = p.key_id
            m[hashlib.sha1(p.secret.encode()).hexdigest()] = p.key_id
        return m


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.invalid")
    out = subprocess.run(["git", "-C", str(repo), "-c", "commit.gpgsign=false", *args], check=True, capture_output=True,
                         text=True, env=env)
    return out.stdout.strip()


def build_corpus(root: Path, seed: int = 7) -> Corpus:
    rng = random.Random(seed)
    repo = root / "repo"
    flat = root / "flat"
    repo.mkdir()
    flat.mkdir()
    c = Corpus(repo=repo, flat=flat)

    def new(where, path, prefix="AKIA", history_only=False):
        acct = rng.randrange(10**11, 10**12)
        p = Planted(key_id(prefix, acct, rng), secret(rng), f"{acct:012d}", where, path, history_only)
        c.planted.append(p)
        return p

    def write(path: str, text: str, flat_name: str | None = None):
        f = repo / path
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
        g = flat / (flat_name or path)
        g.parent.mkdir(parents=True, exist_ok=True)
        g.write_text(text)

    def commit(msg):
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", msg)

    git(repo, "init", "-q", "-b", "main")
    write("README.md", "# app\n\nExample from the AWS docs:\n\n    aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
          "    aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n\nAlso AKIAI44QH8DHBEXAMPLE.\n")
    c.example_ids += ["AKIAIOSFODNN7EXAMPLE", "AKIAI44QH8DHBEXAMPLE"]
    commit("init")

    p = new(".env file", ".env")
    write(".env", f"DATABASE_URL=postgres://localhost/app\nAWS_ACCESS_KEY_ID={p.key_id}\nAWS_SECRET_ACCESS_KEY={p.secret}\n")
    p = new("python settings", "config/settings.py")
    write("config/settings.py", f'import os\n\nAWS = {{\n    "aws_access_key_id": "{p.key_id}",\n    "aws_secret_access_key": "{p.secret}",\n}}\n')
    p = new("credentials file", "home/.aws/credentials")
    write("home/.aws/credentials", f"[default]\nregion = eu-west-1\n\n[legacy]\naws_access_key_id = {p.key_id}\naws_secret_access_key = {p.secret}\n")
    p = new("workflow env", ".github/workflows/deploy.yml")
    write(".github/workflows/deploy.yml", "name: deploy\non: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    env:\n"
          f"      AWS_ACCESS_KEY_ID: {p.key_id}\n      AWS_SECRET_ACCESS_KEY: {p.secret}\n    steps:\n      - run: aws s3 ls\n")
    p = new("terraform provider", "infra/main.tf")
    write("infra/main.tf", f'provider "aws" {{\n  region     = "us-east-1"\n  access_key = "{p.key_id}"\n  secret_key = "{p.secret}"\n}}\n')
    p = new("notebook", "notebooks/analysis.ipynb")
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                     "source": ["import boto3\n", f"s = boto3.Session(aws_access_key_id=\"{p.key_id}\",\n",
                                f"                  aws_secret_access_key=\"{p.secret}\")\n"]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    write("notebooks/analysis.ipynb", json.dumps(nb, indent=1))
    p = new("temporary credentials", "tmp/session.json", prefix="ASIA")
    token = "IQoJb3JpZ2luX2VjE" + base64.b64encode(bytes(rng.getrandbits(8) for _ in range(300))).decode()
    write("tmp/session.json", json.dumps({"Credentials": {"AccessKeyId": p.key_id, "SecretAccessKey": p.secret,
                                                          "SessionToken": token, "Expiration": "2026-01-01T00:00:00Z"}}, indent=2))
    p = new("docker compose", "docker-compose.yml")
    write("docker-compose.yml", f"services:\n  app:\n    image: app\n    environment:\n      - AWS_ACCESS_KEY_ID={p.key_id}\n      - AWS_SECRET_ACCESS_KEY={p.secret}\n")

    # Decoys: near misses, hashes, ids that are not keys, random base64 without context.
    near = [
        "AKIA" + "".join(rng.choice(B32) for _ in range(15)),       # 19 chars
        "AKIA" + "".join(rng.choice(B32) for _ in range(17)),       # 21 chars
        "AKIA1234567890ABCDEF",                                     # 0,1,8,9 are not base32
        "AKIA" + "".join(rng.choice(B32) for _ in range(8)) + "01890189",
        "akia" + "".join(rng.choice(B32).lower() for _ in range(16)),
        "XAKIA" + "".join(rng.choice(B32) for _ in range(16)),
        "AROA" + "".join(rng.choice(B32) for _ in range(16)),       # role unique id
        "AIDA" + "".join(rng.choice(B32) for _ in range(16)),       # user unique id
    ]
    hashes = [hashlib.sha1(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest(),
              base64.b64encode(hashlib.sha256(b"c").digest()).decode(), hashlib.sha1(b"d").hexdigest().upper()]
    c.decoy_strings = near + hashes
    write("docs/decoys.md", "Not keys:\n\n" + "\n".join(f"- `{d}`" for d in near) + "\n\nHashes:\n\n"
          + "\n".join(f"- sha: {h}" for h in hashes)
          + f"\naws_secret_access_key = {hashlib.sha1(b'e').hexdigest()}\n"
          + "aws_secret_access_key = ${{ secrets.AWS_SECRET_ACCESS_KEY }}\n"
          + f"blob = {secret(rng)}\n")
    write("package-lock.json", json.dumps({"integrity": "sha512-" + base64.b64encode(hashlib.sha512(b"x").digest()).decode()}))
    commit("app")

    # A key committed, then deleted.
    p = new("deleted file", "old/creds.txt", history_only=True)
    write("old/creds.txt", f"key: {p.key_id}\nsecret: {p.secret}\n", flat_name="history/old_creds.txt")
    commit("creds")
    git(repo, "rm", "-q", "old/creds.txt")
    commit("remove creds")

    # A key overwritten by a later commit (the old value lives only in history).
    p = new("overwritten value", "scripts/deploy.sh", history_only=True)
    write("scripts/deploy.sh", f"#!/bin/sh\nexport AWS_ACCESS_KEY_ID={p.key_id}\nexport AWS_SECRET_ACCESS_KEY={p.secret}\n",
          flat_name="history/deploy_v1.sh")
    commit("deploy script")
    (repo / "scripts/deploy.sh").write_text("#!/bin/sh\n# credentials come from OIDC now\n")
    commit("use oidc")

    # A key only on another branch.
    git(repo, "checkout", "-q", "-b", "feature/s3")
    p = new("other branch", "deploy/keys.json", history_only=True)
    write("deploy/keys.json", json.dumps({"accessKeyId": p.key_id, "secretAccessKey": p.secret}, indent=2),
          flat_name="history/branch_keys.json")
    commit("feature keys")
    git(repo, "checkout", "-q", "main")
    (repo / "deploy").exists() and None
    return c
