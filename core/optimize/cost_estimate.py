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
* QM smoke (HF/STO-3G): A = 10.60 s, B = 2.87, 87 units of 23–233 AOs (the 7 measured units
  and 80 ``qm`` steps of the 300-polymer pool sweep, ``bench_pool_simulability.py``), RMS ×1.27;
  all in PySCF's in-core regime (``qm_incore``: ≤ ~240 orbitals at 4,000 MB). Beyond it an SCF
  without density fitting (smoke) recomputes the integrals every iteration: × ``qm_direct_factor``
  = 4.58 (geometric mean of 2 units against this fit: 251 AOs 645 s, ×4.32; 283 AOs 1,023 s,
  ×4.85). The earlier 7-point fit (A = 10.2, B = 2.22) predicted 102 s for the 283-AO unit, 10×
  too little.
* QM standard (CAM-B3LYP/aug-cc-pVDZ dimer, no RI, grid 3): quick's fit applied to the
  standard molecule's AOs — not measured, a lower bound.

A budget-conscious proposal divides an acquisition value by ``estimate_cost(...).total_s``; the
factor-of-~2 errors above are small against the 100× spread of the pool.

``simulability`` is the cheap pre-check before a candidate is proposed: the polymer SMILES passes
the simulation's own validation (``core.simulation.build.validated_psmiles``), every atom of the
H-capped trimer gets a GAFF2 type (``core.chem.gaff2``), the QM molecule is within a size
limit, and the unit has no motif pair that leaves no 3-D structure (``NO_3D_MOTIFS``).
It never runs an external program.

``screen(psmiles, preset, cache=store)`` is what the campaign and the pages use: per polymer the
SA score and motif flags (``core.chem.feasibility``), the estimated CPU minutes and the pre-check
verdict, as one table.  Computing it takes ~6 ms per polymer and preset (~1 min for the 10k
shipped pool), so the shipped pool's values are shipped too (``assets/pool_screening.npz``,
all presets, written by ``python -m core.campaign screen-pool``; ~0.05 s to read), other
polymers' are cached in the store (``Store.cached_screening``), both under
``screening_version()`` (a hash of the coefficients, limits and motif names: a change of the
model makes old values unused, never wrong).
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Mapping, Protocol, Sequence

import numpy as np
import pandas as pd
from rdkit import Chem

from core.config import DEFAULT_PRESET, PRESET_NAMES, REPO_ROOT, SMOKE_PRESET, STANDARD_PRESET

__all__ = ["CostEstimate", "Simulability", "qm_size", "qm_incore", "cell_atoms", "trimer_atoms",
           "estimate_cost", "simulability", "MAX_QM_ATOMS", "COST_MODEL", "SCREEN_VECTOR",
           "NO_3D_MOTIFS",
           "SCREEN_COLUMNS", "SHIPPED_SCREENING", "ScreenCache", "screening_version",
           "screen_vectors", "screen", "write_shipped_screening"]

# ---- fitted coefficients (see the module docstring) ----
COST_MODEL = {
    # s = A · N_tri^B (one sqm single point + parmchk2 + tleap)
    "forcefield": {"A": 6.47e-5, "B": 2.231},
    # s per cell atom; standard = quick's 7.03e-6 s per atom-step × its 13.58 M steps
    "md": {SMOKE_PRESET: 0.01293, DEFAULT_PRESET: 0.3488,
           STANDARD_PRESET: 7.03e-6 * 13_580_000},
    # s = A · (N_AO / 100)^B; standard = quick's fit on the standard molecule and basis
    "qm": {SMOKE_PRESET: {"A": 10.60, "B": 2.874}, DEFAULT_PRESET: {"A": 15.91, "B": 2.843},
           STANDARD_PRESET: {"A": 15.91, "B": 2.843}},
    # × this when the SCF without density fitting cannot keep its integrals in memory
    # (qm_incore False): they are recomputed for every SCF and response iteration
    "qm_direct_factor": 4.58,
}
#: memory (MB) the pipeline gives PySCF (``repeat_unit_polarizability``'s default)
QM_MAX_MEMORY_MB = 4000
#: the QM process's own memory (MB) beside the integrals, in PySCF's in-core test
QM_PROCESS_MB = 400
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

    from core.simulation.qm import split_basis  # noqa: PLC0415

    default, per_element = split_basis(basis)
    basis = per_element.get(element, default)
    spin = gto.charge(element) % 2
    try:
        return int(gto.M(atom=f"{element} 0 0 0", basis=basis, spin=spin, verbose=0).nao)
    except Exception:  # noqa: BLE001 - PySCF raises plain errors for a missing element
        ecp = "def2-SVPD" if gto.charge(element) > 36 else None
        return int(gto.M(atom=f"{element} 0 0 0", basis="def2-SVPD", ecp=ecp, spin=spin,
                         verbose=0).nao)


def _unit_elements(psmiles: str) -> dict[str, int]:
    """Element counts of the H-capped repeat unit (the two ``*`` → H)."""
    return dict(_unit_element_items(psmiles))


@lru_cache(maxsize=4096)
def _unit_element_items(psmiles: str) -> tuple[tuple[str, int], ...]:
    from core.simulation.build import validated_psmiles  # noqa: PLC0415

    mol = Chem.AddHs(validated_psmiles(psmiles))
    out: dict[str, int] = {}
    for a in mol.GetAtoms():
        sym = "H" if a.GetAtomicNum() == 0 else a.GetSymbol()
        out[sym] = out.get(sym, 0) + 1
    return tuple(out.items())


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


def qm_incore(n_ao: int, max_memory_mb: float = QM_MAX_MEMORY_MB,
              process_mb: float = QM_PROCESS_MB) -> bool:
    """Whether PySCF keeps the two-electron integrals of ``n_ao`` orbitals in memory: its test
    ``nbf⁴/1e6 MB + current memory < 0.95 · max_memory`` (``pyscf.scf.hf.SCF._is_mem_enough``;
    8-fold symmetric doubles). At 4,000 MB that holds up to ~240 orbitals."""
    return n_ao ** 4 / 1e6 + process_mb < 0.95 * max_memory_mb


@lru_cache(maxsize=4096)
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
    if not p.qm_density_fit and not qm_incore(q_aos):
        t_qm *= COST_MODEL["qm_direct_factor"]
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


def _typing_error(psmiles: str) -> str | None:
    """None when every atom of the H-capped trimer gets a GAFF2 type, else the reason."""
    from core.chem import gaff2  # noqa: PLC0415
    from core.chem.polymer import linear_oligomer  # noqa: PLC0415

    try:
        tri = gaff2.prepare(linear_oligomer(psmiles, 3, "H", embed=False))
        gaff2.atom_types(tri)
    except Exception as exc:  # noqa: BLE001 - any typing failure means "cannot be simulated"
        return f"GAFF2 atom typing failed: {exc}"
    return None


def _qm_limit(preset_name: str, max_qm_atoms: int | None = None) -> int:
    return max_qm_atoms if max_qm_atoms is not None else MAX_QM_ATOMS.get(preset_name, 100)


def _qm_reason(q_atoms: int, preset_name: str, limit: int) -> str:
    return (f"The QM molecule has {q_atoms} atoms, more than the {preset_name} limit of "
            f"{limit}.")


#: motif flags (``core.chem.feasibility``) that together mean no reliable 3-D structure: a
#: bridgehead double bond of a small bicycle inside a cyclobutadiene-like four-ring (the
#: bicyclo[1.1.1]pentene-type units of the shipped pool, 197 of 10,000). Measured: all 4 such
#: polymers of the pool sweep (docs/pool_simulability.md) failed in build, each after the full
#: build limit; of 12 more drawn at random, 8 could not embed even the H-capped monomer in 30 s.
NO_3D_MOTIFS: frozenset[str] = frozenset({"anti-Bredt double bond", "antiaromatic four-ring"})
_NO_3D_REASON = ("No reliable 3-D structure: a bridgehead double bond inside a cyclobutadiene-"
                 "like four-ring (anti-Bredt; RDKit's embedding fails on such units).")


def _no_3d(flags: Iterable[str]) -> bool:
    return NO_3D_MOTIFS <= set(flags)


def simulability(psmiles: str, preset=DEFAULT_PRESET, *,
                 max_qm_atoms: int | None = None) -> Simulability:
    """Can ``psmiles`` be simulated with ``preset``?  Checks, without running any program:
    the simulation's SMILES validation (elements with GAFF2 parameters, two ``*``, neutral),
    GAFF2 typing of every atom of the H-capped trimer (``core.chem.gaff2``), and the QM molecule's
    size against ``max_qm_atoms`` (default ``MAX_QM_ATOMS[preset]``), and the motifs that leave
    no 3-D structure (``NO_3D_MOTIFS``)."""
    from core.chem.feasibility import motif_flags  # noqa: PLC0415
    from core.simulation.build import validated_psmiles  # noqa: PLC0415

    p = _preset(preset)
    limit = _qm_limit(p.name, max_qm_atoms)
    try:
        validated_psmiles(psmiles)
    except ValueError as exc:
        return Simulability(psmiles, False, (str(exc),))
    reasons = []
    if _no_3d(motif_flags(psmiles)):
        reasons.append(_NO_3D_REASON)
    typing = _typing_error(psmiles)
    if typing is not None:
        reasons.append(typing)
    q_atoms, _ = qm_size(psmiles, p)
    if q_atoms > limit:
        reasons.append(_qm_reason(q_atoms, p.name, limit))
    return Simulability(psmiles, not reasons, tuple(reasons), q_atoms)


# --------------------------------------------------------------------------- pool screening
#: the numbers kept per polymer and preset (one float64 vector; :func:`screen` decodes them):
#: SA score (1–10), motif-flag bits (bit i = i-th name of ``core.chem.feasibility.MOTIFS``),
#: CPU seconds of charges, MD and QM, pre-check failure bits, atoms of the QM molecule
SCREEN_VECTOR: tuple[str, ...] = ("sa_score", "flag_bits", "forcefield_s", "md_s", "qm_s",
                                  "check_bits", "qm_atoms")
#: pre-check failure bits of ``check_bits``
CHECK_INVALID, CHECK_UNTYPED, CHECK_QM_TOO_LARGE, CHECK_NO_3D = 1, 2, 4, 8
#: columns of :func:`screen`'s frame
SCREEN_COLUMNS: tuple[str, ...] = ("psmiles", "sa_score", "flags", "flagged", "cost_cpu_min",
                                   "simulable", "unsimulable_reason")
#: the shipped screening of the shipped pool (``python -m core.campaign screen-pool``)
SHIPPED_SCREENING = REPO_ROOT / "assets" / "pool_screening.npz"
_SCREEN_FORMAT = 1
_MEMO: dict[tuple[str, str], np.ndarray] = {}
_MEMO_MAX = 200_000


class ScreenCache(Protocol):
    """Where :func:`screen` keeps vectors between processes (``core.store.Store`` is one):
    ``cached_screening(preset, version, psmiles) -> {psmiles: vector}`` and
    ``cache_screening(preset, version, {psmiles: vector})``."""

    def cached_screening(self, preset: str, version: str,
                         psmiles: Iterable[str]) -> dict[str, np.ndarray]: ...

    def cache_screening(self, preset: str, version: str,
                        mapping: Mapping[str, np.ndarray]) -> None: ...


@lru_cache(maxsize=1)
def screening_version() -> str:
    """A short hash of everything a screening vector depends on (cost coefficients, QM-size
    limits, motif names, the vector's layout): a cached vector of another version is never
    used."""
    from core.chem.feasibility import MOTIFS  # noqa: PLC0415

    text = json.dumps({"format": _SCREEN_FORMAT, "cost": COST_MODEL, "qm": MAX_QM_ATOMS,
                       "motifs": list(MOTIFS), "vector": SCREEN_VECTOR,
                       "no_3d": sorted(NO_3D_MOTIFS)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def screen_vectors(psmiles: str, presets: Sequence[str] = PRESET_NAMES) -> dict[str, np.ndarray]:
    """The :data:`SCREEN_VECTOR` of one polymer for each preset, computed (no cache).  The
    preset-independent parts (SA score, flags, validation, GAFF2 typing) are computed once.
    An invalid polymer SMILES gets NaN numbers and ``CHECK_INVALID``; never raises for one."""
    from core.chem.feasibility import MOTIFS, motif_flags, sa_score  # noqa: PLC0415
    from core.simulation.build import validated_psmiles  # noqa: PLC0415

    nan = float("nan")
    try:
        sa = sa_score(psmiles)
    except ValueError:
        sa = nan
    no_3d = 0
    try:
        names = list(MOTIFS)
        flags = motif_flags(psmiles)
        bits = float(sum(1 << names.index(f) for f in flags))
        no_3d = CHECK_NO_3D if _no_3d(flags) else 0
    except ValueError:
        bits = nan
    try:
        validated_psmiles(psmiles)
    except ValueError:
        return {p: np.array([sa, bits, nan, nan, nan, CHECK_INVALID, nan]) for p in presets}
    checks = (CHECK_UNTYPED if _typing_error(psmiles) is not None else 0) | no_3d
    out = {}
    for name in presets:
        c = estimate_cost(psmiles, name)
        big = CHECK_QM_TOO_LARGE if c.qm_atoms > _qm_limit(c.preset) else 0
        out[name] = np.array([sa, bits, c.forcefield_s, c.md_s, c.qm_s, checks | big,
                              c.qm_atoms], dtype=float)
    return out


@lru_cache(maxsize=2)
def _shipped(path: str, stamp: tuple[int, int]) -> tuple[str, dict[str, int], dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as z:
        version = str(z["version"])
        index = {str(s): i for i, s in enumerate(z["psmiles"].tolist())}
        vectors = {k[2:]: z[k] for k in z.files if k.startswith("V_")}
    return version, index, vectors


def _shipped_vectors(preset: str, psmiles: Sequence[str]) -> dict[str, np.ndarray]:
    """Vectors of ``SHIPPED_SCREENING`` for the polymers it holds (none when it is missing or
    of another :func:`screening_version`)."""
    try:
        st = SHIPPED_SCREENING.stat()
        version, index, vectors = _shipped(str(SHIPPED_SCREENING), (st.st_mtime_ns, st.st_size))
    except (OSError, KeyError, ValueError):
        return {}
    if version != screening_version() or preset not in vectors:
        return {}
    V = vectors[preset]
    return {s: V[index[s]] for s in psmiles if s in index}


def write_shipped_screening(psmiles: Sequence[str], path: str | Path = SHIPPED_SCREENING, *,
                            presets: Sequence[str] = PRESET_NAMES,
                            progress: Callable[[int, int], None] | None = None) -> Path:
    """Compute the screening vectors of ``psmiles`` (canonical polymer SMILES) for every preset
    and write them as a compressed ``.npz`` (``version``, ``psmiles``, ``V_<preset>`` (n, 7)),
    atomically.  ``progress(done, total)`` is called every 100 polymers."""
    from core.atomic_io import atomic_write_bytes  # noqa: PLC0415

    ps = [str(s) for s in psmiles]
    V = {p: np.empty((len(ps), len(SCREEN_VECTOR))) for p in presets}
    for i, s in enumerate(ps):
        for p, v in screen_vectors(s, presets).items():
            V[p][i] = v
        if progress is not None and (i + 1) % 100 == 0:
            progress(i + 1, len(ps))
    buf = io.BytesIO()
    np.savez_compressed(buf, version=np.array(screening_version()),
                        psmiles=np.array(ps, dtype=str), **{f"V_{p}": v for p, v in V.items()})
    out = Path(path)
    atomic_write_bytes(out, buf.getvalue())
    _shipped.cache_clear()
    return out


def _lookup(psmiles: list[str], preset: str, cache: ScreenCache | None,
            progress: Callable[[int, int], None] | None) -> np.ndarray:
    """(n, 7) vectors: the shipped file, ``cache``, then computed (and written to ``cache`` and
    the memo). The process memo stands in for a store only when there is none: with a store,
    every polymer outside the shipped pool is read from (or written to) that store, so what a
    campaign was screened with is in its own database whatever this process did before."""
    version = screening_version()
    found: dict[str, np.ndarray] = {}
    if cache is None:
        for s in psmiles:
            v = _MEMO.get((preset, s))
            if v is not None:
                found[s] = v
    missing = [s for s in dict.fromkeys(psmiles) if s not in found]
    new: dict[str, np.ndarray] = {}
    if missing:
        new.update(_shipped_vectors(preset, missing))
        missing = [s for s in missing if s not in new]
    if missing and cache is not None:
        new.update(cache.cached_screening(preset, version, missing))
        missing = [s for s in missing if s not in new]
    computed: dict[str, np.ndarray] = {}
    for i, s in enumerate(missing):
        computed[s] = screen_vectors(s, (preset,))[preset]
        if progress is not None:
            progress(i + 1, len(missing))
    if computed and cache is not None:
        cache.cache_screening(preset, version, computed)
    new.update(computed)
    if len(_MEMO) + len(new) > _MEMO_MAX:
        _MEMO.clear()
    for s, v in new.items():
        _MEMO[(preset, s)] = v
    found.update(new)
    if not psmiles:
        return np.zeros((0, len(SCREEN_VECTOR)))
    return np.vstack([found[s] for s in psmiles])


def screen(psmiles: Sequence[str], preset: str = DEFAULT_PRESET, *,
           cache: ScreenCache | None = None,
           progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Per polymer (rows in input order; pass canonical polymer SMILES so that cached values
    are found): ``sa_score`` (1 easy … 10 hard, NaN when RDKit cannot score it), ``flags``
    (motif names of ``core.chem.feasibility.MOTIFS`` joined by "; ", "" when none),
    ``flagged`` (bool), ``cost_cpu_min`` (estimated CPU minutes on one core for ``preset``,
    :func:`estimate_cost`; NaN when the simulation rejects the SMILES), ``simulable`` (the
    :func:`simulability` pre-check) and ``unsimulable_reason`` ("" when simulable).

    Looked up in this order: the process memo, the shipped file of the shipped pool
    (:data:`SHIPPED_SCREENING`), ``cache`` (the store), else computed (~5–10 ms per polymer)
    and written to ``cache``.  ``progress(done, total)`` is called per computed polymer.
    Raises :class:`ValueError` for an unknown preset."""
    from core.chem.feasibility import MOTIFS  # noqa: PLC0415

    p = _preset(preset).name
    ps = [str(s) for s in psmiles]
    V = _lookup(ps, p, cache, progress)
    names = list(MOTIFS)
    bits = V[:, 1]
    flags = ["; ".join(n for k, n in enumerate(names) if int(b) >> k & 1)
             if np.isfinite(b) else "" for b in bits]
    check = V[:, 5].astype(int)
    limit = _qm_limit(p)
    reasons = []
    for c, q in zip(check, V[:, 6]):
        r = []
        if c & CHECK_INVALID:
            r.append("The simulation rejects this polymer SMILES (see simulability()).")
        if c & CHECK_NO_3D:
            r.append(_NO_3D_REASON)
        if c & CHECK_UNTYPED:
            r.append("GAFF2 atom typing failed.")
        if c & CHECK_QM_TOO_LARGE:
            r.append(_qm_reason(int(q), p, limit))
        reasons.append(" ".join(r))
    return pd.DataFrame({"psmiles": ps, "sa_score": V[:, 0], "flags": flags,
                         "flagged": np.array([bool(f) for f in flags], dtype=bool),
                         "cost_cpu_min": (V[:, 2] + V[:, 3] + V[:, 4]) / 60.0,
                         "simulable": check == 0, "unsimulable_reason": reasons},
                        columns=list(SCREEN_COLUMNS))
