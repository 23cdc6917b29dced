"""Is the surrogate any good?  Predicted vs simulated values of each proposed batch.

For every candidate that was proposed with a GP prediction (mean μ, standard deviation σ per
objective, stored with the batch) and has since been evaluated, the standardised error is
z = (y − μ) / σ.  A calibrated Gaussian predictive distribution puts 68.3 % of the |z| within 1
and 95.4 % within 2; far fewer means an over-confident model (σ too small), far more an
under-confident one.  Per cycle and objective: n, mean error (bias), mean absolute error,
RMSE and the fractions within 1σ and 2σ.  Pure functions over data frames.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["prediction_pairs", "model_check", "IDEAL_WITHIN_1SD", "IDEAL_WITHIN_2SD"]

#: fractions of a standard normal within ±1σ and ±2σ (the calibrated target)
IDEAL_WITHIN_1SD: float = 0.6827
IDEAL_WITHIN_2SD: float = 0.9545


def _as_map(v: Any) -> Mapping:
    if isinstance(v, Mapping):
        return v
    if isinstance(v, str) and v:
        try:
            out = json.loads(v)
        except ValueError:
            return {}
        return out if isinstance(out, Mapping) else {}
    return {}


def prediction_pairs(candidates: pd.DataFrame, observations: pd.DataFrame,
                     objectives: Sequence[str]) -> pd.DataFrame:
    """One row per (evaluated candidate, objective): ``cycle``, ``key``, ``objective``,
    ``mean``, ``std`` (the GP prediction stored with the batch), ``value`` (the observed value;
    the mean when a polymer was observed more than once), ``error`` = value − mean and
    ``z`` = error / std.

    ``candidates``: the batches' candidates with ``cycle``, ``key`` and either ``pred_mean`` /
    ``pred_std`` (dicts objective → value, or their JSON text) or the store's flat columns
    ``pred_mean_<objective>`` / ``pred_std_<objective>``; candidates without a prediction
    (added by hand) are skipped.  ``observations``: ``key`` and one column per
    objective (only the campaign's own fidelity should be passed, core.campaign.fidelity).
    """
    cols = ["cycle", "key", "objective", "mean", "std", "value", "error", "z"]
    if candidates is None or candidates.empty or observations is None or observations.empty:
        return pd.DataFrame(columns=cols)
    seen = observations.groupby("key")[list(objectives)].mean()
    rows = []
    for _, c in candidates.iterrows():
        if c["key"] not in seen.index:
            continue
        mean, std = dict(_as_map(c.get("pred_mean"))), dict(_as_map(c.get("pred_std")))
        for o in objectives:  # the store's flat columns
            for col, dst in ((f"pred_mean_{o}", mean), (f"pred_std_{o}", std)):
                v = c.get(col)
                if o not in dst and v is not None and not pd.isna(v):
                    dst[o] = v
        for o in objectives:
            mu, sd, y = mean.get(o), std.get(o), seen.at[c["key"], o]
            if mu is None or sd is None or not np.isfinite(y):
                continue
            mu, sd, y = float(mu), float(sd), float(y)
            if not (np.isfinite(mu) and np.isfinite(sd)) or sd <= 0:
                continue
            rows.append({"cycle": int(c["cycle"]), "key": c["key"], "objective": o, "mean": mu,
                         "std": sd, "value": y, "error": y - mu, "z": (y - mu) / sd})
    return pd.DataFrame(rows, columns=cols)


def model_check(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per cycle and objective (and an ``all`` row per objective): ``n``, ``bias`` (mean of
    value − μ), ``mae``, ``rmse`` (objective units: n_D dimensionless, ν_D dimensionless),
    ``within_1sd`` and ``within_2sd`` (fractions of |z| ≤ 1 and ≤ 2; calibrated: 0.683 / 0.954).
    """
    cols = ["cycle", "objective", "n", "bias", "mae", "rmse", "within_1sd", "within_2sd"]
    if pairs is None or pairs.empty:
        return pd.DataFrame(columns=cols)

    def summarise(g: pd.DataFrame) -> dict:
        e, z = g["error"].to_numpy(float), np.abs(g["z"].to_numpy(float))
        return {"n": int(len(g)), "bias": float(e.mean()), "mae": float(np.abs(e).mean()),
                "rmse": float(np.sqrt((e ** 2).mean())), "within_1sd": float((z <= 1).mean()),
                "within_2sd": float((z <= 2).mean())}

    rows = [{"cycle": str(cy), "objective": o, **summarise(g)}
            for (cy, o), g in pairs.groupby(["cycle", "objective"], sort=True)]
    rows += [{"cycle": "all", "objective": o, **summarise(g)}
             for o, g in pairs.groupby("objective", sort=True)]
    return pd.DataFrame(rows, columns=cols)
