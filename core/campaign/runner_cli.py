"""``python -m core.runner --campaign NAME [--db PATH] [--poll S] [--exit-when-idle]``.

The composition root of the runner process: it builds a :class:`core.execution.runner.Runner` with
the
campaign layer's hooks (:data:`core.campaign.cycle.RUNNER_HOOKS`: record a finished cycle's metrics,
propose the next batch), installs the signal handlers and runs the loop.  Exit codes: 0 done,
1 the runner failed (see its log and heartbeat), 2 a database or campaign that cannot be used,
3 another runner already holds the campaign's lock.
"""
from __future__ import annotations

import argparse
import signal
import sys

from core.config import default_db_path
from core.campaign.cycle import RUNNER_HOOKS
from core.execution.runner import Runner, RunnerLocked
from core.store import StoreError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (see module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m core.runner",
                                 description="The runner: one process per campaign that owns "
                                             "the dask cluster and executes calculations.")
    ap.add_argument("--campaign", required=True)
    ap.add_argument("--db", default=str(default_db_path()))
    ap.add_argument("--poll", type=float, default=1.0, help="seconds between passes")
    ap.add_argument("--exit-when-idle", action="store_true",
                    help="exit once nothing is queued or running")
    args = ap.parse_args(argv)
    try:
        runner = Runner(args.db, args.campaign, poll_s=args.poll,
                        exit_when_idle=args.exit_when_idle, hooks=RUNNER_HOOKS)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def _on_signal(signum, _frame):
        runner._log(f"signal {signum}: stopping")
        runner.stop()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        return runner.run()
    except RunnerLocked as exc:
        print(f"runner not started: {exc}", file=sys.stderr)
        return 3
    except StoreError as exc:  # read-only or full database before the loop started
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
