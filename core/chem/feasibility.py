"""Can a candidate be made, and is it fit for optics?  SA score and motif flags (pure functions).

Synthetic accessibility: the SA score of Ertl & Schuffenhauer, "Estimation of synthetic
accessibility score of drug-like molecules based on molecular complexity and fragment
contributions", J. Cheminf. 1, 8 (2009), as implemented in RDKit's Contrib folder
(``RDConfig.RDContribDir/SA_Score/sascorer.py`` with its ``fpscores.pkl.gz``, shipped inside the
rdkit wheel; loaded from there, not copied). Dimensionless, 1 (easy to make) … 10 (very hard);
Ertl & Schuffenhauer call scores above ~6 difficult. For a polymer it is computed on the H-capped
repeat unit (both ``*`` → H), i.e. the unit's carbon skeleton and groups, not the monomer's
polymerisable function: compare candidates with each other, not with drug scores.

Motif flags: groups that make a polymer unstable, reactive or coloured — unfit for a
transparent optical material. Searched in the H-capped linear dimer, so a group formed across
the bond between two units (``*O…O*`` → a peroxide) is found too. See ``MOTIFS`` for names,
patterns and reasons. The shipped pool generator already rejects peroxides, cumulenes and
cyclobutadienes (``core.pool.Filters``); imported candidates are not filtered that way.

Every function takes a polymer SMILES with two ``*`` and raises ``core.chem.polymer.InvalidPolymer``
(a ValueError) for an invalid one.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Iterable

from rdkit import Chem, RDConfig

__all__ = ["Motif", "MOTIFS", "SA_DIFFICULT", "Feasibility", "sa_score", "motif_flags",
           "assess", "assess_many"]

SA_DIFFICULT = 6.0  # SA score above which Ertl & Schuffenhauer call a molecule hard to make


@dataclass(frozen=True)
class Motif:
    """A flagged group: ``name`` (short label), ``why`` (one sentence for a chemist) and either
    SMARTS patterns (any match flags) or a ``test`` function on the capped dimer."""

    name: str
    why: str
    smarts: tuple[str, ...] = ()
    test: Callable[[Chem.Mol], bool] | None = field(default=None, compare=False)


def _double_bonded(atom: Chem.Atom) -> bool:
    """True for an aromatic atom or one with a double bond (in the ring or exocyclic)."""
    return atom.GetIsAromatic() or any(
        b.GetBondType() == Chem.BondType.DOUBLE for b in atom.GetBonds())


def _cyclobutadiene_like(mol: Chem.Mol) -> bool:
    """A four-membered ring with ≥ 3 sp2 atoms: cyclobutadiene, methylene- and
    dimethylene-cyclobutenes (3,4-dimethylenecyclobutene is a cyclobutadiene valence isomer),
    cyclobutenediones. Benzocyclobutene and cyclobutene (2 sp2 atoms) are not flagged."""
    for ring in mol.GetRingInfo().AtomRings():
        if len(ring) == 4 and sum(_double_bonded(mol.GetAtomWithIdx(i)) for i in ring) >= 3:
            return True
    return False


def _bridgeheads(mol: Chem.Mol, max_ring: int = 8) -> set[int]:
    """Bridgehead atoms of bridged bicycles whose two rings have ≤ ``max_ring`` atoms: atoms
    shared by two SSSR rings that share ≥ 3 atoms (fused rings share 2), with three ring
    neighbours in the union of the two rings."""
    rings = [set(r) for r in mol.GetRingInfo().AtomRings() if len(r) <= max_ring]
    out: set[int] = set()
    for i, a in enumerate(rings):
        for b in rings[i + 1:]:
            shared = a & b
            if len(shared) < 3:
                continue
            union = a | b
            for k in shared:
                nbrs = [n.GetIdx() for n in mol.GetAtomWithIdx(k).GetNeighbors()]
                if sum(n in union for n in nbrs) >= 3:
                    out.add(k)
    return out


def _anti_bredt(mol: Chem.Mol) -> bool:
    """A double bond at a bridgehead of a small bridged bicycle (Bredt's rule; rings ≤ 8 atoms):
    the p orbitals cannot align, the alkene is strained and reactive."""
    for k in _bridgeheads(mol):
        a = mol.GetAtomWithIdx(k)
        if not a.GetIsAromatic() and any(
                b.GetBondType() == Chem.BondType.DOUBLE for b in a.GetBonds()):
            return True
    return False


MOTIFS: dict[str, Motif] = {m.name: m for m in (
    Motif("antiaromatic four-ring",
          "Cyclobutadiene-like four-ring (≥ 3 sp2 atoms in a 4-ring): antiaromatic or a strained "
          "cyclobutadiene valence isomer, not isolable as a stable polymer.",
          test=_cyclobutadiene_like),
    Motif("anti-Bredt double bond",
          "Double bond at a bridgehead of a small bridged bicycle (violates Bredt's rule): "
          "highly strained, not stable.", test=_anti_bredt),
    Motif("cumulene", "Cumulated C=C=C double bonds (allene/cumulene): reactive, isomerises.",
          smarts=("[#6]=[#6]=[#6]",)),
    Motif("heterocumulene",
          "Ketene, isocyanate, isothiocyanate or carbodiimide (X=C=Y): reacts with water and "
          "nucleophiles.", smarts=("[#7,#8,#16]=[#6]=[#6,#7,#8,#16]",)),
    Motif("peroxide", "O–O bond: a peroxide decomposes thermally and by light (radical source).",
          smarts=("[#8]-[#8]",)),
    Motif("free sulfonic acid",
          "Free S(=O)(=O)OH: a strong, hygroscopic acid — water uptake and corrosion, and a "
          "charged group the force field and the optics model do not describe.",
          smarts=("[#16X4](=[#8])(=[#8])[OX2H1]",)),
    Motif("azo chromophore",
          "C–N=N–C azo group: absorbs in the visible (coloured) and isomerises under light.",
          smarts=("[#6]-[#7]=[#7]-[#6]",)),
    Motif("quinoid or fulvene chromophore",
          "Quinone, quinodimethane or fulvene: cross-conjugated, absorbs in the visible "
          "(coloured) and is reactive.",
          smarts=("[#6,#8]=[#6]1[#6]=[#6][#6](=[#6,#8])[#6]=[#6]1",        # para-quinoid
                  "[#6,#8]=[#6]1[#6](=[#6,#8])[#6]=[#6][#6]=[#6]1",        # ortho-quinoid
                  "[#6;!R]=[#6;R1]1[#6]=[#6][#6]=[#6]1",                    # fulvene
                  )),
)}


@lru_cache(maxsize=None)
def _compiled(smarts: str) -> Chem.Mol:
    patt = Chem.MolFromSmarts(smarts)
    if patt is None:  # pragma: no cover - patterns are constants
        raise ValueError(f"bad SMARTS {smarts!r}")
    return patt


@lru_cache(maxsize=1)
def _sascorer():
    """The RDKit Contrib ``sascorer`` module (Ertl & Schuffenhauer 2009)."""
    path = f"{RDConfig.RDContribDir}/SA_Score/sascorer.py"
    spec = importlib.util.spec_from_file_location("rdkit_contrib_sascorer", path)
    if spec is None or spec.loader is None:  # pragma: no cover - the rdkit wheel ships it
        raise ImportError(f"RDKit Contrib SA_Score not found at {path}; install the full rdkit "
                          "package (the pip wheel ships Contrib).")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.readFragmentScores()
    return mod


def _capped(psmiles: str, n: int) -> Chem.Mol:
    from core.chem.polymer import capped_unit, linear_oligomer  # noqa: PLC0415

    if n == 1:
        return Chem.RemoveHs(capped_unit(psmiles, "H", embed=False))
    return Chem.RemoveHs(linear_oligomer(psmiles, n, "H", embed=False))


def sa_score(psmiles: str) -> float:
    """SA score (dimensionless, 1 easy … 10 hard) of the H-capped repeat unit."""
    return float(_sascorer().calculateScore(_capped(psmiles, 1)))


def _flags_of(dimer: Chem.Mol) -> tuple[str, ...]:
    out = []
    for m in MOTIFS.values():
        hit = m.test(dimer) if m.test is not None else any(
            dimer.HasSubstructMatch(_compiled(p)) for p in m.smarts)
        if hit:
            out.append(m.name)
    return tuple(out)


def motif_flags(psmiles: str) -> tuple[str, ...]:
    """Names (keys of ``MOTIFS``) of the unfit motifs in the polymer, in ``MOTIFS`` order;
    empty when none. Searched in the H-capped dimer (groups across the unit junction count)."""
    return _flags_of(_capped(psmiles, 2))


@dataclass(frozen=True)
class Feasibility:
    """Verdict for one polymer: ``sa_score`` (1–10, lower = easier), ``flags`` (motif names)."""

    psmiles: str
    sa_score: float
    flags: tuple[str, ...]

    @property
    def flagged(self) -> bool:
        """True when the polymer carries at least one unfit motif."""
        return bool(self.flags)

    @property
    def hard_to_make(self) -> bool:
        """True when the SA score exceeds ``SA_DIFFICULT``."""
        return self.sa_score > SA_DIFFICULT

    def as_dict(self) -> dict:
        return {"psmiles": self.psmiles, "sa_score": self.sa_score, "flags": list(self.flags),
                "flagged": self.flagged, "hard_to_make": self.hard_to_make}


def assess(psmiles: str) -> Feasibility:
    """SA score and motif flags of one polymer SMILES."""
    return Feasibility(psmiles=psmiles, sa_score=sa_score(psmiles), flags=motif_flags(psmiles))


def assess_many(psmiles: Iterable[str]) -> list[Feasibility | None]:
    """``assess`` over many polymers; None for an invalid polymer SMILES (never raises for one)."""
    from core.chem.polymer import InvalidPolymer  # noqa: PLC0415

    out: list[Feasibility | None] = []
    for s in psmiles:
        try:
            out.append(assess(s))
        except (InvalidPolymer, ValueError):
            out.append(None)
    return out
