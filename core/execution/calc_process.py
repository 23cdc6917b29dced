"""One calculation's pipeline in its own process group, so that a cancel really stops it.

The dask task (:func:`core.execution.task.execute_calculation`, running in a worker) does not run
the
simulation pipeline itself: :func:`run_supervised` starts ``python -m core.execution.calc_process
TASK``
in a new session (its own process group) and waits for it, checking the work dir's ``CANCEL``
file every ``poll_s`` seconds.

- cancel: the supervisor SIGKILLs the child's process group (antechamber, sqm, packmol … die
  with it) and every process on the host tagged ``OPTIPOLY_CALC=<calc tag>`` (LAMMPS runs in a
  group of its own and also exits by itself once its launching process is gone, see
  ``core.simulation.md``), writes "cancelled" in the calculation log and raises
  :class:`core.execution.task.CalculationCancelled` — within about ``poll_s`` of the request;
- the child exits, taking its process group with it, as soon as its supervisor is gone (a killed
  worker, a stopped runner or cluster): it watches its parent pid (``OPTIPOLY_CALC_PARENT_PID``);
- the child inherits the work dir's lock, so a new attempt never starts while it still lives;
- the child reports its outcome — the result record or the exception — in a pickle file; a
  child that ends without one (killed by a signal, the OOM killer) raises
  :class:`PipelineProcessDied`, which the runner retries like a dead worker.
"""
from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, IO

from core.config import CalcState
from core.errors import CalculationError
from core.atomic_io import atomic_write_bytes, atomic_write_json
from core.execution.task import (CALC_ENV, CANCEL_FILE, LOG_FILE, PROGRESS_FILE, REPO_ROOT,
                                 CalculationCancelled, append_calc_log, calc_tag, kill_orphans,
                                 read_progress)
from core.store import utcnow

__all__ = ["run_supervised", "stop_pipeline", "progress_writer", "PipelineProcessDied",
           "PipelineFailed", "PARENT_ENV", "child_main"]

PARENT_ENV = "OPTIPOLY_CALC_PARENT_PID"
CHILD_OUT = "pipeline.out"


class PipelineProcessDied(CalculationError, RuntimeError):
    """The pipeline process ended without reporting a result or an error (killed by a signal,
    e.g. the OOM killer); retryable like a dead worker."""


class PipelineFailed(CalculationError, RuntimeError):
    """An error of the pipeline process that could not be sent back as itself (unpicklable):
    ``error_type`` is the original class name, ``step`` the failing step."""

    def __init__(self, message: str, *, error_type: str, step: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.step = step

    def __reduce__(self):  # keyword-only arguments: pickle through a plain tuple
        return (_rebuild_failed, (str(self), self.error_type, self.step))


def _rebuild_failed(message: str, error_type: str, step: str | None) -> PipelineFailed:
    return PipelineFailed(message, error_type=error_type, step=step)


# --------------------------------------------------------------------------- shared
def progress_writer(spec: dict, execution: dict, workdir: Path) -> Callable[[str, str], None]:
    """The pipeline's ``progress(step, message)``: raises :class:`CalculationCancelled` when
    the ``CANCEL`` file exists, else writes ``progress.json`` and a calculation-log line."""
    def progress(step: str, message: str = "") -> None:
        if (workdir / CANCEL_FILE).exists():
            raise CalculationCancelled(f"cancelled on request before step {step!r}")
        rec = {**execution, "step": str(step), "message": str(message)[:500], "time": utcnow()}
        atomic_write_json(workdir / PROGRESS_FILE, rec, default=str)
        append_calc_log(workdir / LOG_FILE, spec["attempt"], str(step), str(message))
    return progress


def stop_pipeline(proc: subprocess.Popen, tag: str) -> int:
    """SIGKILL the pipeline process's group and every process tagged ``tag`` on this host;
    reap the child.  Returns how many processes were killed (the group counts as one)."""
    n = 0
    try:
        os.killpg(proc.pid, signal.SIGKILL)
        n = 1
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    return n + len(kill_orphans(tag))


# --------------------------------------------------------------------------- supervisor side
def run_supervised(spec: dict, workdir: Path, execution: dict, lock_fh: IO,
                   *, poll_s: float = 0.5) -> dict:
    """Run the pipeline of ``spec`` in a child process group; return its result record.

    Raises the pipeline's own exception, :class:`CalculationCancelled` (after killing the
    child) or :class:`PipelineProcessDied`.  ``lock_fh`` (the work dir's lock) is inherited by
    the child, so the directory stays locked until the child is really gone.
    """
    attempt = int(spec["attempt"])
    task_path, outcome_path = workdir / f"task-a{attempt}.json", workdir / f"outcome-a{attempt}.pkl"
    outcome_path.unlink(missing_ok=True)
    atomic_write_json(task_path, {"spec": spec, "execution": execution,
                                  "outcome": str(outcome_path)}, default=str)
    tag = calc_tag(spec)
    proc = _start_child(task_path, workdir, tag, lock_fh)
    execution["pipeline_pid"] = proc.pid
    try:
        rc = _wait_or_cancel(proc, workdir, tag, attempt, poll_s)
        outcome = _read_outcome(outcome_path)
    finally:
        if proc.poll() is None:  # the supervisor itself failed: never leave the child behind
            stop_pipeline(proc, tag)
        kill_orphans(tag)  # a subprocess the child left behind
        for f in (task_path, outcome_path):
            f.unlink(missing_ok=True)
    if outcome is None:
        if (workdir / CANCEL_FILE).exists():
            _cancelled(workdir, attempt, f"pipeline process {proc.pid} stopped")
        step = (read_progress(workdir) or {}).get("step")
        raise PipelineProcessDied(f"the pipeline process {proc.pid} ended with "
                                  f"{_describe_rc(rc)} without a result during step '{step}'")
    kind, value = outcome
    if kind == "ok":
        return value
    if isinstance(value, CalculationCancelled):
        _cancelled(workdir, attempt, str(value))
    raise value


def _start_child(task_path: Path, workdir: Path, tag: str, lock_fh: IO) -> subprocess.Popen:
    """``python -m core.execution.calc_process TASK`` in a new session, tagged, holding the
    work-dir lock."""
    env = dict(os.environ)
    env[CALC_ENV] = tag  # in its exec environment: kill_orphans finds it and its children
    env[PARENT_ENV] = str(os.getpid())
    root = str(REPO_ROOT)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with open(workdir / CHILD_OUT, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "core.execution.calc_process",
                                 str(task_path)],
                                cwd=str(workdir), env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                pass_fds=(lock_fh.fileno(),))


def _wait_or_cancel(proc: subprocess.Popen, workdir: Path, tag: str, attempt: int,
                    poll_s: float) -> int:
    """Wait for the child; on a ``CANCEL`` file kill it and raise CalculationCancelled."""
    while True:
        try:
            return proc.wait(timeout=poll_s)
        except subprocess.TimeoutExpired:
            if not (workdir / CANCEL_FILE).exists():
                continue
        step = (read_progress(workdir) or {}).get("step")
        n = stop_pipeline(proc, tag)
        _cancelled(workdir, attempt, f"pipeline process {proc.pid} stopped during step "
                                     f"'{step}' ({n} process group(s)/process(es) killed)")


def _cancelled(workdir: Path, attempt: int, detail: str) -> None:
    """Log the cancellation in the calculation log and raise CalculationCancelled."""
    append_calc_log(workdir / LOG_FILE, attempt, CalcState.CANCELLED, detail)
    raise CalculationCancelled(f"cancelled on request: {detail}")


def _read_outcome(path: Path) -> tuple[str, Any] | None:
    """``("ok", record)`` or ``("error", exception)`` written by the child, or None."""
    try:
        kind, value = pickle.loads(path.read_bytes())
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError,
            ImportError):
        return None
    return kind, value


def _describe_rc(rc: int) -> str:
    """``signal SIGKILL`` for a negative return code, else ``exit code N``."""
    if rc < 0:
        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"exit code {rc}"


# --------------------------------------------------------------------------- child side
def child_main(argv: list[str]) -> int:
    """Entry of the pipeline process: run the task file's calculation, write its outcome."""
    task = json.loads(Path(argv[0]).read_text())
    parent = os.environ.get(PARENT_ENV, "")
    if parent.isdigit():
        _watch_supervisor(int(parent))
    try:
        payload: tuple[str, Any] = ("ok", _run_task(task))
    # process boundary (the pipeline child): every error goes back to the supervisor
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        payload = ("error", _portable(exc))
    atomic_write_bytes(Path(task["outcome"]), pickle.dumps(payload))
    return 0


def _run_task(task: dict) -> dict:
    """Run the pipeline of the task's spec in ``<work dir>/pipeline``."""
    from core.simulation.pipeline import run_pipeline  # noqa: PLC0415
    from core.simulation.presets import get_preset  # noqa: PLC0415

    spec, execution = task["spec"], dict(task["execution"])
    execution["pipeline_pid"] = os.getpid()
    workdir = Path(spec["workdir"])
    preset: Any = spec["preset"]
    if spec.get("preset_overrides"):
        preset = get_preset(preset).with_overrides(**spec["preset_overrides"])
    return run_pipeline(spec["psmiles"], preset=preset, workdir=workdir / "pipeline",
                        progress=progress_writer(spec, execution, workdir),
                        threads=spec.get("threads"))


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling, else a :class:`PipelineFailed` with its class name."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    # pickling may fail with any type (PicklingError, TypeError, AttributeError, a custom
    # __reduce__ …): then the error travels as a PipelineFailed that keeps its name
    except Exception:  # noqa: BLE001
        return PipelineFailed(str(exc) or repr(exc), error_type=type(exc).__name__,
                              step=getattr(exc, "step", None))


def _watch_supervisor(pid: int, every_s: float = 0.5) -> None:
    """Daemon thread: once the supervising worker process is gone (this process is
    re-parented), SIGKILL this process's whole group, this process included."""
    def loop() -> None:
        while True:
            time.sleep(every_s)
            if os.getppid() != pid:
                os.killpg(os.getpgid(0), signal.SIGKILL)
                os._exit(137)

    threading.Thread(target=loop, daemon=True, name="supervisor-watch").start()


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
