"""One proposal step, pure: fit the surrogates on the observations and choose the next batch.

``propose(observations, pool, config, pending) -> Proposal`` touches no store and no file.
The campaign (:func:`core.campaign.cycle.propose_batch`) gathers its inputs from the store, calls
it and
persists the result; the back-test (:func:`core.optimize.backtest.run_campaign`) calls the same
function
on an oracle table, so the back-test measures the code the product runs.

Steps: one GP per objective (:func:`core.optimize.surrogate.fit_surrogates`); posterior mean and σ
over
every pool row with a finite descriptor; the observed Pareto front, extended by the posterior
means of the pending rows (queued/running calculations, kept candidates) as fantasies; batch
selection by EHVI (:func:`core.optimize.acquisition.select_batch`: top-q ``ehvi`` or the Kriging
``believer`` with posterior variances conditioned on the fantasies).

Units: the objectives' original units throughout (n_D and ν_D are dimensionless; an EHVI is
in units of objective 1 × objective 2).  Scaling each objective by a positive constant (as
SPACIER's z-scores do) multiplies every hypervolume by the same constant, so the choice does
not depend on it provided the reference point is scaled along; the back-test, whose reference
point is given in z-units of the training data, converts it to original units before calling.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Sequence

import numpy as np

from core.optimize.acquisition import BatchSelection, pareto_front, select_batch
from core.config import CampaignConfig, Strategy
from core.errors import InputError
from core.optimize.surrogate import DEFAULT_KERNEL, MultiObjectiveSurrogate, fit_surrogates

__all__ = ["Observations", "Candidates", "Pending", "ProposalConfig", "Proposal", "ProposalError",
           "propose"]


class ProposalError(InputError):
    """The next batch cannot be proposed (too few observations, empty pool …)."""


@dataclass(frozen=True)
class Observations:
    """Training data: descriptors ``X`` (n, d) and objective values ``Y`` (n, 2), both finite,
    ``Y`` in original units, columns in the order of ``ProposalConfig.objectives``."""

    X: np.ndarray
    Y: np.ndarray


@dataclass(frozen=True)
class Candidates:
    """The pool: descriptors ``X`` (m, d) and one key per row.  A row with a non-finite
    descriptor is never chosen (its mean/σ stay NaN); a repeated key keeps its first row."""

    X: np.ndarray
    keys: Sequence[Hashable]


@dataclass(frozen=True)
class Pending:
    """What is already on its way: descriptors ``X`` (k, d) of queued/running calculations (and
    candidates kept from an earlier proposal), whose posterior means join the front as
    fantasies (rows with a non-finite descriptor are skipped), and the pool ``exclude`` keys
    never to propose (evaluated, pending, rejected …)."""

    X: np.ndarray | None = None
    exclude: frozenset = field(default_factory=frozenset)


@dataclass(frozen=True)
class ProposalConfig:
    """How to propose.  ``reference_point`` in original units, one value per objective;
    ``n_restarts``/``n_mc`` None = the defaults of ``fit_surrogates``/``select_batch``;
    ``believer_sigma_update=False`` adds the believer's fantasies to the front only."""

    objectives: tuple[str, str]
    reference_point: tuple[float, float]
    q: int
    strategy: str = Strategy.BELIEVER.value
    kernel: str = DEFAULT_KERNEL
    fit_seed: int = 0
    select_seed: int = 0
    n_restarts: int | None = None
    n_mc: int | None = None
    believer_sigma_update: bool = True

    @classmethod
    def for_campaign(cls, cfg: CampaignConfig, *, q: int, strategy: str,
                     seed: int = 0) -> "ProposalConfig":
        """The configuration a campaign proposes with (``seed`` for the fit and the selection)."""
        return cls(objectives=(cfg.objectives[0], cfg.objectives[1]),
                   reference_point=(cfg.reference_point[0], cfg.reference_point[1]),
                   q=int(q), strategy=strategy, kernel=cfg.surrogate_kernel or DEFAULT_KERNEL,
                   fit_seed=seed, select_seed=seed)


@dataclass(frozen=True)
class Proposal:
    """The result of :func:`propose`.

    rows        pool rows of the chosen candidates, in selection order
    selection   the :class:`core.optimize.acquisition.BatchSelection` (EHVI at pick, believed gain
    …);
                None when nothing was to be chosen (``q`` ≤ 0 or no row available)
    mean, std   (m, 2) posterior mean and σ of every pool row (NaN: non-finite descriptor)
    front       observed Pareto front (original units); ``front_with_fantasies`` adds the
                pending rows' posterior means
    available   (m,) rows that could be chosen (finite descriptor, key not excluded)
    surrogate   the fitted surrogates (to predict kept or pending rows)
    """

    rows: np.ndarray
    selection: BatchSelection | None
    mean: np.ndarray
    std: np.ndarray
    front: np.ndarray
    front_with_fantasies: np.ndarray
    available: np.ndarray
    surrogate: MultiObjectiveSurrogate


def propose(observations: Observations, pool: Candidates, config: ProposalConfig,
            pending: Pending = Pending()) -> Proposal:
    """Fit the surrogates on ``observations`` and choose up to ``config.q`` pool rows (see the
    module docstring).  Raises :class:`ProposalError` with fewer than 2 observations."""
    X, Y = np.asarray(observations.X, dtype=float), np.asarray(observations.Y, dtype=float)
    if len(Y) < 2:
        raise ProposalError(f"{len(Y)} observed polymer(s); the surrogate needs at least 2")
    fit_kw = {} if config.n_restarts is None else {"n_restarts": config.n_restarts}
    sur = fit_surrogates(X, Y, list(config.objectives), config.kernel, seed=config.fit_seed,
                         **fit_kw)
    PX = np.asarray(pool.X, dtype=float)
    keys = list(pool.keys)
    finite = np.all(np.isfinite(PX), axis=1)
    mean, std = np.full((len(keys), 2), np.nan), np.full((len(keys), 2), np.nan)
    mean[finite], std[finite] = sur.predict(PX[finite])
    ref = np.asarray(config.reference_point, dtype=float)
    front = pareto_front(Y)
    front_sel = front
    if pending.X is not None and len(pending.X):
        fX = np.asarray(pending.X, dtype=float)
        ok = np.all(np.isfinite(fX), axis=1)
        if ok.any():
            front_sel = np.vstack([front, sur.predict(fX[ok])[0]])
    exclude = pending.exclude
    available = np.array([k not in exclude for k in keys], dtype=bool) & finite
    # a repeated key (the same polymer twice in the pool) would break select_batch: first row
    _, first = np.unique(np.asarray(keys), return_index=True)
    idx = np.sort(first)
    idx = idx[finite[idx]]
    sel = None
    rows = np.zeros(0, dtype=int)
    if config.q > 0 and available.any():
        cross = (sur.cross_cov_fn(PX[idx])
                 if config.strategy == Strategy.BELIEVER and config.believer_sigma_update
                 else None)
        mc_kw = {} if config.n_mc is None else {"n_mc": config.n_mc}
        sel = select_batch(mean[idx], std[idx], front_sel, ref, config.q,
                           strategy=config.strategy, candidate_keys=[keys[i] for i in idx],
                           exclude_keys=exclude, cross_cov=cross, seed=config.select_seed,
                           **mc_kw)
        rows = idx[sel.indices]
    return Proposal(rows=rows, selection=sel, mean=mean, std=std, front=front,
                    front_with_fantasies=front_sel, available=available, surrogate=sur)
