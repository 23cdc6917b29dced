"""Descriptor benchmark: fidelity to SPACIER's vectors and throughput.

1. Fidelity: core.chem.descriptors.ff_kernel_mean for every polymer of
   ../shared/data/spacier_benchmark (y_oracle.csv smiles, rows aligned with X_pool.csv) and the
   cosine similarity with SPACIER's published 170-d vector; target >= 0.99 for >= 95 %.
2. Throughput: ff_kernel_mean_batch(n_jobs=2) on N new polymers (default 10,000) made by
   joining two random PI1070 repeat units head to tail (A-B "alternating" units, <= 50 heavy
   atoms, deduplicated) -- larger than PI1070's units on average, so a pessimistic pool;
   serial time on a subset gives the parallel speed-up.  Target: 10,000 in <= 10 min on 2 cores.

Usage: python benchmarks/bench_descriptors.py [--n 10000] [--serial 500] [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from rdkit import Chem, RDLogger  # noqa: E402

from core.chem.descriptors import DESCRIPTOR_NAMES, ff_kernel_mean_batch  # noqa: E402
from core.chem.polymer import InvalidPolymer, canonical_psmiles, parse_psmiles  # noqa: E402

RDLogger.DisableLog("rdApp.*")


def _join(a: str, b: str) -> str:
    """Repeat unit A-B: A's second star bonded to B's first star position."""
    ma, mb = Chem.RWMol(parse_psmiles(a)), Chem.RWMol(parse_psmiles(b))
    sa = [x.GetIdx() for x in ma.GetAtoms() if x.GetAtomicNum() == 0]
    sb = [x.GetIdx() for x in mb.GetAtoms() if x.GetAtomicNum() == 0]
    ma.GetAtomWithIdx(sa[1]).SetAtomMapNum(1)
    mb.GetAtomWithIdx(sb[0]).SetAtomMapNum(1)
    return Chem.MolToSmiles(Chem.molzip(ma, mb))


def make_pool(smiles: list[str], n: int, seed: int, max_heavy: int = 50) -> list[str]:
    rng = np.random.default_rng(seed)
    out: dict[str, str] = {}
    tries = 0
    while len(out) < n and tries < 20 * n:
        tries += 1
        a, b = rng.choice(len(smiles), 2)
        try:
            s = _join(smiles[a], smiles[b])
            mol = parse_psmiles(s, max_heavy_atoms=max_heavy)
            key = canonical_psmiles(s)
        except (InvalidPolymer, ValueError, RuntimeError):
            continue
        if mol is not None and key not in out:
            out[key] = s
    return list(out.values())


def fidelity(data: Path, n_jobs: int) -> None:
    X = pd.read_csv(data / "spacier_benchmark" / "X_pool.csv")
    Y = pd.read_csv(data / "spacier_benchmark" / "y_oracle.csv")
    assert list(X.columns) == DESCRIPTOR_NAMES, "column order differs from DESCRIPTOR_NAMES"
    pi = pd.read_csv(data / "PI1070.csv", usecols=["monomer_ID", "smiles"])
    merged = Y[["monomer_ID", "smiles"]].merge(pi, on="monomer_ID", suffixes=("", "_pi"))
    aligned = (merged.smiles == merged.smiles_pi).mean()
    print(f"[fidelity] {len(X)} rows; y_oracle smiles equal PI1070 smiles by monomer_ID: "
          f"{aligned:.3f}")
    t0 = time.perf_counter()
    D = ff_kernel_mean_batch(Y.smiles.tolist(), n_jobs=n_jobs, on_error="nan")
    dt = time.perf_counter() - t0
    ok = np.isfinite(D).all(axis=1)
    Xv = X.values
    cos = np.full(len(X), np.nan)
    cos[ok] = (D[ok] * Xv[ok]).sum(1) / np.linalg.norm(D[ok], axis=1) / np.linalg.norm(Xv[ok], axis=1)
    print(f"[fidelity] computed {ok.sum()}/{len(X)} in {dt:.1f} s (n_jobs={n_jobs})")
    print(f"[fidelity] cosine >= 0.99: {np.mean(cos >= 0.99):.4f}  (>= 0.999: "
          f"{np.mean(cos >= 0.999):.4f}, >= 0.9999: {np.mean(cos >= 0.9999):.4f})")
    print(f"[fidelity] cosine median {np.nanmedian(cos):.7f}, min {np.nanmin(cos):.4f}; "
          f"max |diff| median {np.nanmedian(np.abs(D - Xv).max(1)):.2e}")
    order = np.argsort(np.nan_to_num(cos, nan=-1))
    print("[fidelity] lowest 10:")
    for i in order[:10]:
        print(f"   {cos[i]:.4f}  {Y.monomer_ID[i]}  {Y.smiles[i]}")


def throughput(data: Path, n: int, n_serial: int, seed: int) -> None:
    pi = pd.read_csv(data / "PI1070.csv", usecols=["smiles"]).smiles.tolist()
    t0 = time.perf_counter()
    pool = make_pool(pi, n, seed)
    heavy = np.mean([parse_psmiles(s).GetNumHeavyAtoms() - 2 for s in pool[:2000]])
    print(f"[throughput] pool of {len(pool)} A-B polymers built in {time.perf_counter() - t0:.1f} s "
          f"(mean {heavy:.1f} heavy atoms per repeat unit; PI1070 mean "
          f"{np.mean([parse_psmiles(s).GetNumHeavyAtoms() - 2 for s in pi]):.1f})")
    print(f"[throughput] load average before: {os.getloadavg()}")
    sub = pool[:n_serial]
    t0, c0 = time.perf_counter(), time.process_time()
    ff_kernel_mean_batch(sub, n_jobs=1, on_error="nan")
    t_ser, c_ser = time.perf_counter() - t0, time.process_time() - c0
    print(f"[throughput] serial CPU time {1e3 * c_ser / len(sub):.1f} ms/polymer (load-independent"
          f"); 10,000 on 2 idle cores -> {1e4 * c_ser / len(sub) / 2 / 60:.2f} min")
    t0 = time.perf_counter()
    ff_kernel_mean_batch(sub, n_jobs=2, on_error="nan")
    t_par_sub = time.perf_counter() - t0
    print(f"[throughput] {len(sub)} polymers: n_jobs=1 {t_ser:.1f} s ({1e3 * t_ser / len(sub):.1f} "
          f"ms/polymer), n_jobs=2 {t_par_sub:.1f} s, speed-up {t_ser / t_par_sub:.2f}x")
    t0 = time.perf_counter()
    D = ff_kernel_mean_batch(pool, n_jobs=2, on_error="nan")
    t_par = time.perf_counter() - t0
    print(f"[throughput] {len(pool)} polymers, n_jobs=2: {t_par:.1f} s "
          f"({len(pool) / t_par:.1f} polymers/s; 10,000 -> {1e4 * t_par / len(pool) / 60:.2f} min; "
          f"target 10 min, ratio {600 / (1e4 * t_par / len(pool)):.1f}x); "
          f"failed rows {int((~np.isfinite(D).all(1)).sum())}")
    print(f"[throughput] load average after: {os.getloadavg()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="polymers for the throughput run")
    ap.add_argument("--serial", type=int, default=500, help="subset for serial vs parallel")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--skip-fidelity", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    data = Path(args.data)
    if not args.skip_fidelity:
        fidelity(data, n_jobs=2)
    if not args.skip_throughput:
        throughput(data, args.n, args.serial, args.seed)


if __name__ == "__main__":
    main()
