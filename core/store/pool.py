"""A campaign's pool additions, rejections, latest predictions, the descriptor cache and the
screening cache (SA score, motif flags, CPU cost, pre-check per polymer and preset)."""
from __future__ import annotations

import io
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from core.store.db import Database, utcnow
from core.store.errors import StoreError


class PoolStore(Database):
    """Candidates beyond the shipped pool, rejected keys, pool predictions, descriptor cache."""

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
            return self._rejected_keys(con, cid)

    def pending_keys(self, campaign: Any) -> set[str]:
        """Keys of calculations queued or running (not to be proposed again)."""
        with self._read() as con:
            cid = self._cid(con, campaign)
            return {r[0] for r in con.execute(
                "SELECT key FROM calculations WHERE campaign_id=? AND status IN "
                "('queued','running')", (cid,))}

    # ------------------------------------------------------------------ batches
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

    # ------------------------------------------------------------------ screening cache
    # Screening vectors (``core.optimize.cost_estimate.SCREEN_VECTOR``: SA score, flag bits, CPU
    # seconds per step, pre-check bits, QM atoms) share the descriptor cache's table: numeric
    # vectors per polymer, under keys ``screen/<version>/<preset>/<polymer SMILES>`` that no
    # polymer key can equal (a polymer key is a SMILES, which has no "/" followed by a
    # version hash); a vector of another model version is simply never read.
    @staticmethod
    def _screen_key(preset: str, version: str, psmiles: str) -> str:
        return f"screen/{version}/{preset}/{psmiles}"

    def cached_screening(self, preset: str, version: str,
                         psmiles: Iterable[str]) -> dict[str, np.ndarray]:
        """Cached screening vectors of ``preset`` and model ``version`` by polymer SMILES."""
        ps = list(dict.fromkeys(psmiles))
        got = self.cached_descriptors(self._screen_key(preset, version, s) for s in ps)
        out = {}
        for s in ps:
            v = got.get(self._screen_key(preset, version, s))
            if v is not None:
                out[s] = v
        return out

    def cache_screening(self, preset: str, version: str,
                        mapping: Mapping[str, np.ndarray]) -> None:
        """Store screening vectors of ``preset`` and model ``version`` by polymer SMILES."""
        self.cache_descriptors({self._screen_key(preset, version, s): v
                                for s, v in mapping.items()})
