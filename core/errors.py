"""The error hierarchy of the library: one base, one class per domain.

Every error this package raises on purpose is an :class:`OptipolyError`, so a caller that wants
"anything the library refused" catches one class.  Below it, one class per domain says *where*
the problem lies:

- :class:`InputError` (also a ``ValueError``): the caller's data cannot be used — a polymer
  SMILES, a CSV, a SMARTS pattern, a pool file, too few observations for a proposal …
- :class:`StoreError` (also a ``ValueError``): the SQLite store refused a change or cannot be
  used (``core.store`` defines its subclasses: campaign/batch/calculation not found, invalid
  configuration or state transition, database unavailable).
- :class:`CalculationError`: a calculation could not be run or finished on the runner side
  (work directory unusable, pipeline process died, cancelled).  The simulation package's own
  errors (``core.simulation.errors.SimulationError``: build, charges, MD, SCF …) stay where they
  are until the simulation steps are restructured.
- :class:`ClusterError`: the compute cluster or the runner process cannot be set up (a bad
  profile, a job script that cannot be previewed, a runner that will not start or is locked).

Classes that were ``ValueError`` or ``RuntimeError`` before keep that base as well, so code that
catches the builtin class keeps working.  A broad ``except Exception`` is used only at process
boundaries (a page callback, the runner loop, a worker task, a child process), each with a
comment saying why.
"""
from __future__ import annotations

__all__ = ["OptipolyError", "InputError", "StoreError", "CalculationError", "ClusterError"]


class OptipolyError(Exception):
    """Base class of every error the library raises on purpose; the message is one line."""


class InputError(OptipolyError, ValueError):
    """Input data that cannot be used (bad SMILES, file, table, pattern, too little data)."""


class StoreError(OptipolyError, ValueError):
    """Base class of every store error (bad input or an impossible state change)."""


class CalculationError(OptipolyError):
    """A calculation could not be run or finished by the runner (work dir, process, cancel)."""


class ClusterError(OptipolyError):
    """The compute cluster or the runner process cannot be set up or reached."""
