"""Pool data for the pages (not a page): the shipped pool plus the campaign's uploads, joined
with the latest predictions (GP mean/σ, EHVI, P(beyond)) when a proposal has saved them, and
the pool's substructure match matrix (cached per process)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.chem.substructures import DEFAULT_LIBRARY, match_matrix
from pages._common import Ctx, esc


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


def pool_table(ctx: Ctx) -> pd.DataFrame:
    """id, psmiles, source (+ n_pred, n_sd, abbe_pred, abbe_sd, ehvi, p_beyond when known).

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
        return table
    try:
        base = _default_pool()
    except Exception as err:  # noqa: BLE001 - pool missing: pages still work on uploads
        st.warning(f"Default pool not available: {type(err).__name__}: {esc(err)}")
        base = pd.DataFrame(columns=["id", "psmiles", "source"])
    if ex is not None:
        base = pd.concat([base, ex], ignore_index=True)
    return base


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
