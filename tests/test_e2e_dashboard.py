"""End to end in real headless Chromium (Debian chromium + Playwright, never `playwright install`).

Starts ``streamlit run app.py`` on a free localhost port with a temporary database and the
``smoke`` preset; the app creates the demo campaign and starts the runner (real dask
LocalCluster, real smoke-preset simulations). In the browser: the Pareto chart shows the
limit-line trace; a batch of 2 is proposed and approved on the Batch page; the Jobs page shows
both calculations finish; the Overview shows the new points and the updated KPIs; the
Substructures page lists the sulfonyl row. Screenshots go to test-artifacts/.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import CHROMIUM, CHROMIUM_ARGS, REPO

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(480)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, timeout_s: float, proc: subprocess.Popen) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not up after {timeout_s} s")


def start_server(db: Path, *, port: int, env_extra: dict | None = None,
                 log: Path) -> subprocess.Popen:
    """``streamlit run app.py`` bound to 127.0.0.1:port in its own process group."""
    env = dict(os.environ)
    env.update({"OPTIPOLY_DB": str(db), "OPTIPOLY_PRESET": "smoke",
                "OPTIPOLY_CAMPAIGN": "demo", "OPTIPOLY_LIVE_S": "1.5", "OPTIPOLY_RUNNER": "1",
                "PYTHONPATH": str(REPO)})
    env.update(env_extra or {})
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"),
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    fh = open(log, "wb")  # noqa: SIM115 - closed by the fixture
    proc = subprocess.Popen(cmd, cwd=str(REPO), env=env, stdout=fh, stderr=subprocess.STDOUT,
                            start_new_session=True)
    proc._log_fh = fh  # type: ignore[attr-defined]
    _wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60, proc)
    return proc


def stop_process_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    getattr(proc, "_log_fh").close()


def _kill_runner(db: Path) -> None:
    """Stop the runner the app started (its pid is in the store's heartbeat row)."""
    from core.store import Store

    try:
        rs = Store(db).runner_status("demo")
    except Exception:  # noqa: BLE001
        return
    if rs and rs.get("pid"):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(int(rs["pid"]), sig)
            except (ProcessLookupError, PermissionError):
                try:
                    os.kill(int(rs["pid"]), sig)
                except ProcessLookupError:
                    return
            time.sleep(3)


@pytest.fixture()
def server(tmp_path, artifacts_dir):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed at /usr/bin/chromium")
    pytest.importorskip("playwright.sync_api")
    db = tmp_path / "optipoly.db"
    template = os.environ.get("OPTIPOLY_E2E_DB_TEMPLATE")  # a prepared store (debugging)
    if template:
        shutil.copy(template, db)
    else:
        from core.campaign.demo import DEMO_OBSERVATIONS

        if not DEMO_OBSERVATIONS.is_file():
            pytest.skip(f"demo campaign data missing: {DEMO_OBSERVATIONS}")
    port = _free_port()
    state = {"db": db, "proc": start_server(db, port=port,
                                            log=artifacts_dir / "e2e_streamlit.log"),
             "url": f"http://127.0.0.1:{port}"}

    def restart() -> str:
        """Stop the Streamlit server and start a fresh one on the same store."""
        stop_process_group(state["proc"])
        p2 = _free_port()
        state["proc"] = start_server(db, port=p2, log=artifacts_dir / "e2e_streamlit_2.log")
        state["url"] = f"http://127.0.0.1:{p2}"
        return state["url"]

    state["restart"] = restart
    try:
        yield state
    finally:
        stop_process_group(state["proc"])
        _kill_runner(db)
        runner_log = db.parent / "runner-demo.log"
        if runner_log.exists():
            shutil.copy(runner_log, artifacts_dir / "e2e_runner.log")


def _metric(page, label: str) -> str:
    loc = page.locator('[data-testid="stMetric"]', has=page.locator(
        '[data-testid="stMetricLabel"]', has_text=re.compile(rf"^{re.escape(label)}$")))
    return loc.first.locator('[data-testid="stMetricValue"]').inner_text().strip()


def _wait_metric(page, label: str, pred, timeout_s: float) -> str:
    t0 = time.time()
    last = None
    while time.time() - t0 < timeout_s:
        try:
            last = _metric(page, label)
            if pred(last):
                return last
        except Exception:  # noqa: BLE001 - element re-rendering
            pass
        time.sleep(1.0)
    raise AssertionError(f"metric {label!r} stayed at {last!r} for {timeout_s} s")


CHART_IFRAME = 'iframe[title$="pareto_chart"]'


def _chart(page, timeout_ms: int = 120_000):
    """The Pareto chart component's frame, once Plotly has drawn its legend."""
    page.wait_for_selector(CHART_IFRAME, timeout=timeout_ms)
    frame = page.locator(CHART_IFRAME).first.element_handle().content_frame()
    frame.wait_for_selector(".js-plotly-plot .legendtext", timeout=timeout_ms)
    return frame


def _first_marker_centre(frame) -> tuple[float, float]:
    """Page coordinates of the centre of the first visible SVG marker in the chart."""
    pts = frame.locator(".js-plotly-plot .scatterlayer .trace .points path")
    for i in range(pts.count()):
        bb = pts.nth(i).bounding_box()
        if bb and bb["width"] > 5:
            return bb["x"] + bb["width"] / 2, bb["y"] + bb["height"] / 2
    raise AssertionError("no marker found in the Pareto chart")


def _x_range(frame) -> list[float]:
    return frame.evaluate("() => document.getElementById('chart').layout.xaxis.range.slice()")


def _goto(page, base: str, path: str) -> None:
    page.goto(f"{base}/{path}")
    page.wait_for_selector('[data-testid="stApp"]')
    # every page has a heading (the Overview's is a compact h4 so the plot fits the fold)
    page.wait_for_selector('[data-testid="stMainBlockContainer"] :is(h1, h2, h3, h4)',
                           timeout=60_000)


def test_dashboard_end_to_end(server, artifacts_dir) -> None:
    from playwright.sync_api import expect, sync_playwright

    base = server["url"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        try:
            # 1. Overview: Pareto chart with the limit line
            _goto(page, base, "")
            chart = _chart(page)
            expect(chart.locator(".js-plotly-plot .legendtext", has_text="limit line")
                   ).to_have_count(1, timeout=30_000)
            n0 = int(_wait_metric(page, "Evaluated", lambda v: v.isdigit() and int(v) > 0, 120))
            page.screenshot(path=str(artifacts_dir / "e2e_1_overview.png"))
            # live polling with unchanged data does not redraw (no re-mount, no flicker)
            chart.evaluate("() => { document.getElementById('chart').__e2e_mark = 42; }")
            renders = chart.evaluate("() => document.getElementById('chart').dataset.renders")
            time.sleep(6)  # four polling periods (OPTIPOLY_LIVE_S=1.5)
            assert chart.evaluate("() => document.getElementById('chart').__e2e_mark") == 42
            assert chart.evaluate(
                "() => document.getElementById('chart').dataset.renders") == renders
            # hovering a point shows its structure picture
            x, y = _first_marker_centre(chart)
            page.mouse.move(x, y)
            chart.wait_for_function(
                "() => getComputedStyle(document.getElementById('tip')).display === 'block'"
                " && document.getElementById('tipimg').complete"
                " && document.getElementById('tipimg').naturalWidth > 0", timeout=30_000)
            page.screenshot(path=str(artifacts_dir / "e2e_1b_hover_structure.png"))
            # clicking it opens its details (structure, values, provenance or reference)
            page.mouse.click(x, y)
            page.get_by_text(re.compile(r"provenance|reference, measured")).first.wait_for(
                timeout=60_000)
            assert page.locator('[data-testid="stMainBlockContainer"] svg').count() > 0

            # 2. Batch page: propose a batch of 2 and approve it
            _goto(page, base, "batch")
            page.get_by_text("Propose a new batch").click()
            size = page.get_by_role("spinbutton", name="Batch size")
            size.fill("2")
            size.press("Tab")
            page.get_by_role("button", name="Propose").click()
            approve = page.get_by_role("button", name=re.compile(r"Approve and launch 2"))
            approve.wait_for(timeout=180_000)
            page.screenshot(path=str(artifacts_dir / "e2e_2_batch.png"))
            approve.click()
            page.get_by_text("calculations queued").wait_for(timeout=60_000)

            # 3. Overview while the jobs run: the live fragment brings in the new points and
            #    KPIs without a reload, and a zoom the user set survives the new data
            _goto(page, base, "")
            chart = _chart(page, 60_000)
            # drag a zoom box over the middle of the plot area, as a user would
            box = chart.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.7,
                            steps=8)
            page.mouse.up()
            chart.wait_for_function("() => !!document.getElementById('chart').dataset.userRange")
            zoomed = _x_range(chart)
            chart.evaluate("() => { document.getElementById('chart').__e2e_mark = 7; }")
            # new figure data (here: the shaded region switched off) redraws in place, zoom kept
            renders = int(chart.evaluate("() => document.getElementById('chart').dataset.renders"))
            page.get_by_text("Shade beyond-line region").click()
            chart.wait_for_function(
                f"() => Number(document.getElementById('chart').dataset.renders) > {renders}")
            assert _x_range(chart) == pytest.approx(zoomed)
            assert chart.evaluate("() => document.getElementById('chart').__e2e_mark") == 7
            n1 = int(_wait_metric(page, "Evaluated", lambda v: v.isdigit() and int(v) >= n0 + 2,
                                  300))
            assert n1 == n0 + 2
            expect(chart.locator(".js-plotly-plot .legendtext", has_text="cycle 1")
                   ).to_have_count(1, timeout=30_000)
            assert chart.evaluate("() => document.getElementById('chart').__e2e_mark") == 7
            assert _x_range(chart) == pytest.approx(zoomed)
            _wait_metric(page, "Running", lambda v: v == "0", 60)
            page.screenshot(path=str(artifacts_dir / "e2e_3_overview_after.png"))

            # 4. Jobs page: both calculations finished
            _goto(page, base, "jobs")
            _wait_metric(page, "Done", lambda v: v == "2", 120)
            assert _metric(page, "Failed") == "0"
            page.screenshot(path=str(artifacts_dir / "e2e_4_jobs.png"))

            # 5. Substructures: the sulfonyl row
            _goto(page, base, "substructures")
            grid = page.locator('[data-testid="stDataFrame"]').first
            grid.wait_for(timeout=60_000)
            page.get_by_text("Show sulfur groups only").click()
            # glide-data-grid draws on a canvas and mirrors the cells in an a11y table
            expect(grid.locator('td[role="gridcell"]', has_text=re.compile(r"^sulfonyl$"))
                   ).to_have_count(1, timeout=30_000)
            page.screenshot(path=str(artifacts_dir / "e2e_5_substructures.png"))

            # 6. Server restart: a fresh browser session opened directly on a page URL gets
            #    everything back from the store
            base2 = server["restart"]()
            page2 = browser.new_context(viewport={"width": 1500, "height": 1300}).new_page()
            _goto(page2, base2, "jobs")
            _wait_metric(page2, "Done", lambda v: v == "2", 60)
            _goto(page2, base2, "")
            _wait_metric(page2, "Evaluated", lambda v: v == str(n0 + 2), 60)
            expect(_chart(page2, 60_000).locator(".js-plotly-plot .legendtext",
                                                 has_text="cycle 1")).to_have_count(1,
                                                                                    timeout=60_000)
            page2.screenshot(path=str(artifacts_dir / "e2e_6_after_restart.png"))
        finally:
            browser.close()
