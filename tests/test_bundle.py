"""Campaign bundles (core.campaign.bundle): a campaign written to one JSON file and recreated in
another store exactly — ids remapped, states kept, nothing queued or recomputed — plus the
dashboard's start-up loader of shipped bundles (core.campaign.demo.ensure_shipped_campaigns).

The campaign is built with the store API (tests.helpers.seed_store: a done batch with one
failed calculation, a proposed batch waiting, pool predictions), no simulation runs."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from core.campaign.bundle import (BUNDLE_VERSION, BundleError, is_shipped, load_bundle,
                                  read_bundle, runner_wanted, write_bundle)
from core.campaign.commands import campaign_status, main
from core.campaign.cycle import campaign_observations, record_cycle_metrics
from core.campaign.demo import ensure_shipped_campaigns
from core.chem.polymer import polymer_key
from core.config import BatchState, CalcState
from core.store import CampaignExists, Store
from tests.helpers import PP, PS, seed_store


@pytest.fixture()
def source(tmp_path: Path) -> Store:
    """A seeded campaign ``demo`` with recorded cycle metrics, a rejection and an upload."""
    store = seed_store(tmp_path / "src.db")["store"]
    record_cycle_metrics(store, "demo", 0)
    record_cycle_metrics(store, "demo", 1)
    store.reject("demo", polymer_key(PP), PP, reason="not wanted", actor="test")
    store.add_pool_candidates("demo", [{"psmiles": PS, "key": polymer_key(PS), "name": "PS"}],
                              actor="test")
    return store


def _busy_target(path: Path) -> Store:
    """A store that already holds another campaign with rows, so new ids differ from the
    source's."""
    t = Store(path)
    t.create_campaign("other", {"preset": "quick"}, actor="test")
    t.add_observation("other", PP, {"n_D": 1.5, "abbe_number": 50.0}, source="initial")
    b = t.create_batch("other", [{"psmiles": PS, "key": polymer_key(PS)}], strategy="ehvi",
                       actor="test")
    t.approve_batch(b["id"], actor="test")
    return t


def _counts(path: Path) -> dict[str, int]:
    con = sqlite3.connect(path)
    try:
        return {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("campaigns", "cycles", "batches", "batch_candidates", "calculations",
                          "observations", "audit", "predictions", "rejections", "pool_extra",
                          "runners")}
    finally:
        con.close()


def _no_ids(df: pd.DataFrame, *cols: str) -> pd.DataFrame:
    return df.drop(columns=[c for c in ("id", *cols) if c in df.columns]).reset_index(drop=True)


def test_round_trip_is_exact(source: Store, tmp_path: Path):
    paths = write_bundle(source, "demo", tmp_path / "out")
    assert paths["json"] == tmp_path / "out" / "demo.json" and paths["csv"].is_file()
    data = json.loads(paths["json"].read_text())
    assert data["bundle_version"] == BUNDLE_VERSION
    assert all("log_path" not in c and "workdir" not in c for c in data["calculations"])

    target = _busy_target(tmp_path / "dst.db")
    camp = load_bundle(target, paths["json"], "shipped")
    src, dst = source.get_campaign("demo"), target.get_campaign("shipped")
    assert dst["id"] != src["id"] and dst["config"] == src["config"]
    assert dst["created_at"] == src["created_at"] and camp["name"] == "shipped"

    # observations: every value, result record, provenance, cycle and time
    so, do = source.observations("demo"), target.observations("shipped")
    pd.testing.assert_frame_equal(_no_ids(so, "calculation_id"), _no_ids(do, "calculation_id"))
    # cycles with their metrics
    cy = source.cycles("demo")
    assert cy["hypervolume"].notna().sum() == 2
    pd.testing.assert_frame_equal(cy, target.cycles("shipped"))
    # batches, candidates, calculations: ids remapped, everything else kept
    sb, db = source.batches("demo"), target.batches("shipped")
    assert set(db["id"]).isdisjoint(set(target.batches("other")["id"]))
    pd.testing.assert_frame_equal(_no_ids(sb), _no_ids(db))
    assert list(db["status"]) == [BatchState.DONE, BatchState.PROPOSED]
    for b_src, b_dst in zip(sb["id"], db["id"]):
        pd.testing.assert_frame_equal(_no_ids(source.batch_candidates(int(b_src)), "batch_id"),
                                      _no_ids(target.batch_candidates(int(b_dst)), "batch_id"))
        assert source.get_batch(int(b_src))["info"] == target.get_batch(int(b_dst))["info"]
    sc, dc = source.calculations("demo"), target.calculations("shipped")
    assert dc["workdir"].isna().all() and dc["log_path"].isna().all()
    pd.testing.assert_frame_equal(_no_ids(sc, "batch_id", "workdir", "log_path"),
                                  _no_ids(dc, "batch_id", "workdir", "log_path"))
    assert set(dc["batch_id"]) == {int(db["id"].iloc[0])}
    assert sorted(dc["status"]) == sorted([CalcState.DONE, CalcState.DONE, CalcState.FAILED])
    # each observation of a calculation points at the recreated calculation of its polymer
    by_id = dc.set_index("id")["psmiles"]
    sims = do[do["calculation_id"].notna()]
    assert len(sims) == 2
    assert all(by_id[int(c)] == p for c, p in zip(sims["calculation_id"], sims["psmiles"]))
    # what the dashboard derives: fidelity split, model check, KPIs' inputs, pool cloud
    for a, b in zip(campaign_observations(source, "demo"), campaign_observations(target,
                                                                                 "shipped")):
        pd.testing.assert_frame_equal(_no_ids(a, "calculation_id"), _no_ids(b, "calculation_id"))
    st_s, st_d = campaign_status(source, "demo"), campaign_status(target, "shipped")
    assert len(st_s["model_check"]) > 0
    for k in ("fidelity", "n_observations", "model_check", "calculations", "cycle"):  # cycles: above
        assert st_s[k] == st_d[k], k
    assert st_d["runner"] is None  # no runner, nothing queued
    ps, pdst = source.latest_predictions("demo"), target.latest_predictions("shipped")
    pd.testing.assert_frame_equal(ps, pdst)
    assert ps.attrs == pdst.attrs
    pd.testing.assert_frame_equal(_no_ids(source.rejected("demo")),
                                  _no_ids(target.rejected("shipped")))
    pd.testing.assert_frame_equal(_no_ids(source.pool_candidates("demo")),
                                  _no_ids(target.pool_candidates("shipped")))
    assert target.pending_keys("shipped") == set()
    # the audit trail, ids in its details remapped, and the load itself audited
    sa, da = source.audit_log("demo"), target.audit_log("shipped")
    assert len(da) == len(sa) + 1 and da["action"].iloc[0] == "load_bundle"
    assert list(da["action"].iloc[1:]) == list(sa["action"])
    done = da[da["action"] == "batch_done"]["details"].iloc[0]
    assert done["batch_id"] == int(db["id"].iloc[0])
    # the other campaign of the target store is untouched
    assert len(target.calculations("other")) == 1


def test_cli_bundle_and_load_and_duplicate_name(source: Store, tmp_path: Path, capsys):
    out = tmp_path / "ship"
    assert main(["--db", str(source.path), "bundle", "demo", "--out", str(out), "--no-csv"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["demo.json"]
    dst = tmp_path / "dst.db"
    assert main(["--db", str(dst), "load-bundle", str(out / "demo.json")]) == 0
    assert "loaded campaign demo" in capsys.readouterr().out
    before = _counts(dst)
    assert main(["--db", str(dst), "load-bundle", str(out / "demo.json")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert _counts(dst) == before
    with pytest.raises(CampaignExists):
        load_bundle(Store(dst), out / "demo.json")
    assert main(["--db", str(dst), "load-bundle", str(out / "demo.json"), "--name",
                 "demo-copy"]) == 0
    assert len(Store(dst).observations("demo-copy")) == len(source.observations("demo"))


def _edit(path: Path, out: Path, change) -> Path:
    data = json.loads(path.read_text())
    change(data)
    out.write_text(json.dumps(data))
    return out


@pytest.mark.parametrize("what, change, message", [
    ("old version", lambda d: d.update(bundle_version=0), "bundle_version 0"),
    ("no version", lambda d: d.pop("bundle_version"), "bundle_version None"),
    ("not a bundle", lambda d: d.pop("format"), "not an optipoly campaign bundle"),
    ("no batches", lambda d: d.pop("batches"), '"batches" part'),
    ("bad config", lambda d: d["campaign"]["config"].update(preset="nope"), "preset"),
    ("dangling calculation", lambda d: d["observations"][-1].update(calculation_id=999),
     "calculation_id 999"),
    ("unknown column", lambda d: d["cycles"][0].update(colour="red"), "unknown column"),
    ("missing column", lambda d: d["calculations"][0].pop("psmiles"), "calculations row 0"),
    ("bad predictions", lambda d: d["predictions"].update(npz_base64="AAAA"),
     "pool predictions"),
])
def test_bad_bundle_changes_nothing(source: Store, tmp_path: Path, what, change, message):
    good = write_bundle(source, "demo", tmp_path / "out", csv=False)["json"]
    bad = _edit(good, tmp_path / "bad.json", change)
    target = _busy_target(tmp_path / "dst.db")
    before = _counts(target.path)
    with pytest.raises(BundleError, match=message):
        load_bundle(target, bad)
    assert _counts(target.path) == before, what
    assert main(["--db", str(target.path), "load-bundle", str(bad)]) == 2


def test_unreadable_files(tmp_path: Path):
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(BundleError, match="not a JSON file"):
        read_bundle(tmp_path / "x.json")
    with pytest.raises(BundleError, match="cannot read"):
        read_bundle(tmp_path / "missing.json")


def test_pending_calculations_are_not_bundled_unless_asked(tmp_path: Path):
    t = _busy_target(tmp_path / "s.db")  # "other" has a queued calculation
    with pytest.raises(BundleError, match="queued or running"):
        write_bundle(t, "other", tmp_path / "out")
    p = write_bundle(t, "other", tmp_path / "out", allow_pending=True)["json"]
    u = Store(tmp_path / "u.db")
    load_bundle(u, p)
    assert list(u.calculations("other")["status"]) == [CalcState.QUEUED]  # kept, not re-queued


def test_startup_loader_is_idempotent_and_marks_shipped(source: Store, tmp_path: Path):
    folder = tmp_path / "campaigns"
    good = write_bundle(source, "demo", folder)["json"]
    good.rename(folder / "finished-quick.json")
    (folder / "broken.json").write_text("[]")
    db = tmp_path / "app.db"
    res = ensure_shipped_campaigns(db, folder)
    assert res["finished-quick.json"] == "loaded"
    assert res["broken.json"].startswith("error: BundleError")
    store = Store(db)
    counts = _counts(db)
    assert ensure_shipped_campaigns(db, folder)["finished-quick.json"] == "present"
    assert _counts(db) == counts  # nothing loaded twice, nothing else written
    assert is_shipped(store, "finished-quick") and not runner_wanted(store, "finished-quick")
    assert store.runner_status("finished-quick") is None
    # someone continues it: approving the waiting batch queues work, then a runner is wanted
    b = store.current_batch("finished-quick")
    assert b["status"] == BatchState.PROPOSED
    assert store.approve_batch(b["id"], actor="test")["approved"]
    assert runner_wanted(store, "finished-quick")
    # a campaign loaded by hand (CLI) is an ordinary campaign
    load_bundle(store, folder / "finished-quick.json", "by-hand")
    assert not is_shipped(store, "by-hand") and runner_wanted(store, "by-hand")


def test_startup_loader_never_raises(tmp_path: Path):
    folder = tmp_path / "campaigns"
    folder.mkdir()
    (folder / "x.json").write_text("{}")
    (tmp_path / "dir.db").mkdir()
    res = ensure_shipped_campaigns(tmp_path / "dir.db", folder)  # a directory, not a database
    assert res["x.json"].startswith("error: StoreUnavailable")
    assert ensure_shipped_campaigns(tmp_path / "a.db", tmp_path / "none") == {}
