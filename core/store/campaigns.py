"""Campaigns and their audit log: create, read, list, reconfigure (validated, audited)."""
from __future__ import annotations

import json
from typing import Any, Mapping

import pandas as pd

from core.config import CampaignConfig, ClusterKind, CycleState
from core.store.db import Database, _dumps, _loads, utcnow
from core.store.errors import CampaignExists, InvalidConfig, StoreError


class CampaignStore(Database):
    """Campaign rows (config as JSON, see :class:`core.config.CampaignConfig`) and the audit log."""

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
            old = self._config(con, cid)
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


def _check_name(name: str) -> str:
    import re  # noqa: PLC0415
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise StoreError(f"campaign name must be 1-64 characters of letters, digits, '_', '.', "
                         f"'-' (starting with a letter or digit), got {name!r}")
    return name
