"""Settings / campaign: create a campaign (optionally from measured values), edit the limit line
(two points, shown live) and the reference point, cluster profile and campaign settings; import
measured / literature values; export observations as CSV / JSON."""
from __future__ import annotations

import json

import streamlit as st

from core.config import (CampaignConfig, ClusterKind, DEFAULT_OBJECTIVES, DEFAULT_PRESET,
                         DEFAULT_REFERENCE_POINT, PRESET_NAMES, Strategy)
from core.ui.figures import pareto_figure
from core.ui.views import annotate_observations
from pages._common import (
    ACTOR, Ctx, code, config, esc, limit_line, page_ctx, reference_polymers,
    require_optical_objectives,
)
from pages._measurements import CSV_HELP, measurement_rows, show_import_error

#: the default reference point by objective name (n_D, ν_D: dimensionless)
DEFAULT_REF = dict(zip(DEFAULT_OBJECTIVES, DEFAULT_REFERENCE_POINT))

ctx: Ctx = page_ctx()
store = ctx.store
cfg = config(ctx)
require_optical_objectives(cfg)

st.title("Settings")
tab_line, tab_camp, tab_cluster, tab_meas, tab_new, tab_export = st.tabs(
    ["Limit line", "Campaign", "Cluster", "Measurements", "New campaign", "Export"])

# ---------------------------------------------------------------- limit line
_LL_KEYS = ("ll_x1", "ll_y1", "ll_x2", "ll_y2", "ll_label")


def _limit_line_tab() -> None:
    """Edit the campaign's limit line: two points and a label, a live preview, Save and Reset.

    Save and Reset stay on screen while the input is invalid (two points with one Abbe
    number, …): Save is then disabled and says why, Reset to default brings the stored default
    back. The preview plot scrolls with the page (the mouse wheel does not zoom)."""
    from core.ui.figures import chart_config, pareto_file_stem
    from core.chem.optics import LimitLine, OpticsInputError, load_default_limit_line

    cur = limit_line(cfg)
    st.caption(f"Current: **{esc(cur.label)}** — through (ν_D, n_D) = {cur.p1} and {cur.p2}. "
               "Polymers above the line count as *beyond*.")
    with st.expander("Where the default line comes from"):
        st.markdown(esc(load_default_limit_line().source))
    c1, c2, c3, c4 = st.columns(4)
    x1 = c1.number_input("Point 1: ν_D", value=float(cur.p1[0]), min_value=1.0, max_value=150.0,
                         step=0.5, key="ll_x1")
    y1 = c2.number_input("Point 1: n_D", value=float(cur.p1[1]), min_value=1.0, max_value=3.0,
                         step=0.001, format="%.4f", key="ll_y1")
    x2 = c3.number_input("Point 2: ν_D", value=float(cur.p2[0]), min_value=1.0, max_value=150.0,
                         step=0.5, key="ll_x2")
    y2 = c4.number_input("Point 2: n_D", value=float(cur.p2[1]), min_value=1.0, max_value=3.0,
                         step=0.001, format="%.4f", key="ll_y2")
    label = st.text_input("Label", value=cur.label, max_chars=120, key="ll_label")
    new: LimitLine | None = None
    problem = ""
    try:
        new = LimitLine(p1=(x1, y1), p2=(x2, y2), label=label or "limit line",
                        source=f"edited in the dashboard (was: {cur.label})")
    except OpticsInputError as err:
        problem = str(err)
    b1, b2, _ = st.columns([1, 1, 3])
    save = b1.button("Save line", type="primary", key="ll_save", disabled=new is None,
                     help=f"Fix the points first: {problem}" if problem else None)
    reset = b2.button("Reset to default", key="ll_reset",
                      help="Use the shipped default line and restore its points here")
    if save and new is not None:
        store.update_config(ctx.campaign, {"limit_line": new.to_dict()}, actor=ACTOR)
        st.session_state["_ll_saved"] = "Saved."
        st.rerun()
    if reset:
        store.update_config(ctx.campaign, {"limit_line": None}, actor=ACTOR)
        for k in _LL_KEYS:
            st.session_state.pop(k, None)
        st.session_state["_ll_saved"] = "Reset to the default line."
        st.rerun()
    saved = st.session_state.pop("_ll_saved", None)
    if saved:
        st.success(saved)
    if new is None:
        st.error(esc(problem))
        return
    obs = annotate_observations(store.observations(ctx.campaign), new)
    st.caption(f"With this line {int(obs['beyond'].sum()) if len(obs) else 0} of {len(obs)} "
               "evaluated polymers are beyond it.")
    st.plotly_chart(pareto_figure(obs, limit_line=new, references=reference_polymers(),
                                  height=420), key="ll_preview",
                    config=chart_config(pareto_file_stem(ctx.campaign)))


with tab_line:
    _limit_line_tab()

# ---------------------------------------------------------------- campaign settings
def _screening_checkboxes(current: CampaignConfig, k: str) -> dict[str, bool]:
    """The proposal's screening settings (issue 15) as three checkboxes; their values."""
    e1, e2, e3 = st.columns(3)
    return {
        "exclude_flagged": e1.checkbox(
            "Never propose flagged polymers", value=current.exclude_flagged,
            key=k + "excl_flagged",
            help="Unfit motifs (core.chem.feasibility): antiaromatic four-rings, anti-Bredt "
                 "double bonds, cumulenes, peroxides, free sulfonic acids, azo and quinoid "
                 "chromophores. About 9 % of the shipped pool."),
        "exclude_unsimulable": e2.checkbox(
            "Never propose polymers that fail the pre-check", value=current.exclude_unsimulable,
            key=k + "excl_unsim",
            help="The simulation's SMILES validation, GAFF2 typing and the QM-molecule size "
                 "limit of the preset (quick: 100 atoms; 2 % of the shipped pool fail)."),
        "cost_aware": e3.checkbox(
            "Cost-aware: EHVI per CPU hour", value=current.cost_aware, key=k + "cost_aware",
            help="Rank candidates by EHVI divided by the estimated CPU hours of the preset "
                 "(core.optimize.cost_estimate) instead of by EHVI."),
    }


with tab_camp:
    objs = cfg["objectives"]
    ref = dict(zip(objs, cfg["reference_point"]))
    # Keyed widgets: an unkeyed widget's identity includes its default, so after a save (new
    # default from the store) the next submit created new widgets and dropped the user's input.
    k = f"cs_{ctx.campaign}_"
    with st.form("camp_settings"):
        c1, c2, c3 = st.columns(3)
        bs = c1.number_input("Batch size", 1, 100, int(cfg["batch_size"]), key=k + "bs")
        strategies = [Strategy.BELIEVER.value, Strategy.EHVI.value]
        strat = c2.selectbox("Strategy", strategies,
                             index=strategies.index(cfg["acquisition_strategy"]),
                             key=k + "strat")
        presets = list(PRESET_NAMES)
        pre = c3.selectbox("Simulation preset", presets, index=presets.index(cfg["preset"]),
                           key=k + "preset")
        d1, d2, d3 = st.columns(3)
        rn = d1.number_input("Reference point n_D", value=float(ref.get("n_D", DEFAULT_REF["n_D"])),
                             step=0.01, format="%.3f", key=k + "ref_n")
        ra = d2.number_input("Reference point ν_D", value=float(ref.get("abbe_number",
                                                                     DEFAULT_REF["abbe_number"])),
                             step=1.0, key=k + "ref_abbe")
        ma = d3.number_input("Max attempts", 1, 100, int(cfg["max_attempts"]),
                             key=k + "max_attempts")
        auto = st.checkbox("Auto-approve new proposals", value=bool(cfg["auto_approve"]),
                           key=k + "auto")
        screening = _screening_checkboxes(CampaignConfig.from_dict(cfg), k)
        save = st.form_submit_button("Save settings", type="primary")
    if save:
        vals = {"n_D": rn, "abbe_number": ra}
        try:
            store.update_config(ctx.campaign, {
                "batch_size": int(bs), "acquisition_strategy": strat, "preset": pre,
                "reference_point": [float(vals[o]) for o in objs], "max_attempts": int(ma),
                "auto_approve": bool(auto), **screening}, actor=ACTOR)
        except ValueError as err:
            st.error(esc(err))
        else:  # rerun so that everything below shows the stored config
            st.session_state["_settings_saved"] = ("Saved (applies to the next proposal / "
                                                   "calculation).")
            st.rerun()
    saved_msg = st.session_state.pop("_settings_saved", None)
    if saved_msg:
        st.success(saved_msg)
    st.json(cfg, expanded=False)

# ---------------------------------------------------------------- cluster
with tab_cluster:
    from core.execution.cluster import (PROFILES, ClusterConfigError, ClusterProfile,
                                        is_profile_reference, validate_profile)
    from core.execution.cluster_preview import (QUEUE_PLACEHOLDER, JobScriptPreviewError,
                                                preview_job_script, profile_for_kind)
    from core.execution.cluster_profiles import (LOCAL_DEFAULT, describe, editing_off_message,
                                                 jobqueue_yaml_path, profile_editing_allowed,
                                                 profile_names, save_cluster_profile)

    can_edit = profile_editing_allowed()  # OPTIPOLY_ALLOW_PROFILE_EDITING=1 at server start
    cl = dict(cfg.get("cluster") or LOCAL_DEFAULT)
    yaml_path = jobqueue_yaml_path()
    try:
        file_names = profile_names(yaml_path)
    except ClusterConfigError as err:
        file_names = []
        st.warning(f"Named cluster profiles unavailable: {esc(err)}")
    try:
        resolved = ClusterProfile.from_dict(cl).to_dict()
    except ClusterConfigError as err:
        resolved = None
        st.error(f"The campaign's cluster profile cannot be used: {esc(err)}")
    st.caption(f"Campaign {esc(ctx.campaign)} uses the {esc(describe(cl))}.")

    # switching between trusted profiles (the owner's file, the built-in local one) is always
    # allowed; writing a profile's settings is not, unless the server allows editing
    local_label = "local (this machine: 2 workers)"
    choices = [local_label, *file_names]
    cur_choice = cl["name"] if is_profile_reference(cl) and cl["name"] in file_names else (
        local_label if cl == LOCAL_DEFAULT else None)
    u1, u2 = st.columns([3, 1])
    pick = u1.selectbox(f"Use a named profile of {yaml_path} or the built-in local profile",
                        choices, index=choices.index(cur_choice) if cur_choice else None,
                        key=f"cl_use_{ctx.campaign}",
                        help="Named profiles come from a file only you can write "
                             "(dask-jobqueue's jobqueue.yaml layout).")
    if u2.button("Use this profile", key="cl_use_save", disabled=pick is None):
        try:
            save_cluster_profile(store, ctx.campaign,
                                 LOCAL_DEFAULT if pick == local_label else {"name": pick},
                                 actor=ACTOR, allow_editing=can_edit)
        except ValueError as err:
            st.error(f"{type(err).__name__}: {esc(err)}")
        else:
            st.session_state["_cluster_saved"] = (f"Saved: campaign {ctx.campaign} now uses "
                                                  f"{pick}; the runner applies it at once.")
            st.rerun()
    saved_cl = st.session_state.pop("_cluster_saved", None)
    if saved_cl:
        st.success(esc(saved_cl))

    if not can_edit:
        st.info(editing_off_message(yaml_path, code=code), icon=":material/lock:")
        if resolved is not None:
            st.markdown("Cluster profile (read-only)")
            st.code(json.dumps(resolved, indent=2), language="json")
            if resolved.get("profile", ClusterKind.LOCAL) != ClusterKind.LOCAL:
                st.markdown("Job script preview")
                try:
                    with st.spinner("Building the job script …"):
                        st.code(preview_job_script(resolved), language="bash")
                except JobScriptPreviewError as err:
                    st.error(f"Job script preview failed: {esc(err)}")
    else:
        st.caption("Profile editing is on (the server was started with "
                   "OPTIPOLY_ALLOW_PROFILE_EDITING=1): the prologue and Python below run on "
                   "the cluster as the user who started the dashboard.")
        base = resolved if resolved is not None else cl
        prof = st.selectbox("Profile", list(PROFILES), index=list(PROFILES).index(
            base.get("profile", ClusterKind.LOCAL.value)), key="cl_profile")
        st.caption("Edit the profile as JSON (keys: n_workers, threads_per_worker for local; "
                   "cores, memory, walltime, queue, account, job_extra_directives, "
                   "job_script_prologue, worker_lifetime, adapt_minimum, adapt_maximum, python, "
                   "interface, scheduler_host for schedulers). Another kind than the saved one "
                   "starts from a template for the campaign's preset.")
        shown = profile_for_kind(base, prof, preset=cfg["preset"])
        text = st.text_area("Profile JSON", value=json.dumps(shown, indent=2),
                            height=240, max_chars=20_000, key=f"cl_json_{ctx.campaign}_{prof}")
        try:
            new_cl = json.loads(text)
            if not isinstance(new_cl, dict):
                raise ValueError("the profile must be a JSON object")
            new_cl["profile"] = prof
            validate_profile(new_cl, preset=cfg["preset"])
            if prof in QUEUE_PLACEHOLDER and new_cl.get("queue") == QUEUE_PLACEHOLDER[prof]:
                st.warning(f"Replace the placeholder queue {code(new_cl['queue'])} with your "
                           f"{'partition' if prof == 'slurm' else 'queue'} name.")
            if prof != ClusterKind.LOCAL:
                st.markdown("Job script preview")
                try:
                    with st.spinner("Building the job script …"):
                        st.code(preview_job_script(new_cl), language="bash")
                except JobScriptPreviewError as err:
                    st.error(f"Job script preview failed: {esc(err)}")
            if st.button("Save cluster profile", type="primary", key="cl_save"):
                save_cluster_profile(store, ctx.campaign, new_cl, actor=ACTOR,
                                     allow_editing=can_edit)
                st.success("Saved; the runner uses it from its next start.")
        except (ValueError, TypeError) as err:
            st.error(f"{type(err).__name__}: {esc(err)}")

# ---------------------------------------------------------------- measured values
with tab_meas:
    from core.campaign.measurements import MeasurementImportError, import_measurements

    st.caption(f"Add measured or literature values to campaign **{esc(ctx.campaign)}**: they "
               "are stored as experimental observations (labelled so in the Pareto plot) and "
               "train the surrogate from the next proposal on. " + CSV_HELP)
    m1, m2 = st.columns(2)
    meas_up = m1.file_uploader("Upload measurements CSV", type=["csv", "txt"],
                               key="meas_upload")
    meas_paste = m2.text_area("…or paste the CSV", height=140, max_chars=500_000,
                              key="meas_paste",
                              placeholder="psmiles,n_D,abbe_number,name\n"
                                          "*CC(*)c1ccccc1,1.592,31,PS")
    meas_src = st.text_input("Source (citation for rows without a `source` column)",
                             max_chars=300, key="meas_source", placeholder="Ando et al. 2015")
    if st.button("Validate and import", type="primary", key="meas_import"):
        try:
            got = measurement_rows(meas_up, meas_paste)
            if got is None:
                st.warning("Upload or paste a measurements CSV first.")
            else:
                ids = import_measurements(store, ctx.campaign, got[0], source=meas_src,
                                          file_name=got[1], actor=ACTOR)
                st.success(f"Imported {len(ids)} measured value(s) from {esc(got[1])} into "
                           f"campaign {esc(ctx.campaign)}.")
        except MeasurementImportError as err:
            show_import_error(err)

# ---------------------------------------------------------------- new campaign
with tab_new:
    with st.form("new_campaign"):
        name = st.text_input("Name", max_chars=60, placeholder="sulfur-run-1")
        c1, c2, c3 = st.columns(3)
        bs = c1.number_input("Batch size", 1, 100, 10, key="nc_bs")
        strat = c2.selectbox("Strategy", [Strategy.BELIEVER.value, Strategy.EHVI.value],
                             key="nc_strat")
        pre = c3.selectbox("Preset", [DEFAULT_PRESET, *(p for p in PRESET_NAMES
                                                      if p != DEFAULT_PRESET)], key="nc_pre")
        d1, d2, d3 = st.columns(3)
        rn = d1.number_input("Reference n_D", value=1.30, step=0.01, format="%.3f", key="nc_rn")
        ra = d2.number_input("Reference ν_D", value=10.0, step=1.0, key="nc_ra")
        from core.execution.cluster_profiles import profile_editing_allowed, profile_names

        try:
            nc_names = profile_names()
        except ValueError:
            nc_names = []
        same = f"same as {ctx.campaign}"
        # named profiles of the owner's file; new scheduler templates only with editing on
        nc_choices = [same, ClusterKind.LOCAL.value, *[f"named: {n}" for n in nc_names]] + (
            [k.value for k in ClusterKind if k.is_jobqueue] if profile_editing_allowed() else [])
        prof = d3.selectbox("Cluster profile", nc_choices, key="nc_prof")
        copy_obs = st.checkbox(f"Copy the observations of {ctx.campaign!r} as initial data",
                               value=True)
        st.caption("…and/or start from measured values. " + CSV_HELP)
        n1, n2 = st.columns(2)
        nc_up = n1.file_uploader("Measurements CSV", type=["csv", "txt"], key="nc_meas_upload")
        nc_paste = n2.text_area("…or paste the CSV", height=110, max_chars=500_000,
                                key="nc_meas_paste")
        nc_src = st.text_input("Source of the measured values", max_chars=300,
                               key="nc_meas_source", placeholder="Ando et al. 2015")
        nc_screening = _screening_checkboxes(CampaignConfig(), "nc_")
        create = st.form_submit_button("Create campaign", type="primary")
    def _new_campaign_cluster(choice: str, same: str, cfg: dict) -> dict:
        """The cluster setting of a new campaign: a copy of this campaign's, or one that
        :func:`core.execution.cluster_profiles.check_profile_change` allows (inline templates
        only with editing on)."""
        from core.execution.cluster_profiles import check_profile_change, profile_editing_allowed

        if choice == same:
            return dict(cfg["cluster"])
        if choice.startswith("named: "):
            want = {"name": choice[len("named: "):]}
        else:
            want = {"profile": choice}
        return check_profile_change(want, allow_editing=profile_editing_allowed())

    if create:
        from core.campaign.commands import create_campaign
        from core.campaign.measurements import MeasurementImportError

        records = []
        if copy_obs:
            for r in store.observations(ctx.campaign).to_dict("records"):
                records.append({"name": r["name"], "psmiles": r["psmiles"],
                                "values": {"n_D": r["n_D"], "abbe_number": r["abbe_number"]},
                                "result": r["result"],
                                "provenance": {**(r["provenance"] or {}),
                                               "copied_from": f"{ctx.campaign}:{r['id']}"}})
        try:
            meas = measurement_rows(nc_up, nc_paste)
            camp = create_campaign(store, name, {
                "batch_size": int(bs), "acquisition_strategy": strat, "preset": pre,
                "reference_point": [float(rn), float(ra)],
                "objectives": ["n_D", "abbe_number"],
                "cluster": _new_campaign_cluster(prof, same, cfg), **nc_screening},
                initial=records, propose=False, actor=ACTOR,
                measurements=None if meas is None else meas[0], measurements_source=nc_src,
                measurements_file=None if meas is None else meas[1])
            n_meas = 0 if meas is None else len(meas[0])
            st.success(f"Created campaign {esc(camp['name'])} with {len(records)} copied "
                       f"observation(s) and {n_meas} measured value(s); pick it in the sidebar "
                       "and propose its first batch on the Batch page.")
        except MeasurementImportError as err:
            show_import_error(err)
        except ValueError as err:
            st.error(esc(err))

# ---------------------------------------------------------------- export
with tab_export:
    from core.campaign.commands import export_observations

    flat, full = export_observations(store, ctx.campaign)
    st.caption(f"{len(flat)} observations with their provenance (same export as "
               "`python -m core.campaign export`).")
    e1, e2, e3 = st.columns(3)
    e1.download_button("Observations (CSV)", flat.to_csv(index=False).encode(),
                       file_name=f"{ctx.campaign}_observations.csv", mime="text/csv")
    e2.download_button("Observations (JSON)",
                       json.dumps({"campaign": ctx.campaign, "config": cfg,
                                   "cycles": store.cycles(ctx.campaign).to_dict("records"),
                                   "observations": full}, default=str, indent=1).encode(),
                       file_name=f"{ctx.campaign}_observations.json", mime="application/json")
    calcs = store.calculations(ctx.campaign)
    e3.download_button("Calculations (CSV)",
                       calcs.assign(result=[json.dumps(x, default=str) if x else ""
                                            for x in calcs["result"]]).to_csv(index=False)
                       .encode(), file_name=f"{ctx.campaign}_calculations.csv", mime="text/csv")
    st.dataframe(flat, hide_index=True, width="stretch")
