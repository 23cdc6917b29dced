"""Cancel really stops the work (reliability issue, defect B): a cancelled calculation's
simulation processes (the pipeline process, LAMMPS) are gone within seconds, not after the MD
step's time limit.  Real runner, real dask LocalCluster, real LAMMPS; no mocks.

The calculation is made slow with a campaign preset override: the ``smoke`` preset with a
2000-ps production, far longer than the test runs.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from core.execution.task import CALC_ENV, calc_tag, read_progress
from core.store import Store

from tests.helpers import SLOW_MD, PP, alive, progress_at, start_runner, wait_for, workdir_of

pytestmark = pytest.mark.integration


def tagged_pids(tag: str) -> list[int]:
    """Processes on this host started with ``OPTIPOLY_CALC=<tag>`` in their environment."""
    want = f"{CALC_ENV}={tag}".encode()
    pids = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if want in (d / "environ").read_bytes().split(b"\0") and alive(int(d.name)):
                pids.append(int(d.name))
        except OSError:
            continue
    return pids


def is_lammps(pid: int) -> bool:
    """Whether ``pid`` is the LAMMPS child (``python -m core.simulation.md``)."""
    try:
        return b"core.simulation.md" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_cancel_kills_the_running_simulation_within_seconds(campaign, tmp_path):
    store, bid, calcs = campaign("cx", [PP], n_workers=1)
    store.update_config("cx", {"preset_overrides": SLOW_MD}, actor="test")
    cid = calcs[PP]
    log = tmp_path / "runner.log"
    r = start_runner(store, "cx", log, idle_exit=False)
    try:
        prog = wait_for(progress_at(store, cid, "md", 1), 300, "PP to reach the md step")
        tag = calc_tag({"calc_id": cid, "workdir": str(workdir_of(store, cid))})
        wait_for(lambda: any(is_lammps(p) for p in tagged_pids(tag)), 120, "LAMMPS to start")
        assert store.request_cancel(cid, actor="test") == "running"
        t0 = time.monotonic()
        wait_for(lambda: not tagged_pids(tag) and
                 store.get_calculation(cid)["status"] == "cancelled", 15,
                 "the calculation's processes to be gone and the state cancelled")
        elapsed = time.monotonic() - t0
        assert alive(prog["pid"])  # only the calculation was stopped, not its dask worker
        calc = store.get_calculation(cid)
        assert calc["error_type"] == "Cancelled"
        text = (workdir_of(store, cid) / "calculation.log").read_text()
        assert "cancelled" in text.split("md: started", 1)[1], text[-2000:]
        r.send_signal(signal.SIGTERM)
        assert r.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if r.poll() is None:
            r.kill()
    assert elapsed < 15
    assert store.get_calculation(cid)["status"] == "cancelled"  # a clean stop keeps it so
    assert not tagged_pids(tag)


def test_a_killed_pipeline_process_is_retried_and_logged(campaign, tmp_path):
    """The pipeline process (not its worker) dies, e.g. by the OOM killer: the attempt is
    retried with the reason, the failure is in the calculation log, and the retry finishes."""
    store, bid, calcs = campaign("pk", [PP], n_workers=1, max_attempts=2)
    store.update_config("pk", {"preset_overrides": SLOW_MD}, actor="test")
    cid = calcs[PP]
    log = tmp_path / "runner.log"
    r = start_runner(store, "pk", log, idle_exit=False)
    try:
        prog = wait_for(progress_at(store, cid, "md", 1), 300, "PP to reach the md step")
        assert prog["pipeline_pid"] != prog["pid"]
        os.kill(prog["pipeline_pid"], signal.SIGKILL)
        wait_for(lambda: (read_progress(workdir_of(store, cid)) or {}).get("attempt") == 2, 90,
                 "attempt 2 to start")
        store.request_cancel(cid, actor="test")  # the slow retry need not finish
        wait_for(lambda: store.get_calculation(cid)["status"] == "cancelled", 30, "cancel")
        r.send_signal(signal.SIGTERM)
        assert r.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if r.poll() is None:
            r.kill()
    audit = store.audit_log("pk")
    fail = audit[audit["action"] == "attempt_failed"].iloc[0]["details"]
    assert fail["error_type"] == "PipelineProcessDied" and fail["new_status"] == "queued"
    assert "signal SIGKILL" in fail["error_message"] and "step 'md'" in fail["error_message"]
    text = (workdir_of(store, cid) / "calculation.log").read_text()
    assert "[attempt 1] failed: PipelineProcessDied" in text
    assert Store(store.path).get_calculation(cid)["attempt"] == 2


def test_a_clean_runner_stop_leaves_no_simulation_running(campaign, tmp_path):
    """SIGTERM to the runner mid-MD: the cluster closes, the pipeline process and LAMMPS go with
    it, and the calculation is re-queued (to resume from its work dir next time)."""
    store, bid, calcs = campaign("st", [PP], n_workers=1)
    store.update_config("st", {"preset_overrides": SLOW_MD}, actor="test")
    cid = calcs[PP]
    log = tmp_path / "runner.log"
    r = start_runner(store, "st", log, idle_exit=False)
    try:
        wait_for(progress_at(store, cid, "md", 1), 300, "PP to reach the md step")
        tag = calc_tag({"calc_id": cid, "workdir": str(workdir_of(store, cid))})
        wait_for(lambda: any(is_lammps(p) for p in tagged_pids(tag)), 120, "LAMMPS to start")
        r.send_signal(signal.SIGTERM)
        assert r.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if r.poll() is None:
            r.kill()
    wait_for(lambda: not tagged_pids(tag), 15, "the calculation's processes to be gone")
    assert store.get_calculation(cid)["status"] == "queued"


def test_the_task_kills_its_pipeline_when_the_cancel_file_appears(tmp_path):
    """The worker side alone (as on a SLURM node, where the runner cannot kill processes):
    the supervising task sees ``CANCEL``, kills the pipeline process group and LAMMPS, logs
    "cancelled" and raises CalculationCancelled."""
    import threading

    from core.execution.task import CANCEL_FILE, CalculationCancelled, execute_calculation

    wd = tmp_path / "calc-7"
    spec = {"calc_id": 7, "attempt": 1, "psmiles": PP, "preset": "smoke",
            "preset_overrides": SLOW_MD, "workdir": str(wd), "threads": 1}
    tag = calc_tag(spec)
    outcome: dict = {}

    def task() -> None:
        try:
            outcome["result"] = execute_calculation(spec)
        except BaseException as exc:  # noqa: BLE001
            outcome["error"] = exc

    th = threading.Thread(target=task, daemon=True)
    th.start()
    wait_for(lambda: any(is_lammps(p) for p in tagged_pids(tag)) or not th.is_alive(), 300,
             "LAMMPS to start")
    assert "error" not in outcome, outcome
    (wd / CANCEL_FILE).write_text("now")
    t0 = time.monotonic()
    th.join(15)
    assert not th.is_alive() and isinstance(outcome.get("error"), CalculationCancelled), outcome
    wait_for(lambda: not tagged_pids(tag), 15 - (time.monotonic() - t0), "no tagged process")
    text = (wd / "calculation.log").read_text()
    assert "cancelled: pipeline process" in text and "during step 'md'" in text, text[-1500:]
