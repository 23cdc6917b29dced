"""core.simulation.cell.pack_chains: stiff chains longer than the density's box still pack
(a second packmol run in a box of the longest chain's extent; VP04441/VP05505 of the pool sweep
failed here), while a flexible chain keeps the density's box."""
from __future__ import annotations

import pytest

pytest.importorskip("rdkit")

from core.simulation.build import build_chain  # noqa: E402
from core.simulation.cell import box_length, chain_extent, pack_chains  # noqa: E402


def test_chain_extent_by_hand() -> None:
    from rdkit import Chem
    from rdkit.Geometry import Point3D

    m = Chem.MolFromSmiles("CCC")
    conf = Chem.Conformer(3)
    for i, x in enumerate((0.0, 1.5, 4.0)):
        conf.SetAtomPosition(i, Point3D(x, 0.0, 0.0))
    m.AddConformer(conf)
    assert chain_extent(m) == pytest.approx(4.0)


def test_a_rod_longer_than_the_density_box_packs(tmp_path) -> None:
    from rdkit.Chem import Descriptors

    # poly(p-phenylene)-like rod, 2 chains of the smoke size (VP05505-type backbone)
    chains = [build_chain("*c1ccc2cc(-c3ccc(*)s3)ccc2n1", 3, seed=s).mol for s in (1, 2)]
    total = sum(Descriptors.MolWt(m) for m in chains)
    ext = max(chain_extent(m) for m in chains)
    assert ext > box_length(total, 0.3)  # the density's box alone is too short for the rod
    coords, L = pack_chains(chains, 0.3, tmp_path, tolerance=2.0)
    assert L == pytest.approx(ext + 4.0)  # the density box failed; the rod box packed
    assert [len(c) for c in coords] == [m.GetNumAtoms() for m in chains]


def test_a_flexible_chain_keeps_the_density_box(tmp_path) -> None:
    from rdkit.Chem import Descriptors

    chains = [build_chain("*CC(*)c1ccccc1", 4, seed=s).mol for s in (1, 2)]
    total = sum(Descriptors.MolWt(m) for m in chains)
    _, L = pack_chains(chains, 0.3, tmp_path, tolerance=2.0)
    assert L == pytest.approx(box_length(total, 0.3))
