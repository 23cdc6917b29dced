"""Entry point kept for ``python -m core.runner --campaign NAME [--db PATH] [--exit-when-idle]``.

The runner is :mod:`core.execution.runner`; its command line, wired to the campaign's hooks, is
:mod:`core.campaign.runner_cli`.  This file only keeps the documented command (README, the
dashboard's runner start, scripts) working; import from those modules, not from here.
"""
import sys

if __name__ == "__main__":
    from core.campaign.runner_cli import main

    sys.exit(main())
