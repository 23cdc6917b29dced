"""Connection, transactions and migrations of the store (the plumbing under every aggregate).

Every state change is one ``BEGIN IMMEDIATE … COMMIT`` transaction (:meth:`Database._tx`; one
connection per thread and process, kept open); :meth:`Database.transaction` makes several calls
one all-or-nothing transaction (nested writes become savepoints).  Storage failures become
:class:`~core.store.errors.StoreUnavailable` naming the file.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import pandas as pd

from core.store.errors import CampaignNotFound, StoreError, StoreUnavailable
from core.store.migrations import MIGRATIONS, SCHEMA_VERSION, _split_sql

__all__ = ["Database", "utcnow", "SCHEMA_VERSION"]


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


class Database:
    """One SQLite database file (created and migrated on first use): connections, transactions,
    migrations and the helpers every aggregate uses.  :class:`core.store.Store` adds the
    aggregates (campaigns, observations, pool, batches, calculations, runners)."""

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


    def _config(self, con: sqlite3.Connection, cid: int) -> dict:
        """The stored configuration dict of campaign ``cid`` (see :class:`CampaignConfig`)."""
        return json.loads(con.execute("SELECT config FROM campaigns WHERE id=?",
                                      (cid,)).fetchone()[0])

    @staticmethod
    def _rejected_keys(con: sqlite3.Connection, cid: int) -> set[str]:
        """Keys of the campaign's active (not restored) rejections."""
        return {r[0] for r in con.execute("SELECT key FROM rejections WHERE campaign_id=? AND "
                                          "restored_at IS NULL", (cid,))}


def _opt_float(v: Any) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        raise StoreError(f"expected a number, got {v!r}") from None


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
    from core.chem.polymer import polymer_key  # noqa: PLC0415  (RDKit import only when needed)
    return polymer_key(psmiles)
