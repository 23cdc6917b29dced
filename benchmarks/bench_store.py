"""Store speed: writes per second, dashboard reads at 1,000 observations/calculations, and read
latency with and without a concurrent writer process (WAL lets readers proceed): a writer
throttled to 50 commits/s (a busy runner) and an unthrottled one (worst case, on 2 cores it
also competes for CPU).

    python benchmarks/bench_store.py [--n 1000]

Prints timings (ms) and the ratio loaded/unloaded read latency measured side by side.
Observation values are placeholders for timing only (they are never shown as results).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.store import Store  # noqa: E402


def _writer(path: str, stop, n_done, hz: float) -> None:
    s = Store(path)
    calc_ids = list(s.calculations("bench")["id"])[:50]
    i = 0
    while not stop.is_set():
        cid = int(calc_ids[i % len(calc_ids)])
        s.update_progress(cid, 1, step=f"md {i}", message="bench")
        i += 1
        if hz > 0:
            time.sleep(1.0 / hz)
    n_done.value = i


def _time(fn, repeat: int = 5) -> float:
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    n = ap.parse_args().n
    with tempfile.TemporaryDirectory() as d:
        s = Store(Path(d) / "b.db")
        s.create_campaign("bench", {"batch_size": n}, actor="bench")
        t0 = time.perf_counter()
        for i in range(n):
            s.add_observation("bench", f"*C{'C' * (i % 7)}*", {"n_D": 1.5, "abbe_number": 40.0},
                              source="initial", key=f"k{i}", provenance={"i": i})
        w = (time.perf_counter() - t0) / n * 1000
        print(f"add_observation: {w:.2f} ms per write ({1000 / w:.0f} writes/s)")
        b = s.create_batch("bench", [{"psmiles": f"*C{i}*", "key": f"c{i}",
                                      "pred_mean": {"n_D": 1.5, "abbe_number": 40},
                                      "pred_std": {"n_D": .01, "abbe_number": 1},
                                      "ehvi": 0.1, "p_beyond": 0.2} for i in range(n)],
                           strategy="ehvi")
        t0 = time.perf_counter()
        s.approve_batch(b["id"], actor="bench")
        print(f"approve_batch with {n} calculations: {(time.perf_counter() - t0) * 1000:.1f} ms")
        for cid in list(s.calculations("bench")["id"])[:50]:
            s.start_attempt(int(cid), dask_key="k", workdir="/tmp/x", log_path="/tmp/x/l")
        reads = {
            "observations()": lambda: s.observations("bench"),
            "calculations()": lambda: s.calculations("bench"),
            "batch_candidates()": lambda: s.batch_candidates(b["id"]),
            "runner_status()": lambda: s.runner_status("bench"),
        }
        ctx = mp.get_context("spawn")
        for hz in (50.0, 0.0):  # a busy runner (50 commits/s) / an unthrottled writer
            quiet = {k: _time(f) for k, f in reads.items()}
            stop, n_done = ctx.Event(), ctx.Value("i", 0)
            p = ctx.Process(target=_writer, args=(str(s.path), stop, n_done, hz))
            p.start()
            time.sleep(1.0)
            t_load = time.perf_counter()
            loaded = {k: _time(f) for k, f in reads.items()}
            stop.set()
            p.join()
            dt = time.perf_counter() - t_load
            print(f"\nreads at {n} rows (median of 5, ms): quiet | with a writer process "
                  f"(~{n_done.value / (dt + 1.0):.0f} commits/s) | ratio")
            for k in reads:
                print(f"  {k:20s} {quiet[k]:8.1f} | {loaded[k]:8.1f} | "
                      f"{loaded[k] / max(quiet[k], 1e-3):5.2f}")


if __name__ == "__main__":
    main()
