"""Packing-coefficient density estimate: an independent cross-check on every MD density.

Amorphous polymers fill a nearly constant fraction K of their volume with van der Waals spheres
(Kitaigorodskii's packing coefficient; for amorphous polymers K ≈ 0.68, Van Krevelen & Te Nijenhuis,
*Properties of Polymers*, 4th ed., ch. 4). Hence

    ρ = K · M / (N_A · V_vdW)          (g/cm³; M g/mol, V_vdW Å³ × 1e-24 cm³/Å³)

with V_vdW the van der Waals volume of one repeat unit, taken as V(trimer) − V(dimer) of the
CH3-capped oligomers (caps and end effects cancel), each from RDKit's grid volume
(``AllChem.ComputeMolVolume``, 0.2 Å grid) on an ETKDG conformer.

``K_PACKING`` was fitted (mean of ρ_exp·N_A·V_vdW/M) on the 80 amorphous polymers (all but the
10 siloxanes, whose Si the builder does not support) of
``polymer_density_dev.csv`` — experimental room-temperature densities from the reference table of
Microsoft's SimPoly project ("PolyArena", arXiv 2510.13696); ``benchmarks/bench_density.py``
refits it and prints the estimate's error beside the MD's.
"""
from __future__ import annotations

__all__ = ["K_PACKING", "vdw_volume_per_unit", "packing_density_estimate",
           "cross_check_warning", "CROSS_CHECK_TOLERANCE"]

N_A = 6.02214076e23
K_PACKING = 0.6374             # fitted on the 80 dev polymers without Si (SD 0.030; RMS 4.7 %)
CROSS_CHECK_TOLERANCE = 0.06   # relative MD-vs-estimate difference that earns a warning


def _grid_volume(psmiles: str, dp: int, seed: int, deadline: float | None = None) -> float:
    from rdkit.Chem import AllChem  # noqa: PLC0415

    from core.simulation.build import build_chain  # noqa: PLC0415

    mol = build_chain(psmiles, dp, seed=seed, deadline=deadline).mol
    return float(AllChem.ComputeMolVolume(mol, confId=-1, gridSpacing=0.2, boxMargin=2.0))


_VOLUMES: dict[str, float] = {}  # vdw_volume_per_unit by polymer SMILES (this process)


def vdw_volume_per_unit(psmiles: str, *, deadline: float | None = None) -> float:
    """Van der Waals volume of one repeat unit (Å³): grid volume of the capped trimer minus dimer.

    ``deadline`` (a ``time.monotonic()`` value) bounds the oligomers' embedding (BuildError
    past it); results are kept per polymer for this process."""
    hit = _VOLUMES.get(psmiles)
    if hit is None:
        hit = _grid_volume(psmiles, 3, 1, deadline) - _grid_volume(psmiles, 2, 1, deadline)
        if len(_VOLUMES) >= 4096:
            _VOLUMES.clear()
        _VOLUMES[psmiles] = hit
    return hit


def packing_density_estimate(psmiles: str, *, k: float = K_PACKING,
                             deadline: float | None = None) -> dict:
    """ρ = K·M/(N_A·V_vdW) for a repeat unit; returns {"density" g/cm³, "vdw_volume_A3", "k"}.
    ``deadline``: as for :func:`vdw_volume_per_unit`."""
    from core.simulation.build import repeat_unit_mass  # noqa: PLC0415

    v = vdw_volume_per_unit(psmiles, deadline=deadline)
    m = repeat_unit_mass(psmiles)
    if not v > 0:
        raise ValueError(f"Non-positive van der Waals volume for {psmiles!r}.")
    return {"density": k * m / (N_A * v * 1e-24), "vdw_volume_A3": v, "k": k}


def cross_check_warning(rho_md: float, rho_est: float | None, *,
                        tol: float = CROSS_CHECK_TOLERANCE) -> str | None:
    """A warning when the MD density differs from the packing estimate by more than ``tol``."""
    if rho_est is None or not rho_md or not rho_est:
        return None
    rel = rho_md / rho_est - 1.0
    if abs(rel) <= tol:
        return None
    return (f"MD density {rho_md:.3f} g/cm³ differs by {rel:+.1%} from the packing-coefficient "
            f"estimate {rho_est:.3f} g/cm³ (tolerance ±{tol:.0%}); check the structure and the "
            "force field before trusting this result.")
