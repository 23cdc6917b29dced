"""SQLite store: the single source of truth of every campaign (WAL mode, short transactions).

Package layout (one module per aggregate, all composed into :class:`Store`):

- ``db``            connection per thread, transactions/savepoints, migrations, shared helpers
- ``migrations``    the schema, one SQL script per version (``PRAGMA user_version``)
- ``errors``        :class:`StoreError` and its subclasses
- ``campaigns``     campaigns (config validated by :class:`core.config.CampaignConfig`), audit log
- ``observations``  observed objective values (the training data)
- ``pool``          pool additions, rejections, latest predictions, descriptor cache
- ``batches``       cycles and batches (propose → approve → finish), atomic page operations
- ``calculations``  the calculation state machine (runner and page side)
- ``runners``       runner heartbeats

Every state change is one ``BEGIN IMMEDIATE … COMMIT`` transaction (one connection per thread and
process, kept open: closing the last connection of a WAL file checkpoints and fsyncs, 7 ms), so
the dashboard (any number of Streamlit threads/tabs) and the runner process can share one file
without "database is locked" races: SQLite's WAL lets readers proceed while one writer commits,
writers queue on ``busy_timeout`` (30 s) and no transaction is held open across user interaction.
Keys: ``key`` is :func:`core.chem.polymer.polymer_key` of the polymer SMILES everywhere.
The schema is versioned with ``PRAGMA user_version``; :data:`MIGRATIONS` upgrades older files.

State machines
--------------
- batch:        ``proposed`` → ``approved`` → ``running`` → ``done`` | ``failed``;
                a proposed batch replaced by a re-proposal becomes ``superseded``.
- calculation:  ``queued`` → ``running`` → ``done`` | ``failed`` | ``cancelled``;
                a running calculation whose worker/job died goes back to ``queued`` while
                ``attempt < max_attempts``; failed/cancelled ones can be re-queued by
                :meth:`Store.request_retry` (``resume`` keeps the work dir, ``rerun`` starts a new one).
- cycle:        ``proposed`` (batch waiting for approval) → ``running`` → ``done``.
  Cycle 0 holds the initial observations; cycle *k* ≥ 1 is the *k*-th batch.

Public API (``Store(path)``; *campaign* arguments accept the campaign name, its integer id or the
dict returned by :meth:`Store.get_campaign`).  Lists come back as pandas DataFrames the dashboard
can show directly, single items as plain dicts; JSON columns are decoded.

Campaigns
    ``create_campaign(name, config=None, *, actor="cli") -> dict``
    ``get_campaign(campaign) -> dict``  keys id, name, config (dict, see :class:`CampaignConfig`),
    created_at, updated_at
    ``list_campaigns() -> DataFrame``
    ``update_config(campaign, changes: dict, *, actor) -> dict``  (validated; audited)
    ``campaign_config(campaign) -> CampaignConfig``
Observations (training data; values in original units: n_D dimensionless, abbe_number dimensionless)
    ``add_observation(campaign, psmiles, values, *, source, key=None, name=None, cycle=0,
    calculation_id=None, result=None, provenance=None, actor="cli") -> int``
    ``observations(campaign) -> DataFrame``  columns id, name, psmiles, key, <one column per
    objective>, source, cycle, calculation_id, created_at, result (dict), provenance (dict)
    ``observed_keys(campaign) -> set[str]``
Extra pool candidates (user uploads / drawn SMILES)
    ``add_pool_candidates(campaign, rows, *, actor) -> int`` rows: dicts psmiles, key, name, source
    ``pool_candidates(campaign) -> DataFrame``
Rejected candidates (excluded from future batches, restorable; rejected ≠ failed)
    ``reject(campaign, key, psmiles, *, reason="", actor)``, ``restore(campaign, key, *, actor)``
    ``rejected(campaign, *, include_restored=False) -> DataFrame``, ``rejected_keys(campaign) -> set``
    ``pending_keys(campaign) -> set`` (queued or running calculations)
Cycles and batches
    ``create_batch(campaign, candidates, *, strategy, joint_value=None, info=None,
    actor="system") -> dict``  candidates: dicts psmiles, key, name?, pool_id?, source?,
    pred_mean {objective: value}, pred_std {objective: value}, ehvi, p_beyond, selected (default
    True).  Re-proposing while a batch waits for approval supersedes it (same cycle number).
    ``get_batch(batch_id) -> dict``, ``current_batch(campaign) -> dict | None`` (latest
    non-superseded), ``batches(campaign) -> DataFrame``
    ``batch_candidates(batch_id) -> DataFrame``  columns id, batch_id, rank, psmiles, key, name,
    pool_id, source, pred_mean_<obj>, pred_std_<obj>, ehvi, p_beyond, selected, rejected
    ``set_candidate_selected(batch_id, key, selected, *, actor)``
    ``include_candidate(batch_id, key, selected, *, actor)`` (one transaction: a rejected
    candidate selected again is restored first), ``reject_candidate(batch_id, key, *, reason,
    actor)`` (one transaction: rejected for the campaign and deselected in the batch)
    ``add_batch_candidate(batch_id, candidate: dict, *, actor) -> int``  (manual addition)
    ``add_batch_candidates(batch_id, candidates, *, joint_value=None, joint_value_se=None,
    actor) -> list[int]`` (hand-added ones, all or none, with the batch's new joint value),
    ``set_batch_joint_value(batch_id, joint_value, joint_value_se=None)``
    ``approve_batch(batch_id, *, actor) -> dict``  **idempotent**: the conditional
    ``UPDATE … WHERE status='proposed'`` lets exactly one of two concurrent approvals create the
    calculations; the other gets ``{"approved": False, "reason": ...}``.  The calculations table
    also has ``UNIQUE(batch_id, key)``.
    ``cycles(campaign) -> DataFrame``; ``record_cycle_metrics(campaign, cycle, *, hypervolume,
    n_beyond)``
Calculations
    ``calculations(campaign, *, status=None, batch_id=None) -> DataFrame``  columns id,
    batch_id, cycle, psmiles, key, name, preset, status, step, message, attempt, max_attempts,
    interruptions, reruns, worker, dask_key, job_id, log_path, workdir, result (dict),
    error_type, error_message, cancel_requested, created_at, started_at, finished_at,
    updated_at, attempt_started_at, elapsed_s (s, the current attempt; empty while queued),
    total_elapsed_s (s, since the first start)
    ``get_calculation(calc_id) -> dict``
    ``request_cancel(calc_id, *, actor) -> str``  queued → cancelled now; running → flagged, the
    runner kills its processes within seconds and marks it cancelled
    ``request_retry(calc_id, *, mode="resume"|"rerun", actor) -> str``
    runner side: ``start_attempt``, ``update_progress``, ``complete_calculation`` (observation
    inserted in the same transaction, at most once: ``UNIQUE(observations.calculation_id)``),
    ``fail_attempt``, ``mark_cancelled``, ``requeue_interrupted``, ``requeue_unstarted``,
    ``finish_batch_if_complete``
Runner heartbeat
    ``heartbeat(campaign, *, pid, host, status="running", info=None)``
    ``runner_status(campaign, *, stale_after_s=30.0) -> dict | None``  keys pid, host, status
    (starting | running | stopped | error), started_at, heartbeat_at, age_s, alive, info (dict:
    profile, workers, jobs, queued, running, cluster_error, error)
Audit log
    ``log(campaign, action, *, actor, details=None)``; ``audit_log(campaign, limit=500) -> DataFrame``
Pool predictions of the latest proposal (for the pool page)
    ``save_predictions(campaign, cycle, frame)``; ``latest_predictions(campaign) -> DataFrame | None``
Descriptor cache (observations/uploads outside the shipped pool)
    ``cached_descriptors(keys) -> dict[str, np.ndarray]``; ``cache_descriptors(mapping)``
Screening cache (SA score, motif flags, CPU cost, pre-check of polymers outside the shipped pool)
    ``cached_screening(preset, version, psmiles) -> dict[str, np.ndarray]``;
    ``cache_screening(preset, version, mapping)``
Misc: ``schema_version() -> int``; ``store_id`` (the database's persistent random id); ``close()`` (this thread's connection);
``transaction()`` (context manager: the calls of this thread inside it are one all-or-nothing
transaction, nested writes become savepoints); ``read_only`` (bool).

Errors
------
Every error is a :class:`StoreError` (a ``ValueError``) with a one-line message.  A database that
cannot be used — not an SQLite file, damaged, a directory, read-only for a change, disk full,
locked for longer than ``timeout_s`` — raises :class:`StoreUnavailable` naming the file, from
the constructor or from the failing call (whose transaction is rolled back).  A file this
process may not write (or in a directory it may not write) is opened read-only: reads work,
changes raise :class:`StoreUnavailable`.
"""
from __future__ import annotations

from core.config import CampaignConfig, InvalidConfig
from core.store.batches import BatchStore
from core.store.calculations import CalculationStore
from core.store.campaigns import CampaignStore
from core.store.db import SCHEMA_VERSION, utcnow
from core.store.errors import (BatchNotFound, CalculationNotFound, CampaignExists, CampaignNotFound,
                               InvalidState, StoreError, StoreUnavailable)
from core.store.observations import ObservationStore
from core.store.pool import PoolStore
from core.store.runners import RunnerStore

__all__ = [
    "Store", "CampaignConfig", "StoreError", "StoreUnavailable", "CampaignNotFound",
    "CampaignExists", "BatchNotFound", "CalculationNotFound", "InvalidConfig", "InvalidState",
    "SCHEMA_VERSION", "utcnow",
]


class Store(CampaignStore, ObservationStore, PoolStore, BatchStore, CalculationStore,
            RunnerStore):
    """Typed access to one SQLite database file (created and migrated on first use); the
    contract of every method is in this package's docstring."""
