"""2-D structure depictions of polymer repeat units as SVG (RDKit), with optional highlights.

The ``*`` connection points are drawn as RDKit draws dummy atoms (a ``*`` label), so the
picture reads like a textbook repeat unit. Functions are pure and memoised (LRU), so a table of
hundreds of rows costs one depiction per distinct polymer per process.

RDKit's SVG is verbose (an inline style of ~200 characters on every bond half, atom labels as
glyph outlines in absolute coordinates): :func:`minify_svg` rewrites it losslessly at RDKit's own
0.1 px precision (presentation attributes without their default values, relative path data,
consecutive stroke-only paths of one opaque colour merged) to about a quarter of the bytes —
a 10,000-polymer pool's hover pictures take ~34 MB instead of ~125 MB
(``benchmarks/bench_structure_images.py``).
"""
from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from rdkit import Chem
from rdkit.Chem import rdDepictor
from rdkit.Chem.Draw import rdMolDraw2D
from rdkit.rdBase import BlockLogs

from core.atomic_io import atomic_write_text

__all__ = ["polymer_svg", "svg_data_uri", "polymer_data_uri", "placeholder_svg",
           "highlight_color", "image_key", "write_structure_images", "HOVER_SIZE",
           "minify_svg", "rdkit_svg", "IMAGE_FORMAT"]

#: version of the picture files' format: an image directory written by another version is
#: cleared and drawn again (``<directory>/.format`` names the version that wrote it)
IMAGE_FORMAT: str = "2-min"

#: width × height (px) of the hover images of the Pareto chart
HOVER_SIZE: tuple[int, int] = (200, 140)

#: RGBA of highlighted atoms/bonds (a warm orange that reads on white and dark themes).
highlight_color: tuple[float, float, float, float] = (1.0, 0.55, 0.1, 0.55)


def placeholder_svg(text: str, width: int = 220, height: int = 160) -> str:
    """A plain SVG box with a short message (used when a SMILES cannot be drawn)."""
    safe = (text[:40].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}"><rect width="100%" height="100%" fill="#fafafa" '
            f'stroke="#ccc"/><text x="50%" y="50%" font-size="12" text-anchor="middle" '
            f'fill="#888">{safe}</text></svg>')


@lru_cache(maxsize=8192)
def polymer_svg(psmiles: str, width: int = 220, height: int = 160,
                highlight_atoms: tuple[int, ...] = (), transparent: bool = True) -> str:
    """SVG text of the repeat unit ``psmiles`` (``width``×``height`` px), minified
    (:func:`minify_svg` of :func:`rdkit_svg`).

    ``highlight_atoms`` are atom indices of the parsed SMILES (e.g. from
    :func:`core.chem.substructures.match_atoms`); bonds between two highlighted atoms are
    highlighted too. Unparsable input gives :func:`placeholder_svg` rather than an exception so
    one bad row never breaks a table.
    """
    return minify_svg(rdkit_svg(psmiles, width, height, highlight_atoms, transparent))


def rdkit_svg(psmiles: str, width: int = 220, height: int = 160,
              highlight_atoms: tuple[int, ...] = (), transparent: bool = True) -> str:
    """The SVG exactly as RDKit draws it (not minified, not memoised); see :func:`polymer_svg`."""
    with _Quiet():
        mol = Chem.MolFromSmiles(psmiles) if isinstance(psmiles, str) else None
    if mol is None:
        return placeholder_svg("invalid SMILES", width, height)
    rdDepictor.SetPreferCoordGen(True)
    rdDepictor.Compute2DCoords(mol)
    drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
    opts = drawer.drawOptions()
    if transparent:
        opts.clearBackground = False
    opts.padding = 0.08
    # cap the bond length so small repeat units are not blown up to fill the box (keeps
    # structures in one table at a comparable scale)
    opts.fixedBondLength = max(12.0, min(width, height) / 5.0)
    opts.bondLineWidth = 1.6
    opts.minFontSize = 9
    atoms = [i for i in highlight_atoms if 0 <= i < mol.GetNumAtoms()]
    hs = set(atoms)
    bonds = [b.GetIdx() for b in mol.GetBonds()
             if b.GetBeginAtomIdx() in hs and b.GetEndAtomIdx() in hs]
    if atoms:
        colours = {i: highlight_color for i in atoms}
        bcolours = {i: highlight_color for i in bonds}
        rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol, highlightAtoms=atoms,
                                           highlightAtomColors=colours,
                                           highlightBonds=bonds,
                                           highlightBondColors=bcolours)
    else:
        rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol)
    drawer.FinishDrawing()
    svg = drawer.GetDrawingText()
    # drop the XML prolog so the text can be inlined in HTML
    if svg.startswith("<?xml"):
        svg = svg[svg.index("?>") + 2:].lstrip()
    return svg


def svg_data_uri(svg: str, base64_encode: bool = True) -> str:
    """``data:image/svg+xml`` URI of an SVG string (base64 by default; URL-encoded otherwise)."""
    if base64_encode:
        return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return "data:image/svg+xml;utf8," + quote(svg)


@lru_cache(maxsize=8192)
def polymer_data_uri(psmiles: str, width: int = 160, height: int = 110,
                     highlight_atoms: tuple[int, ...] = ()) -> str:
    """Data URI of :func:`polymer_svg` (for image columns of tables)."""
    return svg_data_uri(polymer_svg(psmiles, width, height, highlight_atoms))


def image_key(psmiles: str) -> str:
    """File-name key of a structure image: the first 16 hex digits of sha1(psmiles)."""
    return hashlib.sha1(str(psmiles).encode("utf-8")).hexdigest()[:16]


def write_structure_images(psmiles: Iterable[str], directory: str | Path, *,
                           width: int = HOVER_SIZE[0], height: int = HOVER_SIZE[1]) -> int:
    """Write ``<directory>/<image_key(p)>.svg`` for every polymer that has no file yet.

    Files appear atomically (written under a temporary name, then renamed), so a browser never
    reads half an image. Unparsable SMILES get the placeholder picture. Pictures of another
    :data:`IMAGE_FORMAT` in ``directory`` are removed first. Returns the number of files
    written.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    _check_format(d)
    n = 0
    for p in dict.fromkeys(str(x) for x in psmiles if isinstance(x, str) and x):
        f = d / f"{image_key(p)}.svg"
        if f.is_file():
            continue
        atomic_write_text(f, _svg_uncached(p, width, height))
        n += 1
    return n


def _svg_uncached(psmiles: str, width: int, height: int) -> str:
    # bypass the LRU cache: a 10k-polymer pool would evict the tables' depictions
    return polymer_svg.__wrapped__(psmiles, width, height, (), True)


def _check_format(d: Path) -> None:
    """Clear ``d``'s pictures when another :data:`IMAGE_FORMAT` wrote them (e.g. the bulky
    unminified ones of before), so a cache never keeps old files under current names."""
    mark = d / ".format"
    try:
        if mark.read_text(encoding="utf-8").strip() == IMAGE_FORMAT:
            return
    except OSError:
        pass
    for f in d.glob("*.svg"):
        f.unlink(missing_ok=True)
    atomic_write_text(mark, IMAGE_FORMAT + "\n")


# ---------------------------------------------------------------- SVG minifier
_EL = re.compile(r"<(path|ellipse|rect|circle|polygon|polyline|line)\s([^<>]*?)/>", re.S)
_ATTR = re.compile(r"([\w:-]+)\s*=\s*(['\"])(.*?)\2", re.S)
_HEAD = re.compile(r"\s*(?:<\?xml[^>]*\?>\s*)?<svg\b([^>]*)>\s*(?:<!--.*?-->\s*)?", re.S)
_TOK = re.compile(r"[A-Za-z]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_NARGS = {"M": 2, "L": 2, "Q": 4, "C": 6, "T": 2, "S": 4, "Z": 0}  # absolute commands handled
_DEFAULT_VALUES = {("stroke-linecap", "butt"), ("stroke-linejoin", "miter"),
                   ("stroke-opacity", "1"), ("fill-opacity", "1")}
_OPAQUE = re.compile(r"#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}")


@lru_cache(maxsize=16384)
def _tenths(tenths: int) -> str:
    """``153`` -> ``15.3``, ``-5`` -> ``-.5``, ``20`` -> ``2``."""
    s = f"{tenths / 10:.1f}".rstrip("0").rstrip(".")
    if s.startswith("0."):
        s = s[1:]
    elif s.startswith("-0."):
        s = "-" + s[2:]
    return "0" if s in ("", "-0") else s


def _numbers(values: list[int]) -> str:
    out = ""
    for v in values:
        s = _tenths(v)
        out += s if not out or s.startswith("-") else " " + s
    return out


def _compact_path(d: str) -> str | None:
    """Path data ``d`` (absolute M/L/Q/C/S/T/Z) rewritten with relative commands at 0.1 px,
    each command letter written once per run; None for anything else (kept as it is)."""
    toks = _TOK.findall(d)
    segs: list[tuple[str, list[int]]] = []
    i = 0
    while i < len(toks):
        c = toks[i]
        if c not in _NARGS:
            return None
        i += 1
        nums: list[int] = []
        while i < len(toks) and not toks[i].isalpha():
            nums.append(round(float(toks[i]) * 10))
            i += 1
        k = _NARGS[c]
        if (k == 0 and nums) or (k and (not nums or len(nums) % k)):
            return None
        segs.append((c, nums))
    out: list[str] = []
    cx = cy = sx = sy = 0
    last: str | None = None          # command a bare number group would continue
    for c, nums in segs:
        if c == "Z":
            out.append("z")
            cx, cy, last = sx, sy, None
            continue
        k = _NARGS[c]
        for j in range(0, len(nums), k):
            grp = nums[j:j + k]
            if c == "M" and j == 0 and not out:
                out.append("M" + _numbers(grp))     # the first moveto stays absolute
                last = "L"                           # bare pairs after it would be absolute
            else:
                cmd = "l" if c == "M" and j else c.lower()
                rel = _numbers([v - (cx if m % 2 == 0 else cy) for m, v in enumerate(grp)])
                if cmd == last and cmd != "m":
                    out.append(rel if rel.startswith("-") else " " + rel)
                else:
                    out.append(cmd + rel)
                last = "l" if cmd == "m" else cmd
            cx, cy = grp[-2], grp[-1]
            if c == "M" and j == 0:
                sx, sy = cx, cy
    return "".join(out)


@lru_cache(maxsize=1024)
def _short_colour(v: str) -> str:
    m = re.fullmatch(r"#([0-9A-Fa-f])\1([0-9A-Fa-f])\2([0-9A-Fa-f])\3", v)
    return f"#{m.group(1)}{m.group(2)}{m.group(3)}".lower() if m else v


@lru_cache(maxsize=256)
def _style(style: str) -> dict[str, str]:
    out = {}
    for decl in style.split(";"):
        if ":" in decl:
            prop, val = (x.strip() for x in decl.split(":", 1))
            out[prop] = val
    return out


def _presentation(items: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Attributes without default values, colours short, widths without ``px``."""
    attrs: dict[str, str] = {}
    for prop, v in items:
        if (prop, v) in _DEFAULT_VALUES:
            continue
        if prop.endswith("width") and v.endswith("px"):
            v = v[:-2]
        elif prop in ("fill", "stroke"):
            v = _short_colour(v)
        attrs[prop] = v
    if attrs.get("fill") == "none":
        attrs.pop("fill-rule", None)
    if attrs.get("stroke", "none") == "none":
        for prop in [p for p in attrs if p.startswith("stroke-")]:
            del attrs[prop]
    return attrs


def minify_svg(svg: str) -> str:
    """The same picture in fewer bytes: RDKit's header, comments, classes and default-valued
    style properties dropped, styles written as presentation attributes, path data relative at
    0.1 px (RDKit's own precision), consecutive stroke-only paths of one opaque colour merged
    into one element (the same pixels).  Input with any element this function does not know
    (text, groups, …) is returned unchanged."""
    head = _HEAD.match(svg)
    if head is None:
        return svg
    body = svg[head.end():].rstrip()
    if not body.endswith("</svg>"):
        return svg
    body = body[:-len("</svg>")]
    if _EL.sub("", body).strip():
        return svg
    hat = {k: v for k, _, v in _ATTR.findall(head.group(1))}
    w, h = hat.get("width", "").removesuffix("px"), hat.get("height", "").removesuffix("px")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             f'viewBox="{hat.get("viewBox", f"0 0 {w} {h}")}">']
    run_attrs: str | None = None     # attributes of the open run of mergeable paths
    run_d: list[str] = []
    for tag, text in _EL.findall(body):
        attrs: dict[str, str] = {}
        for k, _, v in _ATTR.findall(text):
            if k == "style":
                attrs.update(_style(v))
            elif k != "class":
                attrs[k] = v.strip()
        attrs = _presentation(tuple(attrs.items()))
        d = attrs.pop("d", None) if tag == "path" else None
        if d is not None:
            d = _compact_path(d) or " ".join(d.split())
        rest = "".join(f' {k}="{v}"' for k, v in attrs.items())
        mergeable = (d is not None and attrs.get("fill") == "none"
                     and bool(_OPAQUE.fullmatch(attrs.get("stroke", "")))
                     and "opacity" not in attrs)
        if mergeable and rest == run_attrs:
            run_d.append(d)
            continue
        if run_attrs is not None:
            parts.append(f'<path d="{"".join(run_d)}"{run_attrs}/>')
        run_attrs, run_d = (rest, [d]) if mergeable else (None, [])
        if not mergeable:
            parts.append(f'<path d="{d}"{rest}/>' if d is not None else f"<{tag}{rest}/>")
    if run_attrs is not None:
        parts.append(f'<path d="{"".join(run_d)}"{run_attrs}/>')
    parts.append("</svg>")
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    """``python -m core.chem.structure_images --out DIR FILE``: write the hover images of the
    polymer SMILES listed one per line in FILE (used to draw a pool in the background)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m core.chem.structure_images",
                                 description=main.__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="image directory")
    ap.add_argument("--done", default=None,
                    help="file to create once every picture is written (a completion marker)")
    ap.add_argument("smiles_file", help="text file with one polymer SMILES per line")
    args = ap.parse_args(argv)
    lines = Path(args.smiles_file).read_text(encoding="utf-8").splitlines()
    n = write_structure_images((ln.strip() for ln in lines), args.out)
    if args.done:
        Path(args.done).touch()
    print(f"{n} structure images written to {args.out}")
    return 0


class _Quiet:
    def __enter__(self) -> None:
        self._b = BlockLogs()

    def __exit__(self, *exc: object) -> None:
        del self._b


if __name__ == "__main__":
    raise SystemExit(main())
