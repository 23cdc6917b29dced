"""Fidelity rules: a campaign's model and statistics see only its own oracle's results."""
import pandas as pd

from core.campaign.fidelity import (Fidelity, campaign_fidelity, observation_fidelity,
                                    split_by_fidelity)
from core.simulation.presets import get_preset


def _sim(preset, forcefield="gaff2", protocol=None):
    res = {"preset": preset, "forcefield": forcefield,
           "protocol": protocol or get_preset(preset).protocol}
    return {"source": "simulation", "provenance": {"calculation_id": 1}, "result": res}


def test_campaign_fidelity_comes_from_the_preset():
    f = campaign_fidelity("quick")
    assert (f.kind, f.preset, f.forcefield, f.protocol) == (
        "simulated", "quick", get_preset("quick").forcefield, get_preset("quick").protocol)


def test_smoke_results_never_match_a_quick_campaign_and_are_labelled_plumbing():
    quick = campaign_fidelity("quick")
    smoke = observation_fidelity(**_sim("smoke"))
    assert smoke.plumbing and "plumbing" in smoke.label
    assert not smoke.matches(quick)
    assert smoke.matches(campaign_fidelity("smoke"))


def test_same_preset_but_other_protocol_or_forcefield_is_not_mixed():
    quick = campaign_fidelity("quick")
    assert observation_fidelity(**_sim("quick")).matches(quick)
    assert not observation_fidelity(**_sim("quick", protocol="quick-md0-direct")).matches(quick)
    assert not observation_fidelity(**_sim("quick", forcefield="sage")).matches(quick)
    # no protocol recorded: an unknown MD protocol matches no campaign
    rec = _sim("quick")
    del rec["result"]["protocol"]
    assert not observation_fidelity(**rec).matches(quick)
    # no force field recorded: such records predate the choice and were GAFF2
    rec = _sim("quick")
    del rec["result"]["forcefield"]
    assert observation_fidelity(**rec).matches(quick)


def test_experimental_values_are_shown_apart_and_declared_ones_count():
    quick = campaign_fidelity("quick")
    exp = observation_fidelity("experimental", {"origin": "experimental"}, None)
    assert exp == Fidelity("experimental") and not exp.matches(quick)
    declared = observation_fidelity("initial", None, None)
    assert declared.kind == "declared" and declared.matches(quick)
    assert declared.label == "origin not recorded"


def test_split_by_fidelity_keeps_rows_and_labels_them():
    rows = [_sim("quick"), _sim("smoke"),
            {"source": "experimental", "provenance": {"origin": "experimental"}, "result": None},
            {"source": "initial", "provenance": None, "result": None}]
    obs = pd.DataFrame([{**r, "key": f"k{i}", "n_D": 1.5 + i / 100} for i, r in enumerate(rows)])
    same, other = split_by_fidelity(obs, campaign_fidelity("quick"))
    assert list(same["key"]) == ["k0", "k3"]
    assert list(other["key"]) == ["k1", "k2"]
    assert list(other["fidelity"]) == ["smoke (plumbing, not physics)", "experimental"]
    assert len(same) + len(other) == len(obs)
    e_same, e_other = split_by_fidelity(obs.iloc[:0], campaign_fidelity("quick"))
    assert e_same.empty and e_other.empty


def test_demo_observations_have_the_quick_campaign_fidelity():
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "assets" / "demo" / "initial_observations.json"
    recs = json.loads(path.read_text())
    quick = campaign_fidelity("quick")
    assert recs and all(observation_fidelity("simulation", r.get("provenance"), r["result"])
                        .matches(quick) for r in recs)
