"""A campaign's results per cycle, as the seed paper reports them (SPACIER, Fig. 5 and 6).

:func:`cycle_report` gives one row per cycle (cycle 0 = the initial observations), always over
the observations of the campaign's own fidelity (:func:`core.campaign.cycle.campaign_observations`):

- ``evaluated``     new observations in the cycle;
- ``n_failed``      calculations of the cycle that ended failed or cancelled;
- ``n_observations`` cumulative number of observations;
- ``beyond_line``   cumulative number above the campaign's limit line (n_D above the line at the
                    point's ν_D, ``core.chem.optics.LimitLine.is_beyond``); ``new_beyond`` the
                    cycle's own;
- ``hypervolume``   of the cumulative observed front above the reference point (n_D × ν_D);
- ``best_n_D_abbe40`` the highest n_D among the cumulative observations with ν_D ≥ 40 (the seed's
                    "high n_D at an acceptable dispersion" corner; NaN if none);
- ``wall_min``      minutes from the batch's approval to its last finished calculation.

:func:`beyond_line_substructures` gives, for the polymers beyond the line, how many carry sulfur,
a sulfonyl group and a thioether (the seed's finding: about 40 % of its beyond-line polymers carry
S, several a sulfonyl group), beside the same fractions among all evaluated polymers.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.config import CalcState
from core.store import Store

__all__ = ["cycle_report", "beyond_line_substructures", "report_markdown", "ABBE_CUT"]

ABBE_CUT = 40.0  # ν_D at or above which "best n_D" is taken (dimensionless)
SUBSTRUCTURE_GROUPS = ("contains S", "sulfonyl", "sulfide / thioether")


def _minutes(start: Any, end: Any) -> float:
    try:
        a, b = pd.Timestamp(start), pd.Timestamp(end)
    except (TypeError, ValueError):
        return float("nan")
    if pd.isna(a) or pd.isna(b):
        return float("nan")
    return float((b - a).total_seconds() / 60.0)


def cycle_report(store: Store, campaign: Any) -> pd.DataFrame:
    """One row per cycle (see the module docstring for the columns and units)."""
    from core.campaign.cycle import campaign_observations, cycle_metrics  # noqa: PLC0415

    cfg = store.campaign_config(campaign)
    same, _ = campaign_observations(store, campaign)
    calcs = store.calculations(campaign)
    batches = store.batches(campaign)
    cycles = sorted(set(same["cycle"].astype(int)) | set(batches["cycle"].astype(int))
                    if len(batches) else set(same["cycle"].astype(int)))
    rows = []
    for k in cycles:
        upto = same[same["cycle"].astype(int) <= k]
        own = same[same["cycle"].astype(int) == k]
        m = cycle_metrics(cfg, upto)
        good = upto[upto["abbe_number"].astype(float) >= ABBE_CUT]
        c = calcs[calcs["cycle"].astype(int) == k] if len(calcs) else calcs
        failed = int(c["status"].isin([CalcState.FAILED, CalcState.CANCELLED]).sum()) if len(c) else 0
        b = batches[batches["cycle"].astype(int) == k] if len(batches) else batches
        wall = float("nan")
        if len(b) and len(c) and c["finished_at"].notna().any():
            wall = _minutes(b["approved_at"].dropna().min() if b["approved_at"].notna().any()
                            else c["created_at"].min(), c["finished_at"].dropna().max())
        rows.append({"cycle": k, "evaluated": int(len(own)), "n_failed": failed,
                     "n_observations": m["n_observations"], "beyond_line": m["n_beyond"],
                     "hypervolume": m["hypervolume"],
                     "best_n_D_abbe40": float(good["n_D"].astype(float).max())
                     if len(good) else float("nan"),
                     "wall_min": wall})
    out = pd.DataFrame(rows)
    if len(out):  # the cycle's own beyond-line polymers: the growth of the cumulative count
        out.insert(out.columns.get_loc("hypervolume"), "new_beyond",
                   out["beyond_line"].diff().fillna(out["beyond_line"]).astype(int))
    return out


def beyond_line_substructures(store: Store, campaign: Any,
                              groups: tuple[str, ...] = SUBSTRUCTURE_GROUPS) -> pd.DataFrame:
    """Per substructure group: count and fraction among the beyond-line polymers and among all
    polymers of the campaign's own fidelity (columns group, n_beyond_with, n_beyond,
    frac_beyond, n_all_with, n_all, frac_all)."""
    from core.campaign.cycle import campaign_observations, limit_line_of  # noqa: PLC0415
    from core.chem.substructures import DEFAULT_LIBRARY, match_matrix  # noqa: PLC0415

    cfg = store.campaign_config(campaign)
    same, _ = campaign_observations(store, campaign)
    chosen = [DEFAULT_LIBRARY[g] for g in groups]
    if same.empty:
        return pd.DataFrame(columns=["group", "n_beyond_with", "n_beyond", "frac_beyond",
                                     "n_all_with", "n_all", "frac_all"])
    beyond = np.asarray(limit_line_of(cfg).is_beyond(same["n_D"].to_numpy(float),
                                                     same["abbe_number"].to_numpy(float)), bool)
    hits = match_matrix(same["psmiles"].tolist(), chosen)[list(groups)].to_numpy(bool)
    out = []
    for j, g in enumerate(groups):
        nb, na = int(beyond.sum()), int(len(same))
        out.append({"group": g, "n_beyond_with": int(hits[beyond, j].sum()), "n_beyond": nb,
                    "frac_beyond": float(hits[beyond, j].mean()) if nb else float("nan"),
                    "n_all_with": int(hits[:, j].sum()), "n_all": na,
                    "frac_all": float(hits[:, j].mean()) if na else float("nan")})
    return pd.DataFrame(out)


def report_markdown(store: Store, campaign: Any) -> str:
    """The two tables as Markdown (for the README's Results section and ``campaign report``)."""
    rep = cycle_report(store, campaign)
    lines = ["| cycle | evaluated | failed | beyond line (new) | hypervolume | "
             f"best n_D at ν_D ≥ {ABBE_CUT:g} | wall (min) |", "|---|---|---|---|---|---|---|"]
    for r in rep.itertuples():
        wall = "–" if not np.isfinite(r.wall_min) else f"{r.wall_min:.0f}"
        best = "–" if not np.isfinite(r.best_n_D_abbe40) else f"{r.best_n_D_abbe40:.3f}"
        lines.append(f"| {r.cycle} | {r.evaluated} | {r.n_failed} | {r.beyond_line} "
                     f"({r.new_beyond:+d}) | {r.hypervolume:.2f} | {best} | {wall} |")
    sub = beyond_line_substructures(store, campaign)
    lines += ["", "| substructure | beyond the line | all evaluated |", "|---|---|---|"]
    for r in sub.itertuples():
        fb = "–" if not np.isfinite(r.frac_beyond) else f"{100 * r.frac_beyond:.0f} %"
        lines.append(f"| {r.group} | {r.n_beyond_with} of {r.n_beyond} ({fb}) | "
                     f"{r.n_all_with} of {r.n_all} ({100 * r.frac_all:.0f} %) |")
    return "\n".join(lines)
