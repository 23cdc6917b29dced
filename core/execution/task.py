"""The worker side of a calculation: the dask task that runs one calculation in its work dir.

:func:`execute_calculation` runs inside a dask worker (any host of the cluster): it takes the
work dir's lock (:func:`core.simulation.env.exclusive_lock`; an orphaned earlier attempt must
let go first), kills the orphaned processes of an earlier attempt, runs the simulation pipeline
in its own supervised process group (:mod:`core.execution.calc_process`) and returns the result
record
with where and when it ran.  Everything it needs arrives in a :class:`CalculationSpec`; it
never touches the store (the runner, :mod:`core.execution.runner`, records what it returns).

Files of a work dir: ``progress.json`` (step, worker, pid, scheduler job id; written at every
step), ``calculation.log`` (one line per step, failure or cancel), ``CANCEL`` (dropped by the
runner to cancel), ``.lock`` (held by the running attempt).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO, Any, Mapping

from core.errors import CalculationError
from core.store import utcnow

__all__ = ["CalculationSpec", "execute_calculation", "kill_orphans", "calc_tag",
           "append_calc_log", "read_progress", "CalculationCancelled", "WorkdirError",
           "JOB_ENV_VARS", "PROGRESS_FILE", "CANCEL_FILE", "LOG_FILE", "CALC_ENV", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[2]
JOB_ENV_VARS = ("SLURM_JOB_ID", "PBS_JOBID", "JOB_ID", "LSB_JOBID")
PROGRESS_FILE = "progress.json"
CANCEL_FILE = "CANCEL"
LOG_FILE = "calculation.log"


@dataclass(frozen=True)
class CalculationSpec:
    """Everything a worker needs to run one attempt of one calculation.

    calc_id, attempt    the store's calculation id and the attempt number (1, 2, …)
    psmiles             the polymer SMILES
    preset              simulation preset name (:data:`core.config.PRESET_NAMES`)
    workdir             the calculation's work dir (shared file system for a cluster)
    threads             cores for the pipeline (None: the preset's default)
    preset_overrides    preset fields replaced for this campaign (None: none)
    dask_key            the dask task key (written into ``progress.json``)
    lock_timeout_s      how long to wait for an orphaned attempt to release the work dir (s)
    """

    calc_id: int
    attempt: int
    psmiles: str
    preset: str
    workdir: str
    threads: int | None = None
    preset_overrides: Mapping[str, Any] | None = None
    dask_key: str | None = None
    lock_timeout_s: float = 86400.0

    @classmethod
    def of(cls, spec: "CalculationSpec | Mapping[str, Any]") -> "CalculationSpec":
        """A spec from itself or from a mapping with the same keys (unknown keys ignored)."""
        if isinstance(spec, cls):
            return spec
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(spec).items() if k in names})

    def to_dict(self) -> dict:
        """A plain dict (what the pipeline child process reads)."""
        return asdict(self)


class CalculationCancelled(CalculationError):
    """Raised inside a task when its ``CANCEL`` file appears (checked at each pipeline step)."""


class WorkdirError(CalculationError, RuntimeError):
    """The work dir of a calculation is unusable (not a directory, unreadable, corrupt)."""


def _job_id_from_env() -> str | None:
    for var in JOB_ENV_VARS:
        if os.environ.get(var):
            return os.environ[var]
    return None


CALC_ENV = "OPTIPOLY_CALC"


def calc_tag(spec: "CalculationSpec | Mapping[str, Any]") -> str:
    """Environment tag of a calculation's subprocesses: ``<calc id>:<work dir>``."""
    if isinstance(spec, CalculationSpec):
        return f"{spec.calc_id}:{spec.workdir}"
    return f"{spec['calc_id']}:{spec['workdir']}"


def kill_orphans(tag: str) -> list[int]:
    """SIGKILL processes on this host whose exec environment has ``OPTIPOLY_CALC=<tag>``.

    The pipeline process (:mod:`core.execution.calc_process`) is started with the tag and its
    subprocesses (LAMMPS, antechamber, sqm …) inherit it.  A new attempt, holding the work-dir
    lock, calls this before it resumes so that no orphan writes into the directory it is about
    to reuse; a cancel calls it to stop the calculation.  (``/proc/<pid>/environ`` shows the
    environment at exec time; the worker processes never carry a tag.)  Returns the killed pids.
    """
    want = f"{CALC_ENV}={tag}".encode()
    spared = _ancestors(os.getpid())  # never this process or the ones that started it
    killed: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return killed
    for name in entries:
        if not name.isdigit() or int(name) in spared:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
        except OSError:
            continue
        if want in env:
            try:
                os.kill(int(name), signal.SIGKILL)
                killed.append(int(name))
            except OSError:
                pass
    return killed


def _ancestors(pid: int) -> set[int]:
    """``pid`` and its parent chain (from ``/proc/<pid>/stat``)."""
    out = set()
    while pid > 0 and pid not in out:
        out.add(pid)
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
            pid = int(stat[stat.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


def execute_calculation(spec: "CalculationSpec | Mapping[str, Any]") -> dict:
    """Dask task: run the simulation pipeline for one calculation in its work dir.

    ``spec``: a :class:`CalculationSpec` (or a mapping with its keys).  The pipeline runs in a
    child process group this task supervises and kills on a cancel
    (:mod:`core.execution.calc_process`).
    Returns ``{"result": <pipeline record>, "execution": {...}}`` where execution records host,
    pid (of the worker) and pipeline_pid, worker address, scheduler job id and environment,
    start and end time.  Raises :class:`WorkdirError`, :class:`CalculationCancelled`,
    ``core.execution.calc_process.PipelineProcessDied`` or the pipeline's ``SimulationError``
    subclasses.
    """
    from core.simulation.env import exclusive_lock  # noqa: PLC0415
    from core.simulation.errors import WorkdirBusy  # noqa: PLC0415
    spec = CalculationSpec.of(spec)
    workdir = Path(spec.workdir)
    if workdir.exists() and not workdir.is_dir():
        raise WorkdirError(f"work dir {workdir} exists but is not a directory")
    busy = f"work dir {workdir} stayed locked by another process"
    deadline = time.monotonic() + float(spec.lock_timeout_s)
    while True:  # wait for an orphaned previous attempt to release the directory
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            lock_fh = exclusive_lock(workdir / ".lock", busy)  # held for the whole task
            break
        except OSError as exc:
            raise WorkdirError(f"work dir {workdir} is unusable: {exc}") from exc
        except WorkdirBusy:
            if time.monotonic() > deadline:
                raise WorkdirError(busy) from None
            if (workdir / CANCEL_FILE).exists():
                raise CalculationCancelled("cancelled while waiting for the work dir") from None
            time.sleep(0.5)
    try:
        return _execute_locked(spec.to_dict(), workdir, lock_fh)
    finally:
        lock_fh.close()


def _execute_locked(spec: dict, workdir: Path, lock_fh: IO) -> dict:
    """Run the pipeline in its own supervised process group (:mod:`core.execution.calc_process`)
    while
    holding the work-dir lock ``lock_fh``; returns ``{"result", "execution"}``."""
    from core.execution.calc_process import progress_writer, run_supervised  # noqa: PLC0415
    try:
        from distributed import get_worker  # noqa: PLC0415
        worker = get_worker().address
    except (ImportError, ValueError):
        worker = None
    execution = {
        "calc_id": spec["calc_id"], "attempt": spec["attempt"], "host": socket.gethostname(),
        "pid": os.getpid(), "worker": worker, "job_id": _job_id_from_env(),
        "job_env": {v: os.environ[v] for v in JOB_ENV_VARS if os.environ.get(v)},
        "started_at": utcnow(), "preset": spec["preset"], "threads": spec.get("threads"),
        "preset_overrides": spec.get("preset_overrides"), "workdir": str(workdir),
        "dask_key": spec.get("dask_key"),
    }
    progress = progress_writer(spec, execution, workdir)
    orphans = kill_orphans(calc_tag(spec))
    progress("started", f"on {execution['host']} pid {execution['pid']}"
             + (f" job {execution['job_id']}" if execution["job_id"] else "")
             + (f"; killed {len(orphans)} orphaned process(es) of an earlier attempt"
                if orphans else ""))
    result = run_supervised(spec, workdir, execution, lock_fh)
    if not isinstance(result, dict):
        raise WorkdirError(f"the pipeline returned {type(result).__name__}, not a result record")
    execution["finished_at"] = utcnow()
    progress("finished", "result ready")
    return {"result": result, "execution": execution}


def append_calc_log(path: str | Path | None, attempt: int, step: str, message: str) -> None:
    """Append ``<time> [attempt N] <step>: <message>`` to a calculation log (best effort: a
    missing directory or a full disk never fails the caller)."""
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{utcnow()} [attempt {attempt}] {step}: {message}\n")
    except OSError:
        pass


def read_progress(workdir: str | Path) -> dict | None:
    """The last ``progress.json`` of a work dir, or None (missing or half-written)."""
    try:
        return json.loads((Path(workdir) / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return None
