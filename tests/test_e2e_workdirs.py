"""End to end in headless Chromium: stores in one folder get their own work dirs.

Calculations of a second store in a folder (another database file, or the database deleted and
created again at the same path: the same file name, campaign id and calculation id) once ran in
the first store's work directories and failed with ``WorkdirMismatch`` — or, for the same
polymer, would silently have resumed the old files.  Work dirs are per store now
(``core.execution.runner.runs_dir_for``); this goes through the real dashboard: for each store
``streamlit run app.py`` (smoke preset, the app starts the campaign's runner with a real dask
LocalCluster), the batch of one polymer (the same one both times) is approved on the Batch
page, the Jobs page shows it done, then the server and its runner are stopped.  Every
calculation must succeed, each in its own work dir, and the earlier ones' files must be left
as they were.  Uses the server helpers of ``tests/test_e2e_dashboard.py``.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from core.campaign.commands import create_campaign
from core.config import BatchState, CalcState
from core.execution.runner import runs_dir_for, store_key
from core.store import Store
from tests.helpers import CHROMIUM, CHROMIUM_ARGS, PVC, reference_records, write_pool_csv
from tests.test_e2e_dashboard import (_free_port, _goto, _kill_runner, _metric, _wait_metric,
                                      start_server, stop_process_group)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def _new_store(db: Path, pool: Path) -> Store:
    """A smoke campaign "demo" whose first proposed batch is the pool's only polymer."""
    store = Store(db)
    create_campaign(store, "demo", {
        "pool_source": str(pool), "preset": "smoke", "batch_size": 1,
        "experimental_in_model": True,
        "cluster": {"profile": "local", "n_workers": 1, "threads_per_worker": 1}},
        initial=reference_records(("PC", "COP", "TPX")), propose=True, actor="test")
    assert store.current_batch("demo")["status"] == BatchState.PROPOSED
    return store


def _approve_and_finish(browser, db: Path, log: Path) -> None:
    """Serve ``db``, approve its batch on the Batch page, wait for it on the Jobs page, stop
    the server and the runner the app started."""
    port = _free_port()
    proc = start_server(db, port=port, log=log)
    try:
        base = f"http://127.0.0.1:{port}"
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        _goto(page, base, "batch")
        approve = page.get_by_role("button", name=re.compile(r"Approve and launch 1"))
        approve.wait_for(timeout=120_000)
        approve.click()
        page.get_by_text("calculations queued").wait_for(timeout=60_000)
        _goto(page, base, "jobs")
        _wait_metric(page, "Done", lambda v: v == "1", 420)
        assert _metric(page, "Failed") == "0"
        page.context.close()
    finally:
        stop_process_group(proc)
        _kill_runner(db)


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _run(browser, store: Store, db: Path, tag: str, artifacts_dir: Path) -> dict:
    """Approve and finish the store's batch through the dashboard; what the store and the
    work dir say afterwards."""
    _approve_and_finish(browser, db, artifacts_dir / f"e2e_workdirs_{tag}.log")
    runner_log = db.parent / "runner-demo.log"
    if runner_log.exists():
        shutil.copy(runner_log, artifacts_dir / f"e2e_workdirs_runner_{tag}.log")
    calcs = store.calculations("demo")
    assert len(calcs) == 1
    calc = store.get_calculation(int(calcs["id"].iloc[0]))
    obs = store.observations("demo")
    cid = int(store.get_campaign("demo")["id"])
    wd = Path(calc["workdir"])
    files = [wd / "pipeline" / "input.json", wd / "pipeline" / "record.json"]
    return {"calc": calc, "key": store_key(store), "wd": wd, "cid": cid,
            "root": runs_dir_for(store, cid, None),
            "obs": obs[obs["calculation_id"] == calc["id"]],
            "files": {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files}}


def test_stores_in_one_folder_compute_the_same_polymer_in_their_own_work_dirs(tmp_path,
                                                                             artifacts_dir):
    """``optipoly.db``, then ``optipoly.db`` deleted and created again, then a second file
    ``other.db`` in the same folder: the same campaign id, calculation id and polymer each
    time."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    pool = write_pool_csv(tmp_path / "pool.csv", [PVC])
    db, other = tmp_path / "optipoly.db", tmp_path / "other.db"
    runs: list[dict] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for tag, path in (("first", db), ("recreated", db), ("other", other)):
                if tag == "recreated":
                    _remove_db(db)               # the same path, a new database
                store = _new_store(path, pool)
                runs.append(_run(browser, store, path, tag, artifacts_dir))
                store.close()
        finally:
            browser.close()
    # the same campaign and calculation ids and polymer: only the store tells them apart
    assert len({(r["cid"], r["calc"]["id"], r["calc"]["psmiles"]) for r in runs}) == 1
    assert runs[0]["calc"]["psmiles"] == PVC
    for r in runs:
        assert r["calc"]["status"] == CalcState.DONE, r["calc"]
        assert r["wd"].is_relative_to(r["root"]) and r["wd"].is_dir()
        assert len(r["obs"]) == 1                                   # its result came back
        assert r["obs"].iloc[0]["provenance"]["execution"]["workdir"] == str(r["wd"])
    assert len({r["key"] for r in runs}) == len({r["root"] for r in runs}) == 3
    for i, later in enumerate(runs[1:], start=1):
        for earlier in runs[:i]:
            assert not later["wd"].is_relative_to(earlier["root"])
            # each pipeline wrote its own input and result record after the earlier ones,
            # whose files are left as they were
            assert min(m for _, m in later["files"].values()) > \
                max(m for _, m in earlier["files"].values())
    for r in runs:
        for f, (data, mtime) in r["files"].items():
            assert f.read_bytes() == data and f.stat().st_mtime_ns == mtime
