"""Polymer SMILES (PSMILES): parsing, validation, canonical form, capped units, oligomers.

A polymer SMILES is the SMILES of one repeat unit with exactly two ``*`` (dummy atoms,
atomic number 0) marking the bonds to the neighbouring repeat units, e.g. ``*CC(*)c1ccccc1``
for polystyrene.  Each ``*`` must be bonded to exactly one heavy atom by a single bond.

Canonical form (recipe in DESIGN.md, verified on all periodic shifts of PI1070):

1. stereo is stripped and atom maps / star isotopes are cleared;
2. the repeat unit is reduced to its shortest repeat (``*CCCC*`` -> ``*C*``);
3. ``polymer_key`` = RDKit canonical SMILES of the cyclic trimer of the reduced unit — the
   cyclic trimer is the same molecule for every periodic shift of the chain;
4. ``canonical_psmiles`` = the smallest (shortest, then lexicographically smallest) RDKit
   canonical SMILES over all repeat units obtained by cutting the chain at a single,
   non-ring main-chain bond (all periodic shifts), so it is itself a valid PSMILES.

Builders return explicit-H RDKit molecules with optional 3-D coordinates (ETKDGv3):
H- or CH3-capped repeat units, linear n-mers and head-to-tail cyclic n-mers.
Masses are IUPAC average atomic masses from RDKit's periodic table (g/mol).
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache

from rdkit import Chem, RDLogger
from rdkit.Chem import AllChem

from core.errors import InputError

__all__ = [
    "InvalidPolymer",
    "DEFAULT_MAX_HEAVY_ATOMS",
    "MAX_PSMILES_LENGTH",
    "ALLOWED_ELEMENTS",
    "parse_psmiles",
    "validate_psmiles",
    "check_psmiles_characters",
    "preview",
    "canonical_psmiles",
    "polymer_key",
    "repeat_unit_mass",
    "capped_unit",
    "linear_oligomer",
    "cyclic_oligomer",
    "element_counts",
]

DEFAULT_MAX_HEAVY_ATOMS = 150
MAX_PSMILES_LENGTH = 2000
ALLOWED_ELEMENTS = frozenset({"H", "C", "N", "O", "F", "P", "S", "Cl", "Br", "I"})
_CAPS = ("H", "CH3")
_PT = Chem.GetPeriodicTable()
_H_MASS = _PT.GetAtomicWeight(1)
_SANITIZE_OPS = Chem.SanitizeFlags.SANITIZE_ALL ^ Chem.SanitizeFlags.SANITIZE_SYMMRINGS


class InvalidPolymer(InputError):
    """A polymer SMILES that cannot be used; the message names the problem."""


#: what RDKit raises for a molecule it cannot sanitise, kekulise or charge (its sanitisation
#: exceptions; plain RuntimeError / ValueError from the C++ layer)
RDKIT_ERRORS: tuple[type[BaseException], ...] = (Chem.rdchem.MolSanitizeException, RuntimeError,
                                                 ValueError)


# ASCII control characters have no Unicode name: their usual abbreviations
_C0_NAMES = ("NUL SOH STX ETX EOT ENQ ACK BEL BS TAB LF VT FF CR SO SI DLE DC1 DC2 DC3 DC4 "
             "NAK SYN ETB CAN EM SUB ESC FS GS RS US").split()
_BLANKS = " \t\r\n"  # trimmed around a polymer SMILES (line ends, padding), nowhere else


def preview(text: str, limit: int = 80) -> str:
    """``repr`` of at most ``limit`` characters of ``text`` (invisible characters escaped),
    followed by the full length when cut: error messages never echo megabytes."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text):,} characters)"


def check_psmiles_characters(s: str) -> str:
    """Return ``s`` without surrounding blanks (space, tab, CR, LF), or raise
    :class:`InvalidPolymer` naming the first character that has no place in a SMILES.

    SMILES are plain ASCII.  Refused: Unicode control characters (category Cc: NUL, U+0001,
    DEL, …) and format characters (Cf: the bidi override U+202E, zero-width space U+200B,
    byte-order mark U+FEFF, …), which are invisible on screen and which RDKit drops or stops
    at, so a different polymer would be stored, and every other non-ASCII character
    (look-alike letters, no-break spaces).  The message gives the code point, its name and
    the 1-based position in ``s``; the character itself is not echoed.
    """
    text = s.strip(_BLANKS)
    offset = len(s) - len(s.lstrip(_BLANKS))
    for i, c in enumerate(text):
        o = ord(c)
        if 32 <= o < 127:
            continue
        cat = unicodedata.category(c)
        kind = ("an invisible control character" if cat == "Cc" else
                "an invisible formatting character" if cat == "Cf" else
                "a non-ASCII character")
        name = _C0_NAMES[o] if o < 32 else ("DEL" if o == 127 else unicodedata.name(c, ""))
        label = f"U+{o:04X}" + (f" ({name})" if name else "")
        raise InvalidPolymer(
            f"polymer SMILES contains {kind}, {label}, at position {offset + i + 1}: SMILES "
            f"are plain ASCII; retype the SMILES or delete that character")
    return text


# --------------------------------------------------------------------------- parsing


def _parse_smiles_quiet(s: str) -> Chem.Mol | None:
    blocker = RDLogger.logger()
    blocker.setLevel(RDLogger.CRITICAL)
    try:
        return Chem.MolFromSmiles(s)
    except RDKIT_ERRORS:  # pragma: no cover - RDKit returns None rather than raising
        return None
    finally:
        blocker.setLevel(RDLogger.WARNING)


def _check_and_parse(s: object, max_heavy_atoms: int) -> Chem.Mol:
    if not isinstance(s, str):
        raise InvalidPolymer(f"polymer SMILES must be a str, got {type(s).__name__}")
    if len(s) > MAX_PSMILES_LENGTH:
        raise InvalidPolymer(
            f"polymer SMILES too long: {len(s)} characters (limit {MAX_PSMILES_LENGTH})")
    text = check_psmiles_characters(s)
    if not text:
        raise InvalidPolymer("empty polymer SMILES")
    if " " in text:
        raise InvalidPolymer(f"polymer SMILES contains whitespace: {preview(text)}")
    mol = _parse_smiles_quiet(text)
    if mol is None:
        raise InvalidPolymer(f"unparsable SMILES: {preview(text)}")
    if mol.GetNumAtoms() == 0:
        raise InvalidPolymer("empty polymer SMILES")
    atoms = list(mol.GetAtoms())  # iterate once: RDKit's Python atom iterator is slow
    nums = [a.GetAtomicNum() for a in atoms]
    stars = [a for a, z in zip(atoms, nums) if z == 0]
    if len(stars) != 2:
        raise InvalidPolymer(
            f"a polymer SMILES needs exactly two '*' atoms, found {len(stars)} in {preview(text)}")
    for a, z in zip(atoms, nums):
        if z != 0 and a.GetSymbol() not in ALLOWED_ELEMENTS:
            raise InvalidPolymer(
                f"element {a.GetSymbol()} is not supported (GAFF2 elements: "
                f"{', '.join(sorted(ALLOWED_ELEMENTS))}) in {preview(text)}")
    charges = [a.GetFormalCharge() for a in atoms]
    net = sum(charges)
    if net != 0:
        raise InvalidPolymer(
            f"charged species (net charge {net:+d}) in {preview(text)}: only neutral polymers "
            f"are supported")
    for a, q in zip(atoms, charges):
        # charge-separated neutral groups (nitro [N+](=O)[O-], N-oxides) are accepted:
        # every formal charge must sit next to an opposite one; ions/zwitterions are not.
        if q != 0 and not any(nb.GetFormalCharge() * q < 0 for nb in a.GetNeighbors()):
            raise InvalidPolymer(
                f"charged atom {a.GetSymbol()}{q:+d} (index {a.GetIdx()}) in {preview(text)}: only "
                f"neutral polymers are supported")
    if any(a.GetNumRadicalElectrons() for a in atoms):
        a = next(a for a in atoms if a.GetNumRadicalElectrons())
        raise InvalidPolymer(
            f"radical on atom {a.GetSymbol()} (index {a.GetIdx()}) in {preview(text)}")
    for st in stars:
        nbrs = list(st.GetNeighbors())
        if len(nbrs) != 1:
            raise InvalidPolymer(
                f"each '*' must be bonded to exactly one atom; a '*' has {len(nbrs)} "
                f"neighbours in {preview(text)}")
        bond = st.GetBonds()[0]
        if bond.GetBondType() != Chem.BondType.SINGLE:
            raise InvalidPolymer(
                f"each '*' must be attached by a single bond; found a "
                f"{str(bond.GetBondType()).lower()} bond in {preview(text)}")
        if nbrs[0].GetAtomicNum() == 0:
            raise InvalidPolymer(f"the two '*' atoms are bonded to each other in {preview(text)}")
        if nbrs[0].GetAtomicNum() == 1:
            raise InvalidPolymer(f"a '*' is bonded to a hydrogen atom in {preview(text)}")
    if len(Chem.GetMolFrags(mol)) != 1:
        raise InvalidPolymer(
            f"multiple fragments ('.') in {preview(text)}: one repeat unit expected")
    n_heavy = sum(1 for z in nums if z > 1)
    if n_heavy == 0:
        raise InvalidPolymer(f"no heavy atom in the repeat unit {preview(text)}")
    if n_heavy > max_heavy_atoms:
        raise InvalidPolymer(
            f"repeat unit has {n_heavy} heavy atoms, more than the limit {max_heavy_atoms}")
    # normalise labels: stars are plain '*', no atom maps anywhere
    for a in stars:
        a.SetIsotope(0)
    if any(a.GetAtomMapNum() for a in atoms):
        for a in atoms:
            a.SetAtomMapNum(0)
    return mol


def parse_psmiles(s: str, *, max_heavy_atoms: int = DEFAULT_MAX_HEAVY_ATOMS) -> Chem.Mol:
    """Parse and validate a polymer SMILES.

    Returns a sanitised RDKit molecule (implicit H) whose two stars are atomic-number-0
    dummies (atom maps and star isotopes cleared).  Raises :class:`InvalidPolymer` naming the
    problem: not a string, empty/whitespace, longer than ``MAX_PSMILES_LENGTH`` characters,
    a control, invisible formatting or other non-ASCII character
    (:func:`check_psmiles_characters`: code point and position named), unparsable, not exactly two stars, a star with more or fewer than one neighbour / a
    non-single bond / bonded to the other star or to H, an element outside
    ``ALLOWED_ELEMENTS``, net charge or an isolated formal charge (charge-separated neutral
    groups such as nitro ``[N+](=O)[O-]`` are accepted), radicals, several fragments, no
    heavy atom, or more than ``max_heavy_atoms`` heavy atoms.
    """
    return _check_and_parse(s, max_heavy_atoms)


def validate_psmiles(s: str, *, max_heavy_atoms: int = DEFAULT_MAX_HEAVY_ATOMS) -> None:
    """Raise :class:`InvalidPolymer` if ``s`` is not a usable polymer SMILES."""
    _check_and_parse(s, max_heavy_atoms)


# --------------------------------------------------------------------------- topology


_STAR = Chem.MolFromSmarts("[#0]")


def _star_list(mol: Chem.Mol) -> list[int]:
    """Indices of the dummy atoms, ascending (C++ substructure match: iterating atoms from
    Python is the bottleneck of canonicalisation)."""
    return sorted(m[0] for m in mol.GetSubstructMatches(_STAR, uniquify=False))


def _stars(mol: Chem.Mol) -> tuple[int, int]:
    idx = _star_list(mol)
    return idx[0], idx[1]


def _ends(mol: Chem.Mol) -> tuple[int, int, int, int]:
    """(head star, head atom, tail atom, tail star) indices."""
    s1, s2 = _stars(mol)
    h = mol.GetAtomWithIdx(s1).GetNeighbors()[0].GetIdx()
    t = mol.GetAtomWithIdx(s2).GetNeighbors()[0].GetIdx()
    return s1, h, t, s2


def _label_stars(mol: Chem.Mol, head_map: int, tail_map: int) -> Chem.Mol:
    rw = Chem.RWMol(mol)
    s1, s2 = _stars(rw)
    rw.GetAtomWithIdx(s1).SetAtomMapNum(head_map)
    rw.GetAtomWithIdx(s2).SetAtomMapNum(tail_map)
    return rw.GetMol()


def _zip_units(mol: Chem.Mol, n: int, cyclic: bool) -> Chem.Mol:
    """Join ``n`` copies of a unit head-to-tail with ``Chem.molzip``.

    Linear: the outer head/tail stars remain as unlabelled ``*``.  Cyclic: the last tail is
    joined to the first head.
    """
    if n < 1:
        raise ValueError(f"number of repeat units must be >= 1, got {n}")
    if n == 1 and not cyclic:
        return Chem.Mol(mol)
    combo = None
    for i in range(n):
        head_map = i if i > 0 else (n if cyclic else 0)
        tail_map = i + 1 if (i < n - 1 or cyclic) else 0
        if cyclic and i == n - 1:
            tail_map = n
        piece = _label_stars(mol, head_map, tail_map)
        combo = piece if combo is None else Chem.CombineMols(combo, piece)
    lg = RDLogger.logger()
    lg.setLevel(RDLogger.ERROR)  # "inconsistent bond directions" for E/Z units: harmless
    try:
        out = Chem.molzip(combo)
    finally:
        lg.setLevel(RDLogger.WARNING)
    if cyclic:
        # No SanitizeMol on the macrocycle: RDKit's ring perception there enumerates every
        # equivalent macrocycle (2^k for k rings in the backbone; minutes for a cyclic
        # 10-mer through cyclohexanes).  The units are sanitised already; recompute only
        # valences, the SSSR, conjugation and hybridisation across the new bonds.
        out.UpdatePropertyCache(strict=False)
        Chem.GetSSSR(out)
        Chem.SetConjugation(out)
        Chem.SetHybridization(out)
    else:
        Chem.SanitizeMol(out, _SANITIZE_OPS)
    return out


def _strip(mol: Chem.Mol) -> Chem.Mol:
    m = Chem.Mol(mol)
    Chem.RemoveStereochemistry(m)
    return m


def _cut_bonds(mol: Chem.Mol) -> list[tuple[int, int]]:
    """Main-chain bonds (as atom pairs, head side first) where the chain may be cut:
    single, non-ring bonds on the head->tail path (bridges, so on every path)."""
    _, h, t, _ = _ends(mol)
    if h == t:
        return []
    path = Chem.GetShortestPath(mol, h, t)
    ri = mol.GetRingInfo()
    out = []
    for a, b in zip(path[:-1], path[1:]):
        bond = mol.GetBondBetweenAtoms(a, b)
        if bond.GetBondType() == Chem.BondType.SINGLE and not ri.NumBondRings(bond.GetIdx()):
            out.append((a, b))
    return out


def _smiles(mol: Chem.Mol) -> str:
    return Chem.MolToSmiles(mol)


def _split_at(mol: Chem.Mol, a: int, b: int) -> tuple[Chem.Mol, Chem.Mol]:
    """Cut bond a-b of a unit; returns (head part, tail part) each with two plain stars."""
    bond = mol.GetBondBetweenAtoms(a, b)
    frag = Chem.FragmentOnBonds(mol, [bond.GetIdx()], addDummies=True, dummyLabels=[(0, 0)])
    idx_frags: list = []
    mols = Chem.GetMolFrags(frag, asMols=True, sanitizeFrags=True, frags=idx_frags,
                            fragsMolAtomMapping=[])
    s1 = _stars(mol)[0]
    if idx_frags[s1] == 0:
        return mols[0], mols[1]
    return mols[1], mols[0]


def _reduce(mol: Chem.Mol) -> Chem.Mol:
    """Shortest repeat: return the smallest unit U such that mol == U repeated m >= 2 times."""
    n_heavy = mol.GetNumAtoms() - 2
    cuts = _cut_bonds(mol)
    if not cuts:
        return mol
    ref = None
    for a, b in cuts:
        head, _ = _split_at(mol, a, b)
        h_heavy = head.GetNumAtoms() - 2
        if h_heavy <= 0 or n_heavy % h_heavy or n_heavy // h_heavy < 2:
            continue
        if ref is None:
            ref = _smiles(mol)
        if _smiles(_zip_units(head, n_heavy // h_heavy, cyclic=False)) == ref:
            return head
    return mol


def _shifts(mol: Chem.Mol) -> list[Chem.Mol]:
    """All periodic shifts of a unit (including itself) as star-terminated molecules."""
    out = [mol]
    cuts = _cut_bonds(mol)
    if not cuts:
        return out
    for a, b in cuts:
        head, tail = _split_at(mol, a, b)
        # new unit = tail part followed by head part: join tail's outer star to head's
        # outer star (the original polymer bond)
        t_lab = Chem.RWMol(tail)
        h_lab = Chem.RWMol(head)
        # in `tail`, the star that came from the original tail star is the one not created
        # by the cut; FragmentOnBonds appends new dummies at the end, so the original star
        # has the smaller index among the tail's stars.
        t_st = _star_list(t_lab)
        h_st = _star_list(h_lab)
        t_lab.GetAtomWithIdx(t_st[0]).SetAtomMapNum(1)
        h_lab.GetAtomWithIdx(h_st[0]).SetAtomMapNum(1)
        joined = Chem.molzip(t_lab.GetMol(), h_lab.GetMol())
        Chem.SanitizeMol(joined, _SANITIZE_OPS)
        out.append(joined)
    return out


@lru_cache(maxsize=65536)
def _canonical_pair(s: str) -> tuple[str, str]:
    mol = _strip(_check_and_parse(s, DEFAULT_MAX_HEAVY_ATOMS * 1000))
    unit = _reduce(mol)
    key = _smiles(_zip_units(unit, 3, cyclic=True))
    cands = {_smiles(m) for m in _shifts(unit)}
    best = min(cands, key=lambda x: (len(x), x))
    return best, key


def canonical_psmiles(s: str) -> str:
    """One polymer SMILES per polymer (periodic shifts, repeats, star order, stereo removed).

    ``*CC(*)c1ccccc1`` and ``*C(C*)c1ccccc1`` give the same string; so do ``*OCC*``,
    ``*CCO*`` and ``*COC*``, and ``*CC*`` and ``*CCCC*`` (-> ``*C*``).
    """
    return _canonical_pair(s)[0]


def polymer_key(s: str) -> str:
    """Deduplication key: canonical SMILES of the cyclic trimer of the reduced repeat unit.

    Equal for two inputs exactly when :func:`canonical_psmiles` is equal.
    """
    return _canonical_pair(s)[1]


# --------------------------------------------------------------------------- properties


def _mass_of(mol: Chem.Mol) -> float:
    m = 0.0
    for a in mol.GetAtoms():
        if a.GetAtomicNum() == 0:
            continue
        m += a.GetMass() + a.GetTotalNumHs() * _H_MASS
    return m


def repeat_unit_mass(s: str) -> float:
    """Molar mass of the repeat unit without the stars, implicit H counted (g/mol)."""
    return _mass_of(parse_psmiles(s))


def element_counts(s: str) -> dict[str, int]:
    """Element -> count in the repeat unit (stars excluded, implicit H included)."""
    mol = parse_psmiles(s)
    out: dict[str, int] = {}
    for a in mol.GetAtoms():
        if a.GetAtomicNum() == 0:
            continue
        out[a.GetSymbol()] = out.get(a.GetSymbol(), 0) + 1
        nh = a.GetTotalNumHs()
        if nh:
            out["H"] = out.get("H", 0) + nh
    return out


# --------------------------------------------------------------------------- builders


def _cap(mol: Chem.Mol, cap: str) -> Chem.Mol:
    if cap not in _CAPS:
        raise ValueError(f"cap must be one of {_CAPS}, got {cap!r}")
    rw = Chem.RWMol(mol)
    for a in rw.GetAtoms():
        if a.GetAtomicNum() == 0:
            a.SetAtomMapNum(0)
            a.SetIsotope(0)
            a.SetAtomicNum(1 if cap == "H" else 6)
            a.SetNoImplicit(False)
    out = rw.GetMol()
    Chem.SanitizeMol(out, _SANITIZE_OPS)
    return out


def _embed(mol: Chem.Mol, seed: int) -> Chem.Mol:
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    if AllChem.EmbedMolecule(mol, params) != 0:
        params.useRandomCoords = True
        params.maxIterations = 2000
        if AllChem.EmbedMolecule(mol, params) != 0:
            raise InvalidPolymer(
                f"could not generate 3-D coordinates for {Chem.MolToSmiles(Chem.RemoveHs(mol))}")
    return mol


def _finish(mol: Chem.Mol, embed: bool, seed: int) -> Chem.Mol:
    mh = Chem.AddHs(mol)
    if embed:
        _embed(mh, seed)
    return mh


def capped_unit(s: str, cap: str = "H", *, embed: bool = True, seed: int = 0) -> Chem.Mol:
    """Repeat unit with both stars replaced by ``cap`` ("H" or "CH3").

    Explicit hydrogens; a 3-D conformer (ETKDGv3, ``seed``) when ``embed``.
    """
    return _finish(_cap(parse_psmiles(s), cap), embed, seed)


def linear_oligomer(s: str, n: int, cap: str = "H", *, embed: bool = True,
                    seed: int = 0) -> Chem.Mol:
    """Linear n-mer (head-to-tail), ends capped with ``cap`` ("H" or "CH3"), explicit H."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if cap not in _CAPS:
        raise ValueError(f"cap must be one of {_CAPS}, got {cap!r}")
    chain = _zip_units(parse_psmiles(s), n, cyclic=False)
    return _finish(_cap(chain, cap), embed, seed)


def cyclic_oligomer(s: str, n: int, *, embed: bool = False, seed: int = 0) -> Chem.Mol:
    """Cyclic n-mer: n repeat units joined head to tail into one ring, explicit H.

    Needs at least 3 main-chain atoms in the ring (e.g. n >= 3 for ``*C*``).
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    mol = parse_psmiles(s)
    _, h, t, _ = _ends(mol)
    backbone = 1 if h == t else len(Chem.GetShortestPath(mol, h, t))
    if backbone * n < 3:
        raise ValueError(
            f"a cyclic {n}-mer of {s!r} would have a ring of {backbone * n} atoms; use n >= "
            f"{-(-3 // backbone)}")
    ring = _zip_units(mol, n, cyclic=True)
    return _finish(ring, embed, seed)
