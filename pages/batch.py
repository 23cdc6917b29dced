"""Batch approval: the proposed batch with structures, predictions ± σ, EHVI and P(beyond),
estimated CPU cost, SA score, motif flags and the simulability pre-check (a "hide flagged"
filter); deselect / add / reject candidates, re-propose with another size or strategy, approve → launch.
A candidate added by hand gets the surrogate's predictions and its EHVI (given the other members
as pending) and is listed at the top, marked; every edit recomputes the batch's joint expected
gain (``core.campaign.cycle.add_to_batch`` / ``refresh_joint_value``).
Every action goes through the store (audited there)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.config import BatchState, Strategy
from core.chem.structure_images import polymer_data_uri
from pages._common import (ACTOR, Ctx, code, config, esc, page_ctx, show_error,
                           structure_column)
from core.ui.views import (SCREENING_COLUMNS, batch_table_order, data_signature,
                           filter_screening, joint_value_text, screening_flag_names,
                           screening_summary)
from pages._pooldata import SCREENING_COLUMN_CONFIG, with_screening
from pages._proposal import add_by_hand, refresh_joint, remember_batch_size

ctx: Ctx = page_ctx()
store = ctx.store
cfg = config(ctx)

st.title("Batch approval")

batch = store.current_batch(ctx.campaign)


def _propose(batch_size: int, strategy: str) -> None:
    from core.campaign.cycle import propose_batch

    with st.spinner("Refitting the surrogates and computing EHVI over the pool …"):
        propose_batch(store, ctx.campaign, q=batch_size, strategy=strategy, actor=ACTOR)


with st.expander("Propose a new batch", expanded=batch is None or
                 batch["status"] in (BatchState.DONE, BatchState.FAILED)):
    with st.form("propose"):
        c1, c2 = st.columns(2)
        # keyed: the default (the stored batch size) changes after a proposal
        bs = c1.number_input("Batch size", min_value=1, max_value=100,
                             value=int(cfg.get("batch_size", 10)), step=1,
                             key=f"propose_bs_{ctx.campaign}",
                             help="remembered as the campaign's batch size (Settings)")
        strategies = [Strategy.BELIEVER.value, Strategy.EHVI.value]
        strat = c2.selectbox("Strategy", strategies,
                             index=strategies.index(cfg.get("acquisition_strategy", Strategy.BELIEVER.value))
                             if cfg.get("acquisition_strategy") in strategies else 0,
                             help="believer: Kriging-believer batch (diverse); ehvi: top-q EHVI")
        go = st.form_submit_button("Propose", type="primary")
    st.caption("Evaluated, pending and rejected polymers are never proposed; those whose "
               "calculation failed in the last cycle are left out until retried (Jobs page).")
    if go:
        if batch is not None and batch["status"] in (BatchState.APPROVED, BatchState.RUNNING):
            st.error("The current batch is still running; wait until it finishes.")
        else:
            try:
                remember_batch_size(store, ctx.campaign, int(bs), actor=ACTOR)
                _propose(int(bs), strat)
                st.rerun()
            except Exception as err:  # noqa: BLE001 - reported to the user
                show_error("Proposal failed", err)

if batch is None:
    st.info("No batch has been proposed yet. The runner proposes one automatically after the "
            "initial data are in; you can also propose one above.")
    st.stop()

status_icon = {BatchState.PROPOSED: ":material/edit_note:",
               BatchState.APPROVED: ":material/check_circle:",
               BatchState.RUNNING: ":material/autorenew:", BatchState.DONE: ":material/flag:",
               BatchState.FAILED: ":material/error:"}.get(batch["status"], "")
jv_text = joint_value_text(batch.get("joint_value"),
                           (batch.get("info") or {}).get("expected_gain_se"),
                           batch["n_selected"])
st.markdown(f"### Cycle {batch['cycle']} · {status_icon} {batch['status']}")
st.caption(f"batch {batch['id']} · strategy `{batch.get('strategy')}` · "
           f"{batch['n_selected']} selected"
           + (f" · {jv_text}" if jv_text else "")
           + (f" · approved by {esc(batch.get('approved_by'))} at {batch.get('approved_at')}"
              if batch.get("approved_at") else ""))

# hand-added candidates on top (latest first), then the proposal's ranking
cands = batch_table_order(store.batch_candidates(batch["id"]))


def _joint_warning(text: str | None) -> None:
    """Show after the rerun why the joint value could not be recomputed (if it could not)."""
    if text:
        st.session_state["_joint_warning"] = esc(text)


if "_joint_warning" in st.session_state:
    st.warning(st.session_state.pop("_joint_warning"))
editable = batch["status"] == BatchState.PROPOSED
screen_cols = with_screening(ctx, cands[["psmiles"]])

table = pd.DataFrame({
    "select": cands["selected"] & ~cands["rejected"],
    "hand_added": cands["hand_added"],
    "structure": [polymer_data_uri(p, 160, 100) for p in cands["psmiles"]],
    "name": cands["name"].fillna(cands["pool_id"].fillna("")),
    "n_D": cands["pred_mean_n_D"], "σ n_D": cands["pred_std_n_D"],
    "ν_D": cands["pred_mean_abbe_number"], "σ ν_D": cands["pred_std_abbe_number"],
    "EHVI": cands["ehvi"], "P(beyond)": cands["p_beyond"],
    **{c: screen_cols[c].to_numpy() for c in SCREENING_COLUMNS},
    "source": cands["source"], "psmiles": cands["psmiles"], "key": cands["key"],
})
if cfg.get("cost_aware"):
    st.caption("Cost-aware campaign: candidates were ranked by EHVI per estimated CPU hour.")
st.caption(screening_summary(table) + f" · preset {esc(cfg['preset'])}")
h1, h2 = st.columns([1, 3])
hide_flagged = h1.checkbox("hide flagged", key=f"batch_hide_flagged_{batch['id']}",
                           help="hide candidates with an unfit-motif flag (they stay selected "
                                "unless you deselect them)")
hide_flags = h2.multiselect("Hide these flags", screening_flag_names(),
                            key=f"batch_hide_flags_{batch['id']}")
full_table = table
table = filter_screening(table, hide_flagged=hide_flagged,
                         hide_flags=hide_flags).reset_index(drop=True)
hidden = full_table[~full_table["key"].isin(set(table["key"]))]
if len(hidden):
    st.caption(f"{len(hidden)} flagged candidate(s) hidden, {int(hidden['select'].sum())} of "
               "them selected.")
n_hand = int(cands["hand_added"].sum())
if n_hand:
    st.caption(f"{n_hand} candidate(s) added by hand, at the top (✋): predictions of the "
               "campaign's surrogates; EHVI given the other members as pending.")
edited = st.data_editor(
    # the rows shown are part of the key: other rows (filter, an added candidate) are another
    # editor, so no stale row edit lands on a different candidate
    table, key=f"cands_{batch['id']}_{data_signature(list(table['key']))}", hide_index=True, width="stretch", row_height=90,
    height=min(40 + 90 * len(table), 940),
    disabled=not editable or ["hand_added", "structure", "name", "n_D", "σ n_D", "ν_D", "σ ν_D", "EHVI",
                              "P(beyond)", *SCREENING_COLUMNS, "source", "psmiles", "key"],
    column_order=["select", "hand_added", "structure", "name", "n_D", "σ n_D", "ν_D", "σ ν_D", "EHVI",
                  "P(beyond)", *SCREENING_COLUMNS, "source", "psmiles"],
    column_config={
        "select": st.column_config.CheckboxColumn("run", help="include in this batch"),
        "hand_added": st.column_config.CheckboxColumn(
            "✋", width="small", help="added by hand (not chosen by the acquisition)"),
        "structure": structure_column(width="medium"),
        "n_D": st.column_config.NumberColumn("n_D (pred.)", format="%.4f"),
        "σ n_D": st.column_config.NumberColumn("± σ", format="%.4f"),
        "ν_D": st.column_config.NumberColumn("ν_D (pred.)", format="%.1f"),
        "σ ν_D": st.column_config.NumberColumn("± σ ", format="%.1f"),
        "EHVI": st.column_config.NumberColumn("EHVI", format="%.3g"),
        "P(beyond)": st.column_config.ProgressColumn("P(beyond line)", min_value=0.0,
                                                     max_value=1.0, format="percent"),
        "psmiles": st.column_config.TextColumn("polymer SMILES", width="medium"),
        **SCREENING_COLUMN_CONFIG,
    },
)
if editable:
    changed = edited["select"].to_numpy() != table["select"].to_numpy()
    for i in [int(j) for j in changed.nonzero()[0]]:
        store.include_candidate(batch["id"], str(table["key"].iloc[i]),
                                bool(edited["select"].iloc[i]), actor=ACTOR)
    if changed.any():
        _joint_warning(refresh_joint(store, batch["id"]))
        st.rerun()

if editable:
    n_sel = int(edited["select"].sum()) + int(hidden["select"].sum())
    a1, a2, _ = st.columns([1.3, 1.6, 3])
    approve = a1.button(f"Approve and launch {n_sel}", type="primary", disabled=n_sel == 0,
                        key="approve")
    if approve:
        try:
            res = store.approve_batch(batch["id"], actor=ACTOR)
            if res.get("approved"):  # not vocabulary: the result's key
                st.session_state["_flash"] = (f"Approved: {res.get('n_calculations', n_sel)} "
                                              "calculations queued.")
            else:
                st.session_state["_flash"] = f"Not approved again: {esc(res.get('reason'))}"
        except Exception as err:  # noqa: BLE001 - UI boundary: shown, the page keeps working
            show_error("Approval failed", err)
        else:
            st.rerun()
    with a2.popover("Reject candidates…"):
        st.caption("Rejected candidates are excluded from this and future batches "
                   "(restorable); this is not the same as a failed calculation.")
        opts = {f"{r['name'] or r['psmiles']}": r["key"] for _, r in cands.iterrows()
                if not r["rejected"]}
        rej = st.multiselect("Candidates", list(opts), key="rej_pick")
        reason = st.text_input("Reason (optional)", max_chars=200, key="rej_reason")
        if st.button("Reject", disabled=not rej, key="rej_go"):
            for label in rej:
                store.reject_candidate(batch["id"], opts[label], reason=reason, actor=ACTOR)
            _joint_warning(refresh_joint(store, batch["id"]))
            st.rerun()

flash = st.session_state.pop("_flash", None)
if flash:
    st.success(flash)



def _add(psmiles: list[str], **kw) -> None:
    """Add by hand with predictions and EHVI; a success is shown after the rerun, a refusal
    (nothing changed) at once."""
    try:
        with st.spinner("Predicting n_D, ν_D and the EHVI of the candidate …"):
            ok, msg = add_by_hand(store, batch["id"], psmiles, actor=ACTOR, **kw)
    except Exception as err:  # noqa: BLE001 - UI boundary: shown, the page keeps working
        show_error("Could not add the candidate", err)
        return
    if not ok:
        st.error(esc(msg))
        return
    st.session_state["_flash"] = esc(msg)
    st.rerun()


if editable:
    st.markdown("#### Add a candidate")
    st.caption("A candidate added here gets the surrogate's n_D, ν_D (mean ± σ) and its EHVI "
               "given the other members as pending, and is listed at the top of the table.")
    t1, t2 = st.tabs(["Draw in SMILES", "Search the pool"])
    with t1:
        with st.form("add_smiles", clear_on_submit=True):
            smi = st.text_input("Polymer SMILES (two * mark the connection points)",
                                max_chars=300, placeholder="*c1ccc(S(=O)(=O)c2ccc(*)cc2)cc1")
            nm = st.text_input("Name (optional)", max_chars=80)
            add = st.form_submit_button("Add to batch")
        if add and smi:
            _add([smi.strip()], names=[nm.strip() or None])
    with t2:
        q = st.text_input("Substring of the polymer SMILES (e.g. S(=O)(=O))", max_chars=100,
                          key="pool_q")
        if q:
            from pages._pooldata import pool_table

            pool = pool_table(ctx)
            hits = pool[pool["psmiles"].str.contains(q, regex=False)].head(30)
            if hits.empty:
                st.caption("no pool candidate contains that text")
            for _, r in hits.iterrows():
                c1, c2, c3 = st.columns([1, 3, 1])
                c1.image(polymer_data_uri(r["psmiles"], 140, 90))
                extra = ""
                if "n_pred" in r and pd.notna(r.get("n_pred")):
                    extra = f" · n_D≈{r['n_pred']:.3f}, ν_D≈{r['abbe_pred']:.1f}"
                c2.markdown(code(r["psmiles"]) + extra)
                if c3.button("Add", key=f"addpool_{r['id']}"):
                    _add([str(r["psmiles"])], pool_ids=[str(r["id"])])

with st.expander("All batches"):
    st.dataframe(store.batches(ctx.campaign), hide_index=True, width="stretch")
with st.expander("Rejected candidates"):
    rj = store.rejected(ctx.campaign)
    if rj.empty:
        st.caption("none")
    else:
        st.dataframe(rj, hide_index=True, width="stretch")
        back = st.selectbox("Restore", [""] + rj["key"].tolist(), key="restore_pick")
        if back and st.button("Restore", key="restore_go"):
            store.restore(ctx.campaign, back, actor=ACTOR)
            if editable and back in set(cands["key"]):  # a member counts again
                _joint_warning(refresh_joint(store, batch["id"]))
            st.rerun()
