"""What a candidate will cost to simulate, and whether it can be simulated at all (pure functions).

CPU-cost model (seconds on one core; ``estimate_cost``), per step of ``core.simulation``:

* charges (step ``forcefield``): AM1-BCC by antechamber/sqm on the CH3-capped trimer plus
  parmchk2/tleap, ``t = A_FF · N_tri^B_FF · (1 + maxcyc)`` with ``N_tri`` the trimer's atoms and
  ``maxcyc`` the preset's sqm optimisation cycles for S-containing units (0 otherwise: one
  single point, the geometry from the builder).
* MD (step ``md``): proportional to the atoms in the cell, ``t = C_MD[preset] · N_cell``, with
  ``N_cell = n_chains · (DP · N_unit + 8)`` and DP from the preset's ``chain_atoms`` (so nearly
  constant per preset; it grows only for very large units, where DP hits ``min_dp``).
* QM (step ``qm``): PySCF response on the H-capped unit (×2: dimer-minus-monomer adds the
  dimer), ``t = A_QM[preset] · (N_basis / 100)^B_QM[preset]`` with ``N_basis`` the number of
  atomic orbitals in the preset's basis (``qm_size``).

Fit (``benchmarks/bench_cost_model.py`` prints it from the measurement files; log-log least
squares, errors are the RMS of log10(measured / fitted) → a factor ×10^rms):

* charges: A_FF = 6.47e-5 s, B_FF = 2.23; 80 smoke runs of shipped-pool polymers, trimers of
  44–287 atoms (0.3–28 s); RMS error ×1.37 (0.136 in log10). Not covered: antechamber's own
  AM1-BCC bond typing after sqm, which on 2 of 84 large conjugated trimers (164 and 170 atoms,
  aromatic lactams with cyclohexadienones) ran past the 300 s step limit while sqm took 10 s.
* MD: 7.0e-6 s per atom and time step in both measured presets (smoke 7.8e-6 from 2 runs'
  CPU time; quick 7.0e-6 from 26 density-benchmark runs' wall time on one thread, RMS ×1.22),
  so C_MD = smoke 0.0129, quick 0.349 s per cell atom (≈ 220 s for a 640-atom quick cell);
  standard = 7.03e-6 × 13.58 M steps = 95 s per atom, an extrapolation and a lower bound
  (12 Å cut-off, PPPM 1e-6, extensions not counted).
* QM quick (CAM-B3LYP/6-31+G*, RI, grid 1, one thread): A = 15.9 s, B = 2.84, 5 units of
  70–294 AOs (11–27 atoms; 5.8–332 s), RMS ×1.04; the 4-point fit predicted 293 s for
  4-chlorobenzyl methacrylate (282 AOs) before it was measured: 319 s (−8 %).
  Extrapolated beyond ~300 AOs (the pool's median quick unit has 38 atoms, ~390 AOs).
* QM smoke (HF/STO-3G): A = 10.2 s, B = 2.22, 7 units of 23–206 AOs (11–86 atoms), RMS ×1.65.
* QM standard (CAM-B3LYP/aug-cc-pVDZ dimer, no RI, grid 3): quick's fit applied to the
  standard molecule's AOs — not measured, a lower bound.

A budget-conscious proposal divides an acquisition value by ``estimate_cost(...).total_s``; the
factor-of-~2 errors above are small against the 100× spread of the pool.

``simulability`` is the cheap pre-check before a candidate is proposed: the polymer SMILES passes
the simulation's own validation (``core.simulation.build.validated_psmiles``), every atom of the
H-capped trimer gets a GAFF2 type (``core.chem.gaff2``), and the QM molecule is within a size
limit.
It never runs an external program.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from rdkit import Chem

from core.config import DEFAULT_PRESET, SMOKE_PRESET, STANDARD_PRESET

__all__ = ["CostEstimate", "Simulability", "qm_size", "cell_atoms", "trimer_atoms",
           "estimate_cost", "simulability", "MAX_QM_ATOMS", "COST_MODEL"]

# ---- fitted coefficients (see the module docstring) ----
COST_MODEL = {
    # s = A · N_tri^B (one sqm single point + parmchk2 + tleap)
    "forcefield": {"A": 6.47e-5, "B": 2.231},
    # s per cell atom; standard = quick's 7.03e-6 s per atom-step × its 13.58 M steps
    "md": {SMOKE_PRESET: 0.01293, DEFAULT_PRESET: 0.3488,
           STANDARD_PRESET: 7.03e-6 * 13_580_000},
    # s = A · (N_AO / 100)^B; standard = quick's fit on the standard molecule and basis
    "qm": {SMOKE_PRESET: {"A": 10.16, "B": 2.218}, DEFAULT_PRESET: {"A": 15.91, "B": 2.843},
           STANDARD_PRESET: {"A": 15.91, "B": 2.843}},
}
#: QM molecule atoms (default limit)
MAX_QM_ATOMS = {SMOKE_PRESET: 150, DEFAULT_PRESET: 100, STANDARD_PRESET: 60}


def _preset(preset):
    from core.simulation.presets import get_preset  # noqa: PLC0415
    return get_preset(preset)


@lru_cache(maxsize=None)
def _aos_per_element(basis: str, element: str) -> int:
    """Atomic orbitals of one atom in ``basis`` (PySCF, spherical); elements the basis lacks get
    def2-SVPD as in ``core.simulation.qm``."""
    from pyscf import gto  # noqa: PLC0415

    spin = gto.charge(element) % 2
    try:
        return int(gto.M(atom=f"{element} 0 0 0", basis=basis, spin=spin, verbose=0).nao)
    except Exception:  # noqa: BLE001 - PySCF raises plain errors for a missing element
        ecp = "def2-SVPD" if gto.charge(element) > 36 else None
        return int(gto.M(atom=f"{element} 0 0 0", basis="def2-SVPD", ecp=ecp, spin=spin,
                         verbose=0).nao)


def _unit_elements(psmiles: str) -> dict[str, int]:
    """Element counts of the H-capped repeat unit (the two ``*`` → H)."""
    from core.simulation.build import validated_psmiles  # noqa: PLC0415

    mol = Chem.AddHs(validated_psmiles(psmiles))
    out: dict[str, int] = {}
    for a in mol.GetAtoms():
        sym = "H" if a.GetAtomicNum() == 0 else a.GetSymbol()
        out[sym] = out.get(sym, 0) + 1
    return out


def qm_size(psmiles: str, preset=DEFAULT_PRESET) -> tuple[int, int]:
    """(atoms, atomic orbitals) of the preset's largest QM molecule: the H-capped unit, or the
    H-capped dimer for ``dimer_minus_monomer`` (2 × unit − 2 capping H)."""
    p = _preset(preset)
    el = _unit_elements(psmiles)
    atoms = sum(el.values())
    aos = sum(n * _aos_per_element(p.qm_basis, e) for e, n in el.items())
    if p.qm_mode == "dimer_minus_monomer":
        atoms, aos = 2 * atoms - 2, 2 * aos - 2 * _aos_per_element(p.qm_basis, "H")
    return atoms, aos


def _unit_atoms(psmiles: str) -> int:
    from core.simulation.build import unit_atoms  # noqa: PLC0415
    return unit_atoms(psmiles)


def trimer_atoms(psmiles: str, n: int = 3) -> int:
    """Atoms of the CH3-capped n-mer that gets AM1-BCC charges."""
    return n * _unit_atoms(psmiles) + 8


def cell_atoms(psmiles: str, preset=DEFAULT_PRESET) -> int:
    """Atoms in the preset's MD cell (n_chains CH3-capped chains of the chosen DP)."""
    from core.simulation.build import choose_dp  # noqa: PLC0415

    p = _preset(preset)
    dp = choose_dp(psmiles, p.chain_atoms, p.min_dp)
    return p.n_chains * (dp * _unit_atoms(psmiles) + 8)


@dataclass(frozen=True)
class CostEstimate:
    """Estimated CPU seconds on one core per expensive step, and the sizes they come from."""

    psmiles: str
    preset: str
    forcefield_s: float
    md_s: float
    qm_s: float
    trimer_atoms: int
    cell_atoms: int
    qm_atoms: int
    qm_basis_functions: int

    @property
    def total_s(self) -> float:
        """Sum of the three steps (s); build, packing and optics are seconds and left out."""
        return self.forcefield_s + self.md_s + self.qm_s

    @property
    def total_cpu_min(self) -> float:
        return self.total_s / 60.0

    def as_dict(self) -> dict:
        return {"psmiles": self.psmiles, "preset": self.preset,
                "forcefield_s": self.forcefield_s, "md_s": self.md_s, "qm_s": self.qm_s,
                "total_s": self.total_s, "trimer_atoms": self.trimer_atoms,
                "cell_atoms": self.cell_atoms, "qm_atoms": self.qm_atoms,
                "qm_basis_functions": self.qm_basis_functions}


def _has_sulfur(psmiles: str) -> bool:
    return "S" in _unit_elements(psmiles)


def estimate_cost(psmiles: str, preset=DEFAULT_PRESET) -> CostEstimate:
    """CPU seconds on one core for charges, MD and QM of ``psmiles`` with ``preset`` (see the
    module docstring for the model and its measured error). Raises UnsupportedPolymer
    (a ValueError) for a polymer SMILES the simulation rejects."""
    p = _preset(preset)
    name = p.name if p.name in COST_MODEL["md"] else DEFAULT_PRESET
    n_tri = trimer_atoms(psmiles, p.charge_oligomer_n)
    n_cell = cell_atoms(psmiles, p)
    q_atoms, q_aos = qm_size(psmiles, p)
    ff = COST_MODEL["forcefield"]
    maxcyc = p.sqm_maxcyc_sulfur if _has_sulfur(psmiles) else 0
    t_ff = ff["A"] * n_tri ** ff["B"] * (1 + maxcyc)
    t_md = COST_MODEL["md"][name] * n_cell
    qm = COST_MODEL["qm"][name]
    t_qm = qm["A"] * (q_aos / 100.0) ** qm["B"]
    return CostEstimate(psmiles=psmiles, preset=p.name, forcefield_s=float(t_ff),
                        md_s=float(t_md), qm_s=float(t_qm), trimer_atoms=n_tri,
                        cell_atoms=n_cell, qm_atoms=q_atoms, qm_basis_functions=q_aos)


@dataclass(frozen=True)
class Simulability:
    """Pre-check verdict: ``ok`` and, when not, ``reasons`` (sentences for a chemist)."""

    psmiles: str
    ok: bool
    reasons: tuple[str, ...]
    qm_atoms: int | None = None


def simulability(psmiles: str, preset=DEFAULT_PRESET, *,
                 max_qm_atoms: int | None = None) -> Simulability:
    """Can ``psmiles`` be simulated with ``preset``?  Checks, without running any program:
    the simulation's SMILES validation (elements with GAFF2 parameters, two ``*``, neutral),
    GAFF2 typing of every atom of the H-capped trimer (``core.chem.gaff2``), and the QM molecule's
    size against ``max_qm_atoms`` (default ``MAX_QM_ATOMS[preset]``)."""
    from core.chem import gaff2  # noqa: PLC0415
    from core.simulation.build import validated_psmiles  # noqa: PLC0415

    p = _preset(preset)
    limit = max_qm_atoms if max_qm_atoms is not None else MAX_QM_ATOMS.get(p.name, 100)
    try:
        validated_psmiles(psmiles)
    except ValueError as exc:
        return Simulability(psmiles, False, (str(exc),))
    reasons = []
    try:
        from core.chem.polymer import linear_oligomer  # noqa: PLC0415
        tri = gaff2.prepare(linear_oligomer(psmiles, 3, "H", embed=False))
        gaff2.atom_types(tri)
    except Exception as exc:  # noqa: BLE001 - any typing failure means "cannot be simulated"
        reasons.append(f"GAFF2 atom typing failed: {exc}")
    q_atoms, _ = qm_size(psmiles, p)
    if q_atoms > limit:
        reasons.append(f"The QM molecule has {q_atoms} atoms, more than the {p.name} limit of "
                       f"{limit}.")
    return Simulability(psmiles, not reasons, tuple(reasons), q_atoms)

