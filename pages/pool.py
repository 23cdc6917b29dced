"""Pool: search and filter the candidate pool (substring, substructure, predicted values,
EHVI, motif flags, simulability pre-check, estimated CPU cost), view structures, add selected
rows to the batch waiting for approval (with their predictions and EHVI), upload extra
candidates (validated, per-row errors)."""
from __future__ import annotations

import re

import numpy as np

import pandas as pd
import streamlit as st

from core.config import BatchState
from core.chem.structure_images import polymer_data_uri
from core.chem.substructures import DEFAULT_LIBRARY
from core.ui.views import (MAX_UPLOAD_BYTES, MAX_UPLOAD_ROWS, data_signature, filter_pool,
                           filter_screening, parse_smiles_lines, parse_upload,
                           screening_flag_names, screening_summary)
from pages._common import ACTOR, Ctx, config, esc, limit_line, structure_column, page_ctx
from pages._pooldata import SCREENING_COLUMN_CONFIG, pool_matches, pool_table
from pages._proposal import add_by_hand

ctx: Ctx = page_ctx()
store = ctx.store
cfg = config(ctx)
line = limit_line(cfg)

st.title("Candidate pool")
pool = pool_table(ctx)
has_pred = "n_pred" in pool
st.caption(f"{len(pool):,} candidates"
           + (f" · predictions from the proposal of cycle "
              f"{store.latest_predictions(ctx.campaign).attrs.get('cycle')}" if has_pred else
              " · no predictions yet (saved with each proposal)"))
st.caption(screening_summary(pool) + f" · preset {esc(cfg['preset'])}")

with st.form("pool_filter"):
    c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
    text = c1.text_input("SMILES or id contains", max_chars=100, key="pool_text")
    groups = c2.multiselect("Contains all of", list(DEFAULT_LIBRARY), key="pool_groups")
    n_min = c3.number_input("n_D ≥ (pred.)", value=None, min_value=1.0, max_value=2.5,
                            step=0.01, format="%.3f", disabled=not has_pred, key="pool_nmin")
    a_min = c4.number_input("ν_D ≥ (pred.)", value=None, min_value=0.0, max_value=150.0,
                            step=1.0, format="%.1f", disabled=not has_pred, key="pool_amin")
    d1, d2, d3 = st.columns([1, 1, 2])
    beyond = d1.checkbox("predicted beyond the line", disabled=not has_pred, key="pool_beyond")
    sorts = ["(pool order)"] + [c for c in ("ehvi", "p_beyond", "n_pred", "abbe_pred")
                                if c in pool]
    sort_by = d2.selectbox("Sort by (descending)", sorts, key="pool_sort",
                           index=sorts.index("ehvi") if "ehvi" in sorts else 0)
    limit = d3.slider("Rows shown", 10, 300, 60, step=10, key="pool_limit")
    f1, f2, f3, f4 = st.columns([1, 2, 1, 1])
    hide_flagged = f1.checkbox("hide flagged", key="pool_hide_flagged",
                               help="hide every polymer with an unfit-motif flag")
    hide_flags = f2.multiselect("Hide these flags", screening_flag_names(), key="pool_hide_flags")
    hide_unsim = f3.checkbox("hide failing the pre-check", key="pool_hide_unsim",
                             help="GAFF2 typing or the QM-size limit of the preset")
    max_cost = f4.number_input("CPU-min ≤", value=None, min_value=0.0, step=5.0,
                               format="%.0f", key="pool_max_cost",
                               help="estimated CPU minutes on one core for the preset")
    st.form_submit_button("Apply")

matches = pool_matches(pool) if groups else None
screened = filter_screening(pool, hide_flagged=hide_flagged, hide_flags=hide_flags,
                            hide_unsimulable=hide_unsim, max_cost_min=max_cost)
if len(screened) < len(pool):
    # keep the substructure matrix aligned with the rows that are left
    matches = matches.loc[screened.index] if matches is not None else None
res = filter_pool(screened, text=text, groups=groups, matches=matches,
                  n_min=n_min if has_pred else None, abbe_min=a_min if has_pred else None,
                  require_beyond=beyond and has_pred, line=line,
                  sort_by=None if sort_by == "(pool order)" else sort_by, limit=int(limit))
st.caption(f"{len(res)} shown")
view = res.drop(columns=["flagged"], errors="ignore")
view.insert(0, "structure", [polymer_data_uri(p, 150, 95) for p in view["psmiles"]])
# select rows to add them to the batch waiting for approval; the rows shown are part of the
# key, so a selection never outlives the rows it was made on
picked = st.dataframe(
    view, hide_index=True, width="stretch", row_height=80,
    key=f"pool_table_{data_signature(list(view['psmiles']))}", on_select="rerun",
    selection_mode="multi-row",
    column_config={
        "structure": structure_column(width="medium"),
        "psmiles": st.column_config.TextColumn("polymer SMILES", width="large"),
        "n_pred": st.column_config.NumberColumn("n_D (pred.)", format="%.4f"),
        "n_sd": st.column_config.NumberColumn("σ n_D", format="%.4f"),
        "abbe_pred": st.column_config.NumberColumn("ν_D (pred.)", format="%.1f"),
        "abbe_sd": st.column_config.NumberColumn("σ ν_D", format="%.1f"),
        "ehvi": st.column_config.NumberColumn("EHVI", format="%.3g"),
        "p_beyond": st.column_config.ProgressColumn("P(beyond)", min_value=0.0,
                                                    max_value=1.0, format="percent"),
        **SCREENING_COLUMN_CONFIG,
    })

rows = [i for i in picked.selection.rows if 0 <= i < len(view)]
pending = store.current_batch(ctx.campaign)
b1, b2 = st.columns([1, 3])
go = b1.button(f"Add {len(rows)} selected to the batch", disabled=not rows,
               key="pool_add_to_batch",
               help="select rows in the table (left edge); they join the batch waiting for "
                    "approval with their predictions and EHVI, at the top of its table")
if pending is None or pending["status"] != BatchState.PROPOSED:
    b2.caption("No batch is waiting for approval" + (
        f" (batch {pending['id']} of cycle {pending['cycle']} is {pending['status']})"
        if pending is not None else "") + ": propose one on the Batch page to add to it.")
else:
    b2.caption(f"Adds to batch {pending['id']} (cycle {pending['cycle']}), waiting for "
               "approval.")
if go:
    with st.spinner(f"Predicting n_D, ν_D and the EHVI of {len(rows)} candidate(s) …"):
        ok, msg = add_by_hand(store, None, [str(view["psmiles"].iloc[i]) for i in rows],
                              campaign=ctx.campaign,
                              pool_ids=[str(view["id"].iloc[i]) for i in rows], actor=ACTOR)
    if ok:
        st.session_state["_pool_to_batch"] = esc(msg)
        st.rerun()
    st.error(esc(msg))
if "_pool_to_batch" in st.session_state:
    st.success(st.session_state.pop("_pool_to_batch"))

st.markdown("#### Add candidates")
st.caption(f"CSV with a `psmiles` or `smiles` column (optional `name`), or one polymer SMILES "
           "per line. "
           f"At most {MAX_UPLOAD_ROWS:,} rows and {MAX_UPLOAD_BYTES // 1024:,} KiB. Each row is "
           "validated (two `*`, parsable, size limits); invalid rows are listed and skipped.")
u1, u2 = st.columns(2)
up = u1.file_uploader("Upload CSV / TXT", type=["csv", "txt", "smi"], key="pool_upload")
pasted = u2.text_area("…or paste polymer SMILES", height=120, max_chars=200_000,
                      key="pool_paste")


def _rows_from_upload() -> list[dict]:
    """Rows {psmiles, name} of the uploaded file and the pasted text; ValueError with a message
    for the user (empty file, no SMILES column, too large, too many rows)."""
    rows: list[dict] = []
    if up is not None:
        data = up.getvalue()
        if len(data) > MAX_UPLOAD_BYTES:
            raise ValueError(f"file is {len(data) // 1024} KiB; the limit is "
                             f"{MAX_UPLOAD_BYTES // 1024} KiB")
        rows += parse_upload(data.decode("utf-8", errors="replace"),
                             csv_file=up.name.lower().endswith(".csv"), label=up.name)
    if pasted:
        rows += [{"psmiles": s, "name": None} for s in parse_smiles_lines(pasted)]
    if len(rows) > MAX_UPLOAD_ROWS:
        raise ValueError(f"{len(rows)} rows; the limit is {MAX_UPLOAD_ROWS}")
    return rows


def _validate(rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
    """Validate with :func:`core.pool.import_candidates` (parse, size limits, canonical form,
    duplicates vs the pool, descriptors). Returns (store rows, per-row problems, descriptors by
    key)."""
    from core.chem.polymer import polymer_key
    from core.pool import import_candidates

    names = {}
    lines = []
    for r in rows:
        s = str(r["psmiles"]).strip(" \t\r\n")
        # one row = one line; first token, cut at ASCII separators only (a no-break space is
        # kept and reported by the validation, not used to cut the SMILES)
        if any(c in s for c in ",\r\n"):
            s = next((t for t in re.split(r"[ \t\r\n,]+", s) if t), s)
        lines.append(s)
        if r.get("name"):
            names[s] = r["name"]
    text = "\n".join(lines) + "\n"
    rep = import_candidates(text, existing_keys=set(pool["psmiles"].astype(str)))
    good, desc = [], {}
    for can, x, ln in zip(rep.psmiles, rep.X, rep.rows):
        key = polymer_key(can)
        good.append({"psmiles": can, "key": key, "name": names.get(lines[ln - 1]) if
                     0 < ln <= len(lines) else None, "source": "upload"})
        desc[key] = np.asarray(x, dtype=float)
    bad = [{"row": ln, "input": str(t)[:120], "problem": why}
           for ln, t, why in [*rep.invalid, *rep.duplicates]]
    return good, sorted(bad, key=lambda d: d["row"]), desc


def _add_candidates() -> dict | None:
    """Validate the upload / pasted rows and store the good ones; returns the outcome
    {added, bad} to show after the rerun, or None when an error was shown instead."""
    try:
        rows = _rows_from_upload()
    except ValueError as err:
        st.error(esc(err))
        return None
    with st.spinner(f"Validating {len(rows)} rows and computing descriptors …"):
        try:
            good, bad, desc = _validate(rows)
        except ValueError as err:
            st.error(f"Could not read the candidates: {esc(err)}")
            return None
    n = 0
    if good:
        store.cache_descriptors(desc)
        n = store.add_pool_candidates(ctx.campaign, good, actor=ACTOR)
    return {"added": n, "bad": bad}


def _show_import_outcome(res: dict) -> None:
    """What the last 'Validate and add' did: candidates added, rows not added (with why)."""
    if res["added"]:
        st.success(f"Added {res['added']} candidates to campaign {esc(ctx.campaign)}. "
                   "They are scored at the next proposal.")
    elif not res["bad"]:
        st.info("Nothing new to add: every row is already in the pool.")
    if res["bad"]:
        st.warning(f"{len(res['bad'])} rows were not added:")
        st.dataframe(pd.DataFrame(res["bad"]), hide_index=True, width="stretch")


if st.button("Validate and add", type="primary", disabled=up is None and not pasted,
             key="pool_add"):
    outcome = _add_candidates()
    if outcome is not None:
        # rerun: the candidate count, the table and the filters above include the new rows
        st.session_state["_pool_import"] = outcome
        st.rerun()
if "_pool_import" in st.session_state:
    _show_import_outcome(st.session_state.pop("_pool_import"))
