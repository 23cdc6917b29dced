"""Structure picture files for the Pareto chart's hover box."""
from __future__ import annotations

from core.chem.structure_images import image_key, main, write_structure_images


def test_pictures_are_written_once_per_polymer_and_named_by_key(tmp_path):
    polys = ["*CC(*)c1ccccc1", "*CC(*)C(=O)OC", "*CC(*)c1ccccc1", "not a smiles"]
    n = write_structure_images(polys, tmp_path / "img")
    assert n == 3  # duplicates drawn once
    for p in polys:
        svg = (tmp_path / "img" / f"{image_key(p)}.svg").read_text()
        assert svg.lstrip().startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "invalid SMILES" in (tmp_path / "img" / f"{image_key('not a smiles')}.svg").read_text()
    assert len(image_key(polys[0])) == 16 and image_key(polys[0]) != image_key(polys[1])
    assert write_structure_images(polys, tmp_path / "img") == 0  # nothing left to draw
    assert not list((tmp_path / "img").glob(".*tmp"))


def test_cli_draws_a_list_file(tmp_path, capsys):
    lst = tmp_path / "pool.smi"
    lst.write_text("*CC(*)C#N\n\n*CC(*)Cl\n")
    assert main(["--out", str(tmp_path / "img"), "--done", str(tmp_path / "ok"), str(lst)]) == 0
    assert "2 structure images written" in capsys.readouterr().out
    assert (tmp_path / "ok").is_file()
    assert (tmp_path / "img" / f"{image_key('*CC(*)Cl')}.svg").is_file()


# ---------------------------------------------------------------- minified pictures
import re  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402

import pytest  # noqa: E402

from core.chem.structure_images import (HOVER_SIZE, IMAGE_FORMAT, minify_svg,  # noqa: E402
                                        polymer_svg, rdkit_svg)

_NS = "{http://www.w3.org/2000/svg}"
_TOKEN = re.compile(r"[A-Za-z]|-?(?:\d+\.?\d*|\.\d+)")
_ARITY = {"m": 2, "l": 2, "q": 4, "c": 6, "z": 0}


def _absolute_subpaths(d: str) -> list[tuple[tuple[int, int], ...]]:
    """Independent reading of SVG path data (M/L/Q/C/Z, absolute or relative, implicit
    repeats): each subpath as its absolute points in tenths of a pixel."""
    toks, subs, cur, start, cx, cy, cmd, i = _TOKEN.findall(d), [], None, (0, 0), 0, 0, None, 0
    while i < len(toks):
        if toks[i].isalpha():
            cmd, i = toks[i], i + 1
            if cmd in "zZ":
                cx, cy = start
                continue
        elif cmd in ("M", "m"):  # implicit repeats of a moveto are linetos
            cmd = "L" if cmd == "M" else "l"
        k = _ARITY[cmd.lower()]
        vals = [float(t) for t in toks[i:i + k]]
        i += k
        pts = []
        for j in range(0, k, 2):
            x, y = (vals[j] + cx, vals[j + 1] + cy) if cmd.islower() else (vals[j], vals[j + 1])
            pts.append((round(x * 10), round(y * 10)))
        if cmd in "mM":
            cur = [pts[0]]
            subs.append(cur)
            start = (vals[0] + cx, vals[1] + cy) if cmd == "m" else (vals[0], vals[1])
        else:
            cur.extend(pts)
        cx, cy = pts[-1][0] / 10, pts[-1][1] / 10
    return sorted(tuple(s) for s in subs)


def _paint(el: ET.Element) -> tuple[str, str]:
    props = dict(el.attrib)
    for decl in props.pop("style", "").split(";"):
        if ":" in decl:
            k, v = decl.split(":", 1)
            props[k.strip()] = v.strip()
    colour = lambda v: (v.lower() if len(v) != 4 else  # noqa: E731 - #abc == #aabbcc
                        "#" + "".join(ch * 2 for ch in v[1:]).lower())
    return colour(props.get("fill", "#000000")), colour(props.get("stroke", "none"))


def _geometry(svg: str) -> dict:
    """What is drawn: every subpath's absolute points per (fill, stroke), and the ellipses."""
    root = ET.fromstring(svg)
    paths: dict[tuple[str, str], list] = {}
    for el in root.iter(f"{_NS}path"):
        paths.setdefault(_paint(el), []).extend(_absolute_subpaths(el.attrib["d"]))
    ellipses = sorted((_paint(el), el.attrib["cx"], el.attrib["cy"], el.attrib["rx"])
                      for el in root.iter(f"{_NS}ellipse"))
    return {"size": (root.attrib["width"].removesuffix("px"),
                     root.attrib["height"].removesuffix("px"), root.attrib["viewBox"]),
            "paths": {k: sorted(v) for k, v in paths.items()}, "ellipses": ellipses}


@pytest.mark.parametrize("psmiles,highlight", [
    ("*CC(*)C(=O)OC", ()),
    ("*c1ccc(S(=O)(=O)c2ccc(*)cc2)cc1", (3, 4, 5, 6)),                 # sulfonyl highlighted
    ("*C(=O)Nc1ccc(Oc2ccc(-n3ccc4cc(C(=O)OC(*)=O)ccc4c3=O)cc2)cc1", ()),
    ("*C/C=C(/*)Cl", ()),                                               # stereo double bond
])
def test_minified_picture_draws_the_same_geometry_in_a_quarter_of_the_bytes(psmiles, highlight):
    raw = rdkit_svg(psmiles, *HOVER_SIZE, highlight)
    small = minify_svg(raw)
    assert small == polymer_svg(psmiles, *HOVER_SIZE, highlight)
    assert _geometry(small) == _geometry(raw)
    assert len(small.encode()) < 0.45 * len(raw.encode())
    assert "rdkit" not in small and "class=" not in small and "style=" not in small


def test_minify_leaves_what_it_does_not_know_alone():
    text = ('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text x="1" y="5">'
            'x</text></svg>')
    assert minify_svg(text) == text
    assert minify_svg("not an svg") == "not an svg"


def test_pictures_of_another_format_are_replaced(tmp_path):
    d = tmp_path / "img"
    d.mkdir()
    old = d / "0123456789abcdef.svg"            # a picture of before (no format mark)
    old.write_text(rdkit_svg("*CC(*)Cl", *HOVER_SIZE))
    assert write_structure_images(["*CC(*)Cl"], d) == 1
    assert not old.exists() and (d / ".format").read_text().strip() == IMAGE_FORMAT
    f = d / f"{image_key('*CC(*)Cl')}.svg"
    assert f.read_text() == polymer_svg("*CC(*)Cl", *HOVER_SIZE)
    assert write_structure_images(["*CC(*)Cl"], d) == 0    # the same format: kept
