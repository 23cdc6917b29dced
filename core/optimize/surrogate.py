"""Gaussian-process surrogate: one GP per objective (scikit-learn), targets z-scored inside.

Kernels (``kernel=`` argument; inputs are the 170-d force-field kernel mean embedding, whose
entries already lie in [0, 1]):

``"published"``   ConstantKernel · RBF(isotropic) + WhiteKernel on the raw descriptor — the
                  SPACIER / RadonPy default (``spacier.ml.model.sklearn_GP``).
``"matern"``      ConstantKernel · Matern(ν = 5/2, isotropic) + WhiteKernel on the raw
                  descriptor (a min–max rescaling with training ranges was tried and lost
                  accuracy: it inflates rare, nearly constant features).  **Default.**
``"matern_ard"``  Matern 5/2 with one length scale per non-constant feature, inputs min–max
                  scaled with the training ranges (slow, over-fits below a few hundred points).
``"minmax"``      ConstantKernel · MinMax (continuous Tanimoto) + WhiteKernel:
                  k(x, x') = Σ min(x_i, x'_i) / Σ max(x_i, x'_i), a positive-definite kernel
                  for non-negative vectors (Ralaivola et al., Neural Netw. 18, 1093 (2005));
                  no length scale to fit, natural for histogram-like embeddings.
``"expminmax"``   exp((T − 1)/ℓ) with T the MinMax similarity (ℓ fitted).

:data:`DEFAULT_KERNEL` was chosen by cross-validation on PI1070 (refractive_index, density, Cp;
``benchmarks/bench_surrogate_cv.py``).  Mean R² over the three properties, training on 100
random polymers (5 repeats): matern 0.912, published 0.908, expminmax 0.884, minmax 0.882,
matern_ard (n only) 0.77; 5-fold CV over all ~1075 polymers: matern 0.972 (n 0.958, ρ 0.983,
Cp 0.974), published 0.971, minmax 0.964.  Calibration of the predictive σ for matern: 72–77 %
of held-out points inside ±1σ (ideal 68 %), 94–95 % inside ±2σ (ideal 95 %) in 5-fold CV;
66–74 % / 91–93 % with 100 training points (tails slightly too narrow).
Matern 5/2 is also the better-founded choice (RBF's infinite smoothness is rarely right for
structure–property maps; Stein 1999).

``GPModel.predict`` returns the mean and the standard deviation of the *predictive*
distribution of a new observation (latent variance + fitted white noise) in ORIGINAL target
units.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import (
    RBF,
    ConstantKernel,
    Hyperparameter,
    Kernel,
    Matern,
    NormalizedKernelMixin,
    WhiteKernel,
)

from core.errors import InputError

__all__ = [
    "SurrogateInputError",
    "KERNELS",
    "DEFAULT_KERNEL",
    "MinMaxKernel",
    "ExpMinMaxKernel",
    "GPModel",
    "fit_gp",
    "MultiObjectiveSurrogate",
    "fit_surrogates",
]

KERNELS = ("published", "matern", "matern_ard", "minmax", "expminmax")
DEFAULT_KERNEL = "matern"


class SurrogateInputError(InputError):
    """Bad input to the surrogate (shape, NaN/inf, too few points, unknown kernel)."""


class MinMaxKernel(NormalizedKernelMixin, Kernel):
    """k(x, y) = Σ_i min(x_i, y_i) / Σ_i max(x_i, y_i) for x, y ≥ 0 (continuous Tanimoto).

    Uses Σmin = (Σx + Σy − |x − y|₁)/2 and Σmax = (Σx + Σy + |x − y|₁)/2, so only an L1
    distance matrix is formed (no n×m×d tensor).  No hyper-parameters; k(x, x) = 1.
    """

    def __call__(self, X, Y=None, eval_gradient=False):
        X = np.atleast_2d(X)
        Yv = X if Y is None else np.atleast_2d(Y)
        sx = X.sum(1)[:, None]
        sy = Yv.sum(1)[None, :]
        l1 = cdist(X, Yv, "cityblock")
        num = sx + sy - l1
        den = sx + sy + l1
        K = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
        if eval_gradient:
            if Y is not None:
                raise ValueError("Gradient can only be evaluated when Y is None.")
            return K, np.empty((X.shape[0], X.shape[0], 0))
        return K

    def is_stationary(self):
        return False

    @property
    def hyperparameters(self):
        return []

    def get_params(self, deep=True):
        return {}

    def __repr__(self):
        return "MinMax()"


class ExpMinMaxKernel(NormalizedKernelMixin, Kernel):
    """k(x, y) = exp((T(x, y) − 1)/ℓ) with T the MinMax (Tanimoto) similarity.

    Positive definite because exp of a PD kernel is PD (power series with positive
    coefficients); ℓ → ∞ gives a constant, small ℓ a sharply local kernel.  ℓ is fitted.
    """

    def __init__(self, length_scale: float = 1.0, length_scale_bounds=(1e-3, 1e2)):
        self.length_scale = length_scale
        self.length_scale_bounds = length_scale_bounds

    @property
    def hyperparameter_length_scale(self):
        return Hyperparameter("length_scale", "numeric", self.length_scale_bounds)

    def __call__(self, X, Y=None, eval_gradient=False):
        T = MinMaxKernel()(X, Y)
        K = np.exp((T - 1.0) / self.length_scale)
        if eval_gradient:
            if Y is not None:
                raise ValueError("Gradient can only be evaluated when Y is None.")
            if self.hyperparameter_length_scale.fixed:
                return K, np.empty((K.shape[0], K.shape[0], 0))
            return K, (K * (1.0 - T) / self.length_scale)[:, :, None]
        return K

    def is_stationary(self):
        return False

    def __repr__(self):
        return f"ExpMinMax(length_scale={self.length_scale:.3g})"


def _check_X(X, name: str = "X") -> np.ndarray:
    try:
        arr = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as exc:
        raise SurrogateInputError(f"{name} must be numeric") from exc
    if arr.ndim != 2:
        raise SurrogateInputError(f"{name} must be 2-D (n, d), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise SurrogateInputError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise SurrogateInputError(f"{name} contains NaN or inf")
    return arr


def _make_kernel(name: str, d: int):
    if name == "published":
        return ConstantKernel() * RBF() + WhiteKernel()
    if name == "matern":
        return (ConstantKernel(1.0, (1e-3, 1e3)) * Matern(1.0, (1e-3, 1e3), nu=2.5)
                + WhiteKernel(1e-1, (1e-6, 1e1)))
    if name == "matern_ard":
        return (ConstantKernel(1.0, (1e-3, 1e3)) * Matern(np.full(d, np.sqrt(d)), (1e-2, 1e4), nu=2.5)
                + WhiteKernel(1e-1, (1e-6, 1e1)))
    if name == "minmax":
        return ConstantKernel(1.0, (1e-3, 1e3)) * MinMaxKernel() + WhiteKernel(1e-1, (1e-6, 1e1))
    if name == "expminmax":
        return (ConstantKernel(1.0, (1e-3, 1e3)) * ExpMinMaxKernel(0.3, (1e-3, 1e2))
                + WhiteKernel(1e-1, (1e-6, 1e1)))
    raise SurrogateInputError(f"unknown kernel {name!r}; choose one of {KERNELS}")


_ISOTROPIC_FAST = ("published", "matern")


def _predict_isotropic(gpr: GaussianProcessRegressor, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and predictive std (z-units) for C·RBF + White or C·Matern(5/2) + White.

    Same numbers as ``gpr.predict(Z, return_std=True)`` but the n × n_train distance matrix is
    formed with one matrix product, ‖z‖² + ‖x‖² − 2 z·x (BLAS), instead of ``cdist`` — ~20×
    faster for a 10,000 × 170 pool.  Latent variance k(z, z) = C for both stationary kernels;
    the predictive variance adds the fitted white noise.
    """
    from scipy.linalg import solve_triangular

    kern = gpr.kernel_
    const = float(kern.k1.k1.constant_value)
    base = kern.k1.k2
    noise = float(kern.k2.noise_level)
    ls = float(np.atleast_1d(base.length_scale)[0])
    Xt = gpr.X_train_ / ls
    Zs = Z / ls
    d2 = (Zs * Zs).sum(1)[:, None] + (Xt * Xt).sum(1)[None, :] - 2.0 * (Zs @ Xt.T)
    np.maximum(d2, 0.0, out=d2)
    if isinstance(base, Matern):
        r = np.sqrt(5.0 * d2)
        K = const * (1.0 + r + r * r / 3.0) * np.exp(-r)
    else:
        K = const * np.exp(-0.5 * d2)
    mean = K @ gpr.alpha_
    V = solve_triangular(gpr.L_, K.T, lower=True, check_finite=False)
    var = const + noise - np.einsum("ij,ij->j", V, V)
    mean = mean * gpr._y_train_std + gpr._y_train_mean
    std = np.sqrt(np.maximum(var, 0.0)) * gpr._y_train_std
    return mean, std


@dataclass
class GPModel:
    """A fitted single-objective GP.  Use :func:`fit_gp` to build one."""

    gpr: GaussianProcessRegressor
    kernel: str
    y_mean: float
    y_std: float
    n_features: int
    cols: np.ndarray | None = None  # kept input columns (None = all)
    lo: np.ndarray | None = None  # min-max scaling (None = raw)
    span: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    def _transform(self, X) -> np.ndarray:
        arr = _check_X(X)
        if arr.shape[1] != self.n_features:
            raise SurrogateInputError(
                f"X has {arr.shape[1]} features, the model was fitted on {self.n_features}")
        if self.cols is not None:
            arr = arr[:, self.cols]
        if self.lo is not None:
            arr = (arr - self.lo) / self.span
        return arr

    @property
    def noise_var(self) -> float:
        """Fitted white-noise variance in original units²."""
        k = self.gpr.kernel_
        return float(k.k2.noise_level) * self.y_std ** 2

    def predict(self, X, *, include_noise: bool = True, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and std at X (n, d), in original target units.

        ``include_noise=True`` (default): std of a new observation (latent + white noise);
        ``False``: std of the latent function.
        """
        Z = self._transform(X)
        means, stds = [], []
        fast = self.kernel in _ISOTROPIC_FAST
        for s in range(0, Z.shape[0], chunk):
            if fast:
                m, sd = _predict_isotropic(self.gpr, Z[s:s + chunk])
            else:
                m, sd = self.gpr.predict(Z[s:s + chunk], return_std=True)
            means.append(m)
            stds.append(sd)
        m = np.concatenate(means)
        sd = np.concatenate(stds)
        var = sd ** 2
        if not include_noise:
            var = np.maximum(var - float(self.gpr.kernel_.k2.noise_level), 0.0)
        return m * self.y_std + self.y_mean, np.sqrt(var) * self.y_std

    def latent_cross_covariance(self, X, x_star) -> np.ndarray:
        """Posterior covariance Cov[f(X_i), f(x*)] of the latent function, original units².

        Used by the Kriging-believer batch to shrink σ around fantasised points.
        """
        Z = self._transform(X)
        zs = self._transform(np.atleast_2d(x_star))
        k_latent = self.gpr.kernel_.k1  # ConstantKernel * base, no white noise
        kxs = k_latent(Z, zs)[:, 0]
        kts = k_latent(self.gpr.X_train_, zs)[:, 0]
        ktx = k_latent(self.gpr.X_train_, Z)
        from scipy.linalg import cho_solve

        w = cho_solve((self.gpr.L_, True), kts)
        return (kxs - ktx.T @ w) * self.y_std ** 2


def fit_gp(X, y, kernel: str = DEFAULT_KERNEL, *, seed: int = 0, n_restarts: int = 0,
           max_features_ard: int = 200) -> GPModel:
    """Fit one GP to (X (n, d), y (n,)); targets are z-scored internally.

    ``kernel`` ∈ :data:`KERNELS`.  Hyper-parameters by maximum marginal likelihood
    (L-BFGS-B from the kernel's initial values, plus ``n_restarts`` random restarts seeded by
    ``seed``; default 0: restarts cost 5-10x and found the same optimum on PI1070).
    """
    Xa = _check_X(X)
    try:
        ya = np.asarray(y, dtype=float).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise SurrogateInputError("y must be numeric") from exc
    if ya.shape[0] != Xa.shape[0]:
        raise SurrogateInputError(f"X has {Xa.shape[0]} rows but y has {ya.shape[0]}")
    if not np.all(np.isfinite(ya)):
        raise SurrogateInputError("y contains NaN or inf")
    if Xa.shape[0] < 2:
        raise SurrogateInputError("need at least 2 observations to fit a GP")
    if kernel not in KERNELS:
        raise SurrogateInputError(f"unknown kernel {kernel!r}; choose one of {KERNELS}")
    if isinstance(n_restarts, bool) or int(n_restarts) < 0:
        raise SurrogateInputError("n_restarts must be ≥ 0")
    y_mean = float(ya.mean())
    y_std = float(ya.std())
    if not y_std > 0:
        y_std = 1.0
    yz = (ya - y_mean) / y_std

    cols = lo = span = None
    Z = Xa
    if kernel == "matern_ard":
        rng_ = Xa.max(0) - Xa.min(0)
        cols = np.flatnonzero(rng_ > 1e-12)
        if cols.size == 0:
            cols = np.arange(Xa.shape[1])
        lo = Xa[:, cols].min(0)
        span = np.where(rng_[cols] > 1e-12, rng_[cols], 1.0)
        Z = (Xa[:, cols] - lo) / span
        if Z.shape[1] > max_features_ard:
            raise SurrogateInputError(f"matern_ard limited to {max_features_ard} features")
    elif kernel in ("minmax", "expminmax") and np.any(Xa < 0):
        raise SurrogateInputError("the minmax kernel needs non-negative features")

    gpr = GaussianProcessRegressor(
        kernel=_make_kernel(kernel, Z.shape[1]), alpha=1e-10, normalize_y=False,
        n_restarts_optimizer=int(n_restarts), random_state=int(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gpr.fit(Z, yz)
    return GPModel(gpr=gpr, kernel=kernel, y_mean=y_mean, y_std=y_std, n_features=Xa.shape[1],
                   cols=cols, lo=lo, span=span,
                   info={"kernel_": repr(gpr.kernel_),
                         "log_marginal_likelihood": float(gpr.log_marginal_likelihood_value_)})


@dataclass
class MultiObjectiveSurrogate:
    """Independent GPs, one per objective (``names`` order = column order)."""

    models: dict[str, GPModel]
    names: tuple[str, ...]

    def predict(self, X, *, include_noise: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(mean (n, m), std (n, m)) in original units, columns in ``names`` order."""
        out = [self.models[n].predict(X, include_noise=include_noise) for n in self.names]
        return np.column_stack([o[0] for o in out]), np.column_stack([o[1] for o in out])

    def cross_cov_fn(self, X, scale: Sequence[float] | None = None) -> Callable[[int], np.ndarray]:
        """Callable i -> (n, m) latent posterior covariance of every row of X with row i.

        ``scale`` (m,) divides objective j's covariance by scale_j² (e.g. the std used to
        z-score the objectives for acquisition).  For
        :func:`core.optimize.acquisition.select_batch`.
        """
        Xa = _check_X(X)
        sc = np.ones(len(self.names)) if scale is None else np.asarray(scale, dtype=float)
        if sc.shape != (len(self.names),) or np.any(sc <= 0):
            raise SurrogateInputError("scale must hold one positive value per objective")

        from scipy.linalg import solve_triangular

        cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

        def factors(name: str) -> tuple[np.ndarray, np.ndarray]:
            # Z (transformed pool) and A = L⁻¹ k(X_train, Z), computed once per objective so
            # that each pick costs O(n_train · n) instead of a new n_train × n kernel matrix.
            if name not in cache:
                m = self.models[name]
                Z = m._transform(Xa)
                A = solve_triangular(m.gpr.L_, m.gpr.kernel_.k1(m.gpr.X_train_, Z), lower=True)
                cache[name] = (Z, A)
            return cache[name]

        def fn(i: int) -> np.ndarray:
            cols = []
            for j, n in enumerate(self.names):
                m = self.models[n]
                Z, A = factors(n)
                k = m.gpr.kernel_.k1(Z, Z[i:i + 1])[:, 0]
                cols.append((k - A.T @ A[:, i]) * m.y_std ** 2 / sc[j] ** 2)
            return np.column_stack(cols)

        return fn


def fit_surrogates(X, Y, names: Sequence[str], kernel: str = DEFAULT_KERNEL, *, seed: int = 0,
                   n_restarts: int = 0) -> MultiObjectiveSurrogate:
    """Fit one GP per column of Y (n, m); ``names`` labels the columns."""
    Ya = np.asarray(Y, dtype=float)
    if Ya.ndim == 1:
        Ya = Ya[:, None]
    names = tuple(str(n) for n in names)
    if Ya.ndim != 2 or Ya.shape[1] != len(names):
        raise SurrogateInputError(f"Y shape {Ya.shape} does not match {len(names)} names")
    if len(set(names)) != len(names):
        raise SurrogateInputError("objective names must be unique")
    models = {n: fit_gp(X, Ya[:, j], kernel, seed=seed, n_restarts=n_restarts)
              for j, n in enumerate(names)}
    return MultiObjectiveSurrogate(models=models, names=names)
