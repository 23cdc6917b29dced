"""Pareto front, 2-D hypervolume, exact analytic 2-D EHVI and batch selection.

Conventions (whole module): **both objectives are maximised**; a reference point ``ref``
bounds the dominated region from below.  Units are whatever the caller uses; mean, std, front
and ref must simply share them (the campaign and the back-test both call it through
:func:`core.optimize.proposal.propose`, in the objectives' original units).

EHVI (Yang, Emmerich, Deutz, Bäck, J. Glob. Optim. 75, 3–34 (2019); same quantity as
BoTorch's ``ExpectedHypervolumeImprovement``) for independent Gaussian objectives
y1 ~ N(μ1, σ1²), y2 ~ N(μ2, σ2²).  Sort the front by y1 ascending: (a_1, b_1) … (a_k, b_k)
(a ascending, b descending).  The non-dominated region above ``ref`` splits into k+1 vertical
strips j = 0..k: x ∈ (x_j, x_{j+1}), y > h_j, with x_0 = r1, x_j = a_j, x_{k+1} = +∞,
h_j = b_{j+1} (j < k) and h_k = r2.  The improvement of a point y is

    HVI(y) = Σ_j (min(y1, x_{j+1}) − x_j)_+ · (y2 − h_j)_+

and, the two factors being independent,

    EHVI = Σ_j [ψ1(x_j) − ψ1(x_{j+1})] · ψ2(h_j),   ψ(a) = E[(y − a)_+] = ψ(a, a; μ, σ)

with ψ(a, b; μ, σ) = σ φ((b−μ)/σ) + (μ − a)(1 − Φ((b−μ)/σ)) and ψ(+∞) = 0.  For σ → 0,
ψ(a, a) → (μ − a)_+, so EHVI → the deterministic hypervolume improvement; that limit is
used exactly for σ == 0.  Cost O(n·k) numpy, no Python loop over candidates.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterable, Sequence

import numpy as np
from scipy.special import ndtr

from core.config import Strategy
from core.errors import InputError

__all__ = [
    "AcquisitionInputError",
    "EmptyPoolError",
    "DuplicateCandidateError",
    "pareto_mask",
    "pareto_front",
    "hypervolume_2d",
    "expected_batch_gain",
    "hypervolume_improvement_2d",
    "ehvi_2d",
    "BatchSelection",
    "select_batch",
    "probability_beyond_line",
]

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


class AcquisitionInputError(InputError):
    """Bad input to an acquisition function (shape, NaN/inf, negative σ, bad q …)."""


class EmptyPoolError(AcquisitionInputError):
    """No candidate left to score or select."""


class DuplicateCandidateError(AcquisitionInputError):
    """Two candidates share one key (e.g. the same canonical polymer SMILES)."""


# --------------------------------------------------------------------------- validation
def _as_matrix(a, name: str, *, ncols: int | None = 2, allow_empty: bool = True) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=float)
    except (TypeError, ValueError) as exc:
        raise AcquisitionInputError(f"{name} must be numeric, got {type(a).__name__}") from exc
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, ncols if ncols is not None else 0)
    if arr.ndim != 2:
        raise AcquisitionInputError(f"{name} must be a 2-D array (n, m), got shape {arr.shape}")
    if ncols is not None and arr.shape[1] != ncols:
        raise AcquisitionInputError(f"{name} must have {ncols} columns, got shape {arr.shape}")
    if not allow_empty and arr.shape[0] == 0:
        raise EmptyPoolError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise AcquisitionInputError(f"{name} contains NaN or inf")
    return arr


def _as_ref(ref, m: int = 2) -> np.ndarray:
    try:
        r = np.asarray(ref, dtype=float).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise AcquisitionInputError("ref must be numeric") from exc
    if r.shape != (m,):
        raise AcquisitionInputError(f"ref must have {m} values, got {r.shape}")
    if not np.all(np.isfinite(r)):
        raise AcquisitionInputError("ref contains NaN or inf")
    return r


def _front_or_empty(front) -> np.ndarray:
    if front is None:
        return np.zeros((0, 2))
    return _as_matrix(front, "front", ncols=2, allow_empty=True)


def _check_mean_std(mean, std) -> tuple[np.ndarray, np.ndarray]:
    mu = _as_matrix(mean, "mean", ncols=2, allow_empty=False)
    sd = _as_matrix(std, "std", ncols=2, allow_empty=False)
    if mu.shape != sd.shape:
        raise AcquisitionInputError(f"mean {mu.shape} and std {sd.shape} differ in shape")
    if np.any(sd < 0):
        raise AcquisitionInputError("std contains negative values")
    return mu, sd


# --------------------------------------------------------------------------- Pareto front
def pareto_mask(Y) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``Y`` (n, m), all objectives maximised.

    Row i is dominated when some row j is ≥ in every objective and > in at least one.
    Identical rows do not dominate each other (both are kept).
    """
    arr = _as_matrix(Y, "Y", ncols=None, allow_empty=True)
    n, m = arr.shape
    if n == 0:
        return np.zeros(0, dtype=bool)
    if m == 2:
        # sort by y1 descending, then y2 descending: a row is dominated iff an earlier row
        # (y1 ≥) has y2 > its y2, or has equal y2 and larger y1.
        order = np.lexsort((-arr[:, 1], -arr[:, 0]))
        y1, y2 = arr[order, 0], arr[order, 1]
        mask_sorted = np.ones(n, dtype=bool)
        best2 = -np.inf
        best1_at_best2 = np.inf
        for idx in range(n):  # O(n) after the sort; n is the observed set, not the pool
            a, b = y1[idx], y2[idx]
            if b < best2 or (b == best2 and a < best1_at_best2):
                mask_sorted[idx] = False
            elif b > best2:
                best2, best1_at_best2 = b, a
        mask = np.empty(n, dtype=bool)
        mask[order] = mask_sorted
        return mask
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        ge = np.all(arr >= arr[i], axis=1)
        gt = np.any(arr > arr[i], axis=1)
        if np.any(ge & gt):
            mask[i] = False
    return mask


def pareto_front(Y) -> np.ndarray:
    """Unique non-dominated rows of ``Y`` (maximisation), sorted by the first objective."""
    arr = _as_matrix(Y, "Y", ncols=None, allow_empty=True)
    if arr.shape[0] == 0:
        return arr.copy()
    front = np.unique(arr[pareto_mask(arr)], axis=0)
    return front[np.lexsort(tuple(front[:, j] for j in range(front.shape[1] - 1, -1, -1)))]


def _strict_front(front: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Front points that strictly dominate ref, non-dominated, sorted by y1 ascending."""
    if front.shape[0] == 0:
        return front
    keep = np.all(front > ref, axis=1)
    f = front[keep]
    if f.shape[0] == 0:
        return f
    return pareto_front(f)


def hypervolume_2d(front, ref) -> float:
    """Area dominated by ``front`` (k, 2) and bounded below by ``ref`` (maximisation).

    Points not strictly better than ``ref`` in both objectives add nothing.  Dominated
    points in ``front`` are allowed and ignored.  Returns 0.0 for an empty front.
    """
    r = _as_ref(ref)
    f = _strict_front(_front_or_empty(front), r)
    if f.shape[0] == 0:
        return 0.0
    a = f[:, 0]
    widths = np.diff(np.concatenate(([r[0]], a)))
    return float(np.sum(widths * (f[:, 1] - r[1])))


def hypervolume_improvement_2d(points, front, ref) -> np.ndarray:
    """Deterministic hypervolume improvement of each row of ``points`` (n, 2) over ``front``.

    Vectorised; equals :func:`ehvi_2d` with σ = 0.
    """
    p = _as_matrix(points, "points", ncols=2, allow_empty=False)
    return ehvi_2d(p, np.zeros_like(p), front, ref)


# --------------------------------------------------------------------------- EHVI
def _psi_plus(a: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """E[(y − a)_+] for y ~ N(mu, sd²), broadcast; = ψ(a, a; μ, σ).  a may be ±inf."""
    a_fin = np.where(np.isfinite(a), a, 0.0)
    pos = sd > 0
    safe = np.where(pos, sd, 1.0)
    t = (a_fin - mu) / safe
    val = safe * _INV_SQRT_2PI * np.exp(-0.5 * t * t) + (mu - a_fin) * ndtr(-t)
    det = np.maximum(mu - a_fin, 0.0)
    out = np.where(pos, val, det)
    out = np.where(np.isposinf(a), 0.0, out)
    return np.maximum(out, 0.0)


def ehvi_2d(mean, std, front, ref) -> np.ndarray:
    """Exact expected hypervolume improvement of n candidates, two maximised objectives.

    Parameters
    ----------
    mean, std : (n, 2) posterior means and standard deviations (std ≥ 0; 0 is allowed and
        gives the deterministic improvement).
    front : (k, 2) current observed points (dominated points and points not above ``ref``
        are ignored), or an empty array / None.
    ref : (2,) reference point.

    Returns
    -------
    (n,) array of EHVI ≥ 0, in (units of objective 1) × (units of objective 2).
    """
    mu, sd = _check_mean_std(mean, std)
    r = _as_ref(ref)
    f = _strict_front(_front_or_empty(front), r)
    # strip boundaries x_0..x_{k+1} and heights h_0..h_k
    x = np.concatenate(([r[0]], f[:, 0], [np.inf]))
    h = np.concatenate((f[:, 1], [r[1]]))
    psi1 = _psi_plus(x[None, :], mu[:, :1], sd[:, :1])  # (n, k+2)
    widths = psi1[:, :-1] - psi1[:, 1:]  # (n, k+1) = E[(min(y1,x_{j+1}) - x_j)_+]
    psi2 = _psi_plus(h[None, :], mu[:, 1:2], sd[:, 1:2])  # (n, k+1)
    out = np.einsum("ij,ij->i", np.maximum(widths, 0.0), psi2)
    return out


# --------------------------------------------------------------------------- batches
@dataclass(frozen=True)
class BatchSelection:
    """Result of :func:`select_batch`.

    indices : positions of the chosen candidates in the input arrays, in selection order.
    keys : the chosen candidate keys (when ``candidate_keys`` was given), else None.
    ehvi : EHVI of each chosen candidate at the moment it was chosen (for "believer", given
        the fantasies of the earlier picks; for "random", its plain EHVI).
    ehvi_initial : EHVI of each chosen candidate against the real front (no fantasies).
    believed_gain : HV(front ∪ chosen means) − HV(front): the gain if every pick landed on
        its posterior mean.
    expected_gain : Monte-Carlo estimate of the joint expected hypervolume gain of the batch,
        E[HV(front ∪ Y_batch)] − HV(front), objectives and candidates sampled independently.
    expected_gain_se : its standard error.
    """

    indices: np.ndarray
    keys: list | None
    strategy: str
    ehvi: np.ndarray
    ehvi_initial: np.ndarray
    believed_gain: float
    expected_gain: float
    expected_gain_se: float
    extra: dict = field(default_factory=dict)


def expected_batch_gain(mu: np.ndarray, sd: np.ndarray, front: np.ndarray, ref: np.ndarray, *,
                        n_samples: int, rng: np.random.Generator) -> tuple[float, float]:
    """Monte-Carlo E[HV(front ∪ Y)] − HV(front) and its standard error, the rows of Y drawn
    as independent Gaussians N(mu, sd²) (units of the caller: the same for all arguments)."""
    if mu.shape[0] == 0 or n_samples <= 0:
        return 0.0, 0.0
    base = hypervolume_2d(front, ref)
    samples = mu[None] + sd[None] * rng.standard_normal((n_samples,) + mu.shape)
    gains = np.empty(n_samples)
    for s in range(n_samples):
        gains[s] = hypervolume_2d(np.vstack([front, samples[s]]), ref) - base
    return float(gains.mean()), float(gains.std(ddof=1) / np.sqrt(n_samples)) if n_samples > 1 else 0.0


def select_batch(
    mean,
    std,
    front,
    ref,
    q: int,
    *,
    strategy: str = Strategy.EHVI,
    candidate_keys: Sequence[Hashable] | None = None,
    exclude_keys: Iterable[Hashable] = (),
    cross_cov: Callable[[int], np.ndarray] | None = None,
    seed: int | None = 0,
    n_mc: int = 512,
    cost: np.ndarray | None = None,
) -> BatchSelection:
    """Choose q candidates to evaluate next.

    Strategies
    ----------
    "ehvi"     the q largest EHVI values (SPACIER's behaviour: plain top-q).
    "believer" Kriging believer: pick the best EHVI, add its posterior mean to the front as a
               fantasy observation, recompute EHVI, repeat.  If ``cross_cov`` is given the
               posterior variances are conditioned on the fantasies too (Gaussian update with
               fixed hyper-parameters; the mean does not move because the fantasy equals it):
               ``cross_cov(i)`` must return the (n, 2) posterior covariance of every candidate
               with candidate i, per objective, in the units of ``std``, where the diagonal
               entry (i, i) is the *noise-free* variance and ``std`` the predictive one.
    "random"   q candidates uniformly at random (baseline; ``seed``).

    ``cost`` (n,) (optional, e.g. CPU hours): "ehvi" and "believer" then rank by EHVI / cost
    (the cost-weighted utility α(x)/c(x) of BoTorch's ``InverseCostWeightedUtility``), and a
    candidate with a non-finite or non-positive cost is never chosen.

    Candidates whose key is in ``exclude_keys`` (already evaluated, pending or rejected) are
    never chosen; ``candidate_keys`` must be unique.  If fewer than q candidates remain, all
    of them are returned.  Raises :class:`EmptyPoolError` when none remains.
    """
    mu, sd = _check_mean_std(mean, std)
    r = _as_ref(ref)
    f = _front_or_empty(front)
    n = mu.shape[0]
    if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or q < 1:
        raise AcquisitionInputError(f"q must be a positive integer, got {q!r}")
    if strategy not in (Strategy.EHVI, Strategy.BELIEVER, Strategy.RANDOM):
        raise AcquisitionInputError(f"unknown strategy {strategy!r} (ehvi, believer, random)")
    available = np.ones(n, dtype=bool)
    keys_list = None
    if candidate_keys is not None:
        keys_list = list(candidate_keys)
        if len(keys_list) != n:
            raise AcquisitionInputError(
                f"candidate_keys has {len(keys_list)} entries for {n} candidates")
        if len(set(keys_list)) != n:
            seen: set = set()
            dup = next(k for k in keys_list if k in seen or seen.add(k))
            raise DuplicateCandidateError(f"duplicate candidate key {dup!r}")
        excl = set(exclude_keys)
        if excl:
            available = np.array([k not in excl for k in keys_list], dtype=bool)
    elif list(exclude_keys):
        raise AcquisitionInputError("exclude_keys needs candidate_keys")
    weight = np.ones(n)
    if cost is not None:
        c = np.asarray(cost, dtype=float)
        if c.shape != (n,):
            raise AcquisitionInputError(f"cost has shape {c.shape}, expected ({n},)")
        known = np.isfinite(c) & (c > 0)
        available &= known
        weight = np.where(known, c, 1.0)
    if not available.any():
        raise EmptyPoolError("no candidate left after excluding evaluated/pending keys")
    q_eff = int(min(q, available.sum()))
    rng = np.random.default_rng(seed)

    ehvi0 = ehvi_2d(mu, sd, f, r)
    if strategy == Strategy.RANDOM:
        chosen = rng.choice(np.flatnonzero(available), size=q_eff, replace=False)
        at_pick = ehvi0[chosen]
    elif strategy == Strategy.EHVI:
        score = np.where(available, ehvi0 / weight, -np.inf)
        # stable top-q: sort by -score, ties by index
        chosen = np.argsort(-score, kind="stable")[:q_eff]
        at_pick = ehvi0[chosen]
    else:
        chosen_l: list[int] = []
        at_l: list[float] = []
        front_f = f.copy()
        var = sd ** 2
        sd_cur = sd.copy()
        score = ehvi0.copy()
        avail = available.copy()
        low_rank: list[tuple[np.ndarray, np.ndarray]] = []  # (v_l (n,2), denom (2,))
        for _ in range(q_eff):
            s_masked = np.where(avail, score / weight, -np.inf)
            i = int(np.argmax(s_masked))
            chosen_l.append(i)
            at_l.append(float(score[i]))
            avail[i] = False
            front_f = np.vstack([front_f, mu[i]])
            if cross_cov is not None:
                c = np.asarray(cross_cov(i), dtype=float)
                if c.shape != mu.shape or not np.all(np.isfinite(c)):
                    raise AcquisitionInputError(
                        f"cross_cov({i}) must return a finite {mu.shape} array, got {c.shape}")
                for v_l, d_l in low_rank:
                    c = c - v_l * (v_l[i] / d_l)[None, :]
                denom = np.maximum(var[i], 1e-300)
                var = np.maximum(var - c ** 2 / denom[None, :], 0.0)
                low_rank.append((c, denom))
                sd_cur = np.sqrt(var)
            if len(chosen_l) < q_eff:
                score = ehvi_2d(mu, sd_cur, front_f, r)
        chosen = np.asarray(chosen_l, dtype=int)
        at_pick = np.asarray(at_l)

    chosen = np.asarray(chosen, dtype=int)
    believed = hypervolume_2d(np.vstack([f, mu[chosen]]), r) - hypervolume_2d(f, r)
    eg, se = expected_batch_gain(mu[chosen], sd[chosen], f, r, n_samples=n_mc, rng=rng)
    return BatchSelection(
        indices=chosen,
        keys=[keys_list[i] for i in chosen] if keys_list is not None else None,
        strategy=strategy,
        ehvi=np.asarray(at_pick, dtype=float),
        ehvi_initial=ehvi0[chosen],
        believed_gain=float(believed),
        expected_gain=eg,
        expected_gain_se=se,
    )


# --------------------------------------------------------------------------- limit line
def probability_beyond_line(mean, std, limit_line, *, n_col: int = 0, abbe_col: int = 1) -> np.ndarray:
    """P(n_D lies above the limit line at the candidate's own ν_D), per candidate.

    ``mean``/``std`` are (n, ≥2) arrays in ORIGINAL units holding n_D (column ``n_col``)
    and ν_D (column ``abbe_col``).  Treating n ~ N(μ_n, σ_n²) and ν ~ N(μ_ν, σ_ν²) as
    independent, and the line n_line(ν) = n_1 + s (ν − ν_1) being linear, the margin
    D = n − n_line(ν) is exactly Gaussian with mean μ_n − n_line(μ_ν) and variance
    σ_n² + s² σ_ν², so P = Φ(E[D] / sd[D]) (no further approximation; the independence of
    the two GP posteriors is the only assumption).  σ = 0 gives 0 or 1.
    """
    mu = _as_matrix(mean, "mean", ncols=None, allow_empty=False)
    sd = _as_matrix(std, "std", ncols=None, allow_empty=False)
    if mu.shape != sd.shape:
        raise AcquisitionInputError(f"mean {mu.shape} and std {sd.shape} differ in shape")
    if mu.shape[1] <= max(n_col, abbe_col):
        raise AcquisitionInputError(f"mean needs columns {n_col} and {abbe_col}")
    if np.any(sd < 0):
        raise AcquisitionInputError("std contains negative values")
    s = limit_line.slope
    m_d = mu[:, n_col] - np.asarray(limit_line.n_at(mu[:, abbe_col]), dtype=float)
    s_d = np.sqrt(sd[:, n_col] ** 2 + (s * sd[:, abbe_col]) ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(s_d > 0, m_d / np.where(s_d > 0, s_d, 1.0), np.where(m_d > 0, np.inf, -np.inf))
    return ndtr(z)
