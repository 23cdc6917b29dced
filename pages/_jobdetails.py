"""Plain helpers of the Jobs page (no Streamlit): retry with feedback, and what happened to a
calculation's earlier attempts, read back from the store's audit log.

A retry clears the calculation's ``error_type`` / ``error_message`` in the store (the row shows
the current attempt), so the failed attempts are taken from the audit log: the runner's
``attempt_failed`` entries, the ``retry`` entries, and a ``retry_previous_error`` entry written
by :func:`retry_calculation` with the error the retry cleared (also for failures that did not
come through ``attempt_failed``, e.g. a spent attempt budget or a cancellation).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.config import CalcState
from core.store import Store

__all__ = ["RetryOutcome", "retry_calculation", "requeue_message", "attempt_history",
           "last_requeue", "RETRY_LOG_ACTION", "AUDIT_SCAN_LIMIT"]

RETRY_LOG_ACTION = "retry_previous_error"
AUDIT_SCAN_LIMIT = 20_000
_MODE_TEXT = {"resume": "resuming in its work directory", "rerun": "in a fresh work directory"}


def _error_text(error_type: Any, error_message: Any) -> str:
    et, em = str(error_type or "").strip(), str(error_message or "").strip()
    return f"{et or 'error'}: {em}" if em else (et or "error (no message)")


def requeue_message(calc_id: int, mode: str, attempt: int, max_attempts: int) -> str:
    """One line for the toast / info box after a retry."""
    return (f"Calculation {calc_id} re-queued ({_MODE_TEXT.get(mode, mode)}): "
            f"attempt {attempt} of {max_attempts}.")


@dataclass(frozen=True)
class RetryOutcome:
    """What :func:`retry_calculation` did."""

    calc_id: int
    mode: str
    status: str
    attempt: int           # the attempt that runs next (1-based)
    max_attempts: int
    previous_error: str | None

    @property
    def message(self) -> str:
        return requeue_message(self.calc_id, self.mode, self.attempt, self.max_attempts)


def retry_calculation(store: Store, calc_id: int, *, mode: str, actor: str) -> RetryOutcome:
    """Re-queue a failed / cancelled calculation (``Store.request_retry``) and keep the error the
    retry clears in the audit log (``retry_previous_error``).  Store errors propagate."""
    before = store.get_calculation(calc_id)
    status = store.request_retry(calc_id, mode=mode, actor=actor)
    after = store.get_calculation(calc_id)
    prev = None
    if before.get("error_type") or before.get("error_message"):
        prev = _error_text(before.get("error_type"), before.get("error_message"))
        store.log(after["campaign"], RETRY_LOG_ACTION, actor=actor, details={
            "calculation_id": int(calc_id), "mode": mode, "status": before["status"],
            "attempt": int(before["attempt"] or 0), "max_attempts": int(before["max_attempts"]),
            "step": before.get("step"), "error_type": before.get("error_type"),
            "error_message": before.get("error_message")})
    attempt = int(after["attempt"] or 0) + (1 if after["status"] == CalcState.QUEUED else 0)
    return RetryOutcome(calc_id=int(calc_id), mode=mode, status=status,
                        attempt=max(1, attempt), max_attempts=int(after["max_attempts"]),
                        previous_error=prev)


def _mine(audit: pd.DataFrame, calc_id: int, actions: set[str]) -> list[dict]:
    """Audit entries of ``calc_id`` with one of ``actions``, oldest first."""
    out = []
    for r in audit.itertuples(index=False):
        d = r.details
        if r.action in actions and isinstance(d, dict) and \
                d.get("calculation_id") is not None and int(d["calculation_id"]) == int(calc_id):
            out.append({"id": r.id, "ts": r.ts, "actor": r.actor, "action": r.action, **d})
    return sorted(out, key=lambda e: e["id"])


def _short_ts(ts: Any) -> str:
    return str(ts or "").replace("T", " ")[:19]


def attempt_history(audit: pd.DataFrame, calc_id: int, *,
                    max_attempts: int | None = None) -> pd.DataFrame:
    """The failed attempts of one calculation, oldest first: ``time``, ``attempt``
    (``k of n`` where known), ``error`` (type: message) and ``then`` (retried automatically,
    failed, re-queued by whom and how)."""
    cols = ["time", "attempt", "error", "then"]
    rows: list[dict] = []
    for e in _mine(audit, calc_id, {"attempt_failed", "retry", RETRY_LOG_ACTION}):
        if e["action"] == "attempt_failed":
            auto = e.get("new_status") == CalcState.QUEUED
            k = e.get("attempt", "")
            rows.append({"time": _short_ts(e["ts"]),
                         "attempt": f"{k} of {max_attempts}" if max_attempts else str(k),
                         "error": _error_text(e.get("error_type"), e.get("error_message")),
                         "then": "retried automatically" if auto else CalcState.FAILED.value,
                         "_open": not auto})
        elif e["action"] == "retry":
            if rows and rows[-1]["_open"]:
                rows[-1]["then"] = f"re-queued ({e.get('mode', 'resume')}) by {e['actor']}"
                rows[-1]["_open"] = False
                rows[-1]["_retry"] = True
        else:  # the error a retry cleared
            err = _error_text(e.get("error_type"), e.get("error_message"))
            n = e.get("max_attempts")
            att = f"{e.get('attempt', '')} of {n}" if n else str(e.get("attempt", ""))
            last = rows[-1] if rows else None
            if last is not None and last.get("_retry") and err.startswith(last["error"]):
                last["error"], last["attempt"] = err, att  # the same failure, in full
                last["_retry"] = False
                continue
            rows.append({"time": _short_ts(e["ts"]), "attempt": att, "error": err,
                         "then": f"{e.get('status') or 'failed'}; re-queued "
                                 f"({e.get('mode', 'resume')}) by {e['actor']}",
                         "_open": False})
    return pd.DataFrame([{c: r[c] for c in cols} for r in rows], columns=cols)


def last_requeue(audit: pd.DataFrame, calc_id: int) -> dict | None:
    """The latest ``retry`` of a calculation: ``{"ts", "actor", "mode"}``, or None."""
    ev = _mine(audit, calc_id, {"retry"})
    if not ev:
        return None
    e = ev[-1]
    return {"ts": _short_ts(e["ts"]), "actor": e["actor"], "mode": e.get("mode", "resume")}
