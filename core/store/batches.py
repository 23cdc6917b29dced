"""Cycles and batches: propose, edit (select, reject, add by hand, joint value), approve
(idempotent), finish."""
from __future__ import annotations

import json
import sqlite3
from typing import Any, Iterable, Mapping

import pandas as pd

from core.config import BatchState, CalcState, CycleState
from core.store.db import Database, _dumps, _loads, _opt_float, utcnow
from core.store.errors import BatchNotFound, InvalidState, StoreError

#: ``batch_candidates.source`` of a candidate a person added by hand (Batch or Pool page)
HAND_ADDED = "manual"


class BatchStore(Database):
    """Batches move proposed → approved → running → done | failed (or superseded)."""

    def create_batch(self, campaign: Any, candidates: Iterable[Mapping[str, Any]], *,
                     strategy: str, joint_value: float | None = None,
                     info: Mapping | None = None, actor: str = "system") -> dict:
        """Record a proposed batch (ranked in the given order).

        Opens cycle ``last + 1`` — or reuses the open proposed cycle, superseding its batch.
        Raises :class:`InvalidState` while an approved batch is still running.
        """
        cands = [dict(c) for c in candidates]
        if not cands:
            raise StoreError("a batch needs at least one candidate")
        now = utcnow()
        with self._tx() as con:
            cid = self._cid(con, campaign)
            last = con.execute("SELECT number, status FROM cycles WHERE campaign_id=? "
                               "ORDER BY number DESC LIMIT 1", (cid,)).fetchone()
            if last is not None and last["status"] == CycleState.RUNNING:
                raise InvalidState(f"cycle {last['number']} is still running; wait for it to "
                                   "finish before proposing the next batch")
            if last is not None and last["status"] == CycleState.PROPOSED:
                cycle = int(last["number"])
                old = con.execute("SELECT id FROM batches WHERE campaign_id=? AND cycle=? AND "
                                  f"status='{BatchState.PROPOSED}'", (cid, cycle)).fetchall()
                for o in old:
                    con.execute(f"UPDATE batches SET status='{BatchState.SUPERSEDED}', finished_at=? "
                                "WHERE id=?", (now, o[0]))
            else:
                cycle = 0 if last is None else int(last["number"]) + 1
                con.execute("INSERT INTO cycles(campaign_id, number, status, started_at) "
                            "VALUES (?,?,?,?)", (cid, cycle, CycleState.PROPOSED, now))
            cur = con.execute("INSERT INTO batches(campaign_id, cycle, status, strategy, "
                              "joint_value, info, created_at) VALUES (?,?,?,?,?,?,?)",
                              (cid, cycle, BatchState.PROPOSED, strategy,
                               None if joint_value is None else float(joint_value),
                               _dumps(info), now))
            bid = int(cur.lastrowid)
            for rank, c in enumerate(cands):
                self._insert_candidate(con, bid, rank, c)
            self._audit(con, cid, actor, "propose_batch",
                        {"batch_id": bid, "cycle": cycle, "strategy": strategy,
                         "n": len(cands), "keys": [c["key"] for c in cands]})
        return self.get_batch(bid)

    @staticmethod
    def _insert_candidate(con: sqlite3.Connection, bid: int, rank: int,
                          c: Mapping[str, Any]) -> int:
        if not c.get("psmiles") or not c.get("key"):
            raise StoreError(f"batch candidate needs psmiles and key: {dict(c)!r}")
        try:
            cur = con.execute(
                "INSERT INTO batch_candidates(batch_id, rank, psmiles, key, name, pool_id, source,"
                " pred_mean, pred_std, ehvi, p_beyond, selected) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (bid, rank, c["psmiles"], c["key"], c.get("name"),
                 None if c.get("pool_id") is None else str(c["pool_id"]),
                 c.get("source", "acquisition"), _dumps(c.get("pred_mean")),
                 _dumps(c.get("pred_std")), _opt_float(c.get("ehvi")),
                 _opt_float(c.get("p_beyond")), int(bool(c.get("selected", True)))))
        except sqlite3.IntegrityError:
            raise StoreError(f"candidate {c['psmiles']!r} is already in batch {bid}") from None
        return int(cur.lastrowid)

    def get_batch(self, batch_id: int) -> dict:
        """Batch row as a dict (info decoded) plus ``n_selected`` and ``objectives``."""
        with self._read() as con:
            row = con.execute("SELECT b.*, c.name AS campaign, c.config AS config FROM batches b "
                              "JOIN campaigns c ON c.id=b.campaign_id WHERE b.id=?",
                              (int(batch_id),)).fetchone()
            if row is None:
                raise BatchNotFound(f"no batch {batch_id}")
            n_sel = con.execute("SELECT COUNT(*) FROM batch_candidates WHERE batch_id=? AND "
                                "selected=1", (int(batch_id),)).fetchone()[0]
        d = dict(row)
        d["info"] = _loads(d["info"])
        d["objectives"] = json.loads(d.pop("config"))["objectives"]
        d["n_selected"] = int(n_sel)
        return d

    def current_batch(self, campaign: Any) -> dict | None:
        """The latest batch that is not superseded, or None."""
        with self._read() as con:
            cid = self._cid(con, campaign)
            row = con.execute(f"SELECT id FROM batches WHERE campaign_id=? AND status!='{BatchState.SUPERSEDED}'"
                              " ORDER BY id DESC LIMIT 1", (cid,)).fetchone()
        return None if row is None else self.get_batch(row[0])

    def batches(self, campaign: Any) -> pd.DataFrame:
        """All batches with candidate and calculation counts per state."""
        with self._read() as con:
            cid = self._cid(con, campaign)
            return pd.read_sql_query(
                "SELECT b.id, b.cycle, b.status, b.strategy, b.joint_value, b.created_at, "
                "b.approved_at, b.approved_by, b.finished_at, "
                "(SELECT COUNT(*) FROM batch_candidates k WHERE k.batch_id=b.id) AS n_candidates,"
                " (SELECT COUNT(*) FROM batch_candidates k WHERE k.batch_id=b.id AND k.selected=1)"
                " AS n_selected, "
                f"(SELECT COUNT(*) FROM calculations x WHERE x.batch_id=b.id AND x.status='{CalcState.DONE}')"
                " AS n_done, "
                f"(SELECT COUNT(*) FROM calculations x WHERE x.batch_id=b.id AND x.status='{CalcState.FAILED}')"
                " AS n_failed, "
                "(SELECT COUNT(*) FROM calculations x WHERE x.batch_id=b.id AND "
                f"x.status IN ('{CalcState.QUEUED}','{CalcState.RUNNING}')) AS n_pending "
                "FROM batches b WHERE b.campaign_id=? ORDER BY b.id", con, params=(cid,))

    def batch_candidates(self, batch_id: int) -> pd.DataFrame:
        """Candidates of a batch, ``pred_mean_<obj>``/``pred_std_<obj>`` columns per objective,
        ``rejected`` true when the key is currently rejected in the campaign."""
        b = self.get_batch(batch_id)
        with self._read() as con:
            rows = con.execute("SELECT * FROM batch_candidates WHERE batch_id=? ORDER BY rank",
                               (int(batch_id),)).fetchall()
            rej = self._rejected_keys(con, b["campaign_id"])
        objs = b["objectives"]
        cols = ["id", "batch_id", "rank", "psmiles", "key", "name", "pool_id", "source",
                *[f"pred_mean_{o}" for o in objs], *[f"pred_std_{o}" for o in objs],
                "ehvi", "p_beyond", "selected", "rejected"]
        recs = []
        for r in rows:
            d = dict(r)
            mean = _loads(d.pop("pred_mean")) or {}
            std = _loads(d.pop("pred_std")) or {}
            for o in objs:
                d[f"pred_mean_{o}"] = _opt_float(mean.get(o))
                d[f"pred_std_{o}"] = _opt_float(std.get(o))
            d["selected"] = bool(d["selected"])
            d["rejected"] = d["key"] in rej
            recs.append(d)
        df = pd.DataFrame(recs, columns=cols)
        for c in cols:
            if c.startswith("pred_") or c in ("ehvi", "p_beyond"):
                df[c] = df[c].astype(float)
        return df

    def set_candidate_selected(self, batch_id: int, key: str, selected: bool, *,
                               actor: str) -> None:
        """(De)select a candidate of a proposed batch."""
        with self._tx() as con:
            b = self._batch_row(con, batch_id)
            if b["status"] != BatchState.PROPOSED:
                raise InvalidState(f"batch {batch_id} is {b['status']}; only a proposed batch "
                                   "can be edited")
            cur = con.execute("UPDATE batch_candidates SET selected=? WHERE batch_id=? AND key=?",
                              (int(bool(selected)), int(batch_id), key))
            if not cur.rowcount:
                raise StoreError(f"no candidate with key {key!r} in batch {batch_id}")
            self._audit(con, b["campaign_id"], actor, "select" if selected else "deselect",
                        {"batch_id": int(batch_id), "key": key})

    def include_candidate(self, batch_id: int, key: str, selected: bool, *, actor: str) -> None:
        """(De)select a candidate of a proposed batch in one transaction; selecting a candidate
        that the campaign rejected restores it first (audited as ``restore`` and ``select``)."""
        with self.transaction():
            if selected:
                self.restore(self.get_batch(batch_id)["campaign_id"], key, actor=actor)
            self.set_candidate_selected(batch_id, key, selected, actor=actor)

    def reject_candidate(self, batch_id: int, key: str, *, reason: str = "",
                         actor: str) -> None:
        """Reject a candidate of a proposed batch in one transaction: excluded from this and
        future batches (restorable, see ``restore``) and deselected here."""
        with self.transaction():
            with self._read() as con:
                row = con.execute("SELECT psmiles FROM batch_candidates WHERE batch_id=? AND "
                                  "key=?", (int(batch_id), key)).fetchone()
            if row is None:
                raise StoreError(f"no candidate with key {key!r} in batch {batch_id}")
            self.reject(self.get_batch(batch_id)["campaign_id"], key, row[0], reason=reason,
                        actor=actor)
            self.set_candidate_selected(batch_id, key, False, actor=actor)

    def add_batch_candidate(self, batch_id: int, candidate: Mapping[str, Any], *,
                            actor: str) -> int:
        """Add a manually chosen candidate (source ``manual``) to a proposed batch."""
        with self._tx() as con:
            b = self._batch_row(con, batch_id)
            if b["status"] != BatchState.PROPOSED:
                raise InvalidState(f"batch {batch_id} is {b['status']}; only a proposed batch "
                                   "can be edited")
            rank = con.execute("SELECT COALESCE(MAX(rank)+1, 0) FROM batch_candidates WHERE "
                               "batch_id=?", (int(batch_id),)).fetchone()[0]
            c = {"source": HAND_ADDED, **dict(candidate)}
            cand_id = self._insert_candidate(con, int(batch_id), int(rank), c)
            self._audit(con, b["campaign_id"], actor, "add_candidate",
                        {"batch_id": int(batch_id), "psmiles": c["psmiles"], "key": c["key"]})
        return cand_id

    def add_batch_candidates(self, batch_id: int, candidates: Iterable[Mapping[str, Any]], *,
                             joint_value: float | None = None,
                             joint_value_se: float | None = None, actor: str) -> list[int]:
        """Add hand-chosen candidates (source :data:`HAND_ADDED` unless given; selected) to a
        proposed batch, all or none, in one transaction; returns their candidate ids.

        Each candidate is a dict as for :meth:`create_batch` (psmiles, key, name?, pool_id?,
        pred_mean, pred_std, ehvi, p_beyond).  Refused with a :class:`StoreError` naming the
        polymer, nothing changed: a batch that is not proposed (:class:`InvalidState`), an
        empty list, a key twice in the list, a key already in the batch, a key with a queued or
        running calculation.  A key the campaign rejected is restored (audited ``restore``): a
        person chose it again.  ``joint_value`` (with ``joint_value_se``), when given, replaces
        the batch's joint value in the same transaction (the caller's expected gain of the
        batch with the new candidates, :func:`core.campaign.cycle.batch_joint_gain`).
        Audited as ``add_candidates``."""
        cands = [{"source": HAND_ADDED, **dict(c), "selected": True} for c in candidates]
        if not cands:
            raise StoreError("no candidate to add")
        with self._tx() as con:
            b = self._batch_row(con, batch_id)
            bid, cid = int(batch_id), int(b["campaign_id"])
            if b["status"] != BatchState.PROPOSED:
                raise InvalidState(f"batch {bid} is {b['status']}; only a proposed batch "
                                   "can be edited")
            seen: set[str] = set()
            for c in cands:
                if not c.get("psmiles") or not c.get("key"):
                    raise StoreError(f"batch candidate needs psmiles and key: {c!r}")
                if c["key"] in seen:
                    raise StoreError(f"{c['psmiles']!r} is given twice")
                seen.add(c["key"])
            there = dict(con.execute("SELECT key, psmiles FROM batch_candidates WHERE batch_id=?",
                                     (bid,)).fetchall())
            pending = {r[0]: r[1] for r in con.execute(
                "SELECT key, id FROM calculations WHERE campaign_id=? AND status IN (?,?)",
                (cid, CalcState.QUEUED.value, CalcState.RUNNING.value))}
            for c in cands:
                if c["key"] in there:
                    raise StoreError(f"{c['psmiles']!r} is already in batch {bid}")
                if c["key"] in pending:
                    raise StoreError(f"{c['psmiles']!r} is already being calculated "
                                     f"(calculation {pending[c['key']]})")
            rank = int(con.execute("SELECT COALESCE(MAX(rank)+1, 0) FROM batch_candidates "
                                   "WHERE batch_id=?", (bid,)).fetchone()[0])
            rejected = self._rejected_keys(con, cid)
            ids = []
            for k, c in enumerate(cands):
                if c["key"] in rejected:
                    self.restore(cid, c["key"], actor=actor)
                ids.append(self._insert_candidate(con, bid, rank + k, c))
            if joint_value is not None:
                self._set_joint_value(con, b, joint_value, joint_value_se)
            self._audit(con, cid, actor, "add_candidates",
                        {"batch_id": bid, "keys": [c["key"] for c in cands],
                         "psmiles": [c["psmiles"] for c in cands],
                         "joint_value": _opt_float(joint_value)})
        return ids

    def set_batch_joint_value(self, batch_id: int, joint_value: float,
                              joint_value_se: float | None = None) -> None:
        """Replace the joint value (expected hypervolume gain of the selected candidates,
        n_D × ν_D units) of a proposed batch after an edit, and its Monte-Carlo standard error
        (``info["expected_gain_se"]``); :class:`InvalidState` for a batch that is not proposed
        (its value is the one it was approved with).  A derived number: not audited."""
        with self._tx() as con:
            b = self._batch_row(con, batch_id)
            if b["status"] != BatchState.PROPOSED:
                raise InvalidState(f"batch {batch_id} is {b['status']}; only a proposed batch "
                                   "can be edited")
            self._set_joint_value(con, b, joint_value, joint_value_se)

    @staticmethod
    def _set_joint_value(con: sqlite3.Connection, b: sqlite3.Row, joint_value: float,
                         joint_value_se: float | None) -> None:
        info = _loads(b["info"]) or {}
        info["expected_gain_se"] = _opt_float(joint_value_se)
        info["joint_value_updated_at"] = utcnow()
        con.execute("UPDATE batches SET joint_value=?, info=? WHERE id=?",
                    (_opt_float(joint_value), _dumps(info), int(b["id"])))

    def _batch_row(self, con: sqlite3.Connection, batch_id: int) -> sqlite3.Row:
        row = con.execute("SELECT * FROM batches WHERE id=?", (int(batch_id),)).fetchone()
        if row is None:
            raise BatchNotFound(f"no batch {batch_id}")
        return row

    def approve_batch(self, batch_id: int, *, actor: str) -> dict:
        """Approve a proposed batch and queue one calculation per selected, non-rejected candidate.

        Idempotent: only the first approval changes anything.  Returns ``{"approved": bool,
        "batch_id", "n_calculations", "reason"}``.
        """
        now = utcnow()
        with self._tx() as con:
            b = self._batch_row(con, batch_id)
            cid = int(b["campaign_id"])
            cfg = self._config(con, cid)
            cur = con.execute(f"UPDATE batches SET status='{BatchState.APPROVED}', approved_at=?, approved_by=?"
                              f" WHERE id=? AND status='{BatchState.PROPOSED}'", (now, actor, int(batch_id)))
            if cur.rowcount == 0:
                return {"approved": False, "batch_id": int(batch_id), "n_calculations": 0,  # not vocabulary: key
                        "reason": f"batch {batch_id} is already {b['status']}"}
            rej = self._rejected_keys(con, cid)
            cands = [c for c in con.execute("SELECT * FROM batch_candidates WHERE batch_id=? AND "
                                            "selected=1 ORDER BY rank", (int(batch_id),))
                     if c["key"] not in rej]
            if not cands:
                raise StoreError(f"batch {batch_id} has no selected candidate; select at least "
                                 "one before approving")
            for c in cands:
                con.execute("INSERT INTO calculations(campaign_id, batch_id, cycle, psmiles, key, "
                            "name, preset, status, max_attempts, created_at, updated_at) "
                            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                            (cid, int(batch_id), int(b["cycle"]), c["psmiles"], c["key"],
                             c["name"], cfg["preset"], CalcState.QUEUED, int(cfg["max_attempts"]),
                             now, now))
            con.execute(f"UPDATE cycles SET status='{CycleState.RUNNING}' WHERE campaign_id=? AND number=?",
                        (cid, int(b["cycle"])))
            self._audit(con, cid, actor, "approve_batch",
                        {"batch_id": int(batch_id), "cycle": int(b["cycle"]),
                         "keys": [c["key"] for c in cands], "preset": cfg["preset"]})
        return {"approved": True, "batch_id": int(batch_id), "n_calculations": len(cands),  # not vocabulary: key
                "reason": ""}

    def cycles(self, campaign: Any) -> pd.DataFrame:
        """Cycles: number, status, hypervolume, n_beyond, n_observations, started/finished."""
        with self._read() as con:
            cid = self._cid(con, campaign)
            return pd.read_sql_query(
                "SELECT number, status, hypervolume, n_beyond, n_observations, started_at, "
                "finished_at FROM cycles WHERE campaign_id=? ORDER BY number", con, params=(cid,))

    def record_cycle_metrics(self, campaign: Any, cycle: int, *, hypervolume: float | None,
                             n_beyond: int | None, n_observations: int | None = None) -> None:
        """Store the hypervolume / beyond-line count measured after ``cycle``."""
        with self._tx() as con:
            cid = self._cid(con, campaign)
            con.execute("UPDATE cycles SET hypervolume=?, n_beyond=?, n_observations=? WHERE "
                        "campaign_id=? AND number=?",
                        (_opt_float(hypervolume), None if n_beyond is None else int(n_beyond),
                         None if n_observations is None else int(n_observations), cid, int(cycle)))

    def finish_batch_if_complete(self, batch_id: int) -> str | None:
        """If every calculation of an approved/running batch is terminal, close batch and cycle.

        Returns the new batch status (``done`` if any calculation succeeded, else ``failed``) or
        None when calculations are still pending or the batch was already closed.
        """
        now = utcnow()
        with self._tx() as con:
            b = self._batch_row(con, batch_id)
            if b["status"] not in (BatchState.APPROVED, BatchState.RUNNING):
                return None
            counts = dict(con.execute("SELECT status, COUNT(*) FROM calculations WHERE "
                                      "batch_id=? GROUP BY status", (int(batch_id),)).fetchall())
            if counts.get(CalcState.QUEUED, 0) or counts.get(CalcState.RUNNING, 0):
                return None
            status = BatchState.DONE if counts.get(CalcState.DONE, 0) else BatchState.FAILED
            con.execute("UPDATE batches SET status=?, finished_at=? WHERE id=?",
                        (status, now, int(batch_id)))
            con.execute(f"UPDATE cycles SET status='{CycleState.DONE}', finished_at=? WHERE campaign_id=? AND "
                        "number=?", (now, b["campaign_id"], b["cycle"]))
            self._audit(con, b["campaign_id"], "runner", "batch_" + status,
                        {"batch_id": int(batch_id), "counts": counts})
        return status

    # ------------------------------------------------------------------ calculations
