"""Errors of the store: every one a :class:`core.errors.StoreError` (a ``ValueError``)."""
from __future__ import annotations

from core.config import InvalidConfig
from core.errors import StoreError

__all__ = ["StoreError", "StoreUnavailable", "CampaignNotFound", "CampaignExists", "BatchNotFound",
           "CalculationNotFound", "InvalidConfig", "InvalidState"]


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
