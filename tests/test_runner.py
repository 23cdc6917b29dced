"""Runner reliability with real processes: a real runner subprocess, a real dask LocalCluster,
the real simulation pipeline (``smoke`` preset) — and real SIGKILLs.  No mocks.

Polymers: polypropylene and PMMA (a few seconds each) and polystyrene, whose ``qm`` step takes
~4 s on this kind of machine — the window in which the tests kill things.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.campaign.commands import create_campaign
from core.execution.runner import RunnerStartError, ensure_runner, runs_dir_for
from core.store import Store

from tests.helpers import (PMMA, PP, PS, alive, progress_at, reference_records,
                           run_until_cycles_done, start_runner,
                           wait_for, workdir_of)

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]


def test_batch_runs_results_stored_next_batch_proposed(campaign, tmp_path):
    store, bid, calcs = campaign("ok", [PP, PMMA])
    pid = ensure_runner(store.path, "ok", extra_args=["--exit-when-idle", "--poll", "0.3"])
    try:
        wait_for(lambda: (store.runner_status("ok") or {}).get("alive"), 60, "heartbeat")
        assert ensure_runner(store.path, "ok") == pid  # a live runner is not started twice
        second = subprocess.run([sys.executable, "-m", "core.runner", "--campaign", "ok",
                                 "--db", str(store.path)], cwd=REPO, capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == 3 and "another runner" in second.stderr
        wait_for(lambda: store.runner_status("ok")["status"] == "stopped", 240, "runner exit")
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGTERM)
        wait_for(lambda: os.waitpid(pid, os.WNOHANG)[0] == pid or not alive(pid), 30, "reap")
    df = store.calculations("ok")
    assert set(df["status"]) == {"done"} and set(df["attempt"]) == {1}
    obs = store.observations("ok")
    sim = obs[obs["source"] == "simulation"]
    assert sorted(sim["calculation_id"]) == sorted(calcs.values())  # each result stored once
    prov = sim.iloc[0]["provenance"]
    assert prov["execution"]["pid"] > 0 and prov["preset"] == "smoke"
    assert sim.iloc[0]["result"]["preset"] == "smoke"
    assert store.get_batch(bid)["status"] == "done"
    cyc = store.cycles("ok").set_index("number")
    assert cyc.loc[1, "status"] == "done" and cyc.loc[1, "n_observations"] == 5
    nxt = store.current_batch("ok")
    assert nxt["cycle"] == 2 and nxt["status"] == "proposed" and nxt["n_selected"] == 2
    assert not set(store.batch_candidates(nxt["id"])["key"]) & set(obs["key"])
    actions = set(store.audit_log("ok")["action"])
    assert {"approve_batch", "calculation_done", "batch_done", "propose_batch"} <= actions


def test_runner_sigkill_mid_calculation_resumes_once(campaign, tmp_path):
    store, bid, calcs = campaign("kill", [PS], n_workers=1)
    cid = calcs[PS]
    log = tmp_path / "runner.log"
    r1 = start_runner(store, "kill", log)
    try:
        prog = wait_for(progress_at(store, cid, "qm", 1), 180, "PS to reach the qm step")
    finally:
        r1.send_signal(signal.SIGKILL)
        r1.wait(30)
    wait_for(lambda: not alive(prog["pid"]), 60, "the orphaned worker to exit")
    assert store.get_calculation(cid)["status"] == "running"  # the DB still says running
    assert len(store.observations("kill")) == 3
    r2 = start_runner(store, "kill", log)
    assert r2.wait(240) == 0, log.read_text()[-3000:]
    calc = store.get_calculation(cid)
    assert calc["status"] == "done" and calc["attempt"] == 1 and calc["interruptions"] == 1
    obs = store.observations("kill")
    assert list(obs["calculation_id"].dropna()) == [cid]  # stored exactly once
    text = (workdir_of(store, cid) / "calculation.log").read_text()
    assert "md: already done" in text  # resumed from the work dir, not recomputed
    assert "re-queued 1 interrupted calculation" in log.read_text()


def test_worker_killed_retried_then_failed_and_cycle_goes_on(campaign, tmp_path):
    store, bid, calcs = campaign("wk", [PS, PP], n_workers=2, max_attempts=2)
    cid = calcs[PS]
    log = tmp_path / "runner.log"
    r = start_runner(store, "wk", log)
    try:
        for attempt in (1, 2):
            prog = wait_for(progress_at(store, cid, "qm", attempt), 180,
                            f"attempt {attempt} to reach qm")
            os.kill(prog["pid"], signal.SIGKILL)  # the dask worker process running it
        assert r.wait(240) == 0, log.read_text()[-3000:]
    finally:
        if r.poll() is None:
            r.kill()
    calc = store.get_calculation(cid)
    assert calc["status"] == "failed" and calc["attempt"] == 2
    assert calc["error_type"] == "KilledWorker"
    assert "died during step 'qm'" in calc["error_message"]
    assert "gave up after 2 of 2 attempts" in calc["error_message"]
    assert store.get_calculation(calcs[PP])["status"] == "done"
    assert store.get_batch(bid)["status"] == "done"  # one success is enough to close it
    fails = store.audit_log("wk")
    fails = fails[fails["action"] == "attempt_failed"]
    assert [d["new_status"] for d in fails["details"][::-1]] == ["queued", "failed"]
    assert store.current_batch("wk")["cycle"] == 2  # the cycle went on


def test_cancel_corrupt_workdir_and_retry(campaign, tmp_path):
    store, bid, calcs = campaign("cc", [PS, PP, PMMA], n_workers=2, max_attempts=3)
    runs = runs_dir_for(store, store.get_campaign("cc")["id"], None)
    runs.mkdir(parents=True)
    (runs / f"calc-{calcs[PP]}").write_text("not a directory")  # unusable work dir
    bad = runs / f"calc-{calcs[PMMA]}" / "pipeline" / "build"
    bad.mkdir(parents=True)
    (bad / "done.json").write_text("{corrupt")  # an unreadable checkpoint
    log = tmp_path / "runner.log"
    r = start_runner(store, "cc", log, idle_exit=False)
    try:
        wait_for(progress_at(store, calcs[PS], "qm", 1), 180, "PS at qm")
        assert store.request_cancel(calcs[PS], actor="test") == "running"
        wait_for(lambda: store.get_calculation(calcs[PS])["status"] == "cancelled", 30,
                 "cancellation")
        wait_for(lambda: all(store.get_calculation(c)["status"] in ("failed", "cancelled")
                             for c in calcs.values()), 120, "all three to end")
        pp, pmma = store.get_calculation(calcs[PP]), store.get_calculation(calcs[PMMA])
        assert pp["error_type"] == "WorkdirError" and "not a directory" in pp["error_message"]
        assert pmma["error_type"] == "JSONDecodeError" and pp["attempt"] == 1
        # the calculation logs say what happened (a cancel, a failure)
        assert "cancelled" in (workdir_of(store, calcs[PS]) / "calculation.log").read_text()
        assert "[attempt 1] failed: JSONDecodeError" in \
            (workdir_of(store, calcs[PMMA]) / "calculation.log").read_text()
        wait_for(lambda: store.get_batch(bid)["status"] == "failed", 30, "batch closed")
        # the campaign stays usable: fix / retry each one
        (runs / f"calc-{calcs[PP]}").unlink()
        assert store.request_retry(calcs[PP], mode="resume", actor="test") == "queued"
        assert store.request_retry(calcs[PMMA], mode="rerun", actor="test") == "queued"
        assert store.request_retry(calcs[PS], mode="resume", actor="test") == "queued"
        wait_for(lambda: all(store.get_calculation(c)["status"] == "done"
                             for c in calcs.values()), 240, "all three done after retry")
        r.send_signal(signal.SIGTERM)
        assert r.wait(60) == 0
    finally:
        if r.poll() is None:
            r.kill()
    assert store.get_calculation(calcs[PMMA])["workdir"].endswith(f"calc-{calcs[PMMA]}-r1")
    assert store.runner_status("cc")["status"] == "stopped"
    assert store.get_batch(bid)["status"] == "done"
    sim = store.observations("cc")
    assert sorted(sim["calculation_id"].dropna().astype(int)) == sorted(calcs.values())


def test_runner_records_a_startup_error(tmp_path):
    store = Store(tmp_path / "e.db")
    store.create_campaign("bad", {"preset": "quick", "cluster": {
        "profile": "slurm", "walltime": "00:10:00"}}, actor="test")
    res = subprocess.run([sys.executable, "-m", "core.runner", "--campaign", "bad", "--db",
                          str(store.path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    st = store.runner_status("bad")
    assert st["status"] == "error" and not st["alive"]
    assert "WalltimeTooShort" in st["info"]["error"] and "'qm' step" in st["info"]["error"]
    assert "runner_error" in set(store.audit_log("bad")["action"])
    with pytest.raises(RunnerStartError, match="WalltimeTooShort"):
        ensure_runner(store.path, "bad")  # unchanged settings: no restart loop


def test_auto_approve_runs_cycle_after_cycle(tmp_path):
    pool = tmp_path / "pool.csv"
    pool.write_text("id,psmiles\n" + "\n".join(f"T{i},{s}" for i, s in enumerate(
        ["*CC*", "*CC(*)C", "*CC(*)Cl", "*CCO*", "*CC(*)F"])))
    store = Store(tmp_path / "a.db")
    create_campaign(store, "auto", {
        "pool_source": str(pool), "preset": "smoke", "batch_size": 1, "auto_approve": True,
        "experimental_in_model": True,
        "cluster": {"profile": "local", "n_workers": 1, "threads_per_worker": 1}},
        initial=reference_records(("PMMA", "PS", "COP")), propose=True, actor="test")
    run_until_cycles_done(store, "auto", 3, tmp_path / "runner.log", 300)
    b = store.batches("auto")
    assert list(b["cycle"][:3]) == [1, 2, 3]
    assert set(b["approved_by"][:3]) == {"auto-approve"}
    sim = store.observations("auto")
    sim = sim[sim["source"] == "simulation"]
    assert len(sim) >= 3 and sim["key"].is_unique  # no polymer evaluated twice


def test_restart_closes_a_batch_left_open_by_a_crash(campaign, tmp_path):
    # the state a runner killed between storing the last result and closing the batch leaves
    store, bid, calcs = campaign("crash", [PP])
    cid = calcs[PP]
    a = store.start_attempt(cid, dask_key="k", workdir=str(tmp_path / "w"),
                            log_path=str(tmp_path / "w" / "l"))
    # handbook values of polypropylene stand in for the stored result (state under test)
    store.complete_calculation(cid, a, {"n_D": 1.49, "abbe_number": 56.0}, provenance={})
    assert store.get_batch(bid)["status"] == "running"
    r = start_runner(store, "crash", tmp_path / "runner.log")
    assert r.wait(240) == 0
    assert store.get_batch(bid)["status"] == "done"
    assert store.cycles("crash").set_index("number").loc[1, "status"] == "done"
    assert store.current_batch("crash")["cycle"] == 2  # and the loop went on


def test_kill_orphans_kills_only_the_tagged_processes():
    from core.execution.task import CALC_ENV
    tag = f"999:/tmp/optipoly-test-{os.getpid()}"
    orphan = subprocess.Popen(["sleep", "120"], env={**os.environ, CALC_ENV: tag})
    other = subprocess.Popen(["sleep", "120"], env={**os.environ, CALC_ENV: tag + "-other"})
    # a process that itself carries the tag (like a worker started from a tagged process)
    # calls kill_orphans: it must spare itself and its ancestors, and kill the orphan
    code = ("from core.execution.task import kill_orphans; import os, sys; "
            f"print(sorted(kill_orphans({tag!r}))); print(os.getpid())")
    try:
        out = subprocess.run([sys.executable, "-c", code], env={**os.environ, CALC_ENV: tag},
                             cwd=REPO, capture_output=True, text=True, timeout=60)
        killed, me = out.stdout.splitlines()
        assert killed == str([orphan.pid]) and int(me) != orphan.pid
        assert orphan.wait(10) == -signal.SIGKILL
        assert other.poll() is None
    finally:
        for p in (orphan, other):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_corrupt_result_fails_cleanly_and_rerun_recovers(campaign, tmp_path):
    from core.execution.task import execute_calculation
    store, bid, calcs = campaign("nan", [PP], n_workers=1)
    cid = calcs[PP]
    wd = runs_dir_for(store, store.get_campaign("nan")["id"], None) / f"calc-{cid}"
    execute_calculation({"calc_id": cid, "attempt": 0, "psmiles": PP, "preset": "smoke",
                         "workdir": str(wd), "threads": 1})  # a finished run in the work dir
    done = wd / "pipeline" / "optics" / "done.json"
    rec = json.loads(done.read_text())
    rec["result"]["n_D"] = float("nan")  # a corrupted result
    done.write_text(json.dumps(rec))
    (wd / "pipeline" / "record.json").unlink()
    log = tmp_path / "runner.log"
    r = start_runner(store, "nan", log, idle_exit=False)
    try:
        wait_for(lambda: store.get_calculation(cid)["status"] == "failed", 120, "failure")
        calc = store.get_calculation(cid)
        assert calc["error_type"] == "InvalidResult" and "n_D" in calc["error_message"]
        assert calc["attempt"] == 1  # not retried: the same data would fail again
        assert len(store.observations("nan").dropna(subset=["calculation_id"])) == 0
        store.request_retry(cid, mode="rerun", actor="test")
        wait_for(lambda: store.get_calculation(cid)["status"] == "done", 180, "rerun")
        r.send_signal(signal.SIGTERM)
        assert r.wait(60) == 0
    finally:
        if r.poll() is None:
            r.kill()
    obs = store.observations("nan").dropna(subset=["calculation_id"])
    assert len(obs) == 1 and obs.iloc[0]["n_D"] > 1.0


def test_smoke_campaign_two_cycles_records_metrics_and_stays_out_of_a_quick_front(tmp_path):
    """A smoke campaign seeded with its own fidelity's results runs 2 cycles × 2 through the
    runner: hypervolume and beyond-line counts are recorded per cycle and the model check has
    both cycles; its smoke results never enter a quick campaign's front or model."""
    from core.campaign.cycle import campaign_model_check, campaign_observations, cycle_metrics
    from core.campaign.demo import demo_observations_for
    from core.ui.views import annotate_observations

    seeds = demo_observations_for("smoke")
    records = json.loads(seeds.read_text())
    if {r["result"]["preset"] for r in records} != {"smoke"}:
        pytest.skip("no shipped smoke results for the demo polymers")
    pool = tmp_path / "pool.csv"
    pool.write_text("id,psmiles\n" + "\n".join(f"T{i},{s}" for i, s in enumerate(
        ["*CC*", "*CC(*)C", "*CC(*)Cl", "*CCO*", "*CC(*)F", "*CC(*)(C)C"])))
    store = Store(tmp_path / "s.db")
    create_campaign(store, "sm", {
        "pool_source": str(pool), "preset": "smoke", "batch_size": 2, "auto_approve": True,
        "cluster": {"profile": "local", "n_workers": 1, "threads_per_worker": 1}},
        initial=records, propose=True, actor="test")
    run_until_cycles_done(store, "sm", 2, tmp_path / "runner.log", 600)
    cyc = store.cycles("sm").set_index("number")
    n0 = len(records)
    assert list(cyc.loc[[1, 2], "n_observations"]) == [n0 + 2, n0 + 4]
    assert cyc.loc[[0, 1, 2], "hypervolume"].notna().all()
    assert (cyc.loc[2, "hypervolume"] >= cyc.loc[1, "hypervolume"] >= cyc.loc[0, "hypervolume"])
    assert cyc.loc[[0, 1, 2], "n_beyond"].notna().all()
    mc = campaign_model_check(store, "sm")
    assert {"1", "2"} <= set(mc["cycle"]) and (mc["n"] > 0).all()

    # the same results in a quick campaign: shown apart, never on its front or in its model
    quick = Store(tmp_path / "q.db")
    smoke_obs = store.observations("sm")
    create_campaign(quick, "q", {"pool_source": str(pool), "preset": "quick"},
                    initial=[{"name": o["name"], "psmiles": o["psmiles"],
                              "values": {"n_D": o["n_D"], "abbe_number": o["abbe_number"]},
                              "result": o["result"], "provenance": o["provenance"]}
                             for o in smoke_obs.to_dict("records")], actor="test")
    same, other = campaign_observations(quick, "q")
    assert same.empty and len(other) == len(smoke_obs)
    from core.campaign.fidelity import campaign_fidelity
    a = annotate_observations(quick.observations("q"), None, campaign_fidelity("quick"))
    assert not a["on_front"].any() and not a["same_fidelity"].any()
    assert cycle_metrics(quick.campaign_config("q"), same)["n_observations"] == 0
