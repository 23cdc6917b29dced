"""Jobs: every calculation with status, step, attempt, elapsed time, cluster job id, log tail
and error; retry / cancel; runner heartbeat and cluster status. Live via st.fragment."""
from __future__ import annotations

import os

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.config import CalcState, ClusterKind
from core.chem.structure_images import polymer_data_uri
from core.ui.views import format_elapsed, heartbeat_state, log_tail
from pages._common import (ACTOR, Ctx, code, config, esc, live_every, page_ctx, show_error,
                           structure_column)
from pages._jobdetails import AUDIT_SCAN_LIMIT, attempt_history, last_requeue, retry_calculation

ctx: Ctx = page_ctx()
store = ctx.store
cfg = config(ctx)

st.title("Jobs")

STATUS_ICON = {**{s: s.value for s in CalcState}, CalcState.FAILED: "FAILED"}


def _runs_root() -> str:
    root = cfg.get("runs_dir") or os.path.join(os.path.dirname(ctx.db), "runs")
    return os.path.realpath(root)


@st.fragment(run_every=live_every())
def live_jobs() -> None:
    rs = store.runner_status(ctx.campaign)
    import time as _t

    last = None if rs is None else _t.time() - float(rs["age_s"])
    state, text = heartbeat_state(last, stale_after_s=30.0)
    calcs = store.calculations(ctx.campaign)
    counts = calcs["status"].value_counts().to_dict() if len(calcs) else {}
    c = st.columns(6)
    c[0].metric("Runner", {"alive": "alive", "stale": "STALE", "never": "none"}[state],
                help=text)
    for i, s in enumerate((s.value for s in CalcState), start=1):
        c[i].metric(s.capitalize(), counts.get(s, 0))
    info = (rs or {}).get("info") or {}
    extra = []
    if info.get("profile"):
        extra.append(f"cluster {code(info['profile'])}")
    if info.get("workers") is not None:
        extra.append(f"{info['workers']} dask worker(s)")
    if info.get("jobs"):
        extra.append(f"scheduler jobs {esc(', '.join(str(j) for j in info['jobs'] if j))}")
    if info.get("phase"):
        extra.append(esc(info["phase"]))
    st.caption(text + ("" if rs is None else f" · pid {rs.get('pid')} on {esc(rs.get('host'))} · "
                       f"status {esc(rs.get('status'))}") + "".join(f" · {e}" for e in extra))
    if info.get("cluster_error") or info.get("error"):
        st.warning(f"Cluster: {esc(info.get('cluster_error') or info.get('error'))}")
    if calcs.empty:
        st.info("No calculations yet. Approve a batch to launch some.")
        return
    n_run = counts.get(CalcState.RUNNING, 0) + counts.get(CalcState.QUEUED, 0)
    total = len(calcs)
    if n_run:
        st.progress(1.0 - n_run / total, text=f"{total - n_run} of {total} calculations finished")
    view = pd.DataFrame({
        "id": calcs["id"],
        "structure": [polymer_data_uri(p, 160, 90) for p in calcs["psmiles"]],
        "name": calcs["name"].fillna(""),
        "cycle": calcs["cycle"],
        "status": [STATUS_ICON.get(s, s) for s in calcs["status"]],
        "step": calcs["step"].fillna(""),
        "attempt": [f"{a}/{m}" for a, m in zip(calcs["attempt"], calcs["max_attempts"])],
        "elapsed": [format_elapsed(v) for v in calcs["elapsed_s"]],
        "job id": calcs["job_id"].fillna(""),
        "worker": calcs["worker"].fillna(""),
        "error": (calcs["error_type"].fillna("") + ": " + calcs["error_message"].fillna(""))
        .str.strip(": "),
        "psmiles": calcs["psmiles"],
    }).iloc[::-1]
    ev = st.dataframe(view, key="calcs", hide_index=True, width="stretch", row_height=70,
                      on_select="rerun", selection_mode="single-row",
                      column_config={"structure": structure_column(width="medium"),
                                     "id": st.column_config.NumberColumn("id", width="small"),
                                     "elapsed": st.column_config.TextColumn(
                                         "elapsed", help="time of the current attempt (a "
                                         "retry starts the clock again; — while queued)"),
                                     "error": st.column_config.TextColumn("error", width="large")})
    rows = ev.selection.rows if ev is not None and hasattr(ev, "selection") else []
    if rows:
        cid = int(view["id"].iloc[rows[0]])
        st.session_state["_calc"] = cid
    cid = st.session_state.get("_calc")
    if cid is not None and cid in set(calcs["id"].astype(int)):
        _details(cid)
    else:
        st.caption("Select a row to see its log, error and actions.")


def _rerun_fragment() -> None:
    """Rerun the fragment (a click inside it), or the page when this run is a full one."""
    try:
        st.rerun(scope="fragment")
    except StreamlitAPIException:
        st.rerun()


def _retry(cid: int, mode: str) -> None:
    try:
        out = retry_calculation(store, cid, mode=mode, actor=ACTOR)
    except Exception as err:  # noqa: BLE001 - e.g. retried meanwhile from another tab
        show_error(f"Could not re-queue calculation {cid}", err)
        return
    st.session_state["_jobs_toast"] = out.message  # shown after the rerun
    _rerun_fragment()


def _details(cid: int) -> None:
    d = store.get_calculation(cid)
    toast = st.session_state.pop("_jobs_toast", None)
    if toast:
        st.toast(esc(toast), icon=":material/replay:")
    audit = store.audit_log(ctx.campaign, limit=AUDIT_SCAN_LIMIT)
    history = attempt_history(audit, cid, max_attempts=int(d["max_attempts"]))
    st.markdown(f"#### Calculation {cid} · {STATUS_ICON.get(d['status'], d['status'])}")
    a, b = st.columns([1, 2])
    with a:
        st.image(polymer_data_uri(d["psmiles"], 260, 170))
        st.code(d["psmiles"], language=None)
        st.caption(f"preset {code(d.get('preset'))} · attempt {d['attempt']}/"
                   f"{d['max_attempts']} · this attempt {format_elapsed(d.get('elapsed_s'))}"
                   f" · since the first start {format_elapsed(d.get('total_elapsed_s'))} · "
                   f"dask key {code(d.get('dask_key') or '—')} · "
                   f"job {code(d.get('job_id') or '—')}")
        if d["status"] in (CalcState.QUEUED, CalcState.RUNNING):
            if st.button("Cancel", key=f"cancel_{cid}"):
                st.toast(f"calculation {cid}: {store.request_cancel(cid, actor=ACTOR)}")
                _rerun_fragment()
        if d["status"] in (CalcState.FAILED, CalcState.CANCELLED):
            r1, r2 = st.columns(2)
            if r1.button("Retry (resume)", key=f"retry_{cid}",
                         help="re-queue, keeping the work directory"):
                _retry(cid, "resume")
            if r2.button("Rerun (fresh)", key=f"rerun_{cid}",
                         help="re-queue in a new work directory"):
                _retry(cid, "rerun")
    with b:
        if d.get("error_message"):
            st.error(f"{esc(d.get('error_type') or 'error')}: {esc(d['error_message'])}")
        req = last_requeue(audit, cid) if d["status"] in (CalcState.QUEUED, CalcState.RUNNING) else None
        if req is not None:
            k = int(d["attempt"] or 0) + (1 if d["status"] == CalcState.QUEUED else 0)
            st.info(f"Calculation {cid} re-queued ({esc(req['mode'])}) by {esc(req['actor'])} at "
                    f"{req['ts']} UTC: attempt {max(k, 1)} of {d['max_attempts']} "
                    f"{'waits for a worker' if d['status'] == 'queued' else 'is running'}.")
        if len(history):
            last = history.iloc[-1]
            if not d.get("error_message"):
                st.warning(f"Last failed attempt ({esc(last['attempt'])}): {esc(last['error'])}")
            st.markdown("**Failed attempts**")
            st.dataframe(history, hide_index=True, width="stretch",
                         column_config={"error": st.column_config.TextColumn("error",
                                                                            width="large")})
        if d.get("message"):
            st.caption(esc(d["message"]))
        if isinstance(d.get("result"), dict) and d["result"]:
            with st.expander("result", expanded=d["status"] == CalcState.DONE):
                st.json(d["result"], expanded=True)
        tail = log_tail(d.get("log_path"), _runs_root(), n_lines=40)
        st.markdown("**log tail**")
        st.code(tail or "(no log yet)", language=None)


live_jobs()

with st.expander("Cluster"):
    from core.execution.cluster import ClusterProfile
    from core.execution.cluster_profiles import describe

    cl = dict(cfg.get("cluster") or {})
    st.caption(f"The campaign uses the {esc(describe(cl))}.")
    try:
        cl = ClusterProfile.from_dict(cl).to_dict()  # a named profile: its settings
    except ValueError as err:
        st.warning(f"The cluster profile cannot be used: {esc(err)}")
    st.markdown(f"Profile **{esc(cl.get('profile', 'local'))}**")
    st.json(cl, expanded=False)
    rs = store.runner_status(ctx.campaign)
    if rs and rs.get("info"):
        st.markdown("Runner / scheduler status (from the heartbeat)")
        st.json(rs["info"], expanded=False)
    if cl.get("profile", ClusterKind.LOCAL) != ClusterKind.LOCAL:
        try:
            from core.execution.cluster_preview import preview_job_script

            st.markdown("Job script the runner submits")
            st.code(preview_job_script(cl), language="bash")
        except Exception as err:  # noqa: BLE001 - UI boundary: shown, the page keeps working
            st.caption(f"job script preview unavailable: {type(err).__name__}: {esc(err)}")

with st.expander("Audit log"):
    st.dataframe(store.audit_log(ctx.campaign, limit=200), hide_index=True, width="stretch")
