"""Observations: the training data of a campaign (values in original units)."""
from __future__ import annotations

import json
import math
from typing import Any, Mapping

import pandas as pd

from core.store.db import Database, _dumps, _loads, _polymer_key, utcnow
from core.store.errors import StoreError


class ObservationStore(Database):
    """Observed objective values, one row per polymer measurement or finished calculation."""

    def add_observation(self, campaign: Any, psmiles: str, values: Mapping[str, float], *,
                        source: str, key: str | None = None, name: str | None = None,
                        cycle: int = 0, calculation_id: int | None = None,
                        result: Mapping | None = None, provenance: Mapping | None = None,
                        actor: str = "cli") -> int:
        """Insert one observation; ``values`` must hold every objective as a finite number.

        ``key`` defaults to ``core.chem.polymer.polymer_key(psmiles)``.  Returns the observation id.
        """
        with self._read() as con:
            cid = self._cid(con, campaign)
            cfg = self._config(con, cid)
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
            objectives = self._config(con, cid)["objectives"]
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

    def observation_count(self, campaign: Any) -> int:
        """How many observations the campaign has (one cheap query, nothing decoded)."""
        with self._read() as con:
            cid = self._cid(con, campaign)
            return int(con.execute("SELECT COUNT(*) FROM observations WHERE campaign_id=?",
                                   (cid,)).fetchone()[0])

    def observed_keys(self, campaign: Any) -> set[str]:
        """Canonical keys of all observed polymers."""
        with self._read() as con:
            cid = self._cid(con, campaign)
            return {r[0] for r in con.execute("SELECT key FROM observations WHERE campaign_id=?",
                                              (cid,))}

    # ------------------------------------------------------------------ extra pool candidates


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
