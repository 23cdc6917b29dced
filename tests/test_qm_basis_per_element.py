"""Per-element basis sets in the QM step (``"6-31+G*;S=aug-cc-pVDZ"``): parsing, validation, the
basis each atom gets, and the cost model's orbital count (benchmarks/bench_sulfur_qm.py)."""
from __future__ import annotations

import pytest

pytest.importorskip("pyscf")

from core.simulation.qm import (  # noqa: E402
    InvalidQMSettings, _basis_for, molecule_polarizability, split_basis)

H2S = [("S", (0.0, 0.0, 0.1030)), ("H", (0.0, 0.9616, -0.8239)), ("H", (0.0, -0.9616, -0.8239))]


def test_split_basis_reads_a_name_and_element_overrides() -> None:
    assert split_basis("6-31+G*") == ("6-31+G*", {})
    assert split_basis(" 6-31+G* ; S = aug-cc-pVDZ ;Cl=def2-SVPD") == (
        "6-31+G*", {"S": "aug-cc-pVDZ", "Cl": "def2-SVPD"})
    assert split_basis("6-311+G(2d,p)") == ("6-311+G(2d,p)", {})   # a comma is part of a name


@pytest.mark.parametrize("spec", ["", "  ", ";S=aug-cc-pVDZ", "S=aug-cc-pVDZ", "6-31G*;S",
                                  "6-31G*;S=", "6-31G*;s=aug-cc-pVDZ", "6-31G*;=x", None])
def test_malformed_basis_specs_raise_a_clear_error(spec) -> None:
    with pytest.raises(InvalidQMSettings, match="basis"):
        split_basis(spec)


def test_each_atom_gets_its_elements_basis_and_unknown_names_are_refused() -> None:
    spec, ecp = _basis_for(H2S, "6-31+G*;S=aug-cc-pVDZ", [])
    assert spec == {"H": "6-31+G*", "S": "aug-cc-pVDZ"} and ecp is None
    assert _basis_for(H2S, "6-31+G*", []) == ("6-31+G*", None)
    with pytest.raises(InvalidQMSettings, match="no-such-basis"):
        molecule_polarizability(H2S, method="HF", basis="6-31+G*;S=no-such-basis")


def test_a_larger_sulfur_basis_raises_the_polarisability_of_h2s() -> None:
    kw = dict(method="HF", wavelengths_nm={"D": 589.29})
    small = molecule_polarizability(H2S, basis="6-31+G*", **kw)
    mixed = molecule_polarizability(H2S, basis="6-31+G*;S=aug-cc-pVDZ", **kw)
    assert mixed["n_basis"] > small["n_basis"]
    # H2S: experiment 3.78 Å³ (gas); the diffuse, polarised S basis recovers most of the deficit
    assert small["alpha_A3"]["D"] < mixed["alpha_A3"]["D"] < 4.0


def test_the_cost_model_counts_each_elements_orbitals_in_its_own_basis() -> None:
    from core.optimize.cost_estimate import _aos_per_element

    assert _aos_per_element("6-31+G*;S=aug-cc-pVDZ", "S") == _aos_per_element("aug-cc-pVDZ", "S")
    assert _aos_per_element("6-31+G*;S=aug-cc-pVDZ", "C") == _aos_per_element("6-31+G*", "C")
