"""Tests of the TDHF/TDDFT linear-response polarisability solver (core.simulation.response).

Reference values are computed independently in the tests themselves: finite-field dipole
derivatives (static limit) and the exact sum over *all* TDHF states from PySCF's TDHF
eigen-solver (dynamic α), for small molecules where both are cheap.
"""
from __future__ import annotations

import numpy as np
import pytest
from pyscf import dft, gto, scf, tdscf

from core.simulation.errors import ResponseNotConverged, SCFNotConverged
from core.simulation.response import (
    BOHR3_TO_A3,
    InvalidResponseInput,
    finite_field_polarizability,
    polarizability_tensor,
    polarizability_tensors,
    wavelength_to_omega_au,
)

H2O = "O 0 0 0.1173; H 0 0.7572 -0.4692; H 0 -0.7572 -0.4692"  # Å, experimental geometry
W_D = wavelength_to_omega_au(589.29)


def _rhf(atom: str, basis: str, **kw):
    mol = gto.M(atom=atom, basis=basis, verbose=0, **kw)
    mf = scf.RHF(mol)
    mf.conv_tol = 1e-11
    mf.kernel()
    assert mf.converged
    return mf


@pytest.fixture(scope="module")
def h2o_631g():
    return _rhf(H2O, "6-31g")


def test_wavelength_to_omega_hand_values():
    # E = hc/λ: 1 E_h = 27.211386 eV, hc = 1239.84198 eV·nm -> 589.29 nm = 2.103958 eV
    assert wavelength_to_omega_au(589.29) == pytest.approx(1239.841984 / 589.29 / 27.211386246, rel=1e-8)
    assert wavelength_to_omega_au(45.56335252767) == pytest.approx(1.0, rel=1e-12)
    for bad in (0.0, -5.0, float("nan")):
        with pytest.raises(InvalidResponseInput):
            wavelength_to_omega_au(bad)
    assert issubclass(InvalidResponseInput, ValueError)


def test_static_response_equals_finite_field(h2o_631g):
    a_lr = polarizability_tensor(h2o_631g, 0.0, tol=1e-9)
    a_ff = finite_field_polarizability(h2o_631g, field=1e-3)
    # finite-difference truncation error ~ γF²/6 ≈ 1e-5 relative at F = 1e-3 a.u.
    np.testing.assert_allclose(a_lr, a_ff, rtol=2e-5, atol=2e-5)
    # water is planar (yz plane here): the tensor is diagonal in this frame
    assert abs(a_lr[0, 1]) < 1e-8 and abs(a_lr[0, 2]) < 1e-8 and abs(a_lr[1, 2]) < 1e-8


def test_dynamic_response_equals_sum_over_all_tdhf_states(h2o_631g):
    """α_ij(ω) = Σ_n 2 ω_n <0|μ_i|n><n|μ_j|0> / (ω_n² − ω²) over the complete TDHF spectrum."""
    mf = h2o_631g
    nocc = int((mf.mo_occ > 0).sum())
    nvir = mf.mo_coeff.shape[1] - nocc
    td = tdscf.TDHF(mf)
    td.nstates = nocc * nvir  # every singlet state: the sum over states is then exact
    td.conv_tol = 1e-10
    td.kernel()
    e, tdip = td.e, td.transition_dipole()
    omegas = [0.0, wavelength_to_omega_au(656.27), W_D, wavelength_to_omega_au(486.13)]
    alphas = polarizability_tensors(mf, omegas, tol=1e-9)
    for w, a in zip(omegas, alphas):
        sos = np.einsum("n,ni,nj->ij", 2 * e / (e**2 - w**2), tdip, tdip)
        np.testing.assert_allclose(a, sos, rtol=1e-6, atol=1e-7)


def test_alpha_increases_with_frequency_below_resonance(h2o_631g):
    omegas = [0.0, 0.02, 0.05, W_D, 0.1, 0.15]
    alphas = polarizability_tensors(h2o_631g, omegas, tol=1e-8)
    iso = np.trace(alphas, axis1=1, axis2=2) / 3
    assert np.all(np.diff(iso) > 0)
    # every diagonal component is normally dispersive too
    assert np.all(np.diff(np.diagonal(alphas, axis1=1, axis2=2), axis=0) > 0)


def test_isotropic_alpha_invariant_and_tensor_covariant_under_rotation(h2o_631g):
    rng = np.random.default_rng(7)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    mol = h2o_631g.mol
    coords = mol.atom_coords(unit="Angstrom") @ q.T + np.array([0.3, -1.2, 2.0])
    rot = _rhf([(mol.atom_symbol(i), tuple(c)) for i, c in enumerate(coords)], "6-31g")
    a0 = polarizability_tensor(h2o_631g, W_D, tol=1e-9)
    a1 = polarizability_tensor(rot, W_D, tol=1e-9)
    assert np.trace(a1) == pytest.approx(np.trace(a0), rel=1e-7)
    np.testing.assert_allclose(a1, q @ a0 @ q.T, atol=1e-6)


def test_water_hf_aug_cc_pvdz_static_alpha_literature_range():
    """HF/aug-cc-pVDZ static α of water: literature ≈ 8.0–8.5 bohr³ (HF limit ≈ 8.5)."""
    mf = _rhf(H2O, "aug-cc-pvdz")
    a_lr = polarizability_tensor(mf, 0.0, tol=1e-9)
    a_ff = finite_field_polarizability(mf, field=1e-3)
    iso = np.trace(a_lr) / 3
    assert iso == pytest.approx(np.trace(a_ff) / 3, rel=2e-5)
    assert 7.8 < iso < 8.8
    assert iso * BOHR3_TO_A3 == pytest.approx(iso * 0.148184711, rel=1e-8)


def test_dft_static_response_equals_finite_field():
    """RKS (GGA hybrid, XC kernel through gen_response) against finite field."""
    mol = gto.M(atom="F 0 0 0; H 0 0 0.917", basis="6-31+g", verbose=0)
    mf = dft.RKS(mol)
    mf.xc = "b3lyp"
    mf.grids.level = 1
    mf.conv_tol = 1e-11
    mf.kernel()
    a_lr = polarizability_tensor(mf, 0.0, tol=1e-9)
    a_ff = finite_field_polarizability(mf, field=1e-3)
    np.testing.assert_allclose(a_lr, a_ff, rtol=1e-4, atol=1e-4)


def test_range_separated_dft_dynamic_greater_than_static():
    mol = gto.M(atom="F 0 0 0; H 0 0 0.917", basis="6-31+g", verbose=0)
    mf = dft.RKS(mol)
    mf.xc = "camb3lyp"
    mf.grids.level = 1
    mf.conv_tol = 1e-10
    mf.kernel()
    a = polarizability_tensors(mf, [0.0, W_D], tol=1e-8)
    assert np.trace(a[1]) > np.trace(a[0]) > 0


def test_response_not_converged_when_max_cycle_too_small(h2o_631g):
    with pytest.raises(ResponseNotConverged, match="not converged in 1 iterations"):
        polarizability_tensor(h2o_631g, W_D, tol=1e-10, max_cycle=1)


def test_resonance_raises(h2o_631g):
    td = tdscf.TDHF(h2o_631g)
    td.nstates = 1
    td.kernel()
    with pytest.raises(ResponseNotConverged):
        polarizability_tensor(h2o_631g, float(td.e[0]) * 1.3, tol=1e-10, max_cycle=200)


def test_rejects_unconverged_and_open_shell():
    mol = gto.M(atom=H2O, basis="sto-3g", verbose=0)
    mf = scf.RHF(mol)
    mf.max_cycle = 1
    mf.kernel()
    with pytest.raises(SCFNotConverged):
        polarizability_tensor(mf, 0.0)
    uhf = scf.UHF(mol).run()
    with pytest.raises(InvalidResponseInput):
        polarizability_tensor(uhf, 0.0)
    with pytest.raises(InvalidResponseInput):
        polarizability_tensors(_rhf(H2O, "sto-3g"), [-0.1])


@pytest.mark.parametrize("xc", [None, "b3lyp", "camb3lyp", "pbe"])
def test_ri_kernel_equals_pyscf_gen_response(xc):
    """The MO-basis density-fitted response product equals PySCF's AO gen_response(hermi=0)
    on the same density-fitted SCF (HF, global hybrid, range-separated hybrid, pure GGA)."""
    from core.simulation import response as R

    mol = gto.M(atom=H2O, basis="6-31+g*", verbose=0)
    mf = (scf.RHF(mol) if xc is None else dft.RKS(mol, xc=xc)).density_fit()
    if xc:
        mf.grids.level = 1
    mf.conv_tol = 1e-9
    mf.kernel()
    occ = mf.mo_occ > 0
    orbo, orbv = mf.mo_coeff[:, occ], mf.mo_coeff[:, ~occ]
    xy = np.random.default_rng(0).normal(size=(3, 2, orbv.shape[1], orbo.shape[1]))
    ri = R._ri_kernel(mf, orbo, orbv)(xy)
    x, y = xy[:, 0], xy[:, 1]
    dms = 2 * (np.einsum("pa,kai,qi->kpq", orbv, x, orbo) + np.einsum("pi,kai,qa->kpq", orbo, y, orbv))
    v1 = mf.gen_response(hermi=0)(dms)
    ref = np.stack([np.einsum("pa,kpq,qi->kai", orbv, v1, orbo),
                    np.einsum("pi,kpq,qa->kai", orbo, v1, orbv)], axis=1)
    np.testing.assert_allclose(ri, ref, atol=1e-10 * np.abs(ref).max())


def test_density_fitted_alpha_close_to_exact_integrals(h2o_631g):
    mf = scf.RHF(h2o_631g.mol).density_fit()
    mf.conv_tol = 1e-10
    mf.kernel()
    a_ri = polarizability_tensors(mf, [0.0, W_D], tol=1e-8)
    a_ex = polarizability_tensors(h2o_631g, [0.0, W_D], tol=1e-8)
    # RI-JK error on α: below 0.1 % (measured 3e-5 relative for ethylbenzene, 6-31+G*)
    np.testing.assert_allclose(np.trace(a_ri, axis1=1, axis2=2), np.trace(a_ex, axis1=1, axis2=2), rtol=1e-3)
    # and the RI response is exact for the RI Hamiltonian: static α equals its finite field
    np.testing.assert_allclose(a_ri[0], finite_field_polarizability(mf, field=1e-3), rtol=3e-5, atol=3e-5)


def test_subspace_and_cg_solvers_agree_and_subspace_is_cheaper(h2o_631g):
    omegas = [0.0, wavelength_to_omega_au(656.27), W_D, wavelength_to_omega_au(486.13)]
    i_cg, i_ss = {}, {}
    a_cg = polarizability_tensors(h2o_631g, omegas, tol=1e-9, solver="cg", info=i_cg)
    a_ss = polarizability_tensors(h2o_631g, omegas, tol=1e-4, solver="subspace", info=i_ss)
    np.testing.assert_allclose(a_ss, a_cg, rtol=1e-7, atol=1e-8)
    assert i_ss["products"] < i_cg["products"]
    assert max(i_ss["residuals"]) <= 1e-4
    with pytest.raises(InvalidResponseInput):
        polarizability_tensors(h2o_631g, [0.0], solver="newton")


def test_cg_solver_also_detects_resonance_and_slow_convergence(h2o_631g):
    td = tdscf.TDHF(h2o_631g)
    td.nstates = 1
    td.kernel()
    with pytest.raises(ResponseNotConverged):
        polarizability_tensors(h2o_631g, [float(td.e[0]) * 1.3], tol=1e-10, max_cycle=200, solver="cg")
    with pytest.raises(ResponseNotConverged, match="not converged in 2 iterations"):
        polarizability_tensors(h2o_631g, [W_D], tol=1e-12, max_cycle=2, solver="cg")


def test_ri_factors_on_scratch_file_give_the_same_products_and_leave_nothing_on_disk():
    """When the MO-basis RI factors do not fit in memory they are written once to scratch
    files; the products are identical, and the files are unlinked as soon as they are mapped
    (nothing survives even a killed process)."""
    import glob

    from pyscf import lib

    from core.simulation import response as R

    mol = gto.M(atom=H2O, basis="6-31+g*", verbose=0)
    mf = dft.RKS(mol, xc="camb3lyp").density_fit()
    mf.grids.level = 1
    mf.kernel()
    occ = mf.mo_occ > 0
    orbo, orbv = mf.mo_coeff[:, occ], mf.mo_coeff[:, ~occ]
    rng = np.random.default_rng(1)
    xy = rng.normal(size=(2, 2, orbv.shape[1], orbo.shape[1]))
    before = set(glob.glob(f"{lib.param.TMPDIR}/optipoly_ri_*"))
    k_disk = R._ri_kernel(mf, orbo, orbv, in_memory=False)
    assert k_disk.in_memory is False
    assert set(glob.glob(f"{lib.param.TMPDIR}/optipoly_ri_*")) == before
    ref = R._ri_kernel(mf, orbo, orbv, in_memory=True)(xy)
    np.testing.assert_allclose(k_disk(xy), ref, rtol=1e-12, atol=1e-14)
    # the (U, Z) form equals the (X, Y) form: X = u + z, Y = u − z
    u, z = rng.normal(size=(3, *xy.shape[2:])), rng.normal(size=(1, *xy.shape[2:]))
    pu, qz = k_disk.uz(u, z)
    gen = R._uz_from_xy(k_disk)(u, z)
    np.testing.assert_allclose(pu, gen[0], atol=1e-12)
    np.testing.assert_allclose(qz, gen[1], atol=1e-12)
