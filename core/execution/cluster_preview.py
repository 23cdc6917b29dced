"""Job-script previews built in a short subprocess, and starting templates per profile kind.

Why a subprocess: ``import dask_jobqueue`` installs a SIGINT handler (``dask_jobqueue.runner``),
which raises ``ValueError: signal only works in main thread of the main interpreter`` anywhere
but the main thread -- and Streamlit runs page scripts in a thread.  (It would also replace the
dashboard server's own Ctrl-C handler.)  :func:`preview_job_script` therefore renders the script
with ``python -m core.execution.cluster_preview``, which reads the profile as JSON on stdin and
prints
:func:`core.execution.cluster.job_script`, under a timeout and with one clear error line on failure.

:func:`profile_template` gives the settings a new SLURM / PBS / SGE / LSF (or local) profile
starts from: cores, memory, a walltime long enough for the campaign's preset, a queue/partition
placeholder to replace, this environment's Python, and a prologue that makes ``core``
importable on the node.
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

from core.config import ClusterKind, DEFAULT_PRESET, SMOKE_PRESET, STANDARD_PRESET
from core.errors import ClusterError
from core.execution.cluster import (PROFILES, ClusterConfigError, ClusterProfile, format_walltime,
                                    job_script, minimum_walltime_s, required_walltime_s)

__all__ = ["JobScriptPreviewError", "preview_job_script", "profile_template",
           "profile_for_kind", "QUEUE_PLACEHOLDER", "PREVIEW_TIMEOUT_S"]

REPO_ROOT = Path(__file__).resolve().parents[2]
PREVIEW_TIMEOUT_S = 30.0
QUEUE_PLACEHOLDER = {ClusterKind.SLURM: "YOUR_PARTITION", ClusterKind.PBS: "YOUR_QUEUE",
                     ClusterKind.SGE: "YOUR_QUEUE", ClusterKind.LSF: "YOUR_QUEUE"}
# per preset: (cores, memory) of one job = one calculation
_SIZES = {SMOKE_PRESET: (1, "2GB"), DEFAULT_PRESET: (2, "8GB"), STANDARD_PRESET: (16, "32GB")}


class JobScriptPreviewError(ClusterError, RuntimeError):
    """The job script could not be rendered (invalid profile, timeout, broken environment)."""


def preview_job_script(profile: Mapping[str, Any] | ClusterProfile, *,
                       timeout_s: float = PREVIEW_TIMEOUT_S,
                       python: str | None = None) -> str:
    """The batch script a job of ``profile`` would submit, rendered in a subprocess (safe from
    any thread; no scheduler contacted).  The local profile needs no subprocess.

    Raises :class:`JobScriptPreviewError` with one line saying what went wrong.
    """
    prof = profile if isinstance(profile, ClusterProfile) else ClusterProfile.from_dict(profile)
    if not prof.is_jobqueue:
        return job_script(prof)
    return _preview_cached(json.dumps(prof.to_dict(), sort_keys=True), float(timeout_s),
                           python or sys.executable)


@functools.lru_cache(maxsize=64)
def _preview_cached(profile_json: str, timeout_s: float, python: str) -> str:
    """Successful previews by profile (Streamlit reruns the page on every widget change);
    failures raise and are not cached."""
    env = dict(os.environ)
    pp = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + pp if pp else "")
    try:
        res = subprocess.run([python, "-m", "core.execution.cluster_preview"], input=profile_json,
                             capture_output=True, text=True, timeout=timeout_s,
                             cwd=str(REPO_ROOT), env=env, check=False)
    except subprocess.TimeoutExpired:
        raise JobScriptPreviewError(
            f"building the job script took longer than {timeout_s:g} s (it runs "
            f"'{Path(python).name} -m core.execution.cluster_preview', which imports "
            "dask-jobqueue); "
            "try again when the machine is less busy") from None
    except OSError as err:
        raise JobScriptPreviewError(f"could not start {python}: {err}") from None
    if res.returncode != 0:
        lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
        raise JobScriptPreviewError(lines[-1] if lines else
                                    f"job script preview exited with {res.returncode}")
    return res.stdout


def profile_template(kind: str, *, preset: str | None = None,
                     python: str | None = None) -> dict[str, Any]:
    """Settings a new profile of ``kind`` starts from (valid for ``preset``: the walltime covers
    its longest step).  Replace the ``YOUR_…`` queue/partition placeholder before use."""
    if kind not in PROFILES:
        raise ClusterConfigError(f"cluster profile must be one of {PROFILES}, got {kind!r}")
    if kind == ClusterKind.LOCAL:
        return {"profile": ClusterKind.LOCAL.value, "n_workers": 2, "threads_per_worker": 1}
    cores, memory = _SIZES.get(str(preset), _SIZES[DEFAULT_PRESET])
    wall_s = 3600
    if preset is not None:
        need = minimum_walltime_s(required_walltime_s(preset))
        wall_s = max(wall_s, -(-need // 3600) * 3600)  # whole hours
    root = str(REPO_ROOT)
    tmpl: dict[str, Any] = {
        "profile": kind, "cores": cores, "memory": memory, "walltime": format_walltime(wall_s),
        "queue": QUEUE_PLACEHOLDER[kind], "account": None,
        "job_extra_directives": [f"-pe smp {cores}"] if kind == ClusterKind.SGE else [],
        "job_script_prologue": [f"cd {root}",
                                f"export PYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}}"],
        "adapt_minimum": 0, "adapt_maximum": 4, "python": python or sys.executable,
    }
    ClusterProfile.from_dict(tmpl)  # a template is always a valid profile
    return tmpl


def profile_for_kind(stored: Mapping[str, Any] | None, kind: str, *,
                     preset: str | None = None, python: str | None = None) -> dict[str, Any]:
    """What the profile editor shows for ``kind``: the stored profile when it is of that kind,
    otherwise the kind's template (never the settings of another kind)."""
    stored = dict(stored or {"profile": ClusterKind.LOCAL.value})
    if stored.get("profile", ClusterKind.LOCAL) == kind:
        return {**stored, "profile": kind}
    return profile_template(kind, preset=preset, python=python)


def main(argv: list[str] | None = None) -> int:
    """``python -m core.execution.cluster_preview``: profile JSON on stdin → job script on stdout.
    Exit 2 with one line on stderr for an invalid profile."""
    del argv
    try:
        data = json.loads(sys.stdin.read() or "{}")
        if not isinstance(data, dict):
            raise ClusterConfigError("the profile must be a JSON object")
        sys.stdout.write(job_script(data))
    except (ValueError, TypeError) as err:  # ClusterConfigError, JSON errors
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through preview_job_script
    raise SystemExit(main())
