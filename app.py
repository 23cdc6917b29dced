"""OptiPoly dashboard — entry point and the Overview / Pareto page.

Run:  streamlit run app.py     (binds to 127.0.0.1, see .streamlit/config.toml)

The page is thin: it reads the store, calls ``core.ui.views`` for the numbers and
``core.ui.figures`` for the Plotly figures. Live panels poll the store in an ``st.fragment``
with ``run_every``; the figure is rebuilt only when the data signature changes. The Pareto chart
is a small custom component (``pages/_pareto_chart.py``): it redraws with Plotly.react and a
constant ``uirevision`` so zoom/pan survive new results, and hovering a point shows its
structure picture.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

st.set_page_config(page_title="OptiPoly · optical polymer discovery",
                   page_icon=":material/biotech:",
                   layout="wide", initial_sidebar_state="expanded")

from core.config import BatchState  # noqa: E402
from core.chem.calibration import calibrated_values  # noqa: E402
from core.campaign.fidelity import campaign_fidelity  # noqa: E402
from core.ui.figures import (  # noqa: E402
    apply_theme, chart_config, history_figure, observation_origin, pareto_figure,
    pareto_file_stem,
)
from core.chem.structure_images import polymer_svg  # noqa: E402
from core.ui.views import (  # noqa: E402
    annotate_observations, compute_kpis, cycle_history, data_signature, frame_digest,
    reference_point_from_config, simulation_summary,
)
from pages._pareto_chart import (  # noqa: E402
    CHART_PAYLOADS, MODEL_CHECKS, ChartPayloads, add_clicked_to_batch, cache_root, ensure_images,
    ensure_images_background, export_buttons, figure_payload, pareto_chart,
)
from pages._common import (  # noqa: E402
    Ctx, bootstrap, config, db_path, esc, limit_line, live_every, reference_polymers,
    require_optical_objectives, sidebar, svg_html,
)
from pages._profile import emit, phase, start  # noqa: E402


def _pool_frame(ctx: Ctx) -> pd.DataFrame | None:
    """Predicted pool cloud (mean of the latest proposal) as id, psmiles, n_pred, abbe_pred."""
    preds = ctx.store.latest_predictions(ctx.campaign)
    if preds is None or "pred_mean_n_D" not in preds or "pred_mean_abbe_number" not in preds:
        return None
    out = pd.DataFrame({
        "id": preds["pool_id"] if "pool_id" in preds else preds.get("key", preds.index),
        "psmiles": preds["psmiles"] if "psmiles" in preds else "",
        "n_pred": preds["pred_mean_n_D"].astype(float),
        "abbe_pred": preds["pred_mean_abbe_number"].astype(float),
    })
    out.attrs["cycle"] = preds.attrs.get("cycle")  # the proposal these predictions belong to
    return out


def _batch_frame(ctx: Ctx) -> tuple[dict | None, pd.DataFrame | None]:
    b = ctx.store.current_batch(ctx.campaign)
    if b is None or b["status"] not in (BatchState.PROPOSED, BatchState.APPROVED, BatchState.RUNNING):
        return b, None
    c = ctx.store.batch_candidates(b["id"])
    c = c[c["selected"] & ~c["rejected"]]
    if "pred_mean_n_D" not in c or c["pred_mean_n_D"].isna().all():
        return b, None
    return b, pd.DataFrame({
        "id": c["key"].astype(str), "name": c["name"].fillna(c["psmiles"]),
        "psmiles": c["psmiles"],
        "mu_n": c["pred_mean_n_D"], "sd_n": c["pred_std_n_D"].fillna(0.0),
        "mu_abbe": c["pred_mean_abbe_number"], "sd_abbe": c["pred_std_abbe_number"].fillna(0.0),
        "ehvi": c["ehvi"],
    }).dropna(subset=["mu_n", "mu_abbe"])


def _details(obs: pd.DataFrame, point: dict, batch_df: pd.DataFrame | None = None) -> None:
    """Right-hand panel: the clicked point's structure and values.

    ``point``: {curve, customdata, x, y} from the chart component; customdata layouts are those
    of ``core.ui.figures.pareto_figure`` (observations/batch ``[id, label, psmiles, extra, key]``,
    references ``[name, abbreviation, key]``, pool ``[id, key]``).
    """
    cd = point.get("customdata")
    cd = list(cd) if isinstance(cd, (list, tuple)) else ([cd] if cd is not None else [])
    curve = str(point.get("curve") or "")
    pid = str(cd[0]) if cd else ""
    label = str(cd[1]) if len(cd) > 1 else pid
    psmiles = str(cd[2]) if len(cd) > 2 else ""
    ref_note = ""
    if curve.startswith("pool"):  # a pool point: look its structure up
        label = f"pool candidate {pid} (predicted)"
        psmiles = st.session_state.get("_pool_psmiles", {}).get(pid, "")
    elif curve.startswith("reference"):
        refs = reference_polymers()
        hit = refs[refs["name"].astype(str) == pid]
        label = f"{label or pid} (experimental)"
        psmiles = str(hit["psmiles"].iloc[0]) if len(hit) else ""
        ref_note = f"{pid} · reference, measured value (shipped reference polymer)" + (
            f" · source: {hit['source'].iloc[0]}" if len(hit) and "source" in hit else "")
    st.markdown(f"**{esc(label)}**")
    if ref_note:
        st.caption(esc(ref_note))
    if psmiles:
        st.markdown(svg_html(polymer_svg(psmiles, 280, 200)), unsafe_allow_html=True)
        st.code(psmiles, language=None)
    x, y = point.get("x"), point.get("y")
    if x is not None and y is not None:
        st.markdown(f"ν<sub>D</sub> = **{float(x):.2f}** · n<sub>D</sub> = **{float(y):.4f}**",
                    unsafe_allow_html=True)
    if curve.startswith("pool") and psmiles:
        ctx: Ctx = st.session_state["_ctx"]
        add_clicked_to_batch(ctx.store, ctx.campaign, pid, psmiles)
    if batch_df is not None and len(batch_df) and pid in set(batch_df["id"].astype(str)):
        b = batch_df[batch_df["id"].astype(str) == pid].iloc[0]
        st.caption("proposed candidate (GP posterior, not yet simulated)")
        st.markdown(f"n<sub>D</sub> = {b['mu_n']:.4f} ± {b['sd_n']:.4f} · "
                    f"ν<sub>D</sub> = {b['mu_abbe']:.1f} ± {b['sd_abbe']:.1f} · "
                    f"EHVI {b['ehvi']:.3g}", unsafe_allow_html=True)
    row = obs[obs["id"].astype(str) == pid] if len(obs) and len(cd) > 3 and \
        str(cd[3]).startswith(("initial", "cycle")) else obs.iloc[0:0]
    if len(row):
        r = row.iloc[0]
        st.caption(esc(observation_origin(r.get("source"), r.get("provenance"),
                                          r.get("result")).detail))
        if not bool(r.get("same_fidelity", True)):
            st.caption(f"other fidelity ({esc(r.get('fidelity') or '?')}): shown for reference, "
                       "not used by the model, the front or the campaign's numbers")
        st.caption(f"observation {esc(pid)} · cycle {int(r['cycle'])} · source {esc(r['source'])}"
                   + (" · **beyond the line**" if bool(r.get("beyond")) else "")
                   + (" · on the Pareto front" if bool(r.get("on_front")) else ""))
        res = r.get("result")
        if isinstance(res, dict) and res:
            summ = simulation_summary(res)
            lines = [f"ρ = {summ['density']}" if summ["density"] else None, summ["made_with"],
                     summ["tg_sim"], summ["cross_check"]]
            if any(lines):
                st.caption(" · ".join(esc(x) for x in lines if x))
            for w in summ["warnings"][:4]:
                st.warning(esc(w), icon=":material/warning:")
            keys = [k for k in ("n_F", "n_C", "density", "alpha_D", "preset", "method")
                    if k in res]
            if keys:
                st.json({k: res[k] for k in keys}, expanded=False)
            cal = calibrated_values(res, _calibration())
            if cal is not None:  # a separate, labelled output; the optimiser uses raw values
                parts = [f"{lab} ≈ {cal[k]:{fmt}} (±{cal['rmse_loo'][k]:{fmt}})"
                         for k, lab, fmt in (("n_D", "n<sub>D</sub>", ".3f"),
                                             ("abbe_number", "ν<sub>D</sub>", ".1f"))
                         if k in cal]
                st.markdown("calibrated: " + " · ".join(parts), unsafe_allow_html=True,
                            help=f"{cal['label']}; ± is the leave-one-out RMSE. Shown for "
                                 "orientation only: the Pareto plot and the optimiser use the "
                                 "raw simulated values.")
        prov = r.get("provenance")
        if isinstance(prov, dict) and prov:
            with st.expander("provenance"):
                st.json(prov, expanded=True)


def _build_chart(ctx: Ctx, obs_a: pd.DataFrame, line, batch: dict | None,
                 batch_df: pd.DataFrame | None, hist: pd.DataFrame,
                 dark: bool) -> tuple[ChartPayloads, bool]:
    """The Overview's chart payloads for this session's options (pool cloud, batch, shading,
    selection, fixed ranges, theme), its hover pictures drawn; and whether another session may
    reuse them: not when the pool predictions read belong to another cycle than the batch (a
    proposal caught between saving its batch and its predictions)."""
    with phase("pool cloud read"):
        pool = _pool_frame(ctx) if st.session_state.get("show_pool", True) else None
        pool_psmiles = None if pool is None else dict(zip(pool["id"].astype(str),
                                                          pool["psmiles"].astype(str)))
        refs = reference_polymers()
    shareable = pool is None or batch is None or \
        pool.attrs.get("cycle") in (None, int(batch["cycle"]))
    with phase("figure build"):
        fix = bool(st.session_state.get("fix_ranges"))
        fig = pareto_figure(obs_a, limit_line=line, references=refs,
                            batch=batch_df if st.session_state.get("show_batch", True) else None,
                            pool=pool,
                            show_beyond_region=st.session_state.get("show_region", True),
                            selected_id=st.session_state.get("_selected_id"),
                            x_range=st.session_state.get("x_range") if fix else None,
                            y_range=st.session_state.get("y_range") if fix else None,
                            image_keys=True)
    # hover pictures: the few points now, a pool's thousands in the background
    with phase("hover pictures"):
        ensure_images(list(obs_a.get("psmiles", [])) + list(refs["psmiles"])
                      + ([] if batch_df is None else list(batch_df["psmiles"])))
        if pool is not None and len(pool):
            ensure_images_background(sorted(set(pool["psmiles"].astype(str))))
    with phase("figure build"):
        hist_fig = history_figure(hist)
        hist_fig.update_layout(title=dict(text="Progress per cycle", x=0, font=dict(size=16)),
                               margin=dict(t=60))
    with phase("figure serialisation"):
        export_payload = figure_payload(fig)  # exports: white paper, whatever the theme
        # the component's frame is outside Streamlit's theme: the figure follows it itself
        built = ChartPayloads(
            figure=figure_payload(apply_theme(fig, True)) if dark else export_payload,
            history=figure_payload(apply_theme(hist_fig, True) if dark else hist_fig),
            export=export_payload, pool_psmiles=pool_psmiles)
    return built, shareable


@st.cache_resource(show_spinner=False)
def _calibration() -> dict:
    from core.chem.calibration import load_calibration

    return load_calibration()


def overview() -> None:
    ctx: Ctx = st.session_state["_ctx"]
    cfg = config(ctx)
    require_optical_objectives(cfg)
    about = (f"Campaign **{esc(ctx.campaign)}** · objectives: maximise n<sub>D</sub> and "
             f"ν<sub>D</sub> · preset `{cfg.get('preset')}` · strategy "
             f"`{cfg.get('acquisition_strategy')}` · batch size {cfg.get('batch_size')}")
    # a compact heading and one row of options above the KPIs, so that the whole Pareto plot
    # fits a 1400×900 screen (the campaign's line and notices are beside the plot)
    head, opt4 = st.columns([4, 1], vertical_alignment="bottom")
    head.markdown("#### Optical polymer discovery")
    opt1, opt2, opt3 = st.columns([1, 1, 2])
    opt1.toggle("Pool cloud", value=True, key="show_pool",
                help="Predicted (GP mean) position of every pool candidate, WebGL")
    opt2.toggle("Proposed batch", value=True, key="show_batch")
    opt3.toggle("Shade beyond-line region", value=True, key="show_region")
    with opt4.popover("Axis ranges", icon=":material/zoom_in:"):
        st.caption("Mouse zoom is kept while data are unchanged; a fixed range here also "
                   "survives new results arriving.")
        st.toggle("Fix the axis ranges", key="fix_ranges")
        st.slider("ν_D range", 0.0, 150.0, (20.0, 70.0), step=0.5, key="x_range",
                  disabled=not st.session_state.get("fix_ranges"))
        st.slider("n_D range", 1.2, 2.0, (1.40, 1.75), step=0.005, key="y_range",
                  disabled=not st.session_state.get("fix_ranges"))

    @st.fragment(run_every=live_every())
    def live() -> None:
        with phase("store reads"):
            cfg_now = config(ctx)  # re-read: the line / reference point may be edited elsewhere
            line = limit_line(cfg_now)
            ref_xy = reference_point_from_config(cfg_now)
            obs = ctx.store.observations(ctx.campaign)
            calcs = ctx.store.calculations(ctx.campaign)
            batch, batch_df = _batch_frame(ctx)
        status_counts = calcs["status"].value_counts().to_dict() if len(calcs) else {}
        dark = dark_theme()
        sig = data_signature(dark, len(obs), int(obs["id"].max()) if len(obs) else 0, status_counts,
                             None if batch is None else (batch["id"], batch["status"],
                                                         batch["n_selected"]),
                             line.to_dict(), st.session_state.get("show_pool"),
                             st.session_state.get("show_batch"),
                             st.session_state.get("show_region"),
                             st.session_state.get("fix_ranges"), st.session_state.get("x_range"),
                             st.session_state.get("y_range"),
                             st.session_state.get("_selected_id"), list(ref_xy))
        with phase("fidelity annotation"):
            fid = campaign_fidelity(cfg_now)
            obs_a = annotate_observations(obs, line, fid)
        with phase("KPIs + history"):
            kpi = compute_kpis(obs_a, calcs["status"] if len(calcs) else [], ref_xy, line,
                               current_cycle=None if batch is None else int(batch["cycle"]))
            hist = cycle_history(obs_a, ref_xy, line)
        # the layout first, then the chart: its delta (the figure) reaches the browser before
        # the KPIs' and the banner's, so the chart frame starts loading Plotly earlier; the
        # page reads the same (KPI row above the chart, the banner beside it)
        kpi_row = st.container()
        left, right = st.columns([3, 1])
        banner = right.container()  # beside the chart, not above it (the plot stays on screen)
        banner.caption(about, unsafe_allow_html=True)
        cached = st.session_state.get("_pareto_fig")
        if cached is None or cached[0] != sig:
            # built once per state of the data and shared by every session that shows it (a new
            # tab reuses the figure another session built: no second pool read, figure build or
            # serialisation); the digest covers what the signature's counts do not
            with phase("data digest"):
                key = (ctx.db, ctx.campaign, str(cache_root()), sig,
                       frame_digest(obs_a), frame_digest(batch_df))
            built = CHART_PAYLOADS.get_or_build(
                key, lambda: _build_chart(ctx, obs_a, line, batch, batch_df, hist, dark))
            if built.pool_psmiles is not None:
                st.session_state["_pool_psmiles"] = built.pool_psmiles
            st.session_state["_pareto_fig"] = (sig, built.figure, built.history, built.export)
            st.session_state["_pareto_key"] = key
        payload, hist_payload, export_payload = st.session_state["_pareto_fig"][1:]
        with left:
            with phase("component send"):
                clicked = pareto_chart(payload, sig=sig, key="pareto", height=600,
                                       keep_zoom=not st.session_state.get("fix_ranges"),
                                       config=chart_config(pareto_file_stem(ctx.campaign)),
                                       history=hist_payload,
                                       history_height=320)
        with kpi_row:
            k = st.columns(6)
            k[0].metric("Cycle", kpi["cycle"],
                        help="current cycle (cycle 0 = initial data)")
            k[1].metric("Evaluated", kpi["evaluated"])
            k[2].metric("Running", kpi["running"], help="queued or running calculations")  # not vocabulary: KPI keys
            k[3].metric("Failed", kpi["failed"])  # not vocabulary: KPI key
            k[4].metric("Beyond line", f"{kpi['beyond']} ({kpi['beyond_frac']:.0%})",
                        help=f"observations above: {esc(line.label)}")
            prev = hist["hypervolume"].iloc[-2] if len(hist) > 1 else None
            if prev is not None and abs(kpi["hypervolume"] - prev) < 5e-4:
                prev = None  # no visible change: no delta badge
            k[5].metric("Hypervolume", f"{kpi['hypervolume']:.3f}",
                        delta=None if prev is None else f"{kpi['hypervolume'] - prev:+.3f}",
                        help=f"area dominated in (ν_D, n_D) above the reference point "
                             f"ν_D={ref_xy[0]:g}, n_D={ref_xy[1]:g}")
        n_apart = int((~obs_a["same_fidelity"].astype(bool)).sum()) if len(obs_a) else 0
        if fid.plumbing:
            banner.caption(f"Preset {fid.preset}: its results test the plumbing, not physics; "
                           "use quick or standard for real numbers.")
        if n_apart:
            banner.caption(f"{n_apart} result(s) of other fidelities are drawn grey and not used "
                           f"by the model, the front or the numbers above ({fid.label} only).")
        if batch is not None and batch["status"] == BatchState.PROPOSED:
            banner.info(f"Batch of cycle {batch['cycle']} ({batch['n_selected']} candidates) waits "
                    "for approval.", icon=":material/edit_note:")
            banner.page_link("pages/batch.py", label="Review and approve the batch",
                         icon=":material/arrow_forward:")
        with left:
            with phase("export buttons"):
                export_buttons(export_payload, ctx.campaign)
            with phase("model check"):
                _model_check_panel(ctx, sig, st.session_state["_pareto_key"])
        with right, phase("details panel"):
            st.subheader("Details")
            if isinstance(clicked, dict) and clicked.get("customdata"):
                _details(obs_a, clicked, batch_df)
            else:
                st.caption("Hover a point to see its structure; click it for its values and "
                           "provenance. Drag to zoom, double-click to reset.")
                front = obs_a[obs_a["on_front"]].sort_values("abbe_number") if len(obs_a) \
                    else obs_a
                if len(front):
                    st.markdown("**Current Pareto front**")
                    for _, r in front.head(6).iterrows():
                        st.markdown(
                            svg_html(polymer_svg(str(r["psmiles"]), 220, 120)),
                            unsafe_allow_html=True)
                        org = observation_origin(r.get("source"), r.get("provenance"),
                                                 r.get("result")).short
                        st.caption(f"{esc(r['name'] or r['psmiles'])}"
                                   + (f" ({esc(org)})" if org else "")
                                   + f" · n_D {r['n_D']:.4f} · "
                                   f"ν_D {r['abbe_number']:.1f}")
        emit("overview fragment", campaign=ctx.campaign)  # only a fragment rerun writes this

    live()


def dark_theme() -> bool:
    """Whether the browser shows Streamlit's dark theme (it follows the system's setting;
    Streamlit may report the old type during the first run or a theme change: the live panel's
    next run corrects it)."""
    try:
        return st.context.theme.type == "dark"
    except Exception:  # noqa: BLE001 - no browser context (tests, bare mode): light
        return False


def _model_check_panel(ctx: Ctx, sig: str, key: tuple) -> None:
    """Predicted (GP mean ± σ at proposal time) vs simulated values of each batch: bias, MAE,
    RMSE and the fraction within 1σ / 2σ per cycle (core.optimize.model_check); recomputed only
    when the campaign's data change, and shared by the sessions that show the same data
    (``key``: the chart's key, :data:`pages._pareto_chart.MODEL_CHECKS`)."""
    cached = st.session_state.get("_model_check")
    if cached is None or cached[0] != sig:
        def build() -> tuple[pd.DataFrame, bool]:
            from core.campaign.cycle import campaign_model_check

            return campaign_model_check(ctx.store, ctx.campaign), True

        cached = (sig, MODEL_CHECKS.get_or_build(key, build))
        st.session_state["_model_check"] = cached
    mc = cached[1]
    with st.expander("Model check: predictions vs results", icon=":material/rule:"):
        if mc.empty:
            st.caption("No proposed candidate has a result of this campaign's fidelity yet.")
            return
        st.caption("Each batch's GP prediction against the result that came back. A calibrated "
                   "model has about 68 % of the results within 1σ and 95 % within 2σ; far "
                   "fewer means it is over-confident.")
        st.dataframe(mc, hide_index=True, width="stretch", column_config={
            "within_1sd": st.column_config.ProgressColumn("within 1σ", min_value=0.0,
                                                          max_value=1.0, format="percent"),
            "within_2sd": st.column_config.ProgressColumn("within 2σ", min_value=0.0,
                                                          max_value=1.0, format="percent"),
            "bias": st.column_config.NumberColumn("bias (result − mean)", format="%.4g"),
            "mae": st.column_config.NumberColumn("MAE", format="%.4g"),
            "rmse": st.column_config.NumberColumn("RMSE", format="%.4g")})


@st.cache_resource(show_spinner=False)
def _shipped_campaigns(db: str) -> dict:
    """Load the shipped finished campaigns (assets/campaigns/*.json) once per server process;
    never raises (core.campaign.demo.ensure_shipped_campaigns logs what failed)."""
    from core.campaign.demo import ensure_shipped_campaigns

    return ensure_shipped_campaigns(db)


def main() -> None:
    """One script run: store and campaign (``bootstrap``), the page navigation and sidebar,
    then the selected page (phase timings on stderr with ``OPTIPOLY_PROFILE=1``)."""
    start()
    with phase("bootstrap + sidebar"):
        _shipped_campaigns(str(db_path()))
        ctx = bootstrap()
        st.session_state["_ctx"] = ctx
        pages = [
            st.Page(overview, title="Overview / Pareto", icon=":material/scatter_plot:",
                    default=True, url_path="overview"),
            st.Page("pages/batch.py", title="Batch approval", icon=":material/fact_check:"),
            st.Page("pages/jobs.py", title="Jobs", icon=":material/memory:"),
            st.Page("pages/compare.py", title="Compare campaigns",
                    icon=":material/stacked_line_chart:"),
            st.Page("pages/substructures.py", title="Substructures", icon=":material/hub:"),
            st.Page("pages/pool.py", title="Pool", icon=":material/grain:"),
            st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
        ]
        pg = st.navigation(pages)
        sidebar(ctx)
    with phase("page"):
        pg.run()
    emit("full run", campaign=ctx.campaign, url_path=str(getattr(pg, "url_path", "")))


main()
