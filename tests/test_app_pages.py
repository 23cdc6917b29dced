"""Page logic of the dashboard with streamlit.testing.v1.AppTest on a seeded store.

The store is seeded through its public API the way the runner would fill it: initial
observations (experimental values of the shipped reference polymers), one finished batch
(two calculations done, one failed), and a second batch waiting for approval with pool
predictions saved. No runner process is started (OPTIPOLY_RUNNER=0).
AppTest does not execute ``run_every`` timers; fragments run once per script run.
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import app_test, pareto_spec, visible_text

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.exception] + [e.value for e in at.error]


def test_overview_renders_kpis_and_chart(seeded) -> None:
    at = app_test().run()
    assert not at.exception, [e.value for e in at.exception]
    labels = {m.label: m.value for m in at.metric}
    assert labels["Evaluated"] == "6"        # 4 initial + 2 completed
    assert labels["Failed"] == "1"
    assert labels["Cycle"] == "2"
    assert "Beyond line" in labels and "Hypervolume" in labels
    assert len(at.get("plotly_chart")) == 0  # one frame draws the Pareto chart and the history
    args = pareto_spec(at)
    hist_names = {t.get("name") for t in args["history"]["data"]}
    assert {"hypervolume", "beyond the line"} <= hist_names
    assert args["image_keys"] is True and args["sig"]
    names = [t.get("name") for t in args["figure"]["data"]]
    # every observation point carries its picture key, and the picture file is there to serve
    from core.chem.structure_images import image_key

    obs = seeded["store"].observations("demo")
    img = seeded["cache"] / "components" / "pareto_chart" / "img"
    for p in obs["psmiles"]:
        assert (img / f"{image_key(p)}.svg").read_text().lstrip().startswith("<svg")
    traces = {t["name"]: t for t in args["figure"]["data"]}
    # the seed's initial data are experimental values: labelled so, not "initial data"
    assert traces["measured (experimental)"]["customdata"][0][-1] in {image_key(p)
                                                                       for p in obs["psmiles"]}
    assert (seeded["cache"] / "components" / "pareto_chart" / "plotly.min.js").stat().st_size \
        > 1_000_000
    for n in ("limit line", "Pareto front", "proposed batch (mean ± σ)", "pool (predicted)",
              "reference polymers (experimental)", "measured (experimental)",
              "cycle 1 (simulated · smoke)"):
        assert n in names, n
    assert "initial data" not in names
    assert any("waits for approval" in i.value for i in at.info)


def test_batch_page_select_and_approve(seeded) -> None:
    store = seeded["store"]
    at = app_test().run()
    at.switch_page("pages/batch.py").run()
    assert not _errors(at), _errors(at)
    assert any("Cycle 2" in m.value for m in at.markdown)
    btn = at.button(key="approve")
    assert "Approve and launch 4" in btn.label
    btn.click().run()
    assert not at.exception, [e.value for e in at.exception]
    b = store.get_batch(seeded["batch_proposed"])
    assert b["status"] == "approved"
    assert len(store.calculations("demo", batch_id=b["id"])) == 4
    audit = store.audit_log("demo")
    assert (audit["action"] == "approve_batch").any()
    mine = audit[(audit["action"] == "approve_batch")
                 & np.array([isinstance(d, dict) and d.get("batch_id") == b["id"]
                             for d in audit["details"]])]
    assert mine["actor"].tolist() == ["dashboard"]


def test_batch_page_add_invalid_smiles_shows_error(seeded) -> None:
    at = app_test().run()
    at.switch_page("pages/batch.py").run()
    tabs_inputs = [t for t in at.text_input if "Polymer SMILES" in t.label]
    tabs_inputs[0].input("C1CC(")
    form_btn = [b for b in at.get("button") if getattr(b, "label", "") == "Add to batch"]
    assert form_btn
    form_btn[0].click().run()
    assert any("Not a valid polymer SMILES" in e.value for e in at.error)
    assert len(seeded["store"].batch_candidates(seeded["batch_proposed"])) == 4


def test_jobs_page_lists_calculations(seeded) -> None:
    at = app_test().run()
    at.switch_page("pages/jobs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    labels = {m.label: m.value for m in at.metric}
    assert labels["Done"] == "2" and labels["Failed"] == "1"
    df = at.dataframe[0].value
    assert len(df) == 3 and "FAILED" in set(df["status"])


def test_substructures_page_shows_sulfur_rows(seeded) -> None:
    at = app_test().run()
    at.switch_page("pages/substructures.py").run()
    assert not at.exception, [e.value for e in at.exception]
    df = at.dataframe[0].value
    assert {"contains S", "sulfonyl"} <= set(df["group"])
    metrics = {m.label: m.value for m in at.metric}
    # CHDT-DVS and P18 are beyond the default line; both contain sulfur, CHDT-DVS a sulfonyl
    assert metrics["Beyond the line"] == "2 / 6"
    assert metrics["contain S"] == "2 (100%)"
    assert metrics["with a sulfonyl"] == "1"
    # invalid user SMARTS gives a clear error, nothing added
    at.text_input[[t.label for t in at.text_input].index("SMARTS")].input("C1CC(")
    [b for b in at.get("button") if getattr(b, "label", "") == "Add"][0].click().run()
    assert any("SMARTS" in e.value for e in at.error)


def test_pool_and_settings_pages_render(seeded) -> None:
    at = app_test().run()
    at.switch_page("pages/pool.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page("pages/settings.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("limit line" in c.proto.spec for c in at.get("plotly_chart"))


def test_settings_new_campaign_and_limit_line(seeded) -> None:
    store = seeded["store"]
    at = app_test().run()
    at.switch_page("pages/settings.py").run()
    at.text_input[[t.label for t in at.text_input].index("Name")].input("second")
    [b for b in at.get("button") if getattr(b, "label", "") == "Create campaign"][0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "second" in set(store.list_campaigns()["name"])
    assert len(store.observations("second")) == len(store.observations("demo"))
    # edit the limit line: lower point 1 so that more polymers are beyond it, then save
    at.number_input(key="ll_y1").set_value(1.55).run()
    at.button(key="ll_save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    line = store.get_campaign("demo")["config"]["limit_line"]
    assert line["p1"] == [31.0, 1.55]
    audit = store.audit_log("demo")
    assert (audit["actor"] == "dashboard").any()


def test_pool_page_filters_and_rejects_bad_upload_rows(seeded) -> None:
    store = seeded["store"]
    at = app_test().run()
    at.switch_page("pages/pool.py").run()
    assert not at.exception, [e.value for e in at.exception]
    df = at.dataframe[0].value
    assert len(df) == 12 and "n_pred" in df  # the 12 candidates with saved predictions
    at.multiselect(key="pool_groups").select("sulfonyl")
    [b for b in at.get("button") if getattr(b, "label", "") == "Apply"][0].click().run()
    df = at.dataframe[0].value
    assert len(df) == 2 and all("S" in p for p in df["psmiles"])
    at.multiselect(key="pool_groups").unselect("sulfonyl")
    at.text_input(key="pool_text").input("C#N")
    [b for b in at.get("button") if getattr(b, "label", "") == "Apply"][0].click().run()
    assert at.dataframe[0].value["psmiles"].tolist() == ["*CC(*)C#N"]
    at.text_area(key="pool_paste").input("*CC(*)c1ccc(Cl)cc1\nnot-a-polymer\n*CC*C*\n").run()
    at.button(key="pool_add").click().run()
    assert not at.exception, [e.value for e in at.exception]
    extra = store.pool_candidates("demo")
    assert len(extra) == 1 and "Cl" in extra["psmiles"].iloc[0]
    assert any("2 rows were not added" in w.value for w in at.warning)


def test_pool_page_paste_with_huge_line_and_invisible_character(seeded) -> None:
    """A 150,000-character pasted line used to raise _csv.Error on the page; a no-break space
    used to cut the SMILES short.  Now they and a bidi override are rows "not added", each
    named with a short echo."""
    store = seeded["store"]
    at = app_test().run()
    at.switch_page("pages/pool.py").run()
    huge = "*CC(*)" + "C" * 150_000
    at.text_area(key="pool_paste").input(
        f"{huge}\n*CC(*)c1ccc(Br)cc1\n*CC(*)\u202ec1ccccc1\n*CC(*)Cl\u00a0c1ccccc1\n").run()
    at.button(key="pool_add").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    extra = store.pool_candidates("demo")
    assert len(extra) == 1 and "Br" in extra["psmiles"].iloc[0]
    assert any("3 rows were not added" in w.value for w in at.warning)
    bad = at.dataframe[-1].value.set_index("row")
    assert set(bad.index) == {1, 3, 4}
    assert bad["input"].str.len().max() <= 120 and bad["problem"].str.len().max() <= 300
    assert "U+202E" in bad.loc[3, "problem"] and "characters" in bad.loc[1, "problem"]
    assert "U+00A0" in bad.loc[4, "problem"]  # not cut to "*CC(*)Cl" at the no-break space


def test_overview_fixed_axis_ranges_reach_the_figure(seeded) -> None:
    at = app_test().run()
    at.toggle(key="fix_ranges").set_value(True).run()
    at.slider(key="x_range").set_value((25.0, 65.0)).run()
    assert not at.exception, [e.value for e in at.exception]
    spec = pareto_spec(at)["figure"]
    assert spec["layout"]["xaxis"]["range"] == [25.0, 65.0]
    assert spec["layout"]["uirevision"] == "optipoly-pareto"


def test_batch_page_reject_excludes_candidate(seeded) -> None:
    store = seeded["store"]
    bid = seeded["batch_proposed"]
    at = app_test().run()
    at.switch_page("pages/batch.py").run()
    cands = store.batch_candidates(bid)
    first = cands.iloc[0]
    label = first["name"] or first["psmiles"]
    at.multiselect(key="rej_pick").select(label).run()
    at.text_input(key="rej_reason").input("contains an unstable group").run()
    at.button(key="rej_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert first["key"] in store.rejected_keys("demo")
    after = store.batch_candidates(bid).set_index("key")
    assert not after.loc[first["key"], "selected"] and after.loc[first["key"], "rejected"]
    assert "Approve and launch 3" in at.button(key="approve").label


def test_jobs_page_elapsed_is_the_current_attempts(seeded) -> None:
    """A calculation first started two hours ago, failed, retried and running again: the
    table's "elapsed" is the new attempt's seconds; the details also say the total."""
    import sqlite3
    from datetime import datetime, timedelta, timezone

    store = seeded["store"]
    cid = int(store.calculations("demo", status="failed")["id"].iloc[0])
    then = (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat()
    con = sqlite3.connect(store.path)
    with con:
        con.execute("UPDATE calculations SET started_at=?, attempt_started_at=? WHERE id=?",
                    (then, then, cid))
    con.close()
    store.request_retry(cid, mode="resume", actor="test")
    store.start_attempt(cid, dask_key="again", workdir="/tmp/none", log_path="/tmp/none/l")
    at = app_test()
    at.session_state["_calc"] = cid
    at.run()
    at.switch_page("pages/jobs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    df = at.dataframe[0].value.set_index("id")
    assert df.loc[cid, "status"] == "running"
    assert df.loc[cid, "elapsed"].endswith(" s") and "h" not in df.loc[cid, "elapsed"]
    captions = [c.value for c in at.caption if "this attempt" in c.value]
    assert captions and "since the first start 2 h 00 min" in captions[0]


def test_jobs_page_retry_failed_calculation(seeded) -> None:
    store = seeded["store"]
    failed = store.calculations("demo", status="failed")
    cid = int(failed["id"].iloc[0])
    at = app_test()
    at.session_state["_calc"] = cid  # as if the row had been selected in the table
    at.run()
    at.switch_page("pages/jobs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("density did not converge" in e.value for e in at.error)
    assert any("no log yet" in c.value or "not readable" in c.value for c in at.code)
    at.button(key=f"retry_{cid}").click().run()
    assert store.get_calculation(cid)["status"] == "queued"
    audit = store.audit_log("demo")
    assert (audit["actor"] == "dashboard").any()


# ---------------------------------------------------------------- dashboard issue fixes
_SCRIPT_MARK = {"slurm": "#SBATCH", "pbs": "#PBS", "sge": "#$", "lsf": "#BSUB"}


def _forget_dask_jobqueue(monkeypatch) -> None:
    """Make ``import dask_jobqueue`` happen afresh (as in a new server process): its import
    installs a SIGINT handler, which fails off the main thread."""
    import sys

    for name in [m for m in sys.modules if m == "dask_jobqueue" or
                 m.startswith("dask_jobqueue.")]:
        monkeypatch.delitem(sys.modules, name)


def test_settings_cluster_preview_of_every_jobqueue_profile(seeded, monkeypatch) -> None:
    """Settings -> Cluster -> slurm/pbs/sge/lsf: the job script is shown (Streamlit runs the
    script in a thread; importing dask_jobqueue there raised 'signal only works in main
    thread'), and each kind starts from its own template, not the local settings."""
    import json
    import sys

    _forget_dask_jobqueue(monkeypatch)
    monkeypatch.setenv("OPTIPOLY_ALLOW_PROFILE_EDITING", "1")  # read-only without it
    at = app_test().run()
    at.switch_page("pages/settings.py").run()
    for kind, mark in _SCRIPT_MARK.items():
        at.selectbox(key="cl_profile").select(kind).run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, (kind, [e.value for e in at.error])
        prof = json.loads(at.text_area(key=f"cl_json_demo_{kind}").value)
        assert prof["profile"] == kind
        assert "n_workers" not in prof and "threads_per_worker" not in prof
        assert prof["cores"] >= 1 and prof["memory"].endswith("GB") and prof["walltime"]
        assert prof["queue"].startswith("YOUR_")
        assert prof["python"] == sys.executable
        scripts = [c.value for c in at.code if mark in c.value]
        assert scripts, (kind, [c.value[:200] for c in at.code])
        assert prof["python"] in scripts[0] and prof["queue"] in scripts[0]
        assert any(prof["queue"] in w.value for w in at.warning)  # replace the placeholder


def test_jobs_page_previews_the_saved_jobqueue_script(seeded, monkeypatch) -> None:
    from core.execution.cluster_preview import profile_template

    _forget_dask_jobqueue(monkeypatch)
    store = seeded["store"]
    for kind, mark in _SCRIPT_MARK.items():
        store.update_config("demo", {"cluster": profile_template(kind, preset="smoke")},
                            actor="test")
        at = app_test().run()
        at.switch_page("pages/jobs.py").run()
        assert not at.exception, [e.value for e in at.exception]
        assert not [c.value for c in at.caption if "unavailable" in c.value], kind
        assert any(mark in c.value for c in at.code), kind


def test_settings_second_save_in_the_same_page_view_is_kept(seeded) -> None:
    """Change a campaign setting, save, change it again, save again: the store holds the
    second value and the widgets show it (the second save used to be silently lost: the
    widgets were re-created with the first saved value as their default)."""
    store = seeded["store"]
    at = app_test().run()
    at.switch_page("pages/settings.py").run()

    def widget(label):
        return [n for n in at.number_input if n.label == label][0]

    def save():
        [b for b in at.get("button") if getattr(b, "label", "") == "Save settings"][0] \
            .click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("Saved" in s.value for s in at.success)

    for bs, ma in ((5, 4), (7, 6), (2, 9)):
        widget("Batch size").set_value(bs)
        widget("Max attempts").set_value(ma)
        save()
        cfg = store.get_campaign("demo")["config"]
        assert (cfg["batch_size"], cfg["max_attempts"]) == (bs, ma)
        assert (widget("Batch size").value, widget("Max attempts").value) == (bs, ma)
    audit = store.audit_log("demo")
    assert (audit["action"] == "update_config").sum() == 3


def _texts(at: AppTest) -> list[str]:
    """Text of every message-like element (toasts, alerts, markdown, captions, tables)."""
    out = [e.value for kind in ("toast", "success", "info", "warning", "error", "markdown",
                                "caption") for e in getattr(at, kind)]
    for df in at.dataframe:
        out += [str(v) for v in df.value.astype(str).to_numpy().ravel()]
    return out


def test_jobs_page_retry_says_requeued_and_keeps_the_failed_attempts_error(seeded) -> None:
    store = seeded["store"]
    cid = int(store.calculations("demo", status="failed")["id"].iloc[0])
    at = app_test()
    at.session_state["_calc"] = cid
    at.run()
    at.switch_page("pages/jobs.py").run()
    at.button(key=f"retry_{cid}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert store.get_calculation(cid)["status"] == "queued"
    texts = _texts(at)
    assert any(f"Calculation {cid} re-queued" in t and "attempt 1 of 3" in t
               for t in [x.value for x in at.toast]), [x.value for x in at.toast]
    assert any("re-queued" in t and "attempt 1 of 3" in t
               for t in [x.value for x in at.info]), [x.value for x in at.info]
    # the failed attempt's error (type + message) is still shown in the details
    assert any("ConvergenceError" in t and "density did not converge" in t for t in texts), \
        texts
    # and still after a fresh page load (it comes from the store, not the session)
    at2 = app_test()
    at2.session_state["_calc"] = cid
    at2.run()
    at2.switch_page("pages/jobs.py").run()
    texts2 = _texts(at2)
    assert any("ConvergenceError" in t and "density did not converge" in t for t in texts2)
    assert any("re-queued" in x.value and "attempt 1 of 3" in x.value for x in at2.info)


def test_batch_page_remembers_the_chosen_batch_size(seeded, monkeypatch) -> None:
    """The batch size used for a proposal is stored in the campaign config (as Settings does)
    and is the widget's default on the next visit."""
    import core.campaign.cycle

    store = seeded["store"]
    asked = []
    monkeypatch.setattr(core.campaign.cycle, "propose_batch",
                        lambda store, campaign, *, q, strategy, actor: asked.append(
                            (q, strategy, actor)))

    def size(at):
        return [n for n in at.number_input if n.label == "Batch size"][0]

    at = app_test().run()
    at.switch_page("pages/batch.py").run()
    assert size(at).value == 3  # the campaign's stored batch size
    size(at).set_value(5)
    [b for b in at.get("button") if getattr(b, "label", "") == "Propose"][0].click().run()
    assert not _errors(at), _errors(at)
    assert asked == [(5, "ehvi", "dashboard")]
    assert store.get_campaign("demo")["config"]["batch_size"] == 5
    at2 = app_test().run()
    at2.switch_page("pages/batch.py").run()
    assert size(at2).value == 5
    size(at2).set_value(8)  # a second proposal in the same page view is remembered too
    [b for b in at2.get("button") if getattr(b, "label", "") == "Propose"][0].click().run()
    assert asked[-1][0] == 8 and size(at2).value == 8
    assert store.get_campaign("demo")["config"]["batch_size"] == 8


# ---------------------------------------------------------------- measured / literature values
def _measurements_csv(abbrevs=("PMMA", "PS", "PC")) -> str:
    from core.chem.optics import load_reference_polymers

    refs = load_reference_polymers().set_index("abbreviation").loc[list(abbrevs)]
    return "psmiles,n_D,abbe_number,name\n" + "".join(
        f"{r.psmiles},{r.n_D},{r.abbe_number},{a}\n" for a, r in refs.iterrows())


def test_settings_imports_pasted_measurements_as_experimental(seeded) -> None:
    store = seeded["store"]
    n0 = len(store.observations("demo"))
    at = app_test().run()
    at.switch_page("pages/settings.py").run()
    at.text_area(key="meas_paste").input(_measurements_csv(("TPX", "CYTOP")))
    at.text_input(key="meas_source").input("Ando 2015")
    at.button(key="meas_import").click().run()
    assert not _errors(at), _errors(at)
    assert any("Imported 2 measured value(s)" in s.value for s in at.success)
    obs = store.observations("demo")
    new = obs[obs["source"] == "experimental"]
    assert len(obs) == n0 + 2 and set(new["name"]) == {"TPX", "CYTOP"}
    assert {p["source"] for p in new["provenance"]} == {"Ando 2015"}
    assert {r["origin"] for r in new["result"]} == {"experimental"}


def test_settings_refuses_a_measurements_table_with_a_bad_row(seeded) -> None:
    store = seeded["store"]
    n0 = len(store.observations("demo"))
    at = app_test().run()
    at.switch_page("pages/settings.py").run()
    at.text_area(key="meas_paste").input(
        _measurements_csv(("TPX",)) + "*C(*)(F)C(*)Cl,1.45,40,bad\n*CCO*,1.45,900,worse\n")
    at.text_input(key="meas_source").input("Ando 2015")
    at.button(key="meas_import").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("2 of 3 row(s) unusable; nothing was imported" in e.value for e in at.error)
    bad = [d.value for d in at.dataframe if "problem" in d.value][0].set_index("line")
    assert list(bad.index) == [3, 4]
    assert bad.loc[3, "input"] == "*C(*)(F)C(*)Cl" and "exactly two '*'" in bad.loc[3, "problem"]
    assert "ν_D = 900 is implausible" in bad.loc[4, "problem"]
    assert len(store.observations("demo")) == n0


def test_settings_new_campaign_from_pasted_measurements(seeded) -> None:
    store = seeded["store"]
    at = app_test().run()
    at.switch_page("pages/settings.py").run()
    at.text_input[[t.label for t in at.text_input].index("Name")].input("measured")
    [c for c in at.checkbox if c.label.startswith("Copy the observations")][0].uncheck()
    at.text_area(key="nc_meas_paste").input(_measurements_csv(("PMMA", "PS", "PC", "COP")))
    at.text_input(key="nc_meas_source").input("Kasarova 2007")
    [b for b in at.get("button") if getattr(b, "label", "") == "Create campaign"][0].click().run()
    assert not _errors(at), _errors(at)
    obs = store.observations("measured")
    assert len(obs) == 4 and set(obs["source"]) == {"experimental"}
    assert {p["source"] for p in obs["provenance"]} == {"Kasarova 2007"}
    assert any("4 measured value(s)" in s.value for s in at.success)


def test_overview_details_say_experimental_or_simulated(seeded) -> None:
    """Clicking the reference diamond P1 says "P1 (experimental)"; clicking a simulated point
    says "(simulated)" and that its values are raw (calibrated ones only in the details)."""
    store = seeded["store"]
    at = app_test()
    at.session_state["pareto"] = {
        "curve": "reference polymers (experimental)", "x": 30.0, "y": 1.7, "t": 1,
        "customdata": ["poly(thioether) with chlorophenyl vinylene sulfide units P1", "P1"]}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "**P1 (experimental)**" in [m.value for m in at.markdown]
    assert any("reference, measured value" in c.value for c in at.caption)
    obs = store.observations("demo")
    sim = obs[obs["source"] == "simulation"].iloc[0]
    spec = pareto_spec(at)["figure"]
    tr = [t for t in spec["data"] if t["name"] == "cycle 1 (simulated · smoke)"][0]
    cd = [c for c in tr["customdata"] if c[0] == str(sim["id"])][0]
    assert cd[1] == f"{sim['name']} (simulated, smoke)"
    at.session_state["pareto"] = {"curve": tr["name"], "customdata": cd, "t": 2,
                                  "x": float(sim["abbe_number"]), "y": float(sim["n_D"])}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"**{sim['name']} (simulated, smoke)**" in [m.value for m in at.markdown]
    assert any(c.value.startswith("simulated") and "raw values" in c.value
               for c in at.caption), \
        [c.value for c in at.caption]


# ---------------------------------------------------------------- SMILES shown literally
def test_batch_page_error_shows_the_polymer_smiles_literally(seeded) -> None:
    """'*C(*)(F)C(*)Cl' (three stars) used to render as italic 'C()(F)C()Cl' and the
    message as "needs exactly two '' atoms"."""
    at = app_test().run()
    at.switch_page("pages/batch.py").run()
    [t for t in at.text_input if "Polymer SMILES" in t.label][0].input("*C(*)(F)C(*)Cl")
    [b for b in at.get("button") if getattr(b, "label", "") == "Add to batch"][0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [visible_text(e.value) for e in at.error]
    assert any("Not a valid polymer SMILES" in s and "exactly two '*' atoms" in s
               and "'*C(*)(F)C(*)Cl'" in s for s in shown), shown


def test_substructures_smarts_error_shows_the_pattern_literally(seeded) -> None:
    at = app_test().run()
    at.switch_page("pages/substructures.py").run()
    at.text_input[[t.label for t in at.text_input].index("SMARTS")].input("[*]C(*")
    [b for b in at.get("button") if getattr(b, "label", "") == "Add"][0].click().run()
    shown = [visible_text(e.value) for e in at.error]
    assert any("'[*]C(*'" in s for s in shown), shown


def test_jobs_page_error_with_a_smiles_is_shown_literally(seeded) -> None:
    store = seeded["store"]
    cid = int(store.calculations("demo", status="failed")["id"].iloc[0])
    store.request_retry(cid, actor="test")
    att = store.start_attempt(cid, dask_key="k", workdir="/nonexistent", log_path="/none.log")
    store.fail_attempt(cid, att, error_type="TypingError",
                       error_message="no GAFF2 type for atom 3 of *C(*)(F)C_l [N+](=O)",
                       retryable=False)
    at = app_test()
    at.session_state["_calc"] = cid
    at.run()
    at.switch_page("pages/jobs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [visible_text(e.value) for e in at.error]
    assert "TypingError: no GAFF2 type for atom 3 of *C(*)(F)C_l [N+](=O)" in shown, shown


# ---------------------------------------------------------------- URL state
def _second_campaign(store) -> None:
    from core.chem.optics import load_reference_polymers

    store.create_campaign("second", {"preset": "smoke", "batch_size": 2,
                                     "experimental_in_model": True}, actor="test")
    r = load_reference_polymers().iloc[0]
    store.add_observation("second", r["psmiles"], {"n_D": r["n_D"],
                                                   "abbe_number": r["abbe_number"]},
                          source="reference (experimental)", name=r["abbreviation"],
                          actor="test")


def test_a_campaign_in_the_url_selects_it_and_the_url_follows_the_picker(seeded) -> None:
    _second_campaign(seeded["store"])
    at = app_test()
    at.query_params["campaign"] = "second"  # a shared link: /?campaign=second
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["campaign"] == "second"
    assert at.selectbox(key="campaign").value == "second"
    assert any("Campaign **second**" in c.value for c in at.caption)
    assert {m.label: m.value for m in at.metric}["Evaluated"] == "1"  # its one observation
    at.switch_page("pages/jobs.py").run()  # the page is the URL's path; the campaign stays
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["campaign"] == "second"
    assert any("No calculations yet" in i.value for i in at.info)  # second's jobs, not demo's
    at = app_test()
    at.query_params["campaign"] = "second"
    at.run()
    at.selectbox(key="campaign").set_value("demo").run()  # the picker rewrites the URL
    assert at.query_params["campaign"] == "demo"
    assert any("Campaign **demo**" in c.value for c in at.caption)
    at.switch_page("pages/jobs.py").run()
    assert at.query_params["campaign"] == "demo"
    assert len(at.dataframe[0].value) == 3  # demo's calculations


def test_without_or_with_an_unknown_campaign_in_the_url_the_default_is_written_there(
        seeded) -> None:
    at = app_test().run()
    assert at.query_params["campaign"] == "demo" and at.session_state["campaign"] == "demo"
    at = app_test()
    at.query_params["campaign"] = "nope"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("no campaign" in w.value and "nope" in w.value for w in at.warning)
    assert at.session_state["campaign"] == "demo" and at.query_params["campaign"] == "demo"
    at.run()  # the URL now names the campaign shown: no warning any more
    assert not any("nope" in w.value for w in at.warning)


# ---------------------------------------------------------------- campaigns compared
def _chart_lines(at: AppTest) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (x, y) of each trace of the page's Plotly chart (typed arrays decoded)."""
    import base64
    import json

    def arr(v):
        if isinstance(v, dict) and "bdata" in v:
            return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return np.asarray(v)

    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return {t["name"]: (arr(t["x"]), arr(t["y"])) for t in spec["data"]}


def test_compare_page_overlays_the_recorded_hypervolume_of_each_campaign(seeded) -> None:
    from core.campaign.cycle import record_cycle_metrics

    store = seeded["store"]
    _second_campaign(store)
    for cyc in (0, 1):  # as the runner's hook records them when a batch finishes
        record_cycle_metrics(store, "demo", cyc)
    record_cycle_metrics(store, "second", 0)
    at = app_test().run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    ms = at.multiselect(key="compare_campaigns")
    # the current campaign first, then the others (the shipped finished ones are loaded too)
    from pathlib import Path
    shipped = {f.stem for f in (Path(__file__).resolve().parents[1] / "assets" /
                                "campaigns").glob("*.json")}
    assert ms.value[:2] == ["demo", "second"] and set(ms.value[2:]) == shipped
    lines = _chart_lines(at)
    assert set(lines) == {"demo", "second"} | shipped
    want = store.cycles("demo").dropna(subset=["hypervolume"])
    assert list(lines["demo"][0]) == want["number"].tolist() == [0, 1]
    assert np.allclose(lines["demo"][1], want["hypervolume"].astype(float))
    assert list(lines["second"][0]) == [0] and lines["second"][1][0] > 0
    table = at.dataframe[0].value.set_index("campaign")
    assert table.loc["demo", "cycles recorded"] == 2
    assert table.loc["demo", "best HV"] == pytest.approx(want["hypervolume"].max())
    ms.set_value(["second"]).run()
    assert list(_chart_lines(at)) == ["second"]
    ms.set_value([]).run()
    assert any("Choose one or more" in i.value for i in at.info)
