"""Entry point kept for ``python -m core.backtest --oracle DIR_OR_CSV ...`` (README).

The back-test is :mod:`core.optimize.backtest`; import from there, not from here.
"""
if __name__ == "__main__":
    from core.optimize.backtest import main

    raise SystemExit(main())
