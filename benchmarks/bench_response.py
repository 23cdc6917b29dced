"""Benchmark of the linear-response solve (core/simulation/response.py), old vs new, side by side.

    python benchmarks/bench_response.py --smiles "*Oc1ccc(cc1)C(c1ccc(cc1)OC(=O)*)(C)C" --threads 2

On one capped repeat unit at the quick preset's QM settings (CAM-B3LYP/6-31+G*, RI, grid level 1)
it measures, in one process and one run:

- ``old``: the response as it was before the RI factors were cached — every iteration
  recomputed the MO-basis RI factors (full-range and long-range sets) whenever they did not fit
  in 0.7·max_memory (4,000 MB by default, i.e. for every unit above ~25 atoms) and evaluated
  each (U, Z) pair of trial vectors as a padded (X, Y) product (Coulomb, f_xc and exchange on
  max(n_U, n_Z) pairs);
- ``new``: factors computed once (memory or scratch file) and products only for the U and Z
  vectors present (Coulomb and f_xc on U only);
- the same new solve at a looser residual tolerance, with the change in α.

Prints seconds, response products, iterations, α (Å³) and the ratios old/new.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.simulation import response as R  # noqa: E402
from core.simulation.qm import capped_geometry  # noqa: E402


def _scf(atoms, basis: str, xc: str, grid: int, max_memory: float):
    from pyscf import dft, gto

    mol = gto.M(atom=[(s, tuple(x)) for s, x in atoms], basis=basis, verbose=0,
                max_memory=max_memory)
    mf = dft.RKS(mol)
    mf.xc = xc
    mf.grids.level = grid
    mf.conv_tol = 1e-9
    mf = mf.density_fit()
    mf.kernel()
    if not mf.converged:
        raise SystemExit("SCF did not converge")
    return mf


def _old_style_kernel(mf, orbo, orbv):
    """The pre-cache behaviour: factors rebuilt on every product call, padded (X, Y) products.
    (It also rebuilds the f_xc cache each call, which the old code did once: ~0.2 s of the
    11.6 s per rebuild measured on the PC unit.)"""
    def kernel(xy):
        return R._ri_kernel(mf, orbo, orbv, in_memory=True)(xy)

    kernel.uz = R._uz_from_xy(kernel)
    return kernel


def _solve(mf, omegas, tol, make_kernel=None, in_memory=None):
    info: dict = {}
    orig = R._response_kernel
    if make_kernel is not None:
        R._response_kernel = make_kernel
    elif in_memory is not None:
        R._response_kernel = lambda mf_, o, v: R._ri_kernel(mf_, o, v, in_memory=in_memory)
    try:
        t = time.perf_counter()
        a = R.polarizability_tensors(mf, omegas, tol=tol, max_cycle=60, info=info)
        dt = time.perf_counter() - t
    finally:
        R._response_kernel = orig
    iso = np.trace(a, axis1=1, axis2=2) / 3 * R.BOHR3_TO_A3
    return dt, info, iso


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smiles", default="*Oc1ccc(cc1)C(c1ccc(cc1)OC(=O)*)(C)C")
    ap.add_argument("--geometry-json", help="a qm_*.json whose geometry_A to use instead")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--basis", default="6-31+G*")
    ap.add_argument("--xc", default="CAM-B3LYP")
    ap.add_argument("--grid", type=int, default=1)
    ap.add_argument("--max-memory", type=float, default=4000.0, help="MB, PySCF's default")
    ap.add_argument("--loose-tol", type=float, default=1e-3)
    ap.add_argument("--skip-old", action="store_true")
    ap.add_argument("--storage", choices=("auto", "memory", "file", "both"), default="auto",
                    help="where the new solve keeps the RI factors (auto: memory if they fit in "
                         "0.7·max_memory); 'both' times the two side by side")
    args = ap.parse_args()

    from pyscf import lib

    lib.num_threads(args.threads)
    if args.geometry_json:
        d = json.loads(Path(args.geometry_json).read_text())
        d = d.get("components", {}).get("monomer", d)
        atoms = [(r[0], r[1:]) for r in d["geometry_A"]]
    else:
        atoms = capped_geometry(args.smiles)
    t = time.perf_counter()
    mf = _scf(atoms, args.basis, args.xc, args.grid, args.max_memory)
    t_scf = time.perf_counter() - t
    nocc = int((mf.mo_occ > 0).sum())
    print(f"unit: {len(atoms)} atoms, {mf.mol.nao} basis functions, {nocc} occupied, "
          f"{mf.with_df.get_naoaux()} auxiliary; {args.threads} threads; SCF {t_scf:.1f} s", flush=True)
    omegas = [0.0] + [R.wavelength_to_omega_au(nm) for nm in (486.13, 589.29, 656.27)]

    occ = mf.mo_occ > 0
    orbo, orbv = mf.mo_coeff[:, occ], mf.mo_coeff[:, ~occ]
    t = time.perf_counter()
    R._ri_kernel(mf, orbo, orbv, in_memory=True)
    print(f"RI factor pass (full + long range, + f_xc cache): {time.perf_counter() - t:.1f} s", flush=True)

    rows = []
    storage = {"auto": [None], "memory": [True], "file": [False], "both": [True, False]}[args.storage]
    for st in storage:
        label = {None: "new", True: "new, in memory", False: "new, on file"}[st]
        rows.append((f"{label}, tol 1e-4", *_solve(mf, omegas, 1e-4, in_memory=st)))
    if not args.skip_old:
        rows.append(("old, tol 1e-4", *_solve(mf, omegas, 1e-4, _old_style_kernel)))
    rows.append((f"new, tol {args.loose_tol:g}", *_solve(mf, omegas, args.loose_tol, in_memory=storage[0])))
    print(f"\n{'solve':<26} {'s':>8} {'iter':>5} {'products':>9}  α static/F/D/C (Å³)")
    for name, dt, info, iso in rows:
        print(f"{name:<26} {dt:8.1f} {info['iterations']:5d} {info['products']:9.1f}  "
              + " ".join(f"{v:.6f}" for v in iso))
    ref = rows[0][3]
    for name, dt, info, iso in rows[1:]:
        print(f"{name}: time ratio to new/1e-4 {dt / rows[0][1]:.2f}, "
              f"max |Δα|/α {np.max(np.abs(iso - ref) / ref):.1e}")


if __name__ == "__main__":
    main()
