"""Opt-in phase timings of a dashboard script run (``OPTIPOLY_PROFILE=1``; off by default).

    with phase("store reads"):
        obs = store.observations(campaign)
    ...
    emit("full run")   # one line on stderr: OPTIPOLY_PROFILE {"run": "full run", ...}

Each Streamlit session runs its script in its own thread, so the timings are kept per thread.
Disabled (the default), :func:`phase` is a shared no-op context manager and :func:`emit` returns
at once: nothing is measured, nothing is written. ``benchmarks/bench_paint.py --phases`` reads
these lines from the server's log. No Streamlit import here (the floor page of the benchmark
uses it too).
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator

__all__ = ["ENABLED", "PREFIX", "start", "phase", "add_bytes", "emit"]

#: read once per server process: timings are either on for the whole server or off
ENABLED: bool = os.environ.get("OPTIPOLY_PROFILE", "") == "1"
#: the marker that starts every profile line on stderr
PREFIX = "OPTIPOLY_PROFILE "

_local = threading.local()
_NOOP = contextlib.nullcontext()


def _table() -> dict[str, float]:
    t = getattr(_local, "t", None)
    if t is None:
        t = _local.t = {}
        _local.start = time.perf_counter()
    return t


def start() -> None:
    """Begin a new run on this thread: forget what an interrupted run (``st.rerun``,
    ``st.stop``) left and count ``total_ms`` from now; no-op when profiling is off."""
    if ENABLED:
        _local.t = None
        _local.depth = 0
        _table()


@contextlib.contextmanager
def _timed(label: str) -> Iterator[None]:
    t = _table()
    _local.depth = getattr(_local, "depth", 0) + 1
    t0 = time.perf_counter()
    try:
        yield
    finally:
        t[label] = t.get(label, 0.0) + 1000.0 * (time.perf_counter() - t0)
        _local.depth -= 1


def phase(label: str) -> contextlib.AbstractContextManager[None]:
    """Context manager adding the wall time (ms) of its block to ``label`` of this thread's
    current run; a no-op unless ``OPTIPOLY_PROFILE=1``."""
    return _timed(label) if ENABLED else _NOOP


def add_bytes(label: str, n: int) -> None:
    """Record a size (bytes) under ``label`` (e.g. the serialised chart arguments); no-op when
    profiling is off."""
    if ENABLED:
        t = _table()
        t[f"bytes:{label}"] = t.get(f"bytes:{label}", 0.0) + float(n)


def emit(run: str, **extra: str) -> None:
    """Write this thread's timings as one JSON line (``PREFIX`` + object with ``run``,
    ``total_ms`` since the first phase, the phases in ms and any ``extra``) to stderr, then
    start afresh; no-op when profiling is off, nothing was timed or a phase is still open (a
    fragment's own emit inside the full run's phase: the full run reports it)."""
    if not ENABLED or getattr(_local, "depth", 0):
        return
    t = getattr(_local, "t", None)
    if not t:
        return
    total = 1000.0 * (time.perf_counter() - _local.start)
    rec = {"run": run, **extra, "total_ms": round(total, 2),
           **{k: round(v, 2) for k, v in t.items()}}
    _local.t = None
    sys.stderr.write(PREFIX + json.dumps(rec) + "\n")
    sys.stderr.flush()
