"""Time to first complete paint of the Overview / Pareto page, measured in headless Chromium.

    python benchmarks/bench_paint.py [--obs 1000] [--pool 10000] [--repeats 3] [--phases]

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

``--phases`` also prints where the time of the warm-cache paints goes, ``big`` beside the floor:
the server's script run phase by phase (``OPTIPOLY_PROFILE=1``: app.py's store reads, fidelity
annotation, KPIs, figure build, pool cloud, serialisation … as logged by
``pages._profile``; the floor page times its one run the same way), the bytes that reach the
browser (WebSocket messages and HTTP transfer) and the browser's timeline from navigation start:
DOMContentLoaded, WebSocket open, first and last message before the paint, the chart frame's
Plotly loaded and its figure received, chart drawn, with the renderer's CPU split (CDP
Performance.getMetrics: script, layout, style). The instrumentation (an init script wrapping
``WebSocket`` and a profile line per run) is only present with ``--phases``.

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

#: ``--phases``: the floor page with its run timed like app.py's (pages._profile); the same
#: three elements
FLOOR_APP_PHASES = """from pages._profile import emit, phase, start
start()
with phase("page"):
    import plotly.graph_objects as go
    import streamlit as st
    st.title("floor")
    st.metric("Evaluated", 1)
    with phase("component send"):
        st.plotly_chart(go.Figure(go.Scatter(x=[1, 2], y=[1, 2], name="limit line")))
emit("full run", campaign="floor")
"""

#: ``--phases``: runs in every frame before the page's scripts; records (epoch ms, comparable
#: across the page and the chart's iframe) the WebSocket's life and messages, the frame's
#: DOMContentLoaded and the first figure the chart frame receives
PHASE_INIT_JS = """(() => {
  const now = () => performance.timeOrigin + performance.now();
  const T = window.__paint = {origin: performance.timeOrigin, href: location.href,
                              wsBytes: 0, wsMsgs: 0, wsMax: 0, sizes: [], times: []};
  document.addEventListener('DOMContentLoaded', () => { T.dcl = now(); });
  const W = window.WebSocket;
  if (W) {
    const Wrapped = function (...a) {
      const ws = new W(...a);
      if (T.wsCreated == null) T.wsCreated = now();
      ws.addEventListener('open', () => { if (T.wsOpen == null) T.wsOpen = now(); });
      ws.addEventListener('message', (e) => {
        const d = e.data;
        const n = d == null ? 0 : (d.byteLength ?? d.size ?? d.length ?? 0);
        const t = now();
        if (T.wsFirst == null) T.wsFirst = t;
        T.wsLast = t; T.wsBytes += n; T.wsMsgs += 1; T.wsMax = Math.max(T.wsMax, n);
        T.sizes.push(n); T.times.push(t);
      });
      return ws;
    };
    Wrapped.prototype = W.prototype;
    for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Wrapped[k] = W[k];
    window.WebSocket = Wrapped;
  }
  window.addEventListener('message', (e) => {
    if (e.data && e.data.type === 'streamlit:render' && T.render == null) T.render = now();
  });
})();"""

#: ``--phases``: read in a frame after the paint: its timings and HTTP bytes
PHASE_READ_JS = """() => {
  const T = window.__paint || {};
  const res = performance.getEntriesByType('resource');
  const nav = performance.getEntriesByType('navigation')[0];
  const sum = (k) => res.reduce((a, r) => a + (r[k] || 0), 0) + (nav ? (nav[k] || 0) : 0);
  return Object.assign({}, T, {sizes: undefined, times: undefined,
    httpTransfer: sum('transferSize'), httpBody: sum('decodedBodySize'),
    nRes: res.length, paintAt: performance.timeOrigin + performance.now(),
    navDcl: nav && nav.domContentLoadedEventEnd > 0 ?
      performance.timeOrigin + nav.domContentLoadedEventEnd : null,
    scriptsDone: Math.max(0, ...res.filter(r => r.initiatorType === 'script')
                                  .map(r => performance.timeOrigin + r.responseEnd))});
}"""


class Phases:
    """``--phases`` state: the server logs to read and what each timed paint recorded."""

    def __init__(self, logs: dict[str, Path]) -> None:
        self.logs = logs  # server name -> its log file
        self.seen: dict[str, int] = {k: 0 for k in logs}
        self.records: dict[str, list[dict]] = {}  # label -> one dict per timed paint

    def mark(self) -> None:
        """Skip the server profile lines written so far (they belong to earlier paints)."""
        for k, f in self.logs.items():
            self.seen[k] = len(_profile_lines(f))

    def server_run(self, server: str, campaign: str, wait_s: float = 10.0) -> dict:
        """The first full-run profile of ``campaign`` logged since :meth:`mark`."""
        t0 = time.time()
        while True:
            recs = _profile_lines(self.logs[server])[self.seen[server]:]
            hit = [r for r in recs if r.get("run") == "full run" and
                   r.get("campaign") == campaign]
            if hit or time.time() - t0 > wait_s:
                return hit[0] if hit else {}
            time.sleep(0.1)

    def add(self, label: str, rec: dict) -> None:
        self.records.setdefault(label, []).append(rec)


def _profile_lines(log: Path) -> list[dict]:
    import json

    from pages._profile import PREFIX

    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(PREFIX):
            try:
                out.append(json.loads(line[len(PREFIX):]))
            except ValueError:
                pass
    return out


def browser_phases(page, cdp, t_paint: float) -> dict:
    """The browser's timeline (ms from navigation start), bytes and CPU split of one paint."""
    main = page.evaluate(PHASE_READ_JS)
    origin = float(main["origin"])
    rec: dict[str, float] = {}

    def at(key: str, v: float | None) -> None:
        if v is not None and v > 0:
            rec[key] = float(v) - origin

    at("DOMContentLoaded", main.get("dcl"))
    at("WebSocket open", main.get("wsOpen"))
    at("first message", main.get("wsFirst"))
    # the last message that arrived before the paint was complete
    sizes = page.evaluate("() => (window.__paint || {}).sizes || []")
    times = page.evaluate("() => (window.__paint || {}).times || []")
    before = [(t, n) for t, n in zip(times, sizes) if float(t) - origin <= t_paint]
    if before:
        rec["last message before paint"] = float(before[-1][0]) - origin
    if before:  # the message that carries the chart (the figure: by far the largest)
        rec["largest message arrived"] = float(max(before, key=lambda tn: tn[1])[0]) - origin
    rec["bytes: WebSocket (to paint)"] = float(sum(n for _, n in before))
    rec["bytes: largest message"] = float(max((n for _, n in before), default=0))
    rec["messages (to paint)"] = float(len(before))
    http = float(main["httpTransfer"])
    for fr in page.frames[1:]:
        try:
            sub = fr.evaluate(PHASE_READ_JS)
        except Exception:  # noqa: BLE001 - a frame that went away: nothing to add
            continue
        http += float(sub["httpTransfer"])
        if "pareto_chart" in fr.url:  # (the frame's window began as about:blank)
            at("chart frame: plotly.min.js fetched", sub.get("scriptsDone"))
            at("chart frame: Plotly loaded (DOMContentLoaded)",
               sub.get("navDcl") or sub.get("dcl"))
            at("chart frame: figure received", sub.get("render"))
    rec["bytes: HTTP transfer"] = http
    rec["chart drawn (page complete)"] = t_paint
    m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
    for k, lab in (("TaskDuration", "CPU: renderer busy"), ("ScriptDuration", "CPU: script"),
                   ("LayoutDuration", "CPU: layout"), ("RecalcStyleDuration", "CPU: style")):
        if k in m:
            rec[lab] = 1000.0 * float(m[k])
    return rec


#: set by main() with --phases
PHASES: Phases | None = None


def start_server(db: Path, port: int, log: Path, script: Path | None = None) -> subprocess.Popen:
    env = dict(os.environ, OPTIPOLY_DB=str(db), OPTIPOLY_RUNNER="0", PYTHONPATH=str(REPO),
               OPTIPOLY_CAMPAIGN="big", OPTIPOLY_CACHE=str(db.parent / "cache"),
               OPTIPOLY_PROFILE="1" if PHASES is not None else "0")
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
        ctx = new_context(browser)
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
    if PHASES is not None:
        PHASES.mark()
    page.goto(f"{url}?campaign={campaign}")
    page.wait_for_function(js, arg=[want, n_obs, pool], timeout=120_000, polling="raf")
    t = float(page.evaluate("() => performance.now()"))
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    BUSY.append(1000.0 * float(metrics.get("TaskDuration", float("nan"))))
    if PHASES is not None and not own:
        PHASES.add(campaign, {**browser_phases(page, cdp, t),
                              **_server(PHASES.server_run("app", campaign))})
    page.close()
    if own:
        ctx.close()
    return t


def new_context(browser):
    """A fresh browser context (empty HTTP cache) of the benchmark's window size; with
    ``--phases`` its frames get the timing init script."""
    ctx = browser.new_context(viewport={"width": 1500, "height": 1100})
    if PHASES is not None:
        ctx.add_init_script(PHASE_INIT_JS)
    return ctx


def floor_ms(ctx, url: str) -> float:
    """ms from navigation start to the complete paint of the floor page in a new tab of
    ``ctx``."""
    page = ctx.new_page()
    cdp = ctx.new_cdp_session(page)
    cdp.send("Performance.enable")
    if PHASES is not None:
        PHASES.mark()
    page.goto(url)
    page.wait_for_function(
        "() => !!document.querySelector('.js-plotly-plot .scatterlayer .trace')"
        " && !!document.querySelector('[data-testid=stMetricValue]')",
        timeout=120_000, polling="raf")
    t = float(page.evaluate("() => performance.now()"))
    if PHASES is not None:
        PHASES.add("floor", {**browser_phases(page, cdp, t),
                             **_server(PHASES.server_run("floor", "floor"))})
    page.close()
    return t


def _server(run: dict) -> dict[str, float]:
    """A server profile line as table rows: ``server: <phase>`` (ms) and the run's total."""
    out: dict[str, float] = {}
    for k, v in run.items():
        if k in ("run", "campaign", "url_path") or not isinstance(v, (int, float)):
            continue
        out["server: script run (total)" if k == "total_ms" else f"server: {k}"] = float(v)
    return out


#: renderer main-thread busy time (CDP Performance.TaskDuration, ms) of each paint_ms call:
#: CPU the page needed, much less sensitive to other processes than wall time
BUSY: list[float] = []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--obs", type=int, default=1000)
    ap.add_argument("--pool", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--phases", action="store_true",
                    help="also print where the warm-cache time goes, big beside the floor "
                         "(server phases, bytes, browser timeline)")
    a = ap.parse_args()
    global PHASES
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
        logs = {"app": Path(tmp) / "streamlit.log", "floor": Path(tmp) / "floor.log"}
        if a.phases:
            PHASES = Phases(logs)
        proc = start_server(db, port, logs["app"])
        floor_script = Path(tmp) / "floor" / "floor_app.py"
        floor_script.parent.mkdir()
        floor_script.write_text(FLOOR_APP_PHASES if a.phases else FLOOR_APP)
        fport = _free_port()
        fproc = start_server(db, fport, logs["floor"], script=floor_script)
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
                shared = new_context(browser)
                paint_ms(browser, url, "small", 10, False, ctx=shared)  # fill the HTTP cache
                for _ in range(a.repeats):
                    for c, n, pool in cases:
                        cold[c].append(paint_ms(browser, url, c, n, pool))
                        busy_cold[c].append(BUSY[-1])
                        warm[c].append(paint_ms(browser, url, c, n, pool, ctx=shared))
                        busy_warm[c].append(BUSY[-1])
                floor = [floor_ms(shared, f"http://127.0.0.1:{fport}/")
                         for _ in range(a.repeats)]
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
    if PHASES is not None:
        print_phases(PHASES, a.repeats)


def print_phases(ph: Phases, repeats: int) -> None:
    """The phase table: median of the warm-cache paints, big beside the floor."""
    big, floor = ph.records.get("big", []), ph.records.get("floor", [])
    keys = list(dict.fromkeys(k for r in big + floor for k in r))
    order = ("server", "bytes", "messages", "DOM", "WebSocket", "first", "largest", "last",
             "chart frame", "chart drawn", "CPU")
    keys.sort(key=lambda k: next((i for i, p in enumerate(order) if k.startswith(p)),
                                 len(order)))
    print(f"\nwhere the time goes, warm browser cache (median of {repeats}; ms from navigation "
          f"start for the timeline, ms of CPU / wall time for the rest, bytes for sizes):")
    print(f"{'':54} {'big':>12} {'floor':>12} {'big/floor':>10}")

    def med(rs: list[dict], k: str) -> float | None:
        v = [r[k] for r in rs if k in r]
        return statistics.median(v) if v else None

    for k in keys:
        b, f = med(big, k), med(floor, k)
        cell = (lambda v: f"{v:12.0f}" if v is not None else f"{'–':>12}")
        ratio = f"{b / f:10.2f}" if b is not None and f else f"{'':>10}"
        print(f"{k:54} {cell(b)} {cell(f)} {ratio}")


if __name__ == "__main__":
    main()
