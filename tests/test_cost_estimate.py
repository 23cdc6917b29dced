"""core.optimize.cost_estimate: sizes counted by hand, the cost model's scaling, and the pre-check."""
import pytest

from core.optimize import cost_estimate as C


def test_qm_size_counts_atoms_and_orbitals_by_hand():
    # polystyrene's H-capped unit is ethylbenzene C8H10: 18 atoms.
    # 6-31+G* (spherical d): C = 3s2p + sp diffuse + 5d = 3 + 6 + 4 + 5 = 18 AOs, H = 2 AOs.
    assert C.qm_size("*CC(*)c1ccccc1", "quick") == (18, 8 * 18 + 10 * 2)
    # STO-3G (smoke): C 5, H 1
    assert C.qm_size("*CC(*)c1ccccc1", "smoke") == (18, 8 * 5 + 10)
    # standard: dimer-minus-monomer, the dimer H-(C8H8)2-H has 2*18-2 = 34 atoms;
    # aug-cc-pVDZ: C 23, H 9 AOs
    assert C.qm_size("*CC(*)c1ccccc1", "standard") == (34, 16 * 23 + 18 * 9)


def test_qm_size_uses_the_fallback_basis_for_bromine():
    """6-31+G* has no Br; the QM step gives it def2-SVPD (as core.simulation.qm does)."""
    atoms, aos = C.qm_size("*CC(*)Br", "quick")
    assert atoms == 8  # H-capped C2H5Br... with both stars → H: CH3-CH2Br has 8 atoms
    assert aos == 2 * 18 + 5 * 2 + C._aos_per_element("def2-SVPD", "Br")


def test_cell_and_trimer_atoms():
    # PS unit: 16 atoms without the stars; smoke: 2 chains, 60 atoms target → DP = round(52/16)=3
    assert C.trimer_atoms("*CC(*)c1ccccc1") == 3 * 16 + 8
    assert C.cell_atoms("*CC(*)c1ccccc1", "smoke") == 2 * (3 * 16 + 8)
    # quick: 4 chains of ~160 atoms, DP = round((160 - 8) / 16) = 10 (≥ min_dp 4)
    assert C.cell_atoms("*CC(*)c1ccccc1", "quick") == 4 * (10 * 16 + 8)


def test_estimate_scales_with_size():
    small = C.estimate_cost("*CC(*)C", "quick")
    big = C.estimate_cost("*CC(*)(C)C(=O)OCCCCCCCCCCCC", "quick")
    assert 0 < small.qm_s < big.qm_s and 0 < small.forcefield_s < big.forcefield_s
    qm = C.COST_MODEL["qm"]["quick"]
    ratio = (big.qm_basis_functions / small.qm_basis_functions) ** qm["B"]
    assert big.qm_s / small.qm_s == pytest.approx(ratio, rel=1e-9)
    assert big.total_s == pytest.approx(big.forcefield_s + big.md_s + big.qm_s)
    d = big.as_dict()
    assert d["total_s"] == pytest.approx(big.total_s) and d["preset"] == "quick"


def test_sulfur_units_pay_for_the_sqm_optimisation():
    """quick optimises S-containing trimers for up to sqm_maxcyc_sulfur cycles."""
    s = C.estimate_cost("*CC(*)SC", "quick")
    o = C.estimate_cost("*CC(*)OC", "quick")
    assert s.trimer_atoms == o.trimer_atoms
    assert s.forcefield_s == pytest.approx(o.forcefield_s * 51)  # (1 + 50) single points


def test_every_preset_has_coefficients():
    for preset in ("smoke", "quick", "standard"):
        c = C.estimate_cost("*CC(*)c1ccccc1", preset)
        assert c.total_s > 0 and c.preset == preset


def test_simulability_pass_and_fail():
    ok = C.simulability("*CC(*)c1ccccc1", "quick")
    assert ok.ok and ok.reasons == () and ok.qm_atoms == 18
    si = C.simulability("*[SiH2]C*", "quick")           # no GAFF2 parameters for Si
    assert not si.ok and "Si" in si.reasons[0]
    one_star = C.simulability("*CC", "quick")
    assert not one_star.ok
    big = C.simulability("*CC(*)C(=O)OCCCCCCCCCCCCCCCCCC", "quick", max_qm_atoms=40)
    assert not big.ok and "more than the quick limit of 40" in big.reasons[0]
    assert big.qm_atoms == 65  # CH3CH2C(=O)OC18H37 = C21H42O2
