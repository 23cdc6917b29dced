"""Tests of the repeat-unit polarisability step (core.simulation.qm).

Small molecules and bases only (methane/ethane from the polymer ``*C*``, water); every number is
checked against an independent calculation (finite field on the same geometry) or a hand rule.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from pyscf import gto, scf

from core.simulation import qm
from core.simulation.errors import SCFNotConverged
from core.simulation.qm import (
    FRAUNHOFER_NM,
    InvalidQMSettings,
    capped_geometry,
    molecule_polarizability,
    repeat_unit_polarizability,
)
from core.simulation.response import BOHR3_TO_A3, finite_field_polarizability

WATER = [("O", (0.0, 0.0, 0.1173)), ("H", (0.0, 0.7572, -0.4692)), ("H", (0.0, -0.7572, -0.4692))]
KEYS = {"alpha_A3", "alpha_tensor_A3", "method", "basis", "mode", "n_atoms", "n_basis",
        "scf_energy_Eh", "response_iterations", "wall_s", "warnings"}


@pytest.fixture(scope="module")
def methane_321g():
    return repeat_unit_polarizability("*C*", method="HF", basis="3-21G")


def test_capped_geometry_is_h_capped_and_reasonable():
    atoms = capped_geometry("*CC(*)c1ccccc1")  # PS unit capped with H = ethylbenzene C8H10
    symbols = sorted(s for s, _ in atoms)
    assert symbols.count("C") == 8 and symbols.count("H") == 10 and len(atoms) == 18
    xyz = np.array([c for _, c in atoms])
    d = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)[np.triu_indices(len(xyz), 1)]
    assert d.min() > 0.9  # no clashes (shortest is a C-H bond, ~1.09 Å)
    dimer = capped_geometry("*CC(*)c1ccccc1", 2)  # C16H18
    assert len(dimer) == 34


def test_repeat_unit_capped_monomer_matches_molecule_and_finite_field(methane_321g):
    r = methane_321g
    assert KEYS <= set(r)
    assert r["mode"] == "capped_monomer" and r["method"] == "HF" and r["basis"] == "3-21G"
    assert r["n_atoms"] == 5 and r["n_basis"] == 17  # CH4 in 3-21G: 9 + 4x2
    assert set(r["alpha_A3"]) == {"static", "F", "D", "C"}
    # same geometry through the molecule-level API gives the same numbers
    atoms = [(row[0], tuple(row[1:])) for row in r["components"]["monomer"]["geometry_A"]]
    m = molecule_polarizability(atoms, method="HF", basis="3-21G", wavelengths_nm=FRAUNHOFER_NM)
    for k in r["alpha_A3"]:
        assert m["alpha_A3"][k] == pytest.approx(r["alpha_A3"][k], rel=1e-9)
    # static α against finite field on that geometry
    mol = gto.M(atom=atoms, basis="3-21G", verbose=0)
    ff = finite_field_polarizability(scf.RHF(mol), field=1e-3)
    assert r["alpha_A3"]["static"] == pytest.approx(np.trace(ff) / 3 * BOHR3_TO_A3, rel=1e-4)
    # isotropic value is the trace/3 of the reported tensor
    t = np.array(r["alpha_tensor_A3"]["D"])
    assert r["alpha_A3"]["D"] == pytest.approx(np.trace(t) / 3, rel=1e-12)
    np.testing.assert_allclose(t, t.T, atol=1e-10)


def test_normal_dispersion_order(methane_321g):
    a = methane_321g["alpha_A3"]
    # shorter wavelength = higher photon energy = larger α below resonance: F > D > C > static
    assert a["F"] > a["D"] > a["C"] > a["static"] > 0
    # methane is nearly isotropic; HF/3-21G static α ≈ 1.5–2.3 Å³ (exp. 2.6 Å³; small basis is low)
    assert 1.2 < a["static"] < 2.6
    assert any("no diffuse functions" in w for w in methane_321g["warnings"])


def test_dimer_minus_monomer_is_one_ch2_increment(methane_321g):
    r = repeat_unit_polarizability("*C*", method="HF", basis="3-21G", mode="dimer_minus_monomer")
    assert r["mode"] == "dimer_minus_monomer"
    mono, dim = r["components"]["monomer"], r["components"]["dimer"]
    assert mono["n_atoms"] == 5 and dim["n_atoms"] == 8 and r["n_atoms"] == 8
    for k in ("static", "F", "D", "C"):
        assert r["alpha_A3"][k] == pytest.approx(dim["alpha_A3"][k] - mono["alpha_A3"][k], rel=1e-12)
    # α(ethane) − α(methane) = one CH2 group: positive, smaller than α(methane) in a small basis
    assert 0.5 * methane_321g["alpha_A3"]["static"] < r["alpha_A3"]["static"] < 1.5 * methane_321g["alpha_A3"]["static"]
    assert r["alpha_A3"]["F"] > r["alpha_A3"]["C"]
    assert set(r["alpha_tensor_A3"]) == {"monomer", "dimer"}


def test_cache_and_restart(tmp_path, monkeypatch):
    msgs: list[tuple[str, str]] = []
    r1 = repeat_unit_polarizability("*C*", method="HF", basis="STO-3G", workdir=tmp_path,
                                    progress=lambda s, m: msgs.append((s, m)))
    assert not r1["from_cache"]
    assert msgs and all(s == "qm" for s, _ in msgs)
    iters = [m for _, m in msgs if "response iteration" in m]
    assert iters and "largest residual" in iters[-1]  # the long response solve reports progress
    files = sorted(p.name for p in tmp_path.iterdir())
    assert any(f.startswith("qm_result_") for f in files)
    assert any(f.startswith("qm_monomer_") for f in files)

    # a rerun must not compute anything: make any SCF fail loudly
    def boom(*a, **k):
        raise AssertionError("recomputed despite cache")

    monkeypatch.setattr(qm, "_run_scf", boom)
    r2 = repeat_unit_polarizability("*C*", method="HF", basis="STO-3G", workdir=tmp_path)
    assert r2["from_cache"] and r2["alpha_A3"] == r1["alpha_A3"]

    # restart after a crash between molecule and final result: the molecule file is reused
    (final,) = [p for p in tmp_path.iterdir() if p.name.startswith("qm_result_")]
    final.unlink()
    r3 = repeat_unit_polarizability("*C*", method="HF", basis="STO-3G", workdir=tmp_path)
    assert r3["alpha_A3"] == r1["alpha_A3"] and not r3["from_cache"]
    # a torn cache file is recomputed, never trusted
    final.write_text("{not json")
    monkeypatch.undo()
    r4 = repeat_unit_polarizability("*C*", method="HF", basis="STO-3G", workdir=tmp_path)
    assert r4["alpha_A3"] == r1["alpha_A3"]
    assert json.loads(final.read_text())["alpha_A3"] == r1["alpha_A3"]
    # different settings are a different cache entry
    r5 = repeat_unit_polarizability("*C*", method="HF", basis="STO-3G", workdir=tmp_path,
                                    wavelengths_nm={"D": 589.29})
    assert set(r5["alpha_A3"]) == {"static", "D"}
    assert r5["alpha_A3"]["D"] == pytest.approx(r1["alpha_A3"]["D"], rel=1e-9)


def test_dft_method_path():
    r = molecule_polarizability(WATER, method="CAM-B3LYP", basis="6-31+G", wavelengths_nm={"D": 589.29})
    hf = molecule_polarizability(WATER, method="HF", basis="6-31+G", wavelengths_nm={"D": 589.29})
    assert r["method"] == "CAM-B3LYP"
    assert r["alpha_A3"]["D"] > r["alpha_A3"]["static"] > 0
    # DFT polarisabilities of water exceed HF ones (HF lacks correlation, ~+10 % expected)
    assert 1.0 < r["alpha_A3"]["static"] / hf["alpha_A3"]["static"] < 1.3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "NOT-A-FUNCTIONAL"},
        {"basis": "no-such-basis"},
        {"mode": "trimer"},
        {"wavelengths_nm": {"D": -1.0}},
        {"wavelengths_nm": {"static": 500.0}},
        {"wavelengths_nm": {}},
        {"threads": 0},
    ],
)
def test_bad_settings_raise_value_error(kwargs):
    with pytest.raises(InvalidQMSettings):
        repeat_unit_polarizability("*C*", **{"basis": "STO-3G", **kwargs})


def test_bad_polymer_smiles_raises_value_error():
    with pytest.raises(ValueError):
        repeat_unit_polarizability("C1CC", basis="STO-3G")
    with pytest.raises(ValueError):
        repeat_unit_polarizability("*CC", basis="STO-3G")  # one star only


def test_open_shell_and_odd_electron_rejected():
    with pytest.raises(InvalidQMSettings, match="closed-shell"):
        molecule_polarizability(WATER, method="HF", basis="STO-3G", spin=2)
    with pytest.raises(InvalidQMSettings, match="odd number of electrons"):
        molecule_polarizability(WATER, method="HF", basis="STO-3G", charge=1)


def test_scf_not_converged_raises(monkeypatch):
    monkeypatch.setattr(qm, "_SCF_MAX_CYCLE", 1)
    with pytest.raises(SCFNotConverged):
        molecule_polarizability(WATER, method="HF", basis="6-31G")


def test_optimise_changes_geometry_and_records_it():
    stretched = [("O", (0.0, 0.0, 0.0)), ("H", (0.0, 1.0, -0.6)), ("H", (0.0, -1.0, -0.6))]
    r = molecule_polarizability(stretched, method="HF", basis="STO-3G", optimise=True,
                                wavelengths_nm={"D": 589.29})
    assert r["optimised_with"] == "HF/STO-3G"
    xyz = np.array([row[1:] for row in r["geometry_A"]])
    r_oh = np.linalg.norm(xyz[1] - xyz[0])
    assert r_oh == pytest.approx(0.989, abs=0.01)  # HF/STO-3G O-H bond length 0.989 Å


def test_element_missing_from_basis_gets_def2_svpd_with_warning():
    hbr = [("H", (0.0, 0.0, 0.0)), ("Br", (0.0, 0.0, 1.414))]
    r = molecule_polarizability(hbr, method="HF", basis="6-31+G*", wavelengths_nm={"D": 589.29})
    assert any("lacks Br" in w for w in r["warnings"])
    # HBr: experiment 3.61 Å³; HF with a double-zeta diffuse basis lands within ~15 %
    assert 3.0 < r["alpha_A3"]["static"] < r["alpha_A3"]["D"] < 4.2


@pytest.mark.parametrize("level", [-1, 10, 2.5, True, "1"])
def test_bad_grid_level_is_refused_before_any_work(level):
    from core.simulation.qm import InvalidQMSettings, repeat_unit_polarizability

    with pytest.raises(InvalidQMSettings, match="grid_level"):
        repeat_unit_polarizability("*CC(*)C", method="B3LYP", basis="STO-3G", grid_level=level)
