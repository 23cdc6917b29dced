"""End to end through a real SLURM: dask_jobqueue.SLURMCluster → sbatch → slurmd → dask worker →
run_pipeline(smoke).  Needs the one-node SLURM of scripts/start_slurm.sh (skips otherwise).

Start it with ``sudo scripts/start_slurm.sh`` (Debian packages slurm-wlm and munge); the tests
read ``$SLURM_CONF`` or the script's default ``/tmp/optipoly-slurm/slurm.conf``.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


from tests.helpers import PP, PS, progress_at, slurm_runner, wait_for

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]


def test_smoke_calculation_runs_inside_a_slurm_job(slurm_campaign, tmp_path):
    store, bid, calcs, env = slurm_campaign("sl", [PP])
    log = tmp_path / "runner.log"
    r = slurm_runner(store, "sl", env, log)
    try:
        assert r.wait(400) == 0, log.read_text()[-3000:]
    finally:
        if r.poll() is None:
            r.kill()
    calc = store.get_calculation(calcs[PP])
    assert calc["status"] == "done", (calc, log.read_text()[-3000:])
    assert calc["job_id"] and calc["job_id"].isdigit()
    obs = store.observations("sl")
    prov = obs[obs["calculation_id"] == calcs[PP]].iloc[0]["provenance"]
    # recorded by the task itself from the worker's environment: it ran inside the SLURM job
    assert prov["execution"]["job_env"]["SLURM_JOB_ID"] == calc["job_id"]
    assert prov["cluster_profile"]["profile"] == "slurm"
    out = subprocess.run(["scontrol", "show", "job", "-o", calc["job_id"]], env=env,
                         capture_output=True, text=True, timeout=20)
    assert "JobName=optipoly" in out.stdout


def test_scancel_is_retried_with_the_reason(slurm_campaign, tmp_path):
    store, bid, calcs, env = slurm_campaign("sc", [PS], max_attempts=2)
    cid = calcs[PS]
    log = tmp_path / "runner.log"
    r = slurm_runner(store, "sc", env, log)
    try:
        prog = wait_for(progress_at(store, cid, "qm", 1), 300, "PS at qm in a SLURM job")
        first_job = prog["job_id"]
        assert first_job and prog["job_env"]["SLURM_JOB_ID"] == first_job
        subprocess.run(["scancel", first_job], env=env, check=True, timeout=20)
        assert r.wait(400) == 0, log.read_text()[-3000:]
    finally:
        if r.poll() is None:
            r.kill()
    calc = store.get_calculation(cid)
    assert calc["status"] == "done", (calc, log.read_text()[-3000:])
    assert calc["job_id"] != first_job  # finished in a new job
    audit = store.audit_log("sc")
    fails = audit[audit["action"] == "attempt_failed"]
    assert len(fails) == 1, log.read_text()[-3000:]
    msg = fails.iloc[0]["details"]["error_message"]
    assert f"slurm job {first_job} ended CANCELLED" in msg
    assert len(store.observations("sc").dropna(subset=["calculation_id"])) == 1


def test_runner_sigkill_cancels_orphaned_job_and_resumes(slurm_campaign, tmp_path):
    store, bid, calcs, env = slurm_campaign("rk", [PS])
    cid = calcs[PS]
    log = tmp_path / "runner.log"
    r1 = slurm_runner(store, "rk", env, log)
    try:
        prog = wait_for(progress_at(store, cid, "qm", 1), 300, "PS at qm in a SLURM job")
    finally:
        r1.kill()  # SIGKILL: the dask scheduler dies with it, the SLURM job is orphaned
        r1.wait(30)
    orphan = prog["job_id"]
    r2 = slurm_runner(store, "rk", env, log)
    try:
        assert r2.wait(400) == 0, log.read_text()[-3000:]
    finally:
        if r2.poll() is None:
            r2.kill()
    text = log.read_text()
    assert f"cancelled 1 orphaned slurm job(s) ['{orphan}']" in text
    out = subprocess.run(["scontrol", "show", "job", "-o", orphan], env=env,
                         capture_output=True, text=True, timeout=20).stdout
    assert "JobState=CANCELLED" in out
    calc = store.get_calculation(cid)
    assert calc["status"] == "done" and calc["interruptions"] == 1 and calc["job_id"] != orphan
    assert len(store.observations("rk").dropna(subset=["calculation_id"])) == 1
    wd = Path(calc["workdir"])
    assert "md: already done" in (wd / "calculation.log").read_text()


def test_rejected_job_is_reported_and_an_edited_profile_is_applied(slurm_campaign, tmp_path):
    store, bid, calcs, env = slurm_campaign("pq", [PP])
    cfg = store.get_campaign("pq")["config"]["cluster"]
    store.update_config("pq", {"cluster": {**cfg, "queue": "nosuchpartition"}}, actor="test")
    log = tmp_path / "runner.log"
    r = slurm_runner(store, "pq", env, log)
    try:
        calc = wait_for(lambda: (lambda c: c if "cluster reported an error" in (c["message"] or "")
                                 else None)(store.get_calculation(calcs[PP])), 120,
                        "the sbatch error on the calculation")
        assert "sbatch" in calc["message"] and "partition" in calc["message"].lower()
        wait_for(lambda: "partition" in str((store.runner_status("pq")["info"] or {})
                                            .get("cluster_error", "")).lower(), 30,
                 "the error in the heartbeat")
        store.update_config("pq", {"cluster": {**cfg, "queue": "debug"}}, actor="test")
        assert r.wait(400) == 0, log.read_text()[-3000:]
    finally:
        if r.poll() is None:
            r.kill()
    assert store.get_calculation(calcs[PP])["status"] == "done"
    assert "cluster_restart" in set(store.audit_log("pq")["action"])
