"""Unit tests of core.store (real SQLite files, no mocks)."""
from __future__ import annotations

import multiprocessing as mp
import sqlite3

import numpy as np
import pandas as pd
import pytest

from core.store import (SCHEMA_VERSION, BatchNotFound, CampaignConfig, CampaignExists,
                        CampaignNotFound, InvalidConfig, InvalidState, Store, StoreError)


def _cand(i: int, **kw) -> dict:
    return {"psmiles": f"*CC{'C' * i}*", "key": f"k{i}", "name": f"P{i}",
            "pred_mean": {"n_D": 1.5 + i / 100, "abbe_number": 40 - i},
            "pred_std": {"n_D": 0.01, "abbe_number": 2.0}, "ehvi": 1.0 / (i + 1),
            "p_beyond": 0.1 * i, **kw}


@pytest.fixture()
def store(tmp_path) -> Store:
    s = Store(tmp_path / "c.db")
    s.create_campaign("demo", {"preset": "smoke", "batch_size": 3, "max_attempts": 2},
                      actor="test")
    return s


def test_schema_wal_and_version(tmp_path):
    s = Store(tmp_path / "x.db")
    assert s.schema_version() == SCHEMA_VERSION
    con = sqlite3.connect(tmp_path / "x.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer"):
        Store(tmp_path / "x.db")


def test_campaign_create_get_update(store):
    c = store.get_campaign("demo")
    assert c["config"]["objectives"] == ["n_D", "abbe_number"]
    assert c["config"]["preset"] == "smoke"
    assert store.get_campaign(c["id"])["name"] == "demo"
    with pytest.raises(CampaignExists):
        store.create_campaign("demo", actor="t")
    with pytest.raises(CampaignNotFound):
        store.get_campaign("nope")
    with pytest.raises(StoreError):
        store.create_campaign("../evil", actor="t")
    c2 = store.update_config("demo", {"batch_size": 5, "auto_approve": True}, actor="alice")
    assert c2["config"]["batch_size"] == 5 and c2["config"]["auto_approve"] is True
    with pytest.raises(InvalidConfig, match="batch_size"):
        store.update_config("demo", {"batch_size": 0}, actor="alice")
    assert store.get_campaign("demo")["config"]["batch_size"] == 5  # unchanged by the bad update
    log = store.audit_log("demo")
    assert log.iloc[0]["action"] == "update_config" and log.iloc[0]["actor"] == "alice"
    assert log.iloc[0]["details"]["batch_size"] == {"old": 3, "new": 5}
    assert list(store.list_campaigns()["name"]) == ["demo"]


@pytest.mark.parametrize("bad", [
    {"objectives": ["n_D"]}, {"reference_point": [1.0]}, {"acquisition_strategy": "random"},
    {"preset": "huge"}, {"cluster": {"profile": "k8s"}}, {"max_attempts": 0}, {"colour": "red"},
    {"reference_point": [float("nan"), 1.0]},
])
def test_config_validation(bad):
    with pytest.raises(InvalidConfig):
        CampaignConfig.from_dict(bad)


def test_observations(store):
    oid = store.add_observation("demo", "*CC(*)c1ccccc1", {"n_D": 1.59, "abbe_number": 31.0},
                                source="initial", key="ps", name="PS",
                                provenance={"preset": "quick"})
    df = store.observations("demo")
    assert list(df["id"]) == [oid]
    assert df.loc[0, "n_D"] == pytest.approx(1.59)
    assert df.loc[0, "provenance"] == {"preset": "quick"}
    assert store.observed_keys("demo") == {"ps"}
    with pytest.raises(StoreError, match="abbe_number"):
        store.add_observation("demo", "*C*", {"n_D": 1.5}, source="initial", key="x")
    with pytest.raises(StoreError, match="finite"):
        store.add_observation("demo", "*C*", {"n_D": 1.5, "abbe_number": float("inf")},
                              source="initial", key="x")
    assert len(store.observations("demo")) == 1


def test_batch_propose_supersede_edit_approve(store):
    b1 = store.create_batch("demo", [_cand(i) for i in range(3)], strategy="ehvi",
                            joint_value=2.5)
    assert b1["status"] == "proposed" and b1["cycle"] == 1 and b1["n_selected"] == 3
    b2 = store.create_batch("demo", [_cand(i) for i in range(4)], strategy="believer")
    assert b2["cycle"] == 1
    assert store.get_batch(b1["id"])["status"] == "superseded"
    assert store.current_batch("demo")["id"] == b2["id"]
    cands = store.batch_candidates(b2["id"])
    assert list(cands["key"]) == ["k0", "k1", "k2", "k3"]
    assert cands.loc[1, "pred_mean_n_D"] == pytest.approx(1.51)
    assert cands.loc[1, "pred_std_abbe_number"] == pytest.approx(2.0)
    store.set_candidate_selected(b2["id"], "k3", False, actor="bob")
    store.add_batch_candidate(b2["id"], {"psmiles": "*CS(=O)(=O)C*", "key": "sulf"}, actor="bob")
    with pytest.raises(StoreError, match="already"):
        store.add_batch_candidate(b2["id"], {"psmiles": "*CS(=O)(=O)C*", "key": "sulf"},
                                  actor="bob")
    store.reject("demo", "k2", "*CCCC*", reason="looks unstable", actor="bob")
    assert store.batch_candidates(b2["id"]).set_index("key").loc["k2", "rejected"]
    res = store.approve_batch(b2["id"], actor="bob")
    assert res["approved"] and res["n_calculations"] == 3  # k0, k1, sulf (k3 off, k2 rejected)
    again = store.approve_batch(b2["id"], actor="carol")
    assert not again["approved"] and "approved" in again["reason"]
    calcs = store.calculations("demo")
    assert sorted(calcs["key"]) == ["k0", "k1", "sulf"]
    assert set(calcs["status"]) == {"queued"} and set(calcs["preset"]) == {"smoke"}
    assert store.pending_keys("demo") == {"k0", "k1", "sulf"}
    with pytest.raises(InvalidState):
        store.set_candidate_selected(b2["id"], "k0", False, actor="bob")
    with pytest.raises(InvalidState, match="running"):
        store.create_batch("demo", [_cand(9)], strategy="ehvi")
    with pytest.raises(BatchNotFound):
        store.approve_batch(999, actor="x")
    assert store.cycles("demo")["status"].tolist() == ["done", "running"]
    assert store.restore("demo", "k2", actor="bob") and store.rejected_keys("demo") == set()


def _approve_in_process(path: str, batch_id: int, q) -> None:
    q.put(Store(path).approve_batch(batch_id, actor="tab")["approved"])


def test_concurrent_approval_from_two_processes_submits_once(store):
    b = store.create_batch("demo", [_cand(i) for i in range(3)], strategy="ehvi")
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_approve_in_process, args=(str(store.path), b["id"], q))
             for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    results = sorted(q.get(timeout=5) for _ in procs)
    assert results == [False, False, False, True]
    assert len(store.calculations("demo")) == 3


def _approved_batch(store, n=2):
    b = store.create_batch("demo", [_cand(i) for i in range(n)], strategy="ehvi")
    store.approve_batch(b["id"], actor="t")
    return b["id"], list(store.calculations("demo", batch_id=b["id"])["id"])


def test_calculation_lifecycle_exactly_once(store):
    bid, (c0, c1) = _approved_batch(store)
    a = store.start_attempt(c0, dask_key="calc-1-a1", workdir="/w/1", log_path="/w/1/log")
    assert a == 1 and store.get_batch(bid)["status"] == "running"
    assert store.start_attempt(c0, dask_key="again", workdir="/w", log_path="/w") is None
    assert store.update_progress(c0, 1, step="md", worker="tcp://x", job_id="42")
    assert not store.update_progress(c0, 2, step="qm")  # stale attempt ignored
    rec = {"n_D": 1.6, "abbe_number": 35.0, "density": 1.2}
    with pytest.raises(StoreError):
        store.complete_calculation(c0, 1, {"n_D": 1.6})
    assert store.get_calculation(c0)["status"] == "running"  # bad result changed nothing
    oid = store.complete_calculation(c0, 1, rec, provenance={"preset": "smoke"})
    assert oid is not None
    assert store.complete_calculation(c0, 1, rec) is None  # duplicate delivery
    obs = store.observations("demo")
    assert len(obs) == 1 and obs.loc[0, "calculation_id"] == c0 and obs.loc[0, "cycle"] == 1
    calc = store.get_calculation(c0)
    assert calc["status"] == "done" and calc["result"]["density"] == 1.2 and calc["job_id"] == "42"
    assert store.finish_batch_if_complete(bid) is None  # c1 still queued
    # c1: worker dies twice with max_attempts=2 -> failed with the reason
    assert store.start_attempt(c1, dask_key="k", workdir="/w/2", log_path="/w/2/l") == 1
    assert store.fail_attempt(c1, 1, error_type="KilledWorker", error_message="worker died",
                              retryable=True) == "queued"
    assert store.start_attempt(c1, dask_key="k2", workdir="/w/2", log_path="/w/2/l") == 2
    assert store.fail_attempt(c1, 2, error_type="KilledWorker", error_message="worker died",
                              retryable=True) == "failed"
    calc1 = store.get_calculation(c1)
    assert calc1["error_type"] == "KilledWorker" and "2 of 2 attempts" in calc1["error_message"]
    assert store.finish_batch_if_complete(bid) == "done"
    assert store.cycles("demo")["status"].tolist() == ["done", "done"]
    # retry re-opens batch and cycle
    assert store.request_retry(c1, mode="rerun", actor="bob") == "queued"
    c1r = store.get_calculation(c1)
    assert c1r["attempt"] == 0 and c1r["reruns"] == 1 and c1r["error_type"] is None
    assert store.get_batch(bid)["status"] == "running"
    with pytest.raises(InvalidState):
        store.request_retry(c0, actor="bob")


def test_non_retryable_failure_and_cancel(store):
    bid, (c0, c1) = _approved_batch(store)
    store.start_attempt(c0, dask_key="k", workdir="/w", log_path="/l")
    assert store.fail_attempt(c0, 1, error_type="MDUnstable", error_message="lost atoms",
                              retryable=False) == "failed"
    assert store.request_cancel(c1, actor="bob") == "cancelled"
    assert store.get_batch(bid)["status"] == "failed"
    with pytest.raises(InvalidState):
        store.request_cancel(c1, actor="bob")


def test_cancel_running_and_requeue_interrupted(store):
    bid, (c0, c1) = _approved_batch(store)
    store.start_attempt(c0, dask_key="k", workdir="/w", log_path="/l")
    store.start_attempt(c1, dask_key="k", workdir="/w", log_path="/l")
    store.update_progress(c1, 1, job_id="77")
    assert store.request_cancel(c0, actor="bob") == "running"
    assert store.get_calculation(c0)["cancel_requested"]
    assert store.mark_cancelled(c0)
    rows = store.requeue_interrupted("demo")
    assert [r["id"] for r in rows] == [c1] and rows[0]["job_id"] == "77"
    c = store.get_calculation(c1)
    assert c["status"] == "queued" and c["attempt"] == 0 and c["interruptions"] == 1
    assert store.start_attempt(c1, dask_key="k", workdir="/w", log_path="/l") == 1


def test_attempt_budget_checked_at_start(store):
    store.update_config("demo", {"max_attempts": 1}, actor="t")
    bid, (c0, _c1) = _approved_batch(store)
    store.start_attempt(c0, dask_key="k", workdir="/w", log_path="/l")
    assert store.fail_attempt(c0, 1, error_type="KilledWorker", error_message="x",
                              retryable=True) == "failed"


def test_heartbeat(store):
    assert store.runner_status("demo") is None
    store.heartbeat("demo", pid=123, host="h", info={"workers": 2})
    st = store.runner_status("demo")
    assert st["alive"] and st["pid"] == 123 and st["info"] == {"workers": 2} and st["age_s"] < 5
    assert not store.runner_status("demo", stale_after_s=0.0)["alive"]
    store.heartbeat("demo", pid=123, host="h", status="stopped")
    assert not store.runner_status("demo")["alive"]


def test_predictions_and_descriptors(store):
    df = pd.DataFrame({"key": ["a", "b"], "pred_mean_n_D": [1.5, 1.6], "ehvi": [0.1, 0.0]})
    store.save_predictions("demo", 1, df)
    back = store.latest_predictions("demo")
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert back.attrs["cycle"] == 1
    v = np.arange(170, dtype=float)
    store.cache_descriptors({"a": v})
    got = store.cached_descriptors(["a", "zz"])
    assert list(got) == ["a"] and np.array_equal(got["a"], v)


def test_pool_candidates(store):
    n = store.add_pool_candidates("demo", [{"psmiles": "*CC*", "key": "pe"},
                                           {"psmiles": "*CC*", "key": "pe"}], actor="u")
    assert n == 1 and list(store.pool_candidates("demo")["key"]) == ["pe"]


def test_requeue_cancels_what_was_asked_to_stop(store):
    bid, (c0, c1) = _approved_batch(store)
    for c in (c0, c1):
        store.start_attempt(c, dask_key="k", workdir="/w", log_path="/l")
    store.request_cancel(c0, actor="bob")  # the runner died before honouring it
    rows = store.requeue_interrupted("demo")
    assert {r["id"] for r in rows} == {c0, c1}
    assert store.get_calculation(c0)["status"] == "cancelled"
    assert store.get_calculation(c1)["status"] == "queued"


def test_migration_upgrades_an_older_file_keeping_data(tmp_path, monkeypatch):
    import core.store.db as cs  # the module that applies the migrations
    s = Store(tmp_path / "m.db")
    s.create_campaign("old", actor="t")
    s.close()
    v2 = "ALTER TABLE campaigns ADD COLUMN note TEXT; UPDATE campaigns SET note='migrated'"
    monkeypatch.setattr(cs, "MIGRATIONS", cs.MIGRATIONS + [v2])
    monkeypatch.setattr(cs, "SCHEMA_VERSION", len(cs.MIGRATIONS))
    s2 = Store(tmp_path / "m.db")
    assert s2.schema_version() == SCHEMA_VERSION + 1
    assert s2.get_campaign("old")["note"] == "migrated"


def test_preset_overrides_are_validated(tmp_path):
    s = Store(tmp_path / "po.db")
    s.create_campaign("po", {"preset": "smoke", "preset_overrides": {"production_ps": 50.0}},
                      actor="t")
    assert s.campaign_config("po").preset_overrides == {"production_ps": 50.0}
    for bad, match in (({"nope": 1}, "not a preset setting"), ({"name": "x"}, "not a preset"),
                       ({"compress_stages": []}, "number, text"),
                       ({"forcefield": "xx"}, "Unknown force field"), ([1], "mapping")):
        with pytest.raises(InvalidConfig, match=match):
            s.update_config("po", {"preset_overrides": bad}, actor="t")


def test_requeue_unstarted_does_not_charge_the_attempt(store):
    bid, (c0, _c1) = _approved_batch(store)
    a = store.start_attempt(c0, dask_key="k1", workdir="/w/1", log_path="/w/1/log")
    assert not store.requeue_unstarted(c0, a + 1, reason="stale")  # a stale attempt: ignored
    assert store.requeue_unstarted(c0, a, reason="queued on a worker that died")
    calc = store.get_calculation(c0)
    assert calc["status"] == "queued" and calc["attempt"] == 0 and calc["interruptions"] == 1
    assert "not counted" in calc["message"]
    assert store.start_attempt(c0, dask_key="k2", workdir="/w/1", log_path="/w/1/log") == 1
    assert "requeue_unstarted" in set(store.audit_log("demo")["action"])


def test_reject_candidate_is_one_transaction(store):
    b = store.create_batch("demo", [_cand(i) for i in range(3)], strategy="ehvi")
    store.reject_candidate(b["id"], "k1", reason="toxic", actor="page")
    c = store.batch_candidates(b["id"]).set_index("key")
    assert not c.loc["k1", "selected"] and c.loc["k1", "rejected"]
    assert store.rejected_keys("demo") == {"k1"}
    assert store.rejected("demo")["psmiles"].tolist() == ["*CCC*"]
    # selecting it again restores the rejection in the same call
    store.include_candidate(b["id"], "k1", True, actor="page")
    assert store.rejected_keys("demo") == set()
    assert bool(store.batch_candidates(b["id"]).set_index("key").loc["k1", "selected"])
    # a batch that can no longer be edited: neither half of the rejection happens
    store.approve_batch(b["id"], actor="page")
    with pytest.raises(InvalidState):
        store.reject_candidate(b["id"], "k2", actor="page")
    assert store.rejected_keys("demo") == set()
    with pytest.raises(StoreError, match="no candidate"):
        store.reject_candidate(b["id"], "nope", actor="page")
