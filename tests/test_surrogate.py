"""Tests for core.optimize.surrogate: GP fits in original units, kernels, cross-covariance, bad
input."""
from __future__ import annotations

import numpy as np
import pytest

from core.optimize.surrogate import (DEFAULT_KERNEL, KERNELS, ExpMinMaxKernel, MinMaxKernel,
                                     SurrogateInputError, fit_gp, fit_surrogates)


def _toy(n=60, d=4, seed=0, noise=0.05):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, d))
    f = np.sin(3 * X[:, 0]) + X[:, 1] ** 2 - 0.5 * X[:, 2]
    return X, f + noise * rng.standard_normal(n), f


@pytest.mark.parametrize("kernel", ["published", "matern", "minmax", "expminmax"])
def test_fit_predict_original_units(kernel):
    X, y, f = _toy()
    gp = fit_gp(X, 1000.0 + 250.0 * y, kernel, seed=0)
    Xt, _, ft = _toy(n=200, seed=1)
    mu, sd = gp.predict(Xt)
    assert mu.shape == sd.shape == (200,) and np.all(sd > 0)
    rmse = np.sqrt(np.mean((mu - (1000.0 + 250.0 * ft)) ** 2))
    assert rmse < 0.5 * 250.0 * ft.std()  # learns a good part of the signal, in original units
    _, sd_lat = gp.predict(Xt, include_noise=False)
    assert np.all(sd_lat <= sd + 1e-12)


def test_affine_target_equivariance():
    X, y, _ = _toy()
    g1 = fit_gp(X, y, "matern", n_restarts=0)
    g2 = fit_gp(X, 3.0 * y - 7.0, "matern", n_restarts=0)
    m1, s1 = g1.predict(X[:10])
    m2, s2 = g2.predict(X[:10])
    np.testing.assert_allclose(m2, 3.0 * m1 - 7.0, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s2, 3.0 * s1, rtol=1e-6)


def test_calibration_on_noisy_toy():
    X, y, _ = _toy(n=150, noise=0.2, seed=3)
    gp = fit_gp(X, y, DEFAULT_KERNEL)
    Xt, yt, _ = _toy(n=2000, noise=0.2, seed=4)
    mu, sd = gp.predict(Xt)
    inside = np.mean(np.abs(yt - mu) <= 2 * sd)
    assert 0.85 < inside < 0.995


def test_minmax_kernel_matches_definition_and_is_psd():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(30, 6)) * (rng.uniform(size=(30, 6)) > 0.3)
    K = MinMaxKernel()(X)
    brute = np.array([[np.minimum(a, b).sum() / np.maximum(a, b).sum() for b in X] for a in X])
    np.testing.assert_allclose(K, brute, rtol=1e-12)
    assert np.linalg.eigvalsh(K).min() > -1e-10
    np.testing.assert_allclose(np.diag(K), 1.0)
    KE = ExpMinMaxKernel(0.5)(X)
    assert np.linalg.eigvalsh(KE).min() > -1e-10


def test_expminmax_gradient_finite_difference():
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(8, 5))
    k = ExpMinMaxKernel(0.4)
    K, G = k(X, eval_gradient=True)
    h = 1e-6
    kp = k.clone_with_theta(k.theta + h)
    km = k.clone_with_theta(k.theta - h)
    np.testing.assert_allclose(G[:, :, 0], (kp(X) - km(X)) / (2 * h), rtol=1e-5, atol=1e-9)


def test_latent_cross_covariance_matches_sklearn_joint_covariance():
    X, y, _ = _toy(n=40)
    gp = fit_gp(X, 5.0 * y, "matern", n_restarts=0)
    Xt, _, _ = _toy(n=6, seed=9)
    c = gp.latent_cross_covariance(Xt, Xt[2])
    # sklearn joint covariance (includes white noise on its diagonal only)
    _, cov = gp.gpr.predict(Xt, return_cov=True)
    cov = cov * gp.y_std ** 2
    noise = gp.noise_var
    want = cov[:, 2].copy()
    want[2] -= noise
    np.testing.assert_allclose(c, want, rtol=1e-6, atol=1e-10)
    _, sd_lat = gp.predict(Xt[2:3], include_noise=False)
    assert c[2] == pytest.approx(sd_lat[0] ** 2, rel=1e-6)


def test_fit_surrogates_multiobjective():
    X, y, _ = _toy()
    Y = np.column_stack([y, -2 * y + 1])
    sur = fit_surrogates(X, Y, ["a", "b"], kernel="matern")
    mu, sd = sur.predict(X[:7])
    assert mu.shape == sd.shape == (7, 2)
    fn = sur.cross_cov_fn(X[:7], scale=[1.0, 2.0])
    c = fn(3)
    assert c.shape == (7, 2)
    np.testing.assert_allclose(c[:, 1], sur.models["b"].latent_cross_covariance(X[:7], X[3]) / 4,
                               rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(c[:, 0], sur.models["a"].latent_cross_covariance(X[:7], X[3]),
                               rtol=1e-8, atol=1e-12)


def test_bad_input():
    X, y, _ = _toy()
    with pytest.raises(SurrogateInputError):
        fit_gp(X, y[:-1])
    with pytest.raises(SurrogateInputError):
        fit_gp(X[:, 0], y)
    yn = y.copy()
    yn[3] = np.nan
    with pytest.raises(SurrogateInputError):
        fit_gp(X, yn)
    Xn = X.copy()
    Xn[0, 0] = np.inf
    with pytest.raises(SurrogateInputError):
        fit_gp(Xn, y)
    with pytest.raises(SurrogateInputError):
        fit_gp(X, y, "laplace")
    with pytest.raises(SurrogateInputError):
        fit_gp(X[:1], y[:1])
    with pytest.raises(SurrogateInputError):
        fit_gp(X - 1.0, y, "minmax")
    gp = fit_gp(X, y, "matern", n_restarts=0)
    with pytest.raises(SurrogateInputError):
        gp.predict(X[:, :3])
    with pytest.raises(SurrogateInputError):
        gp.predict(np.zeros((0, 4)))
    with pytest.raises(SurrogateInputError):
        fit_surrogates(X, np.column_stack([y, y]), ["a"])
    with pytest.raises(SurrogateInputError):
        fit_surrogates(X, np.column_stack([y, y]), ["a", "a"])
    assert issubclass(SurrogateInputError, ValueError)
    assert set(KERNELS) >= {"published", DEFAULT_KERNEL}


def test_pi1070_refractive_index_small_training(shared_data):
    import pandas as pd

    sb = shared_data / "spacier_benchmark"
    X = pd.read_csv(sb / "X_pool.csv").to_numpy(float)
    y = pd.read_csv(sb / "y_oracle.csv")["refractive_index"].to_numpy(float)
    ok = y != -9999
    X, y = X[ok], y[ok]
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(y))
    tr, te = perm[:150], perm[150:650]
    gp = fit_gp(X[tr], y[tr], DEFAULT_KERNEL)
    mu, sd = gp.predict(X[te])
    r2 = 1 - np.sum((y[te] - mu) ** 2) / np.sum((y[te] - y[te].mean()) ** 2)
    assert r2 > 0.7
    assert 0.8 < np.mean(np.abs(y[te] - mu) <= 2 * sd) < 1.0


@pytest.mark.parametrize("kernel", ["published", "matern"])
def test_fast_isotropic_predict_matches_sklearn(kernel):
    """The BLAS distance path in GPModel.predict equals sklearn's own predict."""
    from core.optimize.surrogate import _predict_isotropic

    rng = np.random.default_rng(3)
    X = rng.random((40, 12))
    y = np.sin(X @ rng.random(12)) + 0.05 * rng.standard_normal(40)
    model = fit_gp(X, y, kernel=kernel)
    Z = model._transform(rng.random((300, 12)))
    m_ref, s_ref = model.gpr.predict(Z, return_std=True)
    m, s = _predict_isotropic(model.gpr, Z)
    np.testing.assert_allclose(m, m_ref, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(s, s_ref, rtol=1e-6, atol=1e-8)
