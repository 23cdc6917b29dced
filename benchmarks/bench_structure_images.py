"""Hover pictures of the shipped pool: bytes and time per picture, RDKit's SVG vs the minified one.

    .venv/bin/python benchmarks/bench_structure_images.py [--n N] [--render-check K]

For the pool in ``assets/pool/`` (all 10,000 polymers by default, or a random ``--n``) it draws
every hover picture (``HOVER_SIZE``) once with :func:`core.chem.structure_images.rdkit_svg` and
minifies it (:func:`core.chem.structure_images.minify_svg`), and prints side by side: total bytes
for the whole pool, bytes on disk (4 KiB blocks, one file per picture as the dashboard writes
them), mean / median / max bytes per picture, and ms per picture (draw, minify); and what the
Pool page sends for its largest table (300 rows, 150×95 pictures as base64 data URIs).

``--render-check K`` also renders K pairs (plain and with a highlighted substructure) in
headless Chromium (``/usr/bin/chromium``, Playwright) and reports how the pixels of RDKit's SVG
and the minified one differ: the largest channel difference (of 255) and the share of drawn
pixels that differ by more than 8.  Merged bond strokes are antialiased once where two bond
halves meet instead of twice, so a few join pixels differ slightly; nothing moves.  Nothing is
written to the repository.
"""
from __future__ import annotations

import argparse
import base64
import math
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

from core.chem.structure_images import HOVER_SIZE, minify_svg, rdkit_svg  # noqa: E402

BLOCK = 4096
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _on_disk(sizes: list[int]) -> int:
    return sum(math.ceil(s / BLOCK) * BLOCK for s in sizes)


def measure(psmiles: list[str]) -> dict:
    """Bytes and ms per picture of RDKit's SVG and the minified one."""
    w, h = HOVER_SIZE
    raw, mini, t_draw, t_min = [], [], 0.0, 0.0
    for p in psmiles:
        t0 = time.perf_counter()
        s = rdkit_svg(p, w, h)
        t1 = time.perf_counter()
        m = minify_svg(s)
        t2 = time.perf_counter()
        t_draw += t1 - t0
        t_min += t2 - t1
        raw.append(len(s.encode("utf-8")))
        mini.append(len(m.encode("utf-8")))
    n = len(psmiles)
    return {"n": n, "raw": raw, "mini": mini, "ms_draw": 1e3 * t_draw / n,
            "ms_minify": 1e3 * t_min / n}


def pool_page_bytes(psmiles: list[str], rows: int = 300) -> tuple[int, int]:
    """Bytes of the Pool page's picture column (base64 data URIs, 150×95) for ``rows`` rows:
    RDKit's SVG vs the minified one."""
    from core.chem.structure_images import svg_data_uri

    raw = [rdkit_svg(p, 150, 95) for p in psmiles[:rows]]
    return (sum(len(svg_data_uri(s)) for s in raw),
            sum(len(svg_data_uri(minify_svg(s))) for s in raw))


def render_check(psmiles: list[str]) -> list[tuple[str, int, int, int]]:
    """(polymer, pixels that differ by > 8, pixels drawn, largest channel difference) per
    picture, plain and highlighted."""
    import io

    import numpy as np
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from core.chem.substructures import DEFAULT_LIBRARY, match_atoms

    w, h = HOVER_SIZE
    out = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 2 * w + 20, "height": h + 20})
        try:
            for p in psmiles:
                hl = ()
                for pat in DEFAULT_LIBRARY.values():
                    hl = tuple(match_atoms(p, pat.smarts))
                    if hl:
                        break
                for atoms in {(), hl}:
                    pics = []
                    for svg in (rdkit_svg(p, w, h, atoms), minify_svg(rdkit_svg(p, w, h, atoms))):
                        uri = "data:image/svg+xml;base64," + base64.b64encode(
                            svg.encode()).decode()
                        page.set_content(f'<body style="margin:0;background:#fff">'
                                         f'<img id="i" src="{uri}" width="{w}" height="{h}">'
                                         "</body>")
                        page.wait_for_function("document.getElementById('i').complete")
                        png = page.locator("#i").screenshot()
                        pics.append(np.asarray(Image.open(io.BytesIO(png)).convert("RGB"),
                                               dtype=int))
                    diff = np.abs(pics[0] - pics[1]).max(axis=2)
                    drawn = (pics[0].min(axis=2) < 250).sum()
                    out.append((p + (" [highlight]" if atoms else ""), int((diff > 8).sum()),
                                int(drawn), int(diff.max())))
        finally:
            browser.close()
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the numbers side by side."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--n", type=int, default=None, help="random sample of the pool (default: all)")
    ap.add_argument("--render-check", type=int, default=0, metavar="K",
                    help="compare K pictures pixel by pixel in headless Chromium")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    pool = pd.read_csv(REPO / "assets" / "pool" / "pool.csv.gz")
    ps = list(dict.fromkeys(pool["psmiles"].astype(str)))
    if args.n:
        ps = pd.Series(ps).sample(min(args.n, len(ps)), random_state=args.seed).tolist()
    r = measure(ps)
    scale = len(pool) / r["n"]  # a sample's numbers extrapolated to the whole pool
    rows = [("pictures", f"{r['n']:,}", f"{r['n']:,}"),
            ("whole pool, MB (10^6 B)", f"{sum(r['raw']) * scale / 1e6:.1f}",
             f"{sum(r['mini']) * scale / 1e6:.1f}"),
            ("whole pool on disk (4 KiB blocks), MB", f"{_on_disk(r['raw']) * scale / 1e6:.1f}",
             f"{_on_disk(r['mini']) * scale / 1e6:.1f}"),
            ("bytes / picture, mean", f"{statistics.mean(r['raw']):,.0f}",
             f"{statistics.mean(r['mini']):,.0f}"),
            ("bytes / picture, median", f"{statistics.median(r['raw']):,.0f}",
             f"{statistics.median(r['mini']):,.0f}"),
            ("bytes / picture, max", f"{max(r['raw']):,}", f"{max(r['mini']):,}"),
            ("ms / picture", f"{r['ms_draw']:.2f} (draw)",
             f"{r['ms_draw'] + r['ms_minify']:.2f} (draw {r['ms_draw']:.2f} + minify "
             f"{r['ms_minify']:.2f})")]
    print(f"hover pictures {HOVER_SIZE[0]}x{HOVER_SIZE[1]} of assets/pool ({len(pool):,} polymers"
          + (f", sample of {r['n']:,} extrapolated" if scale != 1 else "") + ")")
    print(f"{'':40s} {'RDKit SVG':>14s}   minified")
    for name, a, b in rows:
        print(f"{name:40s} {a:>14s}   {b}")
    print(f"ratio minified / RDKit: {sum(r['mini']) / sum(r['raw']):.3f}")
    page_raw, page_min = pool_page_bytes(ps)
    print(f"{'Pool page, 300 rows of data URIs, kB':40s} {page_raw / 1e3:>14,.0f}   "
          f"{page_min / 1e3:,.0f}")
    if args.render_check:
        sample = pd.Series(ps).sample(min(args.render_check, len(ps)),
                                      random_state=args.seed + 1).tolist()
        res = render_check(sample)
        worst = max(res, key=lambda x: x[1] / max(x[2], 1))
        print(f"render check in Chromium: {len(res)} pictures; largest channel difference "
              f"{max(x[3] for x in res)} of 255; pixels differing by > 8: "
              f"{sum(x[1] for x in res) / max(sum(x[2] for x in res), 1):.1%} of the drawn ones, "
              f"at most {worst[1] / max(worst[2], 1):.1%} in one picture ({worst[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
