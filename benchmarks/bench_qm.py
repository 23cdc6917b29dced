"""Benchmark of the QM step: time per wavelength, and α / n / ν_D across methods and modes.

    python benchmarks/bench_qm.py                      # timings at the quick settings (PS, PMMA, sulfone)
    python benchmarks/bench_qm.py --compare            # + method / basis / mode comparison
    python benchmarks/bench_qm.py --compare --cases PS:HF:6-31+G*:capped_monomer PS:CAM-B3LYP:6-31+G*:capped_monomer

Timings: wall and SCF / response split of ``repeat_unit_polarizability`` (α at static + F, D, C
in one joint solve; "per wavelength" = response time / 4 frequencies).

Comparison: n at each line from Lorentz–Lorenz with *experimental* densities (PS 1.05, PMMA 1.18,
PC 1.20 g/cm³) — used only to rank QM methods against experimental n_D and ν_D; these are not
pipeline results (the pipeline uses the MD density).  Results are cached under --cache
(default /tmp/bench_qm_cache), so an interrupted run resumes.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.chem.polymer import repeat_unit_mass  # noqa: E402
from core.simulation.qm import repeat_unit_polarizability  # noqa: E402

N_A = 6.02214076e23
POLYMERS = {
    # name: (psmiles, experimental density g/cm³ or None, exp n_D, exp ν_D)
    "PS": ("*CC(*)c1ccccc1", 1.05, 1.592, 31.0),
    "PMMA": ("*C(C*)(C(=O)OC)C", 1.18, 1.492, 58.0),
    "PC": ("*Oc1ccc(cc1)C(c1ccc(cc1)OC(=O)*)(C)C", 1.20, 1.584, 31.0),
    "sulfone": ("*CCS(=O)(=O)*", None, None, None),
    "CHDT-DVS": ("*CCS(CCSC1CCC(S*)CC1)(=O)=O", None, 1.6107, 50.6),
}
QUICK = ("HF", "6-31+G*", "capped_monomer")
DEFAULT_CASES = [  # in order of priority (each is cached, so a rerun resumes)
    "PS:HF:6-31+G*:capped_monomer",
    "PMMA:HF:6-31+G*:capped_monomer",
    "PS:CAM-B3LYP:6-31+G*:capped_monomer",
    "PMMA:CAM-B3LYP:6-31+G*:capped_monomer",
    "PS:HF:6-31G*:capped_monomer",
    "PMMA:HF:6-31+G*:dimer_minus_monomer",
    "PS:wB97X-D:6-31+G*:capped_monomer",
    "PMMA:wB97X-D:6-31+G*:capped_monomer",
    "PS:B3LYP:6-31+G*:capped_monomer",
    "PMMA:B3LYP:6-31+G*:capped_monomer",
    "PS:HF:aug-cc-pVDZ:capped_monomer",
    "PS:HF:6-31+G*:dimer_minus_monomer",
]


def lorentz_lorenz_n(alpha_a3: float, density: float, molar_mass: float) -> float:
    """n from (n²−1)/(n²+2) = (4π/3) N_A ρ α / M (α in Å³ = 1e-24 cm³, ρ g/cm³, M g/mol)."""
    x = 4.0 * math.pi / 3.0 * N_A * density * alpha_a3 * 1e-24 / molar_mass
    if not 0 < x < 1:
        return float("nan")
    return math.sqrt((1 + 2 * x) / (1 - x))


def run_case(name: str, method: str, basis: str, mode: str, threads: int, cache: Path) -> dict:
    psmiles = POLYMERS[name][0]
    t0 = time.perf_counter()
    r = repeat_unit_polarizability(psmiles, method=method, basis=basis, mode=mode, threads=threads,
                                   workdir=cache / name)
    r["bench_wall_s"] = time.perf_counter() - t0
    return r


def timing_table(threads: int, cache: Path) -> list[dict]:
    print(f"\n== QM timings at the quick settings {QUICK} with {threads} thread(s) ==")
    print(f"{'polymer':9s} {'atoms':>5s} {'nbas':>5s} {'SCF s':>7s} {'resp s':>7s} {'it':>3s} "
          f"{'per-λ s':>8s} {'total s':>8s}  cached")
    rows = []
    for name in ("PS", "PMMA", "sulfone"):
        r = run_case(name, *QUICK, threads=threads, cache=cache)
        c = r["components"]["monomer"]
        nfreq = len(c["alpha_A3"])
        rows.append({"polymer": name, **{k: c[k] for k in ("n_atoms", "n_basis", "scf_s", "response_s",
                                                         "response_iterations", "wall_s")}})
        print(f"{name:9s} {c['n_atoms']:5d} {c['n_basis']:5d} {c['scf_s']:7.1f} {c['response_s']:7.1f} "
              f"{c['response_iterations']:3d} {c['response_s'] / nfreq:8.1f} {c['wall_s']:8.1f}  "
              f"{r['from_cache']}")
    return rows


def compare_table(cases: list[str], threads: int, cache: Path) -> list[dict]:
    print("\n== α (Å³) and Lorentz–Lorenz n / ν_D with EXPERIMENTAL densities (method ranking only) ==")
    print(f"{'polymer':8s} {'method':10s} {'basis':12s} {'mode':20s} {'α0':>7s} {'α_D':>7s} "
          f"{'(αF-αC)/αD':>10s} {'n_D':>6s} {'ν_D':>6s} {'exp n_D':>7s} {'exp ν':>6s} {'wall s':>7s}")
    rows = []
    for case in cases:
        name, method, basis, mode = case.split(":")
        try:
            r = run_case(name, method, basis, mode, threads, cache)
        except Exception as exc:  # noqa: BLE001 - report and continue the table
            print(f"{name:8s} {method:10s} {basis:12s} {mode:20s} FAILED: {type(exc).__name__}: {exc}")
            continue
        a = r["alpha_A3"]
        _, rho, n_exp, nu_exp = POLYMERS[name]
        m = repeat_unit_mass(POLYMERS[name][0])
        if rho:
            n = {k: lorentz_lorenz_n(a[k], rho, m) for k in ("F", "D", "C")}
            nu = (n["D"] - 1) / (n["F"] - n["C"])
            n_s, nu_s = f"{n['D']:6.3f}", f"{nu:6.1f}"
        else:
            n_s = nu_s = "   -  "
            n = nu = None
        disp = (a["F"] - a["C"]) / a["D"]
        wall = r.get("compute_s", r["wall_s"])
        print(f"{name:8s} {method:10s} {basis:12s} {mode:20s} {a['static']:7.2f} {a['D']:7.2f} "
              f"{disp:10.5f} {n_s} {nu_s} {n_exp or '-':>7} {nu_exp or '-':>6} {wall:7.0f}")
        rows.append({"case": case, "alpha_A3": a, "n": n, "abbe": nu, "dispersion": disp,
                     "compute_s": wall, "n_atoms": r["n_atoms"], "n_basis": r["n_basis"]})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compare", action="store_true", help="run the method/basis/mode comparison")
    ap.add_argument("--cases", nargs="*", default=None, help="polymer:method:basis:mode, see DEFAULT_CASES")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/bench_qm_cache"))
    ap.add_argument("--json", type=Path, default=None, help="write all rows as JSON here")
    args = ap.parse_args(argv)
    out = {"timings": timing_table(args.threads, args.cache)}
    if args.compare or args.cases:
        out["comparison"] = compare_table(args.cases or DEFAULT_CASES, args.threads, args.cache)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
