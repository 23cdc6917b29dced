"""SQLite store: the single source of truth of every campaign (WAL mode, short transactions).

Every state change is one ``BEGIN IMMEDIATE … COMMIT`` transaction (one connection per thread and
process, kept open: closing the last connection of a WAL file checkpoints and fsyncs, 7 ms), so
the dashboard (any number of Streamlit threads/tabs) and the runner process can share one file
without "database is locked" races: SQLite's WAL lets readers proceed while one writer commits,
writers queue on ``busy_timeout`` (30 s) and no transaction is held open across user interaction.
Keys: ``key`` is :func:`core.polymer.polymer_key` of the polymer SMILES everywhere.
The schema is versioned with ``PRAGMA user_version``; :data:`MIGRATIONS` upgrades older files.

State machines
--------------
- batch:        ``proposed`` → ``approved`` → ``running`` → ``done`` | ``failed``;
                a proposed batch replaced by a re-proposal becomes ``superseded``.
- calculation:  ``queued`` → ``running`` → ``done`` | ``failed`` | ``cancelled``;
                a running calculation whose worker/job died goes back to ``queued`` while
                ``attempt < max_attempts``; failed/cancelled ones can be re-queued by
                :meth:`Store.request_retry` (``resume`` keeps the work dir, ``rerun`` starts a new one).
- cycle:        ``proposed`` (batch waiting for approval) → ``running`` → ``done``.
  Cycle 0 holds the initial observations; cycle *k* ≥ 1 is the *k*-th batch.

Public API (``Store(path)``; *campaign* arguments accept the campaign name, its integer id or the
dict returned by :meth:`Store.get_campaign`).  Lists come back as pandas DataFrames the dashboard
can show directly, single items as plain dicts; JSON columns are decoded.

Campaigns
    ``create_campaign(name, config=None, *, actor="cli") -> dict``
    ``get_campaign(campaign) -> dict``  keys id, name, config (dict, see :class:`CampaignConfig`),
    created_at, updated_at
    ``list_campaigns() -> DataFrame``
    ``update_config(campaign, changes: dict, *, actor) -> dict``  (validated; audited)
    ``campaign_config(campaign) -> CampaignConfig``
Observations (training data; values in original units: n_D dimensionless, abbe_number dimensionless)
    ``add_observation(campaign, psmiles, values, *, source, key=None, name=None, cycle=0,
    calculation_id=None, result=None, provenance=None, actor="cli") -> int``
    ``observations(campaign) -> DataFrame``  columns id, name, psmiles, key, <one column per
    objective>, source, cycle, calculation_id, created_at, result (dict), provenance (dict)
    ``observed_keys(campaign) -> set[str]``
Extra pool candidates (user uploads / drawn SMILES)
    ``add_pool_candidates(campaign, rows, *, actor) -> int`` rows: dicts psmiles, key, name, source
    ``pool_candidates(campaign) -> DataFrame``
Rejected candidates (excluded from future batches, restorable; rejected ≠ failed)
    ``reject(campaign, key, psmiles, *, reason="", actor)``, ``restore(campaign, key, *, actor)``
    ``rejected(campaign, *, include_restored=False) -> DataFrame``, ``rejected_keys(campaign) -> set``
    ``pending_keys(campaign) -> set`` (queued or running calculations)
Cycles and batches
    ``create_batch(campaign, candidates, *, strategy, joint_value=None, info=None,
    actor="system") -> dict``  candidates: dicts psmiles, key, name?, pool_id?, source?,
    pred_mean {objective: value}, pred_std {objective: value}, ehvi, p_beyond, selected (default
    True).  Re-proposing while a batch waits for approval supersedes it (same cycle number).
    ``get_batch(batch_id) -> dict``, ``current_batch(campaign) -> dict | None`` (latest
    non-superseded), ``batches(campaign) -> DataFrame``
    ``batch_candidates(batch_id) -> DataFrame``  columns id, batch_id, rank, psmiles, key, name,
    pool_id, source, pred_mean_<obj>, pred_std_<obj>, ehvi, p_beyond, selected, rejected
    ``set_candidate_selected(batch_id, key, selected, *, actor)``
    ``add_batch_candidate(batch_id, candidate: dict, *, actor) -> int``  (manual addition)
    ``approve_batch(batch_id, *, actor) -> dict``  **idempotent**: the conditional
    ``UPDATE … WHERE status='proposed'`` lets exactly one of two concurrent approvals create the
    calculations; the other gets ``{"approved": False, "reason": ...}``.  The calculations table
    also has ``UNIQUE(batch_id, key)``.
    ``cycles(campaign) -> DataFrame``; ``record_cycle_metrics(campaign, cycle, *, hypervolume,
    n_beyond)``
Calculations
    ``calculations(campaign, *, status=None, batch_id=None) -> DataFrame``  columns id,
    batch_id, cycle, psmiles, key, name, preset, status, step, message, attempt, max_attempts,
    interruptions, reruns, worker, dask_key, job_id, log_path, workdir, result (dict),
    error_type, error_message, cancel_requested, created_at, started_at, finished_at,
    updated_at, elapsed_s (s)
    ``get_calculation(calc_id) -> dict``
    ``request_cancel(calc_id, *, actor) -> str``  queued → cancelled now; running → flagged, the
    runner kills its processes within seconds and marks it cancelled
    ``request_retry(calc_id, *, mode="resume"|"rerun", actor) -> str``
    runner side: ``start_attempt``, ``update_progress``, ``complete_calculation`` (observation
    inserted in the same transaction, at most once: ``UNIQUE(observations.calculation_id)``),
    ``fail_attempt``, ``mark_cancelled``, ``requeue_interrupted``, ``requeue_unstarted``,
    ``finish_batch_if_complete``
Runner heartbeat
    ``heartbeat(campaign, *, pid, host, status="running", info=None)``
    ``runner_status(campaign, *, stale_after_s=30.0) -> dict | None``  keys pid, host, status
    (starting | running | stopped | error), started_at, heartbeat_at, age_s, alive, info (dict:
    profile, workers, jobs, queued, running, cluster_error, error)
Audit log
    ``log(campaign, action, *, actor, details=None)``; ``audit_log(campaign, limit=500) -> DataFrame``
Pool predictions of the latest proposal (for the pool page)
    ``save_predictions(campaign, cycle, frame)``; ``latest_predictions(campaign) -> DataFrame | None``
Descriptor cache (observations/uploads outside the shipped pool)
    ``cached_descriptors(keys) -> dict[str, np.ndarray]``; ``cache_descriptors(mapping)``
Misc: ``schema_version() -> int``; ``store_id`` (the database's persistent random id); ``close()`` (this thread's connection);
``transaction()`` (context manager: the calls of this thread inside it are one all-or-nothing
transaction, nested writes become savepoints); ``read_only`` (bool).

Errors
------
Every error is a :class:`StoreError` (a ``ValueError``) with a one-line message.  A database that
cannot be used — not an SQLite file, damaged, a directory, read-only for a change, disk full,
locked for longer than ``timeout_s`` — raises :class:`StoreUnavailable` naming the file, from
the constructor or from the failing call (whose transaction is rolled back).  A file this
process may not write (or in a directory it may not write) is opened read-only: reads work,
changes raise :class:`StoreUnavailable`.
"""
from __future__ import annotations

import io
import json
import math
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd

from core.config import (BatchState, CalcState, CampaignConfig, ClusterKind, CycleState,
                        InvalidConfig, RunnerState)
from core.errors import StoreError

__all__ = [
    "Store", "CampaignConfig", "StoreError", "StoreUnavailable", "CampaignNotFound",
    "CampaignExists",
    "BatchNotFound", "CalculationNotFound", "InvalidConfig", "InvalidState", "SCHEMA_VERSION",
    "utcnow",
]



class StoreUnavailable(StoreError):
    """The database file cannot be opened, read or written: not an SQLite file, damaged, a
    directory, read-only, or the disk is full.  The message names the file and says what to
    do; nothing was changed by the failed operation (its transaction was rolled back)."""


class CampaignNotFound(StoreError):
    """No campaign with this name or id."""


class CampaignExists(StoreError):
    """A campaign with this name already exists."""


class BatchNotFound(StoreError):
    """No batch with this id."""


class CalculationNotFound(StoreError):
    """No calculation with this id."""


class InvalidState(StoreError):
    """The requested transition is not allowed from the current state."""


def utcnow() -> str:
    """Current UTC time as ISO-8601 text with milliseconds (e.g. ``2026-01-01T12:00:00.000+00:00``)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _dumps(obj: Any) -> str | None:
    if obj is None:
        return None
    return json.dumps(obj, default=_json_default, allow_nan=True, sort_keys=True)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# --------------------------------------------------------------------------- schema
MIGRATIONS: list[str] = [
    # v1
    """
    CREATE TABLE campaigns (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        config TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE cycles (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        status TEXT NOT NULL,
        hypervolume REAL,
        n_beyond INTEGER,
        n_observations INTEGER,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        UNIQUE(campaign_id, number)
    );
    CREATE TABLE batches (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        cycle INTEGER NOT NULL,
        status TEXT NOT NULL,
        strategy TEXT,
        joint_value REAL,
        info TEXT,
        created_at TEXT NOT NULL,
        approved_at TEXT,
        approved_by TEXT,
        finished_at TEXT
    );
    CREATE INDEX ix_batches_campaign ON batches(campaign_id, cycle);
    CREATE TABLE batch_candidates (
        id INTEGER PRIMARY KEY,
        batch_id INTEGER NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
        rank INTEGER NOT NULL,
        psmiles TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT,
        pool_id TEXT,
        source TEXT NOT NULL DEFAULT 'acquisition',
        pred_mean TEXT,
        pred_std TEXT,
        ehvi REAL,
        p_beyond REAL,
        selected INTEGER NOT NULL DEFAULT 1,
        UNIQUE(batch_id, key)
    );
    CREATE TABLE calculations (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        batch_id INTEGER REFERENCES batches(id),
        cycle INTEGER,
        psmiles TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT,
        preset TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'queued',
        step TEXT,
        message TEXT,
        attempt INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL DEFAULT 3,
        interruptions INTEGER NOT NULL DEFAULT 0,
        reruns INTEGER NOT NULL DEFAULT 0,
        worker TEXT,
        dask_key TEXT,
        job_id TEXT,
        log_path TEXT,
        workdir TEXT,
        result TEXT,
        error_type TEXT,
        error_message TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        updated_at TEXT NOT NULL,
        UNIQUE(batch_id, key)
    );
    CREATE INDEX ix_calc_campaign_status ON calculations(campaign_id, status);
    CREATE TABLE observations (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        psmiles TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT,
        "values" TEXT NOT NULL,
        source TEXT NOT NULL,
        cycle INTEGER NOT NULL DEFAULT 0,
        calculation_id INTEGER UNIQUE REFERENCES calculations(id),
        result TEXT,
        provenance TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX ix_obs_campaign ON observations(campaign_id);
    CREATE TABLE pool_extra (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        psmiles TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT,
        source TEXT,
        created_at TEXT NOT NULL,
        UNIQUE(campaign_id, key)
    );
    CREATE TABLE rejections (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        psmiles TEXT,
        reason TEXT,
        actor TEXT,
        created_at TEXT NOT NULL,
        restored_at TEXT,
        restored_by TEXT
    );
    CREATE INDEX ix_rej_campaign ON rejections(campaign_id, key);
    CREATE TABLE runners (
        campaign_id INTEGER PRIMARY KEY REFERENCES campaigns(id) ON DELETE CASCADE,
        pid INTEGER,
        host TEXT,
        status TEXT,
        started_at TEXT,
        heartbeat_at TEXT,
        heartbeat_epoch REAL,
        info TEXT
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER REFERENCES campaigns(id) ON DELETE CASCADE,
        ts TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        details TEXT
    );
    CREATE INDEX ix_audit_campaign ON audit(campaign_id, id);
    CREATE TABLE predictions (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        cycle INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        data BLOB NOT NULL
    );
    CREATE TABLE descriptors (
        key TEXT PRIMARY KEY,
        vector BLOB NOT NULL
    );
    """,
    # v2: the store's own persistent random id (keys runner locks and work dirs, so two
    # databases in one folder, or one deleted and recreated at the same path, never share them)
    """
    CREATE TABLE store_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    INSERT INTO store_meta(key, value) VALUES ('store_id', lower(hex(randomblob(8))));
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)

CampaignRef = "str | int | Mapping[str, Any]"


class Store:
    """Typed access to one SQLite database file (created and migrated on first use)."""

    def __init__(self, path: str | Path, *, timeout_s: float = 30.0,
                 read_only: bool | None = None) -> None:
        """Open (create and migrate when needed) the database file ``path``.

        ``read_only=None`` (default) opens read-only when this process may not write the file
        or its directory: then reads work (``mode=ro``; ``immutable=1`` as well when the
        directory is not writable and no write-ahead log is pending, since WAL's ``-shm``
        index cannot be created there) and every change raises :class:`StoreUnavailable`.
        Raises :class:`StoreUnavailable` (one line naming the file) when the path is a
        directory, not an SQLite database, damaged, or cannot be created.
        """
        self.path = Path(path).expanduser().resolve()
        self.timeout_s = float(timeout_s)
        self._local = threading.local()
        if self.path.is_dir():
            raise StoreUnavailable(
                f"database {self.path} is a directory, not a file: point OPTIPOLY_DB / --db at "
                f"a database file such as {self.path / 'optipoly.db'}")
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(
                    f"cannot create directory {exc.filename or self.path.parent} for database "
                    f"{self.path}: {exc.strerror or exc}") from exc
        if read_only is None:
            read_only = not _writable(self.path)
        self.read_only = bool(read_only)
        if self.read_only and not self.path.is_file():
            raise StoreUnavailable(
                f"database {self.path} does not exist and cannot be created there: "
                f"{self.path.parent} is read-only")
        self._migrate()

    # ------------------------------------------------------------------ plumbing
    def _connect(self) -> sqlite3.Connection:
        """A new connection; read-only stores use ``mode=ro`` (+ ``immutable=1``, see
        :meth:`__init__`).  The schema is read at once, so a file that is not an SQLite
        database or is damaged fails here with :class:`StoreUnavailable`."""
        con = None
        try:
            if self.read_only:
                uri = self.path.as_uri() + "?mode=ro"
                if not _writable_dir(self.path.parent) and not _wal_pending(self.path):
                    uri += "&immutable=1"
                con = sqlite3.connect(uri, uri=True, timeout=self.timeout_s,
                                      isolation_level=None, check_same_thread=False)
            else:
                con = sqlite3.connect(str(self.path), timeout=self.timeout_s,
                                      isolation_level=None, check_same_thread=False)
            con.row_factory = sqlite3.Row
            con.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
            con.execute("PRAGMA foreign_keys=ON")
            if not self.read_only:
                con.execute("PRAGMA synchronous=NORMAL")
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            if con is not None:
                con.close()
            raise self._unavailable(exc) from exc
        return con

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        """A one-line :class:`StoreUnavailable` naming the file for an SQLite error."""
        msg = " ".join(str(exc).split())
        low = msg.lower()
        p = self.path
        if "not a database" in low:
            text = (f"{p} is not an SQLite database (wrong file, or damaged): point "
                    "OPTIPOLY_DB / --db at the campaign database, or move this file away")
        elif "malformed" in low or "corrupt" in low:
            text = (f"database {p} is damaged ({msg}): restore it from a backup, or point "
                    "OPTIPOLY_DB / --db at another file")
        elif "full" in low or "disk i/o" in low:
            text = (f"cannot write database {p}: {msg} (the disk is full or a file-size limit "
                    "was reached?); nothing was changed, free some space and retry")
        elif "readonly" in low or "read-only" in low:
            text = (f"database {p} is read-only (no write permission on it or on "
                    f"{p.parent}): read commands work, changes need write access")
        elif "locked" in low or "busy" in low:
            text = (f"database {p} stayed locked by another process for {self.timeout_s:.0f} s "
                    f"({msg}); retry")
        elif "unable to open" in low:
            text = (f"cannot open database {p} ({msg}): check that the file and its directory "
                    "exist and are readable")
        else:
            text = f"database {p}: {msg}"
        return StoreUnavailable(text)

    def _translate(self, exc: BaseException) -> StoreUnavailable | None:
        """:class:`StoreUnavailable` for a storage failure (file unreadable, damaged, full,
        read-only, locked), else None (constraint violations and programming errors stay)."""
        cause = exc
        if isinstance(exc, pd.errors.DatabaseError) and isinstance(exc.__cause__, sqlite3.Error):
            cause = exc.__cause__  # pandas.read_sql wraps the sqlite3 error
        if isinstance(cause, sqlite3.DatabaseError) and not isinstance(
                cause, (sqlite3.IntegrityError, sqlite3.ProgrammingError)):
            return self._unavailable(cause)
        return None

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (one per thread and process; closing the last connection
        of a WAL database checkpoints and fsyncs, so connections are kept open)."""
        con = getattr(self._local, "con", None)
        if con is None or self._local.pid != os.getpid():
            con = self._connect()
            self._local.con, self._local.pid, self._local.depth = con, os.getpid(), 0
        return con

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        con = getattr(self._local, "con", None)
        if con is not None and self._local.pid == os.getpid():
            con.close()
        self._local.con = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Make every store call of this thread inside the block one all-or-nothing
        transaction (e.g. a campaign, its initial observations and its first batch).

        Nested writes become savepoints: a step that raises is undone alone (and the caller
        may carry on); an exception leaving the block undoes everything.  The write lock is
        held for the whole block (other writers wait up to ``timeout_s``), so keep it short.
        """
        with self._tx():
            yield

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction (``BEGIN IMMEDIATE``: the write lock is taken up front);
        inside :meth:`transaction` a savepoint.  Storage failures (disk full, read-only,
        locked too long …) are rolled back and raised as :class:`StoreUnavailable`."""
        if self.read_only:
            raise StoreUnavailable(
                f"database {self.path} is read-only (no write permission on it or on "
                f"{self.path.parent}): read commands work, changes need write access")
        con = self._conn()
        depth = self._local.depth
        try:
            if depth == 0:
                if con.in_transaction:  # left open by an interrupted commit: start clean
                    con.execute("ROLLBACK")
                con.execute("BEGIN IMMEDIATE")
            else:
                con.execute(f"SAVEPOINT sp{depth}")
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        self._local.depth = depth + 1
        try:
            yield con
            con.execute("COMMIT" if depth == 0 else f"RELEASE sp{depth}")
        except BaseException as exc:
            try:
                if con.in_transaction:  # SQLite may have rolled back itself (disk full)
                    if depth == 0:
                        con.execute("ROLLBACK")
                    else:
                        con.execute(f"ROLLBACK TO sp{depth}")
                        con.execute(f"RELEASE sp{depth}")
            except sqlite3.Error:
                pass  # the whole transaction is gone already: the outer level raises
            new = self._translate(exc)
            if new is not None:
                raise new from exc
            raise
        finally:
            self._local.depth = depth

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        con = self._conn()
        try:
            yield con
        except (sqlite3.Error, pd.errors.DatabaseError) as exc:
            new = self._translate(exc)
            if new is not None:
                raise new from exc
            raise

    def _migrate(self) -> None:
        con = self._connect()
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if self.read_only:
                if version > SCHEMA_VERSION:
                    raise StoreError(f"{self.path} has schema version {version}, newer than "
                                     f"this program's {SCHEMA_VERSION}; upgrade the program.")
                if version != SCHEMA_VERSION:
                    raise StoreUnavailable(
                        f"database {self.path} has schema version {version}, this program "
                        f"uses {SCHEMA_VERSION}, and it is read-only so it cannot be "
                        "upgraded: open it once with write access")
                return
            if version == SCHEMA_VERSION and \
                    str(con.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return  # up to date: no write lock needed
            mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":  # e.g. network file systems
                con.execute("PRAGMA journal_mode=DELETE")
            con.execute("BEGIN IMMEDIATE")
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                con.execute("ROLLBACK")
                raise StoreError(f"{self.path} has schema version {version}, newer than this "
                                 f"program's {SCHEMA_VERSION}; upgrade the program.")
            for v in range(version, SCHEMA_VERSION):
                for stmt in _split_sql(MIGRATIONS[v]):
                    con.execute(stmt)
                con.execute(f"PRAGMA user_version={v + 1}")
            con.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        finally:
            con.close()

    def schema_version(self) -> int:
        """The schema version of the open file."""
        with self._read() as con:
            return int(con.execute("PRAGMA user_version").fetchone()[0])

    @property
    def store_id(self) -> str:
        """This database's persistent random id (16 hex digits, made when the file was created
        or upgraded to schema v2): it tells apart two stores in one folder and a store deleted
        and recreated at the same path."""
        cached = getattr(self, "_store_id", None)
        if cached is None:
            with self._read() as con:
                row = con.execute("SELECT value FROM store_meta WHERE key='store_id'").fetchone()
            if row is None:
                raise StoreUnavailable(f"database {self.path} has no store id (damaged?)")
            cached = self._store_id = str(row[0])
        return cached

    def _cid(self, con: sqlite3.Connection, campaign: Any) -> int:
        if isinstance(campaign, Mapping):
            campaign = campaign.get("id", campaign.get("name"))
        if isinstance(campaign, (int, np.integer)) and not isinstance(campaign, bool):
            row = con.execute("SELECT id FROM campaigns WHERE id=?", (int(campaign),)).fetchone()
        elif isinstance(campaign, str):
            row = con.execute("SELECT id FROM campaigns WHERE name=?", (campaign,)).fetchone()
        else:
            raise CampaignNotFound(f"not a campaign reference: {campaign!r}")
        if row is None:
            raise CampaignNotFound(f"no campaign {campaign!r} in {self.path}")
        return int(row[0])

    def _audit(self, con: sqlite3.Connection, cid: int | None, actor: str, action: str,
               details: Any = None) -> None:
        con.execute("INSERT INTO audit(campaign_id, ts, actor, action, details) VALUES (?,?,?,?,?)",
                    (cid, utcnow(), str(actor or "unknown"), action, _dumps(details)))

    # ------------------------------------------------------------------ campaigns
    def create_campaign(self, name: str, config: "CampaignConfig | Mapping | None" = None, *,
                        actor: str = "cli") -> dict:
        """Create a campaign with its cycle 0 (initial observations); returns :meth:`get_campaign`."""
        name = _check_name(name)
        cfg = config if isinstance(config, CampaignConfig) else CampaignConfig.from_dict(config)
        now = utcnow()
        with self._tx() as con:
            if con.execute("SELECT 1 FROM campaigns WHERE name=?", (name,)).fetchone():
                raise CampaignExists(f"a campaign named {name!r} already exists")
            cur = con.execute("INSERT INTO campaigns(name, config, created_at, updated_at) "
                              "VALUES (?,?,?,?)", (name, _dumps(cfg.to_dict()), now, now))
            cid = int(cur.lastrowid)
            con.execute("INSERT INTO cycles(campaign_id, number, status, started_at) "
                        "VALUES (?,?,?,?)", (cid, 0, CycleState.DONE, now))
            self._audit(con, cid, actor, "create_campaign", {"name": name,
                                                             "config": cfg.to_dict()})
        return self.get_campaign(cid)

    def get_campaign(self, campaign: Any) -> dict:
        """Campaign row as a dict with ``config`` decoded."""
        with self._read() as con:
            cid = self._cid(con, campaign)
            row = con.execute("SELECT * FROM campaigns WHERE id=?", (cid,)).fetchone()
        out = dict(row)
        out["config"] = json.loads(out["config"])
        return out

    def campaign_config(self, campaign: Any) -> CampaignConfig:
        """The validated :class:`CampaignConfig`."""
        return CampaignConfig.from_dict(self.get_campaign(campaign)["config"])

    def list_campaigns(self) -> pd.DataFrame:
        """All campaigns with counts: id, name, created_at, n_observations, cycle, preset."""
        with self._read() as con:
            rows = con.execute(
                "SELECT c.id, c.name, c.created_at, c.updated_at, c.config, "
                "(SELECT COUNT(*) FROM observations o WHERE o.campaign_id=c.id) AS n_observations,"
                " (SELECT MAX(number) FROM cycles y WHERE y.campaign_id=c.id) AS cycle "
                "FROM campaigns c ORDER BY c.id").fetchall()
        recs = []
        for r in rows:
            d = dict(r)
            cfg = json.loads(d.pop("config"))
            d["preset"] = cfg.get("preset")
            cl = cfg.get("cluster") or {}
            d["cluster_profile"] = cl.get("profile") or (
                f"name:{cl['name']}" if set(cl) == {"name"} else ClusterKind.LOCAL.value)
            recs.append(d)
        return pd.DataFrame(recs, columns=["id", "name", "created_at", "updated_at",
                                           "n_observations", "cycle", "preset", "cluster_profile"])

    def update_config(self, campaign: Any, changes: Mapping[str, Any], *, actor: str) -> dict:
        """Merge ``changes`` into the config (validated as a whole); audited with old/new values."""
        with self._tx() as con:
            cid = self._cid(con, campaign)
            old = json.loads(con.execute("SELECT config FROM campaigns WHERE id=?",
                                         (cid,)).fetchone()[0])
            new = CampaignConfig.from_dict({**old, **dict(changes)}).to_dict()
            if "objectives" in changes and new["objectives"] != old["objectives"]:
                n_obs = con.execute("SELECT COUNT(*) FROM observations WHERE campaign_id=?",
                                    (cid,)).fetchone()[0]
                if n_obs:
                    raise InvalidConfig("objectives cannot change once observations exist; "
                                        "create a new campaign instead")
            con.execute("UPDATE campaigns SET config=?, updated_at=? WHERE id=?",
                        (_dumps(new), utcnow(), cid))
            diff = {k: {"old": old.get(k), "new": new[k]} for k in changes if old.get(k) != new[k]}
            self._audit(con, cid, actor, "update_config", diff)
        return self.get_campaign(cid)

    # ------------------------------------------------------------------ observations
    def add_observation(self, campaign: Any, psmiles: str, values: Mapping[str, float], *,
                        source: str, key: str | None = None, name: str | None = None,
                        cycle: int = 0, calculation_id: int | None = None,
                        result: Mapping | None = None, provenance: Mapping | None = None,
                        actor: str = "cli") -> int:
        """Insert one observation; ``values`` must hold every objective as a finite number.

        ``key`` defaults to ``core.polymer.polymer_key(psmiles)``.  Returns the observation id.
        """
        with self._read() as con:
            cid = self._cid(con, campaign)
            cfg = json.loads(con.execute("SELECT config FROM campaigns WHERE id=?",
                                         (cid,)).fetchone()[0])
        vals = _objective_values(values, cfg["objectives"])
        if key is None:
            key = _polymer_key(psmiles)
        with self._tx() as con:
            cur = con.execute(
                'INSERT INTO observations(campaign_id, psmiles, key, name, "values", source, cycle,'
                " calculation_id, result, provenance, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (cid, psmiles, key, name, _dumps(vals), source, int(cycle), calculation_id,
                 _dumps(result), _dumps(provenance), utcnow()))
            oid = int(cur.lastrowid)
            self._audit(con, cid, actor, "add_observation",
                        {"id": oid, "psmiles": psmiles, "source": source, "values": vals})
        return oid

    def observations(self, campaign: Any) -> pd.DataFrame:
        """Observations with one float column per objective (NaN never stored)."""
        with self._read() as con:
            cid = self._cid(con, campaign)
            objectives = json.loads(con.execute("SELECT config FROM campaigns WHERE id=?",
                                                (cid,)).fetchone()[0])["objectives"]
            rows = con.execute("SELECT * FROM observations WHERE campaign_id=? ORDER BY id",
                               (cid,)).fetchall()
        cols = ["id", "name", "psmiles", "key", *objectives, "source", "cycle", "calculation_id",
                "created_at", "result", "provenance"]
        recs = []
        for r in rows:
            d = dict(r)
            vals = json.loads(d.pop("values"))
            for o in objectives:
                d[o] = float(vals[o])
            d["result"] = _loads(d["result"])
            d["provenance"] = _loads(d["provenance"])
            recs.append({c: d.get(c) for c in cols})
        df = pd.DataFrame(recs, columns=cols)
        for o in objectives:
            df[o] = df[o].astype(float)
        return df

    def observed_keys(self, campaign: Any) -> set[str]:
        """Canonical keys of all observed polymers."""
        with self._read() as con:
            cid = self._cid(con, campaign)
            return {r[0] for r in con.execute("SELECT key FROM observations WHERE campaign_id=?",
                                              (cid,))}

    # ------------------------------------------------------------------ extra pool candidates
    def add_pool_candidates(self, campaign: Any, rows: Iterable[Mapping[str, Any]], *,
                            actor: str) -> int:
        """Add user candidates (dicts with psmiles, key, name?, source?); duplicates are skipped.

        Returns the number actually added.
        """
        now = utcnow()
        rows = list(rows)
        with self._tx() as con:
            cid = self._cid(con, campaign)
            added = 0
            for r in rows:
                if not r.get("psmiles") or not r.get("key"):
                    raise StoreError(f"pool candidate needs psmiles and key: {dict(r)!r}")
                cur = con.execute(
                    "INSERT OR IGNORE INTO pool_extra(campaign_id, psmiles, key, name, source, "
                    "created_at) VALUES (?,?,?,?,?,?)",
                    (cid, r["psmiles"], r["key"], r.get("name"), r.get("source", "upload"), now))
                added += cur.rowcount
            self._audit(con, cid, actor, "add_pool_candidates", {"n_rows": len(rows),
                                                                 "n_added": added})
        return added

    def pool_candidates(self, campaign: Any) -> pd.DataFrame:
        """Extra candidates of this campaign: id, psmiles, key, name, source, created_at."""
        with self._read() as con:
            cid = self._cid(con, campaign)
            return pd.read_sql_query(
                "SELECT id, psmiles, key, name, source, created_at FROM pool_extra "
                "WHERE campaign_id=? ORDER BY id", con, params=(cid,))

    # ------------------------------------------------------------------ rejections
    def reject(self, campaign: Any, key: str, psmiles: str | None = None, *, reason: str = "",
               actor: str) -> None:
        """Exclude a candidate from future batches (no-op if already rejected)."""
        with self._tx() as con:
            cid = self._cid(con, campaign)
            if con.execute("SELECT 1 FROM rejections WHERE campaign_id=? AND key=? AND "
                           "restored_at IS NULL", (cid, key)).fetchone():
                return
            con.execute("INSERT INTO rejections(campaign_id, key, psmiles, reason, actor, "
                        "created_at) VALUES (?,?,?,?,?,?)",
                        (cid, key, psmiles, reason, actor, utcnow()))
            self._audit(con, cid, actor, "reject", {"key": key, "psmiles": psmiles,
                                                    "reason": reason})

    def restore(self, campaign: Any, key: str, *, actor: str) -> bool:
        """Undo a rejection; returns whether one was active."""
        with self._tx() as con:
            cid = self._cid(con, campaign)
            cur = con.execute("UPDATE rejections SET restored_at=?, restored_by=? WHERE "
                              "campaign_id=? AND key=? AND restored_at IS NULL",
                              (utcnow(), actor, cid, key))
            if cur.rowcount:
                self._audit(con, cid, actor, "restore", {"key": key})
            return cur.rowcount > 0

    def rejected(self, campaign: Any, *, include_restored: bool = False) -> pd.DataFrame:
        """Rejected candidates: id, key, psmiles, reason, actor, created_at, restored_at."""
        q = ("SELECT id, key, psmiles, reason, actor, created_at, restored_at, restored_by "
             "FROM rejections WHERE campaign_id=?")
        if not include_restored:
            q += " AND restored_at IS NULL"
        with self._read() as con:
            cid = self._cid(con, campaign)
            return pd.read_sql_query(q + " ORDER BY id", con, params=(cid,))

    def rejected_keys(self, campaign: Any) -> set[str]:
        """Keys currently excluded from proposals."""
        with self._read() as con:
            cid = self._cid(con, campaign)
            return {r[0] for r in con.execute("SELECT key FROM rejections WHERE campaign_id=? "
                                              "AND restored_at IS NULL", (cid,))}

    def pending_keys(self, campaign: Any) -> set[str]:
        """Keys of calculations queued or running (not to be proposed again)."""
        with self._read() as con:
            cid = self._cid(con, campaign)
            return {r[0] for r in con.execute(
                "SELECT key FROM calculations WHERE campaign_id=? AND status IN "
                "('queued','running')", (cid,))}

    # ------------------------------------------------------------------ batches
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
            rej = {r[0] for r in con.execute("SELECT key FROM rejections WHERE campaign_id=? AND "
                                             "restored_at IS NULL", (b["campaign_id"],))}
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
            c = {"source": "manual", **dict(candidate)}
            cand_id = self._insert_candidate(con, int(batch_id), int(rank), c)
            self._audit(con, b["campaign_id"], actor, "add_candidate",
                        {"batch_id": int(batch_id), "psmiles": c["psmiles"], "key": c["key"]})
        return cand_id

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
            cfg = json.loads(con.execute("SELECT config FROM campaigns WHERE id=?",
                                         (cid,)).fetchone()[0])
            cur = con.execute(f"UPDATE batches SET status='{BatchState.APPROVED}', approved_at=?, approved_by=?"
                              f" WHERE id=? AND status='{BatchState.PROPOSED}'", (now, actor, int(batch_id)))
            if cur.rowcount == 0:
                return {"approved": False, "batch_id": int(batch_id), "n_calculations": 0,  # not vocabulary: key
                        "reason": f"batch {batch_id} is already {b['status']}"}
            rej = {r[0] for r in con.execute("SELECT key FROM rejections WHERE campaign_id=? AND "
                                             "restored_at IS NULL", (cid,))}
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
    def calculations(self, campaign: Any, *, status: str | Iterable[str] | None = None,
                     batch_id: int | None = None) -> pd.DataFrame:
        """Calculations (newest batch last) with ``elapsed_s`` (start → finish or now)."""
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
                        "error_message=NULL, finished_at=NULL, updated_at=?, reruns=reruns+? "
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
                        "job_id=NULL, started_at=COALESCE(started_at, ?), updated_at=? WHERE id=?",
                        (attempt, dask_key, workdir, log_path,
                         f"attempt {attempt} of {r['max_attempts']} submitted", now, now,
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
            cfg = json.loads(con.execute("SELECT config FROM campaigns WHERE id=?",
                                         (r["campaign_id"],)).fetchone()[0])
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
                            "error_type=?, error_message=?, updated_at=? WHERE id=?",
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
                "interruptions=interruptions+1, step=NULL, message=?, updated_at=? "
                f"WHERE id=? AND attempt=? AND status='{CalcState.RUNNING}'",
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
                            "interruptions=interruptions+1, step=NULL, message=?, updated_at=? "
                            "WHERE id=?", ("re-queued after a runner restart", now, r["id"]))
            if rows:
                self._audit(con, cid, "runner", "requeue_interrupted",
                            {"calculation_ids": [r["id"] for r in rows]})
        return rows

    # ------------------------------------------------------------------ runner heartbeat
    def heartbeat(self, campaign: Any, *, pid: int, host: str, status: str = RunnerState.RUNNING,
                  info: Mapping | None = None) -> None:
        """Upsert the runner row of a campaign (pid, host, status, time, free-form info)."""
        now = utcnow()
        with self._tx() as con:
            cid = self._cid(con, campaign)
            con.execute(
                "INSERT INTO runners(campaign_id, pid, host, status, started_at, heartbeat_at, "
                "heartbeat_epoch, info) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(campaign_id) DO "
                "UPDATE SET pid=excluded.pid, host=excluded.host, status=excluded.status, "
                "started_at=CASE WHEN runners.pid=excluded.pid THEN runners.started_at "
                "ELSE excluded.started_at END, heartbeat_at=excluded.heartbeat_at, "
                "heartbeat_epoch=excluded.heartbeat_epoch, info=excluded.info",
                (cid, int(pid), host, status, now, now, time.time(), _dumps(info)))

    def runner_status(self, campaign: Any, *, stale_after_s: float = 30.0) -> dict | None:
        """Runner row plus ``age_s`` (seconds since the heartbeat) and ``alive`` (status
        ``starting``/``running`` and age below ``stale_after_s``); None if no runner ever ran.
        ``status`` is ``starting``, ``running``, ``stopped`` or ``error`` (then
        ``info["error"]`` holds the message, e.g. a walltime too short for the preset)."""
        with self._read() as con:
            cid = self._cid(con, campaign)
            row = con.execute("SELECT * FROM runners WHERE campaign_id=?", (cid,)).fetchone()
        if row is None:
            return None
        d = dict(row)
        d["info"] = _loads(d["info"])
        d["age_s"] = max(0.0, time.time() - float(d.pop("heartbeat_epoch") or 0.0))
        d["alive"] = d["status"] in (RunnerState.STARTING, RunnerState.RUNNING) and d["age_s"] < stale_after_s
        return d

    # ------------------------------------------------------------------ audit
    def log(self, campaign: Any, action: str, *, actor: str, details: Any = None) -> None:
        """Append an audit entry (who did what)."""
        with self._tx() as con:
            cid = None if campaign is None else self._cid(con, campaign)
            self._audit(con, cid, actor, action, details)

    def audit_log(self, campaign: Any, limit: int = 500) -> pd.DataFrame:
        """Newest first: id, ts, actor, action, details (dict)."""
        with self._read() as con:
            cid = self._cid(con, campaign)
            df = pd.read_sql_query("SELECT id, ts, actor, action, details FROM audit WHERE "
                                   "campaign_id=? ORDER BY id DESC LIMIT ?", con,
                                   params=(cid, int(limit)))
        df["details"] = [_loads(x) for x in df["details"]]
        return df

    # ------------------------------------------------------------------ predictions
    def save_predictions(self, campaign: Any, cycle: int, frame: pd.DataFrame) -> None:
        """Store the pool predictions of a proposal (replacing older ones), e.g. columns key,
        pred_mean_<obj>, pred_std_<obj>, ehvi, p_beyond; numeric and string columns only
        (kept as a compressed numpy ``.npz`` blob, no pickle)."""
        buf = io.BytesIO()
        arrays = {}
        for i, c in enumerate(frame.columns):
            col = frame[c]
            numeric = pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)
            arrays[f"c{i}"] = (col.to_numpy() if numeric
                               else np.asarray(col.astype(str).tolist(), dtype=str))
        np.savez_compressed(buf, __columns__=np.array(list(map(str, frame.columns))), **arrays)
        with self._tx() as con:
            cid = self._cid(con, campaign)
            con.execute("DELETE FROM predictions WHERE campaign_id=?", (cid,))
            con.execute("INSERT INTO predictions(campaign_id, cycle, created_at, data) "
                        "VALUES (?,?,?,?)", (cid, int(cycle), utcnow(), buf.getvalue()))

    def latest_predictions(self, campaign: Any) -> pd.DataFrame | None:
        """The frame saved by the latest :meth:`save_predictions` (attrs: cycle, created_at)."""
        with self._read() as con:
            cid = self._cid(con, campaign)
            row = con.execute("SELECT cycle, created_at, data FROM predictions WHERE campaign_id=?"
                              " ORDER BY id DESC LIMIT 1", (cid,)).fetchone()
        if row is None:
            return None
        with np.load(io.BytesIO(row["data"]), allow_pickle=False) as z:
            cols = [str(c) for c in z["__columns__"]]
            df = pd.DataFrame({c: z[f"c{i}"] for i, c in enumerate(cols)})
        df.attrs["cycle"] = int(row["cycle"])
        df.attrs["created_at"] = row["created_at"]
        return df

    # ------------------------------------------------------------------ descriptor cache
    def cached_descriptors(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """Cached descriptor vectors (float64) for the keys that have one."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, np.ndarray] = {}
        with self._read() as con:
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                for r in con.execute(f"SELECT key, vector FROM descriptors WHERE key IN "
                                     f"({','.join('?' * len(chunk))})", chunk):
                    out[r[0]] = np.frombuffer(r[1], dtype=np.float64).copy()
        return out

    def cache_descriptors(self, mapping: Mapping[str, np.ndarray]) -> None:
        """Store descriptor vectors by canonical key."""
        with self._tx() as con:
            con.executemany("INSERT OR REPLACE INTO descriptors(key, vector) VALUES (?,?)",
                            [(k, np.asarray(v, dtype=np.float64).tobytes())
                             for k, v in mapping.items()])


# --------------------------------------------------------------------------- helpers
_CALC_COLUMNS = ["id", "batch_id", "cycle", "psmiles", "key", "name", "preset", "status", "step",
                 "message", "attempt", "max_attempts", "interruptions", "reruns", "worker",
                 "dask_key", "job_id", "log_path", "workdir", "result", "error_type",
                 "error_message", "cancel_requested", "created_at", "started_at", "finished_at",
                 "updated_at", "elapsed_s"]


def _calc_dict(row: sqlite3.Row) -> dict:
    d = {c: row[c] for c in _CALC_COLUMNS if c in row.keys()}
    d["result"] = _loads(d.get("result"))
    d["cancel_requested"] = bool(d.get("cancel_requested"))
    d["elapsed_s"] = _elapsed(d.get("started_at"), d.get("finished_at"))
    return d


def _elapsed(start: str | None, end: str | None) -> float | None:
    if not start:
        return None
    t0 = datetime.fromisoformat(start)
    t1 = datetime.fromisoformat(end) if end else datetime.now(timezone.utc)
    return max(0.0, (t1 - t0).total_seconds())


def _opt_float(v: Any) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        raise StoreError(f"expected a number, got {v!r}") from None


def _objective_values(values: Mapping[str, Any], objectives: list[str]) -> dict[str, float]:
    out = {}
    for o in objectives:
        if o not in values or values[o] is None:
            raise StoreError(f"value of objective {o!r} is missing")
        try:
            v = float(values[o])
        except (TypeError, ValueError):
            raise StoreError(f"value of objective {o!r} is not a number: {values[o]!r}") from None
        if not math.isfinite(v):
            raise StoreError(f"value of objective {o!r} is not finite: {v!r}")
        out[o] = v
    return out


def _check_name(name: str) -> str:
    import re  # noqa: PLC0415
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise StoreError(f"campaign name must be 1-64 characters of letters, digits, '_', '.', "
                         f"'-' (starting with a letter or digit), got {name!r}")
    return name


def _writable_dir(d: Path) -> bool:
    """Whether files can be created in directory ``d`` (SQLite puts -wal/-shm beside the
    database)."""
    return os.access(d, os.W_OK | os.X_OK)


def _writable(path: Path) -> bool:
    """Whether this process may change database ``path``: its directory is writable and the
    file, if it exists, too."""
    return _writable_dir(path.parent) and (not path.exists() or os.access(path, os.W_OK))


def _wal_pending(path: Path) -> bool:
    """Whether a non-empty write-ahead log lies beside ``path`` (its pages are newer than the
    main file, so the database must not be opened ``immutable``)."""
    try:
        return Path(f"{path}-wal").stat().st_size > 0
    except OSError:
        return False


def _polymer_key(psmiles: str) -> str:
    from core.polymer import polymer_key  # noqa: PLC0415  (RDKit import only when needed)
    return polymer_key(psmiles)


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
