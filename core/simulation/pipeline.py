"""The simulation oracle: polymer SMILES → MD density + QM polarisabilities → n_F, n_D, n_C, ν_D.

``run_pipeline`` runs the six STEPS, each writing its outputs into ``workdir/<step>/`` and, last,
an atomic ``workdir/<step>/done.json``. A rerun on the same work directory resumes after the last
finished step (a step without ``done.json`` is cleared and redone, with the steps that use its
outputs, ``DEPENDS_ON``). The QM step needs only the SMILES, but it starts only after the cheap
steps build → forcefield → cell have succeeded (``QM_AFTER``), so that a polymer that cannot be
built, typed or packed fails in seconds instead of after minutes of QM; with ``threads >= 2`` it
then runs in a thread beside the MD, the cores split between PySCF and LAMMPS.
Failures raise the classes of ``core.simulation.errors``; no number is produced for a failed step.

Optics (step ``optics``): Lorentz–Lorenz per wavelength, (n²−1)/(n²+2) = (4π/3) N_A ρ α / M with
α in Å³ (×1e-24 cm³), ρ the MD density (g/cm³) and M the repeat-unit molar mass (g/mol, no end
groups); ν_D = (n_D − 1)/(n_F − n_C)  (core.optics).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from rdkit import Chem

from core.atomic_io import atomic_write_json
from core.simulation.errors import BuildError, MDUnstable, SimulationError
from core.simulation.presets import Preset, get_preset

__all__ = ["STEPS", "WAVELENGTHS_NM", "run_pipeline", "default_workdir", "WorkdirMismatch",
           "read_record"]

STEPS = ("build", "forcefield", "cell", "md", "qm", "optics")
WAVELENGTHS_NM = {"F": 486.13, "D": 589.29, "C": 656.27}
# steps that resume from their own finished sub-steps (LAMMPS jobs, cached QM molecules);
# every other unfinished step is cleared and redone
RESUMABLE_INSIDE = ("md", "qm")
OURS_VERSION = "0.1.0"


def _write_json(path: Path, obj) -> None:
    atomic_write_json(path, obj, indent=1, sort_keys=True)


class WorkdirMismatch(ValueError):
    """The work directory already holds a calculation for another polymer or preset."""


def _canonical(psmiles: str) -> str:
    try:
        from core.chem.polymer import canonical_psmiles  # noqa: PLC0415
        return canonical_psmiles(psmiles)
    except ImportError:  # pragma: no cover - core.polymer ships with the package
        return Chem.MolToSmiles(Chem.MolFromSmiles(psmiles))


STEP_SETTINGS = {
    "build": ("chain_atoms", "n_chains", "min_dp", "chain_topology"),
    "forcefield": ("forcefield", "charge_oligomer_n", "sqm_maxcyc_sulfur"),
    "cell": ("pack_density", "pack_tolerance", "lj_epsilon_scale"),
    "md": ("timestep_fs", "shake", "lj_inner", "lj_outer", "lj_tail", "pppm_accuracy",
           "t_damp_fs", "p_damp_fs", "minimise_steps", "heat_time_ps", "t_max",
           "compress_stages", "equil_stages", "production_ps", "production_average_ps",
           "thermo_every_ps", "max_extensions", "drift_tolerance", "ladder_temps",
           "ladder_heat_ps", "ladder_equil_ps", "ladder_sample_ps", "density_method", "tg_shift_k"),
    "qm": ("qm_method", "qm_basis", "qm_mode", "qm_optimise", "qm_density_fit",
           "qm_grid_level"),
    "optics": (),
}


# settings added after work directories existed: at this value they are left out of the hash, so
# the finished steps of those directories stay valid
_LATER_SETTINGS = {"chain_topology": "linear"}


def step_fingerprint(p: Preset, step: str) -> str:
    """Hash of the preset settings a step depends on; a changed hash makes a rerun redo it."""
    d = p.to_dict()
    blob = json.dumps({k: d[k] for k in STEP_SETTINGS[step]
                       if k not in _LATER_SETTINGS or d[k] != _LATER_SETTINGS[k]},
                      sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "build": (), "forcefield": ("build",), "cell": ("build", "forcefield"), "md": ("cell",),
    "qm": (),  # the repeat unit's polarisability needs only the SMILES
    "optics": ("build", "md", "qm"),
}


# not data dependencies (a changed cell does not redo QM) but order: QM is the expensive step
# of most units and never starts before the cheap steps showed the polymer can be simulated
QM_AFTER: tuple[str, ...] = ("build", "forcefield", "cell")


def dependents(step: str) -> list[str]:
    """``step`` and every step that uses its outputs, directly or indirectly (in STEPS order)."""
    out = {step}
    changed = True
    while changed:
        changed = False
        for s, deps in DEPENDS_ON.items():
            if s not in out and out.intersection(deps):
                out.add(s)
                changed = True
    return [s for s in STEPS if s in out]


def _clear(wd: Path, steps: list[str]) -> None:
    for s in steps:
        try:
            shutil.rmtree(wd / s)
        except FileNotFoundError:  # absent, or removed meanwhile by the concurrent QM thread
            pass


def _prev_done(wd: Path, step: str) -> bool:
    """True when every step that ``step`` depends on (transitively) has its done marker."""
    need, todo = set(), list(DEPENDS_ON[step])
    while todo:
        s = todo.pop()
        if s not in need:
            need.add(s)
            todo.extend(DEPENDS_ON[s])
    return all((wd / s / "done.json").is_file() for s in need)


def default_workdir(psmiles: str, preset: str | Preset = "quick") -> Path:
    """``./sim_runs/<sha1(canonical psmiles)[:12]>-<preset>[-<force field>]`` (deterministic per
    polymer; GAFF2, the default force field, adds no suffix)."""
    p = get_preset(preset)
    key = hashlib.sha1(_canonical(psmiles).encode()).hexdigest()[:12]
    ff = "" if p.forcefield == "gaff2" else f"-{p.forcefield}"
    return Path.cwd() / "sim_runs" / f"{key}-{p.name}{ff}"


def read_record(workdir: str | Path) -> dict | None:
    """The result record of a finished calculation in ``workdir`` (None if not finished)."""
    f = Path(workdir) / "record.json"
    return json.loads(f.read_text()) if f.is_file() else None


# ----------------------------------------------------------------------------- steps
def _result(wd: Path, step: str) -> dict:
    return json.loads((wd / step / "done.json").read_text())["result"]


def _step_build(psmiles: str, p: Preset, d: Path, say) -> dict:
    from core.simulation.build import atom_key, build_chain, choose_dp, repeat_unit_mass  # noqa
    from core.simulation.ring import RingClosureError, close_ring  # noqa: PLC0415

    dp = choose_dp(psmiles, p.chain_atoms, p.min_dp)
    keys, bonds, methods = None, None, []
    # the preset's build limit (s, wall) bounds every embedding attempt of the step, so a
    # polymer RDKit cannot embed (an anti-Bredt bicycle) fails in minutes, not in tens of them
    limit = float(p.timeouts.get("build", 600))
    deadline = time.monotonic() + limit
    templates: dict = {}  # growth templates, embedded once for all chains
    chains = []
    for i in range(p.n_chains):
        # once ETKDG failed on a chain, the others (same length) grow at once: each failed
        # ETKDG attempt runs into its timeout (polyacrylonitrile: 60 s per attempt)
        try:
            # whole-chain ETKDG gets at most half the limit: growth needs the rest
            ch = build_chain(psmiles, dp, seed=i + 1, deadline=deadline, templates=templates,
                             embed_budget_s=min(120.0, limit / 2),
                             etkdg=not methods or methods[-1] == "etkdg")
        except BuildError as exc:
            if time.monotonic() >= deadline:
                raise BuildError(f"{exc} The build step stopped at its limit of {limit:.0f} s "
                                 f"(preset {p.name!r}, timeouts['build']).") from exc
            raise
        methods.append(ch.method)
        if ch.method != "etkdg":
            say(f"chain {i}: grown unit by unit ({ch.method}; ETKDG failed or the chain is long)")
        chains.append(ch)
    topology, ring_failure = "linear", None
    if p.chain_topology == "ring":
        rings = []
        try:
            for ch in chains:
                rings.append(close_ring(ch, deadline=deadline))
            chains, topology = rings, "ring"
        except RingClosureError as exc:
            ring_failure = str(exc)
            say(f"warning: chain {len(rings)} could not be closed into a ring ({exc}); the cell "
                "keeps linear CH3-capped chains")
    for i, ch in enumerate(chains):
        k = [list(atom_key(a, dp)) for a in ch.mol.GetAtoms()]
        b = sorted((bd.GetBeginAtomIdx(), bd.GetEndAtomIdx()) for bd in ch.mol.GetBonds())
        if keys is None:
            keys, bonds = k, b
        elif k != keys or b != bonds:
            raise BuildError("Chains of the same length came out with different atom orders.")
        (d / f"chain_{i}.mol").write_text(Chem.MolToMolBlock(ch.mol))
    _write_json(d / "atom_keys.json", keys)
    n_atoms = len(keys)
    say(f"{p.n_chains} chains × DP {dp} ({n_atoms} atoms each, "
        + ("rings: no chain ends" if topology == "ring" else "CH3 ends") + ", atactic)")
    from core.simulation.packing import packing_density_estimate  # noqa: PLC0415
    try:
        # the cross-check's oligomers get what is left of the build limit (at least 30 s)
        est = packing_density_estimate(
            psmiles, deadline=max(deadline, time.monotonic() + 30.0))
    except Exception as exc:  # noqa: BLE001 - a cross-check must never stop the calculation
        est = {"density": None, "error": f"{type(exc).__name__}: {exc}"}
    return {"dp": dp, "n_chains": p.n_chains, "atoms_per_chain": n_atoms,
            "molar_mass": repeat_unit_mass(psmiles), "packing_estimate": est,
            "build_methods": methods, "chain_topology": topology,
            "ring_closure_failure": ring_failure}


def _load_chain(d: Path, i: int, dp: int):
    from core.simulation.build import Chain  # noqa: PLC0415

    mol = Chem.MolFromMolBlock((d / f"chain_{i}.mol").read_text(), removeHs=False)
    keys = json.loads((d / "atom_keys.json").read_text())
    cls_to_unit = {"cap_head": -1, "head": 0, "mid": 1, "tail": dp - 1, "cap_tail": dp}
    for a, (cls, local, hnum) in zip(mol.GetAtoms(), keys):
        a.SetIntProp("unit", cls_to_unit[cls])
        a.SetIntProp("local", int(local))
        if hnum >= 0:
            a.SetIntProp("hnum", int(hnum))
    return Chain(mol=mol, dp=dp, seed=i + 1)


def _step_forcefield(psmiles: str, p: Preset, d: Path, say, wd: Path) -> dict:
    from core.simulation import forcefield as F  # noqa: PLC0415

    b = _result(wd, "build")
    chain = _load_chain(wd / "build", 0, b["dp"])
    say(f"AM1-BCC charges (sqm) on a CH3-capped {p.charge_oligomer_n}-mer")
    oc = F.oligomer_charges_with_fallback(
        psmiles, d / "oligomer", n=p.charge_oligomer_n, maxcyc_sulfur=p.sqm_maxcyc_sulfur,
        timeout=p.timeouts.get("forcefield", 900), progress=say)
    olig, params, maxcyc = oc.chain, oc.params, oc.maxcyc
    types, raw = F.transfer_charges(olig.mol, params, chain.mol, b["dp"], olig_dp=oc.n)
    residual = sum(raw)
    charges = F.neutralise(raw)
    if p.forcefield == "sage":
        from core.simulation.openff_sage import DEFAULT_OFFXML, parametrise_chain_sage  # noqa
        say(f"charges transferred to the chains (residual {residual:+.4f} e spread evenly); "
            f"OpenFF Sage valence + LJ parameters ({DEFAULT_OFFXML})")
        ff = parametrise_chain_sage(chain.mol, charges)
    else:  # gaff2 (Preset validates the name)
        say(f"charges transferred to the chains (residual {residual:+.4f} e spread evenly); "
            "GAFF2 parameters via parmchk2 + tleap")
        ff = F.parametrise_chain(chain, types, charges, d / "chain",
                                 frcmod_source=oc.mol2,
                                 timeout=p.timeouts.get("forcefield", 900))
    if oc.warning:  # first: the record's warnings list this before the parmchk2 fills
        ff.warnings = [oc.warning] + list(ff.warnings)
    _write_json(d / "forcefield.json", ff.to_dict())
    for w in ff.warnings:
        say("warning: " + w)
    return {"warnings": ff.warnings, "sqm_maxcyc": maxcyc, "charge_residual_e": residual,
            "total_charge_e": sum(ff.charges), "n_atom_types": len(set(types)),
            "charge_oligomer_n": oc.n, "charge_oligomer_failures": list(oc.failures)}


def _step_cell(psmiles: str, p: Preset, d: Path, say, wd: Path) -> dict:
    from core.simulation.cell import pack_chains  # noqa: PLC0415
    from core.simulation.forcefield import ForceField  # noqa: PLC0415
    from core.simulation.lammps_data import write_data_file  # noqa: PLC0415

    b = _result(wd, "build")
    ff = ForceField.from_dict(json.loads((wd / "forcefield" / "forcefield.json").read_text()))
    chains = [_load_chain(wd / "build", i, b["dp"]).mol for i in range(b["n_chains"])]
    coords, box = pack_chains(chains, p.pack_density, d, tolerance=p.pack_tolerance,
                              timeout=p.timeouts.get("cell", 600))
    info = write_data_file(ff, coords, box, d / "system.data", title=psmiles,
                           epsilon_scale=p.lj_epsilon_scale)
    say(f"packed {info.n_atoms} atoms in a {box:.1f} Å box at {p.pack_density} g/cm³")
    return {"n_atoms": info.n_atoms, "box_A": box, "n_atom_types": info.n_atom_types,
            "shake_bond_types": list(info.shake_bond_types), "total_charge_e": info.total_charge,
            "total_mass": info.total_mass}


MD_FALLBACK_FILE = "timestep_fallback.json"
MD_FALLBACK_TIMESTEP_FS = 1.0  # fs: the time step of a second MD try after an MDUnstable


def _step_md(psmiles: str, p: Preset, d: Path, say, wd: Path, threads) -> dict:
    from core.simulation.lammps_data import DataFileInfo  # noqa: PLC0415
    from core.simulation.md import run_md  # noqa: PLC0415

    c = _result(wd, "cell")
    shutil.copy(wd / "cell" / "system.data", d / "system.data")
    info = DataFileInfo(n_atoms=c["n_atoms"], n_atom_types=c["n_atom_types"],
                        shake_bond_types=tuple(c["shake_bond_types"]),
                        total_charge=c["total_charge_e"], total_mass=c["total_mass"],
                        box=c["box_A"])
    fallback = d / MD_FALLBACK_FILE
    if fallback.is_file():  # an earlier attempt already fell back: resume at the smaller step
        res = run_md(info, d, p.with_overrides(**json.loads(fallback.read_text())["overrides"]),
                     threads=threads, progress=say)
    else:
        try:
            res = run_md(info, d, p, threads=threads, progress=say)
        except MDUnstable as exc:
            if p.timestep_fs <= MD_FALLBACK_TIMESTEP_FS:
                raise
            # high-pressure compression of a stiff or crowded unit can blow up at 2 fs (LAMMPS
            # "Out of range atoms"); the same schedule at 1 fs costs twice the steps, once
            say(f"warning: {exc} — running the MD again at {MD_FALLBACK_TIMESTEP_FS:g} fs")
            aside = d / f"unstable_dt{p.timestep_fs:g}"
            shutil.rmtree(aside, ignore_errors=True)
            aside.mkdir()
            for f in list(d.iterdir()):
                if f != aside and f.name != "system.data" and f.is_file():
                    shutil.move(str(f), aside / f.name)
            over = {"timestep_fs": MD_FALLBACK_TIMESTEP_FS}
            _write_json(fallback, {"overrides": over, "reason": str(exc)[:500]})
            res = run_md(info, d, p.with_overrides(**over), threads=threads, progress=say)
    from dataclasses import asdict  # noqa: PLC0415
    out = asdict(res)
    if fallback.is_file():
        fb = json.loads(fallback.read_text())
        out["timestep_fallback"] = {"timestep_fs": fb["overrides"]["timestep_fs"],
                                    "reason": fb["reason"]}
    return out


def _step_qm(psmiles: str, p: Preset, d: Path, say, wd: Path, threads) -> dict:
    from core.simulation.qm import repeat_unit_polarizability  # noqa: PLC0415

    say(f"{p.qm_method}/{p.qm_basis}{' (RI)' if p.qm_density_fit else ''} linear-response α(ω) "
        f"({p.qm_mode}) at "
        + ", ".join(f"{k} {v} nm" for k, v in WAVELENGTHS_NM.items()))
    res = repeat_unit_polarizability(
        psmiles, method=p.qm_method, basis=p.qm_basis, wavelengths_nm=dict(WAVELENGTHS_NM),
        mode=p.qm_mode, optimise=p.qm_optimise, threads=int(threads or p.omp_threads),
        workdir=d, progress=lambda *a: say(str(a[-1]) if a else ""), density_fit=p.qm_density_fit,
        grid_level=p.qm_grid_level)
    a = res["alpha_A3"]
    say("α = " + ", ".join(f"{k} {a[k]:.3f}" for k in ("static", "F", "D", "C")) + " Å³")
    return json.loads(json.dumps(res, default=_json_default))


def _json_default(o):
    try:
        import numpy as np  # noqa: PLC0415
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    return repr(o)


def _step_optics(psmiles: str, p: Preset, d: Path, say, wd: Path) -> dict:
    from core.chem.optics import abbe_number, refractive_index  # noqa: PLC0415

    b = _result(wd, "build")
    md = _result(wd, "md")
    qm = _result(wd, "qm")
    rho, M = md["density"], b["molar_mass"]
    n = {k: float(refractive_index(qm["alpha_A3"][k], rho, M)) for k in ("F", "D", "C")}
    nu = float(abbe_number(n["D"], n["F"], n["C"]))
    say(f"n_D = {n['D']:.4f}, n_F = {n['F']:.4f}, n_C = {n['C']:.4f}, ν_D = {nu:.1f}")
    return {"n_F": n["F"], "n_D": n["D"], "n_C": n["C"], "abbe_number": nu}


# ----------------------------------------------------------------------------- records
def _md_fields(md: dict, p: Preset, build: dict) -> dict:
    """Record fields of the MD step: density and its provenance (force field, protocol), Tg_sim,
    the direct 300 K (fast-quench) density and the packing-coefficient cross-check."""
    melt = md.get("melt_line") or {}
    est = build.get("packing_estimate") or {}
    return {
        "density": md["density"], "density_stderr": md["density_stderr"],
        "density_method": md.get("density_method", "direct"),
        "density_direct": md.get("density_direct", md["density"]),
        # Tg_sim only where the ladder was precise enough to mean something
        "tg_sim_K": melt.get("tg_sim_K") if melt.get("reliable") else None,
        "tg_sim_stderr_K": melt.get("tg_sim_stderr_K") if melt.get("reliable") else None,
        "forcefield": p.forcefield, "protocol": p.protocol,
        "chain_topology": build.get("chain_topology", "linear"),
        "density_packing_estimate": est.get("density"),
    }


def _md_warnings(md: dict, build: dict) -> list[str]:
    """Non-convergence and a failed packing-coefficient cross-check, as record warnings."""
    from core.simulation.packing import cross_check_warning  # noqa: PLC0415

    out = []
    if build.get("ring_closure_failure"):
        out.append("The preset's ring chains could not be closed (" + build["ring_closure_failure"]
                   [:200] + "); this density is of linear CH3-capped chains.")
    if md.get("timestep_fallback"):
        out.append(f"MD ran at {md['timestep_fallback']['timestep_fs']:g} fs: at the preset's "
                   f"time step it became unstable ({md['timestep_fallback']['reason'][:160]}).")
    if not md["converged"]:
        out.append(
            f"MD density not converged: drift {md['density_drift_rel']:+.2%} (density) and "
            f"{md['energy_drift_rel']:+.2%} (energy) over the last {md['window_ps']:.0f} ps.")
    w = cross_check_warning(md["density"], (build.get("packing_estimate") or {}).get("density"))
    if w:
        out.append(w)
    return out


def _density_record(psmiles: str, canonical: str, p: Preset, wd: Path, results: dict,
                    walls: dict) -> dict:
    """The ``--until md`` record: density, its error, Tg_sim, force field and protocol."""
    md, b = results["md"], results["build"]
    return {
        **_md_fields(md, p, b), "psmiles": psmiles, "canonical_psmiles": canonical,
        "preset": p.name, "molar_mass": b["molar_mass"],
        "converged": {"md": bool(md["converged"]), "density_drift_rel": md["density_drift_rel"],
                      "energy_drift_rel": md["energy_drift_rel"],
                      "md_extensions": md["extensions"]},
        "melt_line": md.get("melt_line"),
        "warnings": list(results["forcefield"].get("warnings", [])) + _md_warnings(md, b),
        "details": {"md": {k: md.get(k) for k in ("n_atoms", "n_samples", "window_ps",
                                                  "ns_per_day")}, "build": b},
        "versions": _versions(), "step_wall_s": walls, "workdir": str(wd.resolve()),
    }


def _versions() -> dict:
    """Software versions of the record, ours included."""
    from core.simulation.env import software_versions  # noqa: PLC0415

    return {**software_versions(), "ours": OURS_VERSION}


# ----------------------------------------------------------------------------- driver
def run_pipeline(psmiles: str, preset: str | Preset = "quick", workdir: str | Path | None = None,
                 *, progress: Callable[[str, str], None] | None = None,
                 threads: int | None = None, until: str | None = None) -> dict:
    """Run (or resume) the simulation of one polymer; returns the JSON-serialisable record.

    Parameters
    ----------
    psmiles : polymer SMILES with two ``*``.
    preset : ``smoke`` | ``quick`` | ``standard`` or a Preset.
    workdir : calculation directory (default ``default_workdir``); reused → resume.
    progress : called as ``progress(step, message)``.
    threads : OpenMP threads for LAMMPS and PySCF (default: the preset's).
    until : stop after this step (and the steps it needs); ``"md"`` gives a density-only
        record (density, its error, Tg_sim, force field, protocol) without QM or optics.
    """
    from core.simulation.build import validated_psmiles  # noqa: PLC0415

    p = get_preset(preset)
    if until is not None and until not in STEPS:
        raise ValueError(f"Unknown step {until!r} for --until; choose one of {', '.join(STEPS)}.")
    validated_psmiles(psmiles)
    canonical = _canonical(psmiles)
    # absolute: external programs (parmchk2, tleap, packmol) run in sub-directories
    wd = (Path(workdir) if workdir is not None else default_workdir(psmiles, p)).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    lock = _lock_workdir(wd)
    try:
        return _run_locked(psmiles, p, canonical, wd, progress, threads, until)
    finally:
        lock.close()  # closing the file releases the flock


def _lock_workdir(wd: Path):
    """Exclusive, non-blocking lock on ``wd/.lock`` (raises WorkdirBusy when held elsewhere)."""
    from core.simulation.env import exclusive_lock  # noqa: PLC0415

    return exclusive_lock(wd / ".lock", f"Another process is already running the calculation "
                          f"in {wd}; wait for it to finish or use another work directory.")


def _qm_atoms(psmiles: str, p: Preset) -> int:
    """Atoms of the QM molecule: the H-capped repeat unit (×2 for dimer-minus-monomer)."""
    from core.simulation.build import unit_atoms  # noqa: PLC0415

    n = unit_atoms(psmiles) + 2
    return 2 * n if p.qm_mode == "dimer_minus_monomer" else n


def _needed(until: str | None) -> list[str]:
    """The steps to run for ``until`` (itself, what it depends on and, for QM, the cheap steps
    of ``QM_AFTER`` that must succeed first), in STEPS order."""
    if until is None:
        return list(STEPS)
    need, todo = {until}, [until]
    while todo:
        s = todo.pop()
        for d in DEPENDS_ON[s] + (QM_AFTER if s == "qm" else ()):
            if d not in need:
                need.add(d)
                todo.append(d)
    return [s for s in STEPS if s in need]


def _step_order(steps: list[str], qm_first_of_expensive: bool) -> list[str]:
    """Execution order of ``steps``: the cheap ``QM_AFTER`` steps first, then QM before the MD
    (``qm_first_of_expensive``: a small unit's QM on every core) or in STEPS order (MD, QM)."""
    if not qm_first_of_expensive or "qm" not in steps:
        return list(steps)
    rest = [s for s in steps if s != "qm"]
    at = max((rest.index(s) + 1 for s in QM_AFTER if s in rest), default=0)
    return rest[:at] + ["qm"] + rest[at:]


def _run_locked(psmiles: str, p: Preset, canonical: str, wd: Path, progress, threads,
                until: str | None = None) -> dict:
    ident = {"psmiles": psmiles, "canonical_psmiles": canonical, "preset": p.name}
    idf = wd / "input.json"
    if idf.is_file():
        old = json.loads(idf.read_text())
        if old.get("canonical_psmiles") != canonical or old.get("preset") != p.name:
            raise WorkdirMismatch(
                f"{wd} already holds a calculation of {old.get('psmiles')!r} with preset "
                f"{old.get('preset')!r}; use another work directory.")
    else:
        _write_json(idf, {**ident, "preset_settings": p.to_dict()})

    runners = {
        "build": lambda d, say, n: _step_build(psmiles, p, d, say),
        "forcefield": lambda d, say, n: _step_forcefield(psmiles, p, d, say, wd),
        "cell": lambda d, say, n: _step_cell(psmiles, p, d, say, wd),
        "md": lambda d, say, n: _step_md(psmiles, p, d, say, wd, n),
        "qm": lambda d, say, n: _step_qm(psmiles, p, d, say, wd, n),
        "optics": lambda d, say, n: _step_optics(psmiles, p, d, say, wd),
    }
    say_lock = threading.Lock()  # progress callbacks may come from the QM thread too

    def sayer(step: str):
        if not progress:
            return lambda msg: None

        def say(msg, _s=step):
            with say_lock:
                progress(_s, msg)
        return say

    def current(step: str) -> dict | None:
        """The done record of ``step`` if it finished with today's settings, else None."""
        done = wd / step / "done.json"
        if not done.is_file():
            return None
        rec = json.loads(done.read_text())
        # no fingerprint (written by an old version): the settings are unknown, so redo
        return rec if rec.get("fingerprint") == step_fingerprint(p, step) else None

    def execute(step: str, n_threads: int | None, note: dict | None = None) -> tuple[dict, float]:
        d, say = wd / step, sayer(step)
        changed = (d / "done.json").is_file()  # finished, but with other settings
        if changed:
            say("settings changed since this step ran: redoing it and the steps that use it")
        if changed or step not in RESUMABLE_INSIDE or not _prev_done(wd, step):
            # redo from scratch; steps that use its outputs are stale too
            _clear(wd, dependents(step))
        d.mkdir(parents=True, exist_ok=True)
        say("started")
        t0 = time.perf_counter()
        try:
            out = {**runners[step](d, say, n_threads), **(note or {})}
        except SimulationError as exc:
            if exc.step in ("unknown", None) or type(exc).step == "unknown":
                exc.step = step
            _write_json(wd / "failed.json", {"step": step, "error": type(exc).__name__,
                                              "message": str(exc)})
            raise
        wall = time.perf_counter() - t0
        _write_json(d / "done.json", {"result": out, "wall_s": wall,
                                       "fingerprint": step_fingerprint(p, step)})
        say(f"done in {wall:.1f} s")
        return out, wall

    n_threads = int(threads) if threads else int(p.omp_threads)
    steps = _needed(until)
    qm_future, pool = None, None
    small_qm = _qm_atoms(psmiles, p) < p.qm_concurrent_min_atoms
    if small_qm and n_threads >= 2 and "qm" in steps and current("qm") is None:
        # a small QM unit finishes in well under a minute: run it (after the cheap steps) on
        # every core before the MD, then give LAMMPS every core too (beside it, one would idle)
        sayer("qm")(f"small QM unit ({_qm_atoms(psmiles, p)} atoms): runs after "
                    f"{' → '.join(QM_AFTER)}, before the MD, on all {n_threads} threads")
        steps = _step_order(steps, qm_first_of_expensive=True)
    concurrent = (n_threads >= 2 and not small_qm and "qm" in steps and "md" in steps
                  and current("qm") is None and current("md") is None)
    if concurrent:
        # QM needs only the SMILES: once the cheap steps succeeded it runs beside the MD,
        # splitting the cores
        md_threads = max(1, n_threads // 2)
        qm_threads = n_threads - md_threads
        sayer("qm")(f"runs concurrently with the MD ({qm_threads} of {n_threads} threads) once "
                    f"{' → '.join(QM_AFTER)} succeeded")
    else:
        md_threads = n_threads
    results, walls = {}, {}
    try:
        for step in steps:
            if step == "md" and concurrent:
                pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qm")
                qm_future = pool.submit(execute, "qm", qm_threads, {"concurrent_with_md": True})
            if step == "qm" and qm_future is not None:
                results[step], walls[step] = qm_future.result()
                continue
            rec = current(step)
            if rec is not None:
                results[step], walls[step] = rec["result"], rec["wall_s"]
                sayer(step)(f"already done ({rec['wall_s']:.1f} s), skipped")
                continue
            results[step], walls[step] = execute(step, md_threads if step == "md" else n_threads)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)  # never leave the QM thread writing into an unlocked dir
    (wd / "failed.json").unlink(missing_ok=True)
    if "md" in steps and "optics" not in steps:
        record = _density_record(psmiles, canonical, p, wd, results, walls)
        _write_json(wd / "density_record.json", record)
        return record
    if "optics" not in steps:
        return {"psmiles": psmiles, "canonical_psmiles": canonical, "preset": p.name,
                "until": until, "steps": {s: results[s] for s in steps},
                "step_wall_s": walls, "workdir": str(wd.resolve())}

    md, qm, opt, b = results["md"], results["qm"], results["optics"], results["build"]
    warnings = list(results["forcefield"].get("warnings", [])) + _md_warnings(md, b)
    warnings += [str(w) for w in qm.get("warnings", [])]
    versions = _versions()
    record = {
        "n_D": opt["n_D"], "n_F": opt["n_F"], "n_C": opt["n_C"],
        "abbe_number": opt["abbe_number"],
        **_md_fields(md, p, b),
        "alpha_A3": {k: float(qm["alpha_A3"][k]) for k in ("static", "F", "D", "C")},
        "molar_mass": b["molar_mass"], "psmiles": psmiles, "canonical_psmiles": canonical,
        "preset": p.name, "versions": versions, "step_wall_s": walls,
        "converged": {"md": bool(md["converged"]), "qm": bool(qm.get("converged", True)),
                      "density_drift_rel": md["density_drift_rel"],
                      "energy_drift_rel": md["energy_drift_rel"], "md_extensions": md["extensions"]},
        "warnings": warnings, "workdir": str(wd.resolve()),
        "details": {"md": {k: md[k] for k in ("n_atoms", "n_samples", "window_ps", "ns_per_day")}
                    | {"melt_line": md.get("melt_line")},
                    "build": b, "qm": {k: qm.get(k) for k in ("method", "basis", "mode", "density_fit",
                                                              "grid_level", "n_atoms", "wall_s",
                                                              "threads")}
                    | {"concurrent_with_md": bool(qm.get("concurrent_with_md", False))}
                    | ({"reused_from": qm["reused_from"]} if qm.get("reused_from") else {}),
                    "wavelengths_nm": dict(WAVELENGTHS_NM)},
    }
    _write_json(wd / "record.json", record)
    return record
