"""Runner heartbeats: is the campaign's runner process alive, and what does it report."""
from __future__ import annotations

import time
from typing import Any, Mapping

from core.config import RunnerState
from core.store.db import Database, _dumps, _loads, utcnow


class RunnerStore(Database):
    """One heartbeat row per campaign, written by the runner every few seconds."""

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
