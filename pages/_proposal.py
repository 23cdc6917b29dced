"""Plain helpers of the Batch and Pool pages (no Streamlit): the batch size, adding candidates
by hand (:func:`core.campaign.cycle.add_to_batch`) and refreshing the joint value after an edit,
each turned into the one line the page shows."""
from __future__ import annotations

from typing import Any

from core.errors import OptipolyError
from core.store import Store

__all__ = ["remember_batch_size", "add_by_hand", "added_text", "refresh_joint"]

#: how a message names the objectives
_LABEL = {"n_D": "n_D", "abbe_number": "ν_D"}


def remember_batch_size(store: Store, campaign: Any, batch_size: int, *, actor: str) -> bool:
    """Store ``batch_size`` as the campaign's batch size (``Store.update_config``, the API the
    Settings page uses; audited) so that the next visit and the runner's own proposals use it.
    Returns True when the stored value changed."""
    q = int(batch_size)
    if int(store.campaign_config(campaign).batch_size) == q:
        return False
    store.update_config(campaign, {"batch_size": q}, actor=actor)
    return True


def added_text(res: dict) -> str:
    """One line about what :func:`core.campaign.cycle.add_to_batch` added: the polymer's
    predicted n_D, ν_D (mean ± σ) and EHVI (or how many), and the batch's new joint value."""
    added = res["added"]
    where = f"batch {res['batch_id']} (cycle {res['cycle']})"
    joint = f"joint expected gain now {res['joint_value']:.4g}"
    if len(added) == 1:
        c = added[0]
        m, s = c["pred_mean"], c["pred_std"]
        pred = " · ".join(f"{_LABEL.get(o, o)} {m[o]:.4g} ± {s[o]:.2g}" for o in m)
        return f"Added {c['psmiles']} to {where}: {pred} · EHVI {c['ehvi']:.3g}; {joint}."
    return f"Added {len(added)} candidates to {where}, at the top of its table; {joint}."


def add_by_hand(store: Store, batch_id: int | None, psmiles: list[str], *, actor: str,
                campaign: Any = None, names: list[str | None] | None = None,
                pool_ids: list[str | None] | None = None) -> tuple[bool, str]:
    """Add ``psmiles`` by hand to proposed batch ``batch_id`` (or, with ``batch_id`` None, to
    ``campaign``'s batch waiting for approval) with their predictions and EHVI; returns (True,
    :func:`added_text`) or (False, the reason nothing was added: an invalid polymer SMILES, one
    already in the batch, observed or being calculated, no proposed batch …).  Errors that are
    not the library's own (a bug) are raised."""
    from core.campaign.cycle import add_to_batch, add_to_pending_batch  # noqa: PLC0415
    from core.chem.polymer import InvalidPolymer  # noqa: PLC0415

    try:
        if batch_id is None:
            res = add_to_pending_batch(store, campaign, psmiles, names=names,
                                       pool_ids=pool_ids, actor=actor)
        else:
            res = add_to_batch(store, int(batch_id), psmiles, names=names, pool_ids=pool_ids,
                               actor=actor)
    except InvalidPolymer as err:
        return False, f"Not a valid polymer SMILES: {err}"
    except OptipolyError as err:
        return False, f"Could not add: {err}"
    return True, added_text(res)


def refresh_joint(store: Store, batch_id: int) -> str | None:
    """Recompute and store the joint value of a proposed batch after an edit
    (:func:`core.campaign.cycle.refresh_joint_value`); None, or a line saying why it could not
    be recomputed (e.g. the campaign's pool file is gone), the batch's edit stands."""
    from core.campaign.cycle import refresh_joint_value  # noqa: PLC0415

    try:
        refresh_joint_value(store, int(batch_id))
    except OptipolyError as err:
        return f"The joint value could not be recomputed: {err}"
    return None
