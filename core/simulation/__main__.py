"""CLI: ``python -m core.simulation run "<psmiles>" --preset quick --workdir DIR [--threads N]``.

Prints one progress line per event to stderr (``[step] message``) and the result record as JSON
on stdout. ``--until md`` stops after the density step and prints a density record (density, its
error, Tg_sim where the preset measures V(T), force field, protocol); ``--forcefield sage`` uses
OpenFF Sage instead of GAFF2. Rerunning with the same DIR resumes after the last finished step. Exit codes: 0 ok,
2 simulation failure (error class and chemist-readable message on stderr), 3 bad input.
"""
from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.simulation",
                                 description="MD + QM simulation oracle for polymer optics")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="simulate one polymer (resumes in an existing workdir)")
    r.add_argument("psmiles", help="polymer SMILES with two '*', e.g. '*CC(*)c1ccccc1'")
    r.add_argument("--preset", default="quick", help="smoke | quick | standard (default quick)")
    r.add_argument("--workdir", default=None, help="calculation directory (default ./sim_runs/…)")
    r.add_argument("--threads", type=int, default=None, help="OpenMP threads for LAMMPS/PySCF")
    r.add_argument("--mpi-ranks", type=int, default=None, help="MPI ranks for LAMMPS")
    r.add_argument("--until", default=None, choices=["build", "forcefield", "cell", "md", "qm"],
                   help="stop after this step (md: density-only record, no QM)")
    r.add_argument("--forcefield", default=None, choices=["gaff2", "sage"],
                   help="force field (default: the preset's, gaff2)")
    args = ap.parse_args(argv)

    from core.simulation.errors import SimulationError  # noqa: PLC0415
    from core.simulation.pipeline import run_pipeline  # noqa: PLC0415
    from core.simulation.presets import get_preset  # noqa: PLC0415

    t0 = time.time()

    def progress(step: str, msg: str) -> None:
        print(f"[{time.time() - t0:7.1f} s] [{step}] {msg}", file=sys.stderr, flush=True)

    try:
        preset = get_preset(args.preset)
        if args.mpi_ranks:
            preset = preset.with_overrides(mpi_ranks=args.mpi_ranks)
        if args.forcefield:
            preset = preset.with_overrides(forcefield=args.forcefield)
        rec = run_pipeline(args.psmiles, preset, args.workdir, progress=progress,
                           threads=args.threads, until=args.until)
    except ValueError as exc:  # bad input (UnsupportedPolymer is also a SimulationError)
        print(f"INVALID INPUT: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    except SimulationError as exc:
        print(f"FAILED in step '{exc.step}': {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(rec, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
