"""Sulfur QM check: the polarisability α of sulfur compounds against experiment, by basis set.

Issue 11 asks whether the sulfur part of the n_D error (CHDT-DVS −0.082, P16 −0.076, P18 −0.057
against ~−0.05 on average) is in the QM, separately from the density. A polymer's n_D mixes both;
a liquid of known n_D and density does not: by Lorentz–Lorenz its molar refraction

    R_D = (n_D² − 1)/(n_D² + 2) · M/ρ = (4π/3) · N_A · α_D

gives the experimental mean polarisability α_D (Å³) of one molecule, which the QM step computes
at 589.29 nm for an isolated molecule (the local-field approximation behind Lorentz–Lorenz holds
to ~1–2 % for such liquids). So α_QM/α_exp − 1 is the QM's own error, at the experimental
density by construction, and 1 % in α moves n_D by ~0.005 at n = 1.5 and ~0.008 at n = 1.65
(dn/n = (n²+2)(n²−1)/(6n²) · dα/α).

Liquids: n_D²⁰ and d²⁰ from the CRC Handbook (Physical Constants of Organic Compounds): sulfides,
a disulfide, a thiophene, a sulfoxide and aryl sulfides, with oxygen / hydrocarbon analogues as
controls. QM: ``molecule_polarizability`` (the pipeline's code) on the lowest-energy MMFF
conformer of 10 ETKDG seeds (``core.simulation.qm._conformer_atoms``), CAM-B3LYP, density
fitting, at the ``quick`` basis (6-31+G*) and larger ones.

    python benchmarks/bench_sulfur_qm.py [--bases 6-31+G*,aug-cc-pVDZ,def2-TZVPD] [--threads 1]

Results are cached (``--cache``), so an interrupted run resumes.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_A = 6.02214076e23
# name: (SMILES, n_D at 20 °C, density g/cm³ at 20 °C, contains S)
LIQUIDS: dict[str, tuple[str, float, float, bool]] = {
    "dimethyl sulfide": ("CSC", 1.4351, 0.8483, True),
    "diethyl sulfide": ("CCSCC", 1.4430, 0.8362, True),
    "tetrahydrothiophene": ("C1CCSC1", 1.5047, 0.9987, True),
    "dimethyl disulfide": ("CSSC", 1.5250, 1.0625, True),
    "thiophene": ("c1ccsc1", 1.5289, 1.0649, True),
    "dimethyl sulfoxide": ("CS(C)=O", 1.4793, 1.1010, True),
    "thioanisole": ("CSc1ccccc1", 1.5868, 1.0579, True),
    "diphenyl sulfide": ("c1ccc(Sc2ccccc2)cc1", 1.6327, 1.1136, True),
    # controls without sulfur (the O analogues and aromatics)
    "diethyl ether": ("CCOCC", 1.3526, 0.7138, False),
    "tetrahydrofuran": ("C1CCOC1", 1.4050, 0.8892, False),
    "toluene": ("Cc1ccccc1", 1.4961, 0.8669, False),
    "anisole": ("COc1ccccc1", 1.5170, 0.9940, False),
    "methyl acetate": ("CC(=O)OC", 1.3614, 0.9342, False),
}


def alpha_experimental(n: float, rho: float, molar_mass: float) -> float:
    """Mean polarisability volume (Å³) from n_D and density (g/cm³) by Lorentz–Lorenz."""
    r_cm3 = (n * n - 1.0) / (n * n + 2.0) * molar_mass / rho      # molar refraction, cm³/mol
    return 3.0 * r_cm3 / (4.0 * math.pi * N_A) * 1e24


def run(name: str, basis: str, threads: int, cache: Path) -> dict:
    from rdkit import Chem  # noqa: PLC0415
    from rdkit.Chem import Descriptors  # noqa: PLC0415

    from core.simulation.qm import _conformer_atoms, molecule_polarizability  # noqa: PLC0415

    smiles, n, rho, _ = LIQUIDS[name]
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    atoms = _conformer_atoms(mol)
    t0 = time.time()
    res = molecule_polarizability(atoms, method="CAM-B3LYP", basis=basis, density_fit=True,
                                  grid_level=1, threads=threads, workdir=cache)
    a_exp = alpha_experimental(n, rho, Descriptors.MolWt(Chem.MolFromSmiles(smiles)))
    return {"name": name, "basis": basis, "alpha_qm": res["alpha_A3"]["D"], "alpha_exp": a_exp,
            "error_pct": 100.0 * (res["alpha_A3"]["D"] / a_exp - 1.0), "n_basis": res["n_basis"],
            "wall_s": time.time() - t0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bases", default="6-31+G*,aug-cc-pVDZ")
    ap.add_argument("--names", default=",".join(LIQUIDS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/bench_sulfur_qm"))
    ap.add_argument("--json", type=Path, default=None, help="write all rows as JSON here")
    args = ap.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    bases = [b for b in args.bases.split(",") if b]
    names = [n for n in args.names.split(",") if n]
    bad = [n for n in names if n not in LIQUIDS]
    if bad:
        print(f"unknown liquid(s): {', '.join(bad)}; known: {', '.join(LIQUIDS)}")
        return 2
    rows = []
    for basis in bases:
        for name in names:
            try:
                r = run(name, basis, args.threads, args.cache)
            except Exception as exc:  # noqa: BLE001 - a benchmark reports failures, goes on
                print(f"{name} / {basis}: FAILED {type(exc).__name__}: {exc}", flush=True)
                continue
            rows.append(r)
            print(f"{name:20s} {basis:12s} α_QM {r['alpha_qm']:7.3f} α_exp {r['alpha_exp']:7.3f} Å³"
                  f"  {r['error_pct']:+5.1f} %  ({r['n_basis']} AOs, {r['wall_s']:.0f} s)",
                  flush=True)
    print("\n| liquid | S | " + " | ".join(bases) + " |")
    print("|---|---|" + "---|" * len(bases))
    by = {(r["name"], r["basis"]): r for r in rows}
    for name in names:
        cells = [f"{by[(name, b)]['error_pct']:+.1f} %" if (name, b) in by else "–" for b in bases]
        print(f"| {name} | {'S' if LIQUIDS[name][3] else ''} | " + " | ".join(cells) + " |")
    for label, want in (("with S", True), ("without S", False)):
        cells = []
        for b in bases:
            e = [by[(n, b)]["error_pct"] for n in names if (n, b) in by and LIQUIDS[n][3] == want]
            cells.append(f"{sum(e) / len(e):+.1f} % (n={len(e)})" if e else "–")
        print(f"| **mean {label}** | | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
