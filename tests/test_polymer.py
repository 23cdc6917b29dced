"""Tests for core.chem.polymer: validation, canonical form, masses, builders."""
from __future__ import annotations

import random

import pytest
from rdkit import Chem

from core.chem.polymer import (ALLOWED_ELEMENTS, DEFAULT_MAX_HEAVY_ATOMS, InvalidPolymer,
                               canonical_psmiles, capped_unit, cyclic_oligomer, element_counts,
                               linear_oligomer, parse_psmiles, polymer_key, repeat_unit_mass,
                               validate_psmiles)

# ----------------------------------------------------------------------------- validation

BAD = {
    "": "empty",
    "   ": "empty",
    "*CC(*": "unparsable",
    "CC": "found 0",
    "*CC": "found 1",
    "*CC(*)*": "found 3",
    "*C(*)(*)C*": "found 4",
    "C*C.*": "neighbours",
    "*=CC*": "single bond",
    "*C[Si](C)(C)C*": "element Si",
    "*CC[Na]*": "element Na",
    "*CC(*)[NH3+]": "charged",
    "*CC(*)C(=O)[O-]": "charged",
    "*C[CH]C*": "radical",
    "*CC*.CC": "multiple fragments",
    "**": "bonded to each other",
    "*CC" + "C" * 2100 + "*": "too long",
}


@pytest.mark.parametrize("smi,fragment", sorted(BAD.items()))
def test_rejects_bad_input_with_named_problem(smi: str, fragment: str) -> None:
    with pytest.raises(InvalidPolymer) as exc:
        validate_psmiles(smi)
    assert fragment.lower() in str(exc.value).lower()
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize("smi,code,pos", [
    ("*CC(*)\x00c1ccccc1", "U+0000", 7),       # NUL: RDKit stops reading at it
    ("*CC(*)C\x01l", "U+0001", 8),
    ("*CC(*)\u202eCl", "U+202E", 7),          # right-to-left override (bidi)
    ("*CC(*)C\u200bl", "U+200B", 8),          # zero-width space (format character)
    ("\ufeff*CC*", "U+FEFF", 1),              # byte-order mark pasted in front
    ("*CC(*)\u00a0C", "U+00A0", 7),           # no-break space
    ("*CC(*)c1ccccc1\x7f", "U+007F", 15),     # DEL
    ("*CC(*)\u0421", "U+0421", 7),            # Cyrillic ES, looks like C
])
def test_rejects_invisible_control_and_non_ascii_characters(smi: str, code: str,
                                                            pos: int) -> None:
    """Such characters are dropped or misread by RDKit (another polymer would be stored):
    the message names the code point and the 1-based position; every entry point that
    computes a key (canonical form, dedup key) refuses them too."""
    for fn in (validate_psmiles, parse_psmiles, canonical_psmiles, polymer_key):
        with pytest.raises(InvalidPolymer) as exc:
            fn(smi)
        msg = str(exc.value)
        assert code in msg and f"position {pos}" in msg, msg
        assert smi not in msg  # the invisible character is not echoed back
    from core.chem.polymer import check_psmiles_characters

    with pytest.raises(InvalidPolymer, match=code.replace("+", r"\+")):
        check_psmiles_characters(smi)
    check_psmiles_characters("*CC(*)c1ccccc1")
    check_psmiles_characters("  *CC*\n")  # surrounding blanks are trimmed, as before
    assert canonical_psmiles(" *CC(*)Cl\n") == canonical_psmiles("*CC(*)Cl")


def test_rejects_non_string() -> None:
    with pytest.raises(InvalidPolymer, match="str"):
        parse_psmiles(None)  # type: ignore[arg-type]


def test_heavy_atom_limit_is_configurable() -> None:
    s = "*" + "C" * 160 + "*"
    with pytest.raises(InvalidPolymer, match="160 heavy atoms"):
        validate_psmiles(s)
    validate_psmiles(s, max_heavy_atoms=200)
    assert DEFAULT_MAX_HEAVY_ATOMS == 150
    with pytest.raises(InvalidPolymer, match="3 heavy atoms"):
        validate_psmiles("*CCC*", max_heavy_atoms=2)


def test_accepts_charge_separated_neutral_groups_and_all_gaff2_elements() -> None:
    validate_psmiles("*C(C*)c1ccccc1[N+](=O)[O-]")  # nitro (PI1070 writes it this way)
    validate_psmiles("*CC(*)C(=O)OCCSP(=O)(OCl)OC(F)(Br)I")
    assert ALLOWED_ELEMENTS == frozenset({"H", "C", "N", "O", "F", "P", "S", "Cl", "Br", "I"})


def test_parse_returns_dummy_stars() -> None:
    mol = parse_psmiles("[*:1]CC([*:2])c1ccccc1")
    stars = [a for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
    assert len(stars) == 2
    assert all(a.GetAtomMapNum() == 0 for a in mol.GetAtoms())


# ----------------------------------------------------------------------------- canonical form


@pytest.mark.parametrize(
    "group",
    [
        ["*CC(*)c1ccccc1", "*C(C*)c1ccccc1", "c1ccccc1C(*)C*", "*C[C@H](*)c1ccccc1"],
        ["*OCC*", "*CCO*", "*COC*", "*OCCOCC*", "*CCOCCO*"],
        ["*CC*", "*CCCC*", "*C*", "*CCCCCC*"],
        ["*CC(C)(C(=O)OC)*", "*C(C)(C(=O)OC)C*", "COC(=O)C(C)(*)C*"],
        ["*Oc1ccc(C(C)(C)c2ccc(OC(*)=O)cc2)cc1", "*C(=O)Oc1ccc(C(C)(C)c2ccc(O*)cc2)cc1",
         "*c1ccc(C(C)(C)c2ccc(OC(=O)O*)cc2)cc1"],
    ],
)
def test_equivalent_polymers_share_canonical_form(group: list[str]) -> None:
    assert len({canonical_psmiles(s) for s in group}) == 1
    assert len({polymer_key(s) for s in group}) == 1


def test_canonical_values_hand_checked() -> None:
    assert canonical_psmiles("*CCCC*") == "*C*"
    assert canonical_psmiles("*COC*") == "*CCO*"
    assert canonical_psmiles("*C(C*)c1ccccc1") == "*CC(*)c1ccccc1"
    assert polymer_key("*OCC*") == "C1COCCOCCO1"  # 1,4,7-trioxonane: cyclic trimer of PEO
    assert polymer_key("*CC*") == "C1CC1"


@pytest.mark.parametrize(
    "a,b",
    [
        ("*CC(*)C", "*CC(*)CC"),  # polypropylene vs poly(1-butene)
        ("*CC(C)CC(C)*", "*CC(*)C"),  # head-to-tail PP is *CC(C)*; this is PP indeed
        ("*CC(C)C(C)C*", "*CC(*)C"),  # head-to-head/tail-to-tail PP differs
        ("*OCC*", "*OCCC*"),
    ],
)
def test_different_polymers_differ_or_reduce(a: str, b: str) -> None:
    same = canonical_psmiles(a) == canonical_psmiles(b)
    expect_same = (a, b) == ("*CC(C)CC(C)*", "*CC(*)C")
    assert same is expect_same
    assert (polymer_key(a) == polymer_key(b)) is expect_same


def test_canonical_is_valid_psmiles_and_idempotent() -> None:
    for s in ["*CC(*)c1ccccc1", "*c1ccc(*)cc1", "*C(*)C", "*C=CC=C*", "*Sc1ccc(S(=O)(=O)c2ccc(*)cc2)cc1"]:
        c = canonical_psmiles(s)
        validate_psmiles(c)
        assert canonical_psmiles(c) == c
        assert polymer_key(c) == polymer_key(s)


def test_canonical_rejects_invalid() -> None:
    with pytest.raises(InvalidPolymer):
        canonical_psmiles("*CC")
    with pytest.raises(InvalidPolymer):
        polymer_key("")


# ----------------------------------------------------------------------------- properties


def test_repeat_unit_mass_hand_checked() -> None:
    assert repeat_unit_mass("*CC*") == pytest.approx(2 * 12.011 + 4 * 1.008, abs=1e-3)
    # polystyrene C8H8 = 104.15 g/mol; PMMA C5H8O2 = 100.117 g/mol
    assert repeat_unit_mass("*CC(*)c1ccccc1") == pytest.approx(104.152, abs=1e-3)
    assert repeat_unit_mass("*CC(C)(C(=O)OC)*") == pytest.approx(100.117, abs=1e-3)


def test_element_counts() -> None:
    assert element_counts("*CC(*)c1ccccc1") == {"C": 8, "H": 8}
    assert element_counts("*CC(C)(C(=O)OC)*") == {"C": 5, "H": 8, "O": 2}
    assert element_counts("*C(F)(F)C(F)(Cl)*") == {"C": 2, "F": 3, "Cl": 1}


# ----------------------------------------------------------------------------- builders


def _formula(mol: Chem.Mol) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in mol.GetAtoms():
        out[a.GetSymbol()] = out.get(a.GetSymbol(), 0) + 1
    return out


def test_capped_unit_h_and_ch3() -> None:
    h = capped_unit("*CC(*)c1ccccc1", "H")  # ethylbenzene C8H10
    assert _formula(h) == {"C": 8, "H": 10}
    assert h.GetNumConformers() == 1
    me = capped_unit("*CC(*)c1ccccc1", "CH3", embed=False)  # C10H14
    assert _formula(me) == {"C": 10, "H": 14}
    assert me.GetNumConformers() == 0
    with pytest.raises(ValueError, match="cap"):
        capped_unit("*CC*", "OH")


def test_capped_unit_geometry_is_sane() -> None:
    mol = capped_unit("*CC*", "H", seed=3)  # ethane
    conf = mol.GetConformer()
    cc = [b for b in mol.GetBonds() if b.GetBeginAtom().GetAtomicNum() == 6
          and b.GetEndAtom().GetAtomicNum() == 6][0]
    d = (conf.GetAtomPosition(cc.GetBeginAtomIdx()) - conf.GetAtomPosition(cc.GetEndAtomIdx())).Length()
    assert 1.45 < d < 1.60  # Å


def test_linear_oligomer() -> None:
    tri = linear_oligomer("*CC(*)C", 3, "H", embed=False)  # 2,4-dimethylheptane C9H20
    assert _formula(tri) == {"C": 9, "H": 20}
    assert Chem.MolToSmiles(Chem.RemoveHs(tri)) == Chem.MolToSmiles(Chem.MolFromSmiles("CC(C)CC(C)CCC"))
    tri_me = linear_oligomer("*CC(*)C", 3, "CH3", embed=True)
    assert _formula(tri_me) == {"C": 11, "H": 24}
    assert tri_me.GetNumConformers() == 1
    with pytest.raises(ValueError):
        linear_oligomer("*CC*", 0)


def test_cyclic_oligomer() -> None:
    ring = cyclic_oligomer("*CC(*)c1ccccc1", 10)
    assert _formula(ring) == {"C": 80, "H": 80}
    assert len(Chem.GetMolFrags(ring)) == 1
    assert Chem.MolToSmiles(Chem.RemoveHs(cyclic_oligomer("*OCC*", 3))) == "C1COCCOCCO1"
    assert Chem.MolToSmiles(Chem.RemoveHs(cyclic_oligomer("*C*", 3))) == "C1CC1"
    with pytest.raises(ValueError, match="ring"):
        cyclic_oligomer("*CC*", 1)
    emb = cyclic_oligomer("*CC*", 5, embed=True)  # cyclodecane
    assert emb.GetNumConformers() == 1


def test_cyclic_oligomer_of_large_aromatic_unit_is_fast_enough() -> None:
    # macrocycles through many para-phenylenes blow up RDKit's symmetrised SSSR;
    # this polyimide 10-mer must still build (it is what the descriptor uses).
    s = ("*c1ccc(Sc2ccc(Oc3ccc(Sc4ccc(N5C(=O)c6ccc(Oc7ccc(C(C)(C)c8ccc(Oc9ccc%10c(c9)"
         "C(=O)N(*)C%10=O)cc8)cc7)cc6C5=O)cc4)cc3)cc2)cc1")
    ring = cyclic_oligomer(s, 10)
    assert ring.GetNumAtoms() == 10 * (parse_psmiles(s).GetNumAtoms() - 2) + 10 * sum(
        a.GetTotalNumHs() for a in parse_psmiles(s).GetAtoms())
    # 20 cyclohexanes in the macrocycle: 2^20 equivalent rings for full sanitisation (minutes)
    s2 = "*NC1CCC(CC2CCC(NC(=O)CCCCCCCCCCCCC(*)=O)CC2)CC1"
    ring2 = cyclic_oligomer(s2, 10)
    assert len(Chem.GetMolFrags(ring2)) == 1 and ring2.GetNumAtoms() == 10 * 79


# ----------------------------------------------------------------------------- PI1070


def _all_shifts(s: str, rng: random.Random) -> list[str]:
    """Independent periodic shifts: for every acyclic single main-chain bond, cut it, close
    the old star bond, and write a random (non-canonical) SMILES."""
    mol = Chem.MolFromSmiles(s)
    stars = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
    h, t = (mol.GetAtomWithIdx(i).GetNeighbors()[0].GetIdx() for i in stars)
    if h == t or mol.GetBondBetweenAtoms(h, t) is not None:
        return []
    path = Chem.GetShortestPath(mol, h, t)
    out = []
    for a, b in zip(path[:-1], path[1:]):
        bd = mol.GetBondBetweenAtoms(a, b)
        if bd.GetBondType() != Chem.BondType.SINGLE or bd.IsInRing():
            continue
        rw = Chem.RWMol(mol)
        rw.RemoveBond(a, b)
        rw.AddBond(h, t, Chem.BondType.SINGLE)
        for star in sorted(stars, reverse=True):
            rw.RemoveAtom(star)
        for i in (a, b):  # indices shift after removing the stars
            i -= sum(1 for st in stars if st < i)
            j = rw.AddAtom(Chem.Atom(0))
            rw.AddBond(i, j, Chem.BondType.SINGLE)
        m = rw.GetMol()
        Chem.SanitizeMol(m)
        out.append(Chem.MolToSmiles(m, doRandom=True, canonical=False))
    rng.shuffle(out)
    return out


def _shift(s: str, rng: random.Random) -> str | None:
    shifts = _all_shifts(s, rng)
    return shifts[0] if shifts else None


def test_pi1070_round_trip_and_periodic_shifts(shared_data) -> None:
    import pandas as pd

    df = pd.read_csv(shared_data / "PI1070.csv", usecols=["monomer_ID", "smiles"])
    rng = random.Random(0)
    n_shifted = 0
    for s in df["smiles"]:
        c, k = canonical_psmiles(s), polymer_key(s)
        validate_psmiles(c)
        assert canonical_psmiles(c) == c, s
        assert polymer_key(c) == k, s
        sh = _shift(s, rng)
        if sh is not None:
            n_shifted += 1
            assert canonical_psmiles(sh) == c, (s, sh)
            assert polymer_key(sh) == k, (s, sh)
    assert n_shifted > 500


@pytest.mark.slow
def test_pi1070_every_periodic_shift(shared_data) -> None:
    """All 3,718 non-trivial periodic shifts of PI1070 give the same canonical form and key."""
    import pandas as pd

    df = pd.read_csv(shared_data / "PI1070.csv", usecols=["smiles"])
    rng = random.Random(1)
    n = 0
    for s in df["smiles"]:
        c, k = canonical_psmiles(s), polymer_key(s)
        for sh in _all_shifts(s, rng):
            n += 1
            assert canonical_psmiles(sh) == c, (s, sh)
            assert polymer_key(sh) == k, (s, sh)
    assert n > 3000
