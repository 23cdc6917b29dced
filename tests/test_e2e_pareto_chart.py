"""The Pareto chart component alone in headless Chromium (no Streamlit server): the page is
opened from its served directory and given a figure the way Streamlit would (a
``streamlit:render`` message).  Checks what only a browser shows: the mouse wheel does not
zoom, the mode bar has no logo / share / select buttons, a click keeps the other points
visible, and the text labels do not overlap.  Debian chromium + Playwright, as
tests/test_e2e_dashboard.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import CHROMIUM, CHROMIUM_ARGS, LINE, crowded_chart_data

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _payload() -> dict:
    from core.ui.figures import chart_config, pareto_figure
    from pages._pareto_chart import figure_payload

    obs, refs, batch = crowded_chart_data()
    fig = pareto_figure(obs, limit_line=LINE, references=refs, batch=batch)
    return {"figure": figure_payload(fig), "sig": "e2e", "height": 560, "image_keys": False,
            "keep_zoom": True, "config": chart_config("demo-pareto")}


def test_pareto_chart_wheel_modebar_click_and_labels(tmp_path, artifacts_dir) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed at /usr/bin/chromium")
    pytest.importorskip("playwright.sync_api")
    from playwright.sync_api import sync_playwright

    from pages._pareto_chart import _prepared

    index = _prepared(tmp_path / "cache") / "index.html"
    args = _payload()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        try:
            page.goto(index.as_uri())
            page.evaluate("(a) => window.postMessage({type: 'streamlit:render', args: a}, '*')",
                          json.loads(json.dumps(args)))
            page.wait_for_selector(".js-plotly-plot .legendtext", timeout=60_000)
            page.wait_for_function("() => document.getElementById('chart').dataset.renders")
            # mode bar: no logo, no Chart-Studio share/edit, no box/lasso select; camera kept
            titles = page.evaluate("() => [...document.querySelectorAll('.modebar-btn')]"
                                   ".map(b => b.getAttribute('data-title') || '')")
            assert titles and not any(t in titles for t in (
                "Edit in Chart Studio", "Box Select", "Lasso Select")), titles
            assert any("Download plot" in t for t in titles), titles
            assert page.locator(".modebar-btn--logo").count() == 0
            # the mouse wheel over the plot leaves the axes alone
            rng = "() => document.getElementById('chart').layout.xaxis.range.slice()"
            before = page.evaluate(rng)
            box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            for _ in range(3):
                page.mouse.wheel(0, -400)
            page.wait_for_timeout(600)
            assert page.evaluate(rng) == before
            # click a marker: the others keep >= 60 % opacity, labels are not faded
            pts = page.locator(".scatterlayer .trace .points path")
            target = None
            for i in range(pts.count()):
                bb = pts.nth(i).bounding_box()
                if bb and bb["width"] > 5:
                    target = bb
                    break
            assert target is not None
            page.mouse.click(target["x"] + target["width"] / 2,
                             target["y"] + target["height"] / 2)
            page.wait_for_timeout(600)
            op = page.evaluate("() => [...document.querySelectorAll("
                               "'.scatterlayer .trace .points path')]"
                               ".map(e => parseFloat(getComputedStyle(e).opacity))")
            assert len(op) >= 8 and min(op) >= 0.6, op
            assert op.count(1.0) >= 1 and min(op) < 1.0, op  # one highlighted, others softened
            text_op = page.evaluate(
                "() => [...document.querySelectorAll('.scatterlayer .textpoint text')]"
                ".map(e => parseFloat(e.style.fillOpacity || getComputedStyle(e).fillOpacity"
                " || '1') * parseFloat(getComputedStyle(e).opacity))")
            assert text_op and min(text_op) >= 0.6, text_op
            page.screenshot(path=str(artifacts_dir / "e2e_chart_click.png"))
            # no two text labels overlap on screen
            boxes = page.evaluate(
                "() => [...document.querySelectorAll('.scatterlayer .textpoint text')]"
                ".filter(e => e.textContent).map(e => { const r = e.getBoundingClientRect();"
                " return [r.left, r.top, r.right, r.bottom, e.textContent]; })")
            assert len(boxes) >= 4, boxes
            for i, a in enumerate(boxes):
                for b in boxes[i + 1:]:
                    apart = a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
                    assert apart, (a, b)
        finally:
            browser.close()
