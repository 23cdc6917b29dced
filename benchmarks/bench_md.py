"""LAMMPS throughput (ns/day) for polystyrene cells of ~1000 and ~3000 atoms, chosen settings vs
alternatives, all measured side by side in one run; plus the `quick` preset's wall time per step
read from finished validation runs.

Settings compared (each: minimised dense cell, NPT 300 K / 1 atm, identical steps):
  chosen      lj/cut/coul/long 10 Å + tail, PPPM 1e-4, SHAKE X–H, 2 fs, 1 rank × 1 thread
  pppm1e-5    as chosen, PPPM 1e-5
  radonpy     lj/charmm/coul/long 8/12, PPPM 1e-6, SHAKE, 1 fs (RadonPy's standard settings)
  noshake1fs  as chosen without SHAKE at 1 fs
  omp2        as chosen with 2 OpenMP threads (-sf omp)
  mpi2        as chosen with 2 MPI ranks (mpirun -np 2)
  skin1       as chosen with neighbour skin 1.0 Å (default 2.0)

Usage: python benchmarks/bench_md.py [--steps 1000] [--sizes 1000,3000] [--validation-root DIR]
The machine's load matters: the ratios (same run, same cell) are the robust numbers.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.simulation import pipeline as P  # noqa: E402
from core.simulation.lammps_data import DataFileInfo  # noqa: E402
from core.simulation.md import _header, _shake, run_lammps  # noqa: E402
from core.simulation.presets import get_preset  # noqa: E402

PS = "*C(C*)c1ccccc1"

VARIANTS = {
    "chosen": {},
    "pppm1e-5": {"pppm_accuracy": 1e-5},
    "radonpy": {"lj_tail": False, "lj_inner": 8.0, "lj_outer": 12.0, "pppm_accuracy": 1e-6,
                "timestep_fs": 1.0},
    "noshake1fs": {"shake": False, "timestep_fs": 1.0},
    "omp2": {"_omp": 2},
    "mpi2": {"_mpi": 2},
    "skin1": {"_skin": 1.0},
}


def make_cell(n_chains: int, root: Path):
    """Build + parametrise + pack PS chains (DP 10, 168 atoms each) at 0.3 g/cm³."""
    p = get_preset("quick").with_overrides(n_chains=n_chains, pack_density=0.3)
    root.mkdir(parents=True, exist_ok=True)
    say = lambda m: None  # noqa: E731
    for step, fn in (("build", lambda d: P._step_build(PS, p, d, say)),
                     ("forcefield", lambda d: P._step_forcefield(PS, p, d, say, root)),
                     ("cell", lambda d: P._step_cell(PS, p, d, say, root))):
        d = root / step
        d.mkdir(exist_ok=True)
        (d / "done.json").write_text(json.dumps({"result": fn(d), "wall_s": 0}))
    c = P._result(root, "cell")
    return DataFileInfo(n_atoms=c["n_atoms"], n_atom_types=c["n_atom_types"],
                        shake_bond_types=tuple(c["shake_bond_types"]),
                        total_charge=c["total_charge_e"], total_mass=c["total_mass"],
                        box=c["box_A"])


def relax(info, root: Path, steps: int = 4000) -> None:
    """Minimise and compress briefly so the benchmark runs on a dense liquid."""
    p = get_preset("quick")
    lines = _header(p, "system.data", info) + [
        "thermo 500", "minimize 1e-4 1e-6 1000 10000", "reset_timestep 0", "timestep 2",
        "velocity all create 300 1 mom yes rot yes"] + _shake(info, p) + [
        "fix int all npt temp 600 600 100 iso 20000 20000 1000", f"run {steps * 3 // 4}",
        "unfix int", "fix int all npt temp 300 300 100 iso 1 1 1000", f"run {steps // 4}",
        "write_data dense.data"]
    d = root / "cell"
    run_lammps("\n".join(lines) + "\n", d, name="relax")
    txt = (d / "dense.data").read_text()
    # write_data stores lj/cut coeffs in Pair Coeffs; strip to (eps, sigma) for any pair style
    out, in_pair = [], False
    for ln in txt.splitlines():
        if ln.startswith("Pair Coeffs"):
            in_pair = True
            out.append("Pair Coeffs")
            continue
        if in_pair and ln and ln[0].isalpha():
            in_pair = False
        out.append(" ".join(ln.split()[:3]) if in_pair and ln.strip() else ln)
    (d / "dense.data").write_text("\n".join(out) + "\n")


def bench(info, root: Path, name: str, over: dict, steps: int) -> dict:
    kw = {k: v for k, v in over.items() if not k.startswith("_")}
    p = get_preset("quick").with_overrides(**kw)
    head = _header(p, "dense.data", info)
    if "_skin" in over:
        head = [f"neighbor {over['_skin']} bin" if ln.startswith("neighbor ") else ln for ln in head]
    lines = head + ["thermo 1000", f"timestep {p.timestep_fs}",
                    "velocity all create 300 7 mom yes rot yes"] + _shake(info, p) + [
        "fix int all npt temp 300 300 100 iso 1 1 1000", "run 100", f"run {steps}"]
    d = root / "cell"
    run_lammps("\n".join(lines) + "\n", d, name=f"b_{name}", mpi_ranks=over.get("_mpi", 1),
               omp_threads=over.get("_omp", 1))
    log = (d / f"b_{name}.log").read_text()
    loops = re.findall(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps", log)
    t, _, n = loops[-1]
    sps = int(n) / float(t)
    return {"steps_per_s": sps, "ns_per_day": sps * p.timestep_fs * 1e-6 * 86400,
            "timestep_fs": p.timestep_fs}


def quick_walls(root: Path) -> None:
    names = {"PS": "polystyrene", "PMMA": "PMMA", "CHDT-DVS": "sulfone (CHDT-DVS)",
             "P16": "thioether/thiourethane (P16)"}
    print("\nquick preset wall time per step (s), from validation runs in", root)
    for key, label in names.items():
        f = root / key / "record.json"
        if f.is_file():
            w = json.loads(f.read_text())["step_wall_s"]
            print(f"  {label:30s} " + " ".join(f"{s} {w[s]:6.1f}" for s in P.STEPS)
                  + f" | total {sum(w.values()):6.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1000, help="steps for the ~1000-atom cell "
                    "(the ~3000-atom cell runs a third of it)")
    ap.add_argument("--sizes", default="1000,3000")
    ap.add_argument("--relax-steps", type=int, default=4000)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--validation-root", default=str(REPO / "sim_runs" / "validation"))
    args = ap.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_md_") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            n_chains = max(1, round(size / 168))
            root = Path(tmp) / f"ps{size}"
            info = make_cell(n_chains, root)
            relax(info, root, args.relax_steps)
            steps = args.steps if size <= 1500 else max(100, args.steps // 3)
            print(f"\npolystyrene cell: {info.n_atoms} atoms ({n_chains} chains × 168), "
                  f"{steps} NPT steps per variant")
            base = None
            for name in args.variants.split(","):
                r = bench(info, root, name, VARIANTS[name], steps)
                base = base or r["ns_per_day"]
                results[f"{info.n_atoms}:{name}"] = r
                print(f"  {name:11s} {r['steps_per_s']:8.1f} steps/s  {r['ns_per_day']:7.2f} ns/day"
                      f"  (dt {r['timestep_fs']} fs)  ratio vs chosen {r['ns_per_day'] / base:5.2f}",
                      flush=True)
    quick_walls(Path(args.validation_root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
