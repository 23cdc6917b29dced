"""Shared pytest fixtures."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from core.campaign.commands import create_campaign
from core.chem.polymer import polymer_key
from core.store import Store

from tests.helpers import (reference_records, serve_seeded, slurm_env, slurm_profile,
                           write_pool_csv)

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
    """PIDs of ``python -m core.runner`` processes whose command line mentions ``path_fragment``."""
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


@pytest.fixture()
def campaign(tmp_path):
    """``make(name, psmiles)``: a local smoke campaign with an approved batch of ``psmiles``;
    returns (store, batch id, {psmiles: calculation id})."""
    def make(name: str, psmiles: list[str], *, n_workers: int = 2, max_attempts: int = 3):
        pool = tmp_path / "pool.csv"
        write_pool_csv(pool)
        store = Store(tmp_path / "c.db")
        create_campaign(store, name, {
            "pool_source": str(pool), "preset": "smoke", "batch_size": 2,
            "experimental_in_model": True,  # seeded with measured reference polymers
            "max_attempts": max_attempts,
            "cluster": {"profile": "local", "n_workers": n_workers, "threads_per_worker": 1}},
            initial=reference_records(("PC", "COP", "TPX")), actor="test")
        b = store.create_batch(name, [{"psmiles": s, "key": polymer_key(s)} for s in psmiles],
                               strategy="ehvi", actor="test")
        assert store.approve_batch(b["id"], actor="test")["approved"]
        calcs = store.calculations(name).set_index("psmiles")["id"].to_dict()
        return store, b["id"], {s: int(c) for s, c in calcs.items()}
    return make


@pytest.fixture()
def slurm_campaign(tmp_path):
    """Like ``campaign`` on the one-node SLURM (skipped when it is not up); also returns the
    SLURM environment."""
    env = slurm_env()

    def make(name: str, psmiles: list[str], max_attempts: int = 2):
        pool = write_pool_csv(tmp_path / "pool.csv")
        store = Store(tmp_path / "s.db")
        create_campaign(store, name, {
            "pool_source": str(pool), "preset": "smoke", "batch_size": 2,
            "experimental_in_model": True,  # seeded with measured reference polymers
            "max_attempts": max_attempts,
            "cluster": slurm_profile(tmp_path / "slurm-logs")},
            initial=reference_records(("PC", "COP", "TPX")), actor="test")
        b = store.create_batch(name, [{"psmiles": s, "key": polymer_key(s)} for s in psmiles],
                               strategy="ehvi", actor="test")
        store.approve_batch(b["id"], actor="test")
        calcs = store.calculations(name).set_index("psmiles")["id"].to_dict()
        return store, b["id"], {s: int(c) for s, c in calcs.items()}, env
    return make


@pytest.fixture()
def seeded(tmp_path, monkeypatch):
    """A campaign in a realistic mid-run state (:func:`tests.helpers.seed_store`) served to the
    dashboard through the environment; ids, the store and the chart cache directory."""
    return serve_seeded(tmp_path, monkeypatch)
