"""Fit the CPU-cost model of ``core.optimize.cost_estimate`` to measured timings, and report the shipped
pool's cost distribution.

Measurements (all on this repository's 2-core machine, one thread):

* charges: CPU seconds of the ``forcefield`` step (antechamber/sqm AM1-BCC single point on the
  CH3-capped trimer + parmchk2 + tleap; children's CPU time included) from
  ``var/pool_simulability/smoke-cell.jsonl`` (``bench_pool_simulability.py``);
* MD: CPU seconds of the ``md`` step from ``var/pool_simulability/smoke-all.jsonl`` (smoke) and
  the wall time of the ``md`` step of the density benchmark's quick GAFF2 runs
  (``var/bench_density/runs/*-gaff2-quick/density_record.json``, one thread each);
* QM: CPU seconds of ``repeat_unit_polarizability`` with the preset's settings on one thread,
  from ``var/cost_model/qm_<preset>.jsonl`` (measured with ``--measure-qm``) and the smoke
  runs' ``qm`` step.

    nice -n 19 .venv/bin/python benchmarks/bench_cost_model.py --measure-qm quick "*CC(*)C" ...
    .venv/bin/python benchmarks/bench_cost_model.py            # fit + pool distribution
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

VAR = REPO / "var"


def _rows(path: Path) -> list[dict]:
    """The latest row per polymer of a results file (bench_pool_simulability's reader)."""
    from bench_pool_simulability import read_results  # noqa: PLC0415 - sibling script

    return list({r.get("id", r.get("psmiles")): r for r in read_results(path)}.values())


def loglog_fit(x, y) -> tuple[float, float, float]:
    """log10 y = log10 A + B log10 x: returns (A, B, rms of log10(y / fit))."""
    lx, ly = np.log10(np.asarray(x, float)), np.log10(np.asarray(y, float))
    B, lA = np.polyfit(lx, ly, 1)
    rms = float(np.sqrt(np.mean((ly - (lA + B * lx)) ** 2)))
    return float(10 ** lA), float(B), rms


def md_steps(preset) -> int:
    """MD time steps of a preset's protocol without extensions (minimisation steps included)."""
    from core.simulation.presets import get_preset  # noqa: PLC0415

    p = get_preset(preset)
    ps = (p.heat_time_ps + sum(s.time_ps for s in p.compress_stages)
          + sum(s.time_ps for s in p.equil_stages) + p.production_ps)
    if p.ladder_temps:
        ps += p.ladder_heat_ps + len(p.ladder_temps) * (p.ladder_equil_ps + p.ladder_sample_ps)
    return int(round(ps * 1000.0 / p.timestep_fs)) + p.minimise_steps


def fit_forcefield() -> dict:
    from core.optimize.cost_estimate import trimer_atoms  # noqa: PLC0415

    xs, ys = [], []
    for r in _rows(VAR / "pool_simulability" / "smoke-cell.jsonl"):
        c = (r.get("step_cpu_s") or {}).get("forcefield")
        if r["status"] == "ok" and c:
            xs.append(trimer_atoms(r["psmiles"]))
            ys.append(c)
    A, B, rms = loglog_fit(xs, ys)
    return {"A": A, "B": B, "rms_log10": rms, "n": len(xs), "range_atoms": [min(xs), max(xs)]}


def fit_md() -> dict:
    from core.optimize.cost_estimate import cell_atoms  # noqa: PLC0415

    out = {}
    per = []
    for r in _rows(VAR / "pool_simulability" / "smoke-all.jsonl"):
        c = (r.get("step_cpu_s") or {}).get("md")
        if r["status"] == "ok" and c:
            per.append(c / cell_atoms(r["psmiles"], "smoke"))
    if per:
        out["smoke"] = _ratio_summary(per)
    per = []
    for f in sorted((VAR / "bench_density" / "runs").glob("*-gaff2-quick/density_record.json")):
        r = json.loads(f.read_text())
        if r.get("protocol", "").startswith("quick-md1") and r["step_wall_s"].get("md"):
            per.append(r["step_wall_s"]["md"] / r["details"]["md"]["n_atoms"])
    if per:
        out["quick"] = _ratio_summary(per)
    for name in list(out):
        out[name]["s_per_atom_step"] = out[name]["s_per_atom"] / md_steps(name)
    return out


def _ratio_summary(v) -> dict:
    v = np.asarray(v, float)
    g = float(np.exp(np.mean(np.log(v))))  # geometric mean
    return {"s_per_atom": g, "rms_log10": float(np.sqrt(np.mean(np.log10(v / g) ** 2))),
            "n": int(len(v))}


def fit_qm() -> dict:
    from core.optimize.cost_estimate import qm_incore, qm_size  # noqa: PLC0415
    from core.simulation.presets import get_preset  # noqa: PLC0415

    out = {}
    for preset in ("smoke", "quick"):
        xs, ys = [], []
        for r in _rows(VAR / "cost_model" / f"qm_{preset}.jsonl"):
            xs.append(qm_size(r["psmiles"], preset)[1])
            ys.append(r["cpu_s"])
        if preset == "smoke":  # (with the --shard files of the whole-preset sweep)
            for r in _rows(VAR / "pool_simulability" / "smoke-all.jsonl"):
                c = (r.get("step_cpu_s") or {}).get("qm")
                if r["status"] == "ok" and c:
                    xs.append(qm_size(r["psmiles"], preset)[1])
                    ys.append(c)
        # the power law is fitted in PySCF's in-core regime; a preset without density fitting
        # beyond it (integrals recomputed every iteration) gets a factor over that law
        df = get_preset(preset).qm_density_fit
        xs, ys = np.asarray(xs, float), np.asarray(ys, float)
        inc = np.array([df or qm_incore(int(x)) for x in xs], bool)
        if inc.sum() >= 3:
            A, B, rms = loglog_fit(xs[inc] / 100.0, ys[inc])
            out[preset] = {"A": A, "B": B, "rms_log10": rms, "n": int(inc.sum()),
                           "range_aos": [int(xs[inc].min()), int(xs[inc].max())]}
            if (~inc).any():
                ratio = ys[~inc] / (A * (xs[~inc] / 100.0) ** B)
                out[preset]["direct"] = {
                    "factor": float(np.exp(np.mean(np.log(ratio)))),
                    "points": [{"aos": int(x), "cpu_s": float(y), "ratio": float(r)}
                               for x, y, r in zip(xs[~inc], ys[~inc], ratio)]}
    return out


def measure_qm(preset: str, units: list[str]) -> None:
    """CPU time (s, one thread) of the preset's QM on each unit → var/cost_model/qm_<preset>.jsonl."""
    from core.simulation.presets import get_preset  # noqa: PLC0415
    from core.simulation.qm import repeat_unit_polarizability  # noqa: PLC0415

    p = get_preset(preset)
    path = VAR / "cost_model" / f"qm_{preset}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    for s in units:
        t0c, t0 = time.process_time(), time.perf_counter()
        r = repeat_unit_polarizability(s, method=p.qm_method, basis=p.qm_basis, mode=p.qm_mode,
                                       optimise=p.qm_optimise, threads=1,
                                       density_fit=p.qm_density_fit, grid_level=p.qm_grid_level)
        row = {"psmiles": s, "preset": preset, "n_atoms": r["n_atoms"], "n_basis": r.get("n_basis"),
               "cpu_s": time.process_time() - t0c, "wall_s": time.perf_counter() - t0}
        print(row, flush=True)
        with path.open("a") as f:
            f.write(json.dumps(row) + "\n")


def pool_distribution(preset: str = "quick", limit_min: float = 15.0) -> dict:
    """Percentiles of the estimated CPU minutes over the shipped pool, fraction above the limit."""
    from core.optimize.cost_estimate import estimate_cost  # noqa: PLC0415
    from core.pool import load_default_pool  # noqa: PLC0415

    tot, qm, md, ff, bad = [], [], [], [], 0
    for s in load_default_pool()["psmiles"]:
        try:
            c = estimate_cost(s, preset)
        except ValueError:
            bad += 1
            continue
        tot.append(c.total_s / 60)
        qm.append(c.qm_s / 60)
        md.append(c.md_s / 60)
        ff.append(c.forcefield_s / 60)
    q = [5, 25, 50, 75, 95, 99]
    return {"preset": preset, "n": len(tot), "rejected": bad, "percentiles": q,
            **{k: np.percentile(v, q).round(2).tolist()
               for k, v in (("total_min", tot), ("qm_min", qm), ("md_min", md),
                            ("forcefield_min", ff))},
            f"fraction_total_over_{limit_min:g}_min": float(np.mean(np.asarray(tot) > limit_min)),
            f"fraction_qm_over_{limit_min:g}_min": float(np.mean(np.asarray(qm) > limit_min)),
            "max_total_min": float(np.max(tot))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--measure-qm", nargs="+", metavar=("PRESET", "PSMILES"))
    ap.add_argument("--pool", action="store_true", help="also the pool's cost distribution")
    a = ap.parse_args(argv)
    if a.measure_qm:
        measure_qm(a.measure_qm[0], a.measure_qm[1:])
        return 0
    print(json.dumps({"forcefield": fit_forcefield(), "md": fit_md(), "qm": fit_qm(),
                      "md_steps": {p: md_steps(p) for p in ("smoke", "quick", "standard")}},
                     indent=1))
    if a.pool:
        for preset in ("quick", "smoke"):
            print(json.dumps(pool_distribution(preset), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
