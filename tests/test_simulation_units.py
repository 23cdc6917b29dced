"""Unit tests of the simulation pipeline's pure parts (no external programs; < 5 s)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.simulation.build import (UnsupportedPolymer, atom_key, build_chain, choose_dp,
                                   unit_atoms, validated_psmiles)
from core.simulation.cell import box_length, unwrap_molecule
from core.simulation.errors import BuildError, MDUnstable, SimulationError
from core.simulation.forcefield import ForceField, neutralise, parse_prmtop
from core.simulation.md import (analyse_production, block_standard_error, input_script,
                                relative_drift)
from core.simulation.lammps_data import DataFileInfo
from core.simulation.presets import PRESETS, UnknownPreset, get_preset, larsen_21_step


def test_presets_exist_and_unknown_name_is_rejected():
    assert set(PRESETS) == {"smoke", "quick", "standard"}
    assert get_preset("QUICK") is PRESETS["quick"]
    with pytest.raises(UnknownPreset, match="smoke, quick, standard"):
        get_preset("fast")
    assert issubclass(UnknownPreset, ValueError)


def test_larsen_schedule_matches_radonpy():
    st = larsen_21_step(t_max=600, p_max=50000)
    assert len(st) == 21
    assert math.isclose(sum(s.time_ps for s in st), 1560.0)
    npt_p = [s.p_atm for s in st if s.ensemble == "npt"]
    assert npt_p == [1000, 30000, 50000, 25000, 5000, 500, 1.0]
    assert {s.t_start for s in st if s.ensemble == "nvt"} == {600, 300}
    assert PRESETS["standard"].equil_stages == st


def test_neutralise_sums_to_exact_zero_and_spreads_residual():
    q = [0.1, -0.2, 0.3, -0.1, 0.0007]
    out = neutralise(q)
    assert sum(round(x * 1e6) for x in out) == 0
    assert abs(math.fsum(out)) < 1e-12
    # residual 0.1007 spread evenly: each atom shifted by -0.02014 (± rounding of 1e-6)
    for a, b in zip(q, out):
        assert abs((a - 0.02014) - b) <= 1.5e-6
    assert neutralise([]) == []


def test_box_length_hand_number():
    # 1000 g/mol at 1 g/cm³: V = 1000/6.02214076e23 cm³ = 1660.539 Å³ → L = 11.8425 Å
    assert box_length(1000.0, 1.0) == pytest.approx(1660.539 ** (1 / 3), rel=1e-5)


def test_unwrap_molecule_restores_bonded_geometry():
    L = 10.0
    xyz = np.array([[9.5, 5.0, 5.0], [0.5, 5.0, 5.0], [1.5, 5.0, 5.0]])  # wrapped chain
    out = unwrap_molecule(xyz, [(0, 1), (1, 2)], L)
    assert np.allclose(np.diff(out[:, 0]), [1.0, 1.0])


def test_block_standard_error_iid_and_correlated():
    rng = np.random.default_rng(0)
    x = rng.normal(size=4096)
    se = block_standard_error(x)
    assert 0.8 / 64 < se < 1.3 / 64  # σ/√n = 1/64
    corr = np.repeat(rng.normal(size=256), 16)  # blocks of 16 identical values
    assert block_standard_error(corr) > 2.5 * corr.std(ddof=1) / math.sqrt(len(corr))


def test_relative_drift_linear():
    t = np.linspace(0, 10, 11)
    y = 1.0 + 0.01 * t  # rises by 0.1 over the window, mean 1.05
    assert relative_drift(t, y) == pytest.approx(0.1 / 1.05)


def test_analyse_production_window_and_bad_density():
    p = get_preset("quick")
    t = np.arange(0, 40001, 200.0)  # fs
    rho = np.full_like(t, 1.05)
    s = np.column_stack([t / 2, t, 300 + 0 * t, 1 + 0 * t, -100 + 0 * t, 50 + 0 * t, rho])
    r = analyse_production(s, p)
    assert r["density"] == pytest.approx(1.05)
    assert r["window_ps"] == pytest.approx(p.production_average_ps)
    assert r["converged"]
    s[:, 6] = 0.05
    with pytest.raises(MDUnstable, match="unphysical"):
        analyse_production(s, p)
    s[:, 6] = np.nan
    with pytest.raises(MDUnstable):
        analyse_production(s, p)


def test_input_script_orders_shake_before_npt():
    info = DataFileInfo(n_atoms=10, n_atom_types=2, shake_bond_types=(1, 3), total_charge=0.0,
                        total_mass=100.0, box=20.0)
    text = input_script(get_preset("quick"), info)
    assert text.index("fix shk all shake 1e-4 20 0 b 1 3") < text.index("fix int all npt")
    assert "special_bonds amber" in text and "dihedral_style fourier" in text
    assert text.index("minimize") < text.index("fix shk")


@pytest.mark.parametrize("bad, match", [
    ("", "empty"),
    ("*CC", "two"),
    ("*C[Si](C)(C)*", "Si|element|Element"),
    ("not a smiles", "parse|Invalid|invalid"),
])
def test_unsupported_polymers_raise_clear_errors(bad, match):
    with pytest.raises(UnsupportedPolymer, match=match):
        validated_psmiles(bad)
    assert issubclass(UnsupportedPolymer, ValueError) and issubclass(UnsupportedPolymer,
                                                                      SimulationError)


def test_chain_bookkeeping_matches_oligomer_keys():
    s = "*C(C*)c1ccccc1"
    assert unit_atoms(s) == 16
    assert choose_dp(s, 168) == 10
    ch = build_chain(s, 5, seed=3, embed=False)
    tri = build_chain(s, 3, seed=9, embed=False)
    keys = {atom_key(a, 5) for a in ch.mol.GetAtoms()}
    tri_keys = {atom_key(a, 3) for a in tri.mol.GetAtoms()}
    assert keys == tri_keys  # every chain atom finds its oligomer counterpart
    assert ch.mol.GetNumAtoms() == 5 * 16 + 2 * 4  # 5 × C8H8 + two CH3 end groups
    with pytest.raises(BuildError):
        build_chain(s, 0)


def test_parse_prmtop_roundtrip_minimal():
    # a hand-written 2-atom prmtop fragment: one bond, LJ A/B for ε = 0.1, σ = 3.4
    eps, sig = 0.1, 3.4
    a, b = 4 * eps * sig ** 12, 4 * eps * sig ** 6
    text = f"""%FLAG POINTERS
%FORMAT(10I8)
       2       1
%FLAG AMBER_ATOM_TYPE
%FORMAT(20a4)
c3  c3
%FLAG CHARGE
%FORMAT(5E16.8)
  1.82223000E+00 -1.82223000E+00
%FLAG MASS
%FORMAT(5E16.8)
  1.20100000E+01  1.20100000E+01
%FLAG ATOM_TYPE_INDEX
%FORMAT(10I8)
       1       1
%FLAG NONBONDED_PARM_INDEX
%FORMAT(10I8)
       1
%FLAG LENNARD_JONES_ACOEF
%FORMAT(5E16.8)
  {a:.8E}
%FLAG LENNARD_JONES_BCOEF
%FORMAT(5E16.8)
  {b:.8E}
%FLAG BOND_FORCE_CONSTANT
%FORMAT(5E16.8)
  3.00000000E+02
%FLAG BOND_EQUIL_VALUE
%FORMAT(5E16.8)
  1.53000000E+00
%FLAG BONDS_WITHOUT_HYDROGEN
%FORMAT(10I8)
       0       3       1
"""
    ff = parse_prmtop(text)
    assert ff.types == ["c3", "c3"]
    assert ff.charges == pytest.approx([0.1, -0.1])
    assert ff.bonds == [(0, 1, 300.0, 1.53)]
    assert ff.lj["c3"] == pytest.approx((eps, sig))
    assert isinstance(ForceField.from_dict(ff.to_dict()), ForceField)


def test_random_walk_growth_keeps_bonds_and_avoids_clashes():
    from rdkit import Chem
    from core.simulation.build import grow_coordinates

    s = "*C(C*)c1ccccc1"
    ch = build_chain(s, 12, seed=4, embed=False)
    x = grow_coordinates(ch.mol, s, 12, seed=4)
    assert np.isfinite(x).all()
    bonds = [np.linalg.norm(x[b.GetBeginAtomIdx()] - x[b.GetEndAtomIdx()])
             for b in ch.mol.GetBonds()]
    assert 1.0 < min(bonds) and max(bonds) < 1.6  # C–H ≈ 1.09, C–C ≤ 1.54 Å
    topo = Chem.GetDistanceMatrix(ch.mol)
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    assert d[topo > 3].min() > 1.5  # no overlapping non-bonded atoms
    # long chains switch to growth automatically
    long = build_chain(s, 30, seed=1, grow_above_atoms=200)
    assert long.mol.GetNumConformers() == 1 and long.mol.GetNumAtoms() == 30 * 16 + 8


@pytest.mark.parametrize("name", ["smoke", "quick", "standard"])
def test_every_preset_has_long_range_dispersion(name):
    """Issue 11: no preset may drop the LJ tail (a cut-off without it loses 0.6–1.5 % density)."""
    info = DataFileInfo(n_atoms=100, n_atom_types=2, shake_bond_types=(), total_charge=0.0,
                        total_mass=1e4, box=30.0)
    text = input_script(get_preset(name), info)
    assert "pair_modify mix arithmetic tail yes" in text
    assert "lj/charmm" not in text


def test_standard_script_is_radonpy_protocol():
    info = DataFileInfo(n_atoms=10000, n_atom_types=4, shake_bond_types=(2,), total_charge=0.0,
                        total_mass=1e5, box=60.0)
    text = input_script(get_preset("standard"), info)
    assert "pair_style lj/cut/coul/long 12.0" in text
    assert "pair_modify mix arithmetic tail yes" in text
    assert "kspace_style pppm 1e-06" in text and "timestep 1.0" in text
    assert text.count("STAGE equil") == 21
    assert "iso 50000.0 50000.0" in text
    # 5 ns production at 1 fs
    assert "run 5000000" in text


def test_parmchk_warnings_parsed_and_missing_bond_is_fatal(tmp_path):
    from core.simulation.forcefield import _parmchk_warnings

    f = tmp_path / "m.frcmod"
    f.write_text("Remark line goes here\nMASS\n\nBOND\n"
                 "c3-sx  0.00   0.000       ATTN, need revision\n\nANGLE\n\nDIHE\n"
                 "c3-c3-ss-c6   1    0.200       180.000           1.000      same as "
                 "c3-c3-ss-c3, penalty score=  0.0\n\nIMPROPER\n"
                 "c3-o -c -os         1.1          180.0         2.0          Same as c3-o -c -oh, "
                 "penalty score=  8.5)\n\nNONBON\n\n")
    warnings, fatal = _parmchk_warnings(f)
    assert fatal == ["bond c3-sx"]
    assert warnings == [
        "GAFF2 dihe parameter c3-c3-ss-c6 filled by parmchk2 (same as c3-c3-ss-c3, penalty 0.0)",
        "GAFF2 improper parameter c3-o-c-os filled by parmchk2 (same as c3-o-c-oh, penalty 8.5)"]


def test_energy_drift_is_relative_to_kinetic_energy():
    p = get_preset("quick")
    t = np.arange(0, 40001, 200.0)
    pe = -5.0 + 1e-4 * t  # rises by 3.0 kcal/mol over the 30-ps window
    ke = np.full_like(t, 600.0)
    s = np.column_stack([t / 2, t, 300 + 0 * t, 1 + 0 * t, pe, pe + ke, 1.0 + 0 * t])
    r = analyse_production(s, p)
    assert r["energy_drift_rel"] == pytest.approx(3.0 / 600.0, rel=1e-6)


def test_standard_runs_a_cooling_ladder_after_the_production():
    from core.simulation.md import ladder_script

    p = get_preset("standard")
    info = DataFileInfo(n_atoms=10000, n_atom_types=4, shake_bond_types=(2,), total_charge=0.0,
                        total_mass=1e5, box=60.0)
    main = input_script(p, info)
    assert "STAGE ladder" not in main                    # the production is RadonPy's, untouched
    text = ladder_script(p, info)
    assert "read_data final.data" in text
    assert text.count("STAGE ladder") == 1 + len(p.ladder_temps) == 20
    assert text.index("fix shk") < text.index("fix int")
    # 0.1 ns equilibration + 0.2 ns sampling at each of 700, 675, …, 250 K, at 1 fs
    assert "fix int all npt temp 250.0 250.0" in text and "run 100000" in text
    assert "append ladder.dat" in text and p.protocol == "standard-md2-direct"


def test_preset_rejects_bad_density_settings():
    q = get_preset("quick")
    with pytest.raises(ValueError, match="force field"):
        q.with_overrides(forcefield="opls")
    with pytest.raises(ValueError, match="needs a cooling ladder"):
        q.with_overrides(density_method="melt_line")
    with pytest.raises(ValueError, match="strictly decreasing"):
        q.with_overrides(ladder_temps=(300.0, 400.0, 500.0, 600.0))


def test_chain_grows_unit_by_unit_when_etkdg_fails(monkeypatch):
    """A long chain ETKDG cannot embed (the 22-mer of polyacrylonitrile in the density benchmark)
    is grown unit by unit instead of failing the calculation."""
    from rdkit.Chem import AllChem

    real = AllChem.EmbedMolecule
    # whole chains fail to embed; the single units that growth embeds still work
    monkeypatch.setattr(AllChem, "EmbedMolecule",
                        lambda mol, *a, **k: -1 if mol.GetNumAtoms() > 40 else real(mol, *a, **k))
    ch = build_chain("*CC(C#N)*", 6, seed=1)
    assert ch.mol.GetNumConformers() == 1
    xyz = ch.mol.GetConformer().GetPositions()
    for b in ch.mol.GetBonds():
        d = np.linalg.norm(xyz[b.GetBeginAtomIdx()] - xyz[b.GetEndAtomIdx()])
        assert 0.9 < d < 1.9
    with pytest.raises(BuildError, match="could not generate"):
        build_chain("*CC(CCCCCCCCCCCC#N)*", 3, seed=1)  # > 40 atoms; a trimer has no fallback


def test_lj_epsilon_scale_multiplies_well_depths_only(tmp_path):
    from core.simulation.lammps_data import write_data_file

    ff = ForceField(types=["c3", "hc"], charges=[0.05, -0.05], masses=[12.01, 1.008],
                    bonds=[(0, 1, 337.3, 1.09)], angles=[], dihedrals=[], impropers=[],
                    lj={"c3": (0.1078, 3.3977), "hc": (0.0208, 2.6002)})
    xyz = [np.array([[1.0, 1.0, 1.0], [2.09, 1.0, 1.0]])]

    def pair_coeffs(path):
        lines = path.read_text().splitlines()
        i = next(k for k, ln in enumerate(lines) if ln.startswith("Pair Coeffs"))
        return [tuple(float(x) for x in ln.split()[1:3]) for ln in lines[i + 2:i + 4]]

    write_data_file(ff, xyz, 20.0, tmp_path / "a.data")
    write_data_file(ff, xyz, 20.0, tmp_path / "b.data", epsilon_scale=1.2)
    plain, scaled = pair_coeffs(tmp_path / "a.data"), pair_coeffs(tmp_path / "b.data")
    assert plain == [pytest.approx((0.1078, 3.3977)), pytest.approx((0.0208, 2.6002))]
    assert scaled == [pytest.approx((0.1078 * 1.2, 3.3977)), pytest.approx((0.0208 * 1.2, 2.6002))]
    with pytest.raises(ValueError, match="lj_epsilon_scale"):
        get_preset("quick").with_overrides(lj_epsilon_scale=3.0)
