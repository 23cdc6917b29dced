"""The folder tree of ``core/`` is the map in ``core/__init__.py``: every package and module is named."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import core

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"


def _names() -> list[str]:
    """Dotted names relative to ``core`` of every package and module under ``core/``."""
    out = []
    for p in sorted(CORE.rglob("*.py")):
        parts = p.relative_to(CORE).with_suffix("").parts
        if "__pycache__" in parts or parts == ("__init__",) or parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append(".".join(parts))
    return out


def test_every_module_is_named_in_the_core_map():
    names = _names()
    assert {"config", "chem.polymer", "store.db", "simulation.pipeline"} <= set(names)
    missing = [n for n in names if f"``{n}``" not in core.__doc__]
    assert not missing, f"name these in core/__init__.py's map: {missing}"


def test_the_map_names_no_module_that_is_gone():
    """A ``name`` of the map under a top-level name of ``core`` is a module, or an attribute of
    a module (``optimize.proposal.propose``), never a module that moved or was removed."""
    modules = set(_names())
    packages = {n for n in modules if (CORE / n.replace(".", "/")).is_dir()}
    top = {n.split(".")[0] for n in modules}
    named = set(re.findall(r"``([a-z_]+(?:\.[a-z_0-9]+)*)``", core.__doc__))
    gone = sorted(n for n in named if n.split(".")[0] in top and n not in modules
                  and n.rsplit(".", 1)[0] not in modules - packages)
    assert not gone, f"the map names modules that do not exist: {gone}"


def test_the_public_command_lines_still_start():
    """``python -m core.X --help`` for every documented CLI (README), after the regrouping."""
    for mod in ("core.campaign", "core.runner", "core.backtest", "core.pool", "core.simulation"):
        res = subprocess.run([sys.executable, "-m", mod, "--help"], cwd=ROOT, text=True,
                             capture_output=True, timeout=300)
        assert res.returncode == 0, (mod, res.stderr[-2000:])
        assert f"python -m {mod}" in res.stdout, (mod, res.stdout[:500])
