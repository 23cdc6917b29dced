"""Runner locks and work dirs belong to one store *file* and one campaign *id*.

Two databases in one folder with a campaign of the same name must not share a runner lock or a
work dir, and a database deleted and recreated at the same path must not reuse the old work dirs
(reliability issue, defect A).
"""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.campaign.commands import create_campaign
from core.chem.polymer import polymer_key
from core.execution.runner import Runner, RunnerLocked, runner_lock_path, runs_dir_for, store_key
from core.store import Store

from tests.helpers import POOL, PP, REPO, reference_records

SMOKE_LOCAL = {"preset": "smoke", "batch_size": 1, "experimental_in_model": True,
               "cluster": {"profile": "local", "n_workers": 1, "threads_per_worker": 1}}


def _store_with_demo(path: Path, config: dict | None = None) -> tuple[Store, int]:
    store = Store(path)
    camp = store.create_campaign("demo", config or {"preset": "smoke"}, actor="test")
    return store, int(camp["id"])


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def test_two_stores_in_one_folder_have_distinct_locks_and_work_dirs(tmp_path):
    a, cid_a = _store_with_demo(tmp_path / "a.db")
    b, cid_b = _store_with_demo(tmp_path / "b.db")
    assert cid_a == cid_b  # same campaign name and id: only the store file tells them apart
    assert a.store_id != b.store_id and len(a.store_id) == 16
    assert runner_lock_path(a, cid_a) != runner_lock_path(b, cid_b)
    assert runs_dir_for(a, cid_a, None) != runs_dir_for(b, cid_b, None)
    shared = str(tmp_path / "shared-runs")  # even one explicit runs_dir setting for both
    assert runs_dir_for(a, cid_a, shared) != runs_dir_for(b, cid_b, shared)
    assert runs_dir_for(a, cid_a, shared).is_relative_to(shared)

    ra, rb = Runner(a.path, "demo"), Runner(b.path, "demo")
    ra2 = Runner(a.path, "demo")
    try:
        ra.acquire_lock()
        rb.acquire_lock()  # B's runner is not blocked by A's
        with pytest.raises(RunnerLocked):
            ra2.acquire_lock()  # but a second runner of the same store and campaign is
    finally:
        for r in (ra, rb):
            if r._lock_fh is not None:
                r._lock_fh.close()


def test_recreated_store_gets_fresh_work_dirs_and_lock(tmp_path):
    path = tmp_path / "a.db"
    old, cid = _store_with_demo(path)
    old_runs, old_lock, old_key = runs_dir_for(old, cid, None), runner_lock_path(old, cid), \
        store_key(old)
    old.close()
    _remove_db(path)
    new, cid2 = _store_with_demo(path)
    assert cid2 == cid
    assert store_key(new) != old_key
    assert runs_dir_for(new, cid2, None) != old_runs
    assert runner_lock_path(new, cid2) != old_lock
    assert Store(path).store_id == new.store_id  # persistent: the same on every open


def test_an_older_database_gets_a_store_id_on_upgrade(tmp_path):
    path = tmp_path / "v1.db"
    _store_with_demo(path)[0].close()
    con = sqlite3.connect(path)
    # a faithful v1 file: without the v2 table and the v3 column
    con.execute("DROP TABLE store_meta")
    con.execute("ALTER TABLE calculations DROP COLUMN attempt_started_at")
    con.execute("PRAGMA user_version=1")
    con.commit()
    con.close()
    s = Store(path)
    assert len(s.store_id) == 16 and s.get_campaign("demo")["name"] == "demo"


@pytest.mark.integration
def test_two_stores_in_one_folder_run_side_by_side(tmp_path):
    """The reported reproduction: var/a.db and var/b.db, each with a campaign "demo" and a
    calculation with id 1, runners at the same time.  Both finish, each in its own work dir."""
    pool = tmp_path / "pool.csv"
    pool.write_text("id,psmiles\n" + "\n".join(f"T{i},{s}" for i, s in enumerate(POOL)))
    stores, procs = [], []
    for name in ("a", "b"):
        store = Store(tmp_path / f"{name}.db")
        create_campaign(store, "demo", {**SMOKE_LOCAL, "pool_source": str(pool)},
                        initial=reference_records(("PC", "COP", "TPX")), actor="test")
        batch = store.create_batch("demo", [{"psmiles": PP, "key": polymer_key(PP)}],
                                   strategy="ehvi", actor="test")
        store.approve_batch(batch["id"], actor="test")
        stores.append(store)
    for store in stores:
        log = open(tmp_path / f"runner-{store.path.stem}.log", "ab")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "core.runner", "--campaign", "demo", "--db", str(store.path),
             "--poll", "0.3", "--exit-when-idle"], cwd=REPO, stdout=log,
            stderr=subprocess.STDOUT))
    try:
        codes = [p.wait(400) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    logs = [(tmp_path / f"runner-{s.path.stem}.log").read_text()[-3000:] for s in stores]
    assert codes == [0, 0], logs
    calcs = [s.get_calculation(1) for s in stores]
    assert [c["status"] for c in calcs] == ["done", "done"], (calcs, logs)
    assert calcs[0]["workdir"] != calcs[1]["workdir"]
    for store, calc in zip(stores, calcs):
        assert Path(calc["workdir"]).is_relative_to(runs_dir_for(store, 1, None))
        obs = store.observations("demo")
        prov = obs[obs["calculation_id"] == 1].iloc[0]["provenance"]
        assert prov["execution"]["workdir"] == calc["workdir"]
