"""Linear calibration of simulated optical properties to experiment — a separate, labelled output.

The simulation oracle reports raw (uncalibrated) n_D and ν_D. RadonPy/SPACIER, like most
all-atom MD + QM workflows, is systematically off (GAFF2 densities run low, which pulls n_D down;
the QM method sets the dispersion, hence ν_D). A least-squares line y_exp = a + b·y_sim fitted
on polymers with measured values corrects the bias. It is never applied silently: callers show
it as "calibrated (linear, <preset>)" beside the raw number, with its leave-one-out error.

Leave-one-out (LOO) error: each polymer is predicted by the line fitted without it; for
ordinary least squares the LOO residual is e_i / (1 − h_ii) with leverage
h_ii = 1/n + (x_i − x̄)² / Σ(x_j − x̄)² (e.g. Hastie, Tibshirani & Friedman, ESL §7.10).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.errors import InputError

__all__ = ["LinearCalibration", "fit_linear", "CalibrationError", "load_calibration",
           "calibrated_values", "worth_shipping", "DEFAULT_CALIBRATION"]

DEFAULT_CALIBRATION = Path(__file__).resolve().parents[2] / "assets" / "calibration_quick.json"


class CalibrationError(InputError):
    """Too few or unusable points to fit a calibration line."""


@dataclass(frozen=True)
class LinearCalibration:
    """y_cal = intercept + slope · y_sim for one property (``n_D`` or ``abbe_number``)."""

    prop: str
    intercept: float
    slope: float
    n_points: int
    rmse_fit: float          # in-sample RMSE (property units)
    rmse_loo: float          # leave-one-out RMSE (property units)
    mape_loo: float          # leave-one-out mean absolute percentage error (fraction)
    raw_rmse: float          # RMSE of the uncalibrated values on the same points
    raw_mape: float
    label: str = ""

    def apply(self, y_sim: float | np.ndarray) -> float | np.ndarray:
        """Calibrated value(s) of raw simulated value(s)."""
        out = self.intercept + self.slope * np.asarray(y_sim, dtype=float)
        return float(out) if np.ndim(out) == 0 else out

    def to_dict(self) -> dict:
        return asdict(self)


def fit_linear(prop: str, y_sim, y_exp, *, label: str = "") -> LinearCalibration:
    """Ordinary least squares y_exp ≈ a + b·y_sim with in-sample and leave-one-out errors.

    Raises :class:`CalibrationError` for fewer than 3 finite pairs or constant ``y_sim``.
    """
    x = np.asarray(y_sim, dtype=float)
    y = np.asarray(y_exp, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise CalibrationError(f"{prop}: simulated and experimental values must be two "
                               f"1-D sequences of equal length, got {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    if n < 3:
        raise CalibrationError(f"{prop}: need at least 3 polymers with both values, got {n}")
    sxx = float(np.sum((x - x.mean()) ** 2))
    if sxx <= 1e-12 * max(1.0, float(np.sum(x * x))):
        raise CalibrationError(f"{prop}: the simulated values are all equal; no line can be fitted")
    b = float(np.sum((x - x.mean()) * (y - y.mean())) / sxx)
    a = float(y.mean() - b * x.mean())
    resid = y - (a + b * x)
    h = 1.0 / n + (x - x.mean()) ** 2 / sxx
    loo = resid / (1.0 - h)
    return LinearCalibration(
        prop=prop, intercept=a, slope=b, n_points=n,
        rmse_fit=float(np.sqrt(np.mean(resid ** 2))),
        rmse_loo=float(np.sqrt(np.mean(loo ** 2))),
        mape_loo=float(np.mean(np.abs(loo) / np.abs(y))),
        raw_rmse=float(np.sqrt(np.mean((x - y) ** 2))),
        raw_mape=float(np.mean(np.abs(x - y) / np.abs(y))),
        label=label)


def load_calibration(path: str | Path = DEFAULT_CALIBRATION) -> dict:
    """The shipped calibration: {"preset", "polymers", "source", "date", "lines": {"n_D":
    LinearCalibration, "abbe_number": LinearCalibration}}; {} if the file is absent."""
    p = Path(path)
    if not p.is_file():
        return {}
    data = json.loads(p.read_text())
    data["lines"] = {k: LinearCalibration(**v) for k, v in data.get("lines", {}).items()}
    return data


def calibrated_values(result: dict, calibration: dict) -> dict | None:
    """Calibrated values of one simulation record for every property the calibration has a line
    for (``n_D`` and/or ``abbe_number``), or None when it does not apply (no calibration, another
    preset, a missing value). Also ``rmse_loo`` / ``mape_loo`` (per property) and ``label``."""
    lines = calibration.get("lines") if calibration else None
    if not lines or not isinstance(result, dict) or result.get("preset") != calibration.get(
            "preset"):
        return None
    out: dict = {"label": next(iter(lines.values())).label, "rmse_loo": {}, "mape_loo": {}}
    for prop, line in lines.items():
        v = result.get(prop)
        if not isinstance(v, (int, float)) or not np.isfinite(v):
            return None
        out[prop] = float(line.apply(float(v)))
        out["rmse_loo"][prop] = line.rmse_loo
        out["mape_loo"][prop] = line.mape_loo
    return out


def worth_shipping(line: LinearCalibration) -> bool:
    """A line is offered only when it beats the raw values out of sample (LOO RMSE < raw RMSE)."""
    return line.rmse_loo < line.raw_rmse
