"""Step 4 (md): LAMMPS equilibration and NPT production → density with its standard error.

Schedule (all from the Preset): minimise → NVT heat 300 K → T_max at the packing density →
compression stages (NPT, high T/P) → equilibration stages (e.g. Larsen 21-step) → production NPT
at 300 K / 1 atm. Density = mean over the last ``production_average_ps`` with a block-averaging
standard error (Flyvbjerg & Petersen, J. Chem. Phys. 91, 461 (1989)); equilibrium checks: relative
density drift (relative to the mean density) and potential-energy drift (relative to the mean
kinetic energy) over that window (linear fits), up to
``max_extensions`` further production runs when they exceed ``drift_tolerance``.

LAMMPS runs through its Python module in a *child process* (``python -m core.simulation.md``), so
a crash (segfault, lost atoms) cannot take down the caller; its log lands in the work directory.
Units ``real``: fs, K, atm, Å, g/cm³, kcal/mol.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.simulation.errors import MDUnstable, StepTimeout
from core.simulation.lammps_data import DataFileInfo
from core.simulation.presets import Preset, Stage

__all__ = ["MDResult", "input_script", "run_lammps", "run_md", "block_standard_error",
           "relative_drift", "analyse_production"]

SAMPLE_HEADER = "# step time temp press pe etotal density"
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


def _production_lines(p: Preset, ps: float, sample_every: int, seq: int) -> list[str]:
    n = _steps(ps, p.timestep_fs)
    return [
        f"print 'STAGE production{seq} npt T=300 P=1 steps={n}'",
        f"fix int all npt temp 300.0 300.0 {p.t_damp_fs} iso 1.0 1.0 {p.p_damp_fs}",
        "variable tm equal time", "variable tp equal temp", "variable pr equal press",
        "variable ep equal pe", "variable et equal etotal",
        f"fix smp all print {sample_every} \"$(step) ${{tm}} ${{tp}} ${{pr}} ${{ep}} ${{et}} "
        f"${{rho}}\" append production.dat screen no",
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


def extension_script(p: Preset, info: DataFileInfo, seq: int) -> str:
    """Input continuing production from ``final.data`` (with velocities) for another production_ps."""
    thermo = max(1, _steps(p.thermo_every_ps, p.timestep_fs))
    lines = _header(p, "final.data", info) + [
        f"thermo {thermo}", f"timestep {p.timestep_fs}"] + _shake(info, p)
    lines += _production_lines(p, p.production_ps, thermo, seq)
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- running
def run_lammps(script: str, workdir: Path, *, name: str = "md", mpi_ranks: int = 1,
               omp_threads: int = 1, timeout: float | None = None) -> float:
    """Run ``script`` with LAMMPS in a child process in ``workdir``; returns wall seconds.

    Log: ``<name>.log`` (LAMMPS log) and ``<name>.out`` (stdout/stderr). Raises MDUnstable when
    LAMMPS stops with lost atoms / NaN / SHAKE failure, StepTimeout on timeout.
    """
    import time  # noqa: PLC0415

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
    t0 = time.perf_counter()
    with open(workdir / f"{name}.out", "w") as fh:
        try:
            rc = subprocess.run(cmd, cwd=workdir, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                timeout=timeout).returncode
        except subprocess.TimeoutExpired as exc:
            raise StepTimeout(f"The MD run '{name}' exceeded its wall-time limit of "
                              f"{timeout:.0f} s.", step="md") from exc
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


def _worker(argv: list[str]) -> int:
    """Child-process entry: run one LAMMPS input file through the Python module."""
    from core.simulation.env import import_lammps  # noqa: PLC0415

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


def _read_samples(path: Path) -> np.ndarray:
    rows = []
    if path.is_file():
        for ln in path.read_text().splitlines():
            if ln.strip() and not ln.startswith("#"):
                try:
                    rows.append([float(v) for v in ln.split()])
                except ValueError:
                    continue
    return np.array(rows).reshape(-1, 7)


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

    def stage(name: str, script_fn) -> float:
        """Run one LAMMPS job unless a previous attempt finished it (sub-step resume).

        After each finished job the sample file is snapshotted, so an interrupted later job
        restarts from the last finished one (final.data is only written at a job's end).
        """
        marker, snap = workdir / f"{name}.done.json", workdir / f"production.{name}.dat"
        if marker.is_file() and snap.is_file():
            shutil.copy(snap, workdir / "production.dat")
            say(f"{name}: finished earlier, reused")
            return float(json.loads(marker.read_text())["wall_s"])
        w = run_lammps(script_fn(), workdir, name=name, mpi_ranks=ranks, omp_threads=omp,
                       timeout=timeout)
        shutil.copy(workdir / "production.dat", snap)
        marker.write_text(json.dumps({"wall_s": w}))
        return w

    def fresh_main() -> str:
        (workdir / "production.dat").write_text(SAMPLE_HEADER + "\n")
        return input_script(p, info, seed=seed)

    wall = stage("md", fresh_main)
    total_steps = _total_steps(p)
    stats = analyse_production(_read_samples(workdir / "production.dat"), p)
    ext = 0
    while not stats["converged"] and ext < p.max_extensions:
        ext += 1
        say(f"not converged (density drift {stats['density_drift_rel']:+.3%}, energy drift "
            f"{stats['energy_drift_rel']:+.3%}); extension {ext}/{p.max_extensions}")
        wall += stage(f"md_ext{ext}", lambda k=ext: extension_script(p, info, k))
        total_steps += _steps(p.production_ps, p.timestep_fs)
        stats = analyse_production(_read_samples(workdir / "production.dat"), p)
    ns_day = total_steps * p.timestep_fs * 1e-6 / wall * 86400.0 if wall > 0 else float("nan")
    say(f"density {stats['density']:.4f} ± {stats['density_stderr']:.4f} g/cm³ "
        f"({'converged' if stats['converged'] else 'NOT converged'}), {ns_day:.1f} ns/day")
    return MDResult(extensions=ext, n_atoms=info.n_atoms, ns_per_day=float(ns_day), **stats)


def _total_steps(p: Preset) -> int:
    stages = [Stage("nvt", 300, p.t_max, 0, p.heat_time_ps)] + list(p.compress_stages) + list(
        p.equil_stages)
    return sum(_steps(s.time_ps, p.timestep_fs) for s in stages) + _steps(p.production_ps,
                                                                           p.timestep_fs)


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
