"""Density benchmark: simulated amorphous densities against experiment, side by side.

Data: ``../shared/data/polymer_density_dev.csv`` — 90 amorphous polymers with experimental
room-temperature densities (g/cm³) and Tg (K), from the experimental reference table compiled by
Microsoft's SimPoly project ("PolyArena", arXiv 2510.13696).

For each polymer of the chosen set and each force field (``--forcefields gaff2,sage``) it runs
``core.simulation.run_pipeline(..., until="md")`` with the chosen preset (default ``quick``): one MD
run gives both estimators side by side on the *same* trajectory,

* the record's density (``density_method`` of the preset: ``direct`` = the 300 K production
  mean, a fast-quench glass as RadonPy reports it; ``melt_line`` = the equilibrium melt line
  extrapolated to Tg_sim with a Simha–Boyer glass to 300 K, core.simulation.dilatometry);
* for a melt-line protocol also the direct 300 K value of the same trajectory;

and prints them beside RadonPy's GAFF2 densities (PI1070, where the polymer is there), the
packing-coefficient estimate (core.simulation.packing, K refitted here on all non-Si dev polymers)
and Tg_sim against Tg_exp. Statistics: mean and RMS relative error, glassy (Tg_exp > 330 K) and
rubbery (Tg_exp ≤ 300 K... ≤ 330 K) means and their gap.

    python benchmarks/bench_density.py --forcefields gaff2,sage --jobs 2 --out var/bench_density
    python benchmarks/bench_density.py --report-only --out var/bench_density   # tables only

Results are appended per polymer to ``<out>/<ff>.jsonl`` (a rerun skips finished polymers).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"

# ≥ 12 glassy (Tg > 330 K), the 3 S-containing polymers the builder supports (the 4th, POMMS, is a
# siloxane: no Si in GAFF2), ≥ 3 with F, and rubbery / unknown-Tg ones across chemistries.
DEFAULT_SET = (
    # glassy
    "PMMA", "PS", "PC", "PAN", "PCHMA", "PCTFE", "PDPPS", "PET", "PMAN", "PODMP", "POMS",
    "PPhMA", "PTPC", "PVC", "PVP", "PtBMA",
    # rubbery at 300 K
    "PE", "PIB", "PMA", "PEA", "POE", "PVEE", "PVMS", "PBMA", "PCL", "PTFP", "P4MP",
    # Tg not in the file
    "PP", "PMTFS", "PTFMA",
)
GLASSY_K = 330.0


def load_dev() -> dict[str, dict]:
    with open(DATA / "polymer_density_dev.csv") as fh:
        return {r["id"]: r for r in csv.DictReader(fh)}


def radonpy_densities() -> dict[str, float]:
    """PI1070 GAFF2 densities keyed by our canonical PSMILES."""
    from core.chem.polymer import canonical_psmiles  # noqa: PLC0415

    out = {}
    with open(DATA / "PI1070.csv") as fh:
        for r in csv.DictReader(fh):
            try:
                out[canonical_psmiles(r["smiles"])] = float(r["density"])
            except Exception:  # noqa: BLE001 - a few PI1070 SMILES do not parse; skip them
                continue
    return out


# protocol variants tried against the preset as shipped: ``--forcefields gaff2,gaff2+2x320`` runs
# both side by side (results in ``<out>/gaff2+2x320.jsonl``)
VARIANTS: dict[str, dict] = {
    "2x320": {"chain_atoms": 320, "n_chains": 2},      # same atom count, chains 2x longer
    "ring": {"chain_topology": "ring"},                # the chains closed into rings: no ends
    "1x640": {"chain_atoms": 640, "n_chains": 1},      # one chain of 4x the length
    "eps110": {"lj_epsilon_scale": 1.10},
    "eps120": {"lj_epsilon_scale": 1.20},
    "prod200": {"production_ps": 200.0, "production_average_ps": 100.0},
    # hot NPT ladder 800 → 350 K after the production: the melt line where the melt equilibrates
    # within the 20 ps per temperature, extrapolated to Tg with a Simha–Boyer glass below
    "hot": {"ladder_temps": tuple(float(t) for t in range(800, 349, -50)), "ladder_heat_ps": 20.0,
            "ladder_equil_ps": 20.0, "ladder_sample_ps": 30.0, "density_method": "melt_line"},
}


def make_preset(name: str, token: str):
    """The preset ``name`` with force field and protocol variant of ``token`` (``ff[+variant]``)."""
    from core.simulation.presets import get_preset  # noqa: PLC0415

    ff, _, variant = token.partition("+")
    over = dict(VARIANTS[variant]) if variant else {}
    return get_preset(name).with_overrides(forcefield=ff, **over)


def run_one(pid: str, smiles: str, preset_name: str, ff: str, out: str) -> dict:
    from core.simulation.pipeline import run_pipeline  # noqa: PLC0415

    t0 = time.time()
    wd = Path(out) / "runs" / f"{pid}-{ff}-{preset_name}"
    try:
        rec = run_pipeline(smiles, make_preset(preset_name, ff), wd, until="md", threads=1)
    except Exception as exc:  # noqa: BLE001 - a benchmark reports failures, it does not stop
        return {"id": pid, "forcefield": ff, "error": f"{type(exc).__name__}: {exc}",
                "wall_s": time.time() - t0}
    keep = ("density", "density_stderr", "density_direct", "tg_sim_K", "tg_sim_stderr_K",
            "density_packing_estimate", "forcefield", "protocol", "warnings", "molar_mass")
    return {"id": pid, **{k: rec.get(k) for k in keep},
            "melt_line": {k: v for k, v in (rec.get("melt_line") or {}).items() if k != "ladder"},
            "ladder": (rec.get("melt_line") or {}).get("ladder"),
            "n_atoms": rec["details"]["md"]["n_atoms"], "wall_s": time.time() - t0}


def done_ids(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    return {json.loads(ln)["id"] for ln in path.read_text().splitlines() if ln.strip()
            and "error" not in json.loads(ln)}


def read_results(path: Path) -> dict[str, dict]:
    out = {}
    if path.is_file():
        for ln in path.read_text().splitlines():
            if ln.strip():
                r = json.loads(ln)
                out[r["id"]] = r
    return out


def stats(rel: dict[str, float], dev: dict[str, dict]) -> dict:
    """mean / RMS relative error (%) overall, glassy and rubbery means and the gap (points)."""
    vals = [v for v in rel.values() if v is not None and math.isfinite(v)]
    if not vals:
        return {}
    g = [v for k, v in rel.items() if v is not None and _tg(dev[k]) and _tg(dev[k]) > GLASSY_K]
    r = [v for k, v in rel.items() if v is not None and _tg(dev[k]) and _tg(dev[k]) <= GLASSY_K]
    mean = sum(vals) / len(vals)
    out = {"n": len(vals), "mean": 100 * mean,
           "rms": 100 * math.sqrt(sum(v * v for v in vals) / len(vals)),
           "glassy_mean": 100 * sum(g) / len(g) if g else float("nan"),
           "rubbery_mean": 100 * sum(r) / len(r) if r else float("nan"), "n_glassy": len(g),
           "n_rubbery": len(r)}
    out["gap"] = abs(out["glassy_mean"] - out["rubbery_mean"])
    return out


def _tg(row: dict) -> float | None:
    return float(row["tg_exp_K"]) if row.get("tg_exp_K") else None


def refit_packing(dev: dict[str, dict]) -> dict[str, float]:
    """Packing-coefficient estimates with K refitted here (mean over all non-Si dev polymers)."""
    from core.simulation.build import repeat_unit_mass  # noqa: PLC0415
    from core.simulation.packing import N_A, vdw_volume_per_unit  # noqa: PLC0415

    ratio = {}
    for pid, r in dev.items():
        if "Si" in r["smiles"]:
            continue
        v, m = vdw_volume_per_unit(r["smiles"]), repeat_unit_mass(r["smiles"])
        ratio[pid] = (m / (N_A * v * 1e-24), float(r["density_exp_g_cm3"]))
    k = sum(rho / x for x, rho in ratio.values()) / len(ratio)
    print(f"[packing] K = {k:.4f} refitted on {len(ratio)} dev polymers "
          "(shipped constant: core.simulation.packing.K_PACKING)")
    return {pid: k * x for pid, (x, _) in ratio.items()}


def report(out: Path, ffs: list[str], ids: list[str]) -> None:
    from core.chem.polymer import canonical_psmiles  # noqa: PLC0415

    dev = load_dev()
    rp = radonpy_densities()
    pack = refit_packing(dev)
    res = {ff: read_results(out / f"{ff}.jsonl") for ff in ffs}
    cols: dict[str, dict[str, float | None]] = {}
    for ff in ffs:
        cols[ff] = {i: res[ff][i].get("density") for i in ids if i in res[ff]}
        direct = {i: res[ff][i].get("density_direct") for i in ids if i in res[ff]}
        if any(direct[i] != cols[ff][i] for i in direct):  # a melt-line protocol: show both
            cols[f"{ff} direct 300 K"] = direct
    cols["RadonPy GAFF2"] = {i: rp.get(canonical_psmiles(dev[i]["smiles"])) for i in ids}
    cols["packing est."] = {i: pack.get(i) for i in ids}
    names = list(cols)
    print("\n## Densities (g/cm³) and relative errors (%)\n")
    print("| polymer | Tg_exp K | ρ_exp | " + " | ".join(names) + " | " +
          " | ".join(f"Tg_sim {ff}" for ff in ffs) + " |")
    print("|" + "---|" * (3 + len(names) + len(ffs)))
    rels: dict[str, dict[str, float | None]] = {n: {} for n in names}
    for i in ids:
        exp = float(dev[i]["density_exp_g_cm3"])
        cells = []
        for n in names:
            v = cols[n].get(i)
            if v is None or (isinstance(v, float) and not math.isfinite(v)):
                cells.append("–")
                continue
            rels[n][i] = v / exp - 1
            cells.append(f"{v:.3f} ({100 * (v / exp - 1):+.1f})")
        tgs = []
        for ff in ffs:
            r = res[ff].get(i, {})
            tgs.append(f"{r['tg_sim_K']:.0f}" if r.get("tg_sim_K") else
                       ("failed" if "error" in r else "–"))
        print(f"| {i} | {dev[i]['tg_exp_K'] or '–'} | {exp:.3f} | " + " | ".join(cells) + " | "
              + " | ".join(tgs) + " |")
    print("\n## Summary (relative density error, %)\n")
    print("| estimate | n | mean | RMS | glassy mean (n) | rubbery mean (n) | gap (points) |")
    print("|---|---|---|---|---|---|---|")
    for n in names:
        s = stats(rels[n], dev)
        if s:
            print(f"| {n} | {s['n']} | {s['mean']:+.2f} | {s['rms']:.2f} | "
                  f"{s['glassy_mean']:+.2f} ({s['n_glassy']}) | {s['rubbery_mean']:+.2f} "
                  f"({s['n_rubbery']}) | {s['gap']:.2f} |")
    # on the common subset where every column has a value
    common = [i for i in ids if all(rels[n].get(i) is not None for n in names)]
    if common and len(common) < len(ids):
        print(f"\nSame table on the {len(common)} polymers every column has:\n")
        print("| estimate | n | mean | RMS | glassy mean | rubbery mean | gap |")
        print("|---|---|---|---|---|---|---|")
        for n in names:
            s = stats({i: rels[n][i] for i in common}, dev)
            print(f"| {n} | {s['n']} | {s['mean']:+.2f} | {s['rms']:.2f} | "
                  f"{s['glassy_mean']:+.2f} | {s['rubbery_mean']:+.2f} | {s['gap']:.2f} |")
    print("\n## Tg_sim (cooling-ladder dilatometry) against Tg_exp\n")
    for ff in ffs:
        pairs = [(res[ff][i]["tg_sim_K"], _tg(dev[i])) for i in ids
                 if i in res[ff] and res[ff][i].get("tg_sim_K") and _tg(dev[i])]
        if len(pairs) >= 3:
            d = [a - b for a, b in pairs]
            import numpy as np  # noqa: PLC0415
            r = float(np.corrcoef([a for a, _ in pairs], [b for _, b in pairs])[0, 1])
            print(f"- {ff}: n {len(pairs)}, mean Tg_sim − Tg_exp {sum(d) / len(d):+.0f} K, "
                  f"MAE {sum(abs(x) for x in d) / len(d):.0f} K, Pearson r {r:.2f}")
        walls = [res[ff][i]["wall_s"] for i in ids if i in res[ff] and "error" not in res[ff][i]]
        fails = [f"{i}: {res[ff][i]['error'][:120]}" for i in ids if "error" in res[ff].get(i, {})]
        if walls:
            print(f"- {ff}: wall time per polymer (1 thread, 2 jobs side by side) median "
                  f"{sorted(walls)[len(walls) // 2]:.0f} s, max {max(walls):.0f} s")
        for f in fails:
            print(f"- {ff} FAILED {f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--forcefields", default="gaff2")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--ids", default=",".join(DEFAULT_SET))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="var/bench_density")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--subset", action="append", default=[], metavar="FF=ID,ID",
                    help="run this force field on these polymers only (e.g. sage=PMMA,PS)")
    a = ap.parse_args(argv)
    if not (DATA / "polymer_density_dev.csv").is_file():
        print(f"needs {DATA}/polymer_density_dev.csv (../shared); nothing to do")
        return 0
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ffs = [f.strip() for f in a.forcefields.split(",") if f.strip()]
    bad = [f for f in ffs if f.partition("+")[2] and f.partition("+")[2] not in VARIANTS]
    if bad:
        print(f"unknown protocol variant in {', '.join(bad)}; known: {', '.join(VARIANTS)}")
        return 2
    ids = [i.strip() for i in a.ids.split(",") if i.strip()]
    dev = load_dev()
    unknown = [i for i in ids if i not in dev]
    if unknown:
        print(f"unknown polymer ids: {', '.join(unknown)}")
        return 2
    if not a.report_only:
        # polymer by polymer, both force fields next to each other: a cut-short run still
        # compares the force fields on the same polymers
        only = {k: set(v.split(",")) for k, v in (x.split("=", 1) for x in a.subset)}
        todo = [(i, ff) for i in ids for ff in ffs if i not in done_ids(out / f"{ff}.jsonl")
                and (ff not in only or i in only[ff])]
        print(f"{len(todo)} runs to do ({', '.join(ffs)})", flush=True)
        with ProcessPoolExecutor(max_workers=a.jobs) as pool:
            futs = {pool.submit(run_one, i, dev[i]["smiles"], a.preset, ff, str(out)): (i, ff)
                    for i, ff in todo}
            for f in as_completed(futs):
                r = f.result()
                ff = futs[f][1]
                with open(out / f"{ff}.jsonl", "a") as fh:
                    fh.write(json.dumps(r) + "\n")
                msg = r.get("error") or f"ρ {r['density']:.3f} g/cm³"
                print(f"[{ff}] {r['id']}: {msg} ({r['wall_s']:.0f} s)", flush=True)
    report(out, ffs, ids)
    return 0


if __name__ == "__main__":
    sys.exit(main())
