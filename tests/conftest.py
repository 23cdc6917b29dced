"""Shared pytest fixtures."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OPTIPOLY_SHARED", REPO.parent / "shared"))
SHARED_DATA = SHARED / "data"

# Guard: no test may touch the repository's own var/optipoly.db or start a detached runner by
# accident (e.g. a Streamlit script re-run after a test's monkeypatch was undone).  Tests that
# need a database or a runner set OPTIPOLY_DB / OPTIPOLY_RUNNER=1 explicitly for themselves.
_GUARD_DIR = Path(tempfile.mkdtemp(prefix="optipoly-test-guard-"))
os.environ["OPTIPOLY_DB"] = str(_GUARD_DIR / "unexpected.db")
os.environ["OPTIPOLY_RUNNER"] = "0"
os.environ["OPTIPOLY_CACHE"] = str(_GUARD_DIR / "cache")


def _runner_pids_for(path_fragment: str) -> list[int]:
    """PIDs of ``core.runner`` processes whose command line mentions ``path_fragment``."""
    pids = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "core.runner" in cmd and path_fragment in cmd:
            pids.append(int(d.name))
    return pids


@pytest.fixture(scope="session", autouse=True)
def _no_stray_runner():
    """After the session: no runner may be left on the guard database or the repo's var/."""
    yield
    import signal

    for frag in (str(_GUARD_DIR), str(REPO / "var")):
        for pid in _runner_pids_for(frag):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
    import shutil

    shutil.rmtree(_GUARD_DIR, ignore_errors=True)  # incl. the servers' chart cache


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Directory for test artifacts (screenshots, logs)."""
    d = REPO / "test-artifacts"
    d.mkdir(exist_ok=True)
    return d
