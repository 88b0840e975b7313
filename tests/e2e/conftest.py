"""pytest fixtures for the keyless end-to-end tests (helpers live in keyless_e2e.py)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from keyless_e2e import Issuer, Keyless, _stop, default_config, start_issuer, start_keyless


# --------------------------------------------------------------------------------------------
# pytest fixtures


@pytest.fixture
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="keyless-e2e-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def module_workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="keyless-e2e-mod-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def issuer(module_workdir: Path) -> Iterator[Issuer]:
    """An OIDC issuer shared by a test module (do not rotate it: use `own_stack`)."""
    iss = start_issuer(module_workdir)
    yield iss
    _stop(iss.proc)


@pytest.fixture(scope="module")
def keyless(module_workdir: Path, issuer: Issuer) -> Iterator[Keyless]:
    """keyless serving the standard config, shared by a test module."""
    srv = start_keyless(module_workdir / "keyless", default_config(issuer, module_workdir / "keyless" / "data"))
    yield srv
    _stop(srv.proc)


@pytest.fixture
def own_stack(workdir: Path) -> Iterator[Any]:
    """A factory for a private issuer + keyless pair (for tests that rotate keys or throttle)."""
    procs: list[subprocess.Popen] = []

    def make(throttle: tuple[float, int] | None = None) -> tuple[Issuer, Keyless]:
        iss = start_issuer(workdir)
        procs.append(iss.proc)
        srv = start_keyless(workdir / "keyless", default_config(iss, workdir / "keyless" / "data", throttle))
        procs.append(srv.proc)
        return iss, srv

    yield make
    for p in reversed(procs):
        _stop(p)


