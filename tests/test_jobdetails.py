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
