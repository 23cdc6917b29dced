"""SPACIER's third experiment replayed: Cp & refractive_index, 10 initial fluoropolymers,
20 cycles × 10, strategies EHVI (top-10), Kriging believer and random, over several seeds.

Oracle: ../shared/data/spacier_benchmark (1,067-polymer pool, PI1070 MD values).  Metrics as
defined in ``core.optimize.backtest``: ``pareto_found`` (how many of the oracle's true Pareto
polymers
have been evaluated; SPACIER's metric) and the hypervolume fraction (z-scaling on all valid
oracle rows, reference = nadir − 10 % range).

For the fixed SPACIER initial set the seed only changes the GP optimiser restarts (EHVI,
believer) or the draws (random); ``--initial random`` also draws a different initial set of
10 pool polymers per seed.

Usage: python benchmarks/bench_backtest.py [--seeds 5] [--strategies ehvi,believer,random]
       [--kernel matern] [--initial fixed|random] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.optimize.backtest import load_oracle, quality_metric, run_campaign  # noqa: E402
from core.optimize.surrogate import DEFAULT_KERNEL  # noqa: E402

SB = REPO.parent / "shared" / "data" / "spacier_benchmark"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--strategies", default="ehvi,believer,random")
    ap.add_argument("--kernel", default=DEFAULT_KERNEL)
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--initial", default="fixed", choices=("fixed", "random"))
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    if not SB.is_dir():
        print(f"{SB} not found; nothing to benchmark")
        return 0
    orc = load_oracle(SB, ["Cp", "refractive_index"])
    metric = quality_metric(orc)
    print(f"pool {orc.X_pool.shape[0]}, initial {orc.X_init.shape[0]} ({a.initial}), true Pareto "
          f"front {len(metric.true_front_keys)} polymers, kernel {a.kernel}, {a.cycles} cycles x {a.batch}")
    runs = []
    for strategy in a.strategies.split(","):
        t0 = time.perf_counter()
        for seed in range(a.seeds):
            runs.append(run_campaign(orc, strategy=strategy, cycles=a.cycles, batch=a.batch, seed=seed,
                                     kernel=a.kernel, initial=a.initial, metric=metric,
                                     log=lambda s: None))
            r = runs[-1]
            print(f"  {strategy:8s} seed {seed}: Pareto found {r['pareto_found'][-1]:2d}/"
                  f"{len(metric.true_front_keys)}, HV fraction {r['hypervolume_fraction'][-1]:.3f}",
                  flush=True)
        print(f"  {strategy}: {time.perf_counter() - t0:.1f} s for {a.seeds} seeds", flush=True)
    checkpoints = [c for c in (0, 5, 10, 15, 20) if c <= a.cycles]
    print("\nPareto polymers found (mean ± sd over seeds) at cycle " + ", ".join(map(str, checkpoints)))
    for strategy in a.strategies.split(","):
        pf = np.array([r["pareto_found"] for r in runs if r["strategy"] == strategy], dtype=float)
        hv = np.array([r["hypervolume_fraction"] for r in runs if r["strategy"] == strategy])
        cells = "  ".join(f"{pf[:, c].mean():5.1f}±{pf[:, c].std():4.1f}" for c in checkpoints)
        hcells = "  ".join(f"{hv[:, c].mean():.3f}±{hv[:, c].std():.3f}" for c in checkpoints)
        print(f"{strategy:8s} Pareto  {cells}")
        print(f"{strategy:8s} HV frac {hcells}")
    print("\nModel check (GP prediction of each pick vs its oracle value, all cycles and seeds; "
          "a calibrated GP has 68 % within 1σ, 95 % within 2σ):")
    for strategy in a.strategies.split(","):
        rows = [m for r in runs if r["strategy"] == strategy for m in r["model_check"]
                if m["cycle"] == "all"]
        for obj in dict.fromkeys(m["objective"] for m in rows):
            ms = [m for m in rows if m["objective"] == obj]
            n = sum(m["n"] for m in ms)
            w1 = sum(m["within_1sd"] * m["n"] for m in ms) / n
            w2 = sum(m["within_2sd"] * m["n"] for m in ms) / n
            rmse = (sum(m["rmse"] ** 2 * m["n"] for m in ms) / n) ** 0.5
            bias = sum(m["bias"] * m["n"] for m in ms) / n
            print(f"{strategy:8s} {obj:17s} n {n:4d}  bias {bias:+.4g}  RMSE {rmse:.4g}  "
                  f"within 1σ {w1:.0%}  within 2σ {w2:.0%}")
    if a.json:
        Path(a.json).write_text(json.dumps({"config": vars(a), "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
