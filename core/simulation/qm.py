"""Quantum-chemical step: frequency-dependent polarisability of a polymer repeat unit (PySCF).

Pipeline step 5 (issue 4).  The repeat unit given as a polymer SMILES is H-capped at both ``*``
(``core.chem.polymer.capped_unit``), a 3-D conformer is generated (RDKit ETKDGv3, several seeds,
MMFF94 minimised, lowest-energy kept; optional QM optimisation with geomeTRIC), a closed-shell
SCF is converged (RHF, or RKS with any PySCF/libxc functional) and the full linear-response
α(ω) (TDHF/TDDFT, :mod:`core.simulation.response`) is solved at the static limit and at the
Fraunhofer lines F 486.13 nm, D 589.29 nm, C 656.27 nm, all frequencies in one solve.

Two repeat-unit definitions (``mode``):

- ``capped_monomer``: α(H–U–H), RadonPy's choice; includes the two cap hydrogens (a small
  overestimate of α per unit, and end effects).
- ``dimer_minus_monomer``: α(H–U–U–H) − α(H–U–H) — the caps and chain-end effects cancel, and
  the unit sees one real neighbour; about 2.3x the cost of ``capped_monomer``.

Isotropic α = Tr(α)/3 is reported in Å³ (polarisability volume; 1 bohr³ = 0.148184711 Å³);
Lorentz–Lorenz and the Abbe number are computed elsewhere (``core.optics``) with the MD density.

Recommended settings per preset (measured 2026-11-25; ``benchmarks/bench_qm.py``)
---------------------------------------------------------------------------------
Lorentz–Lorenz with the *experimental* densities (PS 1.05, PMMA 1.18 g/cm³), capped monomer,
6-31+G* (method ranking only; the pipeline uses the MD density):

=============  ===============  ===============  =========================================
method/basis   PS n_D / ν_D     PMMA n_D / ν_D   note
=============  ===============  ===============  =========================================
experiment     1.592 / 31       1.492 / 58
HF/6-31+G*     1.590 / 31.8     1.449 / 69.9     PMMA α 7 % below CAM-B3LYP, too little dispersion
HF/6-31G*      1.496 / 39.7     –                no diffuse functions: α 13 % low
CAM-B3LYP      1.616 / 28.3     1.491 / 55.8     n RMSE 0.017, ν MAPE 6 % (HF: 0.030, 12 %)
=============  ===============  ===============  =========================================

- ``smoke``:    HF / STO-3G, capped_monomer — plumbing only (α ≈ 50 % of the converged value).
- ``quick``:    CAM-B3LYP / 6-31+G*, capped_monomer, density fitting (RI) — the PS unit takes 39 s
  on 2 idle cores (RI: α within 2e-5 relative of the exact integrals, 2.7x faster). HF was the
  quick method until 2026-11-25: cheaper, but aliphatic units got α ~5 % low and ν ~20 % high.
- ``standard``: CAM-B3LYP / aug-cc-pVDZ, dimer_minus_monomer, optimise=True.  (PySCF's
  6-311+G(2d,p) has no S, Cl, Br or I: those elements would fall back to def2-SVPD.)

Elements a basis lacks (e.g. Br, I in 6-31+G*) get def2-SVPD (+ ECP) with a warning.
Cost grows ~N^3.5 with basis size.  At the quick settings (CAM-B3LYP/6-31+G*, RI, grid level 1)
on 2 idle cores the 35-atom PC unit (374 functions, 2002 auxiliary) takes 62 s of SCF and 131 s
of response (benchmarks/bench_response.py); the response's RI factors are computed once and kept
in memory or, when they exceed 0.7·max_memory, in a scratch file.

Results are cached as JSON in ``workdir`` (one file per molecule calculation plus one per
repeat-unit result); a rerun with the same inputs returns the cached result.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.atomic_io import atomic_write_json
from core.simulation.errors import BuildError, ResponseNotConverged, SCFNotConverged
from core.simulation.response import (BOHR3_TO_A3, polarizability_tensors, wavelength_to_omega_au)

__all__ = [
    "split_basis",
    "FRAUNHOFER_NM",
    "MODES",
    "InvalidQMSettings",
    "repeat_unit_polarizability",
    "molecule_polarizability",
    "capped_geometry",
]

FRAUNHOFER_NM: dict[str, float] = {"F": 486.13, "D": 589.29, "C": 656.27}
"""Fraunhofer lines (nm): F (H-β), D (Na, the D-line mean used for n_D), C (H-α)."""
MODES = ("capped_monomer", "dimer_minus_monomer")
_CACHE_VERSION = 1
_SCF_CONV_TOL = 1e-9        # E_h; response accuracy needs well-converged orbitals
_RESPONSE_TOL = 1e-3        # relative residual; α within 1.2e-7 relative of tol 1e-4 (PC unit,
                            # bench_response.py) at 0.79x the time
_RESPONSE_MAX_CYCLE = 60
_N_CONFORMERS = 6
_SCF_MAX_CYCLE = 100


_GEOMETRIC_QUIET_INI = """[loggers]
keys=root
[handlers]
keys=stream_handler
[formatters]
keys=formatter
[logger_root]
level=WARNING
handlers=stream_handler
[handler_stream_handler]
class=StreamHandler
level=WARNING
formatter=formatter
args=(sys.stderr,)
[formatter_formatter]
format=%(message)s
"""


class InvalidQMSettings(ValueError):
    """A QM setting (method, basis, wavelengths, mode, charge/spin, threads) is not usable."""


ProgressFn = Callable[[str, str], None]


# --------------------------------------------------------------------------- validation

def _check_method(method: str) -> str:
    if not isinstance(method, str) or not method.strip():
        raise InvalidQMSettings(f"method must be 'HF' or a DFT functional name, got {method!r}")
    m = method.strip()
    if m.upper() in ("HF", "RHF"):
        return "HF"
    from pyscf.dft import libxc

    try:
        libxc.parse_xc(m)
        libxc.test_deriv_order(m, 2, raise_error=True)
    except Exception as exc:  # noqa: BLE001 - pyscf raises KeyError/ValueError/NotImplementedError
        raise InvalidQMSettings(
            f"unknown or unsupported exchange-correlation functional {method!r} "
            f"(needs second derivatives for the response kernel): {exc}"
        ) from None
    return m


def _check_wavelengths(wavelengths_nm: dict[str, float]) -> dict[str, float]:
    if not isinstance(wavelengths_nm, dict) or not wavelengths_nm:
        raise InvalidQMSettings(f"wavelengths_nm must be a non-empty dict name -> nm, got {wavelengths_nm!r}")
    out: dict[str, float] = {}
    for k, v in wavelengths_nm.items():
        if not isinstance(k, str) or k == "static":
            raise InvalidQMSettings(f"wavelength names must be strings other than 'static', got {k!r}")
        try:
            nm = float(v)
        except (TypeError, ValueError):
            raise InvalidQMSettings(f"wavelength {k!r} must be a number of nm, got {v!r}") from None
        if not np.isfinite(nm) or nm < 150.0:
            raise InvalidQMSettings(
                f"wavelength {k!r} = {v!r} nm is not usable: must be >= 150 nm (below-resonance optics)"
            )
        out[k] = nm
    return out


def split_basis(spec: str) -> tuple[str, dict[str, str]]:
    """``"6-31+G*;S=aug-cc-pVDZ"`` → ``("6-31+G*", {"S": "aug-cc-pVDZ"})``: a basis-set name,
    optionally followed by ``;Element=name`` items that give those elements another basis (e.g. a
    larger one on sulfur, as benchmarks/bench_sulfur_qm.py compares). Raises InvalidQMSettings."""
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidQMSettings(f"basis must be a basis-set name, got {spec!r}")
    default, *items = [part.strip() for part in spec.split(";")]
    if not default or "=" in default:
        raise InvalidQMSettings(f"basis {spec!r}: the first item must be a basis-set name")
    per_element: dict[str, str] = {}
    for item in items:
        el, eq, name = (x.strip() for x in item.partition("="))
        if not eq or not el or not name or not el.isalpha() or el != el.capitalize():
            raise InvalidQMSettings(f"basis {spec!r}: {item!r} is not 'Element=basis-set name'")
        per_element[el] = name
    return default, per_element


def _check_common(method, basis, wavelengths_nm, threads, max_memory_mb):
    method = _check_method(method)
    default, per_element = split_basis(basis)
    from pyscf import gto

    import warnings as _w

    for el, name in [("H", default), *per_element.items()]:
        try:
            with _w.catch_warnings():
                _w.simplefilter("ignore")
                gto.basis.load(name, el)
        except Exception:  # noqa: BLE001
            raise InvalidQMSettings(f"unknown basis set {name!r} for {el} (not in PySCF's basis "
                                    "library)") from None
    wl = _check_wavelengths(wavelengths_nm)
    if not isinstance(threads, int) or threads < 1:
        raise InvalidQMSettings(f"threads must be a positive integer, got {threads!r}")
    if not isinstance(max_memory_mb, (int, float)) or max_memory_mb < 200:
        raise InvalidQMSettings(f"max_memory_mb must be >= 200, got {max_memory_mb!r}")
    return method, basis.strip(), wl


def _check_grid(grid_level) -> int | None:
    if grid_level is None:
        return None
    if isinstance(grid_level, bool) or not isinstance(grid_level, int) or not 0 <= grid_level <= 9:
        raise InvalidQMSettings(f"grid_level must be None (PySCF's default, 3) or an integer "
                                f"0–9, got {grid_level!r}")
    return grid_level


def _solver_tags(density_fit: bool, grid_level: int | None) -> dict:
    """Cache-key entries of the non-default solver options (absent at their defaults, so the
    keys of results computed before these options existed stay valid)."""
    return {**({"df": True} if density_fit else {}),
            **({"grid": int(grid_level)} if grid_level is not None else {})}


# --------------------------------------------------------------------------- geometry

def _conformer_atoms(mol, seed: int = 0) -> list[tuple[str, tuple[float, float, float]]]:
    """Lowest-MMFF94 (or UFF) energy conformer of an RDKit molecule with explicit H, in Å."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.Mol(mol)
    mol.RemoveAllConformers()
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    cids = list(AllChem.EmbedMultipleConfs(mol, numConfs=_N_CONFORMERS, params=params))
    if not cids:
        params.useRandomCoords = True
        params.maxIterations = 2000
        cids = list(AllChem.EmbedMultipleConfs(mol, numConfs=_N_CONFORMERS, params=params))
    if not cids:
        raise BuildError(
            f"RDKit could not generate 3-D coordinates for {Chem.MolToSmiles(Chem.RemoveHs(mol))}"
        )
    if AllChem.MMFFHasAllMoleculeParams(mol):
        res = AllChem.MMFFOptimizeMoleculeConfs(mol, maxIters=2000)
    elif AllChem.UFFHasAllMoleculeParams(mol):
        res = AllChem.UFFOptimizeMoleculeConfs(mol, maxIters=2000)
    else:
        res = [(0, 0.0)] * len(cids)
    energies = [e for _, e in res]
    best = cids[int(np.argmin(energies))]
    pos = mol.GetConformer(best).GetPositions()
    return [
        (a.GetSymbol(), (float(p[0]), float(p[1]), float(p[2])))
        for a, p in zip(mol.GetAtoms(), pos)
    ]


def capped_geometry(psmiles: str, n_units: int = 1, *, seed: int = 0) -> list[tuple[str, tuple[float, float, float]]]:
    """3-D geometry (element, (x, y, z) in Å) of the H-capped linear ``n_units``-mer.

    Topology from ``core.chem.polymer`` (``capped_unit`` / ``linear_oligomer`` with cap "H");
    conformer: ETKDGv3 with ``_N_CONFORMERS`` seeds, MMFF94 minimised, lowest energy kept.
    Raises ``core.chem.polymer.InvalidPolymer`` (a ValueError) for a bad SMILES and
    :class:`BuildError` when no 3-D embedding is found.
    """
    from core.chem import polymer

    if n_units == 1:
        mol = polymer.capped_unit(psmiles, "H", embed=False)
    else:
        mol = polymer.linear_oligomer(psmiles, n_units, "H", embed=False)
    return _conformer_atoms(mol, seed)


# --------------------------------------------------------------------------- SCF

_FALLBACK_BASIS = "def2-SVPD"  # diffuse-augmented, defined H–Rn (effective core potential from Rb on)


def _basis_for(atoms, basis: str, warnings: list[str]):
    """``basis`` (``split_basis``: a name, optionally with per-element names) for every element it
    defines; elements it lacks (e.g. Br, I in 6-31+G*) get def2-SVPD (+ its ECP for Z > 36), with
    a warning.  Returns (basis spec, ecp spec)."""
    from pyscf import gto

    import warnings as _w

    default, per_element = split_basis(basis)
    elements = sorted({str(s) for s, _ in atoms})
    missing = []
    for el in elements:
        try:
            with _w.catch_warnings():
                _w.simplefilter("ignore")  # PySCF suggests basis-set-exchange for unknown entries
                gto.basis.load(per_element.get(el, default), el)
        except Exception:  # noqa: BLE001 - BasisNotFoundError / KeyError
            missing.append(el)
    if not missing and not per_element:
        return default, None
    if len(missing) == len(elements):
        raise InvalidQMSettings(f"basis set {basis!r} defines none of the elements {elements}")
    spec = {el: (_FALLBACK_BASIS if el in missing else per_element.get(el, default))
            for el in elements}
    if not missing:
        return spec, None
    heavy = [el for el in missing if gto.charge(el) > 36]
    ecp = {el: _FALLBACK_BASIS for el in heavy} or None
    warnings.append(f"basis {basis} lacks {', '.join(missing)}: {_FALLBACK_BASIS} used for those elements")
    return spec, ecp


def _build_mol(atoms, basis: str, charge: int, spin: int, max_memory_mb: float,
               warnings: list[str] | None = None):
    from pyscf import gto

    if spin != 0:
        raise InvalidQMSettings(
            f"spin = {spin}: only closed-shell molecules (spin 0) are supported by the response solver"
        )
    basis_spec, ecp = _basis_for(atoms, basis, warnings if warnings is not None else [])
    try:
        mol = gto.M(
            atom=[(str(s), tuple(float(c) for c in xyz)) for s, xyz in atoms],
            unit="Angstrom",
            basis=basis_spec,
            ecp=ecp,
            charge=int(charge),
            spin=None,
            verbose=0,
            max_memory=float(max_memory_mb),
        )
    except Exception as exc:  # noqa: BLE001
        raise InvalidQMSettings(f"could not build the molecule with basis {basis!r}: {exc}") from None
    if mol.nelectron % 2:
        raise InvalidQMSettings(
            f"odd number of electrons ({mol.nelectron}) with charge {charge}: not a closed shell"
        )
    return mol


def _run_scf(mol, method: str, warnings: list[str], density_fit: bool = False,
             grid_level: int | None = None):
    from pyscf import dft, scf

    if method == "HF":
        mf = scf.RHF(mol)
    else:
        mf = dft.RKS(mol)
        mf.xc = method
        if grid_level is not None:
            mf.grids.level = int(grid_level)  # also the grid of the response kernel f_xc
    if density_fit:
        mf = mf.density_fit()  # RI-JK; the response then uses the MO-basis RI kernel
    mf.conv_tol = _SCF_CONV_TOL
    mf.max_cycle = _SCF_MAX_CYCLE
    mf.verbose = 0
    # near-linear dependence (diffuse functions on crowded atoms): project it out
    s_min = float(np.linalg.eigvalsh(mol.intor_symmetric("int1e_ovlp"))[0])
    if s_min < 1e-7:
        mf = scf.addons.remove_linear_dep_(mf, threshold=1e-7, lindep=1e-9)
        warnings.append(f"near-linearly-dependent basis (smallest overlap eigenvalue {s_min:.1e}) projected out")
    mf.kernel()
    if not mf.converged:
        warnings.append(f"SCF (DIIS) did not converge in {_SCF_MAX_CYCLE} cycles; retried with second-order (Newton) SCF")
        mf2 = mf.newton()
        mf2.max_cycle = max(1, _SCF_MAX_CYCLE // 2)
        mf2.kernel(mf.mo_coeff, mf.mo_occ)
        if not mf2.converged:
            raise SCFNotConverged(
                f"{method} SCF did not converge for this molecule ({mol.natm} atoms, {mol.nao} basis "
                "functions) even with second-order SCF; the geometry may be unreasonable"
            )
        mf = mf2
    # a stable closed-shell solution needs a positive HOMO-LUMO gap
    occ = mf.mo_occ > 0
    gap = float(mf.mo_energy[~occ].min() - mf.mo_energy[occ].max())
    if gap <= 0:
        raise SCFNotConverged(f"{method} SCF converged to a state with no HOMO-LUMO gap ({gap:.3f} E_h)")
    return mf, gap


def _optimise_geometry(mol, method: str, basis: str, warnings: list[str], progress: ProgressFn | None, label: str):
    """QM geometry optimisation with geomeTRIC at ``method`` and the smaller of ``basis`` and
    6-31G(d,p) (by number of basis functions), as RadonPy optimises before its property run."""
    from pyscf import dft, scf

    try:
        from pyscf.geomopt.geometric_solver import kernel as geometric_kernel
    except ImportError as exc:  # pragma: no cover - geometric is in requirements.txt
        raise InvalidQMSettings("optimise=True needs the 'geometric' package (pip install geometric)") from exc
    opt_basis = basis
    small = mol.copy()
    small.basis, small.ecp = _basis_for([(mol.atom_pure_symbol(i), None) for i in range(mol.natm)],
                                        "6-31G(d,p)", [])
    if small.ecp is None:
        small.ecp = mol.ecp
    small.build()
    if small.nao < mol.nao:
        opt_basis = "6-31G(d,p)"
    else:
        small = mol
    if progress:
        progress("qm", f"{label}: optimising geometry at {method}/{opt_basis} ({mol.natm} atoms)")
    mf = scf.RHF(small) if method == "HF" else dft.RKS(small, xc=method)
    mf.conv_tol = 1e-9
    mf.verbose = 0
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ini = Path(tmp) / "geometric_quiet.ini"
        ini.write_text(_GEOMETRIC_QUIET_INI)
        try:
            conv, newmol = geometric_kernel(mf, maxsteps=100, logIni=str(ini))
        except Exception as exc:  # noqa: BLE001
            raise SCFNotConverged(f"geometry optimisation at {method}/{opt_basis} failed: {exc}") from None
    if not conv:
        warnings.append(f"geometry optimisation at {method}/{opt_basis} not converged in 100 steps; last geometry used")
    out = mol.copy()
    out.set_geom_(newmol.atom_coords(unit="Bohr"), unit="Bohr")
    return out, opt_basis


# --------------------------------------------------------------------------- cache

def _key(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def _read_cache(path: Path | None) -> dict | None:
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # a torn or foreign file is recomputed, never trusted
    return data if isinstance(data, dict) and data.get("cache_version") == _CACHE_VERSION else None


def _write_cache(path: Path | None, data: dict) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, data, indent=1)  # a crash never leaves a half-written result


class _Threads:
    """Context manager setting PySCF's OpenMP thread count, restoring it afterwards."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __enter__(self):
        from pyscf import lib

        self.old = lib.num_threads()
        lib.num_threads(self.n)

    def __exit__(self, *exc):
        from pyscf import lib

        lib.num_threads(self.old)


# --------------------------------------------------------------------------- molecule

def _alpha_dicts(tensors_au: np.ndarray, names: list[str]) -> tuple[dict, dict]:
    iso, ten = {}, {}
    for name, t in zip(names, tensors_au):
        t_a3 = t * BOHR3_TO_A3
        iso[name] = float(np.trace(t_a3) / 3.0)
        ten[name] = [[float(v) for v in row] for row in t_a3]
    return iso, ten


def _molecule_calc(
    atoms, *, method: str, basis: str, wavelengths_nm: dict[str, float], charge: int, spin: int,
    threads: int, max_memory_mb: float, optimise: bool, cache_file: Path | None,
    progress: ProgressFn | None, label: str, density_fit: bool = False,
    grid_level: int | None = None,
) -> dict:
    cached = _read_cache(cache_file)
    if cached is not None:
        if progress:
            progress("qm", f"{label}: cached result from {cache_file.name}")
        cached["from_cache"] = True
        return cached
    t0 = time.perf_counter()
    warnings: list[str] = []
    if not any(tag in split_basis(basis)[0].lower() for tag in ("+", "aug", "diffuse", "d-aug")):
        warnings.append(
            f"basis {basis} has no diffuse functions: polarisabilities are underestimated (~20 % for 6-31G*)"
        )
    mol = _build_mol(atoms, basis, charge, spin, max_memory_mb, warnings)
    with _Threads(threads):
        opt_basis = None
        if optimise:
            mol, opt_basis = _optimise_geometry(mol, method, basis, warnings, progress, label)
        if progress:
            progress("qm", f"{label}: SCF {method}/{basis} ({mol.natm} atoms, {mol.nao} basis functions)")
        t_scf = time.perf_counter()
        mf, gap = _run_scf(mol, method, warnings, density_fit, grid_level)
        t_scf = time.perf_counter() - t_scf
        names = ["static", *wavelengths_nm]
        omegas = [0.0] + [wavelength_to_omega_au(wavelengths_nm[k]) for k in wavelengths_nm]
        if gap < 3.0 * max(omegas):
            warnings.append(
                f"HOMO-LUMO gap {gap:.3f} E_h is within 3x of the photon energy {max(omegas):.3f} E_h: "
                "near an absorption, α(ω) is strongly dispersive"
            )
        if progress:
            progress("qm", f"{label}: linear response at {len(omegas)} frequencies ({', '.join(names)})")
        info: dict = {}
        t_resp = time.perf_counter()

        def on_iteration(it: int, res: float) -> None:
            if progress:
                progress("qm", f"{label}: response iteration {it}, largest residual {res:.1e} "
                               f"(converged below {_RESPONSE_TOL:.0e}), "
                               f"{time.perf_counter() - t_resp:.0f} s")

        try:
            tensors = polarizability_tensors(
                mf, omegas, tol=_RESPONSE_TOL, max_cycle=_RESPONSE_MAX_CYCLE, info=info,
                on_iteration=on_iteration,
            )
        except ResponseNotConverged as exc:
            raise ResponseNotConverged(f"{label} ({method}/{basis}): {exc}") from None
        t_resp = time.perf_counter() - t_resp
    iso, ten = _alpha_dicts(tensors, names)
    result = {
        "cache_version": _CACHE_VERSION,
        "alpha_A3": iso,
        "alpha_tensor_A3": ten,
        "method": method,
        "basis": basis,
        "optimised_with": f"{method}/{opt_basis}" if opt_basis else None,
        "density_fit": bool(density_fit),
        "grid_level": grid_level,
        "charge": int(charge),
        "n_atoms": int(mol.natm),
        "n_basis": int(mol.nao),
        "n_electrons": int(mol.nelectron),
        "scf_energy_Eh": float(mf.e_tot),
        "homo_lumo_gap_Eh": gap,
        "response_iterations": int(info["iterations"]),
        "scf_s": t_scf,
        "response_s": t_resp,
        "wall_s": time.perf_counter() - t0,
        "threads": threads,
        "geometry_A": [
            [mol.atom_symbol(i), *[float(c) for c in xyz]]
            for i, xyz in enumerate(mol.atom_coords(unit="Angstrom"))
        ],
        "warnings": warnings,
    }
    _write_cache(cache_file, result)
    result["from_cache"] = False
    return result


def molecule_polarizability(
    atoms: list[tuple[str, tuple[float, float, float]]],
    *,
    method: str = "HF",
    basis: str = "6-31+G*",
    wavelengths_nm: dict[str, float] = FRAUNHOFER_NM,
    charge: int = 0,
    spin: int = 0,
    threads: int = 1,
    max_memory_mb: int = 4000,
    optimise: bool = False,
    workdir: Path | None = None,
    progress: ProgressFn | None = None,
    density_fit: bool = False,
    grid_level: int | None = None,
) -> dict:
    """Static and dynamic polarisability of one closed-shell molecule at a given geometry (Å).

    Returns ``alpha_A3`` (isotropic Tr(α)/3 in Å³ per key: ``static`` and each wavelength name),
    ``alpha_tensor_A3`` (3×3 per key, Å³, in the frame of ``atoms``), ``method``, ``basis``,
    ``n_atoms``, ``n_basis``, ``scf_energy_Eh``, ``response_iterations`` (CG steps of the joint
    solve over all frequencies), ``wall_s``, ``warnings`` and diagnostic keys (``scf_s``,
    ``response_s``, ``homo_lumo_gap_Eh``, ``geometry_A``, ``from_cache``).
    Raises InvalidQMSettings, SCFNotConverged or ResponseNotConverged.
    """
    method, basis, wl = _check_common(method, basis, wavelengths_nm, threads, max_memory_mb)
    grid_level = _check_grid(grid_level)
    if not atoms:
        raise InvalidQMSettings("atoms is empty")
    payload = {"atoms": [[s, [round(float(c), 6) for c in xyz]] for s, xyz in atoms], "method": method,
               "basis": basis, "wl": wl, "charge": charge, "spin": spin, "optimise": bool(optimise),
               "v": _CACHE_VERSION, **_solver_tags(density_fit, grid_level)}
    cache_file = Path(workdir) / f"qm_molecule_{_key(payload)}.json" if workdir else None
    return _molecule_calc(
        atoms, method=method, basis=basis, wavelengths_nm=wl, charge=charge, spin=spin, threads=threads,
        max_memory_mb=max_memory_mb, optimise=optimise, cache_file=cache_file, progress=progress,
        label="molecule", density_fit=density_fit, grid_level=grid_level,
    )


# --------------------------------------------------------------------------- repeat unit

def repeat_unit_polarizability(
    psmiles: str,
    *,
    method: str = "HF",
    basis: str = "6-31+G*",
    wavelengths_nm: dict[str, float] = FRAUNHOFER_NM,
    mode: str = "capped_monomer",
    optimise: bool = False,
    threads: int = 1,
    max_memory_mb: int = 4000,
    workdir: Path | None = None,
    progress: ProgressFn | None = None,
    density_fit: bool = False,
    grid_level: int | None = None,
) -> dict:
    """Isotropic static and frequency-dependent polarisability (Å³) of one polymer repeat unit.

    ``mode`` ``capped_monomer``: α(H–U–H); ``dimer_minus_monomer``: α(H–U–U–H) − α(H–U–H)
    (isotropic values subtracted per key).  ``method`` "HF" or a PySCF/libxc functional
    (e.g. "CAM-B3LYP", "wB97X-D", "B3LYP"); ``basis`` any PySCF basis name; ``grid_level`` the
    DFT integration grid (PySCF levels 0–9, None = 3): level 1 changes α by ≤ 1.5e-5 (relative)
    against level 3 for PMMA and a chlorophenyl sulfone unit and halves the DFT cost.

    Returns ``alpha_A3`` {"static", "F", "D", "C"} (Å³), ``alpha_tensor_A3`` (capped_monomer: 3×3
    per key in the monomer's frame; dimer_minus_monomer: {"monomer": {...}, "dimer": {...}} since a
    tensor difference between two differently oriented molecules has no meaning), ``method``,
    ``basis``, ``mode``, ``n_atoms`` / ``n_basis`` (of the largest molecule computed),
    ``scf_energy_Eh`` (of that molecule), ``response_iterations`` (summed), ``wall_s``,
    ``warnings``, ``wavelengths_nm``, ``psmiles``, ``components`` (per-molecule results).
    With ``workdir`` every molecule result and the final result are cached as JSON; a rerun
    returns them (``from_cache`` True).  Raises InvalidPolymer/InvalidQMSettings (ValueError)
    for bad input, BuildError, SCFNotConverged, ResponseNotConverged.
    """
    t0 = time.perf_counter()
    method, basis, wl = _check_common(method, basis, wavelengths_nm, threads, max_memory_mb)
    grid_level = _check_grid(grid_level)
    if mode not in MODES:
        raise InvalidQMSettings(f"mode must be one of {MODES}, got {mode!r}")
    from core.chem import polymer

    polymer.validate_psmiles(psmiles)
    payload = {"psmiles": psmiles, "method": method, "basis": basis, "wl": wl, "mode": mode,
               "optimise": bool(optimise), "v": _CACHE_VERSION,
               **_solver_tags(density_fit, grid_level)}
    key = _key(payload)
    wd = Path(workdir) if workdir is not None else None
    final_file = wd / f"qm_result_{key}.json" if wd else None
    cached = _read_cache(final_file)
    if cached is not None:
        if progress:
            progress("qm", f"cached repeat-unit polarisability from {final_file.name}")
        cached["from_cache"] = True
        return cached

    n_list = [1] if mode == "capped_monomer" else [1, 2]
    comps: dict[str, dict] = {}
    for n in n_list:
        label = "monomer" if n == 1 else "dimer"
        if progress:
            progress("qm", f"{label}: building H-capped {'repeat unit' if n == 1 else 'dimer'} geometry")
        gkey = _key({"psmiles": psmiles, "n_units": n, "v": _CACHE_VERSION})  # shared by all methods
        geom_file = wd / f"qm_geometry_{label}_{gkey}.json" if wd else None
        geom = _read_cache(geom_file)
        if geom is None:
            geom = {"cache_version": _CACHE_VERSION, "atoms": capped_geometry(psmiles, n)}
            _write_cache(geom_file, geom)
        atoms = [(s, tuple(xyz)) for s, xyz in geom["atoms"]]
        comps[label] = _molecule_calc(
            atoms, method=method, basis=basis, wavelengths_nm=wl, charge=0, spin=0, threads=threads,
            max_memory_mb=max_memory_mb, optimise=optimise,
            cache_file=wd / f"qm_{label}_{key}.json" if wd else None, progress=progress, label=label,
            density_fit=density_fit, grid_level=grid_level,
        )

    names = ["static", *wl]
    mono = comps["monomer"]
    if mode == "capped_monomer":
        alpha = dict(mono["alpha_A3"])
        tensor = mono["alpha_tensor_A3"]
        big = mono
    else:
        dim = comps["dimer"]
        alpha = {k: dim["alpha_A3"][k] - mono["alpha_A3"][k] for k in names}
        tensor = {"monomer": mono["alpha_tensor_A3"], "dimer": dim["alpha_tensor_A3"]}
        big = dim
    warnings = sorted({w for c in comps.values() for w in c["warnings"]})
    if alpha["static"] <= 0:
        raise ResponseNotConverged(
            f"repeat-unit polarisability came out non-positive ({alpha['static']:.3f} Å³); "
            "the dimer and monomer calculations are inconsistent"
        )
    if any(alpha[wl_names] < alpha["static"] for wl_names in wl):
        warnings.append("α(ω) < α(0) at some wavelength: normal dispersion violated (numerical noise?)")
    from pyscf import __version__ as pyscf_version

    result = {
        "cache_version": _CACHE_VERSION,
        "psmiles": psmiles,
        "alpha_A3": alpha,
        "alpha_tensor_A3": tensor,
        "method": method,
        "basis": basis,
        "mode": mode,
        "optimise": bool(optimise),
        "density_fit": bool(density_fit),
        "grid_level": grid_level,
        "wavelengths_nm": wl,
        "n_atoms": big["n_atoms"],
        "n_basis": big["n_basis"],
        "scf_energy_Eh": big["scf_energy_Eh"],
        "response_iterations": int(sum(c["response_iterations"] for c in comps.values())),
        "wall_s": time.perf_counter() - t0,
        "compute_s": float(sum(c["wall_s"] for c in comps.values())),
        "threads": threads,
        "pyscf_version": pyscf_version,
        "warnings": warnings,
        "components": {k: {kk: vv for kk, vv in c.items() if kk != "from_cache"} for k, c in comps.items()},
    }
    _write_cache(final_file, result)
    result["from_cache"] = False
    return result
