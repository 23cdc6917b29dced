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

Campaign settings that narrow or re-rank the choice (``ProposalConfig``; the per-row facts come
with the :class:`Candidates`, computed by ``core.optimize.cost_estimate.screen``):
``exclude_flagged`` drops rows with an unfit-motif flag, ``exclude_unsimulable`` rows that fail
the simulability pre-check, and ``cost_aware`` ranks by EHVI per estimated CPU hour (the
cost-aware utility of BoTorch's ``InverseCostWeightedUtility``: α(x) / c(x)), top-q for ``ehvi``
and greedily, each pick given the fantasies of the earlier ones, for ``believer``.

Units: the objectives' original units throughout (n_D and ν_D are dimensionless; an EHVI is
in units of objective 1 × objective 2).  Scaling each objective by a positive constant (as
SPACIER's z-scores do) multiplies every hypervolume by the same constant, so the choice does
not depend on it provided the reference point is scaled along; the back-test, whose reference
point is given in z-units of the training data, converts it to original units before calling.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Hashable, Sequence

import numpy as np

from core.optimize.acquisition import BatchSelection, ehvi_2d, pareto_front, select_batch
from core.config import CampaignConfig, Strategy
from core.errors import InputError
from core.optimize.surrogate import DEFAULT_KERNEL, MultiObjectiveSurrogate, fit_surrogates

__all__ = ["Observations", "Candidates", "Pending", "ProposalConfig", "Proposal", "ProposalError",
           "propose", "select_cost_aware", "score_candidates"]


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
    descriptor is never chosen (its mean/σ stay NaN); a repeated key keeps its first row.

    Per-row facts the settings of :class:`ProposalConfig` need (None = not given; a setting
    that needs a missing one raises :class:`ProposalError`): ``flagged`` (m,) bool, an
    unfit motif; ``simulable`` (m,) bool, passes the pre-check; ``cost_s`` (m,) estimated CPU
    seconds on one core (a row with a non-finite or non-positive cost is never chosen when
    cost-aware)."""

    X: np.ndarray
    keys: Sequence[Hashable]
    flagged: np.ndarray | None = None
    simulable: np.ndarray | None = None
    cost_s: np.ndarray | None = None


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
    ``believer_sigma_update=False`` adds the believer's fantasies to the front only;
    ``exclude_flagged`` / ``exclude_unsimulable`` / ``cost_aware``: see the module docstring
    (off by default, as in the back-test; a campaign passes its own settings)."""

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
    exclude_flagged: bool = False
    exclude_unsimulable: bool = False
    cost_aware: bool = False

    @classmethod
    def for_campaign(cls, cfg: CampaignConfig, *, q: int, strategy: str,
                     seed: int = 0) -> "ProposalConfig":
        """The configuration a campaign proposes with (``seed`` for the fit and the selection)."""
        return cls(objectives=(cfg.objectives[0], cfg.objectives[1]),
                   reference_point=(cfg.reference_point[0], cfg.reference_point[1]),
                   q=int(q), strategy=strategy, kernel=cfg.surrogate_kernel or DEFAULT_KERNEL,
                   fit_seed=seed, select_seed=seed, exclude_flagged=cfg.exclude_flagged,
                   exclude_unsimulable=cfg.exclude_unsimulable, cost_aware=cfg.cost_aware)


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
    available   (m,) rows that could be chosen (finite descriptor, key not excluded, not
                screened out by the settings)
    surrogate   the fitted surrogates (to predict kept or pending rows)
    screened_out  rows (finite descriptor, key not excluded) each setting left out:
                ``{"flagged": n, "unsimulable": n, "unknown_cost": n}`` (a row can count twice)
    """

    rows: np.ndarray
    selection: BatchSelection | None
    mean: np.ndarray
    std: np.ndarray
    front: np.ndarray
    front_with_fantasies: np.ndarray
    available: np.ndarray
    surrogate: MultiObjectiveSurrogate
    screened_out: dict = field(default_factory=dict)


def _row_mask(values: np.ndarray | None, m: int, what: str, setting: str) -> np.ndarray:
    if values is None:
        raise ProposalError(f"{setting} needs Candidates.{what} (one value per pool row)")
    a = np.asarray(values)
    if a.shape != (m,):
        raise ProposalError(f"Candidates.{what} has shape {a.shape}, expected ({m},)")
    return a


def _screen(pool: Candidates, config: ProposalConfig, m: int) -> tuple[np.ndarray, dict,
                                                                       np.ndarray | None]:
    """(rows allowed by the settings, how many each setting removed (all rows), cost in CPU
    hours per row or None when not cost-aware)."""
    ok = np.ones(m, dtype=bool)
    out: dict[str, np.ndarray] = {}
    if config.exclude_flagged:
        out["flagged"] = _row_mask(pool.flagged, m, "flagged", "exclude_flagged").astype(bool)
    if config.exclude_unsimulable:
        out["unsimulable"] = ~_row_mask(pool.simulable, m, "simulable",
                                        "exclude_unsimulable").astype(bool)
    cost_h = None
    if config.cost_aware:
        if config.strategy not in (Strategy.EHVI, Strategy.BELIEVER):
            raise ProposalError(f"cost_aware works with the ehvi and believer strategies, "
                                f"not {config.strategy!r}")
        cost_h = _row_mask(pool.cost_s, m, "cost_s", "cost_aware").astype(float) / 3600.0
        out["unknown_cost"] = ~(np.isfinite(cost_h) & (cost_h > 0))
    for v in out.values():
        ok &= ~v
    return ok, out, cost_h


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
    not_excluded = np.array([k not in exclude for k in keys], dtype=bool) & finite
    allowed, removed, cost_h = _screen(pool, config, len(keys))
    available = not_excluded & allowed
    screened_out = {k: int((v & not_excluded).sum()) for k, v in removed.items()}
    # a repeated key (the same polymer twice in the pool) would break select_batch: first row
    _, first = np.unique(np.asarray(keys), return_index=True)
    idx = np.sort(first)
    idx = idx[finite[idx] & allowed[idx]]
    sel = None
    rows = np.zeros(0, dtype=int)
    if config.q > 0 and available.any():
        cross = (sur.cross_cov_fn(PX[idx])
                 if config.strategy == Strategy.BELIEVER and config.believer_sigma_update
                 else None)
        mc_kw = {} if config.n_mc is None else {"n_mc": config.n_mc}
        cand_keys = [keys[i] for i in idx]
        if cost_h is None:
            sel = select_batch(mean[idx], std[idx], front_sel, ref, config.q,
                               strategy=config.strategy, candidate_keys=cand_keys,
                               exclude_keys=exclude, cross_cov=cross, seed=config.select_seed,
                               **mc_kw)
        else:
            sel = select_cost_aware(mean[idx], std[idx], front_sel, ref, config.q, cost_h[idx],
                                    strategy=config.strategy,
                                    available=np.array([k not in exclude for k in cand_keys],
                                                       dtype=bool),
                                    candidate_keys=cand_keys, cross_cov=cross,
                                    seed=config.select_seed, **mc_kw)
        rows = idx[sel.indices]
    return Proposal(rows=rows, selection=sel, mean=mean, std=std, front=front,
                    front_with_fantasies=front_sel, available=available, surrogate=sur,
                    screened_out=screened_out)


def score_candidates(observations: Observations, X: np.ndarray, config: ProposalConfig,
                     pending: Pending = Pending(), *,
                     mutual: bool = False) -> tuple[Proposal, np.ndarray]:
    """Score chosen polymers (descriptors ``X`` (k, d), e.g. candidates a person adds to a
    batch) as :func:`propose` would: the same surrogates (``config``'s kernel and fit seed),
    posterior mean and σ of each row, and its EHVI against the observed front extended by the
    posterior means of ``pending.X`` (the other members of the batch, queued/running
    calculations) as fantasies — the EHVI :func:`propose`'s acquisition gives the row as its
    first pick in that state.  With ``mutual`` the rows are added together: each row's EHVI
    also counts the other rows' posterior means as fantasies (equal to :func:`propose` with
    those rows among the pending).

    Runs :func:`propose` itself on the rows with ``q=0`` (nothing is chosen; the settings that
    screen the pool do not apply to a person's choice, ``pending.exclude`` is ignored) and
    returns its :class:`Proposal` (``mean``/``std`` (k, 2) of the rows, NaN for a row with a
    non-finite descriptor, ``front``, ``front_with_fantasies``, ``surrogate``) and the EHVI
    (k,) of the rows (NaN where no prediction), in objective-1 × objective-2 units.  Raises
    :class:`ProposalError` with fewer than 2 observations."""
    Xc = np.asarray(X, dtype=float)
    if Xc.ndim != 2:
        raise ProposalError(f"X must be a (k, d) matrix, got shape {Xc.shape}")
    plain = replace(config, q=0, exclude_flagged=False, exclude_unsimulable=False,
                    cost_aware=False)
    prop = propose(observations, Candidates(Xc, list(range(len(Xc)))), plain,
                   Pending(X=pending.X))
    ref = np.asarray(config.reference_point, dtype=float)
    ok = np.all(np.isfinite(prop.mean), axis=1)
    ehvi = np.full(len(Xc), np.nan)
    if not mutual:
        if ok.any():
            ehvi[ok] = ehvi_2d(prop.mean[ok], prop.std[ok], prop.front_with_fantasies, ref)
        return prop, ehvi
    for i in np.flatnonzero(ok):
        others = ok.copy()
        others[i] = False
        front = np.vstack([prop.front_with_fantasies, prop.mean[others]])
        ehvi[i] = ehvi_2d(prop.mean[i:i + 1], prop.std[i:i + 1], front, ref)[0]
    return prop, ehvi


def select_cost_aware(mean: np.ndarray, std: np.ndarray, front: np.ndarray, ref: np.ndarray,
                      q: int, cost_h: np.ndarray, *, strategy: str = Strategy.BELIEVER.value,
                      available: np.ndarray | None = None,
                      candidate_keys: Sequence[Hashable] | None = None,
                      cross_cov: Callable[[int], np.ndarray] | None = None, seed: int = 0,
                      n_mc: int = 512) -> BatchSelection:
    """Choose up to ``q`` candidates by EHVI per CPU hour, EHVI(x) / ``cost_h``(x).

    ``mean``/``std`` (n, 2) and ``front``/``ref`` in the objectives' units, ``cost_h`` (n,)
    estimated CPU hours (> 0, finite; others are never chosen), ``available`` (n,) bool (None =
    all).  ``ehvi``: the q best ratios.  ``believer``: greedy, each pick's posterior mean joins
    the front as a fantasy before the next ratio is computed, and with ``cross_cov`` (as in
    :func:`core.optimize.acquisition.select_batch`) the posterior variances are conditioned on
    the picks.  The returned selection's ``ehvi`` is the EHVI at pick (n_D × ν_D units), its
    ``extra`` holds ``cost_h`` and ``ehvi_per_cpu_hour`` of the picks.  The selection itself is
    :func:`core.optimize.acquisition.select_batch` with ``cost``.  Raises
    :class:`ProposalError` when nothing can be chosen."""
    mu, sd = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    n = len(mu)
    cost = np.asarray(cost_h, dtype=float)
    if cost.shape != (n,):
        raise ProposalError(f"cost_h has shape {cost.shape}, expected ({n},)")
    avail = np.ones(n, dtype=bool) if available is None else np.asarray(available, dtype=bool)
    avail = avail & np.isfinite(cost) & (cost > 0)
    if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or q < 1:
        raise ProposalError(f"q must be a positive integer, got {q!r}")
    if not avail.any():
        raise ProposalError("no candidate with a known CPU cost is left to choose")
    if strategy not in (Strategy.EHVI, Strategy.BELIEVER):
        raise ProposalError(f"cost_aware works with ehvi and believer, not {strategy!r}")
    sel = select_batch(mu, sd, front, ref, q, strategy=strategy, cross_cov=cross_cov,
                       seed=seed, n_mc=n_mc, cost=np.where(avail, cost, np.nan),
                       candidate_keys=candidate_keys)
    chosen, at_pick = sel.indices, sel.ehvi
    return replace(
        sel,
        extra={"cost_aware": True, "cost_h": [float(cost[i]) for i in chosen],
               "ehvi_per_cpu_hour": [float(a / cost[i]) for a, i in zip(at_pick, chosen)]})
