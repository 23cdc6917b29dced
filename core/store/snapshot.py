"""Whole-campaign snapshots: every row of one campaign read as it is stored, and written back
into a store under new ids in one transaction (what ``core.campaign.bundle`` ships).

:func:`read_campaign_rows` returns plain JSON-ready dicts per table (JSON columns decoded, the
latest pool-prediction blob as bytes); :func:`insert_campaign_rows` recreates them under a
(possibly new) campaign name: new row ids, every reference between the rows remapped (batch →
candidates and calculations, calculation → observation, ids named in audit details), states,
timestamps and numbers kept as they were.  Nothing is queued, proposed or recomputed, and no
runner row is written.  Any bad row raises :class:`StoreError` naming table and row, and
nothing is left behind (one transaction).
"""
from __future__ import annotations

import json
import sqlite3
from typing import Any, Mapping

from core.config import CampaignConfig
from core.store.db import Database, _dumps
from core.store.errors import CampaignExists, StoreError

__all__ = ["SNAPSHOT_TABLES", "JSON_COLUMNS", "OMITTED_COLUMNS", "read_campaign_rows",
           "insert_campaign_rows", "audit_entries"]

#: the per-campaign tables a snapshot carries, in insertion order (children after parents)
SNAPSHOT_TABLES: tuple[str, ...] = ("cycles", "batches", "batch_candidates", "calculations",
                                    "observations", "pool_extra", "rejections", "audit")
#: columns stored as JSON text (decoded in a snapshot)
JSON_COLUMNS: dict[str, tuple[str, ...]] = {
    "batches": ("info",), "batch_candidates": ("pred_mean", "pred_std"),
    "calculations": ("result",), "observations": ("values", "result", "provenance"),
    "audit": ("details",)}
#: columns left out: paths on the machine that ran the calculations (work dir, log file)
OMITTED_COLUMNS: dict[str, tuple[str, ...]] = {"calculations": ("workdir", "log_path")}
#: audit-detail keys that hold a row id of a snapshot table, and which table's
_AUDIT_ID_KEYS: dict[str, str] = {"batch_id": "batches", "calculation_id": "calculations",
                                  "calculation_ids": "calculations"}


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in con.execute(f"PRAGMA table_info({table})")]


def _decode(table: str, row: Mapping[str, Any]) -> dict:
    d = dict(row)
    d.pop("campaign_id", None)
    for c in OMITTED_COLUMNS.get(table, ()):
        d.pop(c, None)
    for c in JSON_COLUMNS.get(table, ()):
        if d.get(c) is not None:
            d[c] = json.loads(d[c])
    return d


def read_campaign_rows(store: Database, campaign: Any) -> dict[str, Any]:
    """Every stored row of ``campaign``: ``campaign`` (name, config, created_at, updated_at),
    one list of row dicts per table of :data:`SNAPSHOT_TABLES` (ids as stored, ordered by id;
    ``batch_candidates`` of this campaign's batches only) and ``predictions`` (the latest
    pool-prediction row: cycle, created_at, data as bytes; None when there is none).  Runner
    heartbeats and the store-wide descriptor cache are not campaign data and are left out."""
    with store._read() as con:
        cid = store._cid(con, campaign)
        camp = dict(con.execute("SELECT name, config, created_at, updated_at FROM campaigns "
                                "WHERE id=?", (cid,)).fetchone())
        camp["config"] = json.loads(camp["config"])
        out: dict[str, Any] = {"campaign": camp}
        for table in SNAPSHOT_TABLES:
            if table == "batch_candidates":
                q = ("SELECT k.* FROM batch_candidates k JOIN batches b ON b.id=k.batch_id "
                     "WHERE b.campaign_id=? ORDER BY k.id")
            elif table == "cycles":
                q = "SELECT * FROM cycles WHERE campaign_id=? ORDER BY number"
            else:
                q = f"SELECT * FROM {table} WHERE campaign_id=? ORDER BY id"
            out[table] = [_decode(table, r) for r in con.execute(q, (cid,))]
        p = con.execute("SELECT cycle, created_at, data FROM predictions WHERE campaign_id=? "
                        "ORDER BY id DESC LIMIT 1", (cid,)).fetchone()
        out["predictions"] = None if p is None else {"cycle": int(p["cycle"]),
                                                     "created_at": p["created_at"],
                                                     "data": bytes(p["data"])}
    return out


def insert_campaign_rows(store: Database, rows: Mapping[str, Any], *, name: str | None = None,
                         audit_entry: tuple[str, str, Any] | None = None) -> int:
    """Recreate a campaign from :func:`read_campaign_rows`-shaped ``rows`` under ``name``
    (default: the snapshot's own); returns the new campaign id.

    One transaction: a name that exists raises :class:`CampaignExists`, a row that does not fit
    the schema (unknown or missing column, a reference to a row the snapshot lacks, a bad
    config) raises :class:`StoreError` naming it, and nothing is written.  ``audit_entry``
    (actor, action, details) is appended to the recreated audit trail in the same transaction.
    """
    from core.store.campaigns import _check_name  # noqa: PLC0415

    camp = rows.get("campaign")
    if not isinstance(camp, Mapping):
        raise StoreError("snapshot has no campaign record")
    name = _check_name(name if name is not None else camp.get("name"))
    try:
        cfg = CampaignConfig.from_dict(camp.get("config")).to_dict()
    except (TypeError, ValueError) as exc:
        raise StoreError(f"snapshot config: {exc}") from None
    ids: dict[str, dict[int, int]] = {t: {} for t in SNAPSHOT_TABLES}
    with store._tx() as con:
        if con.execute("SELECT 1 FROM campaigns WHERE name=?", (name,)).fetchone():
            raise CampaignExists(f"a campaign named {name!r} already exists in {store.path}")
        try:
            cur = con.execute("INSERT INTO campaigns(name, config, created_at, updated_at) "
                              "VALUES (?,?,?,?)", (name, _dumps(cfg), camp["created_at"],
                                                   camp["updated_at"]))
        except (KeyError, sqlite3.Error) as exc:
            raise StoreError(f"snapshot campaign record: {type(exc).__name__}: {exc}") from None
        cid = int(cur.lastrowid)
        for table in SNAPSHOT_TABLES:
            cols = set(_columns(con, table)) - {"id", "campaign_id"}
            recs = rows.get(table) or []
            if not isinstance(recs, list):
                raise StoreError(f"snapshot {table}: expected a list of rows")
            for i, rec in enumerate(recs):
                _insert_row(con, table, cols, cid, i, rec, ids)
        p = rows.get("predictions")
        if p is not None:
            try:
                con.execute("INSERT INTO predictions(campaign_id, cycle, created_at, data) "
                            "VALUES (?,?,?,?)", (cid, int(p["cycle"]), p["created_at"],
                                                 bytes(p["data"])))
            except (KeyError, TypeError, ValueError, sqlite3.Error) as exc:
                raise StoreError(f"snapshot predictions: {type(exc).__name__}: {exc}") from None
        if audit_entry is not None:
            actor, action, details = audit_entry
            store._audit(con, cid, actor, action, details)
    return cid


def _insert_row(con: sqlite3.Connection, table: str, cols: set[str], cid: int, i: int,
                rec: Any, ids: dict[str, dict[int, int]]) -> None:
    """Insert one snapshot row of ``table`` with its references remapped; record its new id."""
    where = f"snapshot {table} row {i}"
    if not isinstance(rec, Mapping):
        raise StoreError(f"{where}: expected an object")
    d = dict(rec)
    old_id = d.pop("id", None)
    d.pop("campaign_id", None)
    unknown = sorted(set(d) - cols)
    if unknown:
        raise StoreError(f"{where}: unknown column(s) {', '.join(unknown)}")
    refs = {"batch_candidates": {"batch_id": "batches"},
            "calculations": {"batch_id": "batches"},
            "observations": {"calculation_id": "calculations"}}.get(table, {})
    for col, parent in refs.items():
        if d.get(col) is not None:
            try:
                d[col] = ids[parent][int(d[col])]
            except (KeyError, TypeError, ValueError):
                raise StoreError(f"{where}: {col} {d[col]!r} is not a row of the snapshot's "
                                 f"{parent}") from None
        elif table == "batch_candidates":
            raise StoreError(f"{where}: no batch_id")
    if table == "audit" and isinstance(d.get("details"), dict):
        d["details"] = _remap_details(d["details"], ids, d.get("action"))
    for c in JSON_COLUMNS.get(table, ()):
        if c in d:
            d[c] = _dumps(d[c])
    if table != "batch_candidates":
        d["campaign_id"] = cid
    names = list(d)
    try:
        cur = con.execute(f"INSERT INTO {table}({', '.join(_quote(n) for n in names)}) VALUES "
                          f"({', '.join('?' * len(names))})", [d[n] for n in names])
    except (sqlite3.Error, TypeError, ValueError) as exc:
        raise StoreError(f"{where}: {type(exc).__name__}: {exc}") from None
    if old_id is not None:
        try:
            ids[table][int(old_id)] = int(cur.lastrowid)
        except (TypeError, ValueError):
            raise StoreError(f"{where}: id {old_id!r} is not an integer") from None


def _quote(column: str) -> str:
    return f'"{column}"'


def _remap_details(details: dict, ids: dict[str, dict[int, int]], action: Any) -> dict:
    """Audit details with the row ids they name (batch_id, calculation_id(s), the ``id`` of an
    added observation) mapped to the new rows; an id of a row the snapshot does not hold is
    left as it was."""
    out = dict(details)
    keys = dict(_AUDIT_ID_KEYS)
    if action == "add_observation":
        keys["id"] = "observations"
    for key, table in keys.items():
        v = out.get(key)
        m = ids[table]
        if isinstance(v, int) and not isinstance(v, bool):
            out[key] = m.get(v, v)
        elif isinstance(v, list):
            out[key] = [m.get(x, x) if isinstance(x, int) and not isinstance(x, bool) else x
                        for x in v]
    return out


def audit_entries(store: Database, campaign: Any, action: str) -> list[dict]:
    """The campaign's audit entries of one ``action``, oldest first: id, ts, actor, details
    (decoded)."""
    with store._read() as con:
        cid = store._cid(con, campaign)
        rows = con.execute("SELECT id, ts, actor, details FROM audit WHERE campaign_id=? AND "
                           "action=? ORDER BY id", (cid, action)).fetchall()
    return [{**dict(r), "details": None if r["details"] is None else json.loads(r["details"])}
            for r in rows]
