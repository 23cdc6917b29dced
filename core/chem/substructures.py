"""Named SMARTS substructures of polymer repeat units and their enrichment statistics.

What it answers: *which chemical groups are over-represented among the polymers beyond the
n_D–ν_D limit line (or on the Pareto front) compared with all evaluated polymers?* The seed
study found ~40 % of the beyond-line polymers contain sulfur, several of them a sulfonyl group;
``enrichment(psmiles, beyond_mask)`` reproduces that kind of statement as a table.

Matching on polymer SMILES
--------------------------
A repeat unit such as ``*Oc1ccc(cc1)OC(=O)*`` (a polycarbonate written with the carbonate split
across the junction) only shows some groups once two units are joined. Each polymer is therefore
matched on a **linear trimer** of its repeat unit (three copies joined head-to-tail with
``Chem.molzip``; the two outer ``*`` stay as dummy atoms, never capped, so no spurious OH/CH3
groups appear). The middle unit has the full chemical context of both neighbours, so every group
that spans the junction is seen; ring membership is unchanged (a cyclic oligomer would make the
whole backbone a ring and break ``[R]`` queries). Library patterns never match dummy atoms.

Statistics
----------
For a group g and a subset S (e.g. beyond-line) of all N polymers, the 2×2 table is

    a = |S ∩ g|, b = |S \\ g|, c = |rest ∩ g|, d = |rest \\ g|

odds ratio (Haldane–Anscombe correction, +0.5 to every cell) OR = (a+.5)(d+.5)/((b+.5)(c+.5)),
and the two-sided Fisher exact p-value (``scipy.stats.fisher_exact``) plus the one-sided
"enriched" p-value (alternative="greater").  With ~40 groups tested at once, a few small
p-values are expected by chance, so each p-value comes with its Benjamini–Hochberg q-value
(:func:`benjamini_hochberg`, over the groups of one table): the false-discovery rate of calling
that group and every group with a smaller p enriched.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from rdkit import Chem
from rdkit.rdBase import BlockLogs
from scipy.stats import fisher_exact

from core.errors import InputError
from core.chem.polymer import RDKIT_ERRORS, InvalidPolymer

__all__ = [
    "Substructure",
    "InvalidSmarts",
    "InvalidPolymerSmiles",
    "DEFAULT_LIBRARY",
    "validate_smarts",
    "user_substructure",
    "polymer_trimer",
    "has_substructure",
    "match_matrix",
    "match_atoms",
    "enrichment",
    "benjamini_hochberg",
    "pin_groups",
    "SEED_CHECK_GROUPS",
    "MAX_SMARTS_LENGTH",
]

MAX_SMARTS_LENGTH = 400
#: the seed study's check (~40 % of beyond-line polymers contain S, several a sulfonyl): these
#: rows head every enrichment table shown (:func:`pin_groups`)
SEED_CHECK_GROUPS: tuple[str, ...] = ("contains S", "sulfonyl")


class InvalidSmarts(InputError):
    """A user SMARTS pattern that RDKit cannot parse (or that is empty / too long)."""


#: a polymer SMILES that RDKit cannot parse or that does not have exactly two ``*``: the one
#: "invalid polymer" error of the library, :class:`core.chem.polymer.InvalidPolymer`
InvalidPolymerSmiles = InvalidPolymer


@dataclass(frozen=True)
class Substructure:
    """A named SMARTS query. ``category`` groups rows in the UI (sulfur, halogen, ...)."""

    name: str
    smarts: str
    category: str
    description: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "smarts": self.smarts, "category": self.category,
                "description": self.description}


# --- the library -------------------------------------------------------------------------
# Written for RDKit SMARTS; every pattern starts from a real element so the polymer's dummy
# atoms (atomic number 0) never take part in a match.
_LIB: tuple[Substructure, ...] = (
    # sulfur
    Substructure("contains S", "[#16]", "element", "any sulfur atom"),
    Substructure("sulfonyl", "[#16X4](=[OX1])(=[OX1])", "sulfur",
                 "-SO2- in sulfones, sulfonamides, sulfonates"),
    Substructure("sulfone", "[#6][#16X4](=[OX1])(=[OX1])[#6]", "sulfur", "C-SO2-C"),
    Substructure("sulfonamide", "[#16X4](=[OX1])(=[OX1])[#7]", "sulfur", "-SO2-N<"),
    Substructure("sulfoxide", "[#6][#16X3](=[OX1])[#6]", "sulfur", "C-S(=O)-C"),
    Substructure("sulfide / thioether", "[#6][SX2][#6]", "sulfur",
                 "C-S-C, aliphatic or aryl sulfide (not thiophene S)"),
    Substructure("disulfide", "[SX2][SX2]", "sulfur", "-S-S-"),
    Substructure("thiophene", "[sr5]", "sulfur", "aromatic S in a five-membered ring"),
    Substructure("thiocarbonyl", "[#6,#7,#8,#16][CX3]=[SX1]", "sulfur",
                 "C=S (thioester, thiourea, trithiocarbonate, ...)"),
    # aromatics and rings
    Substructure("aromatic ring", "[a]", "ring", "any aromatic atom"),
    Substructure("benzene ring", "c1ccccc1", "ring", "six-membered carbocyclic aromatic ring"),
    Substructure("fused aromatics",
                 "[$(a1aaa2aaaaa2a1),$(a1aaa2aaaa2a1),$(a1aa2aaaa2a1),$(a1aa2aaa2a1)]",
                 "ring", "two aromatic rings sharing a bond (naphthalene, indole, ...)"),
    Substructure("biphenyl", "c1ccccc1-!@c1ccccc1", "ring", "two benzene rings joined by a bond"),
    Substructure("heteroaromatic N", "[n]", "ring", "pyridine-, imidazole-, triazine-type N"),
    Substructure("alicyclic ring", "[CX4;R]", "ring",
                 "sp3 ring carbon (cyclohexane, norbornane, ...)"),
    # halogens
    Substructure("contains F", "[#9]", "element", "any fluorine atom"),
    Substructure("contains Cl", "[#17]", "element", "any chlorine atom"),
    Substructure("contains Br", "[#35]", "element", "any bromine atom"),
    Substructure("contains I", "[#53]", "element", "any iodine atom"),
    Substructure("fluoroalkyl", "[CX4](F)(F)", "halogen", "CF2 or CF3"),
    Substructure("aryl halide", "c[Cl,Br,I]", "halogen", "Cl/Br/I on an aromatic carbon"),
    # oxygen / nitrogen groups
    Substructure("ester", "[#6][CX3](=[OX1])[OX2][#6]", "oxygen", "C-C(=O)-O-C"),
    Substructure("carbonate", "[OX2][CX3](=[OX1])[OX2]", "oxygen", "O-C(=O)-O"),
    Substructure("ether", "[OX2;!R;$(O([#6;!$(C=[O,S,N])])[#6;!$(C=[O,S,N])])]", "oxygen",
                 "acyclic C-O-C, not part of an ester/carbonate"),
    Substructure("cyclic ether", "[OX2;R;!a]([#6;!$(C=O)])[#6;!$(C=O)]", "oxygen",
                 "ether O in a non-aromatic ring"),
    Substructure("ketone", "[#6][CX3](=[OX1])[#6]", "oxygen", "C-C(=O)-C"),
    Substructure("hydroxyl", "[OX2H][#6;!$(C=O)]", "oxygen", "alcohol or phenol OH"),
    Substructure("amide", "[NX3][CX3](=[OX1])[#6]", "nitrogen", "N-C(=O)-C"),
    Substructure("imide", "[CX3](=[OX1])[NX3][CX3](=[OX1])", "nitrogen", "C(=O)-N-C(=O)"),
    Substructure("urethane", "[NX3][CX3](=[OX1])[OX2]", "nitrogen", "N-C(=O)-O"),
    Substructure("urea", "[NX3][CX3](=[OX1])[NX3]", "nitrogen", "N-C(=O)-N"),
    Substructure("nitrile", "[CX2]#[NX1]", "nitrogen", "C#N"),
    Substructure("contains N", "[#7]", "element", "any nitrogen atom"),
    Substructure("contains O", "[#8]", "element", "any oxygen atom"),
    Substructure("contains Si", "[#14]", "element", "any silicon atom"),
    Substructure("siloxane", "[Si][OX2][Si]", "other", "Si-O-Si"),
    Substructure("contains P", "[#15]", "element", "any phosphorus atom"),
)

DEFAULT_LIBRARY: dict[str, Substructure] = {s.name: s for s in _LIB}


class _quiet:
    """Context manager silencing RDKit's C++ log (parse errors are reported as exceptions)."""

    def __enter__(self) -> None:
        self._b = BlockLogs()

    def __exit__(self, *exc: object) -> None:
        del self._b


@lru_cache(maxsize=512)
def _compiled(smarts: str) -> Chem.Mol:
    mol = Chem.MolFromSmarts(smarts)
    if mol is None:
        raise InvalidSmarts(f"not a valid SMARTS pattern: {smarts!r}")
    return mol


def validate_smarts(smarts: str) -> str:
    """Return the stripped SMARTS if RDKit parses it; raise :class:`InvalidSmarts` otherwise.

    Rejects empty strings, strings longer than ``MAX_SMARTS_LENGTH`` characters, and
    anything RDKit's SMARTS parser refuses (the message names the pattern).
    """
    if not isinstance(smarts, str):
        raise InvalidSmarts(f"SMARTS must be a string, got {type(smarts).__name__}")
    s = smarts.strip()
    if not s:
        raise InvalidSmarts("SMARTS pattern is empty")
    if len(s) > MAX_SMARTS_LENGTH:
        raise InvalidSmarts(f"SMARTS pattern is {len(s)} characters long "
                            f"(limit {MAX_SMARTS_LENGTH})")
    if any(ch.isspace() for ch in s):
        raise InvalidSmarts(f"SMARTS pattern contains whitespace: {s!r}")
    with _quiet():
        mol = Chem.MolFromSmarts(s)
    if mol is None:
        raise InvalidSmarts(f"RDKit cannot parse SMARTS {s!r} (check brackets, ring-closure "
                            "digits and bond symbols)")
    if mol.GetNumAtoms() == 0:
        raise InvalidSmarts(f"SMARTS {s!r} has no atoms")
    return s


def user_substructure(name: str, smarts: str) -> Substructure:
    """A validated user-defined :class:`Substructure` (category ``"user"``)."""
    s = validate_smarts(smarts)
    nm = (name or "").strip() or s
    if len(nm) > 80:
        raise InvalidSmarts("substructure name longer than 80 characters")
    return Substructure(nm, s, "user", "user SMARTS")


def _parse_unit(psmiles: str) -> Chem.Mol:
    with _quiet():
        mol = Chem.MolFromSmiles(psmiles) if isinstance(psmiles, str) else None
    if mol is None:
        raise InvalidPolymerSmiles(f"RDKit cannot parse polymer SMILES {psmiles!r}")
    stars = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
    if len(stars) != 2:
        raise InvalidPolymerSmiles(f"polymer SMILES {psmiles!r} has {len(stars)} '*' atoms, "
                                   "expected 2")
    return mol


def polymer_trimer(psmiles: str) -> Chem.Mol:
    """Linear trimer of a two-``*`` repeat unit, outer ends left as ``*`` dummy atoms.

    Copies are joined tail (second ``*``) → head (first ``*``) of the next copy with
    ``Chem.molzip``. Every atom carries int props ``copy`` (0, 1, 2) and ``orig`` (its index
    in the single repeat unit). Cached. Raises :class:`InvalidPolymerSmiles` for bad input.
    """
    return _tagged_trimer(psmiles)


def _patterns(library: Mapping[str, Substructure] | Sequence[Substructure]) -> list[Substructure]:
    if isinstance(library, Mapping):
        return list(library.values())
    return list(library)


def has_substructure(psmiles: str, smarts: str) -> bool:
    """True if the polymer (matched on its linear trimer) contains the SMARTS pattern."""
    return polymer_trimer(psmiles).HasSubstructMatch(_compiled(validate_smarts(smarts)))


def match_matrix(psmiles: Iterable[str],
                 library: Mapping[str, Substructure] | Sequence[Substructure] | None = None,
                 *, progress: Callable[[float], None] | None = None,
                 ) -> pd.DataFrame:
    """Boolean DataFrame (one row per polymer, one column per substructure name).

    Unparsable polymers get an all-False row and are listed in ``df.attrs["invalid"]``
    (positions), so one bad string in an imported pool never hides the rest. ``progress``
    (optional) is called with the fraction done (0–1) every 500 polymers and at the end.
    """
    subs = _patterns(DEFAULT_LIBRARY if library is None else library)
    queries = [_compiled(validate_smarts(s.smarts)) for s in subs]
    ps = list(psmiles)
    out = np.zeros((len(ps), len(subs)), dtype=bool)
    invalid: list[int] = []
    for i, p in enumerate(ps):
        try:
            tri = polymer_trimer(p)
        except InvalidPolymerSmiles:
            invalid.append(i)
            continue
        for j, q in enumerate(queries):
            out[i, j] = tri.HasSubstructMatch(q)
        if progress is not None and i % 500 == 499:
            progress((i + 1) / len(ps))
    if progress is not None:
        progress(1.0)
    df = pd.DataFrame(out, columns=[s.name for s in subs])
    df.attrs["invalid"] = invalid
    return df


def match_atoms(psmiles: str, smarts: str) -> tuple[int, ...]:
    """Atom indices of the repeat unit (as parsed from ``psmiles``) covered by the pattern.

    Matches are searched on the trimer; an atom of the *middle* copy that takes part in a match
    is mapped back to its index in the single repeat unit, so groups across the junction are
    highlighted on the atoms the unit owns. Used to highlight structure depictions.
    """
    n = _parse_unit(psmiles).GetNumAtoms()
    q = _compiled(validate_smarts(smarts))
    tagged = _tagged_trimer(psmiles)
    hits: set[int] = set()
    for match in tagged.GetSubstructMatches(q, maxMatches=1000):
        for idx in match:
            a = tagged.GetAtomWithIdx(idx)
            if a.HasProp("copy") and a.GetIntProp("copy") == 1:
                hits.add(a.GetIntProp("orig"))
    return tuple(sorted(i for i in hits if i < n))


@lru_cache(maxsize=20000)
def _tagged_trimer(psmiles: str) -> Chem.Mol:
    """Three copies of the unit in one RWMol; copy k's tail neighbour bonded to copy k+1's head
    neighbour (with the bond order of the star bonds), the four inner ``*`` removed. Atom
    props ``copy``/``orig`` record where each atom came from (for :func:`match_atoms`)."""
    unit = _parse_unit(psmiles)
    n = unit.GetNumAtoms()
    head, tail = [a.GetIdx() for a in unit.GetAtoms() if a.GetAtomicNum() == 0]
    h_nb = [nb.GetIdx() for nb in unit.GetAtomWithIdx(head).GetNeighbors()]
    t_nb = [nb.GetIdx() for nb in unit.GetAtomWithIdx(tail).GetNeighbors()]
    if len(h_nb) != 1 or len(t_nb) != 1 or h_nb[0] == tail:
        raise InvalidPolymerSmiles(f"each '*' of {psmiles!r} must be bonded to one real atom")
    bond_type = unit.GetBondBetweenAtoms(tail, t_nb[0]).GetBondType()
    rw = Chem.RWMol()
    for k in range(3):
        rw.InsertMol(unit)
    for i in range(3 * n):
        a = rw.GetAtomWithIdx(i)
        a.SetIntProp("copy", i // n)
        a.SetIntProp("orig", i % n)
    for k in range(2):
        rw.AddBond(k * n + t_nb[0], (k + 1) * n + h_nb[0], bond_type)
    for idx in sorted([tail, n + head, n + tail, 2 * n + head], reverse=True):
        rw.RemoveAtom(idx)
    tri = rw.GetMol()
    with _quiet():
        try:
            Chem.SanitizeMol(tri)
        except RDKIT_ERRORS as err:
            raise InvalidPolymerSmiles(f"joined repeat units of {psmiles!r} do not sanitize: "
                                       f"{err}") from None
    return tri


def enrichment(psmiles_all: Sequence[str],
               mask_group: Sequence[bool] | np.ndarray,
               library: Mapping[str, Substructure] | Sequence[Substructure] | None = None,
               *,
               matches: pd.DataFrame | None = None,
               ) -> pd.DataFrame:
    """Enrichment of each substructure in a subset of polymers vs the rest.

    Parameters
    ----------
    psmiles_all : polymer SMILES of all N polymers considered (e.g. all evaluated).
    mask_group  : N booleans, True for the subset (e.g. beyond the limit line).
    library     : substructures to test (default: :data:`DEFAULT_LIBRARY`).
    matches     : optional precomputed :func:`match_matrix` of ``psmiles_all`` / ``library``.

    Returns a DataFrame with one row per substructure, columns
    ``group, category, smarts, n_subset, n_subset_with, frac_subset, n_all, n_all_with,
    frac_all, frac_rest, odds_ratio, p_value, q_value, p_enriched, q_enriched`` sorted by
    ``p_enriched`` then ``odds_ratio`` (descending). ``frac_*`` are fractions in [0, 1];
    ``odds_ratio`` is the Haldane-corrected OR of subset vs rest (NaN when the subset is empty
    or everything); ``p_value`` is two-sided Fisher exact, ``p_enriched`` one-sided (subset
    has more); ``q_value`` / ``q_enriched`` are their Benjamini–Hochberg
    q-values over the rows of this table. Raises ``ValueError`` if lengths differ.
    """
    ps = list(psmiles_all)
    mask = np.asarray(mask_group, dtype=bool)
    if mask.shape != (len(ps),):
        raise ValueError(f"mask_group has {mask.size} entries but there are {len(ps)} polymers")
    subs = _patterns(DEFAULT_LIBRARY if library is None else library)
    if matches is None:
        matches = match_matrix(ps, subs)
    elif len(matches) != len(ps):
        raise ValueError("precomputed matches do not have one row per polymer")
    n_sub = int(mask.sum())
    n_all = len(ps)
    rows = []
    for s in subs:
        col = np.asarray(matches[s.name], dtype=bool)
        a = int((col & mask).sum())
        b = n_sub - a
        c = int((col & ~mask).sum())
        d = (n_all - n_sub) - c
        if n_sub == 0 or n_sub == n_all:  # no comparison possible
            orr = float("nan")
            p2 = pg = 1.0
        else:
            orr = (a + 0.5) * (d + 0.5) / ((b + 0.5) * (c + 0.5))
            p2 = float(fisher_exact([[a, b], [c, d]], alternative="two-sided")[1])
            pg = float(fisher_exact([[a, b], [c, d]], alternative="greater")[1])
        rows.append({
            "group": s.name, "category": s.category, "smarts": s.smarts,
            "n_subset": n_sub, "n_subset_with": a,
            "frac_subset": a / n_sub if n_sub else float("nan"),
            "n_all": n_all, "n_all_with": a + c,
            "frac_all": (a + c) / n_all if n_all else float("nan"),
            "frac_rest": c / (n_all - n_sub) if n_all > n_sub else float("nan"),
            "odds_ratio": orr, "p_value": p2, "p_enriched": pg,
        })
    df = pd.DataFrame(rows, columns=["group", "category", "smarts", "n_subset", "n_subset_with",
                                     "frac_subset", "n_all", "n_all_with", "frac_all",
                                     "frac_rest", "odds_ratio", "p_value", "p_enriched"])
    df.insert(df.columns.get_loc("p_value") + 1, "q_value",
              benjamini_hochberg(df["p_value"].to_numpy(float)))
    df["q_enriched"] = benjamini_hochberg(df["p_enriched"].to_numpy(float))
    if df.empty:
        return df
    df = df.sort_values(["p_enriched", "odds_ratio"], ascending=[True, False], kind="stable")
    return df.reset_index(drop=True)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values (FDR-adjusted p-values) of ``p``, in the same order.

    With the m finite p-values sorted ascending, p_(1) <= ... <= p_(m):
    q_(i) = min over j >= i of min(1, p_(j) * m / j).  NaN entries stay NaN and do not count
    in m.  Example: p = [0.01, 0.04, 0.03, 0.005] gives q = [0.02, 0.04, 0.04, 0.02].
    """
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return q
    pv = p[ok]
    order = np.argsort(pv, kind="stable")
    scaled = pv[order] * m / np.arange(1, m + 1)
    adj = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    out = np.empty(m)
    out[order] = adj
    q[ok] = out
    return q


def pin_groups(df: pd.DataFrame, groups: Sequence[str] = SEED_CHECK_GROUPS) -> pd.DataFrame:
    """The enrichment table with the rows of ``groups`` first (in that order, those present),
    the others after them in their order; index reset."""
    if df.empty or "group" not in df:
        return df
    first = [df.index[df["group"] == g][0] for g in groups if (df["group"] == g).any()]
    rest = [i for i in df.index if i not in set(first)]
    return df.loc[first + rest].reset_index(drop=True)
