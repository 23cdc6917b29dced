"""The campaign vocabulary is spelled out once, in ``core/config.py``.

Every status, preset, strategy and cluster-kind string of ``core/`` (outside ``core/simulation``,
which owns the preset definitions) and ``pages/`` is taken from :mod:`core.config`.  The check
reads the Python tokens: a string literal that *is* one of the vocabulary values, or an SQL
fragment comparing with one (``status='queued'``), is reported with its file and line.  A line
that uses one of these words for something else (a dask future state, a dict key of a page
summary, a column name) says so with a ``# not vocabulary: <why>`` comment.
"""
from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

from core.config import (PRESET_NAMES, BatchState, CalcState, ClusterKind, CycleState,
                         RunnerState, Strategy)

ROOT = Path(__file__).resolve().parents[1]
VOCABULARY_MODULE = ROOT / "core" / "config.py"
WORDS = ({s.value for e in (CalcState, BatchState, CycleState, Strategy, ClusterKind)
          for s in e} | {RunnerState.STARTING.value, RunnerState.STOPPED.value}
         | set(PRESET_NAMES))
#: "ehvi" is also the column of EHVI values: as a strategy it only counts next to "strateg…"
COLUMN_TOO = {Strategy.EHVI.value}
SQL = re.compile(r"""(?:status|step)\s*(?:=|!=|<>)\s*'(\w+)'|IN\s*\(([^)]*)\)""", re.I)
EXEMPT = "# not vocabulary:"


def _files() -> list[Path]:
    out = [p for p in (ROOT / "core").rglob("*.py")
           if "simulation" not in p.relative_to(ROOT / "core").parts and p != VOCABULARY_MODULE]
    return sorted(out + list((ROOT / "pages").rglob("*.py")) + [ROOT / "app.py"])


def _violations(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type != tokenize.STRING:
            continue
        line = lines[tok.start[0] - 1]
        if EXEMPT in line:
            continue
        body = tok.string
        prefix = re.match(r"[a-zA-Z]*", body).group(0).lower()
        if "f" in prefix or body.endswith(('"""', "'''")):
            value = None  # f-strings and docstrings are not a bare value
        else:
            value = eval(body)  # noqa: S307 - a plain string literal from our own source
        if isinstance(value, str) and value in WORDS and \
                (value not in COLUMN_TOO or "strateg" in line.lower()):
            found.append(f"{path.relative_to(ROOT)}:{tok.start[0]}: {value!r}")
        if not body.endswith(('"""', "'''")):
            for m in SQL.finditer(body):
                quoted = m.group(1) or " ".join(re.findall(r"'(\w+)'", m.group(2) or ""))
                for w in quoted.split():
                    if w in WORDS:
                        found.append(f"{path.relative_to(ROOT)}:{tok.start[0]}: SQL '{w}'")
    return found


def test_no_vocabulary_literals_outside_the_vocabulary_module():
    bad = [v for p in _files() for v in _violations(p)]
    assert not bad, "spell these with core.config names:\n" + "\n".join(bad)


def test_the_check_sees_a_literal(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("x = 'queued'\ny = \"SELECT 1 FROM t WHERE status='done'\"\n"
                     "z = 'running'  # not vocabulary: a dask future state\n")
    assert len(_violations_at(probe)) == 2


def _violations_at(path: Path) -> list[str]:
    global ROOT
    saved, ROOT = ROOT, path.parent
    try:
        return _violations(path)
    finally:
        ROOT = saved


def test_enum_values_are_the_stored_strings():
    assert [s.value for s in CalcState] == ["queued", "running", "done", "failed", "cancelled"]
    assert [s.value for s in BatchState] == ["proposed", "approved", "running", "done", "failed",
                                             "superseded"]
    assert [s.value for s in ClusterKind] == ["local", "slurm", "pbs", "sge", "lsf"]
    assert CalcState.DONE == "done" and f"{CalcState.DONE}" == "done"
    assert CalcState.CANCELLED.is_finished() and not CalcState.RUNNING.is_finished()
    assert PRESET_NAMES == ("smoke", "quick", "standard")
