"""The demo campaign the README's run command opens.

:func:`ensure_demo_campaign` creates (once) a campaign on the shipped default pool whose cycle-0
observations are ``assets/demo/initial_observations.json`` — polymers computed by our own
pipeline (``quick`` preset) and shipped with their provenance — and proposes its first batch.
A demo on another preset starts from that preset's own shipped results when there are some
(``initial_observations_smoke.json``: the same 13 polymers through the ``smoke`` preset, for
end-to-end tests), since a campaign's model only uses results of its own fidelity
(``core.campaign.fidelity``).  When the file is absent it raises :class:`DemoDataMissing`; it never
invents numbers.

:func:`ensure_shipped_campaigns` loads, beside the demo, the finished campaigns shipped as
bundles in ``assets/campaigns/*.json`` (``core.campaign.bundle``), each once.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from core.config import DEFAULT_PRESET
from core.errors import InputError
from core.store import CampaignExists, CampaignNotFound, Store, StoreError

__all__ = ["ensure_demo_campaign", "DemoDataMissing", "DEMO_OBSERVATIONS",
           "demo_observations_for", "SHIPPED_CAMPAIGNS", "ensure_shipped_campaigns"]

DEMO_OBSERVATIONS = Path(__file__).resolve().parents[2] / "assets" / "demo" / \
    "initial_observations.json"


def demo_observations_for(preset: str) -> Path:
    """The shipped initial observations of a demo on ``preset``: that preset's own results
    (``initial_observations_<preset>.json``) when shipped, else the ``quick`` ones (which a
    campaign of another fidelity shows apart and does not fit)."""
    own = DEMO_OBSERVATIONS.with_name(f"initial_observations_{preset}.json")
    return own if own.is_file() else DEMO_OBSERVATIONS


class DemoDataMissing(InputError):
    """The shipped initial observations of the demo campaign are not there."""


def ensure_demo_campaign(db_path: str | Path, *, preset: str = DEFAULT_PRESET, name: str = "demo",
                         observations: str | Path | None = None,
                         config: dict[str, Any] | None = None, propose: bool = True) -> dict:
    """Return the demo campaign, creating it (with its first proposed batch) if needed.

    ``preset`` is the simulation preset of new calculations (``smoke`` for end-to-end tests);
    ``config`` overrides other campaign settings.  An existing campaign is returned unchanged
    except that a first batch is proposed if it has none yet.
    """
    from core.campaign.commands import create_campaign, load_observation_records  # noqa: PLC0415
    from core.campaign.cycle import propose_batch  # noqa: PLC0415

    store = Store(db_path)
    try:
        camp = store.get_campaign(name)
    except CampaignNotFound:
        camp = None
    if camp is None:
        path = (Path(observations) if observations is not None
                else demo_observations_for(preset))
        if not path.is_file():
            raise DemoDataMissing(
                f"the demo's initial observations {path} are missing; generate them with the "
                "simulation pipeline (quick preset) or pass observations=<file>")
        records = load_observation_records(path)
        try:
            camp = create_campaign(store, name, {"preset": preset, **(config or {})},
                                   initial=records, propose=False, actor="demo")
        except CampaignExists:  # another process created it a moment ago
            camp = store.get_campaign(name)
    if propose and store.current_batch(camp["id"]) is None:
        propose_batch(store, camp["id"], actor="demo")
    return store.get_campaign(camp["id"])


#: bundles of finished campaigns shipped with the product (``python -m core.campaign bundle``)
SHIPPED_CAMPAIGNS = Path(__file__).resolve().parents[2] / "assets" / "campaigns"


def ensure_shipped_campaigns(db_path: str | Path, folder: str | Path | None = None) -> dict[str, str]:
    """Load every bundle ``<folder>/<NAME>.json`` (default :data:`SHIPPED_CAMPAIGNS`) whose
    campaign ``NAME`` (the file name) the store does not have yet, marked *shipped*
    (``core.campaign.bundle``: shown as it is, no runner until someone continues it).

    Idempotent and cheap when everything is loaded (one query, no file is parsed).  Never
    raises: a bundle that cannot be loaded (bad file, unusable database …) is logged and
    reported, so the demo and the other campaigns are never blocked.  Returns ``{file name:
    "loaded" | "present" | "error: <why>"}``.
    """
    import logging  # noqa: PLC0415

    from core.campaign.bundle import load_bundle  # noqa: PLC0415

    log = logging.getLogger("optipoly.bundle")
    d = Path(folder) if folder is not None else SHIPPED_CAMPAIGNS
    files = sorted(d.glob("*.json")) if d.is_dir() else []
    out: dict[str, str] = {}
    if not files:
        return out
    try:
        store = Store(db_path)
        names = set(store.list_campaigns()["name"].astype(str))
    except Exception as exc:  # noqa: BLE001 - start-up boundary: logged, never blocks the app
        log.error("shipped campaigns not loaded: %s: %s", type(exc).__name__, exc)
        return {f.name: f"error: {type(exc).__name__}: {exc}" for f in files}
    for f in files:
        if f.stem in names:
            out[f.name] = "present"
            continue
        try:
            camp = load_bundle(store, f, name=f.stem, shipped=True, actor="shipped")
            out[f.name] = "loaded"
            log.info("loaded shipped campaign %s (id %s) from %s", camp["name"], camp["id"], f)
        except CampaignExists:  # another server process loaded it a moment ago
            out[f.name] = "present"
        except Exception as exc:  # noqa: BLE001 - start-up boundary: logged, never blocks
            out[f.name] = f"error: {type(exc).__name__}: {exc}"
            log.error("shipped campaign %s not loaded: %s: %s", f, type(exc).__name__, exc)
    return out
