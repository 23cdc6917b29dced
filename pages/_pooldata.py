"""Pool data for the pages (not a page): the shipped pool plus the campaign's uploads, joined
with the latest predictions (GP mean/σ, EHVI, P(beyond)) when a proposal has saved them and
with the screening columns (estimated CPU minutes for the campaign's preset, SA score, motif
flags, simulability pre-check; ``core.optimize.cost_estimate.screen``), and the pool's
substructure match matrix (cached per process)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.chem.substructures import DEFAULT_LIBRARY, match_matrix
from core.ui.views import join_screening
from pages._common import Ctx, config, esc


@st.cache_resource(show_spinner="Loading the candidate pool …")
def _default_pool() -> pd.DataFrame:
    from core.pool import load_default_pool

    p = load_default_pool()
    return pd.DataFrame({"id": [str(i) for i in p["ids"]], "psmiles": list(p["psmiles"]),
                         "source": "pool"})


def _predictions_columns(preds: pd.DataFrame) -> pd.DataFrame:
    ren = {"pred_mean_n_D": "n_pred", "pred_std_n_D": "n_sd",
           "pred_mean_abbe_number": "abbe_pred", "pred_std_abbe_number": "abbe_sd"}
    keep = [c for c in ("pool_id", "key", "psmiles", *ren, "ehvi", "p_beyond") if c in preds]
    return preds[keep].rename(columns=ren)


#: how the Pool and Batch pages show the screening columns (``core.ui.views.SCREENING_COLUMNS``)
SCREENING_COLUMN_CONFIG = {
    "cost_cpu_min": st.column_config.NumberColumn(
        "CPU-min", format="%.1f",
        help="estimated CPU minutes on one core for the campaign's preset "
             "(charges + MD + QM, core.optimize.cost_estimate)"),
    "sa_score": st.column_config.NumberColumn(
        "SA score", format="%.2f",
        help="synthetic accessibility of the H-capped repeat unit, 1 easy … 10 hard "
             "(Ertl & Schuffenhauer 2009)"),
    "flags": st.column_config.TextColumn(
        "motif flags", help="unfit motifs (core.chem.feasibility): unstable, reactive or "
                            "coloured groups"),
    "simulable": st.column_config.CheckboxColumn(
        "pre-check", help="passes the simulability pre-check of the preset"),
    "unsimulable_reason": st.column_config.TextColumn("why not simulable"),
}


def with_screening(ctx: Ctx, table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (a ``psmiles`` column) with the screening columns for the campaign's preset
    (``core.ui.views.join_screening``): shipped for the shipped pool, cached in the store for
    other polymers, computed once (~6 ms each, with a progress bar when there are many)."""
    from core.optimize.cost_estimate import screen

    bar = None

    def tick(done: int, total: int) -> None:
        nonlocal bar
        if total < 200:
            return
        if bar is None:
            bar = st.progress(0.0, text=f"Screening {total:,} polymers (once per store) …")
        if done % 50 == 0 or done == total:
            bar.progress(done / total, text=f"Screening … {done:,}/{total:,}")

    sc = screen(table["psmiles"].astype(str).tolist(), config(ctx)["preset"], cache=ctx.store,
                progress=tick)
    if bar is not None:
        bar.empty()
    return join_screening(table, sc)


def pool_table(ctx: Ctx) -> pd.DataFrame:
    """id, psmiles, source (+ n_pred, n_sd, abbe_pred, abbe_sd, ehvi, p_beyond when known),
    and the screening columns of :func:`with_screening`.

    When the latest proposal saved predictions (``core.campaign.cycle.propose_batch``: one row per
    campaign pool candidate, uploads included), that frame is the table; uploads added since
    are appended without predictions. Otherwise the shipped pool plus the uploads."""
    extra = ctx.store.pool_candidates(ctx.campaign)
    ex = pd.DataFrame({"id": "extra-" + extra["id"].astype(str), "psmiles": extra["psmiles"],
                       "source": extra["source"].fillna("upload")}) if len(extra) else None
    preds = ctx.store.latest_predictions(ctx.campaign)
    if preds is not None and len(preds) and "psmiles" in preds:
        p = _predictions_columns(preds)
        ids = p["pool_id"].astype(str) if "pool_id" in p else pd.Series(range(len(p))).astype(str)
        table = pd.DataFrame({"id": ids, "psmiles": p["psmiles"].astype(str),
                              "source": np.where(ids.str.startswith("extra-"), "upload", "pool")})
        for c in ("n_pred", "n_sd", "abbe_pred", "abbe_sd", "ehvi", "p_beyond"):
            if c in p:
                table[c] = pd.to_numeric(p[c], errors="coerce").to_numpy()
        if ex is not None:
            new = ex[~ex["psmiles"].isin(set(table["psmiles"]))]
            table = pd.concat([table, new], ignore_index=True)
        return with_screening(ctx, table)
    try:
        base = _default_pool()
    except Exception as err:  # noqa: BLE001 - pool missing: pages still work on uploads
        st.warning(f"Default pool not available: {type(err).__name__}: {esc(err)}")
        base = pd.DataFrame(columns=["id", "psmiles", "source"])
    if ex is not None:
        base = pd.concat([base, ex], ignore_index=True)
    return with_screening(ctx, base.reset_index(drop=True))


_MATCHES: dict[int, pd.DataFrame] = {}  # per server process, a few pools at most


def pool_matches(pool: pd.DataFrame) -> pd.DataFrame:
    """Boolean match matrix of :data:`DEFAULT_LIBRARY` aligned with ``pool`` rows (computed once
    per server process and pool, with a progress bar: ~1 ms per polymer)."""
    ps = tuple(pool["psmiles"].astype(str))
    key = hash(ps)
    m = _MATCHES.get(key)
    if m is None:
        bar = st.progress(0.0, text=f"Matching the substructure library on {len(ps):,} "
                                    "polymers (once per server) …")
        m = match_matrix(list(ps), DEFAULT_LIBRARY,
                         progress=lambda f: bar.progress(f, text=f"Matching substructures … "
                                                                 f"{f:.0%}"))
        bar.empty()
        if len(_MATCHES) >= 4:
            _MATCHES.pop(next(iter(_MATCHES)))
        _MATCHES[key] = m
    return m.set_axis(pool.index, axis=0)


def finite(df: pd.DataFrame, cols: list[str]) -> np.ndarray:
    ok = np.ones(len(df), dtype=bool)
    for c in cols:
        ok &= np.isfinite(pd.to_numeric(df[c], errors="coerce").to_numpy(float)) if c in df \
            else False
    return ok
