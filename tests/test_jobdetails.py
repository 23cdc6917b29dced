"""Jobs-page helpers (pages/_jobdetails.py): retry feedback and the failed-attempt history."""
from __future__ import annotations

import pytest

from core.chem.polymer import canonical_psmiles, polymer_key
from core.store import InvalidState, Store
from pages._jobdetails import (RETRY_LOG_ACTION, attempt_history, last_requeue,
                               requeue_message, retry_calculation)


@pytest.fixture()
def calcs(tmp_path):
    store = Store(tmp_path / "j.db")
    store.create_campaign("j", {"preset": "smoke", "max_attempts": 2}, actor="test")
    ps = [canonical_psmiles(s) for s in ("*CC(*)c1ccccc1", "*CC(*)C#N")]
    b = store.create_batch("j", [{"psmiles": p, "key": polymer_key(p)} for p in ps],
                           strategy="ehvi", actor="test")
    store.approve_batch(b["id"], actor="test")
    return store, [int(i) for i in store.calculations("j")["id"]]


def _fail(store: Store, cid: int, msg: str, retryable: bool) -> str | None:
    att = store.start_attempt(cid, dask_key=f"k{cid}", workdir="/tmp/x", log_path="/tmp/x/l")
    return store.fail_attempt(cid, att, error_type="WorkerDied", error_message=msg,
                              retryable=retryable)


def test_retry_message_and_history_of_repeated_failures(calcs):
    store, (cid, _) = calcs
    assert _fail(store, cid, "worker lost", True) == "queued"
    assert _fail(store, cid, "worker lost again", True) == "failed"
    out = retry_calculation(store, cid, mode="resume", actor="dashboard")
    assert (out.status, out.attempt, out.max_attempts) == ("queued", 1, 2)
    assert out.message == requeue_message(cid, "resume", 1, 2)
    assert "re-queued" in out.message and "attempt 1 of 2" in out.message
    assert out.previous_error.startswith("WorkerDied: worker lost again (gave up after 2")
    assert store.get_calculation(cid)["error_message"] is None  # the store row is cleared …
    hist = attempt_history(store.audit_log("j"), cid, max_attempts=2)
    assert hist["attempt"].tolist() == ["1 of 2", "2 of 2"]  # … the history keeps it
    assert hist["error"].tolist() == ["WorkerDied: worker lost", out.previous_error]
    assert hist["then"].tolist() == ["retried automatically", "re-queued (resume) by dashboard"]
    req = last_requeue(store.audit_log("j"), cid)
    assert req["actor"] == "dashboard" and req["mode"] == "resume" and req["ts"]
    # a second round: fails again at attempt 1, re-run fresh
    _fail(store, cid, "density did not converge", False)
    retry_calculation(store, cid, mode="rerun", actor="dashboard")
    hist = attempt_history(store.audit_log("j"), cid)
    assert len(hist) == 3 and hist["then"].iloc[-1] == "re-queued (rerun) by dashboard"
    assert hist["error"].iloc[-1] == "WorkerDied: density did not converge"


def test_error_without_attempt_failed_entry_is_kept_by_the_retry(calcs):
    """A cancellation (or a spent budget) clears no audit trail of its own: the retry logs it."""
    store, (_, cid) = calcs
    store.request_cancel(cid, actor="alice")
    out = retry_calculation(store, cid, mode="rerun", actor="dashboard")
    assert out.previous_error == "Cancelled: cancelled by alice"
    audit = store.audit_log("j")
    assert (audit["action"] == RETRY_LOG_ACTION).sum() == 1
    hist = attempt_history(audit, cid, max_attempts=2)
    assert hist.to_dict("records")[0]["error"] == "Cancelled: cancelled by alice"
    assert hist["then"].iloc[0] == "cancelled; re-queued (rerun) by dashboard"


def test_retry_of_a_queued_calculation_is_refused_and_logs_nothing(calcs):
    store, (cid, _) = calcs
    with pytest.raises(InvalidState):
        retry_calculation(store, cid, mode="resume", actor="dashboard")
    audit = store.audit_log("j")
    assert not (audit["action"] == RETRY_LOG_ACTION).any()
    assert attempt_history(audit, cid).empty and last_requeue(audit, cid) is None


def _backdate(store: Store, cid: int, seconds: float) -> None:
    """Move the calculation's start times ``seconds`` into the past (a long first attempt)."""
    import sqlite3
    from datetime import datetime, timedelta, timezone

    then = (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat()
    con = sqlite3.connect(store.path)
    with con:
        con.execute("UPDATE calculations SET started_at=?, attempt_started_at=? WHERE id=?",
                    (then, then, cid))
    con.close()


def test_elapsed_counts_the_current_attempt_and_total_since_the_first_start(calcs):
    store, (cid, other) = calcs
    row = store.get_calculation(cid)
    assert row["elapsed_s"] is None and row["total_elapsed_s"] is None  # never started
    att = store.start_attempt(cid, dask_key="k1", workdir="/tmp/x", log_path="/tmp/x/l")
    _backdate(store, cid, 3600.0)  # the first attempt has run for an hour
    assert store.get_calculation(cid)["elapsed_s"] >= 3600.0
    store.fail_attempt(cid, att, error_type="WorkerDied", error_message="lost", retryable=True)
    row = store.get_calculation(cid)
    assert row["status"] == "queued" and row["elapsed_s"] is None  # waiting: no attempt runs
    assert row["total_elapsed_s"] >= 3600.0
    store.start_attempt(cid, dask_key="k2", workdir="/tmp/x", log_path="/tmp/x/l")
    row = store.get_calculation(cid)
    assert row["attempt"] == 2 and 0.0 <= row["elapsed_s"] < 600.0  # counts from attempt 2
    assert row["total_elapsed_s"] >= 3600.0
    frame = store.calculations("j").set_index("id")
    assert frame.loc[cid, "elapsed_s"] < 600.0 and frame.loc[cid, "total_elapsed_s"] >= 3600.0
    # a manual retry after a final failure starts the clock of the next attempt afresh too
    store.fail_attempt(cid, 2, error_type="MDUnstable", error_message="lost atoms",
                       retryable=False)
    done = store.get_calculation(cid)
    assert done["status"] == "failed" and done["elapsed_s"] < 600.0  # attempt 2, to its end
    retry_calculation(store, cid, mode="resume", actor="dashboard")
    assert store.get_calculation(cid)["elapsed_s"] is None
    # a calculation cancelled in the queue never ran an attempt
    store.request_cancel(other, actor="alice")
    assert store.get_calculation(other)["elapsed_s"] is None


def test_a_version_2_database_gains_the_attempt_start(tmp_path):
    """Migration v3: the column is added; older rows count from their first start."""
    import sqlite3

    from core.store.migrations import MIGRATIONS, _split_sql

    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    for v, script in enumerate(MIGRATIONS[:2]):
        for stmt in _split_sql(script):
            con.execute(stmt)
        con.execute(f"PRAGMA user_version={v + 1}")
    con.execute("INSERT INTO campaigns(name, config, created_at, updated_at) VALUES "
                "('old', '{}', '2025-01-01T00:00:00+00:00', '2025-01-01T00:00:00+00:00')")
    con.execute("INSERT INTO calculations(campaign_id, psmiles, key, preset, status, attempt, "
                "max_attempts, created_at, started_at, finished_at, updated_at) VALUES "
                "(1, '*CC*', 'k', 'smoke', 'done', 1, 2, '2025-01-01T00:00:00+00:00', "
                "'2025-01-01T00:00:00+00:00', '2025-01-01T00:10:00+00:00', "
                "'2025-01-01T00:10:00+00:00')")
    con.commit()
    con.close()
    store = Store(db)
    row = store.calculations("old").iloc[0]
    assert row["attempt_started_at"] == "2025-01-01T00:00:00+00:00"
    assert row["elapsed_s"] == 600.0 and row["total_elapsed_s"] == 600.0
