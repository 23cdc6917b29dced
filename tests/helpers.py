"""Helpers shared by the tests and ``benchmarks/bench_faults.py`` (one copy of each)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import pytest

from core.store import Store
from core.execution.task import read_progress

REPO = Path(__file__).resolve().parents[1]
#: polymers the runner tests simulate (polypropylene, PMMA, polystyrene, PVC)
PP, PMMA, PS, PVC = "*CC(*)C", "*CC(*)(C)C(=O)OC", "*CC(*)c1ccccc1", "*CC(*)Cl"
#: preset overrides that make the MD step long enough to interrupt
SLOW_MD = {"production_ps": 2000.0}
#: a small candidate pool of simple polymers (CSV pools of test campaigns)
POOL = ["*CC*", "*CC(*)C", "*CC(*)CC", "*CC(*)Cl", "*CC(*)F", "*CC(F)(F)*", "*CC(*)C#N",
        "*CC(*)c1ccccc1", "*CC(*)(C)C(=O)OC", "*CC(*)C(=O)OC", "*CCO*", "*CCS*", "*CCCS*",
        "*CCS(=O)(=O)*", "*c1ccc(S*)cc1", "*c1ccc(O*)cc1", "*CC(*)OC(C)=O", "*CC(*)c1ccncc1",
        "*CCCCO*", "*CC(C)(*)c1ccccc1", "*CCSCCS(=O)(=O)*", "*CC(*)C(=O)SC"]


def reference_records(abbrevs=("PMMA", "PS", "PC", "COP", "TPX", "CHDT-DVS")) -> list[dict]:
    """Measured n_D, ν_D of shipped reference polymers as initial observations."""
    ref = pd.read_csv(REPO / "assets" / "reference_polymers.csv", comment="#")
    ref = ref.set_index("abbreviation").loc[list(abbrevs)].reset_index()
    return [{"name": r.abbreviation, "psmiles": r.psmiles,
             "values": {"n_D": float(r.n_D), "abbe_number": float(r.abbe_number)},
             "provenance": {"source": r.source, "kind": "experimental"}}
            for r in ref.itertuples()]


def write_pool_csv(path: Path, psmiles: list[str] = POOL) -> Path:
    """A CSV pool (``id,psmiles``) of ``psmiles`` with ids T0, T1, …; returns ``path``."""
    path.write_text("id,psmiles\n" + "\n".join(f"T{i},{s}" for i, s in enumerate(psmiles)))
    return path


def slurm_profile(log_dir: Path, **extra: Any) -> dict:
    """The cluster profile of the one-node SLURM of ``scripts/start_slurm.sh``."""
    return {"profile": "slurm", "cores": 1, "memory": "2GB", "walltime": "00:20:00",
            "queue": "debug", "adapt_minimum": 0, "adapt_maximum": 1,
            "log_directory": str(log_dir), **extra, "job_script_prologue": [f"cd {REPO}"]}


def poll(cond: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """``cond()``'s first truthy value within ``timeout`` seconds, else None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    return None


def wait_for(cond: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Like :func:`poll`, but a timeout fails the test naming ``what`` was awaited."""
    v = poll(cond, timeout, interval)
    if not v:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")
    return v


def workdir_of(store: Store, calc_id: int) -> Path | None:
    """The calculation's work dir once the runner assigned one."""
    wd = store.get_calculation(calc_id)["workdir"]
    return Path(wd) if wd else None


def progress_at(store: Store, calc_id: int, step: str, attempt: int) -> Callable[[], Any]:
    """A condition for :func:`wait_for`: the calculation's progress record is at ``step`` of
    ``attempt`` (returns the record)."""
    def check():
        wd = workdir_of(store, calc_id)
        p = read_progress(wd) if wd else None
        return p if p and p["step"] == step and p["attempt"] == attempt else None
    return check


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in fh)
    except OSError:
        return False


def start_runner(store: Store, name: str, log: Path, *, idle_exit: bool = True) -> subprocess.Popen:
    """``python -m core.runner`` for a local campaign (polls every 0.3 s), logging to ``log``."""
    cmd = [sys.executable, "-m", "core.runner", "--campaign", name, "--db", str(store.path),
           "--poll", "0.3"] + (["--exit-when-idle"] if idle_exit else [])
    fh = open(log, "ab")
    return subprocess.Popen(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)


def slurm_env() -> dict:
    """The environment for the one-node SLURM of ``scripts/start_slurm.sh``; skips the test
    when it is not up."""
    conf = os.environ.get("SLURM_CONF") or "/tmp/optipoly-slurm/slurm.conf"
    if shutil.which("sinfo") is None:
        pytest.skip("SLURM client tools (sinfo) not installed: apt-get install slurm-wlm munge")
    if not Path(conf).is_file():
        pytest.skip(f"no SLURM config at {conf}: run scripts/start_slurm.sh first")
    env = {**os.environ, "SLURM_CONF": conf}
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True,
                             text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.skip("sinfo timed out: slurmctld not responding (run scripts/start_slurm.sh)")
    states = out.stdout.split()
    if out.returncode != 0 or not any(s.rstrip("*") in ("idle", "mix", "alloc") for s in states):
        pytest.skip(f"SLURM daemons not up (sinfo rc {out.returncode}, states {states}, "
                    f"{out.stderr.strip()[:200]}); run scripts/start_slurm.sh")
    return env


def slurm_runner(store: Store, name: str, env: dict, log: Path) -> subprocess.Popen:
    """``python -m core.runner`` for a SLURM campaign (exits when idle), logging to ``log``."""
    return subprocess.Popen([sys.executable, "-m", "core.runner", "--campaign", name, "--db",
                             str(store.path), "--poll", "0.5", "--exit-when-idle"], cwd=REPO,
                            env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
