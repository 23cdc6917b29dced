"""Pool data for the pages (not a page): the shipped pool plus the campaign's uploads, joined
with the latest predictions (GP mean/σ, EHVI, P(beyond)) when a proposal has saved them, and
the pool's substructure match matrix (cached per process)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.substructures import DEFAULT_LIBRARY, match_matrix
from pages._common import Ctx


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
    """id, psmiles, source (+ n_pred, n_sd, abbe_pred, abbe_sd, ehvi, p_beyond when known)."""
    try:
        base = _default_pool()
    except Exception as err:  # noqa: BLE001 - pool missing: pages still work on uploads
        st.warning(f"Default pool not available: {type(err).__name__}: {err}")
        base = pd.DataFrame(columns=["id", "psmiles", "source"])
    extra = ctx.store.pool_candidates(ctx.campaign)
    if len(extra):
        ex = pd.DataFrame({"id": "u" + extra["id"].astype(str), "psmiles": extra["psmiles"],
                           "source": extra["source"].fillna("upload")})
        base = pd.concat([base, ex], ignore_index=True)
    preds = ctx.store.latest_predictions(ctx.campaign)
    if preds is None or len(preds) == 0:
        return base
    p = _predictions_columns(preds)
    if "pool_id" in p:
        p["pool_id"] = p["pool_id"].astype(str)
        return base.merge(p.drop(columns=[c for c in ("psmiles", "key") if c in p]),
                          left_on="id", right_on="pool_id", how="left").drop(columns="pool_id")
    if "psmiles" in p:
        return base.merge(p.drop(columns=[c for c in ("key",) if c in p]), on="psmiles",
                          how="left")
    if len(p) == len(base):
        return pd.concat([base.reset_index(drop=True),
                          p.drop(columns=[c for c in ("key",) if c in p]).reset_index(drop=True)],
                         axis=1)
    return base


@st.cache_resource(show_spinner="Matching the substructure library on the pool …")
def _pool_matches(psmiles: tuple[str, ...]) -> pd.DataFrame:
    return match_matrix(list(psmiles), DEFAULT_LIBRARY)


def pool_matches(pool: pd.DataFrame) -> pd.DataFrame:
    """Boolean match matrix of :data:`DEFAULT_LIBRARY` aligned with ``pool`` rows."""
    m = _pool_matches(tuple(pool["psmiles"].astype(str)))
    return m.set_axis(pool.index, axis=0)


def finite(df: pd.DataFrame, cols: list[str]) -> np.ndarray:
    ok = np.ones(len(df), dtype=bool)
    for c in cols:
        ok &= np.isfinite(pd.to_numeric(df[c], errors="coerce").to_numpy(float)) if c in df \
            else False
    return ok
