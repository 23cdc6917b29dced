"""Candidates added by hand to a proposed batch get the surrogate's predictions and their EHVI
(``core.optimize.proposal.score_candidates``, ``core.campaign.cycle.add_to_batch``), are stored
all or nothing (``Store.add_batch_candidates``), and every edit refreshes the batch's joint value
(``core.campaign.cycle.refresh_joint_value``)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from core.campaign.commands import create_campaign
from core.campaign.cycle import (add_to_batch, add_to_pending_batch, batch_joint_gain,
                                 load_campaign_pool, observation_matrix, propose_batch,
                                 refresh_joint_value, score_batch_additions,
                                 _descriptors_for_psmiles)
from core.chem.polymer import InvalidPolymer, canonical_psmiles, polymer_key
from core.config import BatchState, Strategy
from core.errors import InputError
from core.optimize.acquisition import expected_batch_gain, pareto_front
from core.optimize.proposal import (Candidates, Observations, Pending, ProposalConfig, propose,
                                    score_candidates)
from core.store import InvalidState, Store, StoreError
from core.store.batches import HAND_ADDED
from tests.helpers import reference_records, seed_store, write_pool_csv

NEW = canonical_psmiles("*CC(*)c1ccc(Cl)cc1")      # in neither the seeded batch nor the data
OTHER = canonical_psmiles("*CC(*)c1ccc(Br)cc1")


# ---------------------------------------------------------------- the pure scoring function
def _toy(n: int = 9, d: int = 4, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, d))
    Y = np.column_stack([1.5 + 0.05 * X[:, 0] - 0.02 * X[:, 1] ** 2,
                         40 - 8 * X[:, 0] + 3 * X[:, 2]])
    return X, Y


@pytest.mark.parametrize("strategy", [Strategy.EHVI.value, Strategy.BELIEVER.value])
def test_score_candidates_is_what_propose_picks_it_with(strategy: str) -> None:
    X, Y = _toy()
    rng = np.random.default_rng(7)
    pend, new = rng.uniform(-1, 1, (2, 4)), rng.uniform(-1, 1, (2, 4))
    cfg = ProposalConfig(objectives=("n_D", "abbe_number"), reference_point=(1.4, 20.0), q=1,
                         strategy=strategy, n_restarts=0)
    prop, ehvi = score_candidates(Observations(X, Y), new, cfg, Pending(X=pend))
    assert np.all(np.isfinite(prop.mean)) and np.all(prop.std > 0) and np.all(ehvi > 0)
    for j in range(2):   # the same polymer as propose's only candidate, the same pending rows
        ref = propose(Observations(X, Y), Candidates(new[j:j + 1], ["x"]), cfg,
                      Pending(X=pend))
        # the same arithmetic; only the GP's posterior variance of 2 rows at once vs 1 row
        # differs in the last digits (a difference of two close numbers)
        assert ehvi[j] == pytest.approx(ref.selection.ehvi[0], rel=1e-7, abs=0)
        np.testing.assert_allclose(prop.mean[j], ref.mean[0], rtol=1e-9)
        np.testing.assert_allclose(prop.std[j], ref.std[0], rtol=1e-7)
    # added together: each one also has the other as a pending fantasy
    _, both = score_candidates(Observations(X, Y), new, cfg, Pending(X=pend), mutual=True)
    for j in range(2):
        ref = propose(Observations(X, Y), Candidates(new[j:j + 1], ["x"]), cfg,
                      Pending(X=np.vstack([pend, new[1 - j:2 - j]])))
        assert both[j] == pytest.approx(ref.selection.ehvi[0], rel=1e-7, abs=1e-15)
        assert both[j] <= ehvi[j] + 1e-15          # a fuller front leaves less to gain


def test_score_candidates_bad_rows_and_settings() -> None:
    X, Y = _toy()
    cfg = ProposalConfig(objectives=("n_D", "abbe_number"), reference_point=(1.4, 20.0), q=3,
                         n_restarts=0, exclude_flagged=True, exclude_unsimulable=True,
                         cost_aware=True)   # pool-screening settings: not for a person's choice
    new = np.vstack([np.full(4, np.nan), np.zeros(4)])
    prop, ehvi = score_candidates(Observations(X, Y), new, cfg)
    assert np.isnan(ehvi[0]) and np.isnan(prop.mean[0]).all() and np.isfinite(ehvi[1])
    with pytest.raises(InputError, match="matrix"):
        score_candidates(Observations(X, Y), np.zeros(4), cfg)
    with pytest.raises(InputError, match="at least 2"):
        score_candidates(Observations(X[:1], Y[:1]), np.zeros((1, 4)), cfg)


# ---------------------------------------------------------------- the campaign: seeded store
@pytest.fixture()
def seeded_store(tmp_path) -> dict:
    return seed_store(tmp_path / "s.db")


def test_hand_added_candidate_gets_predictions_and_the_ehvi_propose_gives(seeded_store):
    store, bid = seeded_store["store"], seeded_store["batch_proposed"]
    before = store.batch_candidates(bid)
    res = add_to_batch(store, bid, ["*CC(*)c1ccc(Cl)cc1"], names=["p-chlorostyrene"],
                       actor="alice")
    after = store.batch_candidates(bid).set_index("key")
    row = after.loc[polymer_key(NEW)]
    assert len(after) == len(before) + 1 and row["source"] == HAND_ADDED
    assert row["psmiles"] == NEW and row["name"] == "p-chlorostyrene" and row["selected"]
    for c in ("pred_mean_n_D", "pred_std_n_D", "pred_mean_abbe_number",
              "pred_std_abbe_number", "ehvi", "p_beyond"):
        assert np.isfinite(row[c]), c
    assert 1.3 < row["pred_mean_n_D"] < 1.9 and row["pred_std_n_D"] > 0 and row["ehvi"] >= 0
    # the same number propose's acquisition gives this polymer, in the same state: the same
    # observations and surrogates, the four other batch members as pending fantasies
    cfg = store.campaign_config("demo")
    pool = load_campaign_pool(store, "demo")
    X, Y, _ = observation_matrix(store, "demo", pool)
    mX = _descriptors_for_psmiles(store, pool, list(before["psmiles"]), list(before["key"]))
    nX = _descriptors_for_psmiles(store, pool, [NEW], [polymer_key(NEW)])
    ref = propose(Observations(X, Y), Candidates(nX, [NEW], simulable=np.array([True])),
                  ProposalConfig.for_campaign(cfg, q=1, strategy=Strategy.EHVI.value),
                  Pending(X=mX))
    assert row["ehvi"] == pytest.approx(ref.selection.ehvi[0], rel=1e-12)
    assert row["pred_mean_n_D"] == pytest.approx(ref.mean[0, 0], rel=1e-12)
    assert row["pred_std_abbe_number"] == pytest.approx(ref.std[0, 1], rel=1e-12)
    # the joint value now counts it, stored in the same step, and audited
    b = store.get_batch(bid)
    assert b["joint_value"] == pytest.approx(res["joint_value"]) and res["joint_value"] > 0
    assert batch_joint_gain(store, bid)[:2] == pytest.approx(
        (b["joint_value"], b["info"]["expected_gain_se"]))
    audit = store.audit_log("demo")
    assert (audit["action"] == "add_candidates").any()
    assert res["added"][0]["key"] == polymer_key(NEW) and res["cycle"] == b["cycle"]


def test_bad_additions_are_refused_by_name_and_change_nothing(seeded_store):
    store, bid = seeded_store["store"], seeded_store["batch_proposed"]
    n0, audit0 = len(store.batch_candidates(bid)), len(store.audit_log("demo"))
    in_batch = store.batch_candidates(bid)["psmiles"].iloc[1]
    pmma = store.observations("demo").set_index("name").loc["PMMA", "psmiles"]
    with pytest.raises(InvalidPolymer, match=r"exactly two '\*'.*\*C\(\*\)\(F\)C\(\*\)Cl"):
        add_to_batch(store, bid, ["*C(*)(F)C(*)Cl"], actor="t")
    with pytest.raises(InvalidPolymer, match="C1CC\\("):
        add_to_batch(store, bid, [NEW, "C1CC("], actor="t")
    with pytest.raises(InputError, match=re.escape(f"{in_batch!r} is already in batch {bid}")):
        add_to_batch(store, bid, [in_batch], actor="t")
    with pytest.raises(InputError, match="already observed .*n_D 1.49"):
        add_to_batch(store, bid, [OTHER, pmma], actor="t")
    with pytest.raises(InputError, match="given twice"):
        add_to_batch(store, bid, [NEW, "*C(C*)c1ccc(Cl)cc1"], actor="t")
    assert len(store.batch_candidates(bid)) == n0 and len(store.audit_log("demo")) == audit0
    # an approved batch takes no more candidates; the pool page's call says there is none
    store.approve_batch(bid, actor="t")
    with pytest.raises(InvalidState, match="proposed batch"):
        add_to_batch(store, bid, [NEW], actor="t")
    with pytest.raises(InputError, match="no batch waiting for approval.*approved"):
        add_to_pending_batch(store, "demo", [NEW], actor="t")
    assert len(store.batch_candidates(bid)) == n0


def test_a_polymer_being_calculated_is_refused(seeded_store):
    """TPX failed in cycle 1; retried, it is queued while batch 2 waits for approval."""
    store, bid = seeded_store["store"], seeded_store["batch_proposed"]
    calc = store.calculations("demo").set_index("name").loc["TPX"]
    store.request_retry(int(calc["id"]), mode="rerun", actor="t")
    with pytest.raises(InputError, match=r"already being calculated \(calculation \d+\)"):
        score_batch_additions(store, bid, [calc["psmiles"]])
    with pytest.raises(StoreError, match="already being calculated"):
        store.add_batch_candidates(bid, [_cand(calc["psmiles"])], actor="t")


def test_add_to_pending_batch_lands_in_the_proposed_batch(seeded_store):
    store, bid = seeded_store["store"], seeded_store["batch_proposed"]
    res = add_to_pending_batch(store, "demo", [NEW, OTHER], pool_ids=["extra-9", None],
                               actor="bob")
    assert res["batch_id"] == bid
    got = store.batch_candidates(bid).set_index("key")
    assert {polymer_key(NEW), polymer_key(OTHER)} <= set(got.index)
    assert got.loc[polymer_key(NEW), "pool_id"] == "extra-9"
    assert (got.loc[[polymer_key(NEW), polymer_key(OTHER)], "source"] == HAND_ADDED).all()
    assert np.isfinite(got.loc[[polymer_key(NEW), polymer_key(OTHER)], "ehvi"]).all()


def test_no_batch_yet_is_said_clearly(tmp_path):
    store = Store(tmp_path / "e.db")
    store.create_campaign("empty", {"preset": "smoke"}, actor="t")
    with pytest.raises(InputError, match="'empty' has no batch yet"):
        add_to_pending_batch(store, "empty", [NEW], actor="t")


# ---------------------------------------------------------------- the store function
def _cand(ps: str, **kw) -> dict:
    can = canonical_psmiles(ps)
    return {"psmiles": can, "key": polymer_key(can),
            "pred_mean": {"n_D": 1.6, "abbe_number": 30.0},
            "pred_std": {"n_D": 0.02, "abbe_number": 2.0}, "ehvi": 0.01, "p_beyond": 0.5, **kw}


def test_store_add_batch_candidates_is_all_or_nothing(seeded_store):
    store, bid = seeded_store["store"], seeded_store["batch_proposed"]
    cands = store.batch_candidates(bid)
    first = cands.iloc[0]
    n0 = len(cands)
    with pytest.raises(StoreError, match="already in batch"):
        store.add_batch_candidates(bid, [_cand(NEW), _cand(first["psmiles"])], actor="t")
    with pytest.raises(StoreError, match="given twice"):
        store.add_batch_candidates(bid, [_cand(NEW), _cand(NEW)], actor="t")
    with pytest.raises(StoreError, match="no candidate"):
        store.add_batch_candidates(bid, [], actor="t")
    assert len(store.batch_candidates(bid)) == n0          # NEW was not kept either
    # a rejected polymer chosen again by hand is restored; the joint value is set with it
    store.reject("demo", polymer_key(OTHER), OTHER, reason="test", actor="t")
    ids = store.add_batch_candidates(bid, [_cand(NEW, name="n"), _cand(OTHER)],
                                     joint_value=0.25, joint_value_se=0.01, actor="carol")
    assert len(ids) == 2 and polymer_key(OTHER) not in store.rejected_keys("demo")
    got = store.batch_candidates(bid).set_index("key")
    assert len(got) == n0 + 2 and got.loc[polymer_key(NEW), "source"] == HAND_ADDED
    assert list(got["rank"]) == sorted(got["rank"]) and got["rank"].is_unique
    assert got.loc[polymer_key(NEW), "pred_mean_n_D"] == pytest.approx(1.6)
    b = store.get_batch(bid)
    assert b["joint_value"] == 0.25 and b["info"]["expected_gain_se"] == 0.01
    actions = store.audit_log("demo")["action"].tolist()
    assert "add_candidates" in actions and "restore" in actions
    store.set_batch_joint_value(bid, 0.5, 0.02)
    assert store.get_batch(bid)["joint_value"] == 0.5
    # not after approval; and a polymer whose calculation is queued is refused
    store.approve_batch(bid, actor="t")
    with pytest.raises(InvalidState):
        store.add_batch_candidates(bid, [_cand("*CC(*)CC")], actor="t")
    with pytest.raises(InvalidState):
        store.set_batch_joint_value(bid, 0.1)
    store.finish_batch_if_complete(bid)  # still queued: stays approved
    done = seeded_store["batch_done"]
    with pytest.raises(InvalidState):
        store.add_batch_candidates(done, [_cand("*CC(*)CC")], actor="t")


# ---------------------------------------------------------------- the joint value after edits
@pytest.fixture()
def proposed(tmp_path) -> tuple[Store, dict]:
    """A CSV-pool campaign (tests.helpers.POOL) with a freshly proposed batch of 3."""
    store = Store(tmp_path / "j.db")
    create_campaign(store, "j", {"pool_source": str(write_pool_csv(tmp_path / "pool.csv")),
                                 "preset": "smoke", "batch_size": 3,
                                 "experimental_in_model": True,
                                 "acquisition_strategy": Strategy.BELIEVER.value},
                    initial=reference_records(("PMMA", "PS", "PC", "COP")), actor="t")
    return store, propose_batch(store, "j", actor="t")


def test_joint_value_follows_every_edit(proposed):
    store, b = proposed
    bid = b["id"]
    assert b["joint_value"] > 0
    # unchanged batch: the same number propose_batch stored (same samples, same order)
    assert refresh_joint_value(store, bid) == pytest.approx(b["joint_value"], rel=1e-12)
    cands = store.batch_candidates(bid)
    cfg = store.campaign_config("j")
    front = pareto_front(observation_matrix(store, "j", load_campaign_pool(store, "j"))[1])

    def expected(rows):
        m = rows[["pred_mean_n_D", "pred_mean_abbe_number"]].to_numpy(float)
        s = rows[["pred_std_n_D", "pred_std_abbe_number"]].to_numpy(float)
        return expected_batch_gain(m, s, front, np.asarray(cfg.reference_point, float),
                                   n_samples=512, rng=np.random.default_rng(0))[0]

    store.include_candidate(bid, cands["key"].iloc[0], False, actor="t")
    v1 = refresh_joint_value(store, bid)
    assert v1 == pytest.approx(expected(cands.iloc[1:]), rel=1e-12)
    assert store.get_batch(bid)["joint_value"] == pytest.approx(v1)
    store.reject_candidate(bid, cands["key"].iloc[1], reason="t", actor="t")
    v2 = refresh_joint_value(store, bid)
    assert v2 == pytest.approx(expected(cands.iloc[2:]), rel=1e-12)
    store.include_candidate(bid, cands["key"].iloc[1], True, actor="t")   # restores it
    assert refresh_joint_value(store, bid) == pytest.approx(expected(cands.iloc[1:]),
                                                            rel=1e-12)
    res = add_to_batch(store, bid, ["*CC(*)c1ccc(Cl)cc1"], actor="t")
    assert store.get_batch(bid)["joint_value"] == pytest.approx(
        expected(store.batch_candidates(bid).query("selected and not rejected")), rel=1e-12)
    assert res["joint_value"] >= v1 - 3 * res["joint_value_se"]
    store.approve_batch(bid, actor="t")
    assert store.get_batch(bid)["status"] == BatchState.APPROVED
    assert refresh_joint_value(store, bid) is None


def test_batch_table_order_and_joint_value_text() -> None:
    import pandas as pd

    from core.ui.views import batch_table_order, joint_value_text

    cands = pd.DataFrame({"key": list("abcde"), "rank": [0, 1, 2, 3, 4],
                          "source": ["acquisition", HAND_ADDED, "acquisition", "acquisition",
                                     HAND_ADDED]})
    out = batch_table_order(cands)
    assert list(out["key"]) == ["e", "b", "a", "c", "d"]      # latest hand-added on top
    assert list(out["hand_added"]) == [True, True, False, False, False]
    with pytest.raises(ValueError, match="'source' and 'rank'"):
        batch_table_order(cands[["key"]])
    assert joint_value_text(None) == "" and joint_value_text(float("nan")) == ""
    assert joint_value_text(0.012345, 0.0004, 3) == \
        "joint expected gain (hypervolume) of the 3 selected 0.01235 ± 0.0004"
