"""Regenerate docs/screenshot.png (the README's picture of the Overview / Pareto page).

    python docs/make_screenshot.py [--db PATH] [--campaign demo] [--out docs/screenshot.png]

Serves ``app.py`` on a free localhost port (no runner is started) and photographs the page in
headless Debian Chromium once the Pareto chart is drawn. Without ``--db`` a temporary store is
used, so the app creates the demo campaign from ``assets/demo`` (and proposes its first batch).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", help="existing store to show (copied, never modified)")
    ap.add_argument("--campaign", default="demo")
    ap.add_argument("--out", default=str(REPO / "docs" / "screenshot.png"))
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "optipoly.db"
        if a.db:
            shutil.copy(a.db, db)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ, OPTIPOLY_DB=str(db), OPTIPOLY_RUNNER="0",
                   OPTIPOLY_CAMPAIGN=a.campaign, PYTHONPATH=str(REPO),
                   OPTIPOLY_CACHE=str(Path(tmp) / "cache"))
        log = open(Path(tmp) / "streamlit.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"),
                                 "--server.port", str(port), "--server.headless", "true"],
                                cwd=str(REPO), env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                    break
                except OSError:
                    time.sleep(0.3)
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                page = b.new_page(viewport={"width": 1500, "height": 1250})
                page.goto(f"http://127.0.0.1:{port}/?campaign={a.campaign}")
                # the Pareto chart is a custom component: wait for its frame's legend, then
                # hover the first observation so the picture shows a structure tooltip
                page.wait_for_selector('iframe[title$="pareto_chart"]', timeout=300_000)
                frame = page.locator('iframe[title$="pareto_chart"]').first.element_handle() \
                    .content_frame()
                frame.wait_for_selector(".js-plotly-plot .legendtext", timeout=300_000)
                time.sleep(3)
                pts = frame.locator(".js-plotly-plot .scatterlayer .trace .points path")
                for i in range(pts.count()):
                    bb = pts.nth(i).bounding_box()
                    if bb and bb["width"] > 5 and i > 0:
                        page.mouse.move(bb["x"] + bb["width"] / 2, bb["y"] + bb["height"] / 2)
                        time.sleep(1.5)
                        break
                page.screenshot(path=a.out)
                b.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
            log.close()
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
