"""The dashboard's Streamlit settings: no stack traces in the browser, full ones in the
server log (the repository's .streamlit/config.toml, read the way ``streamlit run`` reads it:
from the working directory)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytest.importorskip("streamlit.testing.v1")


def test_config_hides_error_details_from_the_browser():
    conf = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    # "none": generic message only. (The boolean false is deprecated and means "stacktrace"
    # in Streamlit >= 1.4x, i.e. tracebacks would still reach the browser.)
    assert conf["client"]["showErrorDetails"] == "none"


def test_uncaught_error_shows_no_trace_and_is_logged_server_side():
    script = textwrap.dedent('''
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_string(
            "def load():\\n    raise RuntimeError('secret /srv/optipoly/var/x.db')\\nload()\\n")
        at.run()
        e = at.exception[0]
        print("BROWSER", repr(e.message), e.stack_trace, repr(e.proto.type))
    ''')
    res = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    browser = next(ln for ln in res.stdout.splitlines() if ln.startswith("BROWSER"))
    assert "secret" not in browser and "load()" not in browser and "RuntimeError" not in browser
    # the server's log (stderr) keeps the whole traceback
    assert "Traceback (most recent call last)" in res.stderr
    assert "RuntimeError: secret /srv/optipoly/var/x.db" in res.stderr


def test_theme_follows_the_system_with_the_accent_in_light_and_dark():
    """No ``base`` is forced: Streamlit follows the browser's / system's light or dark setting
    (tests/test_e2e_pareto_chart.py opens the dashboard in both); each has the accent colour
    and the small top gap that keeps the Overview's plot on a 1400×900 screen."""
    theme = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))[
        "theme"]
    assert "base" not in theme
    assert not {k for k, v in theme.items() if not isinstance(v, dict)}  # no single custom theme
    for mode in ("light", "dark"):
        assert theme[mode]["primaryColor"].startswith("#")
        assert theme[mode]["paddingTop"].endswith("rem")
