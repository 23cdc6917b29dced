"""Dilatometry math (core.simulation.dilatometry) on synthetic V(T) with known answers."""
import numpy as np
import pytest

from core.simulation.dilatometry import (SIMHA_BOYER, fit_hinge, ladder_means,
                                         melt_line_density, melt_line_from_ladder)


def _synthetic(tg=400.0, v_tg=0.90, a_l=6.0e-4, a_g=2.0e-4, temps=range(700, 299, -50)):
    t = np.array(list(temps), float)
    v = np.where(t >= tg, v_tg + a_l * (t - tg), v_tg + a_g * (t - tg))
    return t, v


def test_hinge_recovers_tg_and_slopes_exactly():
    t, v = _synthetic(tg=412.0)
    fit = fit_hinge(t, v)
    assert fit.tg == pytest.approx(412.0, abs=0.5)
    assert fit.a_melt == pytest.approx(6.0e-4, rel=1e-3)
    assert fit.a_glass == pytest.approx(2.0e-4, rel=1e-2)
    assert fit.v_tg == pytest.approx(0.90, abs=1e-4)


def test_hinge_with_noise_stays_close():
    rng = np.random.default_rng(3)
    t, v = _synthetic(tg=450.0, temps=range(700, 299, -25))
    fit = fit_hinge(t, v + rng.normal(0, 5e-4, len(v)))
    assert abs(fit.tg - 450.0) < 25.0


def test_hinge_needs_enough_points():
    with pytest.raises(ValueError, match="at least 4"):
        fit_hinge(np.array([300.0, 400.0, 500.0]), np.array([1.0, 1.1, 1.2]))


def test_melt_line_density_hand_checked():
    # melt line V = 0.7 + 5e-4·T (cm³/g); Tg 400 K → V(Tg) = 0.9, α_l = 5e-4/0.9 = 5.556e-4 /K,
    # α_g = α_l − 0.113/400 = 2.731e-4 /K, V(300) = 0.9·(1 − 2.731e-4·100) = 0.87542 cm³/g
    t = np.array([500.0, 600.0, 700.0])
    res = melt_line_density(t, 0.7 + 5e-4 * t, 400.0)
    alpha_l = 5e-4 / 0.9
    alpha_g = alpha_l - SIMHA_BOYER / 400.0
    assert res.alpha_melt == pytest.approx(alpha_l)
    assert res.alpha_glass == pytest.approx(alpha_g)
    assert res.density == pytest.approx(1.0 / (0.9 * (1 - alpha_g * 100.0)))
    assert res.density == pytest.approx(1.0 / 0.87542, rel=2e-5)


def test_rubbery_uses_melt_line_at_target():
    t = np.array([400.0, 500.0, 600.0])
    res = melt_line_density(t, 0.8 + 6e-4 * t, 250.0)   # Tg below 300 K
    assert res.density == pytest.approx(1.0 / (0.8 + 6e-4 * 300.0))
    assert np.isnan(res.alpha_glass)


def test_glass_expansivity_floor_and_bad_melt():
    t = np.array([500.0, 600.0])
    res = melt_line_density(t, 0.9 + 1e-5 * t, 450.0)   # tiny α_l: α_g would be negative
    assert res.alpha_glass == pytest.approx(1.0e-4)
    with pytest.raises(ValueError, match="non-positive"):
        melt_line_density(t, 1.0 - 1e-4 * t, 450.0)


def test_ladder_analysis_end_to_end_on_samples():
    t, v = _synthetic(tg=420.0)
    rng = np.random.default_rng(0)
    rows = []
    for ti, vi in zip(t, v):
        for k in range(40):
            rho = 1.0 / (vi + rng.normal(0, 2e-4))
            rows.append([ti, k, k * 100.0, ti, 1.0, -1.0, 1.0, rho])
    t_set, vm, se = ladder_means(np.array(rows))
    assert list(t_set) == sorted(t, reverse=True)
    res = melt_line_from_ladder(t_set, vm, se, n_boot=50)
    # expected: melt line to 420 K, Simha–Boyer glass to 300 K
    v_tg = 0.90
    a_l = 6.0e-4 / v_tg
    expect = 1.0 / (v_tg * (1 - (a_l - SIMHA_BOYER / 420.0) * 120.0))
    assert abs(res["tg_sim_K"] - 420.0) < 15.0
    assert res["density"] == pytest.approx(expect, rel=4e-3)
    assert 0 < res["density_stderr"] < 0.01 and res["reliable"]
    # a cooling-rate shift moves the reference temperature down by exactly that much
    shifted = melt_line_from_ladder(t_set, vm, se, tg_shift_k=40.0, n_boot=0)
    assert shifted["t_ref_K"] == pytest.approx(res["tg_sim_K"] - 40.0)
    assert shifted["density"] > res["density"]


def test_noisy_ladder_is_flagged_unreliable():
    t, v = _synthetic(tg=420.0)
    rng = np.random.default_rng(5)
    se = np.full(len(t), 0.012)                     # ±1.2 % per point: the quick-scale probe
    res = melt_line_from_ladder(t, v + rng.normal(0, 0.012, len(t)), se, n_boot=100)
    assert not res["reliable"]
