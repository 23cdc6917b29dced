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


# ------------------------------------------------------------------ the dashboard served
CHART_IFRAME = 'iframe[title$="pareto_chart"]'


@pytest.fixture()
def seeded_server(tmp_path, artifacts_dir):
    """``streamlit run app.py`` on the seeded store (:func:`tests.helpers.seed_store`), no
    runner; yields the base URL."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed at /usr/bin/chromium")
    pytest.importorskip("playwright.sync_api")
    from tests.helpers import seed_store
    from tests.test_e2e_dashboard import _free_port, start_server, stop_process_group

    db = tmp_path / "optipoly.db"
    seed_store(db)
    port = _free_port()
    proc = start_server(db, port=port, log=artifacts_dir / "e2e_fold_streamlit.log",
                        env_extra={"OPTIPOLY_RUNNER": "0",
                                   "OPTIPOLY_CACHE": str(tmp_path / "cache")})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process_group(proc)


def _open_overview(browser, url: str, *, scheme: str = "light"):
    page = browser.new_page(viewport={"width": 1400, "height": 900}, color_scheme=scheme)
    page.goto(url + "/?campaign=demo")
    page.wait_for_selector(CHART_IFRAME, timeout=90_000)
    frame = page.locator(CHART_IFRAME).first.element_handle().content_frame()
    frame.wait_for_function("() => document.getElementById('chart') && "
                            "document.getElementById('chart').dataset.renders", timeout=90_000)
    return page, frame


def _plot_box(page, frame) -> dict:
    """The Pareto plot's box in page pixels (the frame's offset plus the plot's own box)."""
    outer = page.locator(CHART_IFRAME).first.bounding_box()
    inner = frame.evaluate("() => { const r = document.getElementById('chart')"
                           ".getBoundingClientRect(); return {top: r.top, bottom: r.bottom}; }")
    return {"top": outer["y"] + inner["top"], "bottom": outer["y"] + inner["bottom"]}


def test_overview_pareto_chart_is_above_the_fold_at_1400x900(seeded_server,
                                                               artifacts_dir) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page, frame = _open_overview(browser, seeded_server)
            page.wait_for_timeout(1500)  # the layout settles (metrics, banner)
            box = _plot_box(page, frame)
            page.screenshot(path=str(artifacts_dir / "e2e_overview_1400x900.png"))
            assert box["bottom"] <= 900, box  # the x-axis of the Pareto plot is on screen
            assert box["top"] >= 0
            # Plotly came from the app's static route (HTTP-cacheable, content-hashed name),
            # as the partial bundle (scatter, scattergl, bar) of the installed plotly.js
            scripts = frame.evaluate("() => performance.getEntriesByType('resource')"
                                     ".filter(r => r.initiatorType === 'script')"
                                     ".map(r => r.name)")
            assert any("/app/static/plotly-" in u for u in scripts), scripts
            assert not any(u.endswith("/plotly.min.js") for u in scripts), scripts
            assert frame.evaluate("() => typeof Plotly.react") == "function"
        finally:
            browser.close()


def _luminance(css: str) -> float:
    import re

    r, g, b = (int(v) for v in re.findall(r"\d+", css)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255.0


def test_dashboard_and_chart_follow_the_systems_dark_or_light_setting(seeded_server,
                                                                      artifacts_dir) -> None:
    """No theme is forced (.streamlit/config.toml): a browser set to dark gets the dark theme,
    and the chart's text is light on it; set to light, the reverse."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for scheme in ("dark", "light"):
                page, frame = _open_overview(browser, seeded_server, scheme=scheme)
                # the live panel reruns with the browser's theme known: the chart redraws
                frame.wait_for_function(
                    "(dark) => { const t = document.querySelector('.xtitle');"
                    " if (!t) return false; const c = getComputedStyle(t).fill"
                    ".match(/\\d+/g).map(Number); const l = (c[0] + c[1] + c[2]) / 765;"
                    " return dark ? l > 0.6 : l < 0.4; }", arg=scheme == "dark",
                    timeout=60_000)
                bg = page.evaluate("() => getComputedStyle(document.querySelector("
                                   "'[data-testid=\"stApp\"]')).backgroundColor")
                paper = frame.evaluate("() => getComputedStyle(document.querySelector("
                                       "'.main-svg rect.bg') || document.body).fill")
                text = frame.evaluate("() => getComputedStyle("
                                      "document.querySelector('.xtitle')).fill")
                page.screenshot(path=str(artifacts_dir / f"e2e_overview_{scheme}.png"))
                if scheme == "dark":
                    assert _luminance(bg) < 0.2 and _luminance(text) > 0.6, (bg, text)
                else:
                    assert _luminance(bg) > 0.9 and _luminance(text) < 0.4, (bg, text)
                assert paper is not None
                page.close()
        finally:
            browser.close()
