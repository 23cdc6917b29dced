"""Simulation oracle: polymer SMILES → all-atom MD density (LAMMPS, GAFF2/AM1-BCC) + QM
polarisabilities (PySCF linear response) → n_F, n_D, n_C and the Abbe number ν_D.

Entry point: ``run_pipeline(psmiles, preset, workdir, progress=..., threads=...)`` (pipeline.py);
CLI: ``python -m core.simulation run "<psmiles>" --preset quick --workdir DIR``.
Heavy imports (RDKit, LAMMPS, PySCF) happen lazily inside the steps.
"""
from __future__ import annotations

__all__ = ["run_pipeline", "STEPS", "get_preset", "Preset"]


def __getattr__(name):  # lazy: importing core.simulation stays cheap
    if name in ("run_pipeline", "STEPS"):
        from core.simulation import pipeline  # noqa: PLC0415
        return getattr(pipeline, name)
    if name in ("get_preset", "Preset"):
        from core.simulation import presets  # noqa: PLC0415
        return getattr(presets, name)
    raise AttributeError(name)
