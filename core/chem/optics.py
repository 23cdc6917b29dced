"""Optics: Lorentz–Lorenz refractive index, Abbe number, the empirical n_D–ν_D limit line,
and the table of reference optical polymers shipped in ``assets/``.

Units: polarisability volume α in Å³ (1 Å³ = 1e-24 cm³), density ρ in g/cm³, repeat-unit
molar mass M in g/mol, wavelengths in nm.  Plots and the limit line use (ν_D, n_D) pairs:
x = Abbe number ν_D, y = refractive index n_D.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.config import WAVELENGTHS_NM
from core.errors import InputError

__all__ = [
    "OpticsInputError",
    "AVOGADRO",
    "WAVELENGTHS_NM",
    "lorentz_lorenz_ratio",
    "refractive_index",
    "abbe_number",
    "LimitLine",
    "ASSETS_DIR",
    "load_default_limit_line",
    "load_reference_polymers",
]

AVOGADRO = 6.02214076e23  # 1/mol (exact, SI 2019)
#: Fraunhofer lines used for n_F, n_D, n_C and ν_D = (n_D − 1)/(n_F − n_C), in nm.
ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"


class OpticsInputError(InputError):
    """Non-physical or malformed input to an optics function."""


def _finite(x, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise OpticsInputError(f"{name} must be numeric, got {x!r}") from exc
    if not np.all(np.isfinite(arr)):
        raise OpticsInputError(f"{name} contains NaN or inf")
    return arr


def _positive_finite(x, name: str) -> np.ndarray:
    arr = _finite(x, name)
    if np.any(arr <= 0):
        raise OpticsInputError(f"{name} must be > 0, got {x!r}")
    return arr


def _out(arr: np.ndarray, *inputs) -> float | np.ndarray:
    return float(arr) if all(np.ndim(i) == 0 for i in inputs) else arr


def lorentz_lorenz_ratio(alpha_A3, density_g_cm3, molar_mass_g_mol) -> float | np.ndarray:
    """Right-hand side of Lorentz–Lorenz, (4π/3)·N_A·ρ·α/M (dimensionless).

    α in Å³ (converted with 1 Å³ = 1e-24 cm³), ρ in g/cm³, M in g/mol.
    """
    a = _positive_finite(alpha_A3, "alpha_A3")
    rho = _positive_finite(density_g_cm3, "density_g_cm3")
    m = _positive_finite(molar_mass_g_mol, "molar_mass_g_mol")
    try:
        r = (4.0 * math.pi / 3.0) * AVOGADRO * rho * a * 1e-24 / m
    except ValueError as exc:  # broadcasting failure
        raise OpticsInputError(f"inputs do not broadcast: {exc}") from exc
    return _out(r, alpha_A3, density_g_cm3, molar_mass_g_mol)


def refractive_index(alpha_A3, density_g_cm3, molar_mass_g_mol) -> float | np.ndarray:
    """Refractive index from Lorentz–Lorenz: (n²−1)/(n²+2) = (4π/3)·N_A·ρ·α/M.

    α: isotropic polarisability volume of the repeat unit at the wavelength of interest (Å³);
    ρ: density (g/cm³); M: repeat-unit molar mass (g/mol, without end caps).
    n = sqrt((1 + 2R)/(1 − R)) with R the right-hand side.  Raises
    :class:`OpticsInputError` for non-positive / non-finite inputs or R ≥ 1 (no real n:
    the Lorentz–Lorenz "polarisation catastrophe").
    """
    r = np.asarray(lorentz_lorenz_ratio(alpha_A3, density_g_cm3, molar_mass_g_mol), dtype=float)
    if np.any(r >= 1.0):
        raise OpticsInputError(
            "Lorentz–Lorenz ratio (4π/3)·N_A·ρ·α/M ≥ 1: no physical refractive index "
            f"(max ratio {float(np.max(r)):.3f}); check α (Å³), ρ (g/cm³) and M (g/mol)")
    n = np.sqrt((1.0 + 2.0 * r) / (1.0 - r))
    return _out(n, alpha_A3, density_g_cm3, molar_mass_g_mol)


def abbe_number(n_D, n_F, n_C) -> float | np.ndarray:
    """Abbe number ν_D = (n_D − 1)/(n_F − n_C) (lines: WAVELENGTHS_NM).

    Requires n_D, n_F, n_C ≥ 1 and normal dispersion n_F > n_C; otherwise raises
    :class:`OpticsInputError`.
    """
    arrs = []
    for v, name in ((n_D, "n_D"), (n_F, "n_F"), (n_C, "n_C")):
        a = _finite(v, name)
        if np.any(a < 1.0):
            raise OpticsInputError(f"{name} must be ≥ 1 (refractive index), got {v!r}")
        arrs.append(a)
    d, f, c = arrs
    try:
        disp = f - c
    except ValueError as exc:
        raise OpticsInputError(f"inputs do not broadcast: {exc}") from exc
    if np.any(disp <= 0):
        raise OpticsInputError("n_F must exceed n_C (normal dispersion); Abbe number undefined")
    return _out((d - 1.0) / disp, n_D, n_F, n_C)


# --------------------------------------------------------------------------- limit line
@dataclass(frozen=True)
class LimitLine:
    """Straight empirical limit line in the (ν_D, n_D) plane through p1 and p2.

    ``p1``/``p2`` are (ν_D, n_D) points with different ν_D.  A polymer is *beyond* the line
    when its n_D lies above the line at its own ν_D (higher n at equal Abbe number, which for
    a line of negative slope is also "to the right").  Points on the line (within ``tol``
    = 1e-9) are not beyond.
    """

    p1: tuple[float, float]
    p2: tuple[float, float]
    label: str = "limit line"
    source: str = ""

    def __post_init__(self) -> None:
        pts = []
        for name in ("p1", "p2"):
            p = getattr(self, name)
            try:
                t = tuple(float(v) for v in p)
            except (TypeError, ValueError) as exc:
                raise OpticsInputError(f"{name} must be a (abbe, n) pair, got {p!r}") from exc
            if len(t) != 2 or not all(math.isfinite(v) for v in t):
                raise OpticsInputError(f"{name} must be a finite (abbe, n) pair, got {p!r}")
            if t[0] <= 0 or t[1] < 1.0:
                raise OpticsInputError(f"{name} needs ν_D > 0 and n_D ≥ 1, got {p!r}")
            object.__setattr__(self, name, t)
            pts.append(t)
        if pts[0][0] == pts[1][0]:
            raise OpticsInputError("p1 and p2 must have different Abbe numbers")
        if not isinstance(self.label, str) or not isinstance(self.source, str):
            raise OpticsInputError("label and source must be strings")

    @property
    def slope(self) -> float:
        """dn_D/dν_D of the line."""
        (x1, y1), (x2, y2) = self.p1, self.p2
        return (y2 - y1) / (x2 - x1)

    def n_at(self, abbe) -> float | np.ndarray:
        """n_D of the line at Abbe number(s) ``abbe`` (linear, extrapolated outside p1–p2)."""
        a = np.asarray(abbe, dtype=float)
        if not np.all(np.isfinite(a)):
            raise OpticsInputError("abbe contains NaN or inf")
        n = self.p1[1] + self.slope * (a - self.p1[0])
        return float(n) if np.ndim(abbe) == 0 else n

    def is_beyond(self, n, abbe, *, tol: float = 1e-9) -> bool | np.ndarray:
        """True where n_D > line(ν_D) + tol (vectorised over n and abbe)."""
        nn = np.asarray(n, dtype=float)
        if not np.all(np.isfinite(nn)):
            raise OpticsInputError("n contains NaN or inf")
        try:
            res = nn > np.asarray(self.n_at(abbe)) + tol
        except ValueError as exc:
            raise OpticsInputError(f"n and abbe do not broadcast: {exc}") from exc
        return bool(res) if np.ndim(res) == 0 else res

    def to_dict(self) -> dict[str, Any]:
        return {"p1": list(self.p1), "p2": list(self.p2), "label": self.label,
                "source": self.source}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LimitLine":
        if not isinstance(d, dict) or "p1" not in d or "p2" not in d:
            raise OpticsInputError("limit line dict needs keys 'p1' and 'p2'")
        return cls(p1=tuple(d["p1"]), p2=tuple(d["p2"]), label=str(d.get("label", "limit line")),
                   source=str(d.get("source", "")))


def load_default_limit_line(path: str | Path | None = None) -> LimitLine:
    """The shipped default line, ``assets/limit_line.json`` (provenance in its ``source``)."""
    p = Path(path) if path is not None else ASSETS_DIR / "limit_line.json"
    with open(p, encoding="utf-8") as fh:
        return LimitLine.from_dict(json.load(fh))


REFERENCE_COLUMNS = ("name", "abbreviation", "psmiles", "n_D", "abbe_number", "class", "source")


def load_reference_polymers(path: str | Path | None = None):
    """Reference optical polymers with experimental n_D and ν_D (``assets/reference_polymers.csv``).

    Columns: name, abbreviation, psmiles, n_D, abbe_number, class, source (see
    ``assets/README_optics.md``).  Returns a pandas DataFrame.
    """
    import pandas as pd

    p = Path(path) if path is not None else ASSETS_DIR / "reference_polymers.csv"
    df = pd.read_csv(p, comment="#")
    missing = [c for c in REFERENCE_COLUMNS if c not in df.columns]
    if missing:
        raise OpticsInputError(f"{p} lacks columns {missing}")
    return df
