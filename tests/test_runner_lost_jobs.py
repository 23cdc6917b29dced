"""Lost workers and lost scheduler jobs (reliability issue, defect C).

- A calculation whose task was only *queued* on a worker that died (it never started) is
  re-queued without being charged an attempt (real LocalCluster with one worker, real SIGKILL).
- SLURM jobs that end before their dask worker connects (``scancel`` of a pending job) are
  noticed, replaced by new jobs, and counted against a waiting calculation with a typed reason;
  after the retry limit the calculation fails with it.  Real one-node SLURM of
  scripts/start_slurm.sh (skips without it, like tests/test_slurm.py); its node is drained
  while the jobs are pending (needs the SLURM admin rights the script's user has).
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from core.execution.task import read_progress
from core.store import Store

from tests.helpers import SLOW_MD, PMMA, PP, slurm_runner, start_runner, wait_for, workdir_of

pytestmark = pytest.mark.integration


def _audit(store: Store, name: str, action: str, calc_id: int) -> list[dict]:
    a = store.audit_log(name)
    return [d for d in a[a["action"] == action]["details"]
            if int(d.get("calculation_id", -1)) == calc_id]


def test_a_calculation_only_queued_on_a_dead_worker_is_not_charged(campaign, tmp_path):
    store, bid, calcs = campaign("uq", [PP, PMMA], n_workers=1, max_attempts=2)
    store.update_config("uq", {"preset_overrides": SLOW_MD}, actor="test")
    log = tmp_path / "runner.log"
    r = start_runner(store, "uq", log, idle_exit=False)
    try:
        def one_in_md_other_waiting():
            rows = {c: store.get_calculation(c) for c in calcs.values()}
            md = [c for c, d in rows.items() if d["step"] == "md" and d["attempt"] == 1]
            wait = [c for c, d in rows.items() if d["step"] == "submitted" and d["attempt"] == 1]
            return (md[0], wait[0]) if md and wait else None
        started, queued = wait_for(one_in_md_other_waiting, 300, "one calculation in md and "
                                   "the other submitted behind it on the only worker")
        worker_pid = read_progress(workdir_of(store, started))["pid"]
        os.kill(worker_pid, signal.SIGKILL)
        wait_for(lambda: _audit(store, "uq", "attempt_failed", started), 60,
                 "the started calculation's attempt to be charged")
        wait_for(lambda: store.get_calculation(queued)["interruptions"] == 1, 30,
                 "the queued calculation to be put back")
        assert not _audit(store, "uq", "attempt_failed", queued)  # not charged
        assert _audit(store, "uq", "requeue_unstarted", queued)
        assert store.get_calculation(queued)["attempt"] <= 1
        fail = _audit(store, "uq", "attempt_failed", started)[0]
        assert fail["error_type"] == "KilledWorker" and fail["new_status"] == "queued"
        for c in calcs.values():  # the slow MD need not finish
            if store.get_calculation(c)["status"] in ("queued", "running"):
                store.request_cancel(c, actor="test")
        r.send_signal(signal.SIGTERM)
        assert r.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if r.poll() is None:
            r.kill()


# --------------------------------------------------------------------------- SLURM
def _scontrol_node(env: dict, state: str) -> subprocess.CompletedProcess:
    cmd = ["scontrol", "update", "NodeName=localhost", f"State={state}"]
    if state == "DRAIN":
        cmd.append("Reason=optipoly-lost-job-test")
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)


def _pending_jobs(store: Store, name: str, env: dict, n: int) -> list[str] | None:
    """The runner's scheduler jobs (from its heartbeat) once ``n`` of them are PENDING."""
    jobs = [str(j) for j in ((store.runner_status(name) or {}).get("info") or {}).get("jobs", [])
            if j]
    if len(jobs) < n:
        return None
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", ",".join(jobs), "-o", "%i %T"],
                         env=env, capture_output=True, text=True, timeout=20).stdout.split()
    states = dict(zip(out[::2], out[1::2]))
    pending = [j for j in jobs if states.get(j) == "PENDING"]
    return pending if len(pending) >= n else None


def _lose_pending_jobs(store: Store, name: str, env: dict, log: Path, n: int) -> subprocess.Popen:
    """Drain the node, start the runner, scancel its ``n`` pending jobs, resume the node."""
    drained = _scontrol_node(env, "DRAIN")
    if drained.returncode != 0:
        pytest.skip(f"cannot drain the SLURM node: {drained.stderr.strip()[:200]}")
    r = slurm_runner(store, name, env, log)
    try:
        jobs = wait_for(lambda: _pending_jobs(store, name, env, n), 120,
                        f"{n} pending job(s) of the runner")
        subprocess.run(["scancel", *jobs], env=env, check=True, timeout=20)
    except BaseException:
        r.kill()
        raise
    finally:
        _scontrol_node(env, "RESUME")
    return r


@pytest.fixture()
def lost_job_campaign(slurm_campaign):
    def make(name: str, max_attempts: int):
        store, bid, calcs, env = slurm_campaign(name, [PP, PMMA], max_attempts=max_attempts)
        cl = store.get_campaign(name)["config"]["cluster"]
        store.update_config(name, {"cluster": {**cl, "adapt_minimum": 2, "adapt_maximum": 2}},
                            actor="test")
        return store, calcs, env
    return make


def test_slurm_jobs_lost_before_their_worker_connects_are_replaced(lost_job_campaign, tmp_path):
    store, calcs, env = lost_job_campaign("lj", max_attempts=2)
    log = tmp_path / "runner.log"
    r = _lose_pending_jobs(store, "lj", env, log, 2)
    try:
        assert r.wait(400) == 0, log.read_text()[-3000:]
    finally:
        if r.poll() is None:
            r.kill()
    for c in calcs.values():
        calc = store.get_calculation(c)
        assert calc["status"] == "done" and calc["attempt"] == 2, (calc, log.read_text()[-3000:])
    fails = [d for c in calcs.values() for d in _audit(store, "lj", "attempt_failed", c)]
    assert len(fails) == 2 and {d["error_type"] for d in fails} == {"JobCancelled"}
    assert all("ended CANCELLED before its worker connected" in d["error_message"]
               for d in fails)
    assert "submitting new ones" in log.read_text()


def test_slurm_lost_jobs_fail_the_calculation_after_the_retry_limit(lost_job_campaign,
                                                                     tmp_path):
    store, calcs, env = lost_job_campaign("lf", max_attempts=1)
    log = tmp_path / "runner.log"
    r = _lose_pending_jobs(store, "lf", env, log, 2)
    try:
        assert r.wait(300) == 0, log.read_text()[-3000:]
    finally:
        if r.poll() is None:
            r.kill()
    for c in calcs.values():
        calc = store.get_calculation(c)
        assert calc["status"] == "failed", (calc, log.read_text()[-3000:])
        assert calc["error_type"] == "JobCancelled"
        assert "ended CANCELLED before its worker connected" in calc["error_message"]
        assert "gave up after 1 of 1 attempts" in calc["error_message"]
