"""The campaign vocabulary: every state, strategy, cluster kind, preset name and default, once.

A reader looks here to learn the model; the store, the runner, the CLI and the pages import
these names instead of spelling the strings out.

- :class:`CalcState`   a calculation: ``queued`` → ``running`` → ``done`` | ``failed`` |
  ``cancelled``; a running one whose worker died goes back to ``queued``.
- :class:`BatchState`  a batch: ``proposed`` → ``approved`` → ``running`` → ``done`` |
  ``failed``; a proposed batch replaced by a re-proposal becomes ``superseded``.
- :class:`CycleState`  a cycle: ``proposed`` → ``running`` → ``done``.
- :class:`RunnerState` the runner process in its heartbeat: ``starting`` | ``running`` |
  ``stopped`` | ``error``.
- :class:`Strategy`    batch selection: ``ehvi`` (top-q EHVI), ``believer`` (Kriging believer),
  ``random`` (back-test baseline only).
- :class:`ClusterKind` where calculations run: ``local`` (dask LocalCluster) or a batch
  scheduler through dask-jobqueue (``slurm``, ``pbs``, ``sge``, ``lsf``).
- :data:`PRESET_NAMES` the simulation presets, taken from ``core.simulation.presets.PRESETS``.
- :data:`WAVELENGTHS_NM` the three Fraunhofer lines (nm) of n_F, n_D, n_C.
- :class:`CampaignConfig` everything that defines a campaign: frozen and validated.

The enums are ``StrEnum``: each member *is* its string (``CalcState.DONE == "done"``), so the
values stored in SQLite, written to JSON and shown in tables are exactly the strings they always
were, and existing databases keep opening.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from core.errors import StoreError
from core.simulation.presets import PRESETS

__all__ = [
    "CalcState", "BatchState", "CycleState", "RunnerState", "Strategy", "ClusterKind",
    "PRESET_NAMES", "DEFAULT_PRESET", "SMOKE_PRESET", "STANDARD_PRESET", "PENDING_CALC_STATES",
    "OPEN_BATCH_STATES", "ACTIVE_BATCH_STATES", "WAVELENGTHS_NM", "DEFAULT_OBJECTIVES",
    "DEFAULT_REFERENCE_POINT", "DEFAULT_CLUSTER", "DB_ENV", "REPO_ROOT", "default_db_path",
    "CampaignConfig", "InvalidConfig",
]

REPO_ROOT = Path(__file__).resolve().parents[1]


class CalcState(StrEnum):
    """State of one calculation (``calculations.status``)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def is_finished(self) -> bool:
        """True for the terminal states (done, failed, cancelled)."""
        return self in _TERMINAL_CALC

    def is_pending(self) -> bool:
        """True while the calculation still waits or runs (queued, running)."""
        return self in PENDING_CALC_STATES


#: calculations that still occupy a candidate (it is not proposed again meanwhile)
PENDING_CALC_STATES: tuple[CalcState, ...] = (CalcState.QUEUED, CalcState.RUNNING)
_TERMINAL_CALC = (CalcState.DONE, CalcState.FAILED, CalcState.CANCELLED)


class BatchState(StrEnum):
    """State of one batch (``batches.status``)."""

    PROPOSED = "proposed"
    APPROVED = "approved"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SUPERSEDED = "superseded"

    def is_finished(self) -> bool:
        """True once nothing more happens to the batch (done, failed, superseded)."""
        return self in (BatchState.DONE, BatchState.FAILED, BatchState.SUPERSEDED)


#: a batch whose calculations are still to finish (the next proposal waits for it)
OPEN_BATCH_STATES: tuple[BatchState, ...] = (BatchState.PROPOSED, BatchState.APPROVED,
                                             BatchState.RUNNING)
#: an approved batch whose calculations are queued or running
ACTIVE_BATCH_STATES: tuple[BatchState, ...] = (BatchState.APPROVED, BatchState.RUNNING)


class CycleState(StrEnum):
    """State of one cycle (``cycles.status``)."""

    PROPOSED = "proposed"
    RUNNING = "running"
    DONE = "done"


class RunnerState(StrEnum):
    """Status the runner process writes into its heartbeat (``runners.status``)."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"
    ERROR = "error"


class Strategy(StrEnum):
    """Batch-selection strategy (``core.optimize.acquisition.select_batch``)."""

    EHVI = "ehvi"
    BELIEVER = "believer"
    RANDOM = "random"

    @classmethod
    def for_campaigns(cls) -> tuple["Strategy", ...]:
        """The strategies a campaign may use (``random`` is a back-test baseline only)."""
        return (cls.EHVI, cls.BELIEVER)


class ClusterKind(StrEnum):
    """Kind of compute cluster of a profile (``CampaignConfig.cluster["profile"]``)."""

    LOCAL = "local"
    SLURM = "slurm"
    PBS = "pbs"
    SGE = "sge"
    LSF = "lsf"

    @property
    def is_jobqueue(self) -> bool:
        """True for the batch schedulers reached through dask-jobqueue."""
        return self is not ClusterKind.LOCAL


#: simulation preset names, in the order of ``core.simulation.presets.PRESETS``
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)
#: the preset of a new campaign and of the demo (minutes per polymer on 2 cores)
DEFAULT_PRESET: str = PRESETS["quick"].name
#: the preset the test suite and CI use (seconds per polymer, numbers not meaningful)
SMOKE_PRESET: str = PRESETS["smoke"].name
#: the RadonPy protocol (for cluster nodes)
STANDARD_PRESET: str = PRESETS["standard"].name

#: Fraunhofer lines (nm): n_F, n_D, n_C and so ν_D = (n_D − 1)/(n_F − n_C) are taken here
WAVELENGTHS_NM: dict[str, float] = {"F": 486.13, "D": 589.29, "C": 656.27}

#: the two objectives (result-record keys, maximised), in plot order of the config
DEFAULT_OBJECTIVES: tuple[str, str] = ("n_D", "abbe_number")
#: hypervolume/EHVI reference point for the default objectives (n_D 1.30, ν_D 10, both
#: dimensionless): below every practical optical polymer
DEFAULT_REFERENCE_POINT: tuple[float, float] = (1.30, 10.0)
#: cluster profile of a new campaign: two single-thread local dask workers
DEFAULT_CLUSTER: Mapping[str, Any] = {"profile": ClusterKind.LOCAL.value, "n_workers": 2,
                                      "threads_per_worker": 1}

#: environment variable naming the campaign database (dashboard, CLI, runner)
DB_ENV = "OPTIPOLY_DB"


def default_db_path() -> Path:
    """``$OPTIPOLY_DB`` or ``<repository>/var/optipoly.db``: the database the dashboard, the
    campaign CLI and the runner use when none is given."""
    return Path(os.environ.get(DB_ENV, str(REPO_ROOT / "var" / "optipoly.db"))).expanduser()


class InvalidConfig(StoreError):
    """The campaign configuration is invalid (the message names the field).  A
    :class:`~core.errors.StoreError` because the store validates every configuration it keeps."""


# --------------------------------------------------------------------------- campaign config
@dataclass(frozen=True)
class CampaignConfig:
    """Everything that defines a campaign; stored as JSON in ``campaigns.config``.  Frozen:
    change a campaign with ``Store.update_config`` (validated, audited), not in place.

    objectives        result-record keys to maximise, in plot order (x = ν_D, y = n_D in the UI)
    reference_point   hypervolume/EHVI reference, one value per objective, same units
                      (default n_D 1.30, ν_D 10: below every practical optical polymer)
    limit_line        ``core.chem.optics.LimitLine.to_dict()``; None = the shipped default line
    pool_source       ``"default"`` (the shipped 10k pool) or a path to a pool CSV
    surrogate_kernel  kernel name passed to ``core.optimize.surrogate.fit_gp`` (None = its default)
    acquisition_strategy a :class:`Strategy` of :meth:`Strategy.for_campaigns`: ``ehvi``
                      (top-q EHVI) or ``believer`` (Kriging believer batches)
    batch_size        candidates per proposed batch (q)
    preset            simulation preset, one of :data:`PRESET_NAMES`
    threads           threads per calculation passed to ``run_pipeline`` (None = preset default)
    max_attempts      attempts per calculation before it is failed (worker/job deaths)
    cluster           cluster profile dict, see ``core.execution.cluster``
                      (``{"profile": "local", ...}``)
    auto_approve      approve each new proposal without a person
    preset_overrides  preset fields replaced for this campaign's calculations, e.g.
                      ``{"production_ps": 100.0}`` (numbers, text or true/false; None = none)
    experimental_in_model  fit the surrogate and count front, hypervolume and beyond-line
                      statistics on measured values too (``core.campaign.fidelity``); off by
                      default: only the campaign's own simulation fidelity counts
    runs_dir          root for calculation work dirs (None = ``<db dir>/runs``); each store file
                      and campaign gets its own sub-directory
                      (``core.execution.runner.runs_dir_for``)
    exclude_flagged   never propose a candidate with an unfit-motif flag
                      (``core.chem.feasibility.MOTIFS``: antiaromatic four-ring, peroxide, free
                      sulfonic acid, …); off by default
    exclude_unsimulable  never propose a candidate that fails the simulability pre-check of the
                      campaign's preset (``core.optimize.cost_estimate.simulability``: SMILES
                      validation, GAFF2 typing, QM-molecule size); on by default
    cost_aware        rank by EHVI per estimated CPU hour of the campaign's preset
                      (``core.optimize.cost_estimate.estimate_cost``) instead of by EHVI; off by
                      default
    """

    objectives: list[str] = field(default_factory=lambda: list(DEFAULT_OBJECTIVES))
    reference_point: list[float] = field(default_factory=lambda: list(DEFAULT_REFERENCE_POINT))
    limit_line: dict | None = None
    pool_source: str = "default"
    surrogate_kernel: str | None = None
    acquisition_strategy: str = Strategy.BELIEVER.value
    batch_size: int = 10
    preset: str = DEFAULT_PRESET
    threads: int | None = None
    max_attempts: int = 3
    cluster: dict = field(default_factory=lambda: dict(DEFAULT_CLUSTER))
    auto_approve: bool = False
    experimental_in_model: bool = False
    runs_dir: str | None = None
    preset_overrides: dict | None = None
    exclude_flagged: bool = False
    exclude_unsimulable: bool = True
    cost_aware: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`InvalidConfig` naming the first bad field; normalise the numbers
        (``reference_point`` to floats, ``batch_size`` to int) on the way."""
        if not isinstance(self.objectives, (list, tuple)) or len(self.objectives) != 2 or \
                not all(isinstance(o, str) and o for o in self.objectives) or \
                len(set(self.objectives)) != 2:
            raise InvalidConfig(f"objectives must be two distinct names, got {self.objectives!r}")
        object.__setattr__(self, "objectives", list(self.objectives))
        try:
            ref = [float(v) for v in self.reference_point]
        except (TypeError, ValueError):
            raise InvalidConfig(f"reference_point must be numbers, got {self.reference_point!r}") \
                from None
        if len(ref) != len(self.objectives) or not all(math.isfinite(v) for v in ref):
            raise InvalidConfig(
                f"reference_point needs {len(self.objectives)} finite values, got {ref!r}")
        object.__setattr__(self, "reference_point", ref)
        strategies = tuple(s.value for s in Strategy.for_campaigns())
        if self.acquisition_strategy not in strategies:
            raise InvalidConfig(f"acquisition_strategy must be one of {strategies}, "
                                f"got {self.acquisition_strategy!r}")
        if not isinstance(self.batch_size, (int, np.integer)) or isinstance(self.batch_size, bool) \
                or not 1 <= int(self.batch_size) <= 1000:
            raise InvalidConfig(f"batch_size must be an integer 1..1000, got {self.batch_size!r}")
        object.__setattr__(self, "batch_size", int(self.batch_size))
        if self.preset not in PRESET_NAMES:
            raise InvalidConfig(f"preset must be {', '.join(PRESET_NAMES[:-1])} or "
                                f"{PRESET_NAMES[-1]}, got {self.preset!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise InvalidConfig(f"threads must be a positive integer or None, got {self.threads!r}")
        if not isinstance(self.max_attempts, int) or not 1 <= self.max_attempts <= 100:
            raise InvalidConfig(f"max_attempts must be an integer 1..100, got {self.max_attempts!r}")
        kinds = tuple(k.value for k in ClusterKind)
        if not isinstance(self.cluster, dict) or \
                self.cluster.get("profile", ClusterKind.LOCAL) not in kinds:
            raise InvalidConfig(f"cluster.profile must be one of {kinds}, got {self.cluster!r}")
        if not isinstance(self.auto_approve, bool):
            raise InvalidConfig(f"auto_approve must be true/false, got {self.auto_approve!r}")
        if not isinstance(self.experimental_in_model, bool):
            raise InvalidConfig("experimental_in_model must be true/false, got "
                                f"{self.experimental_in_model!r}")
        for name in ("exclude_flagged", "exclude_unsimulable", "cost_aware"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidConfig(f"{name} must be true/false, got {getattr(self, name)!r}")
        if self.limit_line is not None and not isinstance(self.limit_line, dict):
            raise InvalidConfig("limit_line must be a LimitLine.to_dict() mapping or None")
        if not isinstance(self.pool_source, str) or not self.pool_source:
            raise InvalidConfig("pool_source must be 'default' or a path")
        _check_preset_overrides(self.preset, self.preset_overrides)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "CampaignConfig":
        """Build from a (possibly partial) dict; unknown keys raise :class:`InvalidConfig`."""
        data = dict(data or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidConfig(f"unknown campaign setting(s): {', '.join(unknown)}")
        return cls(**data)


def _check_preset_overrides(preset: str, overrides: Any) -> None:
    """Raise :class:`InvalidConfig` unless ``overrides`` is None or a mapping of preset field
    names (not ``name``) to numbers, text or true/false that the preset accepts."""
    if overrides is None:
        return
    if not isinstance(overrides, dict):
        raise InvalidConfig(f"preset_overrides must be a mapping or None, got {overrides!r}")
    from core.simulation.presets import Preset, get_preset  # noqa: PLC0415 (dataclasses only)
    known = {f.name for f in fields(Preset)} - {"name"}
    for key, value in overrides.items():
        if key not in known:
            raise InvalidConfig(f"preset_overrides: {key!r} is not a preset setting")
        if not isinstance(value, (bool, int, float, str)):
            raise InvalidConfig(f"preset_overrides: {key} must be a number, text or "
                                f"true/false, got {value!r}")
    try:
        get_preset(preset).with_overrides(**overrides)
    except (TypeError, ValueError) as exc:
        raise InvalidConfig(f"preset_overrides: {exc}") from None
