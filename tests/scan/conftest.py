"""Fixtures for the keyless scan/lint/migrate comparison tests: the binary and a planted corpus."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from corpus import build_corpus

REPO = Path(__file__).resolve().parents[2]


def _find_binary() -> Path:
    env = os.environ.get("KEYLESS_BIN")
    if env:
        return Path(env)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    # The most recently built of the release and debug binaries (a stale one would test old code).
    built = [p for p in (target / "release" / "keyless", target / "debug" / "keyless") if p.exists()]
    if built:
        return max(built, key=lambda p: p.stat().st_mtime)
    subprocess.run(["cargo", "build", "-p", "keyless"], cwd=REPO, check=True)
    return target / "debug" / "keyless"


@pytest.fixture(scope="session")
def keyless_bin() -> Path:
    return _find_binary()


@pytest.fixture(scope="session")
def detect_secrets_bin() -> str:
    venv = REPO / ".venv" / "bin" / "detect-secrets"
    if venv.exists():
        return str(venv)
    found = shutil.which("detect-secrets")
    if not found:
        pytest.fail("detect-secrets is not installed (pip install -r tests/requirements.txt)")
    return found


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    return build_corpus(tmp_path_factory.mktemp("corpus"))
