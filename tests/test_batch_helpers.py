"""Batch-page helpers (pages/_proposal.py)."""
from __future__ import annotations

from core.store import Store
from pages._proposal import remember_batch_size


def test_remember_batch_size_updates_the_config_once(tmp_path):
    store = Store(tmp_path / "b.db")
    store.create_campaign("b", {"preset": "smoke", "batch_size": 4}, actor="test")
    assert remember_batch_size(store, "b", 4, actor="dashboard") is False
    assert remember_batch_size(store, "b", 6, actor="dashboard") is True
    assert store.campaign_config("b").batch_size == 6
    audit = store.audit_log("b")
    upd = audit[audit["action"] == "update_config"]
    assert len(upd) == 1 and upd["actor"].iloc[0] == "dashboard"
    assert upd["details"].iloc[0] == {"batch_size": {"old": 4, "new": 6}}
