"""Substructures: which named groups (SMARTS) are enriched among the polymers beyond the limit
line (or on the Pareto front) compared with all evaluated polymers — and the same over the
pool's predictions. Counts, fractions, odds ratio (Haldane), Fisher exact p with its
Benjamini–Hochberg q; the seed's S / sulfonyl check pinned at the top; structure grids with the
matched atoms highlighted; user SMARTS validated."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.chem.structure_images import polymer_svg
from core.chem.substructures import (DEFAULT_LIBRARY, SEED_CHECK_GROUPS, InvalidSmarts, enrichment,
                                     match_atoms, match_matrix, pin_groups, user_substructure)
from core.campaign.fidelity import campaign_fidelity
from core.ui.views import annotate_observations, beyond_mask
from pages._common import (
    Ctx, code, config, esc, limit_line, page_ctx, require_optical_objectives, svg_html,
)

ctx: Ctx = page_ctx()
store = ctx.store
cfg = config(ctx)
require_optical_objectives(cfg)
line = limit_line(cfg)

st.title("Substructures")
st.caption("Which chemical groups distinguish the polymers beyond the limit line? Each row is a "
           "2×2 test of *subset* vs *the rest*: counts, fractions, Haldane-corrected odds ratio "
           "and Fisher exact p-values, each with its Benjamini–Hochberg q-value (the false-"
           "discovery rate over all groups of the table: with ~40 groups, some p < 0.05 come by "
           "chance). The seed study's check — "
           + ", ".join(f"*{g}*" for g in SEED_CHECK_GROUPS) + " — heads the table; the other "
           "rows follow by one-sided p. Groups are matched on a trimer of the repeat unit, so a "
           "group split across the `*` junction counts.")

# ---------------------------------------------------------------- library (+ user SMARTS)
lib = dict(DEFAULT_LIBRARY)
user = st.session_state.setdefault("_user_smarts", {})
with st.expander("Add your own SMARTS"):
    with st.form("user_smarts", clear_on_submit=False):
        c1, c2 = st.columns([1, 2])
        nm = c1.text_input("Name", max_chars=80, placeholder="aryl sulfone")
        sm = c2.text_input("SMARTS", max_chars=400, placeholder="c[SX4](=O)(=O)c")
        ok = st.form_submit_button("Add")
    if ok:
        try:
            s = user_substructure(nm, sm)
        except InvalidSmarts as err:
            st.error(esc(err))
        else:
            user[s.name] = s
            st.success(f"added {code(s.name)}")  # a code span shows the name literally
    if user:
        st.caption("your patterns: " + ", ".join(code(k) for k in user))
        if st.button("Clear my patterns"):
            user.clear()
            st.rerun()
lib.update(user)

# ---------------------------------------------------------------- observations
obs_all = annotate_observations(store.observations(ctx.campaign), line, campaign_fidelity(cfg))
obs = obs_all[obs_all["same_fidelity"].astype(bool)]  # statistics: the campaign's own fidelity
n_apart = int(len(obs_all) - len(obs))
tab_obs, tab_pool = st.tabs(["Evaluated polymers", "Pool (predicted)"])


@st.cache_data(show_spinner=False, max_entries=16)
def _matches(psmiles: tuple[str, ...], lib_items: tuple[tuple[str, str], ...]) -> pd.DataFrame:
    from core.chem.substructures import Substructure

    subs = [Substructure(n, s, "x") for n, s in lib_items]
    return match_matrix(list(psmiles), subs)


def _lib_items() -> tuple[tuple[str, str], ...]:
    return tuple((s.name, s.smarts) for s in lib.values())


def _table(df: pd.DataFrame, key: str) -> None:
    show = df[["group", "n_subset_with", "frac_subset", "frac_rest", "n_all_with",
               "odds_ratio", "p_value", "q_value", "p_enriched", "q_enriched", "smarts"]]
    st.dataframe(show, key=key, hide_index=True, width="stretch",
                 height=min(520, 40 + 35 * len(show)),
                 column_config={
                     "group": st.column_config.TextColumn("group", width="medium"),
                     "n_subset_with": st.column_config.NumberColumn(
                         "in subset", format="%d", help="subset members containing the group"),
                     "frac_subset": st.column_config.ProgressColumn(
                         "fraction of subset", min_value=0.0, max_value=1.0, format="percent"),
                     "frac_rest": st.column_config.ProgressColumn(
                         "fraction of rest", min_value=0.0, max_value=1.0, format="percent"),
                     "n_all_with": st.column_config.NumberColumn(
                         "in all", format="%d", help="polymers (subset + rest) with the group"),
                     "odds_ratio": st.column_config.NumberColumn("odds ratio", format="%.2f"),
                     "p_value": st.column_config.NumberColumn("Fisher p (2-sided)", format="%.3g"),
                     "q_value": st.column_config.NumberColumn(
                         "q (2-sided)", format="%.3g",
                         help="Benjamini–Hochberg q-value of the two-sided p over all groups"),
                     "p_enriched": st.column_config.NumberColumn(
                         "p (enriched)", format="%.3g",
                         help="one-sided Fisher exact: the subset has more than the rest"),
                     "q_enriched": st.column_config.NumberColumn(
                         "q (enriched)", format="%.3g",
                         help="Benjamini–Hochberg q-value of the one-sided p over all groups"),
                     "smarts": st.column_config.TextColumn("SMARTS", width="small"),
                 })


def _grid(psmiles: list[str], names: list[str], smarts: str, n_cols: int = 4) -> None:
    if not psmiles:
        st.caption("no polymer in the subset contains this group")
        return
    cols = st.columns(n_cols)
    for i, (p, n) in enumerate(zip(psmiles, names)):
        with cols[i % n_cols]:
            try:
                hl = match_atoms(p, smarts)
            except Exception:  # noqa: BLE001 - drawing without highlight is fine
                hl = ()
            st.markdown(svg_html(polymer_svg(p, 230, 150, highlight_atoms=hl)),
                        unsafe_allow_html=True)
            st.caption(esc(n))


with tab_obs:
    if n_apart:
        apart = obs_all.loc[~obs_all["same_fidelity"].astype(bool), "fidelity"]
        st.caption(f"{n_apart} result(s) of other fidelities ({', '.join(dict.fromkeys(apart))})"
                   f" are left out: the statistics use {campaign_fidelity(cfg).label} only.")
    if obs.empty:
        st.info("No evaluated polymers yet.")
    else:
        c1, c2 = st.columns([2, 3])
        subset = c1.radio("Subset", ["beyond the limit line", "on the Pareto front"],
                          horizontal=True, key="sub_subset")
        mask = (obs["beyond"] if subset.startswith("beyond") else obs["on_front"]).to_numpy(bool)
        m = _matches(tuple(obs["psmiles"].astype(str)), _lib_items())
        df = pin_groups(enrichment(obs["psmiles"].tolist(), mask, list(lib.values()),
                                   matches=m))
        n_sub = int(mask.sum())
        # the seed study's check, in one glance
        s_row = df.set_index("group").loc["contains S"] if "contains S" in set(df["group"]) \
            else None
        so2 = df.set_index("group").loc["sulfonyl"] if "sulfonyl" in set(df["group"]) else None
        k = st.columns(4)
        k[0].metric("Beyond the line" if subset.startswith("beyond") else "On the front",
                    f"{n_sub} / {len(obs)}")
        if s_row is not None:
            k[1].metric("contain S", f"{int(s_row['n_subset_with'])} "
                        f"({(s_row['frac_subset'] if n_sub else 0):.0%})",
                        help=f"vs {s_row['frac_rest']:.0%} of the rest" if n_sub < len(obs)
                        else None)
        if so2 is not None:
            k[2].metric("with a sulfonyl", int(so2["n_subset_with"]))
        only_sulfur = c2.toggle("Show sulfur groups only (seed check: S / sulfonyl)",
                                key="sub_sulfur")
        view = df[df["category"].isin(["sulfur"]) | df["group"].eq("contains S")] \
            if only_sulfur else df
        _table(view, "enrich_obs")
        st.download_button("Download table (CSV)", view.to_csv(index=False).encode(),
                           file_name=f"enrichment_{ctx.campaign}.csv", mime="text/csv")
        st.markdown("#### Structures")
        g1, g2 = st.columns([2, 1])
        group = g1.selectbox("Group to show", list(df["group"]), key="sub_group")
        where = g2.radio("Among", ["subset", "all evaluated"], horizontal=True, key="sub_where")
        sel = m[group].to_numpy(bool) & (mask if where == "subset" else True)
        rows = obs[sel].head(24)
        _grid(rows["psmiles"].astype(str).tolist(),
              [f"{r['name'] or ''} n_D {r['n_D']:.3f} · ν_D {r['abbe_number']:.1f}"
               for _, r in rows.iterrows()], lib[group].smarts)

with tab_pool:
    from pages._pooldata import finite, pool_matches, pool_table

    st.caption("Subset: pool candidates whose *predicted* (GP mean) point lies beyond the line, "
               "vs the whole pool. Predictions come from the latest proposal.")
    if st.toggle("Compute over the pool", key="sub_pool_on",
                 help="Matches the library on every pool candidate (~1 ms each, cached)"):
        pool = pool_table(ctx)
        if "n_pred" not in pool:
            st.info("No pool predictions yet (they are saved with each proposal).")
        else:
            ok = finite(pool, ["n_pred", "abbe_pred"])
            pool = pool[ok].reset_index(drop=True)
            pm = pool_matches(pool)
            pmask = beyond_mask(pool["abbe_pred"], pool["n_pred"], line)
            extra = [s for s in user.values()]
            if extra:
                um = _matches(tuple(pool["psmiles"].astype(str)),
                              tuple((s.name, s.smarts) for s in extra))
                pm = pd.concat([pm, um.set_axis(pm.index)], axis=1)
            dfp = pin_groups(enrichment(pool["psmiles"].tolist(), pmask, list(lib.values()),
                                        matches=pm))
            st.metric("Predicted beyond the line", f"{int(pmask.sum())} / {len(pool)}")
            _table(dfp, "enrich_pool")
