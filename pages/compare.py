"""Compare: the hypervolume per cycle of several campaigns of the store on one plot.

The values are the per-cycle metrics the runner records when a batch finishes
(``core.campaign.cycle.record_cycle_metrics``, read with ``Store.cycles``), each above its own
campaign's reference point; the table beside names those points, and a note says when they
differ (then the curves compare progress, not absolute values).
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.store import StoreError
from core.ui.figures import chart_config, hypervolume_compare_figure
from core.ui.views import reference_point_from_config
from pages._common import Ctx, campaign_names, esc, page_ctx

ctx: Ctx = page_ctx()
store = ctx.store

st.title("Compare campaigns")
names = campaign_names(store)
default = [ctx.campaign] + [n for n in names if n != ctx.campaign][:3]
chosen = st.multiselect("Campaigns", names, default=[n for n in default if n in names],
                        key="compare_campaigns",
                        help="Their hypervolume per cycle, as recorded when each batch finished")

histories: dict[str, pd.DataFrame] = {}
rows = []
for name in chosen:
    try:
        cyc = store.cycles(name)
        cfg = store.get_campaign(name)["config"]
    except StoreError as err:  # e.g. deleted meanwhile: say so, show the others
        st.warning(f"Campaign {esc(name)} cannot be read: {esc(err)}")
        continue
    rec = cyc.dropna(subset=["hypervolume"]).rename(columns={"number": "cycle"})
    histories[name] = rec
    try:
        ref = reference_point_from_config(cfg)
        ref_text = f"ν_D {ref[0]:g}, n_D {ref[1]:g}"
    except ValueError:  # other objectives than n_D / ν_D
        ref_text = ", ".join(f"{o} {r:g}" for o, r in zip(
            cfg.get("objectives", []), cfg.get("reference_point", [])))
    rows.append({"campaign": name, "preset": cfg.get("preset"), "reference point": ref_text,
                 "cycles recorded": len(rec), "cycles": len(cyc),
                 "latest HV": float(rec["hypervolume"].iloc[-1]) if len(rec) else None,
                 "best HV": float(rec["hypervolume"].max()) if len(rec) else None})

if not chosen:
    st.info("Choose one or more campaigns.")
elif not any(len(h) for h in histories.values()):
    st.info("No hypervolume is recorded yet for these campaigns: it is recorded when a "
            "cycle's batch finishes.")
else:
    st.plotly_chart(hypervolume_compare_figure(histories),
                    config=chart_config("campaigns-hypervolume"), key="compare_chart")
if rows:
    if len({r["reference point"] for r in rows}) > 1:
        st.caption("The campaigns have different reference points: each curve is the "
                   "hypervolume above its own, so compare their shapes, not their heights.")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={"latest HV": st.column_config.NumberColumn(format="%.4g"),
                                "best HV": st.column_config.NumberColumn(format="%.4g")})
