"""Fidelity of an observation: which oracle produced its numbers.

A simulated n_D / ν_D depends on the preset (cell size, MD schedule, QM level), the force field
and the version of the MD protocol; a ``smoke`` result is plumbing, not physics (polystyrene at
ρ = 0.38 g/cm³, n_D ≈ 1.1).  So a campaign's surrogate, Pareto front, hypervolume and
beyond-line statistics use only observations of the campaign's *own* fidelity
(:func:`split_by_fidelity`); the others are shown apart and never mixed in silently.

Rules (pure functions; ``source`` / ``provenance`` / ``result`` as the store keeps them):

- **simulated** (``source`` ``simulation`` or a preset recorded in ``result`` / ``provenance``):
  fidelity = (preset, force field, protocol).  A record without a force field predates the
  force-field choice and was GAFF2 (the only one then); a record without a protocol tag has an
  unknown MD protocol and matches no campaign.
- **experimental** (measured or literature values, :func:`core.ui.figures.observation_origin`):
  its own fidelity, not the campaign's (shown beside the simulations, not fitted; raw
  simulated n_D is ~0.05 below measured values) — unless the campaign's setting
  ``experimental_in_model`` says to fit measured values too (a campaign seeded with measured
  reference polymers, or a lab campaign whose "oracle" is the measurement).
- **declared** (no origin recorded: a table of initial values the user imported into this
  campaign): counted as the campaign's fidelity, since the user gave them to this campaign as
  its data; the chart labels them "origin not recorded".

The campaign's fidelity is its preset's: ``Preset.forcefield`` and ``Preset.protocol``
(:mod:`core.simulation.presets`), so a new protocol version never matches older records.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.config import DEFAULT_PRESET, SMOKE_PRESET

__all__ = ["Fidelity", "observation_fidelity", "campaign_fidelity",
           "split_by_fidelity", "observation_fidelities", "PLUMBING_PRESETS"]

#: presets whose numbers test the plumbing only (never physics)
PLUMBING_PRESETS: frozenset[str] = frozenset({SMOKE_PRESET})
_LEGACY_FORCEFIELD = "gaff2"   # every record before Preset.forcefield existed used GAFF2


@dataclass(frozen=True)
class Fidelity:
    """Which oracle produced a number: ``kind`` is ``simulated``, ``experimental`` or
    ``declared`` (origin not recorded); for simulations ``preset``, ``forcefield`` and
    ``protocol`` (e.g. ``quick``, ``gaff2``, ``quick-md1-direct``; None when not recorded)."""

    kind: str
    preset: str | None = None
    forcefield: str | None = None
    protocol: str | None = None
    #: campaign fidelities only: measured values count as this fidelity too
    with_experimental: bool = False

    @property
    def plumbing(self) -> bool:
        """True for ``smoke`` results: they test the code path, their numbers mean nothing."""
        return self.kind == "simulated" and self.preset in PLUMBING_PRESETS

    @property
    def label(self) -> str:
        """Short wording for legends and tables, e.g. ``quick · gaff2 · quick-md1-direct``,
        ``smoke (plumbing, not physics)``, ``experimental``, ``origin not recorded``."""
        if self.kind == "experimental":
            return "experimental"
        if self.kind == "declared":
            return "origin not recorded"
        if self.plumbing:
            return f"{self.preset} (plumbing, not physics)"
        parts = [self.preset or "preset not recorded", self.forcefield or "force field ?",
                 self.protocol or "protocol not recorded"]
        return " · ".join(parts)

    def matches(self, campaign: "Fidelity") -> bool:
        """Whether an observation of this fidelity may enter the model and statistics of a
        campaign of fidelity ``campaign`` (see the module rules)."""
        if self.kind == "declared":
            return True
        if self.kind == "experimental":
            return campaign.with_experimental
        if self.kind != "simulated" or campaign.kind != "simulated":
            return False
        return (self.preset == campaign.preset and self.protocol is not None
                and self.protocol == campaign.protocol
                and (self.forcefield or _LEGACY_FORCEFIELD) == campaign.forcefield)


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def observation_fidelity(source: Any, provenance: Any = None, result: Any = None) -> Fidelity:
    """The :class:`Fidelity` of one stored observation (``provenance`` / ``result`` as dicts, or
    None/NaN when absent).  Pure function."""
    from core.ui.figures import observation_origin  # noqa: PLC0415 - figures imports pandas/plotly

    origin = observation_origin(source, provenance, result)
    if origin.kind == "experimental":
        return Fidelity("experimental")
    if origin.kind != "simulated":
        return Fidelity("declared")
    res = result if isinstance(result, Mapping) else {}
    prov = provenance if isinstance(provenance, Mapping) else {}
    pipe = prov.get("pipeline_provenance")
    pipe = pipe if isinstance(pipe, Mapping) else {}

    def first(key: str) -> str | None:
        return _text(res.get(key)) or _text(prov.get(key)) or _text(pipe.get(key))

    return Fidelity("simulated", preset=origin.preset or first("preset"),
                    forcefield=first("forcefield"), protocol=first("protocol"))


def campaign_fidelity(campaign: Any) -> Fidelity:
    """The fidelity of a campaign: ``campaign`` is a preset name, or a campaign config (a
    ``core.config.CampaignConfig`` or its dict) whose ``preset`` and ``experimental_in_model``
    are read.  The force field and protocol tag are the preset's as the code defines them now.
    Raises ValueError for an unknown preset name."""
    from core.simulation.presets import get_preset  # noqa: PLC0415

    if isinstance(campaign, str):
        preset, with_exp = campaign, False
    elif isinstance(campaign, Mapping):
        preset = campaign.get("preset", DEFAULT_PRESET)
        with_exp = campaign.get("experimental_in_model")
    else:
        preset, with_exp = campaign.preset, getattr(campaign, "experimental_in_model", False)
    p = get_preset(preset)
    return Fidelity("simulated", preset=p.name, forcefield=p.forcefield, protocol=p.protocol,
                    with_experimental=bool(with_exp))


def observation_fidelities(obs: pd.DataFrame) -> list[Fidelity]:
    """:func:`observation_fidelity` of every row of an observation frame (columns ``source`` and,
    when present, ``provenance`` / ``result``)."""
    n = len(obs)
    src = obs["source"] if "source" in obs else [None] * n
    prov = obs["provenance"] if "provenance" in obs else [None] * n
    res = obs["result"] if "result" in obs else [None] * n
    return [observation_fidelity(s, p, r) for s, p, r in zip(src, prov, res)]


def split_by_fidelity(obs: pd.DataFrame, campaign: Fidelity) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(same, other): the observations of the campaign's fidelity and all others, each with a
    ``fidelity`` column holding the :attr:`Fidelity.label` of the row."""
    if obs is None or obs.empty:
        empty = (obs if obs is not None else pd.DataFrame()).assign(fidelity=[])
        return empty, empty.copy()
    fids = observation_fidelities(obs)
    labelled = obs.assign(fidelity=[f.label for f in fids])
    mask = np.array([f.matches(campaign) for f in fids], dtype=bool)
    return labelled[mask], labelled[~mask]
