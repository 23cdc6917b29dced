"""Errors raised by the simulation pipeline, one class per failure a chemist needs to tell apart.

Every error carries ``step`` (the pipeline step that failed) and a message written for a chemist.
The runner records ``type(err).__name__`` and ``str(err)``; a failed step never yields a number.
"""
from __future__ import annotations


class SimulationError(RuntimeError):
    """Base class of every failure inside the simulation pipeline."""

    step: str = "unknown"

    def __init__(self, message: str, *, step: str | None = None) -> None:
        super().__init__(message)
        if step is not None:
            self.step = step


class BuildError(SimulationError):
    """The polymer chain or capped repeat unit could not be built (e.g. no 3-D embedding)."""

    step = "build"


class UnsupportedAtomType(SimulationError):
    """An atom has no GAFF2 type or no parameters even after parmchk2."""

    step = "forcefield"


class ChargeError(SimulationError):
    """AM1-BCC (sqm) charges failed: SCF not converged in sqm, or antechamber error."""

    step = "forcefield"


class PackingError(SimulationError):
    """The amorphous cell could not be packed without overlaps."""

    step = "cell"


class MDUnstable(SimulationError):
    """LAMMPS lost atoms, produced NaN energies, or the density left physical bounds."""

    step = "md"


class SCFNotConverged(SimulationError):
    """The quantum-chemical SCF did not converge."""

    step = "qm"


class ResponseNotConverged(SimulationError):
    """The linear-response (CPHF/CPKS) equations did not converge."""

    step = "qm"


class StepTimeout(SimulationError):
    """A step exceeded the wall-time limit set by the preset."""


class ExternalProgramError(SimulationError):
    """An external program (antechamber, parmchk2, sqm, packmol, LAMMPS) exited with an error."""


class WorkdirBusy(SimulationError):
    """Another process is already running a calculation in this work directory."""

    step = "pipeline"
