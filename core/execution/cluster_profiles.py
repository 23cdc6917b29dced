"""Who may change cluster profiles, and named profiles from the server owner's ``jobqueue.yaml``.

A cluster profile decides what runs on the cluster: its ``job_script_prologue`` and ``python``
are written verbatim into every batch script, so whoever edits a profile runs commands as the
user who started the dashboard.  Hence:

- **Editing inline profiles in the browser is off** unless the server was started with
  ``OPTIPOLY_ALLOW_PROFILE_EDITING=1`` (:func:`profile_editing_allowed`).  With it off the
  dashboard may only switch a campaign to a *named* profile of the owner's file or to the
  built-in local profile (:func:`check_profile_change`, :func:`save_cluster_profile`).
- **Named profiles** live in a file only the owner can write, in dask-jobqueue's
  ``jobqueue.yaml`` layout: ``$OPTIPOLY_JOBQUEUE_YAML``, else ``$DASK_CONFIG/jobqueue.yaml``,
  else ``~/.config/dask/jobqueue.yaml`` (:func:`jobqueue_yaml_path`).  A campaign selects one
  with ``"cluster": {"name": "NAME"}`` (``python -m core.campaign cluster CAMPAIGN --use NAME``
  or the dashboard's Settings → Cluster); the runner reads it when it (re)starts its cluster::

      jobqueue:
        slurm:                  # a section named slurm / pbs / sge / lsf / local is of that kind
          cores: 8
          memory: 32GB
          walltime: "24:00:00"
          queue: compute
          account: chem42
          job-script-prologue:
            - module load openmpi
            - cd /home/me/optipoly
          python: /home/me/optipoly/.venv/bin/python
          interface: ib0        # network of the compute nodes (or scheduler-host: 10.1.0.5)
        big-nodes:              # any other name: say which scheduler
          profile: slurm
          cores: 32
          memory: 128GB
          walltime: "72:00:00"
          queue: big

  Keys are dask-jobqueue's (hyphens or underscores): ``cores``, ``memory``, ``walltime``,
  ``queue``, ``account``/``project``, ``job-extra-directives`` (``job-extra``),
  ``job-script-prologue`` (``env-extra``), ``python``, ``log-directory``, ``local-directory``,
  ``interface``, ``death-timeout``, plus optipoly's ``profile``, ``scheduler-host``,
  ``worker-lifetime``, ``adapt-minimum``, ``adapt-maximum``, ``allow-short-walltime``,
  ``n-workers``, ``threads-per-worker``.  ``name``, ``processes``, ``shebang``,
  ``worker-command`` and ``nanny`` are set by optipoly and ignored; empty values are ignored
  (so dask-jobqueue's own default file can be copied); any other key is an error naming it.
  The file must belong to this user (or root) and must not be writable by group or others.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Mapping

from core.config import ClusterKind, DEFAULT_CLUSTER
from core.execution.cluster import (PROFILES, ClusterConfigError, ClusterProfile,
                                    is_profile_reference, validate_profile)

__all__ = ["PROFILE_EDITING_ENV", "JOBQUEUE_YAML_ENV", "ProfileEditingDisabled",
           "ProfileFileError", "profile_editing_allowed", "jobqueue_yaml_path",
           "load_profile_file", "named_profile", "profile_names", "check_profile_change",
           "save_cluster_profile", "editing_off_message", "LOCAL_DEFAULT"]

PROFILE_EDITING_ENV = "OPTIPOLY_ALLOW_PROFILE_EDITING"
JOBQUEUE_YAML_ENV = "OPTIPOLY_JOBQUEUE_YAML"
LOCAL_DEFAULT: dict[str, Any] = dict(DEFAULT_CLUSTER)
_TRUE = {"1", "true", "yes", "on"}
# dask-jobqueue keys that optipoly sets itself (one process per job, its own job name …)
_IGNORED = {"name", "processes", "shebang", "worker_command", "nanny"}
_ALIASES = {"project": "account", "job_extra": "job_extra_directives",
            "env_extra": "job_script_prologue"}
_FIELDS = {f for f in ClusterProfile.__dataclass_fields__}  # noqa: C416


class ProfileEditingDisabled(ClusterConfigError):
    """An inline cluster profile was to be saved while profile editing is off."""


class ProfileFileError(ClusterConfigError):
    """The named-profile file cannot be used (unreadable, bad YAML, unsafe owner/mode, bad
    section); the message names the file and the section."""


def profile_editing_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the dashboard may edit inline cluster profiles: only when the server was
    started with ``OPTIPOLY_ALLOW_PROFILE_EDITING=1`` (or true/yes/on)."""
    env = os.environ if environ is None else environ
    return str(env.get(PROFILE_EDITING_ENV, "")).strip().lower() in _TRUE


def jobqueue_yaml_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$OPTIPOLY_JOBQUEUE_YAML``, else ``$DASK_CONFIG/jobqueue.yaml``, else
    ``~/.config/dask/jobqueue.yaml``."""
    env = os.environ if environ is None else environ
    if env.get(JOBQUEUE_YAML_ENV):
        return Path(env[JOBQUEUE_YAML_ENV]).expanduser()
    base = env.get("DASK_CONFIG") or "~/.config/dask"
    return Path(base).expanduser() / "jobqueue.yaml"


def editing_off_message(path: Path | None = None, code: Any = None) -> str:
    """The sentence the dashboard shows next to a read-only profile (Markdown; ``code`` makes
    an inline code span, default backticks)."""
    path = path or jobqueue_yaml_path()
    code = code or (lambda t: f"`{t}`")
    return (f"Editing cluster profiles in the browser is off: a profile's prologue and Python "
            f"run as the user who started the dashboard. Put named profiles in {code(path)} "
            f"(dask-jobqueue's jobqueue.yaml layout; another file with "
            f"{code(JOBQUEUE_YAML_ENV + '=/path/jobqueue.yaml')}) and pick one here or with "
            f"{code('python -m core.campaign cluster CAMPAIGN --use NAME')}, or restart the "
            f"dashboard with {code(PROFILE_EDITING_ENV + '=1')} to edit profiles here (only "
            f"where everyone who can open the dashboard may run commands as you).")


def _check_file_safe(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise ProfileFileError(f"{path} is not a regular file")
    if st.st_uid not in (os.getuid(), 0):
        raise ProfileFileError(f"{path} belongs to user id {st.st_uid}, not to this user "
                               f"({os.getuid()}): its profiles are not used")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ProfileFileError(f"{path} is writable by group or others (mode "
                               f"{stat.S_IMODE(st.st_mode):o}): run 'chmod go-w {path}'")


_CACHE: dict[tuple, dict[str, dict]] = {}


def load_profile_file(path: str | Path | None = None) -> dict[str, dict]:
    """Named profiles of ``path`` (default :func:`jobqueue_yaml_path`) as
    ``{name: profile dict}``, each validated; ``{}`` when the file does not exist.
    Raises :class:`ProfileFileError` naming the file (and section) for anything unusable."""
    path = Path(path) if path is not None else jobqueue_yaml_path()
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ProfileFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    _check_file_safe(path, st)
    key = (str(path), st.st_ino, st.st_mtime_ns, st.st_size)
    if key in _CACHE:
        return {k: dict(v) for k, v in _CACHE[key].items()}
    import yaml  # noqa: PLC0415 (PyYAML comes with dask)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileFileError(f"cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise ProfileFileError(f"{path} is not valid YAML"
                               + (f" (line {line + 1})" if line is not None else "")) from None
    if data is None:
        data = {}
    if not isinstance(data, dict) or not isinstance(data.get("jobqueue", {}) or {}, dict):
        raise ProfileFileError(f"{path}: expected a mapping 'jobqueue:' of named profiles")
    out: dict[str, dict] = {}
    for name, section in (data.get("jobqueue") or {}).items():
        out[str(name)] = _section_profile(path, str(name), section)
    _CACHE.clear()
    _CACHE[key] = out
    return {k: dict(v) for k, v in out.items()}


def _section_profile(path: Path, name: str, section: Any) -> dict:
    where = f"{path}, profile {name!r}"
    if not isinstance(section, dict):
        raise ProfileFileError(f"{where}: expected a mapping of settings")
    prof: dict[str, Any] = {}
    for raw_key, value in section.items():
        key = str(raw_key).replace("-", "_")
        key = _ALIASES.get(key, key)
        if key in _IGNORED or value is None or value == [] or value == {} or value == "":
            continue
        if key not in _FIELDS:
            raise ProfileFileError(f"{where}: setting {raw_key!r} is not supported by optipoly")
        prof[key] = value
    kind = prof.get("profile") or (name if name in PROFILES else None)
    if kind is None:
        raise ProfileFileError(f"{where}: say which scheduler it is for with "
                               f"'profile: slurm' (one of {', '.join(PROFILES)})")
    prof["profile"] = kind
    if kind == ClusterKind.LOCAL:  # jobqueue keys of a copied default file mean nothing locally
        prof = {k: v for k, v in prof.items()
                if k in ("profile", "n_workers", "threads_per_worker")}
    try:
        ClusterProfile(**prof)
    except (ClusterConfigError, TypeError) as exc:
        raise ProfileFileError(f"{where}: {exc}") from None
    return prof


def profile_names(path: str | Path | None = None) -> list[str]:
    """Names of the profiles in the file (empty when there is none)."""
    return list(load_profile_file(path))


def named_profile(name: str, path: str | Path | None = None) -> dict:
    """The profile ``name`` of the owner's file; :class:`ProfileFileError` when missing."""
    path = Path(path) if path is not None else jobqueue_yaml_path()
    profiles = load_profile_file(path)
    if name not in profiles:
        have = ", ".join(sorted(profiles)) or "none"
        raise ProfileFileError(f"no cluster profile named {name!r} in {path} "
                               f"(profiles there: {have})")
    return profiles[name]


def check_profile_change(profile: Mapping[str, Any], *, allow_editing: bool,
                         preset: Any | None = None) -> dict:
    """The cluster setting to store for ``profile``, validated (against ``preset`` too).

    Always allowed: a reference ``{"name": NAME}`` to a profile of the owner's file, and the
    built-in local profile :data:`LOCAL_DEFAULT`.  Anything else is an inline profile, allowed
    only with ``allow_editing``; otherwise :class:`ProfileEditingDisabled` is raised."""
    if not isinstance(profile, Mapping):
        raise ClusterConfigError("the cluster profile must be a mapping")
    data = dict(profile)
    if is_profile_reference(data):
        validate_profile(data, preset)  # the name must exist in the file and be valid
        return {"name": str(data["name"])}
    if data == LOCAL_DEFAULT or data == {"profile": ClusterKind.LOCAL.value}:
        return dict(LOCAL_DEFAULT)
    if not allow_editing:
        raise ProfileEditingDisabled(
            f"editing cluster profiles from the dashboard is off (start it with "
            f"{PROFILE_EDITING_ENV}=1 to allow it); use a named profile of "
            f"{jobqueue_yaml_path()} instead")
    validate_profile(data, preset)
    return data


def save_cluster_profile(store: Any, campaign: Any, profile: Mapping[str, Any], *, actor: str,
                         allow_editing: bool | None = None) -> dict:
    """Store ``profile`` as the campaign's cluster setting if :func:`check_profile_change`
    allows it (``allow_editing`` defaults to :func:`profile_editing_allowed`); returns what
    was stored.  Nothing is written when it raises."""
    allow = profile_editing_allowed() if allow_editing is None else bool(allow_editing)
    cfg = store.get_campaign(campaign)["config"]
    new = check_profile_change(profile, allow_editing=allow, preset=cfg.get("preset"))
    store.update_config(campaign, {"cluster": new}, actor=actor)
    return new


def describe(cluster: Mapping[str, Any] | None) -> str:
    """One line for the dashboard: which profile a campaign uses and where it comes from."""
    cluster = dict(cluster or LOCAL_DEFAULT)
    if is_profile_reference(cluster):
        return f"named profile '{cluster['name']}' from {jobqueue_yaml_path()}"
    return f"inline {cluster.get('profile', 'local')} profile stored in the campaign"


if __name__ == "__main__":  # pragma: no cover - a quick look at the file
    print(json.dumps(load_profile_file(), indent=2))
