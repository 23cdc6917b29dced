"""core.simulation.ring: chains closed into rings (no chain ends), the strain check that keeps
stiff rods linear, and the charges/types of a ring (every unit a middle unit)."""
from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("rdkit")

from rdkit import Chem  # noqa: E402

from core.simulation.build import atom_key, build_chain  # noqa: E402
from core.simulation.presets import get_preset  # noqa: E402
from core.simulation.ring import RingClosureError, close_ring, ring_strain  # noqa: E402


def _ring_count(mol: Chem.Mol) -> int:
    return mol.GetRingInfo().NumRings()


@pytest.mark.parametrize("psmiles, dp, unit_atoms", [
    ("*CC(*)c1ccccc1", 6, 16),          # polystyrene
    ("*CC(C)(*)C(=O)OC", 5, 15),        # PMMA
    ("*CCS*", 6, 7),                    # a thioether backbone
])
def test_a_closed_ring_has_no_caps_one_more_ring_and_normal_bonds(psmiles, dp, unit_atoms):
    chain = build_chain(psmiles, dp, seed=2)
    ring = close_ring(chain)
    m = ring.mol
    assert m.GetNumAtoms() == dp * unit_atoms == chain.mol.GetNumAtoms() - 8  # two CH3 caps off
    assert _ring_count(m) == _ring_count(chain.mol) + 1
    # every bond has a chemical length (the closing one included): 0.9–2.0 Å
    pos = m.GetConformer().GetPositions()
    lengths = [np.linalg.norm(pos[b.GetBeginAtomIdx()] - pos[b.GetEndAtomIdx()])
               for b in m.GetBonds()]
    assert 0.9 < min(lengths) and max(lengths) < 2.0
    # no two non-bonded heavy atoms overlap
    heavy = [a.GetIdx() for a in m.GetAtoms() if a.GetAtomicNum() > 1]
    dmat = Chem.GetDistanceMatrix(m)
    close = [(i, j) for i in heavy for j in heavy if i < j and dmat[i, j] > 2
             and np.linalg.norm(pos[i] - pos[j]) < 2.0]
    assert not close
    # every atom is a middle-unit atom (types and charges come from the oligomer's middle unit)
    assert {atom_key(a, dp)[0] for a in m.GetAtoms()} == {"mid"}
    # each unit's atoms keep their order, and the molecule stays one piece
    assert len(Chem.GetMolFrags(m)) == 1


def test_flexible_rings_are_unstrained_and_stiff_rods_are_refused() -> None:
    ps = build_chain("*CC(*)c1ccccc1", 8, seed=1)
    assert ring_strain(close_ring(ps, max_strain=99).mol, ps.mol, 8) < 0.6
    # cyclo-para-phenylene of 4 units: bent benzene rings (tens of kcal/mol per unit)
    ppp = build_chain("*c1ccc(*)cc1", 4, seed=1)
    assert ring_strain(close_ring(ppp, max_strain=1e9).mol, ppp.mol, 4) > 20
    with pytest.raises(RingClosureError, match="strained"):
        close_ring(ppp)


def test_bad_input_and_the_deadline_raise_clear_errors() -> None:
    with pytest.raises(RingClosureError, match="at least 3"):
        close_ring(build_chain("*CC*", 2, seed=1))
    with pytest.raises(RingClosureError, match="no coordinates"):
        close_ring(build_chain("*CC*", 4, seed=1, embed=False))
    with pytest.raises(RingClosureError, match="time limit"):
        close_ring(build_chain("*CC*", 4, seed=1), deadline=time.monotonic() - 1)


def test_presets_validate_the_chain_topology() -> None:
    assert get_preset("quick").with_overrides(chain_topology="ring").chain_topology == "ring"
    with pytest.raises(ValueError, match="chain topology"):
        get_preset("quick").with_overrides(chain_topology="star")


@pytest.mark.integration
def test_a_smoke_cell_of_rings_runs_through_md_and_its_record_says_so(tmp_path) -> None:
    """The real antechamber/tleap/packmol/LAMMPS path with ring chains: the LAMMPS data file has
    no CH3 caps (one bond per atom pair of the ring), and the record names the topology."""
    from core.simulation.pipeline import run_pipeline

    # 6 units: a ring of 3 (a triphenylcyclohexane) counts as strained (1.3 kcal/mol per unit)
    p = get_preset("smoke").with_overrides(chain_topology="ring", chain_atoms=104)
    rec = run_pipeline("*CC(*)c1ccccc1", p, tmp_path / "ps", until="md", threads=1)
    assert rec["chain_topology"] == "ring" and rec["details"]["build"]["ring_closure_failure"] is None
    assert rec["density"] > 0
    data = (tmp_path / "ps" / "cell" / "system.data").read_text()
    n_atoms = int(data.split(" atoms")[0].split("\n")[-1])
    n_bonds = int(data.split(" bonds")[0].split("\n")[-1])
    dp = rec["details"]["build"]["dp"]
    assert n_atoms == 2 * dp * 16            # two rings of dp styrene units, no caps
    assert n_bonds == n_atoms + 2 * dp       # a ring of N atoms has N bonds, + 1 per benzene


@pytest.mark.integration
def test_a_stiff_rod_that_cannot_close_keeps_linear_chains_and_warns(tmp_path) -> None:
    from core.simulation.pipeline import _md_warnings, run_pipeline

    p = get_preset("smoke").with_overrides(chain_topology="ring")
    out = run_pipeline("*c1ccc(*)cc1", p, tmp_path / "ppp", until="cell", threads=1)
    build = out["steps"]["build"]
    assert build["chain_topology"] == "linear" and "strained" in build["ring_closure_failure"]
    data = (tmp_path / "ppp" / "cell" / "system.data").read_text()
    n_atoms = int(data.split(" atoms")[0].split("\n")[-1])
    assert n_atoms == 2 * (build["dp"] * 10 + 8)      # CH3-capped linear chains
    # the density record of such a cell says that its chains are linear, and why
    warns = _md_warnings({"converged": True, "density": 1.0}, build)
    assert any("ring chains could not be closed" in w and "strained" in w for w in warns)


def test_the_build_fingerprint_of_linear_chains_is_what_it_was_before_the_option() -> None:
    """Work directories finished before ``chain_topology`` existed keep their build step (and
    everything after it) valid; rings get a fingerprint of their own."""
    import hashlib
    import json

    from core.simulation.pipeline import step_fingerprint

    for name in ("smoke", "quick", "standard"):
        p = get_preset(name)
        d = p.to_dict()
        before = hashlib.sha1(json.dumps({k: d[k] for k in ("chain_atoms", "n_chains", "min_dp")},
                                         sort_keys=True, default=str).encode()).hexdigest()[:12]
        assert step_fingerprint(p, "build") == before
        assert step_fingerprint(p.with_overrides(chain_topology="ring"), "build") != before
