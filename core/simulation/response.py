"""Frequency-dependent dipole polarisability α(ω) by linear response on PySCF primitives.

``pyscf.prop`` is gone from PySCF 2.x, so the response solve is written here on
``mf.gen_response`` (the orbital-Hessian/Fock-response kernel that PySCF ships).

Theory (closed-shell RHF/RKS; real orbitals; atomic units throughout)
----------------------------------------------------------------------
For a dipole perturbation of frequency ω the first-order orbital rotations X (excitation)
and Y (de-excitation), both shaped (n_vir, n_occ), satisfy the full TDHF/TDDFT linear-response
equations (e.g. Olsen & Jørgensen, J. Chem. Phys. 82, 3235 (1985); Casida 1995)::

    [ A − ω   B     ] [X]     [V]
    [ B       A + ω ] [Y] = − [V]        V_ai = <a| r_j |i>

    A_ia,jb = δ_ij δ_ab (ε_a − ε_i) + 2(ai|jb) − c_x (ab|ij) + f_xc,
    B_ia,jb =                          2(ai|bj) − c_x (aj|bi) + f_xc.

The matrix M(ω) = E2 − ω·σ_z is real symmetric, and positive definite for |ω| below the first
excitation energy (E2 is the stable ground state's electronic Hessian and M(ω) only becomes
singular at ω = ±ω_n).  Two solvers, both on one response product per trial vector, i.e. one
call of ``mf.gen_response(hermi=0)`` on a stack of non-symmetric transition densities
D = 2·(C_v X C_oᵀ + C_o Yᵀ C_vᵀ) (the DFT exchange–correlation kernel f_xc and range-separated
exact exchange are included by PySCF's response function):

- ``subspace`` (default): one reduced space for all frequencies and field directions in the
  (U = X+Y, Z = X−Y) form, Galerkin solves per ω, SVD-compressed preconditioned residuals as
  new directions.  Measured on formaldehyde/6-31+G*, 4 frequencies: 42 products at tol 1e-4
  with α exact to 5e-10, against 102 products (α to 1e-7) for CG at tol 1e-5.
- ``cg``: preconditioned conjugate gradients per column (preconditioner diag(Δε ∓ ω)).

With a density-fitted SCF the product is evaluated by an MO-basis RI algorithm instead
(:func:`_ri_kernel`), identical to ``gen_response`` on the same RI Hamiltonian.

The induced dipole gives  α_ij(ω) = −Tr(r_i D_j) = −2 Σ_ai r^i_ai (X^j + Y^j)_ai  (bohr³).
At ω = 0, Y = X and the equations reduce to coupled-perturbed HF/KS.  A CG breakdown
(pᵀMp ≤ 0) or a failed Cholesky factorisation of the projected matrix means ω is at or above an
excitation energy (resonance), where α(ω) has a pole; that, like a slow convergence, raises
:class:`ResponseNotConverged`.

Validation (tests/test_response.py): α(ω→0) equals the finite-field static α of
:func:`finite_field_polarizability` and α(ω) equals the sum over all TDHF states
Σ_n 2 ω_n |<0|μ|n>|² / (ω_n² − ω²) for a small molecule.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np

from core.simulation.errors import ResponseNotConverged, SCFNotConverged

BOHR_A = 0.529177210903
"""Bohr radius in Å (CODATA 2018)."""
BOHR3_TO_A3 = BOHR_A**3
"""Conversion of a polarisability from atomic units (bohr³) to polarisability volume (Å³)."""
HARTREE_NM = 45.56335252767
"""hc / E_h in nm: photon energy in hartree = HARTREE_NM / λ(nm)."""


class InvalidResponseInput(ValueError):
    """Bad input to the response solver (e.g. unconverged or open-shell SCF, negative λ)."""


def wavelength_to_omega_au(nm: float) -> float:
    """Photon energy ħω in hartree (atomic units of angular frequency) for a wavelength in nm.

    ω = 2πc/λ; in atomic units ħω = hc/λ = 45.5633525 nm·E_h / λ.
    Example: 589.29 nm (sodium D) -> 0.0773188 E_h.
    """
    nm = float(nm)
    if not np.isfinite(nm) or nm <= 0.0:
        raise InvalidResponseInput(f"wavelength must be a positive number of nm, got {nm!r}")
    return HARTREE_NM / nm


def _check_mf(mf) -> None:
    from pyscf import scf

    if not isinstance(mf, scf.hf.RHF) or isinstance(mf, (scf.uhf.UHF, scf.rohf.ROHF)):
        raise InvalidResponseInput(
            "the response solver needs a closed-shell restricted SCF (RHF or RKS) object, "
            f"got {type(mf).__name__}"
        )
    if getattr(mf, "mo_coeff", None) is None:
        raise InvalidResponseInput("the SCF object has no orbitals: run mf.kernel() first")
    if not getattr(mf, "converged", False):
        raise SCFNotConverged(
            "the SCF was not converged; a linear-response polarisability from unconverged "
            "orbitals would be meaningless"
        )


def _charge_center(mol) -> np.ndarray:
    charges = mol.atom_charges()
    return np.einsum("z,zx->x", charges, mol.atom_coords()) / charges.sum()


def dipole_integrals(mol) -> np.ndarray:
    """Electronic position integrals <μ| r − R_c |ν> (bohr), shape (3, nao, nao).

    R_c is the centre of nuclear charge (α of a neutral molecule does not depend on it).
    """
    with mol.with_common_orig(_charge_center(mol)):
        return mol.intor_symmetric("int1e_r", comp=3)


def polarizability_tensors(
    mf,
    omegas_au: Sequence[float],
    *,
    tol: float = 1e-6,
    max_cycle: int = 50,
    info: dict | None = None,
    solver: str = "subspace",
    on_iteration: Callable[[int, float], None] | None = None,
) -> np.ndarray:
    """α(ω) tensors (bohr³), shape (len(omegas_au), 3, 3), for several frequencies in one solve.

    All 3·n_ω right-hand sides share each Fock-response build (one ``gen_response`` call per
    iteration on a stack of densities), which for direct-SCF integrals costs far less than
    n_ω separate solves.

    ``tol`` bounds every column's relative residual ‖M x − b‖/‖b‖; α is variational in the
    solution, so its relative error is of order tol² (far smaller with the subspace solver).  ``info`` (if a dict) receives
    ``iterations`` (CG steps taken) and ``residuals`` (final relative residuals).
    ``solver``: "subspace" (default) — one reduced space shared by all frequencies and directions
    (:func:`_solve_subspace`), or "cg" — independent preconditioned conjugate gradients per
    column (:func:`_solve_cg`).  Both converge to the same α; ``info["products"]`` counts the
    response products (the cost).
    ``on_iteration(iteration, largest_relative_residual)`` (subspace solver) is called after every
    iteration, for progress reports.
    Raises :class:`ResponseNotConverged` after ``max_cycle`` steps or at a resonance.
    """
    _check_mf(mf)
    if solver not in ("subspace", "cg"):
        raise InvalidResponseInput(f"solver must be 'subspace' or 'cg', got {solver!r}")
    omegas = np.asarray([float(w) for w in omegas_au], dtype=float)
    if omegas.ndim != 1 or omegas.size == 0 or not np.all(np.isfinite(omegas)):
        raise InvalidResponseInput(f"omegas must be a non-empty list of finite numbers, got {omegas_au!r}")
    if np.any(omegas < 0):
        raise InvalidResponseInput("frequencies must be >= 0 (α(−ω) = α(ω))")
    if tol <= 0 or max_cycle < 1:
        raise InvalidResponseInput(f"need tol > 0 and max_cycle >= 1, got tol={tol}, max_cycle={max_cycle}")

    mol = mf.mol
    mo_coeff = np.asarray(mf.mo_coeff)
    mo_occ = np.asarray(mf.mo_occ)
    mo_energy = np.asarray(mf.mo_energy)
    occ = mo_occ > 0
    orbo, orbv = mo_coeff[:, occ], mo_coeff[:, ~occ]
    nocc, nvir = orbo.shape[1], orbv.shape[1]
    if nvir == 0:
        raise InvalidResponseInput("no virtual orbitals: the basis set is too small for a response")
    e_ai = mo_energy[~occ][:, None] - mo_energy[occ][None, :]  # (nvir, nocc), > 0

    r_ao = dipole_integrals(mol)
    v_ai = np.einsum("xpq,pa,qi->xai", r_ao, orbv, orbo)  # (3, nvir, nocc)

    nw = omegas.size
    ncol = 3 * nw
    w_col = np.repeat(omegas, 3)  # column k: frequency omegas[k // 3], direction k % 3
    # b = −[V; V] stacked as (ncol, 2, nvir, nocc)
    b = np.empty((ncol, 2, nvir, nocc))
    for k in range(ncol):
        b[k, 0] = -v_ai[k % 3]
        b[k, 1] = -v_ai[k % 3]
    # diagonal of M(ω) (zeroth order): Δε − ω, Δε + ω; clamp for a positive preconditioner
    diag = np.empty_like(b)
    diag[:, 0] = e_ai[None] - w_col[:, None, None]
    diag[:, 1] = e_ai[None] + w_col[:, None, None]
    precond = 1.0 / np.maximum(diag, 0.05)

    kernel = _response_kernel(mf, orbo, orbv)
    if solver == "cg":
        x, it, res, nprod = _solve_cg(kernel, b, diag, precond, w_col, tol, max_cycle)
    else:
        x, it, res, nprod = _solve_subspace(kernel, b[:3], e_ai, omegas, tol, max_cycle,
                                            on_iteration=on_iteration)
    if info is not None:
        info["iterations"] = it
        info["products"] = nprod
        info["residuals"] = res.tolist()

    # α_ij = −2 Σ_ai V^i_ai (X^j + Y^j)_ai
    u = x[:, 0] + x[:, 1]  # (ncol, nvir, nocc)
    alpha = np.empty((nw, 3, 3))
    for iw in range(nw):
        uw = u[3 * iw : 3 * iw + 3]
        a_ij = -2.0 * np.einsum("iav,jav->ij", v_ai, uw)
        alpha[iw] = 0.5 * (a_ij + a_ij.T)
    return alpha


def _solve_cg(kernel, b, diag, precond, w_col, tol, max_cycle):
    """Preconditioned conjugate gradients on M(ω_k) x_k = b_k, all columns k side by side.

    M(ω) = E2 − ω σ_z is symmetric positive definite below the first excitation; a step with
    pᵀMp ≤ 0 proves ω is at/above a resonance.  Returns (x, iterations, residuals, products).
    """
    def matvec(xy: np.ndarray, dk: np.ndarray) -> np.ndarray:
        return kernel(xy) + dk * xy

    nprod = len(b)
    bnorm = np.sqrt(np.einsum("kxai,kxai->k", b, b))
    bnorm[bnorm == 0] = 1.0
    x = b * precond  # zeroth-order (uncoupled) guess
    r = b - matvec(x, diag)
    z = precond * r
    p = z.copy()
    rz = np.einsum("kxai,kxai->k", r, z)
    res = np.sqrt(np.einsum("kxai,kxai->k", r, r)) / bnorm
    active = res > tol
    it = 0
    while np.any(active):
        if it >= max_cycle:
            raise ResponseNotConverged(
                f"linear-response equations not converged in {max_cycle} iterations "
                f"(largest relative residual {res.max():.2e} > tol {tol:.1e}); raise max_cycle "
                "or check that the wavelength is far from an electronic absorption"
            )
        it += 1
        idx = np.flatnonzero(active)
        ap = matvec(p[idx], diag[idx])
        nprod += len(idx)
        pap = np.einsum("kxai,kxai->k", p[idx], ap)
        if np.any(pap <= 0):
            bad = sorted({float(w_col[i]) for i, v in zip(idx, pap) if v <= 0})
            raise ResponseNotConverged(_resonance_msg(bad))
        a = rz[idx] / pap
        x[idx] += a[:, None, None, None] * p[idx]
        r[idx] -= a[:, None, None, None] * ap
        res[idx] = np.sqrt(np.einsum("kxai,kxai->k", r[idx], r[idx])) / bnorm[idx]
        z_new = precond[idx] * r[idx]
        rz_new = np.einsum("kxai,kxai->k", r[idx], z_new)
        beta = rz_new / rz[idx]
        p[idx] = z_new + beta[:, None, None, None] * p[idx]
        rz[idx] = rz_new
        active = res > tol
    return x, it, res, nprod


def _resonance_msg(bad) -> str:
    return (
        f"response matrix not positive definite at ω = {bad} E_h: the photon energy is at "
        "or above an electronic excitation of this molecule (resonance), so α(ω) is not "
        "defined there"
    )


def _orth_new(basis: np.ndarray, cand: np.ndarray, drop: float) -> np.ndarray:
    """Orthonormal directions of ``cand`` (columns) outside span(basis), compressed by SVD:
    unit-normalised candidates, projected out twice, singular values below ``drop`` discarded."""
    if cand.shape[1] == 0:
        return cand
    cand = cand / np.maximum(np.linalg.norm(cand, axis=0), 1e-300)
    for _ in range(2):
        cand = cand - basis @ (basis.T @ cand)
    u, sv, _ = np.linalg.svd(cand, full_matrices=False)
    return u[:, sv > drop]


def _solve_subspace(kernel, b3, e_ai, omegas, tol, max_cycle, drop: float = 1e-2,
                    on_iteration: Callable[[int, float], None] | None = None):
    """Multi-frequency reduced-space solver, all ω and all three directions in one space.

    With U = X + Y and Z = X − Y the response equations read
        (A+B) U − ω Z = −2V,     (A−B) Z − ω U = 0,
    and the kernel's ``uz`` products give (A+B)u and (A−B)z for the new U and Z directions only
    (Coulomb and f_xc act on U alone; one (X, Y) = (u + z, u − z) product counts as one, so
    ``products`` is half the number of new directions).  Two orthonormal bases, 𝒰 for U and 𝒵
    for Z, are shared by every frequency and direction; each iteration solves the small symmetric
    positive-definite Galerkin problems
        [[𝒰ᵀ(A+B)𝒰, −ω𝒰ᵀ𝒵], [−ω𝒵ᵀ𝒰, 𝒵ᵀ(A−B)𝒵]] [c_u; c_z] = [−2𝒰ᵀV; 0]
    for every ω (a failed Cholesky factorisation means ω is at/above a resonance), forms the
    residuals, preconditions them with the inverse of [[Δε, −ω], [−ω, Δε]] and adds their
    SVD-compressed span (residuals at neighbouring frequencies are nearly parallel, which is where
    this beats per-column CG).  The static problem needs no Z at all.
    The residual measure equals CG's ‖M x − b‖/‖b‖.
    Returns (x (3·nω, 2, nvir, nocc), iterations, residuals, products).
    """
    nvir, nocc = e_ai.shape
    n = nvir * nocc
    nw = len(omegas)
    de = e_ai.ravel()
    v2 = -b3[:, 0].reshape(3, n).T * 2.0  # 2V, (n, 3)  (b = −[V; V])
    vnorm = np.linalg.norm(v2, axis=0)
    vnorm[vnorm == 0] = 1.0
    ub = np.zeros((n, 0))
    aub = np.zeros((n, 0))
    zb = np.zeros((n, 0))
    azb = np.zeros((n, 0))
    nprod = 0
    new_u = v2 / np.maximum(de, 0.05)[:, None]
    new_z = np.zeros((n, 0))
    if any(w != 0 for w in omegas):  # first-order Z for ω > 0: ω Δε⁻² (2V)
        new_z = v2 / np.maximum(de, 0.05)[:, None] ** 2
    res = np.full(3 * nw, np.inf)
    sol = np.zeros((3 * nw, 2, n))
    for it in range(1, max_cycle + 1):
        tu = _orth_new(ub, new_u, drop)
        tz = _orth_new(zb, new_z, drop)
        m = max(tu.shape[1], tz.shape[1])
        if m == 0:
            raise ResponseNotConverged(
                f"response subspace stagnated at iteration {it} (largest relative residual "
                f"{res.max():.2e} > tol {tol:.1e})"
            )
        pu, qz = kernel.uz(tu.T.reshape(-1, nvir, nocc), tz.T.reshape(-1, nvir, nocc))
        nprod += 0.5 * (tu.shape[1] + tz.shape[1])
        aub = np.hstack([aub, pu.reshape(-1, n).T + de[:, None] * tu])
        azb = np.hstack([azb, qz.reshape(-1, n).T + de[:, None] * tz])
        ub = np.hstack([ub, tu])
        zb = np.hstack([zb, tz])
        du, dz = ub.shape[1], zb.shape[1]
        huu = ub.T @ aub
        huu = 0.5 * (huu + huu.T)
        hzz = zb.T @ azb
        hzz = 0.5 * (hzz + hzz.T)
        suz = ub.T @ zb
        gu = -(ub.T @ v2)
        cand_u, cand_z = [], []
        for iw, w in enumerate(omegas):
            if w == 0.0 or dz == 0:
                h = huu
                g = gu
            else:
                h = np.block([[huu, -w * suz], [-w * suz.T, hzz]])
                g = np.vstack([gu, np.zeros((dz, 3))])
            try:
                chol = np.linalg.cholesky(h)
            except np.linalg.LinAlgError:
                raise ResponseNotConverged(_resonance_msg([float(w)])) from None
            c = np.linalg.solve(chol.T, np.linalg.solve(chol, g))
            cu, cz = c[:du], c[du:]
            u = ub @ cu
            z = zb @ cz if cz.size else np.zeros_like(u)
            ru = aub @ cu + v2
            rz = np.zeros_like(ru)
            if cz.size:
                ru -= w * z
                rz = azb @ cz - w * u
            elif w != 0.0:
                ru -= w * z
                rz = -w * u
            rn = np.sqrt((ru**2).sum(0) + (rz**2).sum(0)) / vnorm
            res[3 * iw: 3 * iw + 3] = rn
            sol[3 * iw: 3 * iw + 3, 0] = ((u + z) / 2).T
            sol[3 * iw: 3 * iw + 3, 1] = ((u - z) / 2).T
            act = rn > tol
            if np.any(act):
                den = np.maximum(de**2 - w**2, 1e-3)[:, None]
                cand_u.append((de[:, None] * ru[:, act] + w * rz[:, act]) / den)
                if w != 0.0:
                    cand_z.append((w * ru[:, act] + de[:, None] * rz[:, act]) / den)
        if on_iteration is not None:
            on_iteration(it, float(res.max()))
        if not cand_u and not cand_z:
            return sol.reshape(3 * nw, 2, nvir, nocc), it, res, nprod
        new_u = np.hstack(cand_u) if cand_u else np.zeros((n, 0))
        new_z = np.hstack(cand_z) if cand_z else np.zeros((n, 0))
    raise ResponseNotConverged(
        f"linear-response equations not converged in {max_cycle} iterations "
        f"(largest relative residual {res.max():.2e} > tol {tol:.1e}); raise max_cycle "
        "or check that the wavelength is far from an electronic absorption"
    )


def _response_kernel(mf, orbo: np.ndarray, orbv: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Return f(xy) -> the two-electron part of M(ω)·[X; Y], xy shaped (k, 2, nvir, nocc).

    With a density-fitted SCF (``mf.with_df``) the product is evaluated by the MO-basis RI
    algorithm of :func:`_ri_kernel`; otherwise by PySCF's ``mf.gen_response(hermi=0)`` acting
    on the AO transition densities D = 2(C_v X C_oᵀ + C_o Yᵀ C_vᵀ).  The returned function has
    an attribute ``uz(u, z)`` giving the (U, Z)-form products of :func:`_uz_from_xy`.
    """
    if getattr(mf, "with_df", None) is not None:
        return _ri_kernel(mf, orbo, orbv)
    vresp = mf.gen_response(hermi=0)

    def kernel(xy: np.ndarray) -> np.ndarray:
        x, y = xy[:, 0], xy[:, 1]
        dms = 2.0 * (
            np.einsum("pa,kai,qi->kpq", orbv, x, orbo, optimize=True)
            + np.einsum("pi,kai,qa->kpq", orbo, y, orbv, optimize=True)
        )
        v1 = np.asarray(vresp(dms)).reshape(len(xy), *dms.shape[1:])
        out = np.empty_like(xy)
        out[:, 0] = np.einsum("pa,kpq,qi->kai", orbv, v1, orbo, optimize=True)
        out[:, 1] = np.einsum("pi,kpq,qa->kai", orbo, v1, orbv, optimize=True)
        return out

    kernel.uz = _uz_from_xy(kernel)
    return kernel


def _uz_from_xy(kernel: Callable[[np.ndarray], np.ndarray]):
    """(U, Z)-form products from an (X, Y) kernel K: with X = u + z, Y = u − z,
    (A+B−Δε)u = ½(K₀ + K₁) and (A−B−Δε)z = ½(K₀ − K₁); u (ku, nvir, nocc), z (kz, nvir, nocc)."""
    def uz(u: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = max(len(u), len(z))
        pu = np.zeros((m, *u.shape[1:]))
        pz = np.zeros_like(pu)
        pu[: len(u)] = u
        pz[: len(z)] = z
        out = kernel(np.stack([pu + pz, pu - pz], axis=1))
        return 0.5 * (out[: len(u), 0] + out[: len(u), 1]), 0.5 * (out[: len(z), 0] - out[: len(z), 1])

    return uz


def _mo_blocks(dfobj, orbo: np.ndarray, orbv: np.ndarray, blksize: int):
    """Yield MO-basis RI factors (B_oo, B_vo, B_vv) per block of auxiliary functions,
    B^P_pq = Σ_μν (P|μν)_fitted C_μp C_νq  (PySCF's Cholesky-decomposed 3-index integrals)."""
    from pyscf import lib

    for cderi in dfobj.loop(blksize):
        buf = lib.unpack_tril(cderi)  # (P, nao, nao)
        half_o = buf @ orbo  # (P, nao, nocc)
        b_oo = np.einsum("pi,Ppj->Pij", orbo, half_o, optimize=True)
        b_vo = np.einsum("pa,Ppj->Paj", orbv, half_o, optimize=True)
        b_vv = np.einsum("pa,Ppq,qb->Pab", orbv, buf, orbv, optimize=True)
        yield b_oo, b_vo, b_vv


class _Factors:
    """One set of MO-basis RI factors (B_oo, B_vo, B_vv), computed once and then reused.

    Held in memory (``in_memory=True``) or written once to scratch files (``numpy.memmap`` under
    PySCF's TMPDIR, unlinked as soon as they are mapped, so nothing is left on disk even when the
    process is killed; the kernel frees the space when the mapping goes).  Recomputing them every
    iteration instead costs 8 s (full range) + 3 s (long range) per iteration on a 35-atom unit (374 functions,
    2002 auxiliary, 2 threads), ~25 % of a CAM-B3LYP iteration; memory and scratch file gave the
    same response time there (166 s vs 168 s, benchmarks/bench_response.py).
    """

    def __init__(self, dfobj, orbo: np.ndarray, orbv: np.ndarray, blksize: int,
                 in_memory: bool) -> None:
        import os
        import tempfile

        from pyscf import lib

        nocc, nvir = orbo.shape[1], orbv.shape[1]
        naux = dfobj.get_naoaux()
        shapes = {"oo": (naux, nocc, nocc), "vo": (naux, nvir, nocc), "vv": (naux, nvir, nvir)}
        if in_memory:
            self.arrays = {k: np.empty(v) for k, v in shapes.items()}
        else:
            tmpdir = tempfile.mkdtemp(prefix="optipoly_ri_", dir=lib.param.TMPDIR)
            paths = {k: os.path.join(tmpdir, f"b_{k}") for k in shapes}
            try:
                self.arrays = {k: np.memmap(paths[k], mode="w+", dtype=float, shape=v)
                               for k, v in shapes.items()}
            finally:  # the mappings keep the data; the names go at once
                for path in paths.values():
                    if os.path.exists(path):
                        os.unlink(path)
                os.rmdir(tmpdir)
        p0 = 0
        for b_oo, b_vo, b_vv in _mo_blocks(dfobj, orbo, orbv, blksize):
            p1 = p0 + b_oo.shape[0]
            self.arrays["oo"][p0:p1] = b_oo
            self.arrays["vo"][p0:p1] = b_vo
            self.arrays["vv"][p0:p1] = b_vv
            p0 = p1
        if p0 != naux:
            raise RuntimeError(f"RI factor count {p0} != number of auxiliary functions {naux}")
        self.blksize = blksize

    def blocks(self):
        """Yield (B_oo, B_vo, B_vv) per block of ``blksize`` auxiliary functions."""
        a = self.arrays
        for p0 in range(0, a["oo"].shape[0], self.blksize):
            sl = slice(p0, p0 + self.blksize)
            yield np.asarray(a["oo"][sl]), np.asarray(a["vo"][sl]), np.asarray(a["vv"][sl])


def _exchange_terms(w: np.ndarray, b_oo: np.ndarray, b_vo: np.ndarray,
                    b_vv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Σ_P B_vv^P W B_oo^P,  Σ_P B_vo^P Wᵀ B_vo^P) for a stack W (m, nvir, nocc), as (m, nvir, nocc).

    One auxiliary function P at a time, every product a plain 2-D GEMM with all m columns
    side by side (numpy's broadcast ``matmul`` over small inner dimensions is far slower).
    """
    m, nvir, nocc = w.shape
    w_b = np.ascontiguousarray(w.transpose(1, 0, 2)).reshape(nvir, m * nocc)  # [b, (m, j)]
    w_jb = np.ascontiguousarray(w.transpose(2, 0, 1)).reshape(nocc * m, nvir)  # [(j, m), b]
    t1 = np.zeros((nvir * m, nocc))
    t2 = np.zeros((nvir, m * nocc))
    for p in range(b_oo.shape[0]):
        q = b_vv[p] @ w_b  # [a, (m, j)]
        t1 += q.reshape(nvir * m, nocc) @ b_oo[p]  # [(a, m), i]
        t = w_jb @ b_vo[p]  # [(j, m), i] = Σ_b W[m, b, j] B[b, i]
        t2 += b_vo[p] @ t.reshape(nocc, m * nocc)  # [a, (m, i)]
    t1 = t1.reshape(nvir, m, nocc).transpose(1, 0, 2)
    t2 = t2.reshape(nvir, m, nocc).transpose(1, 0, 2)
    return t1, t2


def _ri_kernel(mf, orbo: np.ndarray, orbv: np.ndarray,
               in_memory: bool | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """Density-fitted TDHF/TDDFT response product in the MO basis (no AO-basis K builds).

    With (pq|rs) ≈ Σ_P B^P_pq B^P_rs, U = X + Y and Z = X − Y (shapes (n_vir, n_occ)):
      (A+B−Δε) U = 2 Σ_P B^P_ai ρ_P − c_x Σ_P [B^P_vv U B^P_oo + B^P_vo Uᵀ B^P_vo] + f_xc[U],
                   ρ_P = 2 Σ_bj B^P_bj U_bj,
      (A−B−Δε) Z = − c_x Σ_P [B^P_vv Z B^P_oo − B^P_vo Zᵀ B^P_vo]
    (range-separated hybrids add (α − c_x)·the same exchange terms with erf-attenuated factors;
    f_xc acts on the symmetric transition density C_v U C_oᵀ + C_o Uᵀ C_vᵀ).  The returned
    function gives the (X, Y) form ``f(xy)`` = [P u + Q z;  P u − Q z] with u = (X+Y)/2,
    z = (X−Y)/2, and ``f.uz(u, z)`` = (P u, Q z) directly, so Coulomb and f_xc are evaluated only
    for the U vectors and exchange only for the U and Z vectors actually present.
    Cost per vector O(N_aux n_vir² n_occ) instead of O(N_aux N_ao³) for AO-basis K with a
    non-symmetric density.  The factors are computed once (:class:`_Factors`), in memory when
    they fit in 0.7·mf.max_memory (or as ``in_memory`` says), else in a scratch file.  Exact against
    ``gen_response`` on the same density-fitted SCF (tests/test_response.py).
    """
    from pyscf import lib
    from pyscf.scf import hf

    mol = mf.mol
    nocc, nvir = orbo.shape[1], orbv.shape[1]
    is_dft = isinstance(mf, hf.KohnShamDFT)
    if is_dft:
        ni = mf._numint
        ni.libxc.test_deriv_order(mf.xc, 2, raise_error=True)
        omega, alpha, hyb = ni.rsh_and_hybrid_coeff(mf.xc, mol.spin)
        hybrid = ni.libxc.is_hybrid_xc(mf.xc)
        if not hybrid:
            omega, alpha, hyb = 0.0, 0.0, 0.0
        if mf.grids.coords is None:
            mf.grids.build(with_non0tab=True)
        mo_coeff = np.hstack([orbo, orbv])
        mo_occ = np.concatenate([np.full(nocc, 2.0), np.zeros(nvir)])
        rho0, vxc, fxc = ni.cache_xc_kernel(mol, mf.grids, mf.xc, mo_coeff, mo_occ, 0)
    else:
        omega, alpha, hyb = 0.0, 0.0, 1.0
    dfobj = mf.with_df
    if dfobj._cderi is None:
        dfobj.build()
    naux = dfobj.get_naoaux()
    per_aux = (nocc * nocc + nvir * nocc + nvir * nvir) * 8 / 1e6  # MB
    budget = max(200.0, 0.7 * mf.max_memory - lib.current_memory()[0])
    blksize = int(max(16, min(naux, 0.2 * budget / per_aux)))
    k_scale = [hyb]  # HF: 1; hybrids: c_x (full range or short-range part)
    if omega:
        k_scale.append(alpha - hyb)
    if in_memory is None:
        in_memory = naux * per_aux * len(k_scale) < budget
    sets = [_Factors(dfobj, orbo, orbv, blksize, in_memory)]
    if omega:
        with dfobj.range_coulomb(omega) as lrdf:
            sets.append(_Factors(lrdf, orbo, orbv, blksize, in_memory))

    def uz(u: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ku = len(u)
        pu = np.zeros_like(u)
        qz = np.zeros_like(z)
        w = np.concatenate([u, z])
        for which, (factors, scale) in enumerate(zip(sets, k_scale)):
            for b_oo, b_vo, b_vv in factors.blocks():
                if which == 0 and ku:  # Coulomb (full range only)
                    bflat = b_vo.reshape(b_vo.shape[0], -1)
                    rho = 4.0 * (u.reshape(ku, -1) @ bflat.T)  # (ku, P)
                    pu += (rho @ bflat).reshape(u.shape)
                if scale == 0.0 or not len(w):
                    continue
                t1, t2 = _exchange_terms(w, b_oo, b_vo, b_vv)
                pu -= scale * (t1[:ku] + t2[:ku])
                qz -= scale * (t1[ku:] - t2[ku:])
        if is_dft and ku:
            dms = 2.0 * np.einsum("pa,kai,qi->kpq", orbv, u, orbo, optimize=True)
            dms = dms + np.swapaxes(dms, 1, 2)  # symmetric transition density of U
            v1 = ni.nr_rks_fxc(mol, mf.grids, mf.xc, None, dms, 0, 1, rho0, vxc, fxc,
                               max_memory=mf.max_memory)
            v1 = np.asarray(v1).reshape(ku, *dms.shape[1:])
            pu += np.einsum("pa,kpq,qi->kai", orbv, v1, orbo, optimize=True)
        return pu, qz

    def kernel(xy: np.ndarray) -> np.ndarray:
        u = 0.5 * (xy[:, 0] + xy[:, 1])
        z = 0.5 * (xy[:, 0] - xy[:, 1])
        pu, qz = uz(u, z)
        return np.stack([pu + qz, pu - qz], axis=1)

    kernel.uz = uz
    kernel.in_memory = in_memory
    return kernel


def polarizability_tensor(
    mf, omega_au: float = 0.0, *, tol: float = 1e-6, max_cycle: int = 50
) -> np.ndarray:
    """Dynamic dipole polarisability tensor α(ω) in bohr³, shape (3, 3).

    Full TDHF (for RHF) or TDDFT (for RKS, XC kernel included) linear response at photon energy
    ``omega_au`` (hartree; use :func:`wavelength_to_omega_au`), all three field directions at
    once, by a preconditioned iterative solver on ``mf.gen_response(hermi=0)`` (reduced-space
    by default, CG with ``polarizability_tensors(..., solver="cg")``); see the module docstring.  ``mf`` must be a converged closed-shell RHF/RKS object.
    Raises :class:`ResponseNotConverged` when the solve does not reach ``tol`` within
    ``max_cycle`` iterations or ω is at/above an excitation energy.
    """
    return polarizability_tensors(mf, [omega_au], tol=tol, max_cycle=max_cycle)[0]


def _field_scf(mf_template, field_vec: np.ndarray, conv_tol: float, dm0):
    """A converged SCF with a homogeneous electric field E added: h = h0 + Σ_j E_j r_j."""
    mf = copy.copy(mf_template)
    mol = mf.mol
    h0 = mf_template.get_hcore(mol)
    r_ao = dipole_integrals(mol)
    h = h0 + np.einsum("x,xpq->pq", field_vec, r_ao)
    mf.get_hcore = lambda *args, **kwargs: h
    mf.conv_tol = conv_tol
    mf.conv_tol_grad = np.sqrt(conv_tol) * 0.1
    mf.verbose = 0
    mf.kernel(dm0=dm0)
    if not mf.converged:
        raise SCFNotConverged(f"SCF in a finite field {field_vec.tolist()} a.u. did not converge")
    return mf


def finite_field_polarizability(
    mf: object | Callable[[], object], field: float = 1e-3, *, conv_tol: float = 1e-11
) -> np.ndarray:
    """Static α (bohr³, (3, 3)) by central finite differences of the dipole moment, for validation.

    ``mf`` is an SCF object (converged or not; used as a template that is copied, never changed)
    or a zero-argument factory returning one.  For each direction j the SCF is converged with
    the field ±``field`` a.u. added to the one-electron Hamiltonian (h → h + E_j r_j, i.e.
    −μ·E for the electrons), and  α_ij = [μ_i(+E_j) − μ_i(−E_j)] / (2E).  The truncation error
    is O(E²·γ) (γ the second hyperpolarisability), negligible for E = 1e-3 a.u.
    """
    template = mf() if callable(mf) and not hasattr(mf, "kernel") else mf
    if field <= 0:
        raise InvalidResponseInput(f"field must be > 0 a.u., got {field}")
    dm0 = None
    if getattr(template, "mo_coeff", None) is not None:
        dm0 = template.make_rdm1()
    mol = template.mol
    r_ao = dipole_integrals(mol)
    alpha = np.empty((3, 3))
    for j in range(3):
        mus = []
        for sign in (+1.0, -1.0):
            e = np.zeros(3)
            e[j] = sign * field
            m = _field_scf(template, e, conv_tol, dm0)
            dm = m.make_rdm1()
            # electronic dipole (nuclear part cancels in the difference)
            mus.append(-np.einsum("xpq,qp->x", r_ao, dm))
        alpha[:, j] = (mus[0] - mus[1]) / (2.0 * field)
    return 0.5 * (alpha + alpha.T)
