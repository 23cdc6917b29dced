"""Calculations and their state machine (queued → running → done | failed | cancelled)."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

import pandas as pd

from core.config import BatchState, CalcState, CycleState
from core.store.db import Database, _dumps, _loads, utcnow
from core.store.errors import CalculationNotFound, InvalidState, StoreError
from core.store.observations import _objective_values


class CalculationStore(Database):
    """One row per (batch, polymer); the runner drives attempts, the pages cancel/retry."""

    def calculations(self, campaign: Any, *, status: str | Iterable[str] | None = None,
                     batch_id: int | None = None) -> pd.DataFrame:
        """Calculations (newest batch last) with ``elapsed_s`` (s, the current attempt: its start
        → finish or now; None while queued) and ``total_elapsed_s`` (s, since the first start)."""
        q = "SELECT * FROM calculations WHERE campaign_id=?"
        with self._read() as con:
            cid = self._cid(con, campaign)
            params: list[Any] = [cid]
            if status is not None:
                sts = [status] if isinstance(status, str) else list(status)
                q += f" AND status IN ({','.join('?' * len(sts))})"
                params += sts
            if batch_id is not None:
                q += " AND batch_id=?"
                params.append(int(batch_id))
            rows = con.execute(q + " ORDER BY id", params).fetchall()
        recs = [_calc_dict(r) for r in rows]
        return pd.DataFrame(recs, columns=_CALC_COLUMNS)

    def get_calculation(self, calc_id: int) -> dict:
        """One calculation as a dict (result decoded, ``campaign`` name added)."""
        with self._read() as con:
            row = con.execute("SELECT x.*, c.name AS campaign FROM calculations x JOIN campaigns c "
                              "ON c.id=x.campaign_id WHERE x.id=?", (int(calc_id),)).fetchone()
        if row is None:
            raise CalculationNotFound(f"no calculation {calc_id}")
        d = _calc_dict(row)
        d["campaign"] = row["campaign"]
        return d

    def _calc_row(self, con: sqlite3.Connection, calc_id: int) -> sqlite3.Row:
        row = con.execute("SELECT * FROM calculations WHERE id=?", (int(calc_id),)).fetchone()
        if row is None:
            raise CalculationNotFound(f"no calculation {calc_id}")
        return row

    def request_cancel(self, calc_id: int, *, actor: str) -> str:
        """Cancel: a queued calculation is cancelled at once; a running one is flagged and the
        runner stops it.  Returns the resulting status."""
        now = utcnow()
        with self._tx() as con:
            r = self._calc_row(con, calc_id)
            if r["status"] == CalcState.QUEUED:
                con.execute(f"UPDATE calculations SET status='{CalcState.CANCELLED}', finished_at=?, "
                            "updated_at=?, error_type='Cancelled', error_message=? WHERE id=?",
                            (now, now, f"cancelled by {actor}", int(calc_id)))
                new = CalcState.CANCELLED
            elif r["status"] == CalcState.RUNNING:
                con.execute("UPDATE calculations SET cancel_requested=1, updated_at=? WHERE id=?",
                            (now, int(calc_id)))
                new = CalcState.RUNNING
            else:
                raise InvalidState(f"calculation {calc_id} is {r['status']}; nothing to cancel")
            self._audit(con, r["campaign_id"], actor, "cancel", {"calculation_id": int(calc_id)})
        if new == CalcState.CANCELLED:
            self.finish_batch_if_complete(r["batch_id"]) if r["batch_id"] else None
        return new

    def request_retry(self, calc_id: int, *, mode: str = "resume", actor: str) -> str:
        """Re-queue a failed or cancelled calculation with a fresh attempt budget.

        ``resume`` reuses the work dir (finished steps are kept); ``rerun`` starts in a new one.
        A closed batch re-opens (``running``); its cycle too when it is the latest one.
        """
        if mode not in ("resume", "rerun"):
            raise StoreError(f"retry mode must be 'resume' or 'rerun', got {mode!r}")
        now = utcnow()
        with self._tx() as con:
            r = self._calc_row(con, calc_id)
            if r["status"] not in (CalcState.FAILED, CalcState.CANCELLED):
                raise InvalidState(f"calculation {calc_id} is {r['status']}; only failed or "
                                   "cancelled calculations can be retried")
            con.execute(f"UPDATE calculations SET status='{CalcState.QUEUED}', attempt=0, interruptions=0, "
                        "cancel_requested=0, step=NULL, message=?, error_type=NULL, "
                        "error_message=NULL, finished_at=NULL, attempt_started_at=NULL, "
                        "updated_at=?, reruns=reruns+? "
                        "WHERE id=?", (f"{mode} requested by {actor}", now,
                                       1 if mode == "rerun" else 0, int(calc_id)))
            if r["batch_id"] is not None:
                b = self._batch_row(con, r["batch_id"])
                if b["status"] in (BatchState.DONE, BatchState.FAILED):
                    con.execute(f"UPDATE batches SET status='{BatchState.RUNNING}', finished_at=NULL "
                                "WHERE id=?", (r["batch_id"],))
                    last = con.execute("SELECT MAX(number) FROM cycles WHERE campaign_id=?",
                                       (r["campaign_id"],)).fetchone()[0]
                    if last == b["cycle"]:  # re-open the cycle only if no later one exists
                        con.execute(f"UPDATE cycles SET status='{CycleState.RUNNING}', finished_at=NULL "
                                    "WHERE campaign_id=? AND number=?",
                                    (r["campaign_id"], b["cycle"]))
            self._audit(con, r["campaign_id"], actor, "retry",
                        {"calculation_id": int(calc_id), "mode": mode})
        return CalcState.QUEUED

    # runner side ----------------------------------------------------------
    def start_attempt(self, calc_id: int, *, dask_key: str, workdir: str, log_path: str) -> int | None:
        """Move a queued calculation to running, incrementing ``attempt``.

        Returns the new attempt number, or None if the calculation is no longer queued (cancelled
        meanwhile) or its attempt budget is spent (then it is failed here, with the reason).
        """
        now = utcnow()
        with self._tx() as con:
            r = self._calc_row(con, calc_id)
            if r["status"] != CalcState.QUEUED:
                return None
            if r["attempt"] >= r["max_attempts"]:
                con.execute(f"UPDATE calculations SET status='{CalcState.FAILED}', finished_at=?, updated_at=?,"
                            " error_type=COALESCE(error_type, 'AttemptsExhausted'), "
                            "error_message=COALESCE(error_message, '') || ? WHERE id=?",
                            (now, now, f" (gave up after {r['attempt']} attempts)", int(calc_id)))
                return None
            attempt = int(r["attempt"]) + 1
            con.execute(f"UPDATE calculations SET status='{CalcState.RUNNING}', attempt=?, dask_key=?, "
                        "workdir=?, log_path=?, step='submitted', message=?, worker=NULL, "
                        "job_id=NULL, started_at=COALESCE(started_at, ?), attempt_started_at=?, "
                        "updated_at=? WHERE id=?",
                        (attempt, dask_key, workdir, log_path,
                         f"attempt {attempt} of {r['max_attempts']} submitted", now, now, now,
                         int(calc_id)))
            if r["batch_id"] is not None:
                con.execute(f"UPDATE batches SET status='{BatchState.RUNNING}' WHERE id=? AND status='{BatchState.APPROVED}'",
                            (r["batch_id"],))
        return attempt

    def update_progress(self, calc_id: int, attempt: int, *, step: str | None = None,
                        message: str | None = None, worker: str | None = None,
                        job_id: str | None = None) -> bool:
        """Record the current step/worker/job of a running attempt (ignored for stale attempts)."""
        with self._tx() as con:
            cur = con.execute(
                "UPDATE calculations SET step=COALESCE(?, step), message=COALESCE(?, message), "
                "worker=COALESCE(?, worker), job_id=COALESCE(?, job_id), updated_at=? "
                f"WHERE id=? AND attempt=? AND status='{CalcState.RUNNING}'",
                (step, message, worker, job_id, utcnow(), int(calc_id), int(attempt)))
            return cur.rowcount > 0

    def complete_calculation(self, calc_id: int, attempt: int, result: Mapping[str, Any], *,
                             provenance: Mapping | None = None, worker: str | None = None,
                             job_id: str | None = None) -> int | None:
        """Store the result and its observation in one transaction — at most once.

        Only a running calculation at this ``attempt`` is completed; returns the observation id,
        or None when the result is stale (already done, cancelled, or a newer attempt).  Raises
        :class:`StoreError` (changing nothing) when an objective is missing or not finite.
        """
        now = utcnow()
        with self._tx() as con:
            r = self._calc_row(con, calc_id)
            if r["status"] != CalcState.RUNNING or int(r["attempt"]) != int(attempt):
                return None
            cfg = self._config(con, r["campaign_id"])
            vals = _objective_values(result, cfg["objectives"])
            con.execute(f"UPDATE calculations SET status='{CalcState.DONE}', step='{CalcState.DONE}', message=NULL, "
                        "result=?, error_type=NULL, error_message=NULL, finished_at=?, "
                        "updated_at=?, worker=COALESCE(?, worker), job_id=COALESCE(?, job_id) "
                        "WHERE id=?", (_dumps(dict(result)), now, now, worker,
                                       None if job_id is None else str(job_id), int(calc_id)))
            cur = con.execute(
                'INSERT INTO observations(campaign_id, psmiles, key, name, "values", source, cycle,'
                " calculation_id, result, provenance, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (r["campaign_id"], r["psmiles"], r["key"], r["name"], _dumps(vals), "simulation",
                 r["cycle"] if r["cycle"] is not None else 0, int(calc_id), _dumps(dict(result)),
                 _dumps(provenance), now))
            self._audit(con, r["campaign_id"], "runner", "calculation_done",
                        {"calculation_id": int(calc_id), "attempt": int(attempt), "values": vals})
            return int(cur.lastrowid)

    def fail_attempt(self, calc_id: int, attempt: int, *, error_type: str, error_message: str,
                     retryable: bool) -> str | None:
        """Record a failed attempt.  Retryable failures (worker/job died) re-queue while attempts
        remain; others (a simulation error, corrupt data) fail at once.  Returns the new status, or
        None for a stale attempt."""
        now = utcnow()
        with self._tx() as con:
            r = self._calc_row(con, calc_id)
            if r["status"] != CalcState.RUNNING or int(r["attempt"]) != int(attempt):
                return None
            if retryable and int(r["attempt"]) < int(r["max_attempts"]):
                new = CalcState.QUEUED
                con.execute(f"UPDATE calculations SET status='{CalcState.QUEUED}', step=NULL, message=?, "
                            "error_type=?, error_message=?, attempt_started_at=NULL, updated_at=? "
                            "WHERE id=?",
                            (f"attempt {attempt} failed, will retry", error_type, error_message,
                             now, int(calc_id)))
            else:
                new = CalcState.FAILED
                if retryable:
                    error_message = (f"{error_message} (gave up after {attempt} of "
                                     f"{r['max_attempts']} attempts)")
                con.execute(f"UPDATE calculations SET status='{CalcState.FAILED}', error_type=?, "
                            "error_message=?, finished_at=?, updated_at=? WHERE id=?",
                            (error_type, error_message, now, now, int(calc_id)))
            self._audit(con, r["campaign_id"], "runner", "attempt_failed",
                        {"calculation_id": int(calc_id), "attempt": int(attempt),
                         "error_type": error_type, "error_message": error_message[:2000],
                         "new_status": new})
        return new

    def mark_cancelled(self, calc_id: int, *, reason: str = "cancelled on request") -> bool:
        """Running → cancelled (the runner confirms a requested cancellation)."""
        now = utcnow()
        with self._tx() as con:
            r = self._calc_row(con, calc_id)
            cur = con.execute(f"UPDATE calculations SET status='{CalcState.CANCELLED}', error_type='Cancelled', "
                              "error_message=?, finished_at=?, updated_at=? WHERE id=? AND "
                              f"status IN ('{CalcState.QUEUED}','{CalcState.RUNNING}')", (reason, now, now, int(calc_id)))
            if cur.rowcount:
                self._audit(con, r["campaign_id"], "runner", CalcState.CANCELLED,
                            {"calculation_id": int(calc_id)})
            return cur.rowcount > 0

    def requeue_unstarted(self, calc_id: int, attempt: int, *, reason: str) -> bool:
        """Running → queued without counting the attempt (``attempt`` back by one,
        ``interruptions`` up by one): the attempt never started, e.g. its task was only queued
        on a worker that died.  Returns False for a stale attempt."""
        now = utcnow()
        with self._tx() as con:
            r = self._calc_row(con, calc_id)
            cur = con.execute(
                f"UPDATE calculations SET status='{CalcState.QUEUED}', attempt=MAX(attempt-1, 0), "
                "interruptions=interruptions+1, step=NULL, message=?, attempt_started_at=NULL, "
                f"updated_at=? WHERE id=? AND attempt=? AND status='{CalcState.RUNNING}'",
                (f"re-queued, attempt not counted: {reason}"[:1000], now, int(calc_id),
                 int(attempt)))
            if cur.rowcount:
                self._audit(con, r["campaign_id"], "runner", "requeue_unstarted",
                            {"calculation_id": int(calc_id), "attempt": int(attempt),
                             "reason": reason[:2000]})
            return cur.rowcount > 0

    def requeue_interrupted(self, campaign: Any) -> list[dict]:
        """After a runner crash: running calculations go back to ``queued``; the interrupted
        attempt is not counted (``interruptions`` is); those with a pending cancel request are
        cancelled.  Returns the affected rows as they were (job ids let the runner cancel
        orphaned scheduler jobs)."""
        now = utcnow()
        with self._tx() as con:
            cid = self._cid(con, campaign)
            rows = [_calc_dict(r) for r in con.execute(
                f"SELECT * FROM calculations WHERE campaign_id=? AND status='{CalcState.RUNNING}'", (cid,))]
            for r in rows:
                if r["cancel_requested"]:  # asked to stop while no runner was there
                    con.execute(f"UPDATE calculations SET status='{CalcState.CANCELLED}', "
                                "error_type='Cancelled', error_message=?, finished_at=?, "
                                "updated_at=? WHERE id=?",
                                ("cancelled on request (runner restarted)", now, now, r["id"]))
                    continue
                con.execute(f"UPDATE calculations SET status='{CalcState.QUEUED}', attempt=MAX(attempt-1, 0), "
                            "interruptions=interruptions+1, step=NULL, message=?, "
                            "attempt_started_at=NULL, updated_at=? WHERE id=?",
                            ("re-queued after a runner restart", now, r["id"]))
            if rows:
                self._audit(con, cid, "runner", "requeue_interrupted",
                            {"calculation_ids": [r["id"] for r in rows]})
        return rows

    # ------------------------------------------------------------------ runner heartbeat


_CALC_COLUMNS = ["id", "batch_id", "cycle", "psmiles", "key", "name", "preset", "status", "step",
                 "message", "attempt", "max_attempts", "interruptions", "reruns", "worker",
                 "dask_key", "job_id", "log_path", "workdir", "result", "error_type",
                 "error_message", "cancel_requested", "created_at", "started_at",
                 "attempt_started_at", "finished_at", "updated_at", "elapsed_s", "total_elapsed_s"]


def _calc_dict(row: sqlite3.Row) -> dict:
    d = {c: row[c] for c in _CALC_COLUMNS if c in row.keys()}
    d["result"] = _loads(d.get("result"))
    d["cancel_requested"] = bool(d.get("cancel_requested"))
    # the current attempt: none while it waits in the queue (a retry, an automatic re-queue)
    d["elapsed_s"] = (None if d.get("status") == CalcState.QUEUED
                      else _elapsed(d.get("attempt_started_at"), d.get("finished_at")))
    d["total_elapsed_s"] = _elapsed(d.get("started_at"), d.get("finished_at"))
    return d


def _elapsed(start: str | None, end: str | None) -> float | None:
    """Seconds from ``start`` to ``end`` (ISO times; ``end`` None: now); None without a start."""
    if not start:
        return None
    t0 = datetime.fromisoformat(start)
    t1 = datetime.fromisoformat(end) if end else datetime.now(timezone.utc)
    return max(0.0, (t1 - t0).total_seconds())
