"""Tests for core.optimize.acquisition: Pareto front, 2-D hypervolume, exact EHVI, batch
selection."""
from __future__ import annotations

import numpy as np
import pytest

from core.optimize.acquisition import (AcquisitionInputError, DuplicateCandidateError,
                                       EmptyPoolError, ehvi_2d, hypervolume_2d,
                                       hypervolume_improvement_2d, pareto_front, pareto_mask,
                                       probability_beyond_line, select_batch)
from core.chem.optics import LimitLine


# ------------------------------------------------------------------ independent reference
def hvi_reference(samples: np.ndarray, front: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """HV(front ∪ {y}) − HV(front) per sample, by a method independent of
    core.optimize.acquisition.

    HV of boxes anchored at ref = Σ_i (a_(i) − a_(i+1)) · cummax b over points sorted by a
    descending; the improvement is box(y) minus its overlap with the dominated region, and the
    overlap is the HV of the front clipped to the box (clipping keeps the a-order).
    """
    y1 = np.maximum(samples[:, :1], ref[0])
    y2 = np.maximum(samples[:, 1:], ref[1])
    box = (y1 - ref[0]) * (y2 - ref[1])
    if front.shape[0] == 0:
        return box[:, 0]
    f = front[np.argsort(-front[:, 0])]
    a = np.clip(f[None, :, 0], ref[0], None)
    b = np.clip(f[None, :, 1], ref[1], None)
    a = np.minimum(a, y1)
    b = np.minimum(b, y2)
    a_next = np.concatenate([a[:, 1:], np.full((a.shape[0], 1), ref[0])], axis=1)
    overlap = np.sum((a - a_next) * (np.maximum.accumulate(b, axis=1) - ref[1]), axis=1)
    return box[:, 0] - overlap


def mc_ehvi(mu, sd, front, ref, n=200_000, seed=0):
    rng = np.random.default_rng(seed)
    out, se = [], []
    for m, s in zip(mu, sd):
        y = m + s * rng.standard_normal((n, 2))
        v = hvi_reference(y, front, ref)
        out.append(v.mean())
        se.append(v.std(ddof=1) / np.sqrt(n))
    return np.array(out), np.array(se)


FRONT = np.array([[0.0, 2.0], [0.5, 1.5], [1.0, 1.0], [1.6, 0.2], [2.0, -0.5]])
REF = np.array([-1.0, -1.0])


# ------------------------------------------------------------------ Pareto front / HV
def test_pareto_mask_hand_example():
    Y = np.array([[1, 3], [2, 2], [3, 1], [1, 1], [2, 2], [0.5, 3], [3, 0.5]])
    assert pareto_mask(Y).tolist() == [True, True, True, False, True, False, False]
    front = pareto_front(Y)
    np.testing.assert_array_equal(front, [[1, 3], [2, 2], [3, 1]])


def test_pareto_mask_three_objectives():
    Y = np.array([[1, 1, 1], [2, 0, 1], [0, 0, 0], [1, 1, 0]])
    assert pareto_mask(Y).tolist() == [True, True, False, False]


def test_pareto_empty():
    assert pareto_mask(np.zeros((0, 2))).shape == (0,)
    assert pareto_front(np.zeros((0, 2))).shape == (0, 2)


def test_hypervolume_hand_computed():
    front = np.array([[1, 3], [2, 2], [3, 1]])
    assert hypervolume_2d(front, [0, 0]) == pytest.approx(6.0)
    # a dominated point and a point below the reference change nothing
    more = np.vstack([front, [[1.5, 1.5], [-1, 10]]])
    assert hypervolume_2d(more, [0, 0]) == pytest.approx(6.0)
    assert hypervolume_2d(front, [1, 1]) == pytest.approx(1.0)  # only (2,2) is above ref
    assert hypervolume_2d(np.zeros((0, 2)), [0, 0]) == 0.0
    assert hypervolume_2d(None, [0, 0]) == 0.0


def test_hypervolume_matches_reference_random():
    rng = np.random.default_rng(3)
    for _ in range(20):
        pts = rng.normal(size=(15, 2))
        ref = np.array([-2.0, -2.0])
        # HV(front) = HVI of the front over an empty set, point by point union
        want = hvi_reference(pts[:1], np.zeros((0, 2)), ref)[0]
        for k in range(1, len(pts)):
            want += hvi_reference(pts[k:k + 1], pts[:k], ref)[0]
        assert hypervolume_2d(pts, ref) == pytest.approx(want, rel=1e-12, abs=1e-12)


# ------------------------------------------------------------------ EHVI
def test_ehvi_matches_monte_carlo():
    mu = np.array([[0.8, 1.7], [2.5, 0.0], [0.0, 0.0], [1.2, 1.2], [-2.0, 3.0]])
    sd = np.array([[0.3, 0.4], [0.5, 0.2], [1.0, 1.0], [0.05, 0.6], [1.5, 0.1]])
    exact = ehvi_2d(mu, sd, FRONT, REF)
    mc, se = mc_ehvi(mu, sd, FRONT, REF)
    assert np.all(np.abs(exact - mc) <= 5 * se + 1e-12), (exact, mc, se)


def test_ehvi_empty_front_matches_mc_and_closed_form():
    mu = np.array([[0.2, -0.3]])
    sd = np.array([[0.7, 0.4]])
    exact = ehvi_2d(mu, sd, np.zeros((0, 2)), [0.0, 0.0])
    mc, se = mc_ehvi(mu, sd, np.zeros((0, 2)), np.array([0.0, 0.0]))
    assert abs(exact[0] - mc[0]) <= 5 * se[0]
    assert ehvi_2d(mu, sd, None, [0.0, 0.0])[0] == pytest.approx(exact[0])


def test_ehvi_sigma_zero_is_deterministic_improvement():
    pts = np.array([[0.75, 1.8], [3.0, 3.0], [0.5, 1.5], [-2.0, 5.0], [1.2, 0.1]])
    got = ehvi_2d(pts, np.zeros_like(pts), FRONT, REF)
    want = hvi_reference(pts, FRONT, REF)
    np.testing.assert_allclose(got, want, atol=1e-12)
    # [0.5, 1.5] is on the front, [1.2, 0.1] is dominated -> 0; [-2, 5] is left of ref -> 0
    assert got[2] == 0 and got[4] == 0 and got[3] == 0
    # continuity of the σ -> 0 limit
    near = ehvi_2d(pts, np.full_like(pts, 1e-7), FRONT, REF)
    np.testing.assert_allclose(near, want, atol=1e-6)
    np.testing.assert_allclose(hypervolume_improvement_2d(pts, FRONT, REF), want, atol=1e-12)


def test_ehvi_points_far_below_reference_are_zero():
    mu = np.array([[-50.0, -50.0], [-50.0, 5.0]])
    got = ehvi_2d(mu, np.ones_like(mu), FRONT, REF)
    assert np.all(got >= 0) and np.all(got < 1e-100)


def test_ehvi_front_below_reference_is_ignored():
    front = np.array([[-5.0, 10.0], [10.0, -5.0]])  # neither strictly dominates ref
    mu, sd = np.array([[0.0, 0.0]]), np.array([[0.5, 0.5]])
    assert ehvi_2d(mu, sd, front, REF)[0] == pytest.approx(ehvi_2d(mu, sd, None, REF)[0])


def test_ehvi_vectorised_equals_one_by_one():
    rng = np.random.default_rng(1)
    mu = rng.normal(size=(50, 2))
    sd = rng.uniform(0, 1, size=(50, 2))
    sd[::7] = 0.0
    allv = ehvi_2d(mu, sd, FRONT, REF)
    one = np.array([ehvi_2d(mu[i:i + 1], sd[i:i + 1], FRONT, REF)[0] for i in range(50)])
    np.testing.assert_allclose(allv, one, rtol=1e-13, atol=1e-15)
    assert np.all(allv >= 0)


@pytest.mark.parametrize(
    "mean,std,front,ref,exc",
    [
        (np.zeros((3, 3)), np.ones((3, 3)), FRONT, REF, AcquisitionInputError),
        (np.zeros(3), np.ones(3), FRONT, REF, AcquisitionInputError),
        (np.zeros((3, 2)), np.ones((2, 2)), FRONT, REF, AcquisitionInputError),
        (np.array([[np.nan, 0.0]]), np.ones((1, 2)), FRONT, REF, AcquisitionInputError),
        (np.zeros((1, 2)), np.array([[np.inf, 1.0]]), FRONT, REF, AcquisitionInputError),
        (np.zeros((1, 2)), np.array([[-0.1, 1.0]]), FRONT, REF, AcquisitionInputError),
        (np.zeros((0, 2)), np.zeros((0, 2)), FRONT, REF, EmptyPoolError),
        (np.zeros((1, 2)), np.ones((1, 2)), np.array([[np.nan, 1.0]]), REF, AcquisitionInputError),
        (np.zeros((1, 2)), np.ones((1, 2)), FRONT, [0.0], AcquisitionInputError),
        (np.zeros((1, 2)), np.ones((1, 2)), FRONT, [0.0, np.nan], AcquisitionInputError),
    ],
)
def test_ehvi_bad_input(mean, std, front, ref, exc):
    with pytest.raises(exc):
        ehvi_2d(mean, std, front, ref)


def test_errors_are_value_errors():
    assert issubclass(AcquisitionInputError, ValueError)
    assert issubclass(EmptyPoolError, ValueError)
    assert issubclass(DuplicateCandidateError, ValueError)


# ------------------------------------------------------------------ batches
def _clustered_pool():
    """Ten near-identical high-EHVI candidates plus a distinct good one elsewhere."""
    mu = np.vstack([np.tile([[2.6, 0.4]], (10, 1)) + 1e-3 * np.arange(10)[:, None],
                    [[0.3, 2.6]], [[0.0, 0.0]], [[-0.5, 1.0]]])
    sd = np.full_like(mu, 0.2)
    return mu, sd


def test_select_batch_ehvi_is_top_q():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(200, 2))
    sd = rng.uniform(0.05, 0.5, size=(200, 2))
    sel = select_batch(mu, sd, FRONT, REF, 10, strategy="ehvi")
    e = ehvi_2d(mu, sd, FRONT, REF)
    assert set(sel.indices.tolist()) == set(np.argsort(-e)[:10].tolist())
    np.testing.assert_allclose(sel.ehvi, e[sel.indices])
    assert np.all(np.diff(sel.ehvi) <= 0)
    assert sel.believed_gain >= 0
    # joint expected gain of the batch is at least the best single member's EHVI
    assert sel.expected_gain + 5 * sel.expected_gain_se >= sel.ehvi.max()


def test_select_batch_never_picks_excluded_keys():
    mu, sd = _clustered_pool()
    keys = [f"P{i}" for i in range(len(mu))]
    excl = {"P0", "P1", "P2", "P10"}
    for strategy in ("ehvi", "believer", "random"):
        sel = select_batch(mu, sd, FRONT, REF, 5, strategy=strategy, candidate_keys=keys,
                           exclude_keys=excl, seed=1)
        assert not set(sel.keys) & excl
        assert len(set(sel.indices.tolist())) == 5
        assert sel.keys == [keys[i] for i in sel.indices]


def test_select_batch_fewer_available_than_q():
    mu, sd = _clustered_pool()
    keys = list(range(len(mu)))
    sel = select_batch(mu, sd, FRONT, REF, 10, candidate_keys=keys, exclude_keys=keys[:-3])
    assert sorted(sel.indices.tolist()) == keys[-3:]


def test_select_batch_bad_input():
    mu, sd = _clustered_pool()
    keys = [f"P{i}" for i in range(len(mu))]
    with pytest.raises(DuplicateCandidateError):
        select_batch(mu, sd, FRONT, REF, 2, candidate_keys=keys[:-1] + ["P0"])
    with pytest.raises(EmptyPoolError):
        select_batch(mu, sd, FRONT, REF, 2, candidate_keys=keys, exclude_keys=keys)
    with pytest.raises(AcquisitionInputError):
        select_batch(mu, sd, FRONT, REF, 0)
    with pytest.raises(AcquisitionInputError):
        select_batch(mu, sd, FRONT, REF, 2, strategy="ucb")
    with pytest.raises(AcquisitionInputError):
        select_batch(mu, sd, FRONT, REF, 2, candidate_keys=keys[:3])
    with pytest.raises(EmptyPoolError):
        select_batch(np.zeros((0, 2)), np.zeros((0, 2)), FRONT, REF, 2)


def test_believer_diversifies_a_clustered_pool():
    mu, sd = _clustered_pool()
    top = select_batch(mu, sd, FRONT, REF, 2, strategy="ehvi")
    kb = select_batch(mu, sd, FRONT, REF, 2, strategy="believer")
    assert kb.indices[0] == top.indices[0]
    assert set(top.indices.tolist()) <= set(range(10))  # top-q takes two clones
    assert 10 in kb.indices.tolist()  # believer takes the distinct candidate second
    assert kb.believed_gain > top.believed_gain
    # the second pick's EHVI is conditioned on the first pick's fantasy
    assert kb.ehvi[1] <= kb.ehvi_initial[1] + 1e-12


def test_believer_with_cross_covariance_shrinks_sigma_of_clones():
    mu, sd = _clustered_pool()
    n = len(mu)
    # latent covariance: clones (0..9) perfectly correlated, others independent
    var = sd ** 2

    def cross_cov(i):
        c = np.zeros((n, 2))
        group = range(10) if i < 10 else [i]
        for j in group:
            c[j] = np.sqrt(var[j] * var[i]) * 0.99
        return c

    kb = select_batch(mu, sd, FRONT, REF, 3, strategy="believer", cross_cov=cross_cov)
    assert kb.indices[0] < 10 and 10 in kb.indices.tolist()
    with pytest.raises(AcquisitionInputError):
        select_batch(mu, sd, FRONT, REF, 3, strategy="believer", cross_cov=lambda i: np.ones(3))


def test_random_strategy_is_seeded():
    mu, sd = _clustered_pool()
    a = select_batch(mu, sd, FRONT, REF, 4, strategy="random", seed=7)
    b = select_batch(mu, sd, FRONT, REF, 4, strategy="random", seed=7)
    np.testing.assert_array_equal(a.indices, b.indices)


# ------------------------------------------------------------------ probability beyond the line
def test_probability_beyond_line_exact_vs_mc():
    line = LimitLine((31.0, 1.592), (56.0, 1.525), "t", "test")
    mean = np.array([[1.60, 45.0], [1.50, 40.0], [1.57, 40.0]])
    std = np.array([[0.02, 5.0], [0.01, 2.0], [0.03, 8.0]])
    p = probability_beyond_line(mean, std, line)
    rng = np.random.default_rng(0)
    for k in range(3):
        n = rng.normal(mean[k, 0], std[k, 0], 200_000)
        v = rng.normal(mean[k, 1], std[k, 1], 200_000)
        mc = np.mean(line.is_beyond(n, v))
        assert abs(mc - p[k]) < 5 * np.sqrt(p[k] * (1 - p[k]) / 200_000) + 1e-3
    det = probability_beyond_line(mean, np.zeros_like(mean), line)
    np.testing.assert_array_equal(det, line.is_beyond(mean[:, 0], mean[:, 1]).astype(float))
    with pytest.raises(AcquisitionInputError):
        probability_beyond_line(mean, -std, line)
