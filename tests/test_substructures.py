"""Tests of core.chem.substructures against hand-made polymer sets with hand-checked answers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact

from core.chem.substructures import (DEFAULT_LIBRARY, InvalidPolymerSmiles, InvalidSmarts,
                                     Substructure, enrichment, has_substructure, match_atoms,
                                     match_matrix, polymer_trimer, user_substructure,
                                     validate_smarts)
from rdkit import Chem

PSU = "*c1ccc(S(=O)(=O)c2ccc(Oc3ccc(*)cc3)cc2)cc1"      # polysulfone-like
PPS = "*c1ccc(S*)cc1"                                   # poly(phenylene sulfide)
PS = "*CC(*)c1ccccc1"                                   # polystyrene
PMMA = "*CC(C)(*)C(=O)OC"
PC_SPLIT = "*Oc1ccc(C(C)(C)c2ccc(OC(*)=O)cc2)cc1"       # polycarbonate, carbonate across the *
PTFE = "*C(F)(F)C(F)(F)*"
PEO = "*CCO*"
NYLON6 = "*CCCCCC(=O)N*"
PEN = "*OCCOC(=O)c1ccc2cc(C(*)=O)ccc2c1"                # naphthalate ester
P3HT = "*c1sc(*)cc1CCCCCC"
DISULF = "*CCSSCC*"
THIOCARB = "*SC(=S)SCC*"
PI = "*c1ccc(N2C(=O)c3ccc(*)cc3C2=O)cc1"
SULFONAMIDE = "*c1ccc(S(=O)(=O)N(C)c2ccc(*)cc2)cc1"
CHDT_DVS = "*SC1CCC(CSCCS(=O)(=O)CC*)CC1"               # thioether + sulfonyl, alicyclic


def _has(ps: str, name: str) -> bool:
    return has_substructure(ps, DEFAULT_LIBRARY[name].smarts)


@pytest.mark.parametrize("ps,name,expected", [
    (PSU, "sulfonyl", True), (PSU, "sulfone", True), (PSU, "ether", True),
    (PSU, "sulfide / thioether", False), (PSU, "contains S", True),
    (PPS, "sulfide / thioether", True), (PPS, "sulfonyl", False),
    (PS, "contains S", False), (PS, "aromatic ring", True), (PS, "ester", False),
    (PMMA, "ester", True), (PMMA, "ether", False), (PMMA, "carbonate", False),
    (PC_SPLIT, "carbonate", True), (PC_SPLIT, "ester", False), (PC_SPLIT, "ether", False),
    (PTFE, "fluoroalkyl", True), (PTFE, "contains F", True), (PTFE, "aromatic ring", False),
    (PEO, "ether", True), (PEO, "ester", False),
    (NYLON6, "amide", True), (NYLON6, "imide", False),
    (PEN, "fused aromatics", True), (PEN, "ester", True), (PS, "fused aromatics", False),
    (P3HT, "thiophene", True), (P3HT, "sulfide / thioether", False),
    (DISULF, "disulfide", True), (DISULF, "sulfide / thioether", False),
    (THIOCARB, "thiocarbonyl", True),
    (PI, "imide", True), (SULFONAMIDE, "sulfonamide", True), (SULFONAMIDE, "sulfonyl", True),
    (CHDT_DVS, "alicyclic ring", True), (CHDT_DVS, "sulfonyl", True),
    (CHDT_DVS, "sulfide / thioether", True), (PS, "alicyclic ring", False),
])
def test_library_on_known_polymers(ps: str, name: str, expected: bool) -> None:
    assert _has(ps, name) is expected


def test_junction_group_only_seen_after_joining_units() -> None:
    # the unit on its own has no O-C(=O)-O: only the trimer shows the carbonate
    unit = Chem.MolFromSmiles(PC_SPLIT)
    q = Chem.MolFromSmarts(DEFAULT_LIBRARY["carbonate"].smarts)
    assert not unit.HasSubstructMatch(q)
    assert _has(PC_SPLIT, "carbonate")


def test_trimer_keeps_two_dummy_ends_and_three_units() -> None:
    tri = polymer_trimer(PS)
    stars = [a for a in tri.GetAtoms() if a.GetAtomicNum() == 0]
    assert len(stars) == 2
    heavy = sum(1 for a in tri.GetAtoms() if a.GetAtomicNum() > 0)
    assert heavy == 3 * 8
    # dummy ends are never capped, so no spurious hydroxyl appears at the ends of PEO
    assert not _has(PEO, "hydroxyl")


def test_match_atoms_maps_back_to_unit_indices() -> None:
    atoms = match_atoms(PSU, DEFAULT_LIBRARY["sulfonyl"].smarts)
    mol = Chem.MolFromSmiles(PSU)
    symbols = sorted(mol.GetAtomWithIdx(i).GetSymbol() for i in atoms)
    assert symbols == ["O", "O", "S"]
    # the carbonate across the junction is highlighted on atoms the unit owns (3 O + 1 C)
    atoms_c = match_atoms(PC_SPLIT, DEFAULT_LIBRARY["carbonate"].smarts)
    syms = sorted(mol2.GetSymbol() for mol2 in
                  (Chem.MolFromSmiles(PC_SPLIT).GetAtomWithIdx(i) for i in atoms_c))
    assert syms == ["C", "O", "O", "O"]


@pytest.mark.parametrize("bad", ["", "   ", "C(", "C)C", "c1ccc", "C C", "x" * 500, None])
def test_invalid_user_smarts_raise_clear_error(bad) -> None:
    with pytest.raises(InvalidSmarts):
        validate_smarts(bad)


def test_user_substructure_validated_and_named() -> None:
    s = user_substructure("", "[#16](=O)(=O)")
    assert s.name == "[#16](=O)(=O)" and s.category == "user"
    assert user_substructure("my sulfonyl", " S(=O)(=O) ").smarts == "S(=O)(=O)"
    with pytest.raises(InvalidSmarts):
        user_substructure("x", "C1CC")


def test_match_matrix_reports_progress() -> None:
    seen: list[float] = []
    match_matrix([PS] * 1001, {"arom": Substructure("arom", "[a]", "x")}, progress=seen.append)
    assert seen == [500 / 1001, 1000 / 1001, 1.0]


def test_match_matrix_marks_invalid_rows_without_failing() -> None:
    m = match_matrix([PS, "not a smiles", "*CC"], {"arom": Substructure("arom", "[a]", "x")})
    assert m["arom"].tolist() == [True, False, False]
    assert m.attrs["invalid"] == [1, 2]
    with pytest.raises(InvalidPolymerSmiles):
        polymer_trimer("*CC")


def test_enrichment_hand_made_set() -> None:
    # 10 polymers, 5 "beyond": 4 of them contain S (2 sulfonyl); 1 of the 5 others contains S
    beyond = [PSU, CHDT_DVS, PPS, P3HT, PMMA]
    rest = [PS, PTFE, PEO, NYLON6, SULFONAMIDE]
    ps = beyond + rest
    mask = np.array([True] * 5 + [False] * 5)
    lib = {k: DEFAULT_LIBRARY[k] for k in ("contains S", "sulfonyl", "aromatic ring", "ester")}
    df = enrichment(ps, mask, lib)
    row = df.set_index("group").loc["contains S"]
    assert row["n_subset_with"] == 4 and row["n_all_with"] == 5
    assert row["frac_subset"] == pytest.approx(0.8)
    assert row["frac_rest"] == pytest.approx(0.2)
    assert row["frac_all"] == pytest.approx(0.5)
    # Haldane OR = (4.5*4.5)/(1.5*1.5) = 9
    assert row["odds_ratio"] == pytest.approx(9.0)
    assert row["p_value"] == pytest.approx(fisher_exact([[4, 1], [1, 4]])[1])
    assert row["p_enriched"] == pytest.approx(fisher_exact([[4, 1], [1, 4]],
                                                           alternative="greater")[1])
    sul = df.set_index("group").loc["sulfonyl"]
    assert (sul["n_subset_with"], sul["n_all_with"]) == (2, 3)
    # sorted by one-sided p ascending: contains S (p=0.103) comes first
    assert df["group"].iloc[0] == "contains S"
    assert list(df["p_enriched"]) == sorted(df["p_enriched"])


def test_enrichment_degenerate_and_errors() -> None:
    df = enrichment([PS, PSU], [False, False], {"S": DEFAULT_LIBRARY["contains S"]})
    assert df["p_value"].iloc[0] == 1.0 and np.isnan(df["frac_subset"].iloc[0])
    assert np.isnan(df["odds_ratio"].iloc[0])
    with pytest.raises(ValueError):
        enrichment([PS, PSU], [True], {"S": DEFAULT_LIBRARY["contains S"]})
    m = match_matrix([PS, PSU])
    df2 = enrichment([PS, PSU], [False, True], matches=m)
    assert set(df2["group"]) == set(DEFAULT_LIBRARY)
    assert isinstance(df2, pd.DataFrame)


def test_library_patterns_all_parse_and_never_match_dummies() -> None:
    star_only = Chem.MolFromSmiles("**")
    for s in DEFAULT_LIBRARY.values():
        q = Chem.MolFromSmarts(s.smarts)
        assert q is not None, s.name
        assert not star_only.HasSubstructMatch(q), s.name


def test_pi1070_sulfur_statistics(shared_data) -> None:
    df = pd.read_csv(shared_data / "PI1070.csv", usecols=["smiles"])
    ps = df["smiles"].tolist()[:300]
    m = match_matrix(ps, {k: DEFAULT_LIBRARY[k] for k in ("contains S", "sulfonyl")})
    direct = sum(any(a.GetSymbol() == "S" for a in Chem.MolFromSmiles(p).GetAtoms()) for p in ps)
    assert int(m["contains S"].sum()) == direct
    assert (m["sulfonyl"] <= m["contains S"]).all()
