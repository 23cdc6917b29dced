"""Time to first complete paint of the Overview / Pareto page, measured in headless Chromium.

    python benchmarks/bench_paint.py [--obs 1000] [--pool 10000] [--repeats 3]

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


def start_server(db: Path, port: int, log: Path) -> subprocess.Popen:
    env = dict(os.environ, OPTIPOLY_DB=str(db), OPTIPOLY_RUNNER="0", PYTHONPATH=str(REPO),
               OPTIPOLY_CAMPAIGN="big")
    fh = open(log, "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"),
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--server.headless", "true"], cwd=str(REPO), env=env, stdout=fh,
                            stderr=subprocess.STDOUT, start_new_session=True)
    t0 = time.time()
    while time.time() - t0 < 60:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    raise TimeoutError("streamlit did not start")


def paint_ms(browser, url: str, campaign: str, n_obs: int, pool: bool) -> float:
    """ms from navigation start to the complete first paint of the Overview page (fresh
    browser context, so a new Streamlit session)."""
    ctx = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = ctx.new_page()
    want = ["limit line", "cycle 1"] + (["pool (predicted)"] if pool else [])
    js = """([want, n, pool]) => {
        const legend = [...document.querySelectorAll('.js-plotly-plot .legendtext')]
            .map(e => e.textContent);
        if (!want.every(w => legend.includes(w))) return false;
        if (pool && !document.querySelector('.js-plotly-plot canvas.gl-canvas-context'))
            return false;
        const m = [...document.querySelectorAll('[data-testid="stMetric"]')]
            .find(e => e.innerText.startsWith('Evaluated'));
        return !!m && m.innerText.includes(String(n));
    }"""
    page.goto(f"{url}?campaign={campaign}")
    page.wait_for_function(js, arg=[want, n_obs, pool], timeout=120_000, polling="raf")
    t = float(page.evaluate("() => performance.now()"))
    ctx.close()
    return t


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
        print(f"seeded {a.obs} observations + {a.pool} pool predictions in {time.time() - t0:.1f} s")
        port = _free_port()
        proc = start_server(db, port, Path(tmp) / "streamlit.log")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                url = f"http://127.0.0.1:{port}/"
                res: dict[str, list[float]] = {"big": [], "small": []}
                cold = {}
                for rep in range(a.repeats + 1):
                    for camp, n, pool in (("big", a.obs, True), ("small", 10, False)):
                        ms = paint_ms(browser, url, camp, n, pool)
                        if rep == 0:
                            cold[camp] = ms
                        else:
                            res[camp].append(ms)
                browser.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
    big, small = statistics.median(res["big"]), statistics.median(res["small"])
    print(f"first paint, cold server  : big {cold['big'] / 1000:.2f} s, "
          f"small {cold['small'] / 1000:.2f} s")
    print(f"first paint, warm (median of {a.repeats}): big ({a.obs} obs + {a.pool} pool) "
          f"{big / 1000:.2f} s, small (10 obs) {small / 1000:.2f} s, ratio big/small "
          f"{big / small:.2f}")
    print(f"target < 3 s: {'met' if big < 3000 else 'NOT met'} (warm), "
          f"{'met' if cold['big'] < 3000 else 'NOT met'} (cold)")


if __name__ == "__main__":
    main()
