"""Crash-safe file writes: write under a temporary name in the same directory, then rename.

``os.replace`` within one file system is atomic, so a reader (the dashboard, a resumed pipeline,
another runner) sees either the old file or the complete new one, never a torn one, even when the
writer is killed mid-write.  Temporary names come from ``tempfile.mkstemp`` and so are unique
across processes *and* threads; a failed write removes its temporary file.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_copy"]


def _replace_with(path: Path, fill) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fill(fh)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically (the parent directory must exist)."""
    _replace_with(path, lambda fh: fh.write(data))


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` by ``text`` atomically."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: Path, obj: Any, **dumps_kw: Any) -> None:
    """Replace ``path`` by ``json.dumps(obj, **dumps_kw)`` atomically (serialised before the
    temporary file is created, so an unserialisable object leaves nothing behind)."""
    atomic_write_text(path, json.dumps(obj, **dumps_kw))


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy ``src`` over ``dst`` atomically."""
    with open(src, "rb") as fin:
        _replace_with(dst, lambda fh: shutil.copyfileobj(fin, fh))
