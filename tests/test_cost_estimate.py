"""core.optimize.cost_estimate: sizes counted by hand, the cost model's scaling, and the pre-check."""
import numpy as np
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


def test_qm_incore_follows_pyscfs_memory_test():
    """PySCF keeps the integrals in memory while nbf**4/1e6 MB + its own memory stays under 95 %
    of max_memory: at 4,000 MB and 400 MB of process memory, 3,400 MB → nbf ≤ 241."""
    assert C.qm_incore(241) and not C.qm_incore(242)
    assert C.qm_incore(300, max_memory_mb=9000)
    assert not C.qm_incore(100, max_memory_mb=500)  # 100 MB of integrals + 400 MB > 475 MB


def test_smoke_qm_beyond_incore_costs_the_direct_factor():
    """smoke (no density fitting): a unit past ~240 STO-3G orbitals pays the direct-SCF factor
    over the in-core power law; quick (density-fitted) never does."""
    big = "*C(=O)OCCCCOC(=O)NCCCCNC(=O)CCCC(*)(C)CC1C(=O)OC(=O)C1CC(c1ccccc1)c1ccc(OC)cc1"
    c = C.estimate_cost(big, "smoke")
    assert c.qm_basis_functions == 283 and not C.qm_incore(283)
    law = C.COST_MODEL["qm"]["smoke"]
    plain = law["A"] * (283 / 100.0) ** law["B"]
    assert c.qm_s == pytest.approx(plain * C.COST_MODEL["qm_direct_factor"], rel=1e-9)
    q = C.estimate_cost(big, "quick")
    qlaw = C.COST_MODEL["qm"]["quick"]
    assert q.qm_s == pytest.approx(qlaw["A"] * (q.qm_basis_functions / 100.0) ** qlaw["B"],
                                   rel=1e-9)
    small = C.estimate_cost("*CC(*)c1ccccc1", "smoke")  # 50 orbitals: in core, the plain law
    assert small.qm_s == pytest.approx(law["A"] * 0.5 ** law["B"], rel=1e-9)


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


def test_an_anti_bredt_four_ring_unit_has_no_3d_structure():
    """VP08684 of the shipped pool: a bicyclo[1.1.1]pentene-type unit (anti-Bredt double bond in
    a cyclobutadiene-like four-ring) that failed in build; the pre-check and the screening say
    so. One of the two flags alone is not enough (VP09722: anti-Bredt only, built)."""
    bad = "*C(CC(*)(C)C=C1C2=CC1(CCCCCCCC)C2(CCCCCCCC)CCCCCCCC)Sc1ccccc1"
    v = C.simulability(bad, "smoke")
    assert not v.ok and "3-D structure" in v.reasons[0]
    frame = C.screen([bad], "smoke")
    assert not frame["simulable"].iloc[0]
    assert "3-D structure" in frame["unsimulable_reason"].iloc[0]
    only_bredt = "*C(C)=CC=C1SC2=CC=C(C(CCCC)CS(*)(=O)=O)C1=CC=C2"
    assert C.simulability(only_bredt, "smoke").ok


def test_screen_agrees_with_the_model_and_the_pre_check():
    ps = ["*CC(*)c1ccccc1", "*CC(*)CS(=O)(=O)O", "*CC(*)(C)C(=O)OC" + "C" * 37, "*CC"]
    sc = C.screen(ps, "quick")
    assert list(sc.columns) == list(C.SCREEN_COLUMNS) and list(sc["psmiles"]) == ps
    for i in range(3):
        assert sc["cost_cpu_min"][i] == pytest.approx(C.estimate_cost(ps[i], "quick").total_s
                                                       / 60, rel=1e-12)
        assert sc["simulable"][i] == C.simulability(ps[i], "quick").ok
    assert list(sc["flagged"]) == [False, True, False, False]
    assert sc["flags"][1] == "free sulfonic acid"
    assert "more than the quick limit of 100" in sc["unsimulable_reason"][2]
    # an invalid polymer SMILES (one star): never raises, unknown cost, fails the pre-check
    assert not sc["simulable"][3] and np.isnan(sc["cost_cpu_min"][3])
    assert "rejects this polymer SMILES" in sc["unsimulable_reason"][3]
    with pytest.raises(ValueError):
        C.screen(ps[:1], "no-such-preset")


def test_screen_uses_a_cache_of_its_own_model_version_only(tmp_path, monkeypatch):
    from core.store import Store

    store = Store(tmp_path / "s.db")
    s = "*CC(*)C(=O)OCC(F)(F)C(F)(F)C(F)(F)F"  # not in the shipped pool
    monkeypatch.setattr(C, "_MEMO", {})
    assert not C._shipped_vectors("quick", [s])
    fresh = C.screen([s], "quick", cache=store)
    v = store.cached_screening("quick", C.screening_version(), [s])[s]
    assert v.shape == (len(C.SCREEN_VECTOR),) and v[0] == pytest.approx(fresh["sa_score"][0])
    # a vector under another version is never read: a stale model cannot give a wrong answer
    store.cache_screening("quick", "old-model", {s: np.full(len(C.SCREEN_VECTOR), 1.0)})
    monkeypatch.setattr(C, "_MEMO", {})
    again = C.screen([s], "quick", cache=store)
    assert again["cost_cpu_min"][0] == pytest.approx(fresh["cost_cpu_min"][0])


def test_the_shipped_screening_matches_a_fresh_computation():
    """assets/pool_screening.npz (python -m core.campaign screen-pool) is of the current model
    version and holds, for 12 random pool polymers, what screen_vectors computes now."""
    from core.pool import load_default_pool

    if not C.SHIPPED_SCREENING.is_file():
        pytest.skip("assets/pool_screening.npz not generated")
    with np.load(C.SHIPPED_SCREENING, allow_pickle=False) as z:
        assert str(z["version"]) == C.screening_version()
        shipped_ps = z["psmiles"].tolist()
    pool = load_default_pool()["psmiles"]
    assert shipped_ps == list(pool)
    rng = np.random.default_rng(15)
    sample = [pool[i] for i in rng.choice(len(pool), 12, replace=False)]
    for preset in C.PRESET_NAMES:
        shipped = C._shipped_vectors(preset, sample)
        for s in sample:
            np.testing.assert_allclose(shipped[s], C.screen_vectors(s, (preset,))[preset],
                                       rtol=1e-9, equal_nan=True)
