"""Tests for core.chem.optics: Lorentz–Lorenz, Abbe number, limit line, reference polymers."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from rdkit import Chem

from core.chem.optics import (AVOGADRO, WAVELENGTHS_NM, LimitLine, OpticsInputError, abbe_number,
                              load_default_limit_line, load_reference_polymers,
                              lorentz_lorenz_ratio, refractive_index)


def test_wavelengths():
    assert WAVELENGTHS_NM == {"F": 486.13, "D": 589.29, "C": 656.27}


def test_refractive_index_hand_computed():
    # polystyrene-like numbers: alpha 13.0 A^3 per repeat unit, rho 1.05, M 104.15
    r = 4 * math.pi / 3 * AVOGADRO * 1.05 * 13.0e-24 / 104.15
    want = math.sqrt((1 + 2 * r) / (1 - r))
    assert lorentz_lorenz_ratio(13.0, 1.05, 104.15) == pytest.approx(r, rel=1e-14)
    got = refractive_index(13.0, 1.05, 104.15)
    assert isinstance(got, float)
    assert got == pytest.approx(want, rel=1e-14)
    assert 1.55 < got < 1.62
    # inverse check: (n²-1)/(n²+2) recovers the ratio
    assert (got ** 2 - 1) / (got ** 2 + 2) == pytest.approx(r, rel=1e-12)


def test_refractive_index_vectorised():
    a = np.array([10.0, 13.0, 16.0])
    n = refractive_index(a, 1.05, 104.15)
    assert n.shape == (3,) and np.all(np.diff(n) > 0)
    np.testing.assert_allclose(n[1], refractive_index(13.0, 1.05, 104.15))


@pytest.mark.parametrize("args", [(0.0, 1.0, 100.0), (-1.0, 1.0, 100.0), (10.0, 0.0, 100.0),
                                  (10.0, 1.0, -5.0), (np.nan, 1.0, 100.0), (10.0, np.inf, 100.0),
                                  ("x", 1.0, 100.0)])
def test_refractive_index_rejects_nonphysical(args):
    with pytest.raises(OpticsInputError):
        refractive_index(*args)


def test_refractive_index_rejects_ratio_at_or_above_one():
    # ratio = 1 exactly at alpha = 3M/(4 pi N_A rho 1e-24)
    alpha_crit = 3 * 100.0 / (4 * math.pi * AVOGADRO * 1.0 * 1e-24)
    with pytest.raises(OpticsInputError, match="≥ 1"):
        refractive_index(alpha_crit * 1.01, 1.0, 100.0)
    assert refractive_index(alpha_crit * 0.5, 1.0, 100.0) == pytest.approx(2.0)


def test_abbe_number():
    assert abbe_number(1.592, 1.6045, 1.5854) == pytest.approx(0.592 / 0.0191)
    np.testing.assert_allclose(abbe_number(np.array([1.5, 1.6]), np.array([1.51, 1.62]),
                                           np.array([1.5, 1.6])), [50.0, 30.0])
    with pytest.raises(OpticsInputError):
        abbe_number(1.5, 1.49, 1.5)  # anomalous dispersion
    with pytest.raises(OpticsInputError):
        abbe_number(0.9, 1.0, 0.95)
    with pytest.raises(OpticsInputError):
        abbe_number(np.nan, 1.6, 1.5)


def test_limit_line_geometry_and_serialisation():
    line = LimitLine((30.0, 1.6), (60.0, 1.5), "test", "hand")
    assert line.slope == pytest.approx(-0.1 / 30)
    assert line.n_at(45.0) == pytest.approx(1.55)
    np.testing.assert_allclose(line.n_at(np.array([30.0, 60.0])), [1.6, 1.5])
    assert line.is_beyond(1.56, 45.0) is True
    assert line.is_beyond(1.55, 45.0) is False  # on the line is not beyond
    np.testing.assert_array_equal(line.is_beyond(np.array([1.7, 1.4]), np.array([20.0, 70.0])),
                                  [True, False])
    d = line.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert LimitLine.from_dict(d) == line
    with pytest.raises(OpticsInputError):
        LimitLine((30.0, 1.6), (30.0, 1.5))
    with pytest.raises(OpticsInputError):
        LimitLine((30.0, np.nan), (40.0, 1.5))
    with pytest.raises(OpticsInputError):
        LimitLine.from_dict({"p1": [1, 1.5]})
    with pytest.raises(OpticsInputError):
        line.n_at(np.nan)


KNOWN_BELOW = {"PMMA": (1.492, 58), "PS": (1.592, 31), "PC": (1.584, 31), "COP": (1.525, 56),
               "TPX": (1.466, 61)}
KNOWN_BEYOND = {"CHDT-DVS": (1.611, 50.6), "P17": (1.582, 38.6), "P18": (1.59, 43)}


def test_default_limit_line_places_known_polymers():
    line = load_default_limit_line()
    assert "Ando" in line.source and line.source  # provenance stated
    for name, (n, v) in KNOWN_BELOW.items():
        assert not line.is_beyond(n, v), name
    for name, (n, v) in KNOWN_BEYOND.items():
        assert line.is_beyond(n, v), name


def test_reference_polymers_table():
    df = load_reference_polymers()
    assert len(df) >= 10
    for col in ("name", "abbreviation", "psmiles", "n_D", "abbe_number", "source", "class"):
        assert col in df.columns
    assert df["source"].str.len().min() > 10
    ab = set(df["abbreviation"])
    assert {"PMMA", "PS", "PC", "COP", "TPX", "CYTOP", "CHDT-DVS", "P17", "P18"} <= ab
    assert df["n_D"].between(1.3, 1.9).all() and df["abbe_number"].between(5, 100).all()
    for s in df["psmiles"]:
        mol = Chem.MolFromSmiles(s)
        assert mol is not None, s
        stars = [a for a in mol.GetAtoms() if a.GetSymbol() == "*"]
        assert len(stars) == 2 and all(a.GetDegree() == 1 for a in stars), s
    try:
        from core.chem.polymer import validate_psmiles
    except ImportError:
        validate_psmiles = None
    if validate_psmiles is not None:
        for s in df["psmiles"]:
            validate_psmiles(s)
    # the table agrees with the default line for the anchors
    line = load_default_limit_line()
    t = df.set_index("abbreviation")
    for name in KNOWN_BELOW:
        assert not line.is_beyond(t.loc[name, "n_D"], t.loc[name, "abbe_number"])
    for name in KNOWN_BEYOND:
        assert line.is_beyond(t.loc[name, "n_D"], t.loc[name, "abbe_number"])
    conv = df[df["class"] == "conventional"]
    assert not line.is_beyond(conv["n_D"].to_numpy(), conv["abbe_number"].to_numpy()).any()
