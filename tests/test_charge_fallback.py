"""AM1-BCC charge fallback (issue 15): when antechamber/sqm fails or times out on the CH3-capped
trimer, the charges come from the dimer, then the monomer; the oligomer used is recorded in the
force-field step's result and as a record warning. Real antechamber/sqm on polystyrene units;
only the trimer's failure is forced. Charges in e, timeouts in s."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from rdkit import Chem

import core.simulation.forcefield as F
from core.simulation.build import build_chain
from core.simulation.errors import ChargeError

PS = "*C(C*)c1ccccc1"


def _units(mol: Chem.Mol) -> int:
    """Repeat units of a CH3-capped oligomer (its tail cap carries unit = n)."""
    return max(a.GetIntProp("unit") for a in mol.GetAtoms())


def _failing_for(monkeypatch, sizes: set[int]) -> list[int]:
    """Make the real ``am1bcc_oligomer`` raise ChargeError for oligomers of ``sizes`` units;
    returns the list of sizes it was called with."""
    real, calls = F.am1bcc_oligomer, []

    def am1bcc(oligomer: Chem.Mol, workdir: Path, **kw) -> list[tuple[str, float]]:
        calls.append(_units(oligomer))
        if calls[-1] in sizes:
            raise ChargeError("sqm: SCF did not converge (forced by the test)")
        return real(oligomer, workdir, **kw)

    monkeypatch.setattr(F, "am1bcc_oligomer", am1bcc)
    return calls


def test_oligomer_sizes_tried():
    assert F.charge_oligomer_sizes(3) == [3, 2, 1]
    assert F.charge_oligomer_sizes(2) == [2, 1]
    assert F.charge_oligomer_sizes(1) == [1]
    assert F.charge_oligomer_sizes(5) == [5, 2, 1]


@pytest.mark.integration
def test_trimer_failure_falls_back_to_the_dimer_and_says_so(tmp_path, monkeypatch):
    calls = _failing_for(monkeypatch, {3})
    oc = F.oligomer_charges_with_fallback(PS, tmp_path / "oligomer", n=3, maxcyc_sulfur=0,
                                          timeout=120)
    assert calls == [3, 2]
    assert (oc.n, oc.requested_n) == (2, 3)
    assert oc.mol2 == tmp_path / "oligomer_n2" / "oligomer.mol2" and oc.mol2.is_file()
    assert len(oc.failures) == 1 and oc.failures[0].startswith("3-mer: ChargeError")
    assert "dimer" in oc.warning and "trimer" in oc.warning and "ChargeError" in oc.warning
    assert abs(sum(q for _, q in oc.params)) < 5e-3  # neutral up to the mol2 rounding

    # the dimer's charges cover every atom of a long chain: interior units get the tail unit's
    # types and the mean of the dimer's head- and tail-unit charges
    chain = build_chain(PS, 6, seed=2, embed=False)
    types, raw = F.transfer_charges(oc.chain.mol, oc.params, chain.mol, 6, olig_dp=oc.n)
    assert set(types) == {"c3", "ca", "hc", "ha"}
    by_key = {F.atom_key(a, 2): p for a, p in zip(oc.chain.mol.GetAtoms(), oc.params)}
    for a, t, q in zip(chain.mol.GetAtoms(), types, raw):
        cls, local, h = F.atom_key(a, 6)
        if cls == "mid":
            head, tail = by_key[("head", local, h)], by_key[("tail", local, h)]
            assert t == tail[0]
            assert q == pytest.approx(0.5 * (head[1] + tail[1]), abs=1e-12)
    assert sum(round(x * 1e6) for x in F.neutralise(raw)) == 0


@pytest.mark.integration
def test_dimer_failure_too_falls_back_to_the_monomer(tmp_path, monkeypatch):
    calls = _failing_for(monkeypatch, {3, 2})
    oc = F.oligomer_charges_with_fallback(PS, tmp_path / "oligomer", n=3, maxcyc_sulfur=0,
                                          timeout=120)
    assert calls == [3, 2, 1] and oc.n == 1
    assert "monomer" in oc.warning and len(oc.failures) == 2
    chain = build_chain(PS, 4, seed=3, embed=False)
    types, raw = F.transfer_charges(oc.chain.mol, oc.params, chain.mol, 4, olig_dp=1)
    assert len(types) == chain.mol.GetNumAtoms() and set(types) == {"c3", "ca", "hc", "ha"}
    # every unit (head, interior, tail) carries the monomer's one charge pattern
    per_unit: dict[int, list[float]] = {}
    for a, q in zip(chain.mol.GetAtoms(), raw):
        if 0 <= a.GetIntProp("unit") < 4:
            per_unit.setdefault(a.GetIntProp("unit"), []).append(q)
    assert per_unit[0] == per_unit[1] == per_unit[2] == per_unit[3]


@pytest.mark.integration
def test_every_oligomer_failing_raises_with_all_attempts(tmp_path, monkeypatch):
    _failing_for(monkeypatch, {3, 2, 1})
    with pytest.raises(ChargeError) as err:
        F.oligomer_charges_with_fallback(PS, tmp_path / "oligomer", n=3, maxcyc_sulfur=0,
                                         timeout=120)
    msg = str(err.value)
    assert "3-mer: ChargeError" in msg and "2-mer: ChargeError" in msg and "1-mer" in msg


@pytest.mark.integration
def test_real_antechamber_timeout_on_the_trimer_falls_back(tmp_path, monkeypatch):
    """The trimer's antechamber really runs past its (test-sized) limit: StepTimeout → dimer."""
    real = F.am1bcc_oligomer

    def am1bcc(oligomer: Chem.Mol, workdir: Path, **kw) -> list[tuple[str, float]]:
        if _units(oligomer) == 3:
            kw["timeout"] = 0.05  # antechamber + sqm on 40 atoms take seconds
        return real(oligomer, workdir, **kw)

    monkeypatch.setattr(F, "am1bcc_oligomer", am1bcc)
    oc = F.oligomer_charges_with_fallback(PS, tmp_path / "oligomer", n=3, maxcyc_sulfur=0,
                                          timeout=120)
    assert oc.n == 2 and oc.failures[0].startswith("3-mer: StepTimeout")


def test_untypable_atoms_do_not_fall_back(tmp_path, monkeypatch):
    """An atom GAFF2 cannot type stays untypable in a shorter oligomer: no retry."""
    from core.simulation.errors import UnsupportedAtomType

    calls = []

    def am1bcc(oligomer: Chem.Mol, workdir: Path, **kw) -> list[tuple[str, float]]:
        calls.append(_units(oligomer))
        raise UnsupportedAtomType("antechamber could not assign a GAFF2 atom type (test)")

    monkeypatch.setattr(F, "am1bcc_oligomer", am1bcc)
    with pytest.raises(UnsupportedAtomType):
        F.oligomer_charges_with_fallback(PS, tmp_path / "o", n=3, maxcyc_sulfur=0, timeout=60)
    assert calls == [3]


@pytest.mark.integration
def test_pipeline_records_the_fallback_oligomer(tmp_path, monkeypatch):
    from core.simulation.pipeline import run_pipeline

    _failing_for(monkeypatch, {3})
    wd = tmp_path / "ps"
    events: list[tuple[str, str]] = []
    run_pipeline(PS, "smoke", wd, threads=1, until="forcefield",
                 progress=lambda s, m: events.append((s, m)))
    res = json.loads((wd / "forcefield" / "done.json").read_text())["result"]
    assert res["charge_oligomer_n"] == 2
    assert res["charge_oligomer_failures"][0].startswith("3-mer: ChargeError")
    # the step's warnings are the record's first warnings (pipeline._density_record / record)
    assert "dimer" in res["warnings"][0]
    assert any(s == "forcefield" and "2-mer" in m for s, m in events)
    ff = json.loads((wd / "forcefield" / "forcefield.json").read_text())
    assert abs(sum(ff["charges"])) < 1e-9
