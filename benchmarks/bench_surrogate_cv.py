"""Cross-validation of the GP surrogate kernels on PI1070 (refractive_index, density, Cp).

Data: ../shared/data/PI1070.csv joined by monomer_ID with SPACIER's 170-d descriptors
(spacier_benchmark/X.csv + X_pool.csv, row-aligned with y.csv + y_oracle.csv; the join is
checked: every monomer_ID's SMILES must match).  Rows with a missing value are dropped per
property.

Two regimes, both on the same folds for every kernel:
* ``kfold``: 5-fold CV over all ~1075 polymers (the data-rich limit);
* ``small``: train on n_train random polymers (default 100, the campaign regime), test on
  the rest, repeated ``--repeats`` times.

Reported per kernel × property: R², RMSE (original units), mean std, calibration = fraction
of held-out points with |y − μ| ≤ 1σ (ideal 0.683) and ≤ 2σ (ideal 0.954), using the
predictive σ (latent + fitted noise), and mean fit time.

Usage: python benchmarks/bench_surrogate_cv.py [--kernels published,matern,minmax]
       [--regimes kfold,small] [--n-train 100] [--repeats 5]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.optimize.surrogate import fit_gp  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
PROPS = ("refractive_index", "density", "Cp")


def load_pi1070_with_descriptors(shared: Path = SHARED) -> tuple[np.ndarray, pd.DataFrame]:
    """(X (n, 170), table with monomer_ID, smiles, refractive_index, density, Cp)."""
    sb = shared / "spacier_benchmark"
    X = pd.concat([pd.read_csv(sb / "X.csv"), pd.read_csv(sb / "X_pool.csv")]).reset_index(drop=True)
    ids = pd.concat([pd.read_csv(sb / "y.csv"), pd.read_csv(sb / "y_oracle.csv")])[
        ["monomer_ID", "smiles"]].reset_index(drop=True)
    if len(ids) != len(X):
        raise RuntimeError("descriptor and oracle tables are not row-aligned")
    pi = pd.read_csv(shared / "PI1070.csv")[["monomer_ID", "smiles", *PROPS]]
    m = ids.merge(pi, on="monomer_ID", how="left", suffixes=("", "_pi"), validate="one_to_one")
    if m["smiles_pi"].isna().any() or not (m["smiles"] == m["smiles_pi"]).all():
        raise RuntimeError("monomer_ID join of PI1070 and SPACIER descriptors is inconsistent")
    return X.to_numpy(float), m.drop(columns="smiles_pi")


def metrics(y, mu, sd) -> dict:
    res = y - mu
    ss = np.sum((y - y.mean()) ** 2)
    z = np.abs(res) / np.maximum(sd, 1e-300)
    return {"R2": 1 - np.sum(res ** 2) / ss, "RMSE": float(np.sqrt(np.mean(res ** 2))),
            "mean_sd": float(np.mean(sd)), "in1sd": float(np.mean(z <= 1)),
            "in2sd": float(np.mean(z <= 2))}


def splits(n: int, regime: str, n_train: int, repeats: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    if regime == "kfold":
        perm = rng.permutation(n)
        folds = np.array_split(perm, 5)
        for k in range(5):
            test = folds[k]
            yield np.setdiff1d(perm, test), test
    else:
        for _ in range(repeats):
            perm = rng.permutation(n)
            yield perm[:n_train], perm[n_train:]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels", default="published,matern,minmax")
    ap.add_argument("--regimes", default="small,kfold")
    ap.add_argument("--props", default=",".join(PROPS))
    ap.add_argument("--n-train", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--restarts", type=int, default=0)
    a = ap.parse_args(argv)
    if not SHARED.is_dir():
        print(f"shared data not found at {SHARED}; nothing to benchmark")
        return 0
    X, tab = load_pi1070_with_descriptors()
    rows = []
    for regime in a.regimes.split(","):
        for prop in a.props.split(","):
            ok = tab[prop].notna().to_numpy()
            Xp, yp = X[ok], tab[prop].to_numpy(float)[ok]
            for kern in a.kernels.split(","):
                ys, mus, sds, times = [], [], [], []
                per_split = []
                for tr, te in splits(len(yp), regime, a.n_train, a.repeats):
                    t0 = time.perf_counter()
                    gp = fit_gp(Xp[tr], yp[tr], kern, seed=0, n_restarts=a.restarts)
                    times.append(time.perf_counter() - t0)
                    mu, sd = gp.predict(Xp[te])
                    ys.append(yp[te]); mus.append(mu); sds.append(sd)
                    per_split.append(metrics(yp[te], mu, sd)["R2"])
                mt = metrics(np.concatenate(ys), np.concatenate(mus), np.concatenate(sds))
                mt.update(regime=regime, prop=prop, kernel=kern, fit_s=float(np.mean(times)),
                          R2_split_sd=float(np.std(per_split)))
                rows.append(mt)
                print(f"{regime:5s} {prop:17s} {kern:10s} R2={mt['R2']:.3f}(±{mt['R2_split_sd']:.3f}) "
                      f"RMSE={mt['RMSE']:.4g} in1sd={mt['in1sd']:.3f} in2sd={mt['in2sd']:.3f} "
                      f"fit={mt['fit_s']:.2f}s", flush=True)
    df = pd.DataFrame(rows)
    print("\nMean R² over properties (higher is better) and calibration:")
    print(df.groupby(["regime", "kernel"])[["R2", "in1sd", "in2sd", "fit_s"]].mean().round(3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
