"""``python -m core.pool generate | import | redescribe ...`` (see :func:`core.pool.main`)."""
from core.pool import main

raise SystemExit(main())
