"""``python -m core.campaign [--db PATH] COMMAND ...`` (see :mod:`core.campaign.commands`)."""
import sys

from core.campaign.commands import main

sys.exit(main())
