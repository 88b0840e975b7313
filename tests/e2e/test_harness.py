"""Self-checks of the e2e harness that do not need keyless: the issuer mints what the tests
assume, and the generated config is valid TOML with valid JSON policies matching the contract."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from keyless_e2e import AUD, REPO, Issuer, b64url_decode, default_config, free_port


def claims_of(token: str) -> tuple[dict, dict]:
    h, p, _ = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p))


def test_issuer_mints_github_actions_shaped_tokens(issuer: Issuer) -> None:
    header, claims = claims_of(issuer.gha_token(ref="refs/heads/dev", **{"https://aws.amazon.com/tags": {
        "principal_tags": {"team": ["blue"]}}}))
    assert header["alg"] == "RS256" and header["kid"] in issuer.stats()["kids"]
    assert claims["iss"] == issuer.url and issuer.url.startswith("http://127.0.0.1:")
    assert claims["sub"] == f"repo:{REPO}:ref:refs/heads/dev"
    assert claims["aud"] == AUD and claims["repository"] == REPO
    assert claims["https://aws.amazon.com/tags"] == {"principal_tags": {"team": ["blue"]}}
    assert isinstance(claims["exp"], int) and claims["exp"] > claims["iat"]


def test_issuer_forgeries(issuer: Issuer) -> None:
    kids = issuer.stats()["kids"]
    h, _ = claims_of(issuer.forged("unknown-kid", sub="s"))
    assert h["kid"] not in kids
    h, _ = claims_of(issuer.forged("hs256-pubkey", sub="s"))
    assert h["alg"] == "HS256" and h["kid"] in kids
    tok = issuer.forged("alg-none", sub="s")
    assert tok.endswith(".") and claims_of(tok)[0]["alg"] == "none"


def test_default_config_is_valid(issuer: Issuer, tmp_path: Path) -> None:
    cfg = tomllib.loads(default_config(issuer, tmp_path / "data", throttle=(1.0, 2)))
    assert set(cfg) == {"listen", "data_dir", "accounts", "providers", "roles", "guardrails", "throttle"}
    assert cfg["providers"][0]["url"] == issuer.url and cfg["providers"][0]["allow_http"] is True
    names = [r["name"] for r in cfg["roles"]]
    assert names == ["gha", "gha-any-branch", "tagged", "deploy", "locked"]
    for role in cfg["roles"]:
        trust = json.loads(role["trust_policy"])
        assert trust["Version"] == "2012-10-17"
        for doc in role["policies"].values():
            assert json.loads(doc)["Statement"]
    gha_trust = json.loads(cfg["roles"][0]["trust_policy"])["Statement"][0]
    assert gha_trust["Principal"]["Federated"] == f"arn:aws:iam::123456789012:oidc-provider/{issuer.host}"
    assert f"{issuer.host}:sub" in gha_trust["Condition"]["StringEquals"]
    assert json.loads(cfg["guardrails"][0]["document"])["Statement"][0]["Effect"] == "Deny"
    assert cfg["throttle"] == {"rate_per_second": 1.0, "burst": 2}


def test_free_port() -> None:
    assert 1024 <= free_port() <= 65535
