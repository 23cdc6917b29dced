"""Campaign bundles: one JSON file that holds everything the dashboard shows of a campaign, so
that a finished campaign can be shipped with the product and opened without computing anything.

``python -m core.campaign bundle NAME --out DIR`` writes ``DIR/NAME.json`` (and the flat
observation table ``DIR/NAME.csv`` of ``export``); ``python -m core.campaign load-bundle FILE
[--name NAME]`` recreates the campaign in a store.  The dashboard loads every
``assets/campaigns/*.json`` at start (:func:`core.campaign.demo.ensure_shipped_campaigns`).

A bundle (``bundle_version`` :data:`BUNDLE_VERSION`) holds:

- ``campaign``: name, config (:class:`core.config.CampaignConfig` as a dict), created/updated;
- ``cycles``: every cycle with its state and recorded metrics (hypervolume, n_beyond,
  n_observations);
- ``batches``: every batch (state, strategy, joint value, info, approval) with its
  ``candidates`` (GP mean ± σ per objective, EHVI, P(beyond), selected);
- ``calculations``: state, step, attempts, interruptions, errors, timings, worker/job and the
  result record — not the logs, work dirs or log paths (paths on the machine that ran them);
- ``observations``: :func:`core.campaign.commands.export_observations`' full records (values,
  source, cycle, result record, provenance);
- ``pool_extra``, ``rejections``, the ``audit`` trail and the latest pool ``predictions``
  (the compressed ``.npz`` blob of ``Store.save_predictions``, base64);
- ``summary`` (informational, not read back): fidelity, counts, the model check.

Loading (:func:`load_bundle`) is one transaction (:func:`core.store.snapshot.insert_campaign_rows`):
new ids, every reference remapped, states and timestamps kept, nothing queued, proposed or
recomputed, no runner.  A name that exists is refused (:class:`CampaignExists`), a file that
is not a readable bundle of this version raises :class:`BundleError`; either way nothing changes.
The load is audited (``load_bundle``, with the file's sha256 and whether it was *shipped*).

A *shipped* campaign (loaded by the dashboard from ``assets/campaigns/``) is shown as it is:
:func:`runner_wanted` is False for it until someone continues it (approves a batch, so that
calculations wait), and then the campaign behaves like any other.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from core.config import ACTIVE_BATCH_STATES, PENDING_CALC_STATES
from core.errors import InputError
from core.store import CampaignExists, Store, StoreError, utcnow
from core.store.snapshot import audit_entries, insert_campaign_rows, read_campaign_rows

__all__ = ["BUNDLE_VERSION", "BUNDLE_FORMAT", "LOAD_ACTION", "BundleError", "bundle_campaign",
           "write_bundle", "read_bundle", "load_bundle", "is_shipped", "runner_wanted"]

#: the version of the bundle layout this program writes and reads
BUNDLE_VERSION = 1
#: the ``format`` field of every bundle
BUNDLE_FORMAT = "optipoly-campaign-bundle"
#: audit action of a load (details: file, sha256, bundle_version, origin, shipped)
LOAD_ACTION = "load_bundle"
_LISTS = ("cycles", "batches", "calculations", "observations", "pool_extra", "rejections",
          "audit")


class BundleError(InputError):
    """A file that is not a usable campaign bundle (the message names the file and why)."""


def bundle_campaign(store: Store, campaign: Any, *, allow_pending: bool = False) -> dict:
    """The bundle of ``campaign`` as a JSON-ready dict (see the module docstring).

    Refuses (:class:`BundleError`) a campaign with queued or running calculations unless
    ``allow_pending``: a bundle is a finished state, and a loaded one never re-queues anything.
    """
    from core.campaign.commands import export_observations  # noqa: PLC0415

    rows = read_campaign_rows(store, campaign)
    camp = store.get_campaign(campaign)
    pending = [c["id"] for c in rows["calculations"] if c["status"] in PENDING_CALC_STATES]
    if pending and not allow_pending:
        raise BundleError(f"campaign {camp['name']!r} has {len(pending)} queued or running "
                          f"calculation(s) {pending[:10]}: bundle it when they are finished "
                          "(or pass allow_pending / --allow-pending)")
    raw_obs = {o["id"]: o for o in rows["observations"]}
    _, full = export_observations(store, camp["id"])
    observations = []
    for rec in full:  # the export's records, every field exactly as stored (no NaN for None)
        raw = raw_obs[int(rec["id"])]
        observations.append({k: raw[k] if k in raw else v for k, v in rec.items()})
    cands: dict[int, list[dict]] = {}
    for k in rows["batch_candidates"]:
        cands.setdefault(int(k["batch_id"]), []).append(
            {c: v for c, v in k.items() if c != "batch_id"})
    batches = [{**b, "candidates": cands.get(int(b["id"]), [])} for b in rows["batches"]]
    pred = rows["predictions"]
    return {
        "bundle_version": BUNDLE_VERSION, "format": BUNDLE_FORMAT, "created_at": utcnow(),
        "origin": {"store_id": store.store_id, "campaign_id": int(camp["id"]),
                   "schema_version": store.schema_version()},
        "campaign": rows["campaign"],
        "summary": _summary(store, camp["id"], rows),
        "cycles": rows["cycles"], "batches": batches, "calculations": rows["calculations"],
        "observations": observations, "pool_extra": rows["pool_extra"],
        "rejections": rows["rejections"], "audit": rows["audit"],
        "predictions": None if pred is None else {
            "cycle": pred["cycle"], "created_at": pred["created_at"],
            "npz_base64": base64.b64encode(pred["data"]).decode("ascii")},
    }


def _summary(store: Store, cid: int, rows: Mapping[str, Any]) -> dict:
    """Counts, fidelity and the model check at bundling time (for a reader of the file)."""
    from core.campaign.cycle import campaign_model_check  # noqa: PLC0415
    from core.campaign.fidelity import campaign_fidelity  # noqa: PLC0415

    return {"fidelity": campaign_fidelity(rows["campaign"]["config"]).label,
            "n_cycles": len(rows["cycles"]), "n_batches": len(rows["batches"]),
            "n_calculations": len(rows["calculations"]),
            "n_observations": len(rows["observations"]),
            "model_check": campaign_model_check(store, cid).to_dict("records")}


def write_bundle(store: Store, campaign: Any, out_dir: str | Path, *, csv: bool = True,
                 allow_pending: bool = False) -> dict[str, Path]:
    """Write ``<out_dir>/<name>.json`` (the bundle) and, with ``csv``, ``<name>.csv`` (the flat
    observation table of ``export``); returns ``{"json": path[, "csv": path]}``.  The JSON is
    written atomically (a reader never sees half a file)."""
    from core.atomic_io import atomic_write_text  # noqa: PLC0415
    from core.campaign.commands import export_observations  # noqa: PLC0415

    data = bundle_campaign(store, campaign, allow_pending=allow_pending)
    name = data["campaign"]["name"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{name}.json"}
    atomic_write_text(paths["json"], json.dumps(data, indent=1, allow_nan=True,
                                                ensure_ascii=False) + "\n")
    if csv:
        paths["csv"] = out / f"{name}.csv"
        export_observations(store, name)[0].to_csv(paths["csv"], index=False)
    return paths


def read_bundle(path: str | Path) -> dict:
    """Read and check a bundle file; raises :class:`BundleError` naming the file when it is
    missing, not JSON, not a bundle, of another ``bundle_version`` or missing a part."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"cannot read bundle {p}: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BundleError(f"{p} is not a JSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{p} is not an optipoly campaign bundle (no \"format\": "
                          f"\"{BUNDLE_FORMAT}\")")
    version = data.get("bundle_version")
    if version != BUNDLE_VERSION:
        raise BundleError(f"{p} has bundle_version {version!r}; this program reads version "
                          f"{BUNDLE_VERSION} (write the bundle again with this version's "
                          "`python -m core.campaign bundle`)")
    camp = data.get("campaign")
    if not isinstance(camp, dict) or not isinstance(camp.get("name"), str) or \
            not isinstance(camp.get("config"), dict):
        raise BundleError(f"{p}: the \"campaign\" part (name, config) is missing or malformed")
    for key in _LISTS:
        if not isinstance(data.get(key), list):
            raise BundleError(f"{p}: the \"{key}\" part is missing or not a list")
    for i, b in enumerate(data["batches"]):
        if not isinstance(b, dict) or not isinstance(b.get("candidates"), list):
            raise BundleError(f"{p}: batch {i} is malformed (no list of candidates)")
    pred = data.get("predictions")
    if pred is not None:
        if not isinstance(pred, dict) or not isinstance(pred.get("npz_base64"), str):
            raise BundleError(f"{p}: the \"predictions\" part is malformed")
        try:
            blob = base64.b64decode(pred["npz_base64"], validate=True)
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                z["__columns__"]
        except (ValueError, OSError, KeyError) as exc:
            raise BundleError(f"{p}: the pool predictions cannot be read ({exc})") from None
    return data


def _rows(data: Mapping[str, Any]) -> dict[str, Any]:
    """The bundle's parts in :func:`core.store.snapshot.read_campaign_rows`' shape."""
    batches, cands = [], []
    for b in data["batches"]:
        b = dict(b)
        for k in b.pop("candidates"):
            cands.append({**k, "batch_id": b.get("id")})
        batches.append(b)
    pred = data.get("predictions")
    return {"campaign": data["campaign"], "cycles": data["cycles"], "batches": batches,
            "batch_candidates": cands, "calculations": data["calculations"],
            "observations": data["observations"], "pool_extra": data["pool_extra"],
            "rejections": data["rejections"], "audit": data["audit"],
            "predictions": None if pred is None else {
                "cycle": pred.get("cycle"), "created_at": pred.get("created_at"),
                "data": base64.b64decode(pred["npz_base64"])}}


def load_bundle(store: Store, path: str | Path, name: str | None = None, *,
                shipped: bool = False, actor: str = "cli") -> dict:
    """Recreate the campaign of bundle ``path`` in ``store`` (under ``name``, default the
    bundle's own) exactly: every cycle, batch, candidate, calculation, observation, rejection,
    pool addition, audit entry and the latest pool predictions, with new ids and states kept.
    Nothing is queued, proposed or recomputed.  Returns the new campaign (:meth:`Store.get_campaign`).

    ``shipped`` marks a campaign shipped with the product (the dashboard's start-up loader):
    :func:`runner_wanted` is then False until someone continues it.  One transaction: an
    existing name raises :class:`CampaignExists`, a bad file :class:`BundleError`; nothing
    changes in either case."""
    p = Path(path)
    data = read_bundle(p)
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    details = {"file": p.name, "sha256": digest, "bundle_version": data["bundle_version"],
               "origin": data.get("origin"), "name_in_bundle": data["campaign"]["name"],
               "shipped": bool(shipped)}
    try:
        cid = insert_campaign_rows(store, _rows(data), name=name,
                                   audit_entry=(actor, LOAD_ACTION, details))
    except CampaignExists:
        raise
    except StoreError as exc:
        raise BundleError(f"{p}: {exc}") from None
    return store.get_campaign(cid)


def is_shipped(store: Store, campaign: Any) -> bool:
    """Whether ``campaign`` was loaded from a bundle shipped with the product (the dashboard's
    start-up loader, ``load_bundle(..., shipped=True)``)."""
    return any((e["details"] or {}).get("shipped") for e in
               audit_entries(store, campaign, LOAD_ACTION))


def runner_wanted(store: Store, campaign: Any) -> bool:
    """Whether the dashboard should start ``campaign``'s runner process.

    True for every campaign but a shipped one (:func:`is_shipped`) that nobody continued: a
    shipped campaign is shown as it is — no runner, so no automatic proposal and no cluster —
    until it has work for a runner (a batch approved, calculations queued or running, e.g.
    after someone approves its waiting batch on the Batch page)."""
    if not is_shipped(store, campaign):
        return True
    if len(store.calculations(campaign, status=PENDING_CALC_STATES)):
        return True
    b = store.batches(campaign)
    return bool(len(b) and b["status"].isin(ACTIVE_BATCH_STATES).any())
