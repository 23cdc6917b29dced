"""core.chem.feasibility: SA score (Ertl & Schuffenhauer 2009, RDKit Contrib) and unfit-motif flags,
checked on hand-picked molecules."""
import pytest

from core.chem import feasibility as F


@pytest.mark.parametrize("psmiles, flag", [
    # cyclobutadiene itself in a side group, and the pool's dimethylenecyclobutene (issue 15)
    ("*CC(*)C1=CC=C1", "antiaromatic four-ring"),
    ("*C=C(*)C1C=CC(=C2C=CC2=Cc2ccccc2)CO1", "antiaromatic four-ring"),
    ("*CC(*)C=C=CC", "cumulene"),
    ("*CC(*)N=C=O", "heterocumulene"),
    ("*CC(*)OOC", "peroxide"),
    ("*OCCO*", "peroxide"),                       # formed across the unit junction
    ("*CC(*)c1ccc(S(=O)(=O)O)cc1", "free sulfonic acid"),
    ("*CC(*)c1ccc(N=Nc2ccccc2)cc1", "azo chromophore"),
    ("*CC(*)C1=CC(=O)C=CC1=O", "quinoid or fulvene chromophore"),
    ("*CC(*)C=C1C=CC=C1", "quinoid or fulvene chromophore"),
    ("*CC(*)C1=C2CCC1CC2", "anti-Bredt double bond"),  # bicyclo[2.2.1]hept-1-ene
])
def test_unfit_motifs_are_flagged(psmiles, flag):
    assert flag in F.motif_flags(psmiles)


@pytest.mark.parametrize("psmiles", [
    "*CC(*)c1ccccc1",                       # polystyrene
    "*CC(*)(C)C(=O)OC",                     # PMMA
    "*c1ccc(S(=O)(=O)c2ccc(*)cc2)cc1",      # a sulfone: S(=O)(=O) without OH is fine
    "*CC(*)c1ccc(S(=O)(=O)OC)cc1",          # a sulfonate ester is not a free acid
    "*C1C=CC1S(*)(=O)=O",                   # cyclobutene: 2 sp2 atoms only
    "*CC(*)c1ccc2c(c1)CC2",                 # benzocyclobutene
    "*CC(*)OC1CC2CCC1(C)C2(C)C",            # isobornyl: bridged but saturated
    "*C(=O)OCCOC(=O)c1ccc(*)cc1",           # PET
    "*CC(*)SSC",                            # a disulfide is not a peroxide
    "*CC(*)C1=CC2CC1CC2",                   # norbornene: C=C beside, not at, the bridgehead
])
def test_ordinary_polymers_are_not_flagged(psmiles):
    assert F.motif_flags(psmiles) == ()


def test_sa_score_ranks_simple_below_complex():
    """Polystyrene's capped unit (ethylbenzene) is trivial to make; a polycyclic unit with
    stereocentres and a bridged bicycle scores higher. Values: 1 (easy) … 10 (hard)."""
    ps = F.sa_score("*CC(*)c1ccccc1")
    bridged = F.sa_score("*CC1c2ccc(OC(=O)O*)cc2C=CCC1OC1CC2CCC1(C)C2(C)C")
    assert 1.0 <= ps < 2.0
    assert ps < bridged <= 10.0


def test_sa_score_matches_contrib_on_the_capped_unit():
    """sa_score is the Contrib scorer applied to the H-capped unit (same number, not a copy)."""
    from rdkit import Chem
    scorer = F._sascorer()
    expect = scorer.calculateScore(Chem.MolFromSmiles("CC(C)C(=O)OC"))  # H-capped PMMA unit
    assert F.sa_score("*CC(*)(C)C(=O)OC") == pytest.approx(expect, abs=1e-12)


def test_assess_and_assess_many():
    good, bad, invalid = F.assess_many(["*CC(*)c1ccccc1", "*CC(*)CS(=O)(=O)O", "*CC"])
    assert invalid is None
    assert not good.flagged and not good.hard_to_make
    assert bad.flags == ("free sulfonic acid",) and bad.flagged
    d = bad.as_dict()
    assert d["flags"] == ["free sulfonic acid"] and d["flagged"] is True
    assert 1.0 <= d["sa_score"] <= 10.0


def test_every_motif_explains_itself():
    for name, m in F.MOTIFS.items():
        assert m.name == name and len(m.why) > 20
        assert m.smarts or m.test is not None
