"""Plain helpers of the Batch page (no Streamlit)."""
from __future__ import annotations

from typing import Any

from core.store import Store

__all__ = ["remember_batch_size"]


def remember_batch_size(store: Store, campaign: Any, batch_size: int, *, actor: str) -> bool:
    """Store ``batch_size`` as the campaign's batch size (``Store.update_config``, the API the
    Settings page uses; audited) so that the next visit and the runner's own proposals use it.
    Returns True when the stored value changed."""
    q = int(batch_size)
    if int(store.campaign_config(campaign).batch_size) == q:
        return False
    store.update_config(campaign, {"batch_size": q}, actor=actor)
    return True
