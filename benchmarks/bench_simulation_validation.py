"""Validate the `quick` simulation preset on the 13 polymers of optical_calibration_dev.csv.

Runs ``core.simulation.run_pipeline`` (real MD + QM) for every polymer, 2 jobs in parallel by
default, each in its own resumable work directory, then prints per polymer and in summary our raw
(uncalibrated) n_D and ν_D against experiment and against RadonPy's raw values from the same file,
and MD densities against experimental ones (PS 1.04–1.05, PMMA 1.17–1.19, PC 1.20 g/cm³).

Writes the complete result records to ``assets/demo/initial_observations.json`` (the dashboard's
demo campaign ships them as its initial observations) and a summary JSON next to the work dirs.

Usage:
    python benchmarks/bench_simulation_validation.py [--csv PATH] [--workroot DIR] [--jobs 2]
        [--preset quick] [--only PS,PMMA] [--no-run] [--reuse-qm RECORDS.json]

``--reuse-qm assets/demo/initial_observations.json`` starts each polymer's work directory with the
QM step of an earlier record of the same polymer (its α(ω) at the C, D and F lines), where that
record's QM settings equal the preset's: the QM step needs only the SMILES, so after a change of
the MD protocol only build → force field → cell → MD (and the optics) are computed again. The
record says so (``details.qm.reused_from``).
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EXP_DENSITY = {"PS": (1.04, 1.05), "PMMA": (1.17, 1.19), "PC": (1.20, 1.20)}
DEFAULT_CSV = REPO.parent / "shared" / "data" / "optical_calibration_dev.csv"


def _run_one(name: str, smiles: str, preset: str, workdir: str, threads: int) -> dict:
    from core.simulation.errors import SimulationError
    from core.simulation.pipeline import run_pipeline

    t0 = time.time()
    log = Path(workdir).with_suffix(".progress.log")
    Path(workdir).parent.mkdir(parents=True, exist_ok=True)

    def progress(step, msg):
        with open(log, "a") as fh:
            fh.write(f"[{time.time() - t0:8.1f} s] [{step}] {msg}\n")

    try:
        rec = run_pipeline(smiles, preset, workdir, progress=progress, threads=threads)
        return {"name": name, "ok": True, "record": rec, "wall_s": time.time() - t0}
    except (SimulationError, ValueError) as exc:
        return {"name": name, "ok": False, "error": type(exc).__name__, "message": str(exc),
                "step": getattr(exc, "step", None), "wall_s": time.time() - t0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--csv", default=os.environ.get("OPTIPOLY_CALIBRATION_CSV", str(DEFAULT_CSV)))
    ap.add_argument("--workroot", default=str(REPO / "sim_runs" / "validation"))
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default="", help="comma-separated names (run in this order)")
    ap.add_argument("--no-run", action="store_true", help="only collect finished records")
    ap.add_argument("--demo-out", default=str(REPO / "assets" / "demo" / "initial_observations.json"))
    ap.add_argument("--calibration-out", default=str(REPO / "assets" / "calibration_quick.json"),
                    help="where to write the labelled linear calibration ('' = do not write)")
    ap.add_argument("--reuse-qm", default="", metavar="RECORDS.json",
                    help="seed the QM step from these records where the QM settings match")
    args = ap.parse_args(argv)

    rows = list(csv.DictReader(open(args.csv)))
    if args.only:
        order = {n: i for i, n in enumerate(args.only.split(","))}
        rows = sorted((r for r in rows if r["monomer_ID"] in order),
                      key=lambda r: order[r["monomer_ID"]])
    else:
        from core.simulation.build import unit_atoms
        rows.sort(key=lambda r: unit_atoms(r["smiles"]))  # small units first
    root = Path(args.workroot)
    results: dict[str, dict] = {}
    if args.no_run:
        from core.simulation.pipeline import read_record
        for r in rows:
            rec = read_record(root / r["monomer_ID"])
            results[r["monomer_ID"]] = ({"name": r["monomer_ID"], "ok": True, "record": rec}
                                        if rec else {"name": r["monomer_ID"], "ok": False,
                                                     "error": "NotRun", "message": "no record"})
    else:
        if args.reuse_qm:
            for r in rows:
                note = seed_qm(Path(args.reuse_qm), r["monomer_ID"], r["smiles"], args.preset,
                               root / r["monomer_ID"])
                print(f"{r['monomer_ID']:9s} QM: {note}", flush=True)
        with ProcessPoolExecutor(max_workers=args.jobs) as ex:
            futs = {ex.submit(_run_one, r["monomer_ID"], r["smiles"], args.preset,
                              str(root / r["monomer_ID"]), args.threads): r for r in rows}
            for f in as_completed(futs):
                res = f.result()
                results[res["name"]] = res
                if res["ok"]:
                    rec = res["record"]
                    print(f"done {res['name']:9s} n_D {rec['n_D']:.4f} ν_D {rec['abbe_number']:.1f}"
                          f" ρ {rec['density']:.4f} ({res['wall_s']:.0f} s)", flush=True)
                else:
                    print(f"FAIL {res['name']:9s} {res['error']}: {res['message'][:200]}",
                          flush=True)
    report(rows, results, args)
    return 0


QM_KEYS = ("method", "basis", "mode", "density_fit", "grid_level")


def seed_qm(records_path: Path, name: str, smiles: str, preset: str, workdir: Path) -> str:
    """Write ``workdir/qm/done.json`` from the record of ``name`` in ``records_path`` (a list of
    {name, psmiles, result} as written to the demo's initial observations) when its QM settings
    equal ``preset``'s; returns what was done, in words. Never overwrites a finished QM step."""
    from core.simulation.pipeline import _canonical, step_fingerprint  # noqa: PLC0415
    from core.simulation.presets import get_preset  # noqa: PLC0415

    p = get_preset(preset)
    done = workdir / "qm" / "done.json"
    if done.is_file():
        return "already in the work directory"
    old = next((r for r in json.loads(records_path.read_text()) if r.get("name") == name), None)
    if old is None:
        return "no earlier record: computed"
    rec = old["result"]
    q = (rec.get("details") or {}).get("qm") or {}
    want = {"method": p.qm_method, "basis": p.qm_basis, "mode": p.qm_mode,
            "density_fit": p.qm_density_fit, "grid_level": p.qm_grid_level}
    if (_canonical(rec["psmiles"]) != _canonical(smiles) or rec.get("preset") != p.name
            or any(q.get(k) != v for k, v in want.items())):
        return "earlier record has other QM settings or another polymer: computed"
    result = {"alpha_A3": rec["alpha_A3"], "converged": rec["converged"].get("qm", True),
              "warnings": [], **{k: q.get(k) for k in (*QM_KEYS, "n_atoms", "wall_s", "threads")},
              "reused_from": {"file": str(records_path), "date": old["provenance"].get("date"),
                              "protocol": rec.get("protocol")}}
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps({"result": result, "wall_s": (rec.get("step_wall_s") or {})
                                .get("qm", 0.0), "fingerprint": step_fingerprint(p, "qm")}))
    return f"reused from the record of {old['provenance'].get('date')}"


def report(rows, results, args) -> None:
    print(f"\n{'polymer':9s} {'n_D sim':>8s} {'n_D exp':>8s} {'n_D Rdn':>8s} | {'ν sim':>6s} "
          f"{'ν exp':>6s} {'ν Rdn':>6s} | {'ρ sim':>12s} | {'steps wall s (md/qm/total)':>26s}")
    errs = {"ours_n": [], "rdn_n": [], "ours_nu": [], "rdn_nu": []}
    demo, table = [], []
    for r in rows:
        name = r["monomer_ID"]
        exp_n, exp_nu = float(r["exp_refractive_index"]), float(r["exp_abbe_number"])
        rdn_n, rdn_nu = float(r["radonpy_refractive_index"]), float(r["radonpy_abbe_number"])
        res = results.get(name)
        if not res or not res["ok"]:
            if res and res.get("error") == "NotRun":
                print(f"{name:9s} not finished (no record in the work directory)")
            else:
                print(f"{name:9s} FAILED: {res and res.get('error')}: "
                      f"{(res or {}).get('message', '')[:150]}")
            table.append({"name": name, "ok": False, **{k: (res or {}).get(k) for k in
                                                         ("error", "message", "step")}})
            continue
        rec = res["record"]
        n, nu, rho = rec["n_D"], rec["abbe_number"], rec["density"]
        w = rec["step_wall_s"]
        errs["ours_n"].append(n - exp_n)
        errs["rdn_n"].append(rdn_n - exp_n)
        errs["ours_nu"].append(abs(nu - exp_nu) / exp_nu)
        errs["rdn_nu"].append(abs(rdn_nu - exp_nu) / exp_nu)
        print(f"{name:9s} {n:8.4f} {exp_n:8.4f} {rdn_n:8.4f} | {nu:6.1f} {exp_nu:6.1f} "
              f"{rdn_nu:6.1f} | {rho:.4f}±{rec['density_stderr']:.4f} | "
              f"{w['md']:7.0f} {w['qm']:7.0f} {sum(w.values()):8.0f}")
        table.append({"name": name, "ok": True, "n_D": n, "abbe_number": nu, "density": rho,
                      "exp_n_D": exp_n, "exp_abbe": exp_nu, "radonpy_n_D": rdn_n,
                      "radonpy_abbe": rdn_nu, "step_wall_s": w})
        demo.append({"name": name, "psmiles": rec["psmiles"], "result": rec, "provenance": {
            "preset": rec["preset"], "forcefield": rec.get("forcefield"),
            "protocol": rec.get("protocol"), "date": dt.datetime.fromtimestamp(
                Path(rec["workdir"], "record.json").stat().st_mtime, dt.timezone.utc).isoformat(
                timespec="seconds") if Path(rec["workdir"], "record.json").is_file() else None,
            "software_versions": rec["versions"],
            "produced_by": "benchmarks/bench_simulation_validation.py → core.simulation."
                           "run_pipeline (LAMMPS MD density + PySCF response polarisabilities)",
            "experimental_reference": {"n_D": exp_n, "abbe_number": exp_nu,
                                       "source": "optical_calibration_dev.csv (RadonPy/SPACIER "
                                                 "public data, BSD-3)"}}})

    def rmse(v):
        return math.sqrt(sum(x * x for x in v) / len(v)) if v else float("nan")

    def mean(v):
        return sum(v) / len(v) if v else float("nan")

    k = len(errs["ours_n"])
    summary = {"n_polymers_ok": k, "n_polymers": len(rows),
               "ours": {"n_D_rmse": rmse(errs["ours_n"]), "n_D_mean_error": mean(errs["ours_n"]),
                        "abbe_mape": mean(errs["ours_nu"])},
               "radonpy_raw_same_polymers": {"n_D_rmse": rmse(errs["rdn_n"]),
                                             "n_D_mean_error": mean(errs["rdn_n"]),
                                             "abbe_mape": mean(errs["rdn_nu"])},
               "targets": {"n_D_rmse": 0.03, "abbe_mape": 0.15}}
    print(f"\nsummary over {k}/{len(rows)} polymers (uncalibrated):")
    print(f"  ours    n_D RMSE {summary['ours']['n_D_rmse']:.4f} (mean error "
          f"{summary['ours']['n_D_mean_error']:+.4f}), ν_D MAPE {summary['ours']['abbe_mape']:.1%}")
    print(f"  RadonPy n_D RMSE {summary['radonpy_raw_same_polymers']['n_D_rmse']:.4f} (mean error "
          f"{summary['radonpy_raw_same_polymers']['n_D_mean_error']:+.4f}), ν_D MAPE "
          f"{summary['radonpy_raw_same_polymers']['abbe_mape']:.1%}")
    print("  targets: n_D RMSE ≤ 0.03, ν_D MAPE ≤ 15 %")
    dens = {}
    for name, (lo, hi) in EXP_DENSITY.items():
        res = results.get(name)
        if res and res["ok"]:
            rho = res["record"]["density"]
            ref = 0.5 * (lo + hi)
            dens[name] = {"sim": rho, "stderr": res["record"]["density_stderr"], "exp": [lo, hi],
                          "rel_error": (rho - ref) / ref}
            print(f"  density {name:5s} {rho:.4f} ± {res['record']['density_stderr']:.4f} vs exp "
                  f"{lo}–{hi} g/cm³ ({(rho - ref) / ref:+.1%})")
    summary["density"] = dens
    # separate, clearly labelled output: a linear calibration to experiment (LOO-validated)
    from core.chem.calibration import CalibrationError, fit_linear, worth_shipping

    ok_rows = [t for t in table if t.get("ok")]
    lines = {}
    for prop, sim_k, exp_k in (("n_D", "n_D", "exp_n_D"), ("abbe_number", "abbe_number",
                                                           "exp_abbe")):
        try:
            lines[prop] = fit_linear(prop, [t[sim_k] for t in ok_rows],
                                     [t[exp_k] for t in ok_rows],
                                     label=f"linear calibration of the {args.preset} preset to "
                                           f"experiment ({len(ok_rows)} polymers)")
        except CalibrationError as exc:
            print(f"  calibration {prop}: not fitted ({exc})")
    if lines:
        print("\nCALIBRATED (separate output; y_exp ≈ a + b·y_sim, errors leave-one-out):")
        for prop, c in lines.items():
            print(f"  {prop:12s} a {c.intercept:+.4f} b {c.slope:.4f} | raw RMSE {c.raw_rmse:.4f}"
                  f" MAPE {c.raw_mape:.1%} → LOO RMSE {c.rmse_loo:.4f} MAPE {c.mape_loo:.1%}")
        summary["calibration"] = {k: c.to_dict() for k, c in lines.items()}
        ship = {k: c for k, c in lines.items() if worth_shipping(c)}
        for k in set(lines) - set(ship):
            print(f"  {k}: not shipped — the raw values are better out of sample")
        if args.calibration_out and ship:
            Path(args.calibration_out).write_text(json.dumps({
                "preset": args.preset, "polymers": [t["name"] for t in ok_rows],
                "source": "benchmarks/bench_simulation_validation.py on "
                          "optical_calibration_dev.csv",
                "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "lines": {k: c.to_dict() for k, c in ship.items()},
                "not_shipped": {k: c.to_dict() for k, c in lines.items() if k not in ship}},
                indent=1))
            print(f"  wrote {args.calibration_out}")
    out = Path(args.workroot) / "validation_summary.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "per_polymer": table}, indent=1))
    if demo:
        Path(args.demo_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.demo_out).write_text(json.dumps(demo, indent=1, ensure_ascii=False))
        print(f"\nwrote {len(demo)} records to {args.demo_out}; summary in {out}")


if __name__ == "__main__":
    sys.exit(main())
