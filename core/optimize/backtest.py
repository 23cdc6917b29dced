"""Replay a discovery campaign against an oracle table (pool-based retrospective benchmark).

    python -m core.backtest --oracle DIR_OR_CSV --objectives A,B --cycles N --batch Q \
        --strategy ehvi|believer|random[,...] --seeds K [--json PATH] [--kernel NAME]

Oracle formats
--------------
* a SPACIER benchmark folder: ``X_pool.csv`` + ``y_oracle.csv`` (row-aligned pool) and
  ``X.csv`` + ``y.csv`` (row-aligned initial set).  Keys are ``monomer_ID`` (else row ids).
* one CSV with a polymer-SMILES column (``psmiles`` or ``smiles``) and the objective columns;
  descriptors are computed with ``core.chem.descriptors.ff_kernel_mean_batch`` unless the CSV
  already holds the 170 descriptor columns.  The initial set is ``--n-initial`` random rows
  (per seed), or the rows flagged in a boolean ``initial`` column.

Values of -9999 or NaN in an objective mean "the simulation failed" (SPACIER's convention):
such a candidate can be selected and then uses up its slot, but never enters the training set.

Each cycle (as in SPACIER's experiment 3): the product's own proposal step,
:func:`core.optimize.proposal.propose` (one GP per objective on the evaluated, successful polymers;
EHVI against the Pareto front of the training data; ``--batch`` candidates by the strategy),
with the acquisition reference point ``--acq-ref`` given in z-units of the training data
(default (−5, −5) z, SPACIER's) and converted to original units (mean + z·std); then the
chosen candidates' oracle values are revealed.  ``random`` picks uniformly instead.

Measured quality (the numbers in the JSON), fixed for the whole replay so cycles and
strategies are comparable:
* objectives are z-scored with the mean/std of ALL valid oracle rows (pool ∪ initial);
* reference point = per-objective minimum of those z-values − 10 % of their range;
* ``hypervolume[c]`` = HV of the evaluated successful polymers after cycle c (entry 0 = the
  initial set), in z-units²; ``hypervolume_fraction`` = that / HV of the oracle's full front;
* ``pareto_found[c]`` = how many polymers of the oracle's true Pareto front (maximisation,
  pool ∪ initial) have been evaluated (SPACIER's experiment-3 metric);
* ``model_check`` = the GP's prediction of each pick against its oracle value, per cycle and
  objective (:func:`core.optimize.model_check.model_check`: bias, MAE, RMSE, fraction within
  1σ / 2σ), the same numbers the campaign's status shows.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from core.optimize.acquisition import hypervolume_2d, pareto_mask
from core.config import Strategy
from core.errors import InputError
from core.optimize.model_check import model_check
from core.optimize.proposal import Candidates, Observations, Pending, ProposalConfig, propose
from core.optimize.surrogate import DEFAULT_KERNEL, KERNELS

__all__ = ["BacktestInputError", "Oracle", "load_oracle", "quality_metric", "run_campaign", "main"]

FAILED_SENTINEL = -9999.0
STRATEGIES = (Strategy.EHVI, Strategy.BELIEVER, Strategy.RANDOM)


class BacktestInputError(InputError):
    """Bad oracle table or backtest configuration."""


@dataclass
class Oracle:
    """Pool (+ optional fixed initial set) with descriptors and objective values (NaN = failed)."""

    names: tuple[str, ...]
    X_pool: np.ndarray
    Y_pool: np.ndarray
    keys_pool: list[str]
    X_init: np.ndarray | None = None
    Y_init: np.ndarray | None = None
    keys_init: list[str] | None = None
    init_mask_pool: np.ndarray | None = None  # CSV 'initial' column


def _clean_values(df: pd.DataFrame, names: Sequence[str], where: str) -> np.ndarray:
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise BacktestInputError(f"{where} lacks objective column(s) {missing}; has {list(df.columns)[:12]}")
    Y = np.array(df[list(names)].apply(pd.to_numeric, errors="coerce").to_numpy(float), dtype=float)
    Y[(Y == FAILED_SENTINEL) | ~np.isfinite(Y)] = np.nan
    return Y


def _keys(df: pd.DataFrame, prefix: str) -> list[str]:
    if "monomer_ID" in df.columns:
        return [str(k) for k in df["monomer_ID"]]
    return [f"{prefix}{i}" for i in range(len(df))]


def load_oracle(path: str | Path, objectives: Sequence[str]) -> Oracle:
    """Read a SPACIER-style folder or a single CSV (see module docstring)."""
    p = Path(path)
    names = tuple(objectives)
    if len(names) != 2 or len(set(names)) != 2:
        raise BacktestInputError(f"need exactly two distinct objectives, got {names}")
    if p.is_dir():
        need = ["X_pool.csv", "y_oracle.csv"]
        if not all((p / f).is_file() for f in need):
            raise BacktestInputError(f"{p} must contain {need} (and optionally X.csv, y.csv)")
        Xp = pd.read_csv(p / "X_pool.csv")
        yp = pd.read_csv(p / "y_oracle.csv")
        if len(Xp) != len(yp):
            raise BacktestInputError(f"X_pool.csv ({len(Xp)}) and y_oracle.csv ({len(yp)}) differ in rows")
        orc = Oracle(names, Xp.to_numpy(float), _clean_values(yp, names, "y_oracle.csv"), _keys(yp, "pool"))
        if (p / "X.csv").is_file() and (p / "y.csv").is_file():
            Xi, yi = pd.read_csv(p / "X.csv"), pd.read_csv(p / "y.csv")
            if len(Xi) != len(yi) or list(Xi.columns) != list(Xp.columns):
                raise BacktestInputError("X.csv/y.csv do not match each other or X_pool.csv columns")
            orc.X_init, orc.Y_init, orc.keys_init = Xi.to_numpy(float), _clean_values(yi, names, "y.csv"), _keys(yi, "init")
    elif p.is_file():
        df = pd.read_csv(p)
        smi_col = next((c for c in ("psmiles", "smiles", "SMILES") if c in df.columns), None)
        Y = _clean_values(df, names, p.name)
        desc_cols = [c for c in df.columns if c.startswith(("mass_", "charge_", "epsilon_", "sigma_",
                                                          "k_bond_", "r0_", "k_angle_", "theta0_", "k_dih_"))]
        if len(desc_cols) == 170:
            X = df[desc_cols].to_numpy(float)
        else:
            if smi_col is None:
                raise BacktestInputError(f"{p.name} needs a 'psmiles' or 'smiles' column")
            from core.chem.descriptors import ff_kernel_mean_batch  # lazy: RDKit + GAFF2 typing

            def _progress(done: int, total: int) -> None:
                if done == total or done % 100 == 0:
                    print(f"descriptors {done}/{total}", file=sys.stderr, flush=True)

            X = np.asarray(ff_kernel_mean_batch(list(df[smi_col].astype(str)), on_error="nan",
                                                progress=_progress), dtype=float)
            if X.shape != (len(df), 170):
                raise BacktestInputError(f"descriptor batch returned shape {X.shape}")
            bad = ~np.all(np.isfinite(X), axis=1)
            if bad.any():
                print(f"dropping {int(bad.sum())} row(s) whose descriptor failed: "
                      f"{list(df[smi_col][bad])[:5]}", file=sys.stderr)
                df, X, Y = df[~bad].reset_index(drop=True), X[~bad], Y[~bad]
        keys = [str(k) for k in df[smi_col]] if smi_col is not None else _keys(df, "row")
        if len(set(keys)) != len(keys):
            raise BacktestInputError(f"{p.name} contains duplicate polymers")
        orc = Oracle(names, X, Y, keys)
        if "initial" in df.columns:
            orc.init_mask_pool = df["initial"].astype(bool).to_numpy()
    else:
        raise BacktestInputError(f"oracle {p} does not exist")
    if not np.all(np.isfinite(orc.X_pool)) or (orc.X_init is not None and not np.all(np.isfinite(orc.X_init))):
        raise BacktestInputError("descriptors contain NaN or inf")
    if orc.X_pool.shape[0] == 0:
        raise BacktestInputError("the oracle pool is empty")
    return orc


@dataclass(frozen=True)
class QualityMetric:
    """Fixed z-scaling + reference point used to score every replay of one oracle."""

    mean: np.ndarray
    std: np.ndarray
    ref: np.ndarray
    true_front_keys: frozenset
    hv_true: float

    def z(self, Y: np.ndarray) -> np.ndarray:
        return (Y - self.mean) / self.std

    def hypervolume(self, Y: np.ndarray) -> float:
        ok = np.all(np.isfinite(Y), axis=1)
        return hypervolume_2d(self.z(Y[ok]), self.ref) if ok.any() else 0.0


def quality_metric(orc: Oracle) -> QualityMetric:
    """z-scaling on all valid oracle rows, ref = nadir − 10 % range, true Pareto front."""
    Y = orc.Y_pool if orc.Y_init is None else np.vstack([orc.Y_init, orc.Y_pool])
    keys = orc.keys_pool if orc.keys_init is None else orc.keys_init + orc.keys_pool
    ok = np.all(np.isfinite(Y), axis=1)
    if ok.sum() < 2:
        raise BacktestInputError("the oracle needs at least two rows with valid values")
    Yv = Y[ok]
    mean, std = Yv.mean(0), Yv.std(0)
    std = np.where(std > 0, std, 1.0)
    Z = (Yv - mean) / std
    ref = Z.min(0) - 0.1 * (Z.max(0) - Z.min(0))
    mask = pareto_mask(Yv)
    kv = [k for k, o in zip(keys, ok) if o]
    front_keys = frozenset(k for k, m in zip(kv, mask) if m)
    return QualityMetric(mean, std, ref, front_keys, hypervolume_2d(Z[mask], ref))


def run_campaign(orc: Oracle, *, strategy: str, cycles: int, batch: int, seed: int = 0,
                 kernel: str = DEFAULT_KERNEL, n_initial: int = 10, initial: str = "fixed",
                 acq_ref: Sequence[float] = (-5.0, -5.0), n_restarts: int = 0,
                 metric: QualityMetric | None = None, believer_sigma_update: bool = True,
                 log=print) -> dict:
    """Replay one campaign; returns the run record (see module docstring for the metrics).

    ``believer_sigma_update=False`` runs the Kriging believer with fantasies added to the front
    only (posterior σ not conditioned on them).
    """
    if strategy not in STRATEGIES:
        raise BacktestInputError(f"unknown strategy {strategy!r}; choose from {STRATEGIES}")
    if kernel not in KERNELS:
        raise BacktestInputError(f"unknown kernel {kernel!r}; choose from {KERNELS}")
    if cycles < 0 or batch < 1:
        raise BacktestInputError("cycles must be ≥ 0 and batch ≥ 1")
    metric = metric or quality_metric(orc)
    rng = np.random.default_rng(seed)
    n_pool = orc.X_pool.shape[0]
    # initial set: fixed (folder X.csv/y.csv, or CSV 'initial' column) or random pool rows
    evaluated = np.zeros(n_pool, dtype=bool)
    if initial == "fixed" and orc.X_init is not None:
        X0, Y0, K0 = orc.X_init, orc.Y_init, list(orc.keys_init)
    elif initial == "fixed" and orc.init_mask_pool is not None:
        evaluated |= orc.init_mask_pool
        X0, Y0, K0 = orc.X_pool[:0], orc.Y_pool[:0], []
    elif initial in ("fixed", "random"):  # not vocabulary: initial design
        if not 2 <= n_initial < n_pool:
            raise BacktestInputError(f"n_initial must be in [2, {n_pool - 1}]")
        evaluated[rng.choice(n_pool, size=n_initial, replace=False)] = True
        X0, Y0, K0 = orc.X_pool[:0], orc.Y_pool[:0], []
    else:
        raise BacktestInputError(f"initial must be 'fixed' or 'random', got {initial!r}")

    def observed():
        X = np.vstack([X0, orc.X_pool[evaluated]])
        Y = np.vstack([Y0, orc.Y_pool[evaluated]])
        keys = K0 + [k for k, e in zip(orc.keys_pool, evaluated) if e]
        return X, Y, keys

    def record(hv, found, nfail):
        X, Y, keys = observed()
        hv.append(metric.hypervolume(Y))
        found.append(len(metric.true_front_keys.intersection(keys)))
        nfail.append(int(np.sum(~np.all(np.isfinite(Y), axis=1))))

    hv: list[float] = []
    found: list[int] = []
    nfail: list[int] = []
    selected: list[list[str]] = []
    pairs: list[dict] = []
    record(hv, found, nfail)
    t_start = time.perf_counter()
    for c in range(1, cycles + 1):
        if evaluated.all():
            break
        X, Y, _ = observed()
        ok = np.all(np.isfinite(Y), axis=1)
        if strategy == Strategy.RANDOM or ok.sum() < 3:
            avail = np.flatnonzero(~evaluated)
            pick = rng.choice(avail, size=min(batch, avail.size), replace=False)
        else:
            fit_seed, select_seed = int(rng.integers(2**31)), int(rng.integers(2**31))
            # the acquisition reference point is given in z-units of the training data
            m_obs, s_obs = Y[ok].mean(0), Y[ok].std(0)
            s_obs = np.where(s_obs > 0, s_obs, 1.0)
            ref = m_obs + np.asarray(acq_ref, dtype=float) * s_obs
            config = ProposalConfig(
                objectives=(orc.names[0], orc.names[1]), reference_point=(ref[0], ref[1]),
                q=batch, strategy=strategy, kernel=kernel, fit_seed=fit_seed,
                select_seed=select_seed, n_restarts=n_restarts, n_mc=0,
                believer_sigma_update=believer_sigma_update)
            done = frozenset(k for k, e in zip(orc.keys_pool, evaluated) if e)
            prop = propose(Observations(X[ok], Y[ok]), Candidates(orc.X_pool, orc.keys_pool),
                           config, Pending(exclude=done))
            pick = prop.rows
            for i in pick:  # the GP's prediction of each pick, for the model check
                for j, name in enumerate(orc.names):
                    mu, sd, y = prop.mean[i, j], prop.std[i, j], orc.Y_pool[i, j]
                    if np.isfinite(mu) and np.isfinite(sd) and sd > 0 and np.isfinite(y):
                        pairs.append({"cycle": c, "key": orc.keys_pool[i], "objective": name,
                                      "mean": float(mu), "std": float(sd), "value": float(y),
                                      "error": float(y - mu), "z": float((y - mu) / sd)})
        evaluated[pick] = True
        selected.append([orc.keys_pool[i] for i in pick])
        record(hv, found, nfail)
        log(f"[{strategy} seed {seed}] cycle {c}/{cycles}: HV {hv[-1]:.4f} "
            f"({hv[-1] / metric.hv_true:.3f} of true), Pareto found {found[-1]}/"
            f"{len(metric.true_front_keys)}, failed {nfail[-1]}, {time.perf_counter() - t_start:.1f} s")
    return {"seed": int(seed), "strategy": strategy, "kernel": kernel,
            "hypervolume": [float(v) for v in hv],
            "hypervolume_fraction": [float(v / metric.hv_true) for v in hv],
            "pareto_found": found, "n_failed": nfail, "selected": selected,
            "model_check": model_check(pd.DataFrame(
                pairs, columns=["cycle", "key", "objective", "mean", "std", "value", "error",
                                "z"])).to_dict("records")}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.backtest", description=__doc__.split("\n\n")[0])
    ap.add_argument("--oracle", required=True, help="SPACIER benchmark folder or one CSV")
    ap.add_argument("--objectives", required=True, help="two column names, comma-separated (maximised)")
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--strategy", default=Strategy.EHVI.value, help="ehvi, believer, random (comma list allowed)")
    ap.add_argument("--seeds", type=int, default=1, help="run seeds 0..K-1")
    ap.add_argument("--json", dest="json_path", default=None)
    ap.add_argument("--kernel", default=DEFAULT_KERNEL, choices=KERNELS)
    ap.add_argument("--initial", default="fixed", choices=("fixed", "random"))  # not vocabulary: design
    ap.add_argument("--n-initial", type=int, default=10)
    ap.add_argument("--acq-ref", default="-5,-5", help="acquisition reference point, z units of the training data")
    ap.add_argument("--restarts", type=int, default=0, help="GP optimizer random restarts per fit")
    a = ap.parse_args(argv)
    try:
        objectives = [s.strip() for s in a.objectives.split(",") if s.strip()]
        strategies = [s.strip() for s in a.strategy.split(",") if s.strip()]
        acq_ref = [float(v) for v in a.acq_ref.split(",")]
        if len(acq_ref) != 2:
            raise BacktestInputError("--acq-ref needs two numbers")
        if a.seeds < 1:
            raise BacktestInputError("--seeds must be ≥ 1")
        orc = load_oracle(a.oracle, objectives)
        metric = quality_metric(orc)
        init_desc = (f"{orc.X_init.shape[0]} fixed (X.csv/y.csv)" if orc.X_init is not None and a.initial == "fixed"
                     else f"{int(orc.init_mask_pool.sum())} flagged" if orc.init_mask_pool is not None and a.initial == "fixed"
                     else f"{a.n_initial} random per seed")
        print(f"oracle: {orc.X_pool.shape[0]} pool rows, initial {init_desc}; true Pareto front "
              f"{len(metric.true_front_keys)} polymers; HV(true) {metric.hv_true:.4f} "
              f"(z-units, ref {metric.ref.round(3).tolist()})", flush=True)
        runs = []
        for strategy in strategies:
            for seed in range(a.seeds):
                runs.append(run_campaign(orc, strategy=strategy, cycles=a.cycles, batch=a.batch,
                                         seed=seed, kernel=a.kernel, n_initial=a.n_initial,
                                         initial=a.initial, acq_ref=acq_ref, n_restarts=a.restarts,
                                         metric=metric, log=lambda s: print(s, flush=True)))
    except BacktestInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = {"config": {"oracle": str(a.oracle), "objectives": objectives, "cycles": a.cycles,
                      "batch": a.batch, "kernel": a.kernel, "initial": a.initial,
                      "acq_ref": acq_ref, "restarts": a.restarts},
           "metric": {"z_mean": metric.mean.tolist(), "z_std": metric.std.tolist(),
                      "ref_z": metric.ref.tolist(), "hv_true": metric.hv_true,
                      "n_true_front": len(metric.true_front_keys),
                      "true_front": sorted(metric.true_front_keys)},
           "runs": runs}
    for strategy in strategies:
        hv = np.array([r["hypervolume_fraction"] for r in runs if r["strategy"] == strategy])
        pf = np.array([r["pareto_found"] for r in runs if r["strategy"] == strategy])
        print(f"{strategy:9s} final HV fraction {hv[:, -1].mean():.3f} ± {hv[:, -1].std():.3f}, "
              f"Pareto found {pf[:, -1].mean():.1f} ± {pf[:, -1].std():.1f} (over {len(hv)} seeds)")
    if a.json_path:
        Path(a.json_path).write_text(json.dumps(out, indent=1))
        print(f"wrote {a.json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
