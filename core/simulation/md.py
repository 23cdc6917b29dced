"""Step 4 (md): LAMMPS equilibration and NPT production → density with its standard error.

Schedule (all from the Preset): minimise → NVT heat 300 K → T_max at the packing density →
compression stages (NPT, high T/P) → equilibration stages (e.g. Larsen 21-step) → production NPT
at 300 K / 1 atm. Density = mean over the last ``production_average_ps`` with a block-averaging
standard error (Flyvbjerg & Petersen, J. Chem. Phys. 91, 461 (1989)); equilibrium checks: relative
density drift (relative to the mean density) and potential-energy drift (relative to the mean
kinetic energy) over that window (linear fits), up to
``max_extensions`` further production runs when they exceed ``drift_tolerance``.

Optional cooling ladder (``Preset.ladder_temps``, its own LAMMPS job after the production, from
``final.data``): NPT heating to the first temperature, then NPT at each temperature (equilibrate,
sample V); ``core.simulation.dilatometry`` turns the mean specific volumes into Tg_sim and the
equilibrium-melt-line density at 300 K (``density_method="melt_line"`` makes it the result).

LAMMPS runs through its Python module in a *child process* (``python -m core.simulation.md``), so
a crash (segfault, lost atoms) cannot take down the caller; its log lands in the work directory.
While it runs, the log is followed: the fraction of the step's planned MD steps done (from the
``STAGE … steps=N`` lines and the thermo step counter) and an ETA go to the progress callback at
every new tenth, or after 5 quiet minutes (:class:`MDProgressReporter`).
Units ``real``: fs, K, atm, Å, g/cm³, kcal/mol.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.simulation.errors import MDUnstable, StepTimeout
from core.simulation.lammps_data import DataFileInfo
from core.simulation.presets import Preset, Stage

__all__ = ["MDResult", "input_script", "run_lammps", "run_md", "block_standard_error",
           "relative_drift", "analyse_production", "analyse_ladder", "schedule_stages",
           "LogProgress", "MDProgress", "MDProgressReporter", "md_eta_s"]

SAMPLE_HEADER = "# step time temp press pe etotal density"
LADDER_HEADER = "# T_set step time temp press pe etotal density"
UNSTABLE_PATTERNS = ("Lost atoms", "Out of range atoms", "Bond atoms missing", "Angle atoms missing",
                     "Dihedral atoms missing", "Non-numeric", "nan", "Shake atoms missing",
                     "Shake determinant", "Too many neighbor bins", "Bond/angle/dihedral extent")


@dataclass(frozen=True)
class MDResult:
    """Production statistics. density g/cm³; drifts are relative changes over the window."""

    density: float
    density_stderr: float
    density_drift_rel: float
    energy_drift_rel: float
    density_drift_stderr: float
    energy_drift_stderr: float
    n_samples: int
    window_ps: float
    converged: bool
    extensions: int
    n_atoms: int
    ns_per_day: float
    density_direct: float = float("nan")      # production mean at 300 K (the fast-quench glass)
    density_method: str = "direct"            # "direct" | "melt_line" (which one ``density`` is)
    melt_line: dict | None = None             # core.simulation.dilatometry.melt_line_from_ladder


def _steps(ps: float, dt_fs: float) -> int:
    return max(1, int(round(ps * 1000.0 / dt_fs)))


def _header(p: Preset, data_name: str, info: DataFileInfo) -> list[str]:
    return [
        "units real", "atom_style full", "boundary p p p",
        *((f"pair_style lj/cut/coul/long {p.lj_outer}", "pair_modify mix arithmetic tail yes")
          if p.lj_tail else (f"pair_style lj/charmm/coul/long {p.lj_inner} {p.lj_outer}",
                             "pair_modify mix arithmetic")), f"kspace_style pppm {p.pppm_accuracy:g}",
        "bond_style harmonic", "angle_style harmonic", "dihedral_style fourier",
        "improper_style cvff", "special_bonds amber",
        f"read_data {data_name}",
        "neighbor 2.0 bin", "neigh_modify delay 0 every 1 check yes",
        "variable rho equal density",
        "thermo_style custom step time temp press pe etotal density vol",
        "thermo_modify flush yes lost error",
    ]


def _shake(info: DataFileInfo, p: Preset) -> list[str]:
    if p.shake and info.shake_bond_types:
        types = " ".join(str(t) for t in info.shake_bond_types)
        return [f"fix shk all shake 1e-4 20 0 b {types}"]
    return []


def _stage_lines(st: Stage, p: Preset, tag: str) -> list[str]:
    n = _steps(st.time_ps, p.timestep_fs)
    td, pd = p.t_damp_fs, p.p_damp_fs
    if st.ensemble == "nvt":
        fix = f"fix int all nvt temp {st.t_start} {st.t_end} {td}"
    elif st.ensemble == "npt":
        fix = f"fix int all npt temp {st.t_start} {st.t_end} {td} iso {st.p_atm} {st.p_atm} {pd}"
    else:
        raise ValueError(f"Unknown ensemble {st.ensemble!r}")
    return [f"print 'STAGE {tag} {st.name} {st.ensemble} T={st.t_start}->{st.t_end} P={st.p_atm} "
            f"steps={n}'", fix, f"run {n}", "unfix int"]


def _sampler(fix_id: str, every: int, path: str, *, prefix: str = "") -> list[str]:
    """``fix print`` appending ``prefix`` + step, time, T, P, PE, E_total, density to ``path``."""
    return ["variable tm equal time", "variable tp equal temp", "variable pr equal press",
            "variable ep equal pe", "variable et equal etotal",
            f"fix {fix_id} all print {every} \"{prefix}$(step) ${{tm}} ${{tp}} ${{pr}} ${{ep}} "
            f"${{et}} ${{rho}}\" append {path} screen no"]


def _ladder_lines(p: Preset, sample_every: int) -> list[str]:
    """NPT cooling ladder at 1 atm: equilibrate, then sample into ``ladder.dat`` at each T (K)."""
    out = []
    for k, t in enumerate(p.ladder_temps):
        n_eq, n_s = _steps(p.ladder_equil_ps, p.timestep_fs), _steps(p.ladder_sample_ps,
                                                                       p.timestep_fs)
        out += [f"print 'STAGE ladder{k + 1} npt T={t} P=1 steps={n_eq + n_s}'",
                f"fix int all npt temp {t} {t} {p.t_damp_fs} iso 1.0 1.0 {p.p_damp_fs}",
                f"run {n_eq}",
                *_sampler("lad", sample_every, "ladder.dat", prefix=f"{t} "),
                f"run {n_s}", "unfix lad", "unfix int"]
    return out


def _production_lines(p: Preset, ps: float, sample_every: int, seq: int) -> list[str]:
    n = _steps(ps, p.timestep_fs)
    return [
        f"print 'STAGE production{seq} npt T=300 P=1 steps={n}'",
        f"fix int all npt temp 300.0 300.0 {p.t_damp_fs} iso 1.0 1.0 {p.p_damp_fs}",
        *_sampler("smp", sample_every, "production.dat"),
        f"run {n}", "unfix smp", "unfix int", "write_data final.data",
    ]


def input_script(p: Preset, info: DataFileInfo, *, seed: int = 4928459) -> str:
    """LAMMPS input for the whole schedule from the data file ``system.data`` (see module doc)."""
    dt = p.timestep_fs
    thermo = max(1, _steps(p.thermo_every_ps, dt))
    lines = _header(p, "system.data", info) + [
        f"thermo {thermo}",
        "print 'STAGE minimise'",
        f"minimize 1.0e-4 1.0e-6 {p.minimise_steps} {10 * p.minimise_steps}",
        "reset_timestep 0", f"timestep {dt}",
        f"velocity all create 300.0 {seed} mom yes rot yes dist gaussian",
    ] + _shake(info, p)
    lines += _stage_lines(Stage("nvt", 300.0, p.t_max, 0.0, p.heat_time_ps, "heat"), p, "heat")
    for i, st in enumerate(p.compress_stages):
        lines += _stage_lines(st, p, f"compress{i + 1}")
    for i, st in enumerate(p.equil_stages):
        lines += _stage_lines(st, p, f"equil{i + 1}")
    lines += ["write_data equilibrated.data"]
    lines += _production_lines(p, p.production_ps, thermo, 0)
    return "\n".join(lines) + "\n"


def ladder_script(p: Preset, info: DataFileInfo) -> str:
    """Input for the cooling ladder after production (from ``final.data``): NPT heating 300 K →
    the first ladder temperature over ``ladder_heat_ps``, then the ladder (``_ladder_lines``)."""
    thermo = max(1, _steps(p.thermo_every_ps, p.timestep_fs))
    lines = _header(p, "final.data", info) + [
        f"thermo {thermo}", f"timestep {p.timestep_fs}"] + _shake(info, p)
    lines += _stage_lines(Stage("npt", 300.0, p.ladder_temps[0], 1.0, p.ladder_heat_ps,
                                "ladder-heat"), p, "ladder0")
    lines += _ladder_lines(p, thermo)
    return "\n".join(lines) + "\n"


def extension_script(p: Preset, info: DataFileInfo, seq: int) -> str:
    """Input continuing production from ``final.data`` (with velocities) for another production_ps."""
    thermo = max(1, _steps(p.thermo_every_ps, p.timestep_fs))
    lines = _header(p, "final.data", info) + [
        f"thermo {thermo}", f"timestep {p.timestep_fs}"] + _shake(info, p)
    lines += _production_lines(p, p.production_ps, thermo, seq)
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- progress
_STAGE_STEPS = re.compile(r"^STAGE (\S+)\b.*\bsteps=(\d+)")


def schedule_stages(script: str) -> list[tuple[str, int]]:
    """``(tag, MD steps)`` of every ``print 'STAGE … steps=N'`` of a LAMMPS input of this module,
    in order (the minimisation has no MD steps and is left out)."""
    out = []
    for ln in script.splitlines():
        body = ln.strip()
        if body.startswith("print '"):
            m = _STAGE_STEPS.match(body[len("print '"):])
            if m:
                out.append((m.group(1), int(m.group(2))))
    return out


class LogProgress:
    """MD steps done so far, read from the LAMMPS log of one of this module's scripts.

    Feed it the log text as it grows (:meth:`feed`, any chunking): a ``STAGE <tag> … steps=N``
    line opens a stage of N steps, the thermo rows after it give the LAMMPS step counter (it
    runs on across the ``run`` commands of a job); a stage counts ``last - first`` thermo step
    while it runs and all its N steps once the next stage starts.  Steps of the minimisation
    (its iterations) do not count.  A trailing line without its newline waits for the rest.
    """

    def __init__(self) -> None:
        self._pending = ""
        self._finished = 0                      # MD steps of the stages already over
        self._stage: list | None = None         # [tag, steps, first thermo step, last one]
        self._in_thermo = False

    def feed(self, text: str) -> None:
        """Parse more of the log (``text`` continues what was fed before)."""
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        for ln in lines:
            self._line(ln)

    def _line(self, ln: str) -> None:
        if ln.startswith("STAGE "):
            if self._stage is not None:
                self._finished += self._stage[1]
            m = _STAGE_STEPS.match(ln)
            self._stage = [m.group(1), int(m.group(2)), None, None] if m else None
            self._in_thermo = False
            return
        tok = ln.split()
        if tok and tok[0] == "Step":
            self._in_thermo = True
        elif ln.startswith("Loop time"):
            self._in_thermo = False
        elif self._in_thermo and self._stage is not None and tok and tok[0].isdigit():
            step = int(tok[0])
            if self._stage[2] is None:
                self._stage[2] = step
            self._stage[3] = step

    @property
    def steps_done(self) -> int:
        """MD steps done in this job (the running stage's capped at its length)."""
        st = self._stage
        if st is None or st[2] is None:
            return self._finished
        return self._finished + min(st[1], max(0, st[3] - st[2]))

    @property
    def stage(self) -> str | None:
        """Tag of the running stage (``heat``, ``equil3``, ``production0``, ``ladder2``…)."""
        return self._stage[0] if self._stage else None


def md_eta_s(elapsed_s: float, steps_done: int, steps_left: int) -> float | None:
    """Seconds left for ``steps_left`` MD steps at the rate of this job so far (``steps_done`` in
    ``elapsed_s`` wall seconds, set-up and minimisation included); None before the first step."""
    if steps_done <= 0 or elapsed_s <= 0:
        return None
    return max(0, steps_left) * elapsed_s / steps_done


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 05 min`` (seconds in)."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(round(seconds / 60.0))
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


@dataclass(frozen=True)
class MDProgress:
    """Where the MD step stands. Steps are LAMMPS MD steps of the whole step (all its jobs)."""

    steps_done: int
    steps_total: int
    stage: str | None
    eta_s: float | None          # wall seconds left, None while unknown

    @property
    def fraction(self) -> float:
        """Fraction of the planned MD steps done, 0…1."""
        return min(1.0, self.steps_done / self.steps_total) if self.steps_total > 0 else 0.0

    def message(self) -> str:
        """One log line: ``MD 40 % (12000 of 30000 steps, equil3), about 3 min left``."""
        where = f", {self.stage}" if self.stage else ""
        eta = f", about {_duration(self.eta_s)} left" if self.eta_s is not None else ""
        return (f"MD {self.fraction:.0%} ({self.steps_done} of {self.steps_total} steps"
                f"{where}){eta}")


class MDProgressReporter:
    """Reads a growing LAMMPS log and tells ``say`` the fraction done and an ETA, when a new
    ``every_fraction`` of the planned steps is done or ``every_s`` seconds passed with progress.

    ``steps_before``: MD steps of the step's earlier jobs; ``steps_total``: all planned MD steps
    of the step (``_total_steps`` + ``_ladder_steps`` + extensions so far).
    """

    def __init__(self, say: Callable[[str], None], log_path: Path, *, steps_before: int,
                 steps_total: int, every_fraction: float = 0.1, every_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.say, self.log_path, self.clock = say, Path(log_path), clock
        self.steps_before, self.steps_total = int(steps_before), int(steps_total)
        self.every_fraction, self.every_s = float(every_fraction), float(every_s)
        self._log, self._offset = LogProgress(), 0
        self._t0 = clock()
        self._last_t, self._last_done = self._t0, 0
        self._last_bin = int(self._fraction(0) / self.every_fraction + 1e-9)

    def _fraction(self, done_job: int) -> float:
        return min(1.0, (self.steps_before + done_job) / max(1, self.steps_total))

    def _read(self) -> None:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except OSError:
            return
        self._offset += len(chunk)
        self._log.feed(chunk.decode("utf-8", errors="replace"))

    def current(self) -> MDProgress:
        """Progress now (reads what the log gained since the last call)."""
        self._read()
        done = self._log.steps_done
        total_done = self.steps_before + done
        eta = md_eta_s(self.clock() - self._t0, done, self.steps_total - total_done)
        return MDProgress(total_done, self.steps_total, self._log.stage, eta)

    def poll(self) -> MDProgress | None:
        """Read the log; say and return the progress when a report is due, else None."""
        prog = self.current()
        done, now = self._log.steps_done, self.clock()
        k = int(prog.fraction / self.every_fraction + 1e-9)
        if done > self._last_done and (k > self._last_bin or now - self._last_t >= self.every_s):
            self._last_bin, self._last_t, self._last_done = k, now, done
            self.say(prog.message())
            return prog
        return None


# ----------------------------------------------------------------------------- running
def run_lammps(script: str, workdir: Path, *, name: str = "md", mpi_ranks: int = 1,
               omp_threads: int = 1, timeout: float | None = None,
               progress: Callable[[str], None] | None = None, steps_before: int = 0,
               steps_total: int | None = None, poll_s: float = 2.0) -> float:
    """Run ``script`` with LAMMPS in a child process in ``workdir``; returns wall seconds.

    Log: ``<name>.log`` (LAMMPS log) and ``<name>.out`` (stdout/stderr). Raises MDUnstable when
    LAMMPS stops with lost atoms / NaN / SHAKE failure, StepTimeout on timeout (s).
    ``progress``: told the fraction done and an ETA while LAMMPS runs
    (:class:`MDProgressReporter`, the log read every ``poll_s`` s); ``steps_before`` /
    ``steps_total``: MD steps of the earlier jobs of the step / of the whole step (default:
    this script's ``STAGE`` steps alone).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"{name}.in").write_text(script)
    cmd = [sys.executable, "-m", "core.simulation.md", f"{name}.in", f"{name}.log",
           str(omp_threads)]
    if mpi_ranks > 1:
        from core.simulation.env import which  # noqa: PLC0415
        cmd = [which("mpirun"), "-np", str(mpi_ranks)] + cmd
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(omp_threads)
    repo = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env[WATCH_ENV] = str(os.getpid())
    lock = _exclusive_lammps_lock(workdir)
    reporter = None
    if progress is not None:
        total = steps_total if steps_total is not None else sum(
            n for _, n in schedule_stages(script)) + steps_before
        (workdir / f"{name}.log").unlink(missing_ok=True)  # never read a dead attempt's log
        reporter = MDProgressReporter(progress, workdir / f"{name}.log",
                                      steps_before=steps_before, steps_total=total)
    t0 = time.perf_counter()
    try:
        with open(workdir / f"{name}.out", "w") as fh:
            # own process group (killed as a whole), the lock fd inherited: a rerun waits until
            # this LAMMPS is really gone; the child also exits when this process dies
            # (_watch_parent)
            proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=fh,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, pass_fds=(lock.fileno(),))
            try:
                rc = _wait_reporting(proc, timeout, poll_s, reporter)
            except subprocess.TimeoutExpired as exc:
                _kill_group(proc)
                raise StepTimeout(f"The MD run '{name}' exceeded its wall-time limit of "
                                  f"{timeout:.0f} s.", step="md") from exc
            finally:
                if proc.poll() is None:  # interrupted (cancel, KeyboardInterrupt, error)
                    _kill_group(proc)
    finally:
        lock.close()
    wall = time.perf_counter() - t0
    if rc != 0:
        text = ""
        for f in (workdir / f"{name}.out", workdir / f"{name}.log"):
            if f.is_file():
                text += f.read_text(errors="replace")[-3000:]
        last_stage = [ln for ln in text.splitlines() if ln.startswith("STAGE")]
        where = f" during {last_stage[-1][6:]}" if last_stage else ""
        err = [ln for ln in text.splitlines() if "ERROR" in ln]
        msg = err[-1].strip() if err else text.strip().splitlines()[-1:] or ["(no output)"]
        if any(pat.lower() in text.lower() for pat in UNSTABLE_PATTERNS) or rc < 0:
            raise MDUnstable(
                f"The MD simulation became unstable{where} (LAMMPS: {msg}). The structure "
                "probably had overlapping atoms or a force-field problem; see "
                f"{workdir / (name + '.log')}.", step="md")
        from core.simulation.errors import ExternalProgramError  # noqa: PLC0415
        raise ExternalProgramError(f"LAMMPS stopped with exit code {rc}{where}: {msg}", step="md")
    return wall


def _wait_reporting(proc: subprocess.Popen, timeout: float | None, poll_s: float,
                    reporter: MDProgressReporter | None) -> int:
    """``proc.wait(timeout)`` (s) that polls ``reporter`` every ``poll_s`` s meanwhile; raises
    ``subprocess.TimeoutExpired`` like ``wait``.  A log that cannot be parsed stops nothing;
    an exception of the progress callback (a cancel) propagates."""
    if reporter is None:
        return proc.wait(timeout=timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        try:
            return proc.wait(timeout=poll_s if left is None else max(0.0, min(poll_s, left)))
        except subprocess.TimeoutExpired:
            if left is not None and left <= poll_s:
                raise
        reporter.poll()


WATCH_ENV = "OPTIPOLY_MD_PARENT_PID"


def _exclusive_lammps_lock(workdir: Path, wait_s: float = 30.0):
    """Exclusive lock on ``workdir/.lammps.lock``, waiting up to ``wait_s`` for a LAMMPS of an
    earlier, killed attempt to exit (it holds the lock until it is gone)."""
    from core.simulation.env import exclusive_lock  # noqa: PLC0415

    return exclusive_lock(workdir / ".lammps.lock", f"A LAMMPS process of an earlier attempt "
                          f"still runs in {workdir}; it was not started twice.", wait_s=wait_s,
                          step="md")


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the child's whole process group (mpirun and its ranks included) and reap it."""
    import signal  # noqa: PLC0415

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _watch_parent(pid: int, every_s: float = 1.0) -> None:
    """Daemon thread in the LAMMPS child: exit at once when the launching process is gone, so a
    ``kill -9`` of the pipeline (or a cancelled calculation) never leaves LAMMPS running."""
    import threading  # noqa: PLC0415
    import time  # noqa: PLC0415

    def loop():
        while True:
            time.sleep(every_s)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(137)
            except PermissionError:
                pass

    threading.Thread(target=loop, daemon=True, name="parent-watch").start()


def _worker(argv: list[str]) -> int:
    """Child-process entry: run one LAMMPS input file through the Python module."""
    from core.simulation.env import import_lammps  # noqa: PLC0415

    if os.environ.get(WATCH_ENV, "").isdigit():
        _watch_parent(int(os.environ[WATCH_ENV]))

    infile, logfile, omp = argv[0], argv[1], int(argv[2]) if len(argv) > 2 else 1
    lammps = import_lammps()
    args = ["-log", logfile, "-echo", "none", "-screen", "none", "-nocite"]
    if omp > 1:
        args += ["-sf", "omp", "-pk", "omp", str(omp)]
    lmp = lammps.lammps(cmdargs=args)
    try:
        lmp.file(infile)
    finally:
        lmp.close()
    return 0


# ----------------------------------------------------------------------------- analysis
def block_standard_error(x: np.ndarray) -> float:
    """Standard error of the mean of a correlated series by blocking (Flyvbjerg–Petersen).

    Repeatedly averages neighbouring pairs; returns the largest error estimate among levels that
    keep at least 8 blocks (a conservative plateau estimate).
    """
    x = np.asarray(x, float)
    if len(x) < 2:
        return float("nan")
    best = x.std(ddof=1) / math.sqrt(len(x))
    while len(x) >= 16:
        x = 0.5 * (x[: len(x) // 2 * 2: 2] + x[1: len(x) // 2 * 2: 2])
        best = max(best, x.std(ddof=1) / math.sqrt(len(x)))
    return float(best)


def relative_drift(t: np.ndarray, y: np.ndarray) -> float:
    """Linear-fit change of y over the window, divided by |mean y| (dimensionless)."""
    if len(t) < 3:
        return float("nan")
    slope = np.polyfit(t, y, 1)[0]
    return float(slope * (t[-1] - t[0]) / abs(np.mean(y)))


def drift_uncertainty(t: np.ndarray, y: np.ndarray) -> float:
    """Standard error of ``relative_drift`` for a correlated series.

    Ordinary least-squares slope error inflated by the statistical inefficiency
    g = (blocked SE / naive SE)² of the residuals.
    """
    t, y = np.asarray(t, float), np.asarray(y, float)
    if len(t) < 4:
        return float("inf")
    coef = np.polyfit(t, y, 1)
    res = y - np.polyval(coef, t)
    naive = res.std(ddof=2) / math.sqrt(len(res))
    g = (block_standard_error(res) / naive) ** 2 if naive > 0 else 1.0
    se_slope = res.std(ddof=2) / math.sqrt(((t - t.mean()) ** 2).sum()) * math.sqrt(max(g, 1.0))
    return float(se_slope * (t[-1] - t[0]) / abs(np.mean(y)))


def _read_samples(path: Path, ncol: int = 7) -> np.ndarray:
    rows = []
    if path.is_file():
        for ln in path.read_text().splitlines():
            if ln.strip() and not ln.startswith("#"):
                try:
                    rows.append([float(v) for v in ln.split()])
                except ValueError:
                    continue
    return np.array([r for r in rows if len(r) == ncol]).reshape(-1, ncol)


def analyse_production(samples: np.ndarray, p: Preset) -> dict:
    """Density mean/stderr and drifts over the last production_average_ps of ``samples``.

    ``samples`` columns: step, time (fs), T, P, PE, E_total, density.
    """
    if len(samples) < 3:
        raise MDUnstable("The production run produced fewer than 3 samples.", step="md")
    if not np.all(np.isfinite(samples)):
        raise MDUnstable("The production run produced non-numeric (NaN) energies.", step="md")
    t_ps = samples[:, 1] / 1000.0
    win = samples[t_ps >= t_ps[-1] - p.production_average_ps]
    rho = win[:, 6]
    mean = float(rho.mean())
    if not 0.3 < mean < 4.0:
        raise MDUnstable(f"The production density {mean:.3f} g/cm³ is unphysical; the cell "
                         "did not condense or blew up.", step="md")
    tw = win[:, 1] / 1000.0
    d_drift = relative_drift(tw, rho)
    # potential-energy drift relative to the mean kinetic energy (PE itself can be near zero)
    pe, ke = win[:, 4], win[:, 5] - win[:, 4]
    scale = abs(float(np.mean(pe))) / max(abs(float(np.mean(ke))), 1e-12)
    e_drift = relative_drift(tw, pe) * scale
    d_unc, e_unc = drift_uncertainty(tw, rho), drift_uncertainty(tw, pe) * scale
    tol = p.drift_tolerance
    return {"density": mean, "density_stderr": block_standard_error(rho),
            "density_drift_rel": d_drift, "energy_drift_rel": e_drift, "n_samples": int(len(rho)),
            "window_ps": float(win[-1, 1] - win[0, 1]) / 1000.0,
            "density_drift_stderr": d_unc, "energy_drift_stderr": e_unc,
            # converged: drift within tolerance, or statistically indistinguishable from zero
            "converged": bool((abs(d_drift) <= tol or abs(d_drift) <= 2 * d_unc)
                              and (abs(e_drift) <= tol or abs(e_drift) <= 2 * e_unc))}


def run_md(info: DataFileInfo, workdir: Path, p: Preset, *, threads: int | None = None,
           progress=None, seed: int = 4928459) -> MDResult:
    """Run the preset's MD schedule on ``workdir/system.data``; returns the production statistics."""
    omp = int(threads) if threads else p.omp_threads
    ranks = p.mpi_ranks
    say = progress or (lambda msg: None)
    timeout = p.timeouts.get("md")
    say(f"LAMMPS: {info.n_atoms} atoms, box {info.box:.1f} Å, {ranks} rank(s) × {omp} thread(s)")

    def stage(name: str, script_fn, steps_before: int = 0) -> float:
        """Run one LAMMPS job unless a previous attempt finished it (sub-step resume).

        After each finished job the sample file is snapshotted, so an interrupted later job
        restarts from the last finished one (final.data is only written at a job's end).
        """
        marker, snap = workdir / f"{name}.done.json", workdir / f"production.{name}.dat"
        if marker.is_file() and snap.is_file():
            shutil.copy(snap, workdir / "production.dat")
            say(f"{name}: finished earlier, reused")
            last_snap[0] = snap
            return float(json.loads(marker.read_text())["wall_s"])
        if last_snap[0] is not None:
            # never append to the output of a dead attempt: start from the last finished job's
            shutil.copy(last_snap[0], workdir / "production.dat")
        w = run_lammps(script_fn(), workdir, name=name, mpi_ranks=ranks, omp_threads=omp,
                       timeout=timeout, progress=progress, steps_before=steps_before,
                       steps_total=planned[0])
        shutil.copy(workdir / "production.dat", snap)
        marker.write_text(json.dumps({"wall_s": w}))
        last_snap[0] = snap
        return w

    last_snap: list[Path | None] = [None]
    planned = [_total_steps(p) + _ladder_steps(p)]  # MD steps of the step, for its progress

    def fresh_main() -> str:
        # a rerun of the main job starts its sample file afresh: never append to a dead attempt's
        (workdir / "production.dat").write_text(SAMPLE_HEADER + "\n")
        return input_script(p, info, seed=seed)

    def fresh_ladder() -> str:
        (workdir / "ladder.dat").write_text(LADDER_HEADER + "\n")
        return ladder_script(p, info)

    wall = stage("md", fresh_main)
    total_steps = _total_steps(p)
    stats = analyse_production(_read_samples(workdir / "production.dat"), p)
    ext = 0
    while not stats["converged"] and ext < p.max_extensions:
        ext += 1
        say(f"not converged (density drift {stats['density_drift_rel']:+.3%}, energy drift "
            f"{stats['energy_drift_rel']:+.3%}); extension {ext}/{p.max_extensions}")
        planned[0] += _steps(p.production_ps, p.timestep_fs)
        wall += stage(f"md_ext{ext}", lambda k=ext: extension_script(p, info, k), total_steps)
        total_steps += _steps(p.production_ps, p.timestep_fs)
        stats = analyse_production(_read_samples(workdir / "production.dat"), p)
    say(f"300 K production density {stats['density']:.4f} ± {stats['density_stderr']:.4f} g/cm³ "
        f"({'converged' if stats['converged'] else 'NOT converged'})")
    melt = None
    if p.ladder_temps:
        say(f"cooling ladder {p.ladder_temps[0]:.0f} → {p.ladder_temps[-1]:.0f} K in "
            f"{len(p.ladder_temps)} NPT steps (Tg and the melt line)")
        wall += stage("ladder", fresh_ladder, total_steps)
        total_steps += _ladder_steps(p)
        try:
            melt = analyse_ladder(_read_samples(workdir / "ladder.dat", 8), p)
        except MDUnstable as exc:
            if p.density_method == "melt_line":
                raise
            # the ladder only adds Tg_sim / the melt line beside the direct density here
            melt = {"error": str(exc), "tg_sim_K": None}
            say(f"warning: {exc}")
        else:
            say(f"cooling ladder: Tg_sim {melt['tg_sim_K']:.0f} ± {melt['tg_sim_stderr_K']:.0f} "
                f"K; melt-line density at 300 K {melt['density']:.4f} ± "
                f"{melt['density_stderr']:.4f} g/cm³ (α_l {melt['alpha_melt_per_K']:.2e}/K from "
                f"{melt['n_melt_points']} points)")
    ns_day = total_steps * p.timestep_fs * 1e-6 / wall * 86400.0 if wall > 0 else float("nan")
    say(f"{ns_day:.1f} ns/day over {total_steps * p.timestep_fs * 1e-3:.0f} ps of MD")
    direct = stats["density"]
    if p.density_method == "melt_line":
        if not melt.get("reliable"):
            raise MDUnstable(
                f"The cooling ladder is too noisy for a melt-line density (±"
                f"{melt['density_stderr']:.3f} g/cm³, Tg_sim ±{melt['tg_sim_stderr_K']:.0f} K); "
                "use a larger cell or longer ladder steps.", step="md")
        stats = {**stats, "density": melt["density"], "density_stderr": melt["density_stderr"]}
    return MDResult(extensions=ext, n_atoms=info.n_atoms, ns_per_day=float(ns_day),
                    density_direct=float(direct), density_method=p.density_method,
                    melt_line=melt, **stats)


def analyse_ladder(rows: np.ndarray, p: Preset) -> dict:
    """Tg_sim and the melt-line density at 300 K from the cooling-ladder samples (dilatometry)."""
    from core.simulation.dilatometry import ladder_means, melt_line_from_ladder  # noqa: PLC0415

    if len(rows) == 0 or not np.all(np.isfinite(rows)):
        raise MDUnstable("The cooling ladder produced no usable samples.", step="md")
    t_set, v, se = ladder_means(rows)
    if len(t_set) != len(p.ladder_temps):
        raise MDUnstable(f"The cooling ladder sampled {len(t_set)} of {len(p.ladder_temps)} "
                         "temperatures.", step="md")
    try:
        return melt_line_from_ladder(t_set, v, se, tg_shift_k=p.tg_shift_k)
    except ValueError as exc:
        raise MDUnstable(f"The cooling ladder could not be analysed: {exc}", step="md") from None


def _total_steps(p: Preset) -> int:
    stages = [Stage("nvt", 300, p.t_max, 0, p.heat_time_ps)] + list(p.compress_stages) + list(
        p.equil_stages)
    return sum(_steps(s.time_ps, p.timestep_fs) for s in stages) + _steps(p.production_ps,
                                                                           p.timestep_fs)


def _ladder_steps(p: Preset) -> int:
    if not p.ladder_temps:
        return 0
    return _steps(p.ladder_heat_ps, p.timestep_fs) + len(p.ladder_temps) * (
        _steps(p.ladder_equil_ps, p.timestep_fs) + _steps(p.ladder_sample_ps, p.timestep_fs))


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
