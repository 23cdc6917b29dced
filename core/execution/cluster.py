"""Cluster profiles: where calculations run (dask LocalCluster or dask-jobqueue on HPC schedulers).

A profile is a plain dict stored in the campaign config (``config["cluster"]``), or a reference
``{"name": NAME}`` to a named profile in the server owner's ``jobqueue.yaml``
(:mod:`core.execution.cluster_profiles`; editing inline profiles in the dashboard is off unless the
server is started with ``OPTIPOLY_ALLOW_PROFILE_EDITING=1``).  :class:`ClusterProfile`
validates it; :func:`cluster_spec` gives the cluster class and keyword arguments,
:func:`make_cluster` starts the dask cluster the runner owns; :func:`job_script` previews the
batch script before anything is launched.

Network exposure: the local profile binds scheduler, workers and the scheduler's HTTP
endpoints to 127.0.0.1.  Jobqueue profiles (workers on other hosts) always use dask's TLS with
a fresh self-signed certificate per cluster (``Security.temporary()``, mutual authentication:
only processes holding the certificate, which the job script reads from files readable by this
user only, can talk to the scheduler — dask's protocol runs pickled code), the scheduler binds
to the address the workers need (``interface``, else ``scheduler_host``, else the address
dask would advertise, ``distributed.utils.get_ip()``) instead of 0.0.0.0, its HTTP dashboard to
127.0.0.1 only (reach it through an SSH tunnel), and workers start without a dashboard.

Profiles
- ``local`` (default, embedded): ``distributed.LocalCluster`` with ``n_workers`` worker processes
  of ``threads_per_worker`` threads.
- ``slurm`` | ``pbs`` | ``sge`` | ``lsf``: ``dask_jobqueue.{SLURM,PBS,SGE,LSF}Cluster`` with the
  settings HPC users expect: ``cores`` and ``memory`` per job, ``walltime`` (``HH:MM:SS``),
  ``queue`` (SLURM partition / PBS, SGE, LSF queue), ``account`` (SLURM ``--account``, PBS ``-A``,
  SGE/LSF project), ``job_extra_directives`` (extra ``#SBATCH`` … lines),
  ``job_script_prologue`` (``module load …``, ``source venv/bin/activate``), ``worker_lifetime``
  (``--lifetime`` of the dask worker; defaults to walltime − max(5 min, 10 %) so that a worker
  retires before the scheduler kills its job), ``adapt_minimum``/``adapt_maximum`` (jobs),
  ``interface`` (network interface of workers and scheduler, e.g. ``ib0``), ``scheduler_host``
  (address the scheduler binds to when no interface is given).

One calculation per worker process: every worker advertises the dask resource ``calc=1`` and
every calculation task asks for it, so a job with ``cores=8`` runs one calculation with 8 threads
(``ClusterProfile.calc_threads``) rather than 8 calculations.

Walltime check: the pipeline resumes at step granularity from its work dir, so a worker lifetime
must at least cover the longest single step of the preset (``Preset.timeouts``, s: the step's
wall-time limit).  A shorter walltime raises :class:`WalltimeTooShort` naming the step and the
walltime needed; ``allow_short_walltime: true`` skips the check for users who know their
calculations finish well inside the limits (e.g. a 72-h queue for the ``standard`` preset, whose
MD limit is 72 h).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Iterable, Mapping

from core.config import ClusterKind
from core.errors import ClusterError

__all__ = [
    "ClusterProfile", "ClusterConfigError", "WalltimeTooShort", "PROFILES", "JOBQUEUE_PROFILES",
    "parse_walltime", "format_walltime", "required_walltime_s", "minimum_walltime_s", "validate_profile", "make_cluster",
    "job_script", "scheduler_job_state", "cancel_scheduler_jobs", "CALC_RESOURCE",
    "ended_jobs", "replace_jobs", "JOB_LOSS_TYPES", "cluster_spec", "is_profile_reference",
    "LOOPBACK", "SCHEDULER_DASHBOARD",
]

logger = logging.getLogger(__name__)

PROFILES: tuple[str, ...] = tuple(k.value for k in ClusterKind)
JOBQUEUE_PROFILES: tuple[str, ...] = tuple(k.value for k in ClusterKind if k.is_jobqueue)
CALC_RESOURCE = "calc"
LIFETIME_MARGIN_S = 300.0
LOOPBACK = "127.0.0.1"
SCHEDULER_DASHBOARD = f"{LOOPBACK}:8787"  # dask's scheduler dashboard: loopback only
_ANY_ADDRESS = {"", "0.0.0.0", "::", "[::]", "*"}


class ClusterConfigError(ClusterError, ValueError):
    """The cluster profile is invalid (the message names the setting)."""


class WalltimeTooShort(ClusterConfigError):
    """The job walltime (worker lifetime) is shorter than the longest step of the preset."""


def parse_walltime(text: str) -> int:
    """``[D-]HH:MM:SS`` / ``HH:MM`` / ``MM`` → seconds (SLURM/PBS conventions)."""
    if not isinstance(text, str):
        raise ClusterConfigError(f"walltime must be text like '01:30:00', got {text!r}")
    m = re.fullmatch(r"\s*(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?\s*", text)
    if not m:
        raise ClusterConfigError(f"walltime must look like HH:MM:SS, got {text!r}")
    days, a, b, c = m.groups()
    parts = [int(a)] + [int(x) for x in (b, c) if x is not None]
    if len(parts) == 3:
        h, mi, s = parts
    elif len(parts) == 2:
        h, mi, s = parts[0], parts[1], 0
    else:
        h, mi, s = 0, parts[0], 0
    total = int(days or 0) * 86400 + h * 3600 + mi * 60 + s
    if total <= 0:
        raise ClusterConfigError(f"walltime must be positive, got {text!r}")
    return total


def format_walltime(seconds: float) -> str:
    """Seconds → ``HH:MM:SS`` (hours may exceed 24)."""
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


_SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.I)
_DIRECTIVE_BAD = re.compile(r"[\n\r\x00]")


@dataclass
class ClusterProfile:
    """Validated cluster settings (see the module docstring for each field)."""

    profile: str = ClusterKind.LOCAL.value
    # local
    n_workers: int = 2
    threads_per_worker: int = 1
    # jobqueue
    cores: int = 1
    memory: str = "4GB"
    walltime: str = "01:00:00"
    queue: str | None = None
    account: str | None = None
    job_extra_directives: list[str] = field(default_factory=list)
    job_script_prologue: list[str] = field(default_factory=list)
    worker_lifetime: str | None = None
    adapt_minimum: int = 0
    adapt_maximum: int = 4
    python: str | None = None
    log_directory: str | None = None
    local_directory: str | None = None
    interface: str | None = None
    scheduler_host: str | None = None
    death_timeout: int = 60
    allow_short_walltime: bool = False

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ClusterConfigError(f"cluster profile must be one of {PROFILES}, "
                                     f"got {self.profile!r}")
        for name in ("n_workers", "threads_per_worker", "cores", "adapt_maximum", "death_timeout"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ClusterConfigError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.adapt_minimum, int) or not 0 <= self.adapt_minimum <= \
                self.adapt_maximum:
            raise ClusterConfigError(f"adapt_minimum must be 0..adapt_maximum "
                                     f"({self.adapt_maximum}), got {self.adapt_minimum!r}")
        if self.profile in JOBQUEUE_PROFILES:
            if not _SIZE.match(str(self.memory)):
                raise ClusterConfigError(f"memory must look like '4GB', got {self.memory!r}")
            parse_walltime(self.walltime)
            if self.worker_lifetime is not None and \
                    self.lifetime_s() >= parse_walltime(self.walltime):
                raise ClusterConfigError(
                    f"worker_lifetime {self.worker_lifetime} must be shorter than the walltime "
                    f"{self.walltime}, or the scheduler kills workers mid-task")
        for name in ("job_extra_directives", "job_script_prologue"):
            v = getattr(self, name)
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ClusterConfigError(f"{name} must be a list of lines")
            if any(_DIRECTIVE_BAD.search(x) for x in v):
                raise ClusterConfigError(f"{name}: each entry must be a single line")
        for name in ("queue", "account"):
            v = getattr(self, name)
            if v is not None and not re.fullmatch(r"[A-Za-z0-9_.@:+-]+", str(v)):
                raise ClusterConfigError(f"{name} contains characters a scheduler would not "
                                         f"accept: {v!r}")
        for name in ("interface", "scheduler_host"):
            v = getattr(self, name)
            if v is None:
                continue
            if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z0-9_.:\[\]-]+", v):
                raise ClusterConfigError(f"{name} must be a network interface name or an "
                                         f"address, got {v!r}")
            if v in _ANY_ADDRESS:
                raise ClusterConfigError(
                    f"{name} {v!r} would listen on every network interface; give the address "
                    "(or interface) through which the compute nodes reach this machine")

    # ---------------------------------------------------------------- derived values
    @property
    def is_jobqueue(self) -> bool:
        """True for the HPC profiles (slurm/pbs/sge/lsf)."""
        return self.profile in JOBQUEUE_PROFILES

    @property
    def calc_threads(self) -> int:
        """Threads one calculation gets (cores of a job, or threads of a local worker)."""
        return self.cores if self.is_jobqueue else self.threads_per_worker

    @property
    def max_parallel(self) -> int:
        """How many calculations can run at once."""
        return self.adapt_maximum if self.is_jobqueue else self.n_workers

    def lifetime_s(self) -> float:
        """Worker lifetime in s (explicit, or walltime − max(5 min, 10 %))."""
        if self.worker_lifetime:
            return float(parse_walltime(self.worker_lifetime))
        wall = parse_walltime(self.walltime)
        return float(max(wall - max(LIFETIME_MARGIN_S, 0.1 * wall), wall * 0.5))

    def lifetime_stagger_s(self) -> int:
        """``--lifetime-stagger`` (s): lifetimes vary by ± this much between workers."""
        return int(max(1, min(300, int(self.lifetime_s()) // 20)))

    def to_dict(self) -> dict:
        """JSON-ready dict (what the campaign config stores)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "ClusterProfile":
        """Build from a partial dict; unknown keys raise :class:`ClusterConfigError`.
        A reference ``{"name": NAME}`` is looked up in the owner's ``jobqueue.yaml``
        (:func:`core.execution.cluster_profiles.named_profile`)."""
        data = dict(data or {})
        if is_profile_reference(data):
            from core.execution.cluster_profiles import named_profile  # noqa: PLC0415
            data = named_profile(data["name"])
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ClusterConfigError(f"unknown cluster setting(s): {', '.join(unknown)}")
        return cls(**data)


def is_profile_reference(data: Any) -> bool:
    """Whether a stored cluster setting is ``{"name": NAME}``: a named profile of the owner's
    ``jobqueue.yaml`` rather than an inline profile."""
    return isinstance(data, Mapping) and set(data) == {"name"}


def required_walltime_s(preset: Any) -> float:
    """Seconds a worker must live to finish the longest step of ``preset`` (name or Preset)."""
    from core.simulation.presets import get_preset  # noqa: PLC0415
    p = get_preset(preset)
    return float(max(p.timeouts.values()))


def minimum_walltime_s(step_s: float) -> int:
    """Smallest walltime (s, whole minutes) whose default worker lifetime, less the stagger,
    covers a step of ``step_s`` seconds."""
    minutes = max(1, int(step_s // 60))
    while True:
        p = ClusterProfile(profile=ClusterKind.SLURM.value, walltime=format_walltime(minutes * 60))
        if p.lifetime_s() - p.lifetime_stagger_s() >= step_s:
            return minutes * 60
        minutes += 1


def validate_profile(profile: Mapping[str, Any] | ClusterProfile,
                     preset: Any | None = None) -> ClusterProfile:
    """Validate a profile (and, for HPC profiles, its walltime against ``preset``)."""
    prof = profile if isinstance(profile, ClusterProfile) else ClusterProfile.from_dict(profile)
    if preset is not None and prof.is_jobqueue and not prof.allow_short_walltime:
        from core.simulation.presets import get_preset  # noqa: PLC0415
        p = get_preset(preset)
        step, need = max(p.timeouts.items(), key=lambda kv: kv[1])
        if prof.lifetime_s() - prof.lifetime_stagger_s() < need:
            wall_needed = format_walltime(minimum_walltime_s(need))
            raise WalltimeTooShort(
                f"walltime {prof.walltime} leaves workers "
                f"{format_walltime(prof.lifetime_s() - prof.lifetime_stagger_s())} "
                f"to live, but the '{step}' step of preset '{p.name}' may take up to "
                f"{format_walltime(need)}; set walltime to at least {wall_needed} or use a "
                f"smaller preset")
    return prof


# --------------------------------------------------------------------------- jobqueue plumbing
def _jobqueue_kwargs(prof: ClusterProfile) -> tuple[type, dict]:
    """(Job class, kwargs) shared by the cluster and the script preview."""
    import dask_jobqueue  # noqa: PLC0415
    cls = {ClusterKind.SLURM: dask_jobqueue.SLURMCluster, ClusterKind.PBS: dask_jobqueue.PBSCluster,
           ClusterKind.SGE: dask_jobqueue.SGECluster,
           ClusterKind.LSF: dask_jobqueue.LSFCluster}[prof.profile]
    lifetime = int(prof.lifetime_s())
    stagger = prof.lifetime_stagger_s()
    kw: dict[str, Any] = dict(
        cores=prof.cores, processes=1, memory=prof.memory, walltime=prof.walltime,
        queue=prof.queue, job_extra_directives=list(prof.job_extra_directives),
        job_script_prologue=list(prof.job_script_prologue),
        worker_extra_args=["--resources", f"{CALC_RESOURCE}=1", "--lifetime", f"{lifetime}s",
                           "--lifetime-stagger", f"{stagger}s", "--no-dashboard"],
        python=prof.python or sys.executable, death_timeout=prof.death_timeout,
        job_name="optipoly",
    )
    if prof.log_directory:
        kw["log_directory"] = prof.log_directory
    if prof.local_directory:
        kw["local_directory"] = prof.local_directory
    if prof.interface:
        kw["interface"] = prof.interface
    if prof.account:
        kw["account" if prof.profile in (ClusterKind.SLURM, ClusterKind.PBS) else "project"] = prof.account
    if prof.profile == ClusterKind.SGE:
        kw["resource_spec"] = f"h_vmem={prof.memory}"
    if prof.profile == ClusterKind.LSF:
        kw["walltime"] = prof.walltime.rsplit(":", 1)[0] if prof.walltime.count(":") == 2 \
            else prof.walltime
    return cls, kw


def _default_scheduler_host() -> str:
    """The address dask advertises for a scheduler bound to every interface (the one with the
    default route, ``distributed.utils.get_ip``): bind there only."""
    from distributed.utils import get_ip  # noqa: PLC0415
    return get_ip()


def _scheduler_bind(prof: ClusterProfile) -> dict[str, str]:
    """Where a jobqueue scheduler listens: the profile's ``interface`` (workers use it too),
    else ``scheduler_host``, else :func:`_default_scheduler_host` -- never every interface."""
    if prof.interface:
        return {"interface": prof.interface}
    host = prof.scheduler_host or _default_scheduler_host()
    if host in _ANY_ADDRESS:  # pragma: no cover - get_ip never answers this
        raise ClusterConfigError("could not find the address the compute nodes reach this "
                                 "machine through; set scheduler_host or interface")
    return {"host": host}


def cluster_spec(profile: Mapping[str, Any] | ClusterProfile, *,
                 local_directory: str | None = None,
                 security: Any | None = None) -> tuple[type, dict]:
    """(cluster class, keyword arguments) that :func:`make_cluster` starts; nothing is started
    and no file is written.

    ``local``: a ``LocalCluster`` on 127.0.0.1.  Jobqueue profiles: TLS with ``security``
    (default: a fresh ``distributed.security.Security.temporary()``; needs ``cryptography``),
    protocol ``tls://``, the scheduler bound to :func:`_scheduler_bind`, its dashboard to
    127.0.0.1, and the worker certificate files written (0600) to ``local_directory`` (which
    the compute nodes must see: the runs directory).
    """
    prof = profile if isinstance(profile, ClusterProfile) else ClusterProfile.from_dict(profile)
    if not prof.is_jobqueue:
        from distributed import LocalCluster  # noqa: PLC0415
        return LocalCluster, dict(
            n_workers=prof.n_workers, threads_per_worker=prof.threads_per_worker,
            processes=True, resources={CALC_RESOURCE: 1}, host=LOOPBACK, protocol="tcp://",
            dashboard_address=None, local_directory=local_directory)
    cls, kw = _jobqueue_kwargs(prof)
    if local_directory and "local_directory" not in kw:
        kw["local_directory"] = local_directory
    if security is None:
        from distributed.security import Security  # noqa: PLC0415
        try:
            security = Security.temporary()
        except ImportError as exc:  # cryptography missing
            raise ClusterConfigError(
                "jobqueue profiles need TLS between the scheduler and the workers on other "
                f"hosts, which needs the 'cryptography' package: {exc}") from None
    kw.update(security=security, protocol="tls://",
              scheduler_options={"dashboard_address": SCHEDULER_DASHBOARD,
                                 **_scheduler_bind(prof)})
    if local_directory:
        kw["shared_temp_directory"] = local_directory
    return cls, kw


def _preview_security(directory: str) -> Any:
    """A Security naming the certificate files a real cluster writes (preview only)."""
    from distributed.security import Security  # noqa: PLC0415
    base = f"{directory.rstrip('/')}/.dask-jobqueue.worker"
    return Security(tls_ca_file=f"{base}.ca_file.XXXXXXXX", tls_worker_cert=f"{base}.cert.XXXXXXXX",
                    tls_worker_key=f"{base}.key.XXXXXXXX", require_encryption=True)


def job_script(profile: Mapping[str, Any] | ClusterProfile) -> str:
    """The batch script a job of this profile would submit (no scheduler contacted), or a
    one-line description of the local cluster.  Shows the TLS options the real jobs get (the
    certificate file names end in placeholders)."""
    prof = profile if isinstance(profile, ClusterProfile) else ClusterProfile.from_dict(profile)
    if not prof.is_jobqueue:
        return (f"# local dask cluster: LocalCluster(n_workers={prof.n_workers}, "
                f"threads_per_worker={prof.threads_per_worker}, resources={{'{CALC_RESOURCE}': 1}}, "
                f"host='{LOOPBACK}')\n# no batch script: calculations run on this machine")
    cls, kw = _jobqueue_kwargs(prof)
    job_cls = cls.job_cls
    job = job_cls(scheduler="tls://SCHEDULER-ADDRESS:8786", name="preview", protocol="tls://",
                  security=_preview_security("<runs dir>/.dask"), **kw)
    return job.job_script()


def make_cluster(profile: Mapping[str, Any] | ClusterProfile, *, preset: Any | None = None,
                 local_directory: str | None = None):
    """Start the dask cluster of a profile (validated against ``preset``); the caller closes it.

    ``local``: a LocalCluster of worker processes on 127.0.0.1; HPC profiles: a dask-jobqueue
    cluster with TLS (:func:`cluster_spec`) in adaptive mode (``adapt_minimum``..
    ``adapt_maximum`` jobs, one calculation per job).
    """
    prof = validate_profile(profile, preset)
    if prof.is_jobqueue and local_directory:
        os.makedirs(local_directory, mode=0o700, exist_ok=True)
    cls, kw = cluster_spec(prof, local_directory=local_directory)
    cluster = cls(**kw)
    if prof.is_jobqueue:
        cluster.adapt(minimum_jobs=prof.adapt_minimum, maximum_jobs=prof.adapt_maximum)
    return cluster


# --------------------------------------------------------------------------- scheduler queries
_SLURM_REASONS = {
    "CANCELLED": "the job was cancelled (scancel or an administrator)",
    "TIMEOUT": "the job hit its walltime",
    "OUT_OF_MEMORY": "the job ran out of memory",
    "NODE_FAIL": "the node failed",
    "PREEMPTED": "the job was preempted",
    "FAILED": "the job exited with an error",
    "BOOT_FAIL": "the node failed to boot",
    "DEADLINE": "the job missed its deadline",
}


_TRANSIENT = {"COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT", "RUNNING", "R", "E"}


def scheduler_job_state(profile: str, job_id: str, *, timeout_s: float = 10.0,
                        wait_final_s: float = 0.0) -> dict | None:
    """As :func:`_job_state_once`, polling up to ``wait_final_s`` seconds while the job is
    still ending (e.g. SLURM ``COMPLETING`` right after ``scancel``)."""
    import time  # noqa: PLC0415
    deadline = time.monotonic() + wait_final_s
    while True:
        st = _job_state_once(profile, job_id, timeout_s=timeout_s)
        if st is None or st["state"] not in _TRANSIENT or time.monotonic() >= deadline:
            return st
        time.sleep(1.0)


def _job_state_once(profile: str, job_id: str, *, timeout_s: float = 10.0) -> dict | None:
    """Ask the scheduler what happened to a job: ``{"state", "reason", "explanation"}``.

    SLURM: ``scontrol show job -o`` (jobs stay visible for MinJobAge, default 300 s), then
    ``sacct``.  PBS: ``qstat -fx``.  Returns None when the scheduler does not know the job or
    the profile has no query implemented (SGE, LSF, local).
    """
    job_id = str(job_id)
    if not re.fullmatch(r"[0-9A-Za-z_.\[\]-]+", job_id):
        raise ClusterConfigError(f"not a job id: {job_id!r}")
    if profile == ClusterKind.SLURM:
        out = _run(["scontrol", "show", "job", "-o", job_id], timeout_s)
        if out:
            st = re.search(r"\bJobState=(\S+)", out)
            rs = re.search(r"\bReason=(\S+)", out)
            if st:
                state = st.group(1)
                return {"state": state, "reason": rs.group(1) if rs else "",
                        "explanation": _SLURM_REASONS.get(state, state.lower())}
        out = _run(["sacct", "-n", "-P", "-X", "-j", job_id, "-o", "State,Reason"], timeout_s)
        if out and out.strip():
            state, _, reason = out.strip().splitlines()[0].partition("|")
            state = state.split()[0]
            return {"state": state, "reason": reason,
                    "explanation": _SLURM_REASONS.get(state, state.lower())}
        return None
    if profile == ClusterKind.PBS:
        out = _run(["qstat", "-fx", job_id], timeout_s)
        if out:
            st = re.search(r"job_state = (\S+)", out)
            ex = re.search(r"Exit_status = (-?\d+)", out)
            if st:
                return {"state": st.group(1), "reason": ex.group(1) if ex else "",
                        "explanation": f"PBS job state {st.group(1)}"
                        + (f", exit status {ex.group(1)}" if ex else "")}
        return None
    return None


_SLURM_LIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED",
               "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED",
               "RESV_DEL_HOLD"}
JOB_LOSS_TYPES = {
    "CANCELLED": "JobCancelled", "TIMEOUT": "JobTimeout", "DEADLINE": "JobTimeout",
    "NODE_FAIL": "JobNodeFail", "BOOT_FAIL": "JobNodeFail", "OUT_OF_MEMORY": "JobOutOfMemory",
    "PREEMPTED": "JobPreempted", "FAILED": "JobFailed", "COMPLETED": "JobEnded",
}


def ended_jobs(profile: str, job_ids: Iterable[str], *,
               timeout_s: float = 10.0) -> dict[str, dict] | None:
    """Which of ``job_ids`` the batch scheduler neither queues nor runs any more.

    Returns ``{job_id: {"state", "reason", "explanation", "error_type"}}`` for the ended jobs
    (``error_type`` from :data:`JOB_LOSS_TYPES`, e.g. ``JobCancelled``; ``JobLost`` for other
    states and for jobs the scheduler has forgotten, state ``UNKNOWN``), or None when it cannot
    tell: the scheduler did not answer, or the profile has no query (only SLURM has one:
    ``squeue -t all``, then ``scontrol``/``sacct`` for jobs no longer listed).
    """
    ids = sorted({str(j) for j in job_ids if j})
    for j in ids:
        if not re.fullmatch(r"[0-9A-Za-z_.\[\]-]+", j):
            raise ClusterConfigError(f"not a job id: {j!r}")
    if profile != ClusterKind.SLURM:
        return None
    out = _run(["squeue", "-h", "-t", "all", "-o", "%i|%T|%r"], timeout_s)
    if out is None:
        return None
    listed = {}
    for line in out.splitlines():
        jid, _, rest = line.strip().partition("|")
        state, _, reason = rest.partition("|")
        listed[jid] = (state.strip(), reason.strip())
    ended = {}
    for j in ids:
        if j in listed:
            state, reason = listed[j]
            if state in _SLURM_LIVE:
                continue
        else:
            st = _job_state_once(profile, j, timeout_s=timeout_s)
            if st is not None and st["state"] in _SLURM_LIVE:
                continue
            state, reason = (st["state"], st["reason"]) if st else ("UNKNOWN", "")
        ended[j] = {"state": state, "reason": reason,
                    "explanation": _SLURM_REASONS.get(state, state.lower())
                    if state != "UNKNOWN" else "the scheduler no longer knows the job",
                    "error_type": JOB_LOSS_TYPES.get(state, "JobLost")}
    return ended


def replace_jobs(cluster: Any, names: Iterable[str], *, timeout_s: float = 60.0) -> None:
    """Forget the jobs ``names`` of a dask-jobqueue cluster (they ended before their worker
    connected) and start new jobs in their place.

    dask's SpecCluster only forgets a job when its worker *leaves* the scheduler, so a job
    cancelled or failed before its worker connected stays in ``cluster.workers`` for ever and
    adaptive scaling never replaces it.  Dropping it there lets ``_correct_state`` (the
    SpecCluster's own reconciliation, distributed 2026.8) submit a job for its still-planned
    slot (``worker_spec``).
    """
    names = list(names)

    async def _replace() -> None:
        for name in names:
            job = cluster.workers.pop(name, None)
            if job is not None:
                try:
                    await job.close()  # scancel; harmless for an ended job
                # boundary with the batch scheduler: a job that cannot be cancelled (already
                # gone, scheduler unreachable) must not stop the replacement of the others
                except Exception as exc:  # noqa: BLE001
                    logger.warning("closing job %s failed: %s", name, exc)
        await cluster._correct_state()

    cluster.sync(_replace, callback_timeout=timeout_s)


def cancel_scheduler_jobs(profile: str, job_ids: list[str], *, timeout_s: float = 20.0) -> int:
    """Cancel orphaned jobs (left by a runner that died); returns how many commands succeeded."""
    cmd = {ClusterKind.SLURM: ["scancel"], ClusterKind.PBS: ["qdel"], ClusterKind.SGE: ["qdel"],
           ClusterKind.LSF: ["bkill"]}.get(profile)
    ids = sorted({str(j) for j in job_ids if j})
    if cmd is None or not ids:
        return 0
    for j in ids:
        if not re.fullmatch(r"[0-9A-Za-z_.\[\]-]+", j):
            raise ClusterConfigError(f"not a job id: {j!r}")
    return int(_run(cmd + ids, timeout_s) is not None) * len(ids)


def _run(cmd: list[str], timeout_s: float) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout if res.returncode == 0 else None
