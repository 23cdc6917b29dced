"""Liquid-density check of the force field on small molecules (the way GAFF and Sage were fitted).

Why: the polymer densities of ``bench_density.py`` are 4–12 % low, worst for esters. A polymer
glass mixes two errors, the force field's equilibrium density and the non-equilibrium packing of a
fast quench. A small-molecule liquid at 298 K equilibrates within tens of ps, so its density
isolates the first. Each molecule below is the side group / backbone chemistry of a benchmark
polymer (esters for PMMA/PMA/PBMA, aromatics for PS/PC, sulfides and sulfones for the S polymers,
halides for PVC/PCTFE/PTFP, ethers for POE/PVEE, alkanes for PE/PP/PIB).

The molecule is typed and charged exactly as a polymer's repeat unit (``forcefield.am1bcc_oligomer``
single-point AM1-BCC on an RDKit conformer, GAFF2 through parmchk2 + tleap, or Sage through
``openff_sage``), ``n`` copies (≈ 1,200 atoms) are packed with packmol and run through the same
LAMMPS writer and ``md.run_md`` as the polymers, with the ``quick`` settings (2 fs, SHAKE, LJ 10 Å
cut-off + analytic tail correction, PPPM 1e-4) and a liquid schedule: 20 ps NPT at 300 K /
1,000 atm, 40 ps NPT at 1 atm, then 100 ps NPT 300 K / 1 atm production (mean of the last 80 ps).

Experimental densities at 298.15 K (g/cm³): CRC Handbook of Chemistry and Physics / Yaws'
Thermophysical Properties (liquid density tables); ±0.002 g/cm³.

    python benchmarks/bench_liquid_density.py --forcefields gaff2 --jobs 2
    python benchmarks/bench_liquid_density.py --report-only
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name: (SMILES, experimental density at 298.15 K g/cm³, family)
LIQUIDS: dict[str, tuple[str, float, str]] = {
    "methyl acetate": ("CC(=O)OC", 0.928, "ester"),
    "ethyl acetate": ("CCOC(C)=O", 0.894, "ester"),
    "methyl isobutyrate": ("CC(C)C(=O)OC", 0.886, "ester"),
    "methyl methacrylate": ("C=C(C)C(=O)OC", 0.936, "ester"),
    "dimethyl carbonate": ("COC(=O)OC", 1.063, "ester"),
    "toluene": ("Cc1ccccc1", 0.862, "aromatic"),
    "ethylbenzene": ("CCc1ccccc1", 0.863, "aromatic"),
    "anisole": ("COc1ccccc1", 0.990, "aromatic"),
    "n-hexane": ("CCCCCC", 0.655, "alkane"),
    "n-decane": ("CCCCCCCCCC", 0.726, "alkane"),
    "cyclohexane": ("C1CCCCC1", 0.774, "alkane"),
    "diethyl sulfide": ("CCSCC", 0.831, "sulfur"),
    "thioanisole": ("CSc1ccccc1", 1.053, "sulfur"),
    "sulfolane": ("O=S1(=O)CCCC1", 1.264, "sulfur"),
    "chlorobenzene": ("Clc1ccccc1", 1.101, "halide"),
    "1,2-dichloroethane": ("ClCCCl", 1.246, "halide"),
    "tetrahydrofuran": ("C1CCOC1", 0.883, "ether"),
    "acetonitrile": ("CC#N", 0.777, "nitrile"),
}
TARGET_ATOMS = 1200


def liquid_preset(forcefield: str, threads: int = 1):
    """The ``quick`` MD settings with a liquid schedule (see module docstring)."""
    from core.simulation.presets import Stage, get_preset  # noqa: PLC0415
    return get_preset("quick").with_overrides(
        name="liquid", forcefield=forcefield, heat_time_ps=2.0, t_max=300.0,
        compress_stages=(Stage("npt", 300.0, 300.0, 1000.0, 20.0, "compress-1k"),
                         Stage("npt", 300.0, 300.0, 1.0, 40.0, "relax-1atm")),
        equil_stages=(), production_ps=100.0, production_average_ps=80.0, max_extensions=0,
        ladder_temps=(), density_method="direct", minimise_steps=1000, omp_threads=threads)


def run_liquid(name: str, forcefield: str, out: Path) -> dict:
    """Type, charge, pack and simulate one liquid; returns its result row."""
    import numpy as np  # noqa: PLC0415
    from rdkit import Chem  # noqa: PLC0415
    from rdkit.Chem import AllChem  # noqa: PLC0415

    from core.simulation import forcefield as F  # noqa: PLC0415
    from core.simulation.build import Chain  # noqa: PLC0415
    from core.simulation.cell import pack_chains  # noqa: PLC0415
    from core.simulation.lammps_data import write_data_file  # noqa: PLC0415
    from core.simulation.md import run_md  # noqa: PLC0415

    smiles, rho_exp, family = LIQUIDS[name]
    wd = out / "runs" / forcefield / name.replace(" ", "_").replace(",", "")
    wd.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=7)
    AllChem.MMFFOptimizeMolecule(mol)
    params = F.am1bcc_oligomer(mol, wd / "charges")
    types = [t for t, _ in params]
    charges = F.neutralise([q for _, q in params])
    if forcefield == "sage":
        from core.simulation.openff_sage import parametrise_chain_sage  # noqa: PLC0415
        ff = parametrise_chain_sage(mol, charges)
    else:
        ff = F.parametrise_chain(Chain(mol=mol, dp=1, seed=0), types, charges, wd / "ff",
                                 frcmod_source=wd / "charges" / "oligomer.mol2")
    n_copies = max(60, math.ceil(TARGET_ATOMS / mol.GetNumAtoms()))
    coords, box = pack_chains([mol] * n_copies, 0.3, wd / "cell", tolerance=2.0)
    (wd / "md").mkdir(exist_ok=True)
    info = write_data_file(ff, coords, box, wd / "md" / "system.data", title=name)
    res = run_md(info, wd / "md", liquid_preset(forcefield))
    rho = float(res.density)
    return {"name": name, "smiles": smiles, "family": family, "forcefield": forcefield,
            "rho_exp": rho_exp, "rho_md": rho, "stderr": float(res.density_stderr),
            "err_pct": 100 * (rho - rho_exp) / rho_exp, "n_atoms": int(res.n_atoms),
            "wall_s": round(time.time() - t0, 1), "types": sorted(set(types)),
            "ok": bool(np.isfinite(rho))}


def _job(args: tuple[str, str, str]) -> dict:
    name, ff, out = args
    try:
        return run_liquid(name, ff, Path(out))
    except Exception as exc:  # noqa: BLE001 — one failed liquid must not stop the benchmark
        return {"name": name, "forcefield": ff, "error": f"{type(exc).__name__}: {exc}"}


def read_results(out: Path, ff: str) -> dict[str, dict]:
    path = out / f"{ff}.jsonl"
    rows = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            rows[r["name"]] = r
    return rows


def report(out: Path, forcefields: list[str]) -> None:
    res = {ff: read_results(out, ff) for ff in forcefields}
    head = "| liquid | family | ρ_exp | " + " | ".join(forcefields) + " |"
    print(head)
    print("|" + "---|" * (3 + len(forcefields)))
    for name, (_, rho_exp, fam) in LIQUIDS.items():
        cells = []
        for ff in forcefields:
            r = res[ff].get(name)
            if r is None:
                cells.append("–")
            elif "error" in r:
                cells.append("failed")
            else:
                cells.append(f"{r['rho_md']:.3f} ({r['err_pct']:+.1f})")
        print(f"| {name} | {fam} | {rho_exp:.3f} | " + " | ".join(cells) + " |")
    print()
    print("| force field | family | n | mean % | RMS % |")
    print("|---|---|---|---|---|")
    for ff in forcefields:
        ok = [r for r in res[ff].values() if "error" not in r]
        fams = sorted({r["family"] for r in ok})
        for fam in ["all"] + fams:
            e = [r["err_pct"] for r in ok if fam == "all" or r["family"] == fam]
            if e:
                mean = sum(e) / len(e)
                rms = math.sqrt(sum(x * x for x in e) / len(e))
                print(f"| {ff} | {fam} | {len(e)} | {mean:+.2f} | {rms:.2f} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--forcefields", default="gaff2")
    ap.add_argument("--liquids", default="", help="comma-separated names (default: all)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "var" / "bench_liquid"))
    ap.add_argument("--report-only", action="store_true")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    ffs = [f.strip() for f in a.forcefields.split(",") if f.strip()]
    names = [n.strip() for n in a.liquids.split(",") if n.strip()] or list(LIQUIDS)
    unknown = [n for n in names if n not in LIQUIDS]
    if unknown:
        ap.error(f"unknown liquid(s): {', '.join(unknown)}; choose from {', '.join(LIQUIDS)}")
    if not a.report_only:
        todo = [(n, ff, str(out)) for ff in ffs for n in names
                if n not in read_results(out, ff)]
        with ProcessPoolExecutor(max_workers=max(1, a.jobs)) as ex:
            futs = [ex.submit(_job, t) for t in todo]
            for f in as_completed(futs):
                r = f.result()
                with open(out / f"{r['forcefield']}.jsonl", "a") as fh:
                    fh.write(json.dumps(r) + "\n")
                msg = r.get("error") or f"{r['rho_md']:.3f} vs {r['rho_exp']:.3f} " \
                                         f"({r['err_pct']:+.1f} %, {r['wall_s']} s)"
                print(f"{r['forcefield']} {r['name']}: {msg}", flush=True)
    report(out, ffs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
