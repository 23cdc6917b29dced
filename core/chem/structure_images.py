"""2-D structure depictions of polymer repeat units as SVG (RDKit), with optional highlights.

The ``*`` connection points are drawn as RDKit draws dummy atoms (a ``*`` label), so the
picture reads like a textbook repeat unit. Functions are pure and memoised (LRU), so a table of
hundreds of rows costs one depiction per distinct polymer per process.
"""
from __future__ import annotations

import base64
import hashlib
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
           "highlight_color", "image_key", "write_structure_images", "HOVER_SIZE"]

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
    """SVG text of the repeat unit ``psmiles`` (``width``×``height`` px).

    ``highlight_atoms`` are atom indices of the parsed SMILES (e.g. from
    :func:`core.chem.substructures.match_atoms`); bonds between two highlighted atoms are
    highlighted too. Unparsable input gives :func:`placeholder_svg` rather than an exception so
    one bad row never breaks a table.
    """
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
    reads half an image. Unparsable SMILES get the placeholder picture. Returns the number of
    files written.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
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
