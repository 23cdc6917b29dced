"""Dilatometry of an MD cooling ladder: glass transition Tg and the equilibrium-melt-line density.

An MD quench is ~10¹⁰ times faster than a laboratory one, so the glass it makes at 300 K keeps the
volume of a melt at a much higher temperature: glassy polymers come out 4–12 % too light. The melt
above Tg, in contrast, equilibrates within picoseconds to nanoseconds, and its specific volume
V_l(T) is what a force field is fitted to reproduce. This module turns the mean specific volumes of
a cooling ladder (NPT at T_1 > T_2 > … , cm³/g) into

* ``Tg`` — the kink of V(T): a continuous two-line (hinge) least-squares fit,
  V(T) = v_g + a_g·(T − Tg) for T < Tg and v_g + a_l·(T − Tg) for T ≥ Tg, Tg scanned on a 1 K grid
  (the dilatometric definition, e.g. Buchholz et al., J. Chem. Phys. 117, 7364 (2002));
* the **melt-line density** at the target temperature T₀ (300 K): the melt line V_l(T) = a + b·T,
  fitted on the ladder points above Tg (+ margin), is extrapolated down to T_ref, and the glass
  follows from there with the glass expansivity given by the Simha–Boyer rule
  (α_l − α_g)·Tg ≈ 0.113 (Simha & Boyer, J. Chem. Phys. 37, 1003 (1962)):

      V(T₀) = V_l(T_ref) · [1 − α_g · (T_ref − T₀)],   α_l = b / V_l(T_ref),
      α_g = max(α_l − K_SB / T_ref, α_min)

  For T_ref ≤ T₀ (rubbery at T₀) the melt line itself is used: V(T₀) = a + b·T₀.

Units: K, cm³/g (specific volume), g/cm³ (density), 1/K (expansivities).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["HingeFit", "fit_hinge", "MeltLineDensity", "melt_line_density",
           "SIMHA_BOYER", "ladder_means", "melt_line_from_ladder"]

SIMHA_BOYER = 0.113        # (α_l − α_g)·Tg, dimensionless (Simha & Boyer 1962)
ALPHA_G_MIN = 1.0e-4       # 1/K: floor for the glass expansivity (typical polymer glasses 1.5–3e-4)
RELIABLE_DENSITY_SE = 0.01  # relative bootstrap error above which a melt-line density is unreliable
RELIABLE_TG_SE_K = 25.0     # K: bootstrap error above which Tg_sim is unreliable


@dataclass(frozen=True)
class HingeFit:
    """Two-line fit of V(T). ``tg`` K; slopes ``a_glass``/``a_melt`` in cm³/(g·K); ``v_tg`` cm³/g."""

    tg: float
    v_tg: float
    a_glass: float
    a_melt: float
    rss: float
    n_points: int


def fit_hinge(t_k: np.ndarray, v: np.ndarray, *, min_side: int = 2,
              weights: np.ndarray | None = None) -> HingeFit:
    """Least-squares continuous hinge fit of V(T); Tg on a 0.5 K grid between the outer points.

    At least ``min_side`` points must lie on each side of Tg. Raises ValueError for fewer than
    2·min_side finite points.
    """
    t = np.asarray(t_k, float)
    y = np.asarray(v, float)
    w = np.ones_like(t) if weights is None else np.asarray(weights, float)
    ok = np.isfinite(t) & np.isfinite(y) & np.isfinite(w) & (w > 0)
    t, y, w = t[ok], y[ok], w[ok]
    if len(t) < 2 * min_side:
        raise ValueError(f"A hinge fit needs at least {2 * min_side} V(T) points, got {len(t)}.")
    order = np.argsort(t)
    t, y, w = t[order], y[order], w[order]
    sw = np.sqrt(w)
    lo, hi = t[min_side - 1], t[-min_side]
    best = None
    for tg in np.arange(lo, hi + 0.25, 0.5):
        below = np.minimum(t - tg, 0.0)
        above = np.maximum(t - tg, 0.0)
        if (t < tg).sum() < min_side or (t > tg).sum() < min_side - 1:
            continue
        x = np.column_stack([np.ones_like(t), below, above])
        coef, *_ = np.linalg.lstsq(x * sw[:, None], y * sw, rcond=None)
        rss = float((((x @ coef) - y) ** 2 * w).sum())
        if best is None or rss < best[0]:
            best = (rss, float(tg), coef)
    if best is None:
        raise ValueError("No admissible Tg between the ladder temperatures.")
    rss, tg, (v0, ag, al) = best
    return HingeFit(tg=tg, v_tg=float(v0), a_glass=float(ag), a_melt=float(al), rss=rss,
                    n_points=int(len(t)))


@dataclass(frozen=True)
class MeltLineDensity:
    """Melt-line estimate: ``density`` g/cm³ at ``t_target`` K; ``t_ref`` K the temperature the melt
    line was extrapolated to; ``alpha_melt``/``alpha_glass`` 1/K; ``n_melt_points`` points used."""

    density: float
    t_target: float
    t_ref: float
    v_ref: float
    alpha_melt: float
    alpha_glass: float
    n_melt_points: int


def melt_line_density(t_melt: np.ndarray, v_melt: np.ndarray, t_ref: float, *,
                      t_target: float = 300.0, k_sb: float = SIMHA_BOYER,
                      alpha_g_min: float = ALPHA_G_MIN) -> MeltLineDensity:
    """Density at ``t_target`` from melt points (K, cm³/g) extrapolated to ``t_ref`` (module doc).

    Needs ≥ 2 melt points; raises ValueError otherwise or when the fitted melt line is not
    increasing with T (no thermal expansion: the points are not an equilibrium melt).
    """
    t = np.asarray(t_melt, float)
    y = np.asarray(v_melt, float)
    if len(t) < 2 or np.ptp(t) <= 0:
        raise ValueError("The melt line needs at least two ladder temperatures above Tg.")
    b, a = np.polyfit(t, y, 1)
    if not b > 0:
        raise ValueError(f"The melt line has a non-positive expansion slope ({b:.3g} cm³/(g·K)); "
                         "the high-temperature points are not an equilibrium melt.")
    if t_ref <= t_target:
        v = a + b * t_target
        v_ref = a + b * t_ref
        alpha_l = b / v_ref
        return MeltLineDensity(density=float(1.0 / v), t_target=t_target, t_ref=float(t_ref),
                               v_ref=float(v_ref), alpha_melt=float(alpha_l),
                               alpha_glass=float("nan"), n_melt_points=int(len(t)))
    v_ref = a + b * t_ref
    alpha_l = b / v_ref
    alpha_g = max(alpha_l - k_sb / t_ref, alpha_g_min)
    v = v_ref * (1.0 - alpha_g * (t_ref - t_target))
    return MeltLineDensity(density=float(1.0 / v), t_target=t_target, t_ref=float(t_ref),
                           v_ref=float(v_ref), alpha_melt=float(alpha_l),
                           alpha_glass=float(alpha_g), n_melt_points=int(len(t)))


def ladder_means(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per set temperature: (T_set K, mean specific volume cm³/g, its block standard error).

    ``rows`` columns: T_set, step, time fs, T, P, PE, E_total, density (g/cm³) — the samples the
    MD cooling ladder writes (``core.simulation.md``), equilibration already excluded.
    """
    from core.simulation.md import block_standard_error  # noqa: PLC0415

    rows = np.asarray(rows, float)
    temps = sorted(set(rows[:, 0].tolist()), reverse=True)
    means, ses = [], []
    for tset in temps:
        vol = 1.0 / rows[rows[:, 0] == tset, 7]
        means.append(vol.mean())
        se = block_standard_error(vol) if len(vol) > 1 else float("nan")
        ses.append(se)
    return np.array(temps), np.array(means), np.array(ses)


def melt_line_from_ladder(t_set: np.ndarray, v: np.ndarray, v_se: np.ndarray, *,
                          t_target: float = 300.0, melt_margin_k: float = 25.0,
                          tg_shift_k: float = 0.0, n_boot: int = 200,
                          seed: int = 0) -> dict:
    """Tg (hinge fit) and the melt-line density from ladder means, with bootstrap errors.

    The melt line uses the points at least ``melt_margin_k`` above the fitted Tg (at least the
    two hottest); it is extrapolated to ``t_ref = Tg − tg_shift_k`` (a cooling-rate correction,
    K; 0 = the MD's own Tg). Errors: parametric bootstrap that redraws every ladder mean from
    N(mean, se) and repeats the whole analysis (Tg fit included). Returns a JSON-ready dict:
    tg_sim_K, tg_sim_stderr_K, density (g/cm³), density_stderr, t_ref_K, alpha_melt_per_K,
    alpha_glass_per_K, n_melt_points, ladder (per-T mean volumes).
    """
    t_set, v, v_se = (np.asarray(x, float) for x in (t_set, v, v_se))

    def once(vv: np.ndarray) -> tuple[float, MeltLineDensity]:
        fit = fit_hinge(t_set, vv)
        melt = t_set >= fit.tg + melt_margin_k
        if melt.sum() < 2:
            melt = t_set >= np.sort(t_set)[-2]
        res = melt_line_density(t_set[melt], vv[melt], fit.tg - tg_shift_k, t_target=t_target)
        return fit.tg, res

    tg, res = once(v)
    rng = np.random.default_rng(seed)
    se = np.where(np.isfinite(v_se) & (v_se > 0), v_se, np.nanmedian(v_se[v_se > 0])
                  if np.any(v_se > 0) else 1e-4)
    tgs, rhos = [], []
    for _ in range(n_boot):
        try:
            tb, rb = once(v + rng.normal(0.0, se))
        except ValueError:
            continue
        tgs.append(tb)
        rhos.append(rb.density)
    tg_se = float(np.std(tgs, ddof=1)) if len(tgs) > 2 else float("nan")
    rho_se = float(np.std(rhos, ddof=1)) if len(rhos) > 2 else float("nan")
    return {
        "tg_sim_K": float(tg), "tg_sim_stderr_K": tg_se,
        "density": res.density, "density_stderr": rho_se,
        # a ladder too short or too noisy for its own conclusions says so
        "reliable": bool(rho_se <= RELIABLE_DENSITY_SE * res.density
                         and tg_se <= RELIABLE_TG_SE_K),
        "t_ref_K": res.t_ref, "alpha_melt_per_K": res.alpha_melt,
        "alpha_glass_per_K": res.alpha_glass, "n_melt_points": res.n_melt_points,
        "tg_shift_K": float(tg_shift_k),
        "ladder": [{"T_K": float(a), "v_cm3_g": float(b), "v_stderr": float(c)}
                   for a, b, c in zip(t_set, v, v_se)],
    }
