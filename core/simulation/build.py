"""Step 1 (build): polymer SMILES → CH3-terminated atactic chains with 3-D coordinates.

Each chain is assembled from copies of the repeat unit with ``Chem.molzip`` (head-to-tail, the
first ``*`` of the PSMILES is the head). Every atom carries its origin as atom properties
``unit`` (index along the chain; -1 = head CH3 cap, n = tail CH3 cap) and ``local`` (index of the
heavy atom inside the repeat unit; hydrogens get the parent's ``local`` and an ordinal ``hnum``),
so that charges computed on a short oligomer built by the *same* function can be copied atom by
atom onto the long chains (see ``forcefield.py``).

Tacticity: every unassigned stereocentre gets a random configuration (atactic). 3-D coordinates
come from RDKit's ETKDG with random starting coordinates, which for a chain is a random-walk-like
coil without overlaps (an equivalent of RadonPy's random-walk growth). When ETKDG fails within its
time budget (polyacrylonitrile: every attempt on a 10- to 22-mer runs into its timeout; a ~340-atom
trimer with a long branched side chain under load), the chain grows unit by unit
(``grow_coordinates``) from an embedded CH3-capped trimer or, if that fails too or the chain has
at most three units, from the embedded CH3-capped monomer. ``Chain.method`` says which was used.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import numpy as np
from rdkit.Geometry import Point3D

from rdkit import Chem
from rdkit.Chem import AllChem

from core.simulation.errors import BuildError

__all__ = ["Chain", "unit_atoms", "build_chain", "choose_dp", "unit_class", "atom_key",
           "repeat_unit_mass", "validated_psmiles", "grow_coordinates", "BUILD_METHODS"]

# how a chain's coordinates were made: whole-chain ETKDG, growth from an embedded trimer or
# monomer template, or none (embed=False)
BUILD_METHODS = ("etkdg", "grow-trimer", "grow-monomer", "none")


class UnsupportedPolymer(BuildError, ValueError):
    """The polymer SMILES cannot be simulated (bad syntax, wrong number of stars, elements)."""


GAFF2_ELEMENTS = {"H", "C", "N", "O", "F", "P", "S", "Cl", "Br", "I"}


@dataclass(frozen=True)
class Chain:
    """A built chain: RDKit molecule with explicit H and one conformer (coordinates in Å);
    ``method`` is one of BUILD_METHODS."""

    mol: Chem.Mol
    dp: int
    seed: int
    method: str = "etkdg"


def validated_psmiles(psmiles: str) -> Chem.Mol:
    """Parse ``psmiles`` (uses core.chem.polymer.parse_psmiles when available) and check it is simulable.

    Returns an RDKit Mol with the two ``*`` as dummy atoms. Raises UnsupportedPolymer.
    """
    if not isinstance(psmiles, str) or not psmiles.strip():
        raise UnsupportedPolymer("The polymer SMILES is empty.")
    try:
        from core.chem import polymer  # noqa: PLC0415
        parse = getattr(polymer, "parse_psmiles", None)
    except ImportError:
        parse = None
    if parse is not None:
        try:
            parse(psmiles)
        except ValueError as exc:
            raise UnsupportedPolymer(f"Invalid polymer SMILES {psmiles!r}: {exc}") from exc
    mol = Chem.MolFromSmiles(psmiles.strip())
    if mol is None:
        raise UnsupportedPolymer(f"RDKit cannot parse the polymer SMILES {psmiles!r}.")
    stars = [a for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
    if len(stars) != 2:
        raise UnsupportedPolymer(
            f"A repeat unit needs exactly two '*' connection points; {psmiles!r} has {len(stars)}.")
    for s in stars:
        if s.GetDegree() != 1 or s.GetBonds()[0].GetBondType() != Chem.BondType.SINGLE:
            raise UnsupportedPolymer(
                f"Each '*' must be joined to one atom by a single bond ({psmiles!r}).")
    bad = sorted({a.GetSymbol() for a in mol.GetAtoms()
                  if a.GetAtomicNum() > 0 and a.GetSymbol() not in GAFF2_ELEMENTS})
    if bad:
        raise UnsupportedPolymer(
            f"Element(s) {', '.join(bad)} in {psmiles!r} have no GAFF2 parameters; the simulation "
            f"supports H, C, N, O, F, P, S, Cl, Br, I only.")
    # net-neutral charge-separated groups (nitro [N+](=O)[O-], N-oxides) are ordinary neutral
    # molecules for antechamber/sqm, GAFF2 ("no") and PySCF; a net charge or a radical is not
    if any(a.GetNumRadicalElectrons() for a in mol.GetAtoms()) or sum(
            a.GetFormalCharge() for a in mol.GetAtoms()) != 0:
        raise UnsupportedPolymer(f"Charged or radical repeat units are not supported ({psmiles!r}).")
    if len(Chem.GetMolFrags(mol)) != 1:
        raise UnsupportedPolymer(f"The repeat unit {psmiles!r} has several disconnected fragments.")
    return mol


def repeat_unit_mass(psmiles: str) -> float:
    """Molar mass of the repeat unit without end groups (g/mol); core.chem.polymer's when available."""
    try:
        from core.chem.polymer import repeat_unit_mass as rum  # noqa: PLC0415
        return float(rum(psmiles))
    except ImportError:
        pass
    mol = validated_psmiles(psmiles)
    from rdkit.Chem import Descriptors  # noqa: PLC0415
    rw = Chem.RWMol(mol)
    for idx in sorted((a.GetIdx() for a in rw.GetAtoms() if a.GetAtomicNum() == 0), reverse=True):
        rw.RemoveAtom(idx)
    m = rw.GetMol()
    m.UpdatePropertyCache(strict=False)
    return float(Descriptors.MolWt(m))


def unit_atoms(psmiles: str) -> int:
    """Number of atoms (with H, without the stars) in one repeat unit."""
    mol = Chem.AddHs(validated_psmiles(psmiles))
    return sum(1 for a in mol.GetAtoms() if a.GetAtomicNum() > 0)


def choose_dp(psmiles: str, chain_atoms: int, min_dp: int = 3) -> int:
    """Degree of polymerisation giving about ``chain_atoms`` atoms per chain (RadonPy's rule)."""
    return max(min_dp, int(round((chain_atoms - 8) / unit_atoms(psmiles))))


def unit_class(unit: int, dp: int) -> str:
    """Position class of a unit: ``cap_head``, ``head``, ``mid``, ``tail``, ``cap_tail``."""
    if unit < 0:
        return "cap_head"
    if unit >= dp:
        return "cap_tail"
    if unit == 0:
        return "head"
    if unit == dp - 1:
        return "tail"
    return "mid"


def atom_key(atom: Chem.Atom, dp: int) -> tuple[str, int, int]:
    """(position class, local heavy-atom index, hydrogen ordinal or -1) of a chain atom."""
    return (unit_class(atom.GetIntProp("unit"), dp), atom.GetIntProp("local"),
            atom.GetIntProp("hnum") if atom.HasProp("hnum") else -1)


def _fragment(unit: Chem.Mol, k: int, head_map: int, tail_map: int) -> Chem.Mol:
    rw = Chem.RWMol(unit)
    stars = [a.GetIdx() for a in rw.GetAtoms() if a.GetAtomicNum() == 0]
    rw.GetAtomWithIdx(stars[0]).SetAtomMapNum(head_map)
    rw.GetAtomWithIdx(stars[1]).SetAtomMapNum(tail_map)
    local = 0
    for a in rw.GetAtoms():
        if a.GetAtomicNum() > 0:
            a.SetIntProp("unit", k)
            a.SetIntProp("local", local)
            local += 1
    return rw.GetMol()


def _cap(map_num: int, k: int) -> Chem.Mol:
    cap = Chem.MolFromSmiles(f"C[*:{map_num}]")
    for a in cap.GetAtoms():
        if a.GetAtomicNum() > 0:
            a.SetIntProp("unit", k)
            a.SetIntProp("local", 0)
    return cap


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    x, y, z = axis
    c, s = math.cos(angle), math.sin(angle)
    C = 1 - c
    return np.array([[c + x * x * C, x * y * C - z * s, x * z * C + y * s],
                     [y * x * C + z * s, c + y * y * C, y * z * C - x * s],
                     [z * x * C - y * s, z * y * C + x * s, c + z * z * C]])


def _align(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotation matrix turning direction u onto direction v."""
    u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    w = np.cross(u, v)
    s, c = np.linalg.norm(w), float(np.dot(u, v))
    if s < 1e-9:
        if c > 0:
            return np.eye(3)
        perp = np.cross(u, [1.0, 0, 0] if abs(u[0]) < 0.9 else [0, 1.0, 0])
        return _rotation(perp, math.pi)
    return _rotation(w, math.atan2(s, c))


def growth_template(psmiles: str, template_dp: int, *, seed: int, embed_budget_s: float,
                    deadline: float | None = None) -> Chem.Mol:
    """The CH3-capped ``template_dp``-mer that :func:`grow_coordinates` grows a chain from,
    embedded by ETKDG alone (seed ``seed + 101``, 10 attempts within ``embed_budget_s`` s and
    ``deadline``). Raises BuildError."""
    return build_chain(psmiles, template_dp, seed=seed + 101, embed=True, max_attempts=10,
                       embed_budget_s=embed_budget_s, grow_fallback=False,
                       deadline=deadline).mol


def grow_coordinates(mol: Chem.Mol, psmiles: str, dp: int, *, seed: int = 0,
                     clash: float = 1.7, hard_clash: float = 1.2, tries: int = 36,
                     template_dp: int = 3,
                     template: Chem.Mol | None = None,
                     embed_budget_s: float = 120.0,
                     deadline: float | None = None) -> np.ndarray:
    """Random-walk growth of a chain's coordinates (Å) from an embedded CH3-capped oligomer.

    The template is the CH3-capped trimer (``template_dp`` 3) or monomer (1), embedded by ETKDG
    (``template``: one already embedded; ``embed_budget_s``: ETKDG's wall-time budget for it,
    ``deadline``: a ``time.monotonic()`` value it must not pass either).
    The template's head block (cap + first unit), middle unit (a monomer's only unit, whose caps
    stand for the neighbouring units) and tail block (last unit + cap) are placed one after
    another: each new block is attached so that its incoming bond coincides with the chain end's
    outgoing bond (bond lengths and angles from the template), rotated about that bond by a random
    angle, and accepted at the first of ``tries`` angles whose atoms stay ≥ ``clash`` Å from all
    atoms already placed (else the best angle). When even the best angle leaves an atom closer
    than ``hard_clash`` Å (the walk folded into a trap), the last one to three blocks are grown
    again (at most 20 times per block). Middle units are randomly mirrored, which inverts their
    stereocentres: an atactic chain (RadonPy's random-walk idea). Needs ``dp`` ≥ 2.
    """
    if template_dp not in (1, 3):
        raise ValueError(f"template_dp must be 1 or 3 (got {template_dp}).")
    if dp < 2:
        raise BuildError(f"Growth needs at least 2 units (got a {dp}-mer).")
    rng = np.random.default_rng(seed)
    tmpl = template if template is not None else growth_template(
        psmiles, template_dp, seed=seed, embed_budget_s=embed_budget_s, deadline=deadline)
    T = tmpl.GetConformer().GetPositions()
    tkey = {atom_key(a, template_dp): a.GetIdx() for a in tmpl.GetAtoms()}
    # chain unit -> template unit for the head block, the middle units and the tail block
    t_head, t_mid, t_tail = (0, 1, 2) if template_dp == 3 else (0, 0, 0)

    def link_atoms(m: Chem.Mol, n_units: int):
        """(unit_from, unit_to) -> (atom in unit_from, atom in unit_to) for inter-unit bonds."""
        out = {}
        for b in m.GetBonds():
            a, c = b.GetBeginAtom(), b.GetEndAtom()
            ua, uc = a.GetIntProp("unit"), c.GetIntProp("unit")
            if ua != uc:
                if ua > uc:
                    a, c, ua, uc = c, a, uc, ua
                out[(ua, uc)] = (a.GetIdx(), c.GetIdx())
        return out

    tl = link_atoms(tmpl, 3)
    cl = link_atoms(mol, dp)
    xyz = np.full((mol.GetNumAtoms(), 3), np.nan)
    units: dict[int, list[int]] = {}
    for a in mol.GetAtoms():
        units.setdefault(a.GetIntProp("unit"), []).append(a.GetIdx())

    def template_index(atom_idx: int, tmpl_unit: int) -> int:
        a = mol.GetAtomWithIdx(atom_idx)
        cls = unit_class(tmpl_unit, template_dp)
        return tkey[(cls, a.GetIntProp("local"), a.GetIntProp("hnum") if a.HasProp("hnum") else -1)]

    # blocks: (chain units, template units)
    blocks = [([-1, 0], [-1, t_head])] + [([k], [t_mid]) for k in range(1, dp - 1)] + [
        ([dp - 1, dp], [t_tail, template_dp])]
    placed = np.zeros(mol.GetNumAtoms(), bool)
    topo = Chem.GetDistanceMatrix(mol)
    flip = np.array([-1.0, 1.0, 1.0])
    # next_in[bi]: where block bi's head atom goes (set when block bi - 1 was placed)
    next_in: list[np.ndarray | None] = [None] * (len(blocks) + 1)
    block_idx = [[i for u in cu for i in units[u]] for cu, _ in blocks]
    backtracks, max_backtracks = 0, 20 * len(blocks)
    bi = 0
    while bi < len(blocks):
        cu, tu = blocks[bi]
        idx = block_idx[bi]
        src = np.array([T[template_index(i, t)] for u, t in zip(cu, tu) for i in units[u]])
        nt = tl[(tu[-1], tu[-1] + 1)][1] if (tu[-1], tu[-1] + 1) in tl else None
        if bi == 0:
            shift = -src.mean(0)
            xyz[idx] = src + shift
            placed[idx] = True
            next_in[1] = T[nt] + shift
            bi = 1
            continue
        mirror = len(cu) == 1 and rng.random() < 0.5
        sign = flip if mirror else np.ones(3)
        pt, at = tl[(tu[0] - 1, tu[0])]          # template: previous tail atom, block head atom
        pc, _ = cl[(cu[0] - 1, cu[0])]           # chain: previous tail atom
        src = src * sign
        P_t, A_t = T[pt] * sign, T[at] * sign
        target = next_in[bi]
        axis = target - xyz[pc]
        R0 = _align(A_t - P_t, axis)
        base = (src - A_t) @ R0.T
        old_idx = np.flatnonzero(placed)
        old = xyz[old_idx]
        far = topo[np.ix_(idx, old_idx)] > 3     # skip 1-2, 1-3, 1-4 pairs
        best, best_d, best_R = None, -1.0, None
        for _ in range(tries):
            R = _rotation(axis, rng.uniform(0, 2 * math.pi))
            cand = base @ R.T + target
            d2 = ((cand[:, None, :] - old[None, :, :]) ** 2).sum(-1)
            dmin = math.sqrt(float(d2[far].min())) if far.any() else 99.0
            if dmin > best_d:
                best, best_d, best_R = cand, dmin, R
            if dmin >= clash:
                break
        if best_d < hard_clash and bi > 1 and backtracks < max_backtracks:
            # trapped (a small unit folding back onto the chain): re-grow the last blocks
            backtracks += 1
            back = min(bi - 1, 1 + int(rng.integers(0, 3)))
            for b in range(bi - back, bi):
                placed[block_idx[b]] = False
            bi -= back
            continue
        xyz[idx] = best
        placed[idx] = True
        if nt is not None:
            next_in[bi + 1] = ((T[nt] * sign - A_t) @ R0.T) @ best_R.T + target
        bi += 1
    return xyz


def _passed(deadline: float | None) -> bool:
    """True when a ``time.monotonic()`` deadline is set and has passed."""
    return deadline is not None and time.monotonic() >= deadline


def _fused_ring_atoms(mol: Chem.Mol) -> set[int]:
    """Atoms in two or more SSSR rings (ring fusions, bridgeheads, spiro centres)."""
    count: dict[int, int] = {}
    for ring in Chem.GetSymmSSSR(mol):
        for i in ring:
            count[i] = count.get(i, 0) + 1
    return {i for i, c in count.items() if c >= 2}


def _embed_etkdg(mol: Chem.Mol, random_centres: list[int], *, seed: int, max_attempts: int,
                 timeout_s: int, budget_s: float | None, deadline: float | None = None) -> bool:
    """ETKDG (random starting coordinates) on ``mol`` in place; True when it embedded.

    Up to ``max_attempts`` attempts of at most ``timeout_s`` s each, then two more with the random
    configurations of ring stereocentres released; ``budget_s`` (s, wall) caps all attempts
    together (None: no cap), each attempt's timeout shrinking to what is left of it;
    ``deadline`` (``time.monotonic()`` value, None: none) caps them too.
    """
    params = AllChem.ETKDGv3()
    params.useRandomCoords = True
    params.maxIterations = 200
    ends = [t for t in (None if budget_s is None else time.monotonic() + budget_s, deadline)
            if t is not None]
    t_end = min(ends) if ends else None

    def attempt(k: int) -> bool:
        left = timeout_s if t_end is None else min(timeout_s, t_end - time.monotonic())
        if left < 1:
            return False
        params.timeout = int(math.ceil(left))
        params.randomSeed = seed * 1000 + k + 1
        return AllChem.EmbedMolecule(mol, params) == 0

    for k in range(max_attempts):
        if attempt(k):
            return True
    ring_centres = [i for i in random_centres if mol.GetAtomWithIdx(i).IsInRing()]
    if ring_centres:
        # random configurations of ring stereocentres can still clash (strained or crowded
        # rings): let ETKDG choose them, keeping the backbone's atactic ones
        for i in ring_centres:
            mol.GetAtomWithIdx(i).SetChiralTag(Chem.ChiralType.CHI_UNSPECIFIED)
        Chem.AssignStereochemistry(mol, cleanIt=True, force=True)
        for k in range(2):
            if attempt(max_attempts + k):
                return True
    return False


def build_chain(psmiles: str, dp: int, *, seed: int = 0, embed: bool = True,
                max_attempts: int = 5, grow_above_atoms: int = 400,
                embed_timeout_s: int = 60, embed_budget_s: float = 120.0,
                etkdg: bool = True, grow_fallback: bool = True,
                deadline: float | None = None,
                templates: dict[int, Chem.Mol | None] | None = None) -> Chain:
    """CH3-terminated, atactic chain of ``dp`` repeat units with 3-D coordinates (Å).

    Chains up to ``grow_above_atoms`` atoms are embedded whole by ETKDG (random stereocentre
    configurations); longer ones grow unit by unit (``grow_coordinates``) because ETKDG's cost
    grows steeply with size. Stereocentres get random configurations (atactic) except
    ring-fusion / bridgehead atoms, which ETKDG assigns; if the embedding still fails, the ring
    stereocentres are released too. Each ETKDG attempt stops after ``embed_timeout_s`` s and all
    together after ``embed_budget_s`` s (wall). When ETKDG fails (or ``etkdg`` is False: a chain
    of the same polymer just failed), a chain of ≥ 2 units grows from the embedded CH3-capped
    trimer (``dp`` > 3) or, if that fails or ``dp`` ≤ 3, from the embedded monomer
    (``grow_fallback`` False: no growth). Raises BuildError when no 3-D structure can be made.

    ``deadline`` (a ``time.monotonic()`` value; the build step passes its start + the preset's
    build limit) bounds every ETKDG attempt and growth template: once it has passed, BuildError
    says so instead of trying further. ``templates`` (a dict shared by the chains of one cell)
    keeps the embedded growth templates by DP (None: that template failed), so the second chain
    of a polymer that needed growth does not embed (or fail to embed) them again.
    """
    if dp < 1:
        raise BuildError(f"The degree of polymerisation must be ≥ 1 (got {dp}).")
    unit = validated_psmiles(psmiles)
    frags = [_cap(1, -1)] + [_fragment(unit, k, k + 1, k + 2) for k in range(dp)] + [
        _cap(dp + 1, dp)]
    combo = frags[0]
    for f in frags[1:]:
        combo = Chem.CombineMols(combo, f)
    try:
        mol = Chem.molzip(combo)
        Chem.SanitizeMol(mol)
    except Exception as exc:
        raise BuildError(f"Joining the repeat units of {psmiles!r} into a chain failed: {exc}") from exc
    mol = Chem.AddHs(mol)
    counters: dict[int, int] = {}
    for a in mol.GetAtoms():
        if a.GetAtomicNum() == 1 and not a.HasProp("unit"):
            parent = a.GetNeighbors()[0]
            a.SetIntProp("unit", parent.GetIntProp("unit"))
            a.SetIntProp("local", parent.GetIntProp("local"))
            n = counters.get(parent.GetIdx(), 0)
            a.SetIntProp("hnum", n)
            counters[parent.GetIdx()] = n + 1
    rng = random.Random(seed)
    from rdkit.Chem import FindMolChiralCenters  # noqa: PLC0415
    fused = _fused_ring_atoms(mol)
    random_centres = []
    for idx, label in FindMolChiralCenters(mol, includeUnassigned=True,
                                           useLegacyImplementation=False):
        # a ring-fusion or bridgehead centre keeps no random configuration: the ring system fixes
        # it, and a random one can be impossible (a norbornane's two bridgeheads); ETKDG picks one
        if label == "?" and idx not in fused:
            mol.GetAtomWithIdx(idx).SetChiralTag(
                rng.choice([Chem.ChiralType.CHI_TETRAHEDRAL_CW, Chem.ChiralType.CHI_TETRAHEDRAL_CCW]))
            random_centres.append(idx)
    Chem.AssignStereochemistry(mol, cleanIt=True, force=True)
    if not embed:
        return Chain(mol=mol, dp=dp, seed=seed, method="none")
    can_grow = grow_fallback and dp >= 2
    grow = (mol.GetNumAtoms() > grow_above_atoms and dp >= 3) or (not etkdg and can_grow)
    if not grow:
        if _embed_etkdg(mol, random_centres, seed=seed, max_attempts=max_attempts,
                        timeout_s=embed_timeout_s,
                        # no cap only where ETKDG is the last resort (a monomer, say); a growth
                        # template (grow_fallback False) keeps its caller's budget
                        budget_s=embed_budget_s if can_grow or not grow_fallback else None,
                        deadline=deadline):
            return Chain(mol=mol, dp=dp, seed=seed, method="etkdg")
        if not can_grow:
            raise BuildError(
                f"RDKit could not generate 3-D coordinates for a {dp}-mer of {psmiles!r} "
                f"({mol.GetNumAtoms()} atoms) after {max_attempts} attempts"
                + (" (the build step's time limit was reached)." if _passed(deadline) else "."))
    # ETKDG failed (a polyacrylonitrile, a long branched side chain) or the chain is long:
    # grow unit by unit from an embedded trimer, else from the embedded monomer
    xyz, method, errors = None, "", []
    templates = {} if templates is None else templates
    for template_dp in ((3, 1) if dp > 3 else (1,)):
        if _passed(deadline):
            errors.append("The build step's time limit was reached.")
            break
        if template_dp in templates and templates[template_dp] is None:
            errors.append(f"(the {template_dp}-mer template failed for an earlier chain)")
            continue
        try:
            if template_dp not in templates:
                templates[template_dp] = None  # until it has embedded
                templates[template_dp] = growth_template(
                    psmiles, template_dp, seed=seed, embed_budget_s=embed_budget_s,
                    deadline=deadline)
            xyz = grow_coordinates(mol, psmiles, dp, seed=seed, template_dp=template_dp,
                                   template=templates[template_dp],
                                   embed_budget_s=embed_budget_s, deadline=deadline)
            method = "grow-trimer" if template_dp == 3 else "grow-monomer"
            break
        except BuildError as exc:
            errors.append(str(exc))
    if xyz is None:
        raise BuildError(
            f"RDKit could not generate 3-D coordinates for a {dp}-mer of {psmiles!r} "
            f"({mol.GetNumAtoms()} atoms), nor for the oligomers to grow it from: "
            + " ".join(errors))
    conf = Chem.Conformer(mol.GetNumAtoms())
    for i, p in enumerate(xyz):
        conf.SetAtomPosition(i, Point3D(*map(float, p)))
    mol.RemoveAllConformers()
    mol.AddConformer(conf, assignId=True)
    return Chain(mol=mol, dp=dp, seed=seed, method=method)
