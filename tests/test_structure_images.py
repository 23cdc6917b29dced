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
