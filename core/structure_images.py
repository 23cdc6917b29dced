"""2-D structure depictions of polymer repeat units as SVG (RDKit), with optional highlights.

The ``*`` connection points are drawn as RDKit draws dummy atoms (a ``*`` label), so the
picture reads like a textbook repeat unit. Functions are pure and memoised (LRU), so a table of
hundreds of rows costs one depiction per distinct polymer per process.
"""
from __future__ import annotations

import base64
from functools import lru_cache
from urllib.parse import quote

from rdkit import Chem
from rdkit.Chem import rdDepictor
from rdkit.Chem.Draw import rdMolDraw2D
from rdkit.rdBase import BlockLogs

__all__ = ["polymer_svg", "svg_data_uri", "polymer_data_uri", "placeholder_svg",
           "highlight_color"]

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
    :func:`core.substructures.match_atoms`); bonds between two highlighted atoms are
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


class _Quiet:
    def __enter__(self) -> None:
        self._b = BlockLogs()

    def __exit__(self, *exc: object) -> None:
        del self._b
