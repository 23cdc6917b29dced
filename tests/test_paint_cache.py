"""What the Overview shares between sessions (pages._pareto_chart.SharedCache), the data digest
that keys it (core.ui.views.frame_digest) and the opt-in phase timings (pages._profile).
Behaviour only: the speed itself is measured by benchmarks/bench_paint.py."""
from __future__ import annotations

import io
import json
from contextlib import redirect_stderr

import pandas as pd

from pages import _profile as profile
from core.ui.views import frame_digest
from pages._pareto_chart import SharedCache


def _obs() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2], "n_D": [1.6, 1.7], "abbe_number": [30.0, 40.0],
                         "psmiles": ["*CC*", None],
                         "result": [{"preset": "quick"}, None]})


def test_frame_digest_follows_the_values() -> None:
    df = _obs()
    assert frame_digest(df) == frame_digest(df.copy())
    assert frame_digest(df) != frame_digest(df.assign(n_D=[1.6, 1.71]))
    assert frame_digest(df) != frame_digest(df.assign(result=[{"preset": "smoke"}, None]))
    assert frame_digest(df) != frame_digest(df.iloc[::-1])      # order counts
    assert frame_digest(df, ["id"]) == frame_digest(df.assign(n_D=0.0), ["id", "missing"])
    assert frame_digest(None) == ""
    assert frame_digest(df.iloc[0:0]) != frame_digest(df)


def test_shared_cache_builds_once_and_keeps_the_recent() -> None:
    cache: SharedCache[str] = SharedCache(max_entries=2)
    calls: list[str] = []

    def build(v: str, share: bool = True):
        return lambda: (calls.append(v) or v, share)

    assert cache.get_or_build("a", build("A")) == "A"
    assert cache.get_or_build("a", build("other")) == "A"       # the first session's value
    assert calls == ["A"]
    assert cache.get_or_build("b", build("B", share=False)) == "B"
    assert cache.get("b") is None and len(cache) == 1             # not shareable: not kept
    cache.put("c", "C")
    cache.get("a")                                                # a is now the most recent
    cache.put("d", "D")                                           # c goes, not a
    assert cache.get("a") == "A" and cache.get("c") is None and cache.get("d") == "D"


def test_profile_is_silent_unless_enabled(monkeypatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(profile, "ENABLED", False)
    with redirect_stderr(err):
        profile.start()
        with profile.phase("store reads"):
            pass
        profile.emit("full run")
    assert err.getvalue() == ""

    monkeypatch.setattr(profile, "ENABLED", True)
    with redirect_stderr(err):
        profile.start()
        with profile.phase("page"):
            with profile.phase("store reads"):
                pass
            profile.emit("overview fragment")   # inside the full run's phase: not written
        profile.emit("full run", campaign="big")
    lines = [x for x in err.getvalue().splitlines() if x.startswith(profile.PREFIX)]
    assert len(lines) == 1
    rec = json.loads(lines[0][len(profile.PREFIX):])
    assert rec["run"] == "full run" and rec["campaign"] == "big"
    assert {"page", "store reads", "total_ms"} <= set(rec)
    assert rec["page"] >= rec["store reads"] >= 0.0
