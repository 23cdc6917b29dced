"""The runner: one process per campaign that owns the dask cluster and executes calculations.

``python -m core.runner --campaign NAME [--db PATH] [--exit-when-idle]``

The runner and the dashboard talk only through the store (SQLite, :mod:`core.store`):

- every ``poll_s`` it submits the campaign's ``queued`` calculations, one dask task each
  (:func:`execute_calculation` → ``core.simulation.pipeline.run_pipeline`` in the work dir
  ``<runs root>/<store key>/campaign-<campaign id>/calc-<id>``, see :func:`runs_dir_for`),
  asking for the worker resource ``calc=1`` so that one worker runs one calculation at a time;
- a task writes ``progress.json`` in its work dir at every pipeline step (step, worker, pid,
  scheduler job id from ``SLURM_JOB_ID``/``PBS_JOBID``/…); the runner copies it to the store;
- a finished task's result is written at once: ``Store.complete_calculation`` sets the
  calculation ``done`` and inserts its observation in the same transaction, at most once;
- a task whose worker or job died (dask ``KilledWorker``; the scheduler is configured with
  ``allowed-failures=0`` so the runner, not dask, counts attempts) goes back to ``queued`` while
  ``attempt < max_attempts``, else fails with the reason — for SLURM/PBS the scheduler's verdict
  (``CANCELLED``, ``TIMEOUT``, ``OUT_OF_MEMORY``, ``NODE_FAIL`` …) is part of the message; a
  calculation whose task was only *queued* on that worker (it never started: no progress record
  of its dask task) goes back to ``queued`` without being charged;
- a scheduler job that ends before its dask worker connects (``scancel`` of a pending job, a
  node failure …) is never replaced by dask-jobqueue: every ``job_check_s`` the runner asks the
  scheduler (``squeue``/``scontrol``/``sacct``, SLURM) about jobs without a worker, has the
  cluster submit new jobs for the lost ones (:func:`core.execution.cluster.replace_jobs`) and
  charges one attempt of the longest-waiting calculation per lost job with a typed reason
  (``JobCancelled``, ``JobTimeout``, ``JobNodeFail``, ``JobOutOfMemory`` …); after
  ``max_attempts`` it fails with it;
  a simulation error (``core.simulation.errors``) or an unusable work dir/result fails at once;
- cancel and retry requests made in the store are honoured: each pipeline runs in its own
  process group supervised by its task (:mod:`core.execution.calc_process`); for a cancel the
  runner drops a ``CANCEL`` file and the task kills that group and the calculation's tagged
  processes within a second (the runner kills them at once itself for the local profile),
  marks the calculation cancelled and writes "cancelled" in its log; failures are written in the
  log too;
- when every calculation of a batch is terminal the batch and cycle close, the cycle's
  hypervolume/beyond-line count are recorded and the next batch is proposed
  (:func:`core.campaign.cycle.propose_batch`); it waits for approval unless the campaign
  auto-approves;
- a heartbeat (every ``heartbeat_s``, from its own thread) tells the dashboard the runner lives;
  its ``info`` holds the profile, worker count, scheduler job ids and the last cluster error
  (e.g. ``sbatch: error: invalid partition``), which also appears on calculations waiting for
  a worker;
- an edited cluster profile is applied by restarting the cluster (running calculations are
  re-queued and resume); a runner that cannot start records ``status="error"`` with the reason.

Restart safety: an exclusive ``flock`` on ``<db dir>/.runner-<store key>-c<campaign id>.lock``
(:func:`runner_lock_path`; the store key holds the database's own random id) allows one runner
per campaign (released by the kernel when the process dies, even by ``kill -9``).  A starting
runner re-queues calculations left ``running`` by its predecessor (the interrupted attempt does
not count), cancels their orphaned scheduler jobs, and resubmits; the pipeline resumes from its
work dir.  A task holds an exclusive ``flock`` on its work dir, so an orphaned worker still
running the old attempt and the new attempt never write the same directory at once, and the
store accepts one result per calculation and attempt.  Hence each calculation finishes once.

:func:`ensure_runner` (for the dashboard) starts a detached runner when the heartbeat is stale.
"""
from __future__ import annotations

import fcntl
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from core.execution.cluster import CALC_RESOURCE
from core.config import (ACTIVE_BATCH_STATES, OPEN_BATCH_STATES, PENDING_CALC_STATES, REPO_ROOT,
                         CalcState, ClusterKind, RunnerState)
from core.errors import ClusterError
from core.store import Store, StoreError, StoreUnavailable, utcnow
from core.execution.task import (CALC_ENV, CANCEL_FILE, LOG_FILE, CalculationCancelled,
                                 CalculationSpec, append_calc_log, calc_tag, execute_calculation,
                                 kill_orphans, read_progress)

__all__ = ["Runner", "CampaignHooks", "Executor", "DaskExecutor", "ensure_runner",
           "runner_lock_path", "runs_dir_for", "store_key", "RunnerLocked", "RunnerStartError",
           "STALE_AFTER_S"]

STALE_AFTER_S = 30.0


class _ClusterErrors(logging.Handler):
    """Keeps the last error logged by the cluster machinery (e.g. ``sbatch`` rejecting a job:
    dask-jobqueue's RuntimeError surfaces only as a log record of tornado/distributed)."""

    LOGGERS = ("tornado.application", "distributed.deploy", "distributed.deploy.spec",
               "distributed.deploy.adaptive", "dask_jobqueue")

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.last: tuple[float, str] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            exc = record.exc_info[1] if record.exc_info else None
            msg = str(exc) if exc is not None else record.getMessage()
            self.last = (time.time(), " ".join(msg.split())[:1500])
        # a log handler must never raise into the code that logged: logging's own fallback
        except Exception:  # noqa: BLE001
            self.handleError(record)

    def install(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).addHandler(self)

    def recent(self, within_s: float = 600.0) -> str | None:
        if self.last and time.time() - self.last[0] < within_s:
            return self.last[1]
        return None


class RunnerLocked(ClusterError, RuntimeError):
    """Another runner already holds this campaign's lock."""


class RunnerStartError(ClusterError, ValueError):
    """:func:`ensure_runner` will not restart a runner that failed on unchanged settings."""


# --------------------------------------------------------------------------- runner side
def store_key(store: Store) -> str:
    """``<db file stem>-<store id>``: names what belongs to one store file (its runner locks and
    work dirs), so two databases in one folder, or a database deleted and recreated at the same
    path, never share them (:attr:`core.store.Store.store_id` is random per database)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", store.path.stem)[:40] or "store"
    return f"{stem}-{store.store_id}"


def runner_lock_path(store: Store, campaign_id: int) -> Path:
    """``<db dir>/.runner-<store key>-c<campaign id>.lock`` (see :func:`store_key`)."""
    return store.path.parent / f".runner-{store_key(store)}-c{int(campaign_id)}.lock"


def runs_dir_for(store: Store, campaign_id: int, runs_dir: str | None) -> Path:
    """Work-dir root of a campaign: ``<root>/<store key>/campaign-<campaign id>`` where root is
    the campaign's ``runs_dir`` setting or ``<db dir>/runs`` (see :func:`store_key`)."""
    root = Path(runs_dir).expanduser().resolve() if runs_dir else store.path.parent / "runs"
    return root / store_key(store) / f"campaign-{int(campaign_id)}"


def _retryable(exc: BaseException) -> bool:
    from distributed.scheduler import KilledWorker  # noqa: PLC0415
    try:
        from distributed.comm.core import CommClosedError  # noqa: PLC0415
    except ImportError:  # pragma: no cover
        CommClosedError = ()  # type: ignore[assignment]  # noqa: N806
    from core.execution.calc_process import PipelineProcessDied  # noqa: PLC0415
    return isinstance(exc, (KilledWorker, CommClosedError, ConnectionError, TimeoutError,
                            PipelineProcessDied))


def _attempt_started(calc: dict, attempt: int) -> bool:
    """Whether ``attempt`` of a calculation started executing: its work dir's progress record
    belongs to this attempt's dask task (a task only queued on a worker wrote nothing)."""
    prog = read_progress(calc["workdir"]) if calc.get("workdir") else None
    if not prog or int(prog.get("attempt", -1)) != int(attempt):
        return False
    key = prog.get("dask_key")
    return key is None or key == calc.get("dask_key")


def _error_type(exc: BaseException) -> str:
    """The error's class name (for an error relayed by the pipeline process, the original's)."""
    return str(getattr(exc, "error_type", None) or type(exc).__name__)


@dataclass(frozen=True)
class CampaignHooks:
    """What the runner asks of the campaign layer (``core.campaign.cycle.RUNNER_HOOKS`` supplies
    them;
    without them the runner only executes calculations and closes batches).

    batch_finished(store, campaign_id, cycle)  a batch closed: e.g. record the cycle's metrics;
                                               returns what to log
    propose_next(store, campaign_id)           the latest cycle is closed and nothing is
                                               proposed: propose the next batch, return it
    """

    batch_finished: Callable[[Store, int, int], Mapping[str, Any]] | None = None
    propose_next: Callable[[Store, int], Mapping[str, Any]] | None = None


class Executor(Protocol):
    """Runs calculations somewhere: ``submit`` returns a future with dask's interface
    (``status``, ``result()``, ``exception()``, ``cancel()``)."""

    def submit(self, spec: CalculationSpec) -> Any:
        """Start :func:`core.execution.task.execute_calculation` on ``spec``; return its future."""


class DaskExecutor:
    """The default executor: one dask task per calculation, on a worker with a free ``calc``
    resource (so one worker runs one calculation at a time), never retried by dask (the
    runner counts attempts)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def submit(self, spec: CalculationSpec) -> Any:
        """Submit :func:`core.execution.task.execute_calculation` under the spec's dask key."""
        return self.client.submit(execute_calculation, spec, key=spec.dask_key, pure=False,
                                  resources={CALC_RESOURCE: 1}, retries=0)


class Runner:
    """Executes a campaign's calculations on its cluster profile (see module docstring).

    ``store`` (default: ``Store(db_path)``) and ``executor`` (default: a
    :class:`DaskExecutor` on the cluster :meth:`start_cluster` starts) can be given, so that
    :meth:`tick` runs without dask; ``hooks`` connect it to the campaign layer.
    """

    def __init__(self, db_path: str | Path, campaign: str, *, poll_s: float = 1.0,
                 heartbeat_s: float = 2.0, exit_when_idle: bool = False,
                 log: Callable[[str], None] | None = None, store: Store | None = None,
                 executor: Executor | None = None,
                 hooks: CampaignHooks = CampaignHooks()) -> None:
        self.store = store if store is not None else Store(db_path)
        self.executor = executor
        self.hooks = hooks
        camp = self.store.get_campaign(campaign)
        self.campaign = camp["name"]
        self.cid = camp["id"]
        self.poll_s = float(poll_s)
        self.heartbeat_s = float(heartbeat_s)
        self.exit_when_idle = exit_when_idle
        self._log = log or (lambda m: print(f"{utcnow()} runner[{self.campaign}] {m}",
                                            flush=True))
        self.futures: dict[int, tuple[Any, int]] = {}  # calc id -> (future, attempt)
        self.progress_seen: dict[int, tuple] = {}
        self._stop = threading.Event()
        self._info: dict[str, Any] = {}
        self._lock_fh = None
        self.client = None
        self.cluster = None
        self.profile = None
        self._propose_failed_at: int | None = None
        self._final_status = RunnerState.STOPPED
        self._status = RunnerState.STARTING
        self._cluster_errors = _ClusterErrors()
        self.stuck_after_s = 60.0
        self._submitted_at: dict[int, float] = {}
        self._profile_error: str | None = None
        self.max_consecutive_errors = 10
        self.job_check_s = 10.0  # how often scheduler jobs without a worker are looked up
        self._last_job_check = 0.0
        self._connected_jobs: set[str] = set()  # job ids whose worker ever connected

    # ------------------------------------------------------------------ lifecycle
    def acquire_lock(self) -> None:
        """Take the campaign's runner lock or raise :class:`RunnerLocked`."""
        path = runner_lock_path(self.store, self.cid)
        try:
            fh = open(path, "a+")  # noqa: SIM115
        except OSError as exc:  # e.g. a read-only database directory: one clear line
            raise StoreUnavailable(
                f"{self.store.path}: cannot take the runner lock {path}: "
                f"{exc.strerror or exc}; a runner needs a database it may write") from None
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise RunnerLocked(f"another runner holds {path}") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._lock_fh = fh

    def start_cluster(self) -> None:
        """Start the dask cluster of the campaign's profile (allowed-failures = 0)."""
        import dask  # noqa: PLC0415
        from distributed import Client  # noqa: PLC0415

        from core.execution.cluster import validate_profile, make_cluster  # noqa: PLC0415
        cfg = self.store.campaign_config(self.cid)
        self.profile = validate_profile(cfg.cluster, cfg.preset)
        self._cluster_errors.install()
        self._cluster_errors.last = None
        dask.config.set({"distributed.scheduler.allowed-failures": 0,
                         "distributed.scheduler.worker-ttl": "15 minutes"})
        os.environ.pop(CALC_ENV, None)  # never hand a calculation tag on to workers
        root = str(REPO_ROOT)
        pp = os.environ.get("PYTHONPATH", "")
        if root not in pp.split(os.pathsep):  # so that workers/jobs can import core
            os.environ["PYTHONPATH"] = root + (os.pathsep + pp if pp else "")
        runs = runs_dir_for(self.store, self.cid, cfg.runs_dir)
        runs.mkdir(parents=True, exist_ok=True)
        self.cluster = make_cluster(self.profile, preset=cfg.preset,
                                    local_directory=str(runs / ".dask"))
        self.client = Client(self.cluster)
        self.executor = DaskExecutor(self.client)
        self._log(f"cluster {self.profile.profile} started")

    def close(self) -> None:
        """Stop the cluster, re-queue what was running, mark the runner stopped."""
        for cid, (fut, _a) in list(self.futures.items()):
            fut.cancel()
        self.futures.clear()
        try:
            self.store.requeue_interrupted(self.cid)
        # process boundary (shutdown): best effort, the next runner re-queues them anyway
        except Exception as exc:  # noqa: BLE001
            self._log(f"requeue at shutdown failed: {exc}")
        self._close_cluster()
        try:
            self.store.heartbeat(self.cid, pid=os.getpid(), host=socket.gethostname(),
                                 status=self._final_status, info=self._info)
        # process boundary (shutdown): a stale heartbeat reads as "stopped" after 30 s anyway
        except Exception as exc:  # noqa: BLE001
            self._log(f"final heartbeat failed: {exc}")
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    def _close_cluster(self) -> None:
        """Close the dask client and cluster, logging (not raising) a failure to close."""
        for obj in (self.client, self.cluster):
            if obj is not None:
                try:
                    obj.close()
                # boundary with dask/the batch scheduler: a cluster that cannot be closed
                # (scheduler gone, job already ended) must not stop the shutdown or restart
                except Exception as exc:  # noqa: BLE001
                    self._log(f"closing {type(obj).__name__} failed: {exc}")

    def stop(self) -> None:
        """Ask the loop to end (signal handlers call this)."""
        self._stop.set()

    def _heartbeat_loop(self) -> None:
        store = Store(self.store.path)
        while not self._stop.is_set():
            try:
                store.heartbeat(self.cid, pid=os.getpid(), host=socket.gethostname(),
                                status=self._status, info=self._info)
            # thread boundary: a busy database must not kill the heartbeat thread
            except Exception as exc:  # noqa: BLE001
                self._log(f"heartbeat failed: {exc}")
            self._stop.wait(self.heartbeat_s)

    def run(self) -> int:
        """Main loop; returns the process exit code."""
        self.acquire_lock()
        self._status = RunnerState.STARTING
        self._info = {"phase": "starting the cluster"}
        self.store.heartbeat(self.cid, pid=os.getpid(), host=socket.gethostname(),
                             status=self._status, info=self._info)
        hb = threading.Thread(target=self._heartbeat_loop, daemon=True, name="heartbeat")
        hb.start()
        code = 0
        try:
            self.recover()
            self.start_cluster()
            self._status = RunnerState.RUNNING
            errors = 0
            while not self._stop.is_set():
                try:
                    busy = self.tick()
                    errors = 0
                # process boundary (one pass): e.g. a database busy for > 30 s; retried with
                # back-off, re-raised after max_consecutive_errors passes in a row
                except Exception as exc:  # noqa: BLE001
                    errors += 1
                    self._log(f"pass failed ({errors} in a row): {type(exc).__name__}: {exc}")
                    if errors >= self.max_consecutive_errors:
                        raise
                    busy = True
                    self._stop.wait(min(30.0, self.poll_s * 2 ** errors))
                if self.exit_when_idle and not busy:
                    self._log("idle: nothing queued or running; exiting")
                    break
                self._stop.wait(self.poll_s)
        # process boundary: recorded for the dashboard, then the runner exits with code 1
        except Exception as exc:  # noqa: BLE001
            msg = f"{type(exc).__name__}: {exc}"
            self._log(f"runner failed: {msg}")
            self._final_status = "error"
            self._info = {**self._info, "error": msg}
            try:
                self.store.log(self.cid, "runner_error", actor="runner",
                               details={"error": msg, "traceback": traceback.format_exc()[-4000:]})
            # process boundary: the error is already in the runner log and the heartbeat
            except Exception as exc:  # noqa: BLE001
                self._log(f"audit of the runner error failed: {exc}")
            code = 1
        finally:
            self._stop.set()
            if hb.is_alive():
                hb.join(timeout=30)  # its last write must not follow the final status
            self.close()
        return code

    # ------------------------------------------------------------------ recovery
    def recover(self) -> None:
        """Re-queue calculations a dead runner left running; cancel their orphaned jobs."""
        rows = self.store.requeue_interrupted(self.cid)
        if not rows:
            return
        self._log(f"re-queued {len(rows)} interrupted calculation(s): "
                  f"{[r['id'] for r in rows]}")
        cfg = self.store.campaign_config(self.cid)
        profile = (cfg.cluster or {}).get("profile", ClusterKind.LOCAL)
        if "name" in (cfg.cluster or {}):  # a named profile of the owner's jobqueue.yaml
            from core.execution.cluster import ClusterConfigError, ClusterProfile  # noqa: PLC0415
            try:
                profile = ClusterProfile.from_dict(cfg.cluster).profile
            except ClusterConfigError as exc:
                self._log(f"cannot tell the scheduler of the orphaned jobs: {exc}")
        job_ids = [r["job_id"] for r in rows if r.get("job_id")]
        if profile != ClusterKind.LOCAL and job_ids:
            from core.execution.cluster import cancel_scheduler_jobs  # noqa: PLC0415
            n = cancel_scheduler_jobs(profile, job_ids)
            self._log(f"cancelled {n} orphaned {profile} job(s) {job_ids}")

    # ------------------------------------------------------------------ one iteration
    def tick(self) -> bool:
        """One pass: cancels, results, progress, submissions, batch completion.  Returns whether
        anything is queued or running (or a proposal is pending approval with auto-approve)."""
        self._maybe_reload_cluster()
        self._handle_cancels()
        self._collect_results()
        self._update_progress()
        self._check_lost_jobs()
        self._submit_queued()
        self._sweep_batches()
        self._advance_cycle()
        calcs = self.store.calculations(self.cid, status=PENDING_CALC_STATES)
        self._info = self._cluster_info(calcs)
        self._flag_stuck(calcs)
        return bool(len(calcs)) or bool(self.futures)

    def _sweep_batches(self) -> None:
        """Close approved/running batches whose calculations are all terminal (e.g. the previous
        runner died between storing the last result and closing the batch)."""
        b = self.store.batches(self.cid)
        open_b = b[b["status"].isin(ACTIVE_BATCH_STATES) & (b["n_pending"] == 0)]
        for bid in open_b["id"]:
            self._batch_maybe_finished(int(bid))

    def _flag_stuck(self, calcs) -> None:
        """Tell the user why submitted calculations do not start (no worker, scheduler error)."""
        if self._info.get("workers"):
            return
        err = self._info.get("cluster_error")
        now = time.time()
        for row in calcs[(calcs["status"] == CalcState.RUNNING) & (calcs["step"] == "submitted")] \
                .itertuples():
            waited = now - self._submitted_at.get(int(row.id), now)
            if waited < self.stuck_after_s and not err:
                continue
            msg = (f"waiting for a {self.profile.profile if self.profile else ''} worker: "
                   + (f"the cluster reported an error: {err}" if err else
                      f"no worker has connected for over {self.stuck_after_s:.0f} s"))[:1000]
            if row.message != msg:
                self.store.update_progress(int(row.id), int(row.attempt), message=msg)

    def _maybe_reload_cluster(self) -> None:
        """Restart the cluster when the campaign's cluster profile was edited (running
        calculations are re-queued and resume in their work dirs)."""
        if self.profile is None:
            return
        from core.execution.cluster import ClusterConfigError, validate_profile  # noqa: PLC0415
        cfg = self.store.campaign_config(self.cid)
        try:
            new = validate_profile(cfg.cluster, cfg.preset)
        except ClusterConfigError as exc:
            self._profile_error = f"edited cluster profile not applied: {exc}"
            return
        self._profile_error = None
        if new.to_dict() == self.profile.to_dict():
            return
        self._log(f"cluster profile changed ({self.profile.profile} -> {new.profile}): "
                  "restarting the cluster")
        for fut, _a in self.futures.values():
            fut.cancel()
        self.futures.clear()
        self._close_cluster()
        self.client = self.cluster = None
        rows = self.store.requeue_interrupted(self.cid)
        self.store.log(self.cid, "cluster_restart", actor="runner",
                       details={"profile": new.to_dict(), "requeued": [r["id"] for r in rows]})
        self.start_cluster()

    def _cluster_info(self, calcs) -> dict:
        info: dict[str, Any] = {"profile": self.profile.profile if self.profile else None,
                                CalcState.QUEUED: int((calcs["status"] == CalcState.QUEUED).sum()),
                                CalcState.RUNNING: int((calcs["status"] == CalcState.RUNNING).sum()),
                                "time": utcnow()}
        err = self._profile_error or self._cluster_errors.recent()
        if err:
            info["cluster_error"] = err
        try:
            workers = self.client.scheduler_info().get("workers", {}) if self.client else {}
            info["workers"] = len(workers)
            if self.profile is not None and self.profile.is_jobqueue:
                info["jobs"] = [getattr(j, "job_id", None) for j in
                                getattr(self.cluster, "workers", {}).values()]
        # boundary with the dask scheduler: the heartbeat must go out even when it is
        # unreachable (the worker count then stays unknown; logged at debug level, every pass)
        except Exception as exc:  # noqa: BLE001
            logging.getLogger(__name__).debug("scheduler info unavailable: %s", exc)
        return info

    def _handle_cancels(self) -> None:
        """Stop running calculations whose cancel was requested: drop the ``CANCEL`` file (the
        supervising task kills the pipeline's process group within a second), kill the
        calculation's tagged processes on this host at once for the local profile, mark it
        cancelled and say so in its log."""
        df = self.store.calculations(self.cid, status=CalcState.RUNNING)
        for row in df[df["cancel_requested"]].itertuples():
            killed = self._stop_calculation(int(row.id), row.workdir)
            entry = self.futures.pop(int(row.id), None)
            if entry is not None:
                entry[0].cancel()
            self.store.mark_cancelled(int(row.id), reason="cancelled on request")
            append_calc_log(row.log_path, int(row.attempt), CalcState.CANCELLED,
                            "cancelled on request; the runner stopped the calculation"
                            + (f" ({len(killed)} process(es) killed)" if killed else ""))
            self._log(f"calculation {row.id} cancelled"
                      + (f", killed pids {killed}" if killed else ""))
            if row.batch_id is not None:
                self._batch_maybe_finished(int(row.batch_id))

    def _stop_calculation(self, calc_id: int, workdir: str | None) -> list[int]:
        """Drop the work dir's ``CANCEL`` file; for the local profile (the calculation runs on
        this host) also SIGKILL its tagged processes.  Returns the killed pids."""
        if not workdir:
            return []
        try:
            Path(workdir).mkdir(parents=True, exist_ok=True)
            (Path(workdir) / CANCEL_FILE).write_text(utcnow())
        except OSError:
            pass
        if self.profile is None or self.profile.is_jobqueue:
            return []  # on another host: the supervising task sees the CANCEL file
        return kill_orphans(calc_tag({"calc_id": calc_id, "workdir": workdir}))

    def _collect_results(self) -> None:
        for calc_id, (fut, attempt) in list(self.futures.items()):
            if fut.status not in ("finished", "error", "cancelled"):  # not vocabulary: dask
                continue  # pending, or "lost" (a dead worker held the result: dask recomputes)
            del self.futures[calc_id]
            self._handle_finished(calc_id, attempt, fut)

    def _handle_finished(self, calc_id: int, attempt: int, fut) -> None:
        calc = self.store.get_calculation(calc_id)
        if fut.status == "finished":
            try:
                out = fut.result()
                result, execution = out["result"], out["execution"]
                provenance = {"campaign": self.campaign, "calculation_id": calc_id,
                              "attempt": attempt, "preset": calc["preset"],
                              "execution": execution,
                              "cluster_profile": self.profile.to_dict() if self.profile else None,
                              "pipeline_provenance": result.get("provenance")}
                oid = self.store.complete_calculation(calc_id, attempt, result,
                                                      provenance=provenance,
                                                      worker=execution.get("worker"),
                                                      job_id=execution.get("job_id"))
                self._log(f"calculation {calc_id} done (observation {oid})" if oid is not None
                          else f"result of calculation {calc_id} attempt {attempt} ignored: "
                               "no longer running (cancelled or superseded)")
            except StoreUnavailable:  # disk full, database locked …: not the result's fault;
                self.futures[calc_id] = (fut, attempt)  # keep it, store it at the next pass
                raise
            except StoreError as exc:
                self._fail(calc_id, attempt, "InvalidResult", str(exc), retryable=False)
            # boundary with the worker: an unpicklable / corrupt result fails this calculation
            except Exception as exc:  # noqa: BLE001
                self._fail(calc_id, attempt, type(exc).__name__, str(exc), retryable=False)
        elif fut.status == "cancelled":  # not vocabulary: a dask future state
            self._fail(calc_id, attempt, "TaskLost",
                       "the dask task was cancelled by the cluster", retryable=True)
        else:
            exc = fut.exception()
            if exc is None:
                self._fail(calc_id, attempt, "TaskLost", "dask lost the task without an error",
                           retryable=True)
            elif isinstance(exc, CalculationCancelled):
                if self.store.mark_cancelled(calc_id, reason=str(exc)):
                    append_calc_log(calc.get("log_path"), attempt, CalcState.CANCELLED, str(exc))
            elif _retryable(exc) and not _attempt_started(calc, attempt):
                self._requeue_unstarted(calc_id, attempt, "its task was only waiting on a "
                                        f"worker that went away ({_error_type(exc)})")
            elif _retryable(exc):
                self._fail(calc_id, attempt, _error_type(exc),
                           self._death_reason(calc, exc), retryable=True)
            else:
                step = getattr(exc, "step", None)
                msg = str(exc) or repr(exc)
                if step and step != "unknown":
                    msg = f"[step {step}] {msg}"
                self._fail(calc_id, attempt, _error_type(exc), msg, retryable=False)
        if calc.get("batch_id") is not None:
            self._batch_maybe_finished(int(calc["batch_id"]))

    def _death_reason(self, calc: dict, exc: BaseException) -> str:
        """Why a retryable attempt ended: the pipeline process's fate, or the worker's (for
        SLURM/PBS with the scheduler's verdict on the job)."""
        from core.execution.calc_process import PipelineProcessDied  # noqa: PLC0415
        if isinstance(exc, PipelineProcessDied):
            return str(exc)
        prog = read_progress(calc["workdir"]) if calc.get("workdir") else None
        job_id = (prog or {}).get("job_id") or calc.get("job_id")
        step = (prog or {}).get("step") or calc.get("step")
        reason = f"the worker running it died during step '{step}'"
        if job_id and self.profile is not None and self.profile.is_jobqueue:
            from core.execution.cluster import scheduler_job_state  # noqa: PLC0415
            st = scheduler_job_state(self.profile.profile, job_id, wait_final_s=20.0)
            if st:
                reason = (f"{self.profile.profile} job {job_id} ended {st['state']} "
                          f"({st['explanation']}; reason {st['reason'] or 'none'}) "
                          f"during step '{step}'")
            else:
                reason += f" (job {job_id})"
        return f"{reason}: {type(exc).__name__}: {exc}"

    def _fail(self, calc_id: int, attempt: int, etype: str, msg: str, *, retryable: bool) -> None:
        """Record a failed attempt in the store, the calculation's log and the runner log."""
        new = self.store.fail_attempt(calc_id, attempt, error_type=etype, error_message=msg,
                                      retryable=retryable)
        if new is not None:
            append_calc_log(self.store.get_calculation(calc_id).get("log_path"), attempt,
                            CalcState.FAILED, f"{etype}: {msg}"
                            + (" (will retry)" if new == CalcState.QUEUED else ""))
        self._log(f"calculation {calc_id} attempt {attempt} failed ({etype}: {msg[:200]}) "
                  f"-> {new}")

    def _requeue_unstarted(self, calc_id: int, attempt: int, reason: str) -> None:
        """Put back an attempt that never started, without charging it."""
        if self.store.requeue_unstarted(calc_id, attempt, reason=reason):
            self._log(f"calculation {calc_id} attempt {attempt} never started ({reason}): "
                      "re-queued, not counted")

    # ------------------------------------------------------------------ lost scheduler jobs
    def _check_lost_jobs(self) -> None:
        """Jobqueue profiles, every ``job_check_s``: find the cluster's scheduler jobs that
        ended before their dask worker connected (e.g. ``scancel`` of a pending job, a node
        failure), have the cluster submit new jobs in their place, and charge one waiting
        calculation per lost job with the scheduler's verdict (:meth:`_charge_lost_job`)."""
        if self.profile is None or not self.profile.is_jobqueue or self.cluster is None:
            return
        self._note_connected_jobs()
        if time.monotonic() - self._last_job_check < self.job_check_s:
            return
        self._last_job_check = time.monotonic()
        from core.execution.cluster import ended_jobs, replace_jobs  # noqa: PLC0415
        jobs = {name: str(job.job_id) for name, job in list(self.cluster.workers.items())
                if getattr(job, "job_id", None)}
        waiting = {n: j for n, j in jobs.items() if j not in self._connected_jobs}
        ended = ended_jobs(self.profile.profile, waiting.values()) if waiting else None
        lost = {n: j for n, j in waiting.items() if ended and j in ended}
        if not lost:
            return
        self._log(f"{self.profile.profile} job(s) {sorted(lost.values())} ended before their "
                  "worker connected: submitting new ones")
        replace_jobs(self.cluster, list(lost))
        for job_id in lost.values():
            self._charge_lost_job(job_id, ended[job_id])

    def _note_connected_jobs(self) -> None:
        """Remember the scheduler job ids whose dask worker has connected (their loss is a
        worker death, handled through ``KilledWorker``, not a lost job)."""
        try:
            names = {str(w.get("name")) for w in
                     self.client.scheduler_info().get("workers", {}).values()}
        # boundary with the dask scheduler: unreachable now means "try at the next pass"
        except Exception:  # noqa: BLE001
            return
        for name, job in list(self.cluster.workers.items()):
            jid = getattr(job, "job_id", None)
            if jid and any(n == str(name) or n.startswith(f"{name}-") for n in names):
                self._connected_jobs.add(str(jid))

    def _charge_lost_job(self, job_id: str, state: dict) -> None:
        """Count one attempt of the longest-waiting submitted calculation (no worker started it
        yet) against the lost job's typed reason (``JobCancelled``, ``JobTimeout``,
        ``JobNodeFail``, ``JobOutOfMemory`` …); it is re-submitted, or failed with that reason
        once its attempts are spent."""
        rows = self.store.calculations(self.cid, status=CalcState.RUNNING)
        waiting = [int(r.id) for r in rows.itertuples() if r.step == "submitted"
                   and int(r.id) in self.futures
                   and not _attempt_started(self.store.get_calculation(int(r.id)), int(r.attempt))]
        msg = (f"{self.profile.profile} job {job_id} ended {state['state']} before its worker "
               f"connected ({state['explanation']}"
               + (f"; last reason {state['reason']}" if state.get("reason") else "") + ")")
        if not waiting:
            self._log(f"{msg}; no calculation was waiting for it")
            return
        cid = min(waiting, key=lambda c: self._submitted_at.get(c, 0.0))
        fut, attempt = self.futures.pop(cid)
        fut.cancel()
        self._fail(cid, attempt, state["error_type"], msg, retryable=True)

    def _update_progress(self) -> None:
        df = self.store.calculations(self.cid, status=CalcState.RUNNING)
        for row in df.itertuples():
            if not row.workdir or int(row.id) not in self.futures:
                continue
            prog = read_progress(row.workdir)
            if not prog or int(prog.get("attempt", -1)) != int(row.attempt):
                continue
            sig = (prog.get("step"), prog.get("message"), prog.get("job_id"), prog.get("worker"))
            if self.progress_seen.get(int(row.id)) == sig:
                continue
            self.progress_seen[int(row.id)] = sig
            if prog.get("job_id"):
                self._connected_jobs.add(str(prog["job_id"]))
            self.store.update_progress(int(row.id), int(row.attempt), step=prog.get("step"),
                                       message=prog.get("message"), worker=prog.get("worker"),
                                       job_id=prog.get("job_id"))

    def _submit_queued(self) -> None:
        cfg = self.store.campaign_config(self.cid)
        runs = runs_dir_for(self.store, self.cid, cfg.runs_dir)
        threads = cfg.threads or (self.profile.calc_threads if self.profile else None)
        queued = self.store.calculations(self.cid, status=CalcState.QUEUED)
        for row in queued.itertuples():
            cid = int(row.id)
            if cid in self.futures:
                continue
            name = f"calc-{cid}" + (f"-r{int(row.reruns)}" if int(row.reruns) else "")
            workdir = runs / name
            key = f"{name}-a{int(row.attempt) + 1}-{uuid.uuid4().hex[:8]}"
            attempt = self.store.start_attempt(cid, dask_key=key, workdir=str(workdir),
                                               log_path=str(workdir / LOG_FILE))
            if attempt is None:
                if row.batch_id is not None:
                    self._batch_maybe_finished(int(row.batch_id))
                continue
            try:
                stale = workdir / CANCEL_FILE
                if stale.is_file():
                    stale.unlink()
            except OSError:
                pass
            spec = CalculationSpec(calc_id=cid, attempt=attempt, psmiles=row.psmiles,
                                   preset=row.preset, preset_overrides=cfg.preset_overrides,
                                   workdir=str(workdir), threads=threads, dask_key=key)
            fut = self.executor.submit(spec)
            self.futures[cid] = (fut, attempt)
            self._submitted_at[cid] = time.time()
            self._log(f"submitted calculation {cid} attempt {attempt} as {key}")

    # ------------------------------------------------------------------ cycles
    def _batch_maybe_finished(self, batch_id: int) -> None:
        status = self.store.finish_batch_if_complete(batch_id)
        if status is None:
            return
        batch = self.store.get_batch(batch_id)
        self._log(f"batch {batch_id} (cycle {batch['cycle']}) {status}")
        if self.hooks.batch_finished is None:
            return
        try:
            m = self.hooks.batch_finished(self.store, self.cid, int(batch["cycle"]))
            self._log(f"cycle {batch['cycle']} metrics {m}")
        # the metrics are a by-product: a failure is logged, the batch stays finished
        except Exception as exc:  # noqa: BLE001
            self._log(f"cycle metrics failed: {type(exc).__name__}: {exc}")

    def _advance_cycle(self) -> None:
        """Propose the next batch once the latest cycle is closed and nothing is proposed."""
        cur = self.store.current_batch(self.cid)
        if cur is not None and cur["status"] in OPEN_BATCH_STATES:
            return
        if cur is None or self.hooks.propose_next is None:
            return  # the first batch is proposed by whoever created the campaign
        n_obs = self.store.observation_count(self.cid)
        if self._propose_failed_at == n_obs:
            return
        try:
            b = self.hooks.propose_next(self.store, self.cid)
            self._propose_failed_at = None
            self._log(f"proposed batch {b['id']} (cycle {b['cycle']}, {b['n_selected']} "
                      f"candidates){' and auto-approved' if 'approval' in b else ''}")
        # the runner must survive a failed proposal: it is audited and retried on new data
        except Exception as exc:  # noqa: BLE001
            self._propose_failed_at = n_obs
            msg = f"{type(exc).__name__}: {exc}"
            self._log(f"proposal failed: {msg}")
            self.store.log(self.cid, "propose_failed", actor="runner",
                           details={"error": msg, "traceback": traceback.format_exc()[-4000:]})


# --------------------------------------------------------------------------- dashboard helper
def ensure_runner(db_path: str | Path, campaign: str, *, stale_after_s: float = STALE_AFTER_S,
                  python: str | None = None, extra_args: list[str] | None = None) -> int:
    """Start a detached runner for ``campaign`` unless a live one heartbeats; returns its pid.

    The child runs in its own session (it survives the dashboard), logs to
    ``<db dir>/runner-<campaign>.log`` and exits at once if another runner holds the lock.
    Raises :class:`RunnerStartError` (with the runner's error message) instead of restarting a
    runner that stopped with an error when the campaign settings have not changed since.
    """
    store = Store(db_path)
    camp = store.get_campaign(campaign)
    st = store.runner_status(camp["id"], stale_after_s=stale_after_s)
    if st is not None and st["alive"] and st.get("pid"):
        return int(st["pid"])
    if st is not None and st["status"] == "error" and \
            str(camp["updated_at"]) <= str(st["heartbeat_at"]):
        raise RunnerStartError(
            f"the last runner stopped with an error and the campaign settings have not changed "
            f"since: {(st.get('info') or {}).get('error', 'see the audit log')}")
    log = store.path.parent / f"runner-{camp['name']}.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"]
                                          if env.get("PYTHONPATH") else "")
    cmd = [python or sys.executable, "-m", "core.runner", "--campaign", camp["name"],
           "--db", str(store.path), *(extra_args or [])]
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, cwd=str(REPO_ROOT), env=env, stdout=fh, stderr=fh,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return int(proc.pid)
