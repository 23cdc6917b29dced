"""Can every polymer of the shipped pool be simulated?  Failure rate per step and reason.

Runs ``core.simulation.pipeline.run_pipeline`` on N polymers drawn at random (seeded) from the
shipped pool (``assets/pool``) and appends one JSON line per polymer to
``var/pool_simulability/<preset>-<until>.jsonl``: pool id, polymer SMILES, status
(``ok`` / ``failed``), the failed step, the error class and message, and the wall time of every
step (s). A rerun with the same arguments skips the polymers already in the file (resumable);
``--report`` only prints the table of the file.

    nice -n 19 .venv/bin/python benchmarks/bench_pool_simulability.py --preset smoke --until cell -n 300
    nice -n 19 .venv/bin/python benchmarks/bench_pool_simulability.py --preset smoke -n 300
    (two cores: the same with --shard 0/2 and --shard 1/2 side by side)
    .venv/bin/python benchmarks/bench_pool_simulability.py --preset smoke --report

Every polymer runs in its own work directory ``var/pool_simulability/runs/<preset>/<id>`` (removed
after the run unless ``--keep``), one at a time, with ``threads`` OpenMP threads (default 1). A
whole-preset run after a ``--until cell --keep`` run resumes each polymer after its cheap steps,
and counts a polymer whose cheap steps failed with that failure instead of rerunning it;
``--full-every K`` runs every K-th polymer of the draw through the whole preset straight away.
Per step the row holds the wall time and the CPU time (s; this process and its finished child
programs, so independent of the machine's load). A Python
exception that is not a ``SimulationError`` (a bug) is recorded with step ``pipeline`` unless the
pipeline wrote ``failed.json``. The report also counts polymers the feasibility pre-check
(``core.chem.feasibility``, ``core.optimize.cost_estimate``) would have flagged, to compare the pre-check with
what really failed.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OUT_DIR = REPO / "var" / "pool_simulability"


def sample_pool(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (id, psmiles) pairs of the shipped pool, drawn without replacement (seeded)."""
    from core.pool import load_default_pool  # noqa: PLC0415

    pool = load_default_pool()
    idx = random.Random(seed).sample(range(len(pool["ids"])), n)
    return [(pool["ids"][i], pool["psmiles"][i]) for i in idx]


def results_path(preset: str, until: str | None) -> Path:
    return OUT_DIR / f"{preset}-{until or 'all'}.jsonl"


def shard_path(path: Path, shard: tuple[int, int] | None) -> Path:
    """The file a shard ``(k, n)`` appends to: ``<preset>-<until>.s<k>of<n>.jsonl``."""
    return path if shard is None else path.with_suffix(f".s{shard[0]}of{shard[1]}.jsonl")


def read_results(path: Path) -> list[dict]:
    """Rows of a results file and of its shard files (``--shard``), oldest first: the files in
    the order they were last written, then by each row's ``finished_at`` (rows written before
    it existed count as oldest), so the latest row of a polymer comes last (a truncated last
    line, from a killed run, is ignored)."""
    rows = []
    files = [f for f in [path, *path.parent.glob(path.stem + ".s*of*.jsonl")] if f.is_file()]
    for f in sorted(files, key=lambda f: f.stat().st_mtime):
        for line in f.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return sorted(rows, key=lambda r: float(r.get("finished_at", 0.0)))


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"K/N"`` → (K, N) with 0 ≤ K < N; None for None."""
    if text is None:
        return None
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise SystemExit(f"--shard must look like K/N (e.g. 0/2), got {text!r}") from None
    if not 0 <= k < n:
        raise SystemExit(f"--shard K/N needs 0 <= K < N, got {text!r}")
    return k, n


def _reason(exc: BaseException) -> str:
    """A short failure reason that groups alike failures (error class + message head)."""
    msg = str(exc).split("\n")[0]
    for marker in ("RDKit could not generate 3-D coordinates", "sqm", "antechamber",
                   "parmchk2", "tleap", "packmol", "no GAFF2 type", "Unsupported", "timed out",
                   "exceeded", "SCF", "LAMMPS", "lost atoms"):
        if marker.lower() in msg.lower():
            return f"{type(exc).__name__}: {marker}"
    return f"{type(exc).__name__}: {msg[:60]}"


def cpu_seconds() -> float:
    """CPU time (user + system, s) of this process and its finished child processes (sqm,
    parmchk2, tleap, packmol, LAMMPS): with one polymer at a time and ``threads=1`` the
    difference over a step is that step's CPU cost, independent of the machine's load."""
    import resource  # noqa: PLC0415
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def run_one(pid: str, psmiles: str, preset: str, until: str | None, threads: int,
            keep: bool) -> dict:
    """Run the pipeline on one polymer; a row for the results file (wall times in s)."""
    from core.simulation.errors import SimulationError  # noqa: PLC0415
    from core.simulation.pipeline import run_pipeline  # noqa: PLC0415

    # one directory per polymer and preset: a full run after a ``--until`` run of the same
    # polymer resumes after its finished steps (the pipeline redoes any unfinished one)
    wd = OUT_DIR / "runs" / preset / pid
    starts: dict[str, float] = {}
    walls: dict[str, float] = {}
    cpu0: dict[str, float] = {}
    cpus: dict[str, float] = {}

    def progress(step: str, msg: str) -> None:
        if msg == "started":
            starts[step] = time.perf_counter()
            cpu0[step] = cpu_seconds()
        elif msg.startswith("done in"):
            walls[step] = time.perf_counter() - starts.get(step, time.perf_counter())
            cpus[step] = cpu_seconds() - cpu0.get(step, cpu_seconds())

    row = {"id": pid, "psmiles": psmiles, "preset": preset, "until": until,
           "unit_atoms": _unit_atoms(psmiles)}
    t0 = time.perf_counter()
    try:
        rec = run_pipeline(psmiles, preset, wd, until=until, threads=threads, progress=progress)
        row.update(status="ok", step_wall_s=rec.get("step_wall_s", walls))
        row["step_cpu_s"] = cpus
        if "n_D" in rec:
            row.update(n_D=rec["n_D"], abbe_number=rec["abbe_number"], density=rec["density"])
    except Exception as exc:  # noqa: BLE001 - every failure is a result here
        failed = wd / "failed.json"
        step = getattr(exc, "step", None)
        if failed.is_file():
            step = json.loads(failed.read_text()).get("step", step)
        # the step that was running when it failed: started but not finished
        running = [s for s in starts if s not in walls]
        if not step or step == "unknown":
            step = running[-1] if running else "pipeline"
        row.update(status="failed", step=step, error=type(exc).__name__,
                   reason=_reason(exc), message=str(exc)[:500],
                   simulation_error=isinstance(exc, SimulationError), step_wall_s=walls,
                   step_cpu_s=cpus)
        if not isinstance(exc, SimulationError):
            row["traceback"] = traceback.format_exc()[-1500:]
    row["wall_s"] = time.perf_counter() - t0
    row["finished_at"] = time.time()
    if not keep:
        shutil.rmtree(wd, ignore_errors=True)
    return row


def _unit_atoms(psmiles: str) -> int | None:
    """Atoms of the H-capped repeat unit (with H), the QM molecule of quick and smoke."""
    try:
        from core.simulation.build import unit_atoms  # noqa: PLC0415
        return unit_atoms(psmiles) + 2
    except Exception:  # noqa: BLE001
        return None


def _flags(psmiles: str) -> tuple[str, ...]:
    try:
        from core.chem.feasibility import motif_flags  # noqa: PLC0415
        return motif_flags(psmiles)
    except Exception:  # noqa: BLE001
        return ()


def _precheck(psmiles: str, preset: str) -> dict:
    """The pure pre-check's verdict (for the report; never changes what runs)."""
    try:
        from core.optimize.cost_estimate import simulability  # noqa: PLC0415
        s = simulability(psmiles, preset)
        return {"precheck_ok": s.ok, "precheck_reasons": list(s.reasons)}
    except Exception as exc:  # noqa: BLE001
        return {"precheck_ok": None, "precheck_reasons": [f"{type(exc).__name__}: {exc}"]}


def report(rows: list[dict]) -> str:
    """Markdown tables: failures per step and reason (counts, % of all), wall time per step.

    Rows with status ``excluded`` (``--exclude-unsimulable``: the pre-check keeps them out of
    every proposal, so they were not run) are counted apart and left out of the rates."""
    excluded = [r for r in rows if r["status"] == "excluded"]
    rows = [r for r in rows if r["status"] != "excluded"]
    n = len(rows)
    if not n:
        return "no results yet"
    ok = sum(r["status"] == "ok" for r in rows)
    head = [f"{len(excluded)} more drawn but not run: the pre-check excludes them from "
            f"proposals ({'; '.join(sorted({x for r in excluded for x in r.get('precheck_reasons', [])}))[:300]})",
            ""] if excluded else []
    lines = head + [f"{n} polymers, {ok} passed ({100 * ok / n:.1f} %), {n - ok} failed "
             f"({100 * (n - ok) / n:.1f} %)", "",
             "| step | reason | count | % of all |", "|---|---|---|---|"]
    by = Counter((r["step"], r["reason"]) for r in rows if r["status"] != "ok")
    for (step, reason), c in sorted(by.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"| {step} | {reason} | {c} | {100 * c / n:.1f} |")
    per_step = Counter(r["step"] for r in rows if r["status"] != "ok")
    lines += ["", "| step | failed | % of all |", "|---|---|---|"]
    for step, c in per_step.most_common():
        lines.append(f"| {step} | {c} | {100 * c / n:.1f} |")
    walls: dict[str, list[float]] = defaultdict(list)
    cpus: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        for s, w in (r.get("step_wall_s") or {}).items():
            walls[s].append(float(w))
        for s, w in (r.get("step_cpu_s") or {}).items():
            cpus[s].append(float(w))
        walls["total"].append(float(r.get("wall_s", 0.0)))
    lines += ["", "| step | runs | median wall (s) | p90 wall (s) | max wall (s) | "
              "median CPU (s) | p90 CPU (s) | max CPU (s) |", "|---|---|---|---|---|---|---|---|"]
    import numpy as np  # noqa: PLC0415
    for s, ws in walls.items():
        a = np.array(ws)
        c = np.array(cpus.get(s) or [np.nan])
        lines.append(f"| {s} | {len(a)} | {np.median(a):.1f} | {np.percentile(a, 90):.1f} | "
                     f"{a.max():.1f} | {np.median(c):.1f} | {np.percentile(c, 90):.1f} | "
                     f"{c.max():.1f} |")
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        lines += ["", "| id | step | reason | motif flags (core.chem.feasibility) | polymer |",
                  "|---|---|---|---|---|"]
        for r in failed:
            lines.append(f"| {r['id']} | {r['step']} | {r['reason']} | "
                         f"{', '.join(_flags(r['psmiles'])) or '—'} | `{r['psmiles']}` |")
    pre = [dict(r, **_precheck(r["psmiles"], r["preset"])) for r in rows]
    pre = [r for r in pre if r.get("precheck_ok") is not None]
    if pre:
        flagged = [r for r in pre if not r["precheck_ok"]]
        failed_flagged = sum(r["status"] != "ok" for r in flagged)
        failed_all = sum(r["status"] != "ok" for r in pre)
        lines += ["", f"pre-check flagged {len(flagged)} of {len(pre)}; of the "
                  f"{failed_all} failures it flagged {failed_flagged}"]
        passed = [r for r in pre if r["precheck_ok"]]
        if passed:
            ok_passed = sum(r["status"] == "ok" for r in passed)
            lines.append(f"of the {len(passed)} polymers the pre-check lets through (those a "
                         f"campaign can propose), {ok_passed} passed "
                         f"({100 * ok_passed / len(passed):.1f} %)")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=300, help="polymers to draw (default 300)")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--until", default=None, help="stop after this step (e.g. cell)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the work directories")
    ap.add_argument("--report", action="store_true", help="only print the table")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="stop starting new polymers after this many minutes")
    ap.add_argument("--full-every", type=int, default=0,
                    help="with --until: every K-th polymer of the draw also runs the whole "
                         "preset (results in <preset>-all.jsonl)")
    ap.add_argument("--retry-failed", action="store_true",
                    help="rerun the polymers that failed (after a fix); keeps the latest row")
    ap.add_argument("--exclude-unsimulable", action="store_true",
                    help="do not run polymers the pre-check (core.optimize.cost_estimate."
                         "simulability) rejects, as a campaign with exclude_unsimulable (the "
                         "default) never proposes them; they are counted apart")
    ap.add_argument("--reverse", action="store_true",
                    help="walk the draw from its end (a second process on the same shard then "
                         "meets the first in the middle; a polymer both reach is run twice)")
    ap.add_argument("--shard", default=None, metavar="K/N",
                    help="run only the draw positions k with k %% N == K, appending to its own "
                         "file (run N processes side by side on N cores); --report merges them")
    a = ap.parse_args(argv)
    shard = parse_shard(a.shard)
    path = results_path(a.preset, a.until)
    rows = read_results(path)
    if a.report:
        latest = {r["id"]: r for r in rows}
        print(report(list(latest.values())))
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    latest = {r["id"]: r for r in rows}
    done = {i for i, r in latest.items() if not (a.retry_failed and r["status"] != "ok")}
    print(f"{len(done)} done in {path}", flush=True)
    cheap_failed = {} if a.until else {
        r["id"]: r for r in read_results(results_path(a.preset, "cell")) if r["status"] != "ok"}
    full_path = results_path(a.preset, None)
    full_done = {r["id"] for r in read_results(full_path)} if a.full_every else set()
    t_start = time.time()
    draw = list(enumerate(sample_pool(a.n, a.seed)))
    for k, (pid, s) in (reversed(draw) if a.reverse else draw):
        if a.max_minutes and time.time() - t_start > 60 * a.max_minutes:
            print("time limit reached", flush=True)
            break
        if shard and k % shard[1] != shard[0]:
            continue
        if a.reverse and pid in {r["id"] for r in read_results(path)}:
            break  # met the forward process
        full = bool(a.full_every and a.until and k % a.full_every == 0 and pid not in full_done)
        if pid not in done and pid in cheap_failed:
            # the cheap steps already failed for this polymer (a ``--until cell`` run): the
            # whole preset fails the same way; record that row instead of rerunning it
            row = dict(cheap_failed[pid], until=a.until, from_until_run="cell")
            with shard_path(path, shard).open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"[{k + 1}/{a.n}] {pid} failed in the cell run: {row['reason']}", flush=True)
        elif pid not in done and a.exclude_unsimulable and not (
                pc := _precheck(s, a.preset))["precheck_ok"]:
            # a campaign never proposes it (exclude_unsimulable, the default): record, don't run
            row = {"id": pid, "psmiles": s, "preset": a.preset, "until": a.until,
                   "status": "excluded", **pc, "wall_s": 0.0, "finished_at": time.time()}
            with shard_path(path, shard).open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"[{k + 1}/{a.n}] {pid} excluded by the pre-check: "
                  f"{'; '.join(pc['precheck_reasons'])}", flush=True)
        elif pid not in done:
            row = run_one(pid, s, a.preset, a.until, a.threads, a.keep or full)
            with shard_path(path, shard).open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"[{k + 1}/{a.n}] {pid} {row['status']:6s} {row['wall_s']:6.1f} s "
                  f"{row.get('step', '')} {row.get('reason', '')} {s}", flush=True)
        else:
            row = latest[pid]
        if full:
            # every full_every-th polymer of the draw also runs the whole preset (resuming
            # after its cheap steps); one that failed a cheap step fails the same way in full
            if row["status"] == "ok":
                row = run_one(pid, s, a.preset, None, a.threads, a.keep)
            else:
                row = dict(row, until=None, from_until_run=a.until)
            with shard_path(full_path, shard).open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"  full {a.preset}: {pid} {row['status']:6s} {row['wall_s']:6.1f} s "
                  f"{row.get('step', '')} {row.get('reason', '')}", flush=True)
    latest = {r["id"]: r for r in read_results(path)}
    print(report(list(latest.values())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
