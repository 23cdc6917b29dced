"""Time to first complete paint of the Overview / Pareto page, measured in headless Chromium.

    python benchmarks/bench_paint.py [--obs 1000] [--pool 10000] [--repeats 3]

Side by side: a floor page (title, one metric, one 2-point Plotly chart) served by a second
Streamlit server measures what any Streamlit + Plotly page costs on this machine.

Two campaigns are served by one ``streamlit run app.py`` (no runner): ``big`` with N
observations over 10 cycles, a proposed batch and a predicted pool cloud of P points (WebGL),
and ``small`` with 10 observations and no pool (the baseline). For each, a fresh browser
context opens the page and we record ``performance.now()`` (ms since navigation start) at the
moment the page is complete: the Plotly chart has drawn every trace (legend entries
"limit line", the cycles and, for ``big``, "pool (predicted)" with the WebGL canvas), and the
"Evaluated" KPI shows the number of observations. The first load of each campaign (cold
server caches) is reported separately from the warm repeats. Target: big < 3 s.

The observation and prediction values are synthetic positions scattered around the
n_D–ν_D trade-off (layout data for timing only; nothing here is a result).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

_UNITS = ["*CC(*)C(=O)O{}", "*CC(*)c1ccc({})cc1", "*CC(C)(*)C(=O)O{}", "*C{}C(*)OC(=O)C",
          "*c1ccc(S(=O)(=O)c2ccc(O{}*)cc2)cc1", "*CC(*)SC{}"]


def _psmiles(i: int) -> str:
    return _UNITS[i % len(_UNITS)].format("C" * (1 + (i // len(_UNITS)) % 12))


def seed(db: Path, name: str, n_obs: int, n_pool: int, cycles: int = 10) -> None:
    from core.store import Store

    store = Store(db)
    store.create_campaign(name, {"preset": "smoke"}, actor="bench")
    rng = np.random.default_rng(1)
    nu = rng.uniform(18, 65, n_obs)
    n = 1.75 - 0.0045 * nu + rng.normal(0, 0.03, n_obs)
    for i in range(n_obs):
        cyc = int(i * cycles / n_obs)
        store.add_observation(name, _psmiles(i), {"n_D": float(n[i]), "abbe_number": float(nu[i])},
                              source="benchmark (synthetic layout)", key=f"k{i}",
                              name=f"poly-{i}", cycle=cyc, actor="bench")
    if n_pool:
        cands = [{"psmiles": _psmiles(10_000 + j), "key": f"b{j}",
                  "pred_mean": {"n_D": 1.62 + 0.01 * j, "abbe_number": 40.0 + j},
                  "pred_std": {"n_D": 0.02, "abbe_number": 3.0}, "ehvi": 0.01, "p_beyond": 0.5}
                 for j in range(10)]
        b = store.create_batch(name, cands, strategy="ehvi", actor="bench")
        pnu = rng.normal(40, 10, n_pool)
        store.save_predictions(name, int(b["cycle"]), pd.DataFrame({
            "pool_id": [str(j) for j in range(n_pool)],
            "psmiles": [_psmiles(j) for j in range(n_pool)],
            "pred_mean_n_D": 1.72 - 0.004 * pnu + rng.normal(0, 0.03, n_pool),
            "pred_std_n_D": np.full(n_pool, 0.02), "pred_mean_abbe_number": pnu,
            "pred_std_abbe_number": np.full(n_pool, 3.0), "ehvi": rng.uniform(0, 0.1, n_pool),
            "p_beyond": rng.uniform(0, 1, n_pool)}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


FLOOR_APP = """import plotly.graph_objects as go
import streamlit as st
st.title("floor")
st.metric("Evaluated", 1)
st.plotly_chart(go.Figure(go.Scatter(x=[1, 2], y=[1, 2], name="limit line")))
"""


def start_server(db: Path, port: int, log: Path, script: Path | None = None) -> subprocess.Popen:
    env = dict(os.environ, OPTIPOLY_DB=str(db), OPTIPOLY_RUNNER="0", PYTHONPATH=str(REPO),
               OPTIPOLY_CAMPAIGN="big", OPTIPOLY_CACHE=str(db.parent / "cache"))
    fh = open(log, "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run",
                             str(script or REPO / "app.py"),
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--server.headless", "true"],
                            cwd=str(REPO if script is None else script.parent), env=env, stdout=fh,
                            stderr=subprocess.STDOUT, start_new_session=True)
    t0 = time.time()
    while time.time() - t0 < 60:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    raise TimeoutError("streamlit did not start")


def paint_ms(browser, url: str, campaign: str, n_obs: int, pool: bool, ctx=None) -> float:
    """ms from navigation start to the complete first paint of the Overview page in a new tab
    (a new Streamlit session). ``ctx`` None: a fresh browser context (empty HTTP cache, so the
    4.7 MB Plotly bundle is fetched and parsed); else a tab of that context (warm cache, like
    a returning user)."""
    own = ctx is None
    if own:
        ctx = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = ctx.new_page()
    cdp = ctx.new_cdp_session(page)
    cdp.send("Performance.enable")
    want = ["limit line", "cycle 1"] + (["pool (predicted)"] if pool else [])
    # the Pareto chart is a custom component: its Plotly document is the iframe's
    js = """([want, n, pool]) => {
        const f = document.querySelector('iframe[title$="pareto_chart"]');
        const d = f && f.contentDocument;
        if (!d) return false;
        const legend = [...d.querySelectorAll('.js-plotly-plot .legendtext')]
            .map(e => e.textContent);
        if (!want.every(w => legend.includes(w))) return false;
        if (pool && !d.querySelector('.js-plotly-plot canvas.gl-canvas-context'))
            return false;
        const m = [...document.querySelectorAll('[data-testid="stMetric"]')]
            .find(e => e.innerText.startsWith('Evaluated'));
        return !!m && m.innerText.includes(String(n));
    }"""
    page.goto(f"{url}?campaign={campaign}")
    page.wait_for_function(js, arg=[want, n_obs, pool], timeout=120_000, polling="raf")
    t = float(page.evaluate("() => performance.now()"))
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    BUSY.append(1000.0 * float(metrics.get("TaskDuration", float("nan"))))
    page.close()
    if own:
        ctx.close()
    return t


#: renderer main-thread busy time (CDP Performance.TaskDuration, ms) of each paint_ms call:
#: CPU the page needed, much less sensitive to other processes than wall time
BUSY: list[float] = []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--obs", type=int, default=1000)
    ap.add_argument("--pool", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        t0 = time.time()
        seed(db, "big", a.obs, a.pool)
        seed(db, "small", 10, 0, cycles=2)
        print(f"seeded {a.obs} observations + {a.pool} pool predictions in "
              f"{time.time() - t0:.1f} s")
        # the pool's hover pictures are drawn once per pool (a background process in the app);
        # draw them here first so they do not compete with the timed page loads
        from core.store import Store
        from core.chem.structure_images import write_structure_images

        t0 = time.time()
        preds = Store(db).latest_predictions("big")
        n_img = write_structure_images(preds["psmiles"],
                                       Path(tmp) / "cache" / "components" / "pareto_chart" / "img")
        print(f"drew {n_img} pool hover pictures in {time.time() - t0:.1f} s (once per pool)")
        port = _free_port()
        proc = start_server(db, port, Path(tmp) / "streamlit.log")
        floor_script = Path(tmp) / "floor" / "floor_app.py"
        floor_script.parent.mkdir()
        floor_script.write_text(FLOOR_APP)
        fport = _free_port()
        fproc = start_server(db, fport, Path(tmp) / "floor.log", script=floor_script)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                url = f"http://127.0.0.1:{port}/"
                cases = (("big", a.obs, True), ("small", 10, False))
                first = {c: paint_ms(browser, url, c, n, pool) for c, n, pool in cases}
                cold = {c: [] for c, _, _ in cases}
                warm = {c: [] for c, _, _ in cases}
                busy_cold = {c: [] for c, _, _ in cases}
                busy_warm = {c: [] for c, _, _ in cases}
                shared = browser.new_context(viewport={"width": 1500, "height": 1100})
                paint_ms(browser, url, "small", 10, False, ctx=shared)  # fill the HTTP cache
                for _ in range(a.repeats):
                    for c, n, pool in cases:
                        cold[c].append(paint_ms(browser, url, c, n, pool))
                        busy_cold[c].append(BUSY[-1])
                        warm[c].append(paint_ms(browser, url, c, n, pool, ctx=shared))
                        busy_warm[c].append(BUSY[-1])
                floor = []
                for _ in range(a.repeats):
                    page = shared.new_page()
                    page.goto(f"http://127.0.0.1:{fport}/")
                    page.wait_for_function(
                        "() => !!document.querySelector('.js-plotly-plot .scatterlayer .trace')"
                        " && !!document.querySelector('[data-testid=stMetricValue]')",
                        timeout=120_000, polling="raf")
                    floor.append(float(page.evaluate("() => performance.now()")))
                    page.close()
                shared.close()
                browser.close()
        finally:
            for pr in (proc, fproc):
                os.killpg(pr.pid, signal.SIGTERM)
                pr.wait(timeout=20)
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f} during the run")
    print(f"first load after server start (cold server caches, empty browser cache): "
          f"big {first['big'] / 1000:.2f} s, small {first['small'] / 1000:.2f} s")
    for label, res, busy in (("empty browser cache", cold, busy_cold),
                             ("warm browser cache", warm, busy_warm)):
        big, small = statistics.median(res["big"]), statistics.median(res["small"])
        bb, bs = statistics.median(busy["big"]), statistics.median(busy["small"])
        print(f"{label:>20} (median of {a.repeats}): big ({a.obs} obs + {a.pool} pool) "
              f"{big / 1000:.2f} s, small (10 obs, no pool) {small / 1000:.2f} s, "
              f"ratio big/small {big / small:.2f}, target < 3 s "
              f"{'met' if big < 3000 else 'NOT met'}")
        print(f"{'':>20} renderer main-thread busy: big {bb / 1000:.2f} s, small "
              f"{bs / 1000:.2f} s, ratio {bb / bs:.2f}")
    fl = statistics.median(floor)
    print(f"floor: a 3-element Streamlit page with one 2-point Plotly chart, warm cache: "
          f"{fl / 1000:.2f} s; big / floor = {statistics.median(warm['big']) / fl:.2f}")


if __name__ == "__main__":
    main()
