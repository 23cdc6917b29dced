"""Time of one closed-loop proposal (GP refit + EHVI over the pool + store writes).

    python benchmarks/bench_propose.py [--n-obs 10 100] [--q 10]

Pools timed side by side:
- ``spacier``: RadonPy's PI1070 polymers with SPACIER's 170-d descriptors
  (../shared/data/spacier_benchmark/X_pool.csv, 1,067 rows) and their real computed
  refractive index and density (y_oracle.csv) as the two objectives;
- ``default``: the shipped 10k pool (assets/pool) when it exists, with the same PI1070
  observations (their descriptors computed by core.chem.descriptors when not in the pool).

Prints seconds per proposal for the "ehvi" (top-q) and "believer" (Kriging believer) strategies
and the believer/ehvi ratio.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.campaign.cycle import propose_batch  # noqa: E402
from core.store import Store  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "spacier_benchmark"


def _spacier_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    X = pd.read_csv(SHARED / "X_pool.csv")
    y = pd.read_csv(SHARED / "y_oracle.csv")
    pool = pd.concat([pd.DataFrame({"id": y["monomer_ID"], "psmiles": y["smiles"]}), X], axis=1)
    return pool, y


def _time_pool(pool_source: str, y: pd.DataFrame, n_obs: int, q: int, tmp: Path) -> dict:
    rng = np.random.default_rng(0)
    rows = y.iloc[rng.choice(len(y), n_obs, replace=False)]
    out = {}
    for strategy in ("ehvi", "believer"):
        store = Store(tmp / f"{pool_source.replace('/', '_')}-{n_obs}-{strategy}.db")
        store.create_campaign("b", {"objectives": ["refractive_index", "density"],
                                    "reference_point": [1.3, 0.8], "pool_source": pool_source,
                                    "acquisition_strategy": strategy, "batch_size": q},
                              actor="bench")
        for r in rows.itertuples():
            store.add_observation("b", r.smiles, {"refractive_index": r.refractive_index,
                                                  "density": r.density},
                                  source="initial", name=r.monomer_ID)
        propose_batch(store, "b")  # warm caches (pool file, descriptors)
        t0 = time.perf_counter()
        propose_batch(store, "b")
        out[strategy] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-obs", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--q", type=int, default=10)
    args = ap.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"needs {SHARED}")
    pool, y = _spacier_frames()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        pool_csv = tmp / "spacier_pool.csv"
        pool.to_csv(pool_csv, index=False)
        sources = [("spacier (1,067)", str(pool_csv))]
        if (REPO / "assets" / "pool").is_dir():
            sources.append(("default (assets/pool)", "default"))
        print(f"{'pool':24s} {'n_obs':>5s} {'ehvi s':>8s} {'believer s':>10s} {'ratio':>6s}")
        for label, src in sources:
            for n in args.n_obs:
                t = _time_pool(src, y, n, args.q, tmp)
                print(f"{label:24s} {n:5d} {t['ehvi']:8.2f} {t['believer']:10.2f} "
                      f"{t['believer'] / t['ehvi']:6.2f}")


if __name__ == "__main__":
    main()
