"""core.atomic_io: whole-file replacement, nothing left behind on failure."""
from __future__ import annotations

import json
import threading

import pytest

from core.atomic_io import atomic_copy, atomic_write_bytes, atomic_write_json, atomic_write_text


def test_writes_replace_whole_files(tmp_path):
    f = tmp_path / "a.json"
    atomic_write_json(f, {"x": 1}, indent=1)
    assert json.loads(f.read_text()) == {"x": 1}
    atomic_write_text(f, "short")
    assert f.read_text() == "short"
    atomic_write_bytes(f, b"\x00\x01")
    assert f.read_bytes() == b"\x00\x01"
    g = tmp_path / "b.bin"
    atomic_copy(f, g)
    assert g.read_bytes() == b"\x00\x01"
    assert oct(g.stat().st_mode & 0o777) == oct(0o644)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    f = tmp_path / "state.json"
    atomic_write_json(f, {"ok": True})
    with pytest.raises(TypeError):
        atomic_write_json(f, {"bad": object()})
    with pytest.raises(FileNotFoundError):
        atomic_copy(tmp_path / "missing", f)


    def fail(fh):
        fh.write(b"half")
        raise RuntimeError("killed mid-write")

    from core import atomic_io
    with pytest.raises(RuntimeError):
        atomic_io._replace_with(f, fail)
    assert json.loads(f.read_text()) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_concurrent_writers_in_threads_never_tear_a_file(tmp_path):
    f = tmp_path / "shared.json"
    payloads = [{"writer": i, "pad": "x" * 20000} for i in range(8)]

    def write(p):
        for _ in range(20):
            atomic_write_json(f, p)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert json.loads(f.read_text()) in payloads
    assert [p.name for p in tmp_path.iterdir()] == ["shared.json"]
