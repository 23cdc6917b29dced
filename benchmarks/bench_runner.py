"""Orchestration overhead of the runner: the same ``smoke`` calculations run (a) directly in a
2-process pool (spawned fresh, as dask workers are) calling ``execute_calculation`` and (b) through the runner process (store →
dask LocalCluster with 2 workers → store), measured side by side.

    python benchmarks/bench_runner.py [--n 4]

Prints wall times, the runner's cluster start-up time (from its log), and the ratio
runner/direct for the calculation phase.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.chem.polymer import polymer_key  # noqa: E402
from core.execution.task import execute_calculation  # noqa: E402
from core.store import Store  # noqa: E402

POLYMERS = ["*CC(*)C", "*CC(*)(C)C(=O)OC", "*CC(*)Cl", "*CCO*", "*CC(*)C#N", "*CCS*",
            "*CC(*)F", "*CC(*)CC"]


def _direct(psmiles: list[str], root: Path) -> float:
    specs = [{"calc_id": i, "attempt": 1, "psmiles": s, "preset": "smoke",
              "workdir": str(root / f"d{i}"), "threads": 1} for i, s in enumerate(psmiles)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as ex:  # like dask
        list(ex.map(execute_calculation, specs))
    return time.perf_counter() - t0


def _runner(psmiles: list[str], root: Path) -> tuple[float, float]:
    store = Store(root / "b.db")
    store.create_campaign("bench", {"preset": "smoke", "cluster": {
        "profile": "local", "n_workers": 2, "threads_per_worker": 1}}, actor="bench")
    b = store.create_batch("bench", [{"psmiles": s, "key": polymer_key(s)} for s in psmiles],
                           strategy="ehvi")
    store.approve_batch(b["id"], actor="bench")
    log = root / "runner.log"
    t0 = time.perf_counter()
    with open(log, "wb") as fh:
        subprocess.run([sys.executable, "-m", "core.runner", "--campaign", "bench", "--db",
                        str(store.path), "--poll", "0.5", "--exit-when-idle"], cwd=REPO,
                       stdout=fh, stderr=subprocess.STDOUT, check=True)
    total = time.perf_counter() - t0
    text = log.read_text()
    stamps = [datetime.fromisoformat(m) for m in
              re.findall(r"^(\S+) runner\[bench\] (?:cluster local started|batch 1)", text, re.M)]
    calc_phase = (stamps[1] - stamps[0]).total_seconds() if len(stamps) >= 2 else float("nan")
    assert set(store.calculations("bench")["status"]) == {"done"}, text[-2000:]
    return total, calc_phase


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4)
    n = ap.parse_args().n
    ps = POLYMERS[:n]
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        direct = _direct(ps, root / "direct")
        total, phase = _runner(ps, root / "runner")
    print(f"{n} smoke calculations, 2 parallel workers")
    print(f"  direct (process pool)          : {direct:6.1f} s")
    print(f"  runner, cluster up → batch done: {phase:6.1f} s   ratio runner/direct "
          f"{phase / direct:4.2f}")
    print(f"  runner, process start → exit   : {total:6.1f} s   (incl. cluster start-up, "
          f"next proposal attempt, shutdown)")


if __name__ == "__main__":
    main()
