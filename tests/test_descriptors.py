"""Tests for core.chem.descriptors: the 170-d force-field kernel mean embedding."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.chem.descriptors import (DESCRIPTOR_NAMES, SCALE_RANGES, DescriptorError, ff_kernel_mean,
                                   ff_kernel_mean_batch, ff_parameters, kernel_mean)


def test_names_and_order() -> None:
    assert len(DESCRIPTOR_NAMES) == 170
    assert DESCRIPTOR_NAMES[:10] == ["mass_H", "mass_C", "mass_N", "mass_O", "mass_F", "mass_P",
                                     "mass_S", "mass_Cl", "mass_Br", "mass_I"]
    assert DESCRIPTOR_NAMES[10] == "charge_0" and DESCRIPTOR_NAMES[29] == "charge_19"
    assert DESCRIPTOR_NAMES[30] == "epsilon_0"
    assert DESCRIPTOR_NAMES[-1] == "k_dih_19"
    assert len(set(DESCRIPTOR_NAMES)) == 170


def test_kernel_mean_hand_checked() -> None:
    centres = np.array([0.0, 0.5])
    got = kernel_mean(np.array([0.0, 0.5, 0.5]), centres, 0.5)
    e = math.exp(-0.5)  # (0.5)^2 / (2 * 0.25)
    assert got == pytest.approx([(1 + 2 * e) / 3, (e + 2) / 3])
    assert kernel_mean(np.array([]), centres, 0.1).tolist() == [0.0, 0.0]


def test_polyethylene_hand_checked() -> None:
    """PE cyclic 10-mer = cyclo-C20H40: 1/3 C (c3), 2/3 H (hc); all bonds/angles known."""
    v = ff_kernel_mean("*CC*")
    assert v.shape == (170,)
    lo, hi = SCALE_RANGES["mass"]
    xc = (12.011 - lo) / (hi - lo)
    k_hc = math.exp(-(xc ** 2) / (2 * 0.05 ** 2))
    assert v[0] == pytest.approx(2 / 3 + k_hc / 3, rel=1e-4)  # mass_H
    assert v[1] == pytest.approx(1 / 3 + 2 * k_hc / 3, rel=1e-4)  # mass_C
    p = ff_parameters("*CC*")
    assert sorted(set(p["types"].tolist())) == ["c3", "hc"]
    assert len(p["mass"]) == 6  # owned atoms of one unit: C2H4
    assert len(p["k_bond"]) == 6  # C-C inside, C-C to next unit, 4 C-H
    assert len(p["k_angle"]) == 12  # per CH2: 1 C-C-C, 4 H-C-C, 1 H-C-H
    assert len(p["k_dih"]) == 18  # per C-C bond: 3 x 3
    assert sorted(set(p["k_bond"].tolist())) == [232.5, 375.9]  # c3-c3, c3-hc (gaff 2.11)
    assert p["charge"].sum() == pytest.approx(0.0, abs=1e-6)  # neutral per unit


def test_periodic_shift_and_repeat_invariance() -> None:
    a = ff_kernel_mean("*OCC*")
    assert np.allclose(a, ff_kernel_mean("*CCO*"), atol=1e-9)
    assert np.allclose(a, ff_kernel_mean("*COC*"), atol=1e-9)
    assert np.allclose(ff_kernel_mean("*CC(*)c1ccccc1"), ff_kernel_mean("*C(C*)c1ccccc1"), atol=1e-9)


def test_invalid_input() -> None:
    with pytest.raises(DescriptorError, match="found 1"):
        ff_kernel_mean("*CC")
    with pytest.raises(DescriptorError):
        ff_kernel_mean("")
    assert issubclass(DescriptorError, ValueError)


def test_batch_matches_single_cache_progress_and_errors(tmp_path) -> None:
    smi = ["*CC*", "*CC(*)C", "*CCCC*", "*OCC*", "*CC(*)c1ccccc1"]
    calls: list[tuple[int, int]] = []
    cache: dict = {}
    X = ff_kernel_mean_batch(smi, progress=lambda d, t: calls.append((d, t)), cache=cache)
    assert X.shape == (5, 170)
    for row, s in zip(X, smi):
        assert np.allclose(row, ff_kernel_mean(s))
    assert np.allclose(X[0], X[2])  # PE written twice
    assert calls[-1] == (5, 5) and all(t == 5 for _, t in calls)
    assert set(cache) == {"*C*", "*CC(*)C", "*CCO*", "*CC(*)c1ccccc1"}
    # cached entries are used as they are (no recomputation)
    cache["*C*"] = np.full(170, 7.0)
    assert (ff_kernel_mean_batch(["*CCCCCC*"], cache=cache)[0] == 7.0).all()
    # on-disk cache round trip
    db = tmp_path / "ffkm.sqlite"
    Y = ff_kernel_mean_batch(smi[:2], cache_path=db)
    Z = ff_kernel_mean_batch(smi[:2], cache_path=db)
    assert np.array_equal(Y, Z) and db.exists()
    # errors: name the row, or NaN rows on request
    with pytest.raises(DescriptorError, match=r"row 1 .*found 1"):
        ff_kernel_mean_batch(["*CC*", "*CC"])
    W = ff_kernel_mean_batch(["*CC*", "*CC", "*C[Si](C)(C)C*"], on_error="nan")
    assert np.isfinite(W[0]).all() and np.isnan(W[1]).all() and np.isnan(W[2]).all()
    assert ff_kernel_mean_batch([]).shape == (0, 170)
    with pytest.raises(ValueError):
        ff_kernel_mean_batch(smi, on_error="skip")
    with pytest.raises(TypeError):
        ff_kernel_mean_batch("*CC*")


def test_batch_parallel_equals_serial() -> None:
    smi = ["*CC*", "*CC(*)C", "*OCC*", "*CC(*)c1ccccc1", "*CC(*)(C)C(=O)OC", "*CC(*)Cl",
           "*CC(*)C#N", "*Oc1ccc(cc1)S(=O)(=O)c1ccc(*)cc1"]
    serial = ff_kernel_mean_batch(smi)
    calls: list[tuple[int, int]] = []
    par = ff_kernel_mean_batch(smi, n_jobs=2, chunk_size=2,
                               progress=lambda d, t: calls.append((d, t)))
    assert np.allclose(serial, par)
    assert calls[-1] == (8, 8) and len(calls) >= 4  # one call per finished chunk
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_large_backbone_ring_unit_is_fast() -> None:
    # a 10-mer ring through 20 cyclohexanes: full RDKit sanitisation enumerates 2^20 rings
    v = ff_kernel_mean("*NC1CCC(CC2CCC(NC(=O)CCCCCCCCCCCCC(*)=O)CC2)CC1")
    assert np.isfinite(v).all()


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_matches_spacier_vectors_on_sample(shared_data) -> None:
    """Cosine similarity >= 0.99 against SPACIER's X_pool.csv for >= 95 % of 50 polymers."""
    import pandas as pd

    X = pd.read_csv(shared_data / "spacier_benchmark" / "X_pool.csv")
    Y = pd.read_csv(shared_data / "spacier_benchmark" / "y_oracle.csv")
    assert list(X.columns) == DESCRIPTOR_NAMES
    assert len(X) == len(Y)
    idx = np.random.default_rng(0).choice(len(X), 50, replace=False)
    got = ff_kernel_mean_batch(Y["smiles"].iloc[idx].tolist())
    cos = np.array([_cos(g, x) for g, x in zip(got, X.values[idx])])
    assert np.mean(cos >= 0.99) >= 0.95, np.sort(cos)[:5]
    assert np.mean(cos >= 0.999) >= 0.95, np.sort(cos)[:5]
    assert np.median(cos) > 0.99999
