"""Fault drills, repeated: does anything get lost, duplicated or stuck, are processes left
behind, does a user ever see a traceback?

    python benchmarks/bench_faults.py [--quick] [--seed N] [--keep]

Real processes throughout (no mocks): real runner subprocesses on a real dask LocalCluster,
the real simulation pipeline (``smoke`` preset: LAMMPS, antechamber, PySCF), real SIGKILLs, real
SQLite files, a real read-only directory and a real file-size limit.  Drills:

- ``runner kill -9 x5``: a smoke batch; the runner is SIGKILLed five times at random moments
  (seeded) and restarted each time, then runs to the end.  Every calculation must finish once.
- ``simulation CLI kill -9 in MD + rerun``: ``python -m core.simulation run "*CC(*)c1ccccc1"
  --preset smoke --until md --workdir X`` SIGKILLed when ``X/md/production.dat`` appears, then
  rerun in the same X: it must finish with a density record, and the killed run's LAMMPS
  child must be gone within 3 s (it watches its parent every second) and none after the rerun.
- ``cancel during MD``: a calculation with a 2000-ps production is cancelled once LAMMPS runs;
  its processes must be gone within 15 s; a rerun then finishes once; the runner stops cleanly.
- ``two stores in one directory``: a.db and b.db, each with campaign "demo" and calculation 1,
  runners side by side: both finish, each in its own work dir.
- ``corrupt store`` / ``read-only store`` / ``full store``: the campaign CLI (and the runner)
  exit 2 with one line naming the file and no traceback; nothing half-written; a read-only
  store still serves status/export; after a full disk the same command succeeds once.
- ``hostile pool rows``: 100 hostile rows (control characters, a 10 MB line, bad SMILES, CSV /
  HTML injection) plus a few valid ones imported with ``python -m core.pool import``, twice:
  every hostile row reported by line, the valid ones added exactly once, no raw control
  character echoed, no traceback.
- SLURM drills (runner kill -9 with a SLURM profile, scancel of a pending job) only when the
  one-node SLURM of scripts/start_slurm.sh is up; otherwise the table says they were skipped.

Columns (all must be 0): ``lost`` results that should exist and do not, ``dup`` results stored
more than once, ``stuck`` calculations left queued/running or processes that did not finish in
time, ``leftover`` processes of the drill still alive at its end (found by an environment marker
every process started here inherits), ``tracebacks`` Python tracebacks in what the user sees
(CLI output, calculation logs and errors, runner logs).  ``checks`` counts the drill's other
assertions (exit codes, one-line messages, ...); failed ones are listed under the table.
``n/a``: the quantity cannot occur in that drill.  ``--quick`` runs every drill once on a small
batch (a few minutes on 2 cores); the full run repeats the runner and CLI drills.
Exit code 0 when every cell is 0 and every check passed, else 1.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers import (poll, reference_records, slurm_profile,  # noqa: E402
                           write_pool_csv)

#: the measured reference polymers every drill campaign starts from
BENCH_REFERENCES = ("PC", "COP", "TPX")
sys.path.insert(0, str(REPO))

PY = sys.executable
MARK_ENV = "OPTIPOLY_BENCH_FAULTS"
MARK = uuid.uuid4().hex[:12]
TB = "Traceback (most recent call last)"
PP, PMMA, PS, PVC = "*CC(*)C", "*CC(*)(C)C(=O)OC", "*CC(*)c1ccccc1", "*CC(*)Cl"
SLOW_MD = {"production_ps": 2000.0}


# --------------------------------------------------------------------------- results table
@dataclass
class Row:
    drill: str
    lost: int | str = 0
    dup: int | str = 0
    stuck: int | str = 0
    leftover: int | str = 0
    tracebacks: int | str = 0
    checks_ok: int = 0
    checks: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> bool:
        self.checks += 1
        if ok:
            self.checks_ok += 1
        else:
            self.failures.append(what)
        return bool(ok)

    def add(self, name: str, n: int) -> None:
        cur = getattr(self, name)
        setattr(self, name, (0 if cur == "n/a" else cur) + int(n))

    def clean(self) -> bool:
        cells = (self.lost, self.dup, self.stuck, self.leftover, self.tracebacks)
        return all(c in (0, "n/a") for c in cells) and self.checks_ok == self.checks


def print_table(rows: list[Row], skipped: list[tuple[str, str]]) -> None:
    head = ["drill", "lost", "dup", "stuck", "leftover", "tracebacks", "checks", "s"]
    body = [[r.drill, r.lost, r.dup, r.stuck, r.leftover, r.tracebacks,
             f"{r.checks_ok}/{r.checks}", f"{r.seconds:.0f}"] for r in rows]
    body += [[name, "-", "-", "-", "-", "-", "skipped", "0"] for name, _ in skipped]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in
                     enumerate(zip(head, widths)))
    print(line)
    print("-" * len(line))
    for b in body:
        print("  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w)
                        for i, (x, w) in enumerate(zip(b, widths))))
    total = {k: sum(getattr(r, k) for r in rows if isinstance(getattr(r, k), int))
             for k in ("lost", "dup", "stuck", "leftover", "tracebacks")}
    print("-" * len(line))
    print("total: " + ", ".join(f"{k} {v}" for k, v in total.items())
          + f", checks {sum(r.checks_ok for r in rows)}/{sum(r.checks for r in rows)} passed")
    for r in rows:
        for n in r.notes:
            print(f"  note [{r.drill}]: {n}")
        for f in r.failures:
            print(f"  FAILED [{r.drill}]: {f}")
    for name, why in skipped:
        print(f"  skipped [{name}]: {why}")


# --------------------------------------------------------------------------- processes
def env(**extra: str) -> dict:
    """Environment of every process started here: the marker (inherited by their children:
    dask workers, the pipeline process, LAMMPS, sqm ...), the repository on PYTHONPATH."""
    e = dict(os.environ)
    e[MARK_ENV] = MARK
    e["PYTHONPATH"] = str(REPO) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    e["PYTHONDONTWRITEBYTECODE"] = "1"
    e.pop("OPTIPOLY_CALC", None)
    e.update(extra)
    return e


def _ancestors() -> set[int]:
    out, pid = set(), os.getpid()
    while pid > 0 and pid not in out:
        out.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
            pid = int(stat[stat.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


def _alive(pid: int) -> bool:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return "Z" not in line.split()[1]
    except OSError:
        return False
    return False


def marked_pids(needle: str | None = None) -> list[int]:
    """Live processes carrying this run's marker (optionally also ``needle`` in their
    environment, e.g. a calculation tag or a drill's directory)."""
    want = f"{MARK_ENV}={MARK}".encode()
    skip = _ancestors()
    pids = []
    for d in Path("/proc").glob("[0-9]*"):
        pid = int(d.name)
        if pid in skip:
            continue
        try:
            envb = (d / "environ").read_bytes()
        except OSError:
            continue
        if want in envb.split(b"\0") and (needle is None or needle.encode() in envb) \
                and _alive(pid):
            pids.append(pid)
    return pids


def children_of(pids: list[int]) -> list[int]:
    out = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            stat = (d / "stat").read_bytes()
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid in pids:
            out.append(int(d.name))
    return out


def settle_leftovers(grace_s: float, needle: str | None = None) -> list[str]:
    """Wait up to ``grace_s`` for the drill's processes to end; SIGKILL and describe those
    still alive (each one counts as a leftover)."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not marked_pids(needle):
            return []
        time.sleep(0.5)
    left = marked_pids(needle)
    desc = []
    for pid in left:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
        except OSError:
            cmd = "?"
        desc.append(f"pid {pid}: {cmd}")
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return desc


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return "?"


def n_tracebacks(*texts: str | None) -> int:
    return sum((t or "").count(TB) for t in texts)


def read(path: Path) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


# --------------------------------------------------------------------------- campaigns
def make_campaign(db: Path, name: str, psmiles: list[str], *, n_workers: int = 1,
                  max_attempts: int = 3, overrides: dict | None = None):
    """A smoke campaign with one approved batch of ``psmiles``; returns (store, {psmiles: id})."""
    from core.campaign.commands import create_campaign  # noqa: PLC0415
    from core.chem.polymer import polymer_key  # noqa: PLC0415
    from core.store import Store  # noqa: PLC0415

    db.parent.mkdir(parents=True, exist_ok=True)
    pool = db.parent / "pool.csv"
    write_pool_csv(pool)
    store = Store(db)
    create_campaign(store, name, {
        "pool_source": str(pool), "preset": "smoke", "batch_size": 2,
        "experimental_in_model": True,
        "max_attempts": max_attempts, "preset_overrides": overrides,
        "cluster": {"profile": "local", "n_workers": n_workers, "threads_per_worker": 1}},
        initial=reference_records(BENCH_REFERENCES), actor="bench")
    b = store.create_batch(name, [{"psmiles": s, "key": polymer_key(s)} for s in psmiles],
                           strategy="ehvi", actor="bench")
    assert store.approve_batch(b["id"], actor="bench")["approved"]
    calcs = store.calculations(name).set_index("psmiles")["id"].to_dict()
    return store, {s: int(c) for s, c in calcs.items()}


def start_runner(db: Path, name: str, log: Path, *, idle_exit: bool = True,
                 poll: float = 0.3) -> subprocess.Popen:
    cmd = [PY, "-m", "core.runner", "--campaign", name, "--db", str(db), "--poll", str(poll)]
    if idle_exit:
        cmd.append("--exit-when-idle")
    # the drill's directory in the environment: its processes (dask workers, pipelines,
    # LAMMPS, SLURM jobs) are found by it at the end
    return subprocess.Popen(cmd, cwd=REPO, env=env(OPTIPOLY_BENCH_DRILL=str(db.parent)),
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def score_results(row: Row, store, name: str, calc_ids: list[int], *,
                  expect_done: bool = True) -> None:
    """lost / dup / stuck of a campaign's calculations, tracebacks in their logs and errors."""
    obs = store.observations(name)
    per_calc = obs["calculation_id"].dropna().astype(int).value_counts().to_dict()
    for cid in calc_ids:
        c = store.get_calculation(cid)
        n = int(per_calc.get(cid, 0))
        row.add("dup", max(0, n - 1))
        if c["status"] in ("queued", "running"):
            row.add("stuck", 1)
            row.notes.append(f"calculation {cid} still {c['status']} (step {c['step']})")
        elif expect_done and (c["status"] != "done" or n == 0):
            row.add("lost", 1)
            row.notes.append(f"calculation {cid} ended {c['status']}: {c['error_type']}: "
                             f"{(c['error_message'] or '')[:200]}")
        row.add("tracebacks", n_tracebacks(c.get("error_message"),
                                           read(Path(c["log_path"])) if c.get("log_path")
                                           else ""))


# --------------------------------------------------------------------------- drills
def drill_runner_kills(root: Path, rng: random.Random, *, quick: bool, n_kills: int = 5,
                       rounds: int = 1) -> Row:
    row = Row(f"runner kill -9 x{n_kills}" + (f" (x{rounds} rounds)" if rounds > 1 else ""))
    for rnd in range(rounds):
        d = root / f"runner-kill-{rnd}"
        polys = [PP, PMMA, PVC, "*CC(*)F", "*CC(*)C#N", "*CCS*"] + \
            ([] if quick else [PS, "*CC(*)CC"])
        store, calcs = make_campaign(d / "k.db", "kill", polys, n_workers=1 if quick else 2)
        log = d / "runner.log"
        landed = []
        for k in range(n_kills):
            r = start_runner(d / "k.db", "kill", log)
            at = rng.uniform(0.5, 10.0 if quick else 15.0)
            t0 = time.monotonic()
            while time.monotonic() - t0 < at and r.poll() is None:
                time.sleep(0.05)
            if r.poll() is not None:
                row.notes.append(f"round {rnd}: the batch finished before kill {k + 1}")
                break
            steps = sorted(f"{c['id']}:{c['status']}/{c['step']}" for c in
                           (store.get_calculation(i) for i in calcs.values()))
            seen = len(marked_pids(str(d)))
            if k == 0:  # the leftover scan is not blind: it sees the runner (and workers)
                row.check(seen >= 1, f"round {rnd}: the drill's processes are visible to the "
                                     f"leftover scan ({seen} seen)")
            r.send_signal(signal.SIGKILL)
            r.wait(30)
            landed.append(f"{at:.1f}s [{' '.join(steps)}]")
        row.notes.append(f"round {rnd}: {len(landed)} kills at " + "; ".join(landed))
        row.check(len(landed) == n_kills, f"round {rnd}: all {n_kills} kills landed during the "
                                          f"batch (got {len(landed)})")
        final = start_runner(d / "k.db", "kill", log)
        try:
            code = final.wait(900)
        except subprocess.TimeoutExpired:
            final.kill()
            final.wait(30)
            code = None
            row.add("stuck", 1)
            row.notes.append(f"round {rnd}: the final runner did not finish in 900 s")
        row.check(code == 0, f"round {rnd}: final runner exit code {code} (want 0)")
        score_results(row, store, "kill", list(calcs.values()))
        attempts = {c: store.get_calculation(c)["attempt"] for c in calcs.values()}
        row.check(all(a == 1 for a in attempts.values()),
                  f"round {rnd}: interrupted attempts are not charged (attempts {attempts})")
        row.add("tracebacks", n_tracebacks(read(log)))
        row.add("leftover", len(left := settle_leftovers(60, str(d))))
        row.notes += [f"leftover {x}" for x in left]
    return row


def drill_sim_cli_kill(root: Path, *, repeats: int = 1) -> Row:
    row = Row("simulation CLI kill -9 in MD + rerun" + (f" (x{repeats})" if repeats > 1
                                                        else ""))
    row.dup = "n/a"
    for i in range(repeats):
        x = root / f"sim-{i}"
        cmd = [PY, "-m", "core.simulation", "run", PS, "--preset", "smoke", "--until", "md",
               "--workdir", str(x)]
        err1 = root / f"sim-{i}.first.err"
        p = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.DEVNULL,
                             stderr=open(err1, "wb"))
        kids: list[int] = []
        prod = x / "md" / "production.dat"
        hit = poll(lambda: prod.exists() or p.poll() is not None, 600, interval=0.01)
        if not row.check(bool(hit) and p.poll() is None,
                         f"run {i}: killed during MD (production.dat appeared while running; "
                         f"exit {p.poll()})"):
            p.kill()
        else:
            kids = children_of([p.pid])
            p.send_signal(signal.SIGKILL)
        p.wait(30)
        # the LAMMPS child checks every second whether its parent lives (core.simulation.md
        # _watch_parent) and holds the work dir's LAMMPS lock until it is gone: give it 3 s
        for _ in range(30):
            orphans = {k: _cmdline(k) for k in kids + children_of(kids) if _alive(k)}
            if not orphans:
                break
            time.sleep(0.1)
        if orphans:
            row.notes.append(f"run {i}: {len(orphans)} process(es) of the killed CLI still "
                             f"ran 3 s after it: "
                             + "; ".join(f"pid {k}: {c}" for k, c in orphans.items()))
        t0 = time.monotonic()
        try:
            res = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True,
                                 timeout=900)
        except subprocess.TimeoutExpired as exc:
            row.add("stuck", 1)
            row.notes.append(f"run {i}: the rerun did not finish in 900 s")
            res = subprocess.CompletedProcess(cmd, None, exc.stdout or "", exc.stderr or "")
        row.notes.append(f"run {i}: rerun exit {res.returncode} in {time.monotonic() - t0:.0f} s")
        try:
            rec = json.loads(res.stdout or "null")
        except ValueError:
            rec = None
        ok = res.returncode == 0 and isinstance(rec, dict) and rec.get("density")
        if not ok:
            row.add("lost", 1)
            row.notes.append(f"run {i}: no density record: {(res.stderr or '')[-300:]}")
        row.check("already done" in (res.stderr or "") or "resum" in (res.stderr or "").lower(),
                  f"run {i}: the rerun resumed after the finished steps")
        row.add("tracebacks", n_tracebacks(read(err1), res.stderr, res.stdout))
        left = settle_leftovers(5, None)
        left_pids = {int(s.split()[1].rstrip(":")) for s in left}
        row.add("leftover", len(set(orphans) | left_pids))
        row.notes += [f"run {i}: leftover after the rerun {s}" for s in left]
    return row


def drill_cancel(root: Path) -> Row:
    from core.execution.task import CALC_ENV, calc_tag, read_progress  # noqa: PLC0415
    row = Row("cancel during MD, then rerun")
    d = root / "cancel"
    store, calcs = make_campaign(d / "c.db", "cx", [PP], overrides=SLOW_MD)
    cid = calcs[PP]
    log = d / "runner.log"
    r = start_runner(d / "c.db", "cx", log, idle_exit=False)
    try:
        def in_md():
            c = store.get_calculation(cid)
            p = read_progress(c["workdir"]) if c.get("workdir") else None
            return p if p and p.get("step") == "md" else None
        prog = poll(in_md, 600)
        if not row.check(prog is not None, "the calculation reached the md step"):
            return row
        tag = calc_tag({"calc_id": cid, "workdir": store.get_calculation(cid)["workdir"]})
        needle = f"{CALC_ENV}={tag}"

        def lammps_running():
            return any(b"core.simulation.md" in Path(f"/proc/{p}/cmdline").read_bytes()
                       for p in marked_pids(needle) if Path(f"/proc/{p}").exists())
        row.check(poll(lammps_running, 300) is not None, "LAMMPS started")
        store.request_cancel(cid, actor="bench")
        t0 = time.monotonic()
        done = poll(lambda: not marked_pids(needle) and
                        store.get_calculation(cid)["status"] == "cancelled", 15)
        took = time.monotonic() - t0
        if not done:
            row.add("stuck", 1)
        row.notes.append(f"cancelled in {took:.1f} s")
        row.add("leftover", len(marked_pids(needle)))
        row.check(_alive(prog["pid"]), "the dask worker survived the cancel")
        # the rerun (without the long production) finishes exactly once
        store.update_config("cx", {"preset_overrides": None}, actor="bench")
        store.request_retry(cid, mode="rerun", actor="bench")
        fin = poll(lambda: store.get_calculation(cid)["status"] in ("done", "failed"), 600)
        row.check(fin is not None, "the rerun finished")
        r.send_signal(signal.SIGTERM)
        try:
            row.check(r.wait(60) == 0, "the runner stopped cleanly on SIGTERM")
        except subprocess.TimeoutExpired:
            row.add("stuck", 1)
            row.notes.append("the runner did not stop within 60 s of SIGTERM")
    finally:
        if r.poll() is None:
            r.kill()
            r.wait(30)
    score_results(row, store, "cx", [cid])
    row.add("tracebacks", n_tracebacks(read(log)))
    row.add("leftover", len(left := settle_leftovers(30, str(d))))
    row.notes += [f"leftover {x}" for x in left]
    return row


def drill_two_stores(root: Path) -> Row:
    from core.execution.runner import runner_lock_path, runs_dir_for  # noqa: PLC0415
    row = Row("two stores in one directory")
    d = root / "two-stores"
    stores = []
    for name in ("a", "b"):
        store, calcs = make_campaign(d / f"{name}.db", "demo", [PP])
        stores.append((store, calcs[PP]))
    procs = [start_runner(s.path, "demo", d / f"runner-{s.path.stem}.log") for s, _ in stores]
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(900))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(30)
            codes.append(None)
            row.add("stuck", 1)
    row.check(codes == [0, 0], f"both runners exit 0 (got {codes})")
    wds = []
    for store, cid in stores:
        score_results(row, store, "demo", [cid])
        wd = store.get_calculation(cid)["workdir"]
        wds.append(wd)
        row.check(bool(wd) and Path(wd).is_relative_to(runs_dir_for(store, 1, None)),
                  f"{store.path.name}: work dir under its own store key")
        row.add("tracebacks", n_tracebacks(read(d / f"runner-{store.path.stem}.log")))
    row.check(len(set(wds)) == 2, f"distinct work dirs {wds}")
    row.check(runner_lock_path(stores[0][0], 1) != runner_lock_path(stores[1][0], 1),
              "distinct runner locks")
    row.add("leftover", len(left := settle_leftovers(30, str(d))))
    row.notes += [f"leftover {x}" for x in left]
    return row


def _good_db(path: Path, n_obs: int = 3) -> Path:
    from core.store import Store  # noqa: PLC0415
    recs = [("PMMA", PMMA, 1.4914, 57.4), ("PS", PS, 1.592, 30.9), ("PP", PP, 1.49, 56.0)]
    s = Store(path)
    s.create_campaign("a", {"preset": "smoke"}, actor="bench")
    for i in range(n_obs):
        name, ps, n, v = recs[i % 3]
        s.add_observation("a", ps, {"n_D": n, "abbe_number": v}, source="initial",
                          name=f"{name}-{i}", actor="bench")
    s.close()
    return path


def _cli(row: Row, args: list[str], *, db: Path | None = None, wrap: list[str] | None = None,
         preexec: Callable | None = None, module: str = "core.campaign",
         timeout: float = 180) -> subprocess.CompletedProcess:
    e = env(**({"OPTIPOLY_DB": str(db)} if db is not None else {}))
    cmd = [*(wrap or []), PY, "-m", module, *args]
    try:
        res = subprocess.run(cmd, cwd=REPO, env=e, capture_output=True, text=True,
                             timeout=timeout, preexec_fn=preexec)
    except subprocess.TimeoutExpired as exc:
        row.add("stuck", 1)
        row.notes.append(f"{' '.join(args)}: no answer in {timeout:.0f} s")
        return subprocess.CompletedProcess(cmd, None, exc.stdout or "", exc.stderr or "")
    row.add("tracebacks", n_tracebacks(res.stdout, res.stderr))
    return res


def _one_line(res: subprocess.CompletedProcess, path: Path) -> bool:
    lines = [ln for ln in (res.stderr or "").splitlines() if ln.strip()]
    return len(lines) == 1 and str(path) in lines[0]


def drill_corrupt_store(root: Path) -> Row:
    row = Row("corrupt store (4 kinds x 4 commands)")
    row.dup = "n/a"
    d = root / "corrupt"
    d.mkdir(parents=True)
    good = _good_db(d / "good.db").read_bytes()
    kinds = {"garbage": bytes(range(256)) * 20, "truncated": good[:3000],
             "header-only": good[:100], "directory": None}
    for kind, content in kinds.items():
        p = d / f"{kind}.db"
        if content is None:
            p.mkdir()
        else:
            p.write_bytes(content)
        before = sorted(x.name for x in d.iterdir())
        for args in (["status", "a"], ["export", "a", "--out", str(d / f"exp-{kind}")],
                     ["new", "b", "--preset", "smoke"]):
            res = _cli(row, args, db=p)
            row.check(res.returncode == 2 and _one_line(res, p),
                      f"{kind}: campaign {args[0]} exits 2 with one line naming the file "
                      f"(exit {res.returncode}, stderr {res.stderr.strip()[:160]!r})")
        res = _cli(row, ["--campaign", "a", "--db", str(p)], module="core.runner")
        row.check(res.returncode == 2 and _one_line(res, p),
                  f"{kind}: the runner exits 2 with one line (exit {res.returncode}, "
                  f"stderr {res.stderr.strip()[:160]!r})")
        if content is not None:
            row.check(p.read_bytes() == content, f"{kind}: the file was not modified")
        row.check(sorted(x.name for x in d.iterdir()) == before,
                  f"{kind}: no -wal/-shm/export files left beside it")
    row.add("leftover", len(settle_leftovers(5, None)))
    return row


def _unprivileged() -> list[str] | None:
    """Root ignores file permissions: run without the capabilities that let it."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"] \
        if shutil.which("setpriv") else None


def drill_read_only_store(root: Path) -> Row:
    from core.store import Store  # noqa: PLC0415
    row = Row("read-only store")
    wrap = _unprivileged()
    if wrap is None:
        row.notes.append("running as root without setpriv: cannot make a store read-only")
        row.check(False, "setpriv available")
        return row
    d = root / "read-only" / "var"
    d.mkdir(parents=True)
    p = _good_db(d / "optipoly.db")
    before = p.read_bytes()
    p.chmod(0o444)
    d.chmod(0o555)
    try:
        res = _cli(row, ["status", "a"], db=p, wrap=wrap)
        row.check(res.returncode == 0 and "3 observation(s)" in res.stdout,
                  f"status works on a read-only store (exit {res.returncode})")
        exp = root / "read-only" / "exp"
        res = _cli(row, ["export", "a", "--out", str(exp)], db=p, wrap=wrap)
        row.check(res.returncode == 0, f"export works on a read-only store (exit "
                                       f"{res.returncode})")
        n_exp = max(0, len(read(exp / "observations.csv").splitlines()) - 1)
        row.add("lost", max(0, 3 - n_exp))
        row.add("dup", max(0, n_exp - 3))
        for args in (["new", "b", "--preset", "smoke"], ["import-measurements", "a", "--csv",
                                                         str(root / "none.csv")]):
            res = _cli(row, args, db=p, wrap=wrap)
            row.check(res.returncode == 2 and _one_line(res, p) or
                      (args[0] == "import-measurements" and res.returncode == 2 and
                       len(res.stderr.strip().splitlines()) == 1),
                      f"{args[0]} exits 2 with one line (exit {res.returncode}, stderr "
                      f"{res.stderr.strip()[:160]!r})")
        res = _cli(row, ["--campaign", "a", "--db", str(p)], module="core.runner", wrap=wrap)
        row.check(res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1,
                  f"the runner exits 2 with one line on a read-only store (exit "
                  f"{res.returncode}, stderr {res.stderr.strip()[:160]!r})")
        row.check(p.read_bytes() == before, "the read-only store is unchanged")
        row.check(sorted(x.name for x in d.iterdir()) == ["optipoly.db"],
                  "nothing written beside it")
    finally:
        d.chmod(0o755)
        p.chmod(0o644)
    s = Store(p)
    row.add("lost", max(0, 3 - len(s.observations("a"))))
    s.close()
    row.add("leftover", len(settle_leftovers(5, None)))
    return row


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (32768, 32768))


def drill_full_store(root: Path) -> Row:
    import pandas as pd  # noqa: PLC0415

    from core.store import Store  # noqa: PLC0415
    row = Row("full store (disk full during new)")
    d = root / "full"
    d.mkdir(parents=True)
    db = _good_db(d / "f.db", n_obs=0)
    init = d / "init.csv"
    recs = [("PMMA", PMMA, 1.4914, 57.4), ("PS", PS, 1.592, 30.9), ("PP", PP, 1.49, 56.0)]
    pd.DataFrame([{"name": f"{recs[i % 3][0]}-{i}", "psmiles": recs[i % 3][1],
                   "n_D": recs[i % 3][2], "abbe_number": recs[i % 3][3],
                   "provenance": "measured " + "x" * 400} for i in range(60)]) \
        .to_csv(init, index=False)
    args = ["--db", str(db), "new", "big", "--preset", "smoke", "--initial", str(init)]
    res = _cli(row, args, preexec=_limit_file_size)
    row.check(res.returncode == 2 and _one_line(res, db) and "disk" in res.stderr,
              f"new on a full disk exits 2 with one line saying so (exit {res.returncode}, "
              f"stderr {res.stderr.strip()[:160]!r})")
    s = Store(db)
    row.check(list(s.list_campaigns()["name"]) == ["a"], "no half-made campaign")
    s.close()
    res = _cli(row, args)
    row.check(res.returncode == 0, f"the same command succeeds with space (exit "
                                   f"{res.returncode}: {res.stderr.strip()[:160]!r})")
    s = Store(db)
    n = len(s.observations("big")) if "big" in set(s.list_campaigns()["name"]) else 0
    s.close()
    row.add("lost", max(0, 60 - n))
    row.add("dup", max(0, n - 60))
    row.add("leftover", len(settle_leftovers(5, None)))
    return row


CONTROL = ["\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b[31m", "\x1b]0;pwned\x07",
           "\x7f", "\x85", "\u2028", "\u2029", "\u00a0", "\u200b", "\u200e", "\u202e",
           "\ufeff", "\ufffd", "\x9b", "\U0001f600"]
BAD_SMILES = ["*CC", "CCC", "***", "*C(*)(*)C", "*[Xx]C*", "*CC(*", "*C1CC*", "not a smiles",
              "*C(=O)(=O)(=O)*", "*[C@@H](*)[C@", "*CC(*)c1ccccc", "*c1cc*", "*[Na+]*",
              "*C" + "C" * 5000 + "*", "*CC(*)" + "(" * 300, "'; DROP TABLE pool; --",
              "=cmd|' /C calc'!A0", "<script>alert(1)</script>", "../../../../etc/passwd",
              "${jndi:ldap://x/a}", "*C%99C*", "*[2H]C([2H])(*)", "*C#C#C*", "*[C]*",
              "*C=*", "**", "*.*", "*C.C*", "*[*]C*", "*CC(*)C\\", "*CC(*)C/"]
VALID = ["*CC(*)c1ccc(S(=O)(=O)C(F)(F)F)cc1", "*CC(*)C(=O)OCC(Br)Br",
         "*CC(*)c1ccc(SC2CCCCC2)cc1", "*CC(*)C(=O)OCCSc1ccc(Cl)cc1", "*CC(*)OC(=O)CCSCCSC"]


def hostile_rows() -> list[str]:
    """100 hostile rows: control / invisible characters inside an otherwise valid polymer
    SMILES, a 10 MB line, bad SMILES and injection strings."""
    rows = []
    for i, c in enumerate(CONTROL):
        rows.append(f"*CC(*){c}C" if i % 2 else f"*C{c}C(*)C")
        rows.append(f"{c}*CC(*)c1ccccc1" if c not in ("\ufeff",) else f"*CC(*)c1cc{c}ccc1")
    rows.append("*C" + "C" * (10 * 1024 * 1024) + "*")  # a 10 MB line
    for s in BAD_SMILES:
        rows.append(s)
    k = 0
    while len(rows) < 100:  # bad SMILES with a control character as well
        rows.append(BAD_SMILES[k % len(BAD_SMILES)][:40] + CONTROL[k % len(CONTROL)])
        k += 1
    return rows[:100]


def drill_hostile_pool(root: Path) -> Row:
    from core.chem.polymer import canonical_psmiles, polymer_key  # noqa: PLC0415
    from core.pool import DEFAULT_POOL_DIR, read_pool  # noqa: PLC0415
    row = Row("hostile pool rows (100) via CLI, x2")
    d = root / "pool"
    d.mkdir(parents=True)
    bad = hostile_rows()
    lines = VALID[:3] + bad[:50] + VALID[3:] + bad[50:]
    f = d / "candidates.txt"
    with open(f, "w", encoding="utf-8", newline="") as fh:
        fh.write("\n".join(lines) + "\n")
    valid_lines = {i + 1 for i, s in enumerate(lines) if s in VALID}
    base = read_pool(DEFAULT_POOL_DIR)
    base_keys = {polymer_key(canonical_psmiles(s)) for s in base["psmiles"]}
    want = {polymer_key(canonical_psmiles(s)) for s in VALID} - base_keys
    out = d / "pool-out"
    row.notes.append(f"{len(want)} of the {len(VALID)} valid rows are new to the base pool; "
                     f"{len(lines)} rows, the longest {max(map(len, lines)):,} characters")
    for attempt in (1, 2):
        res = _cli(row, ["import", str(f), "--out", str(out)], module="core.pool", timeout=600)
        row.check(res.returncode == 0, f"import {attempt}: exit {res.returncode} "
                                       f"({res.stderr.strip()[-200:]!r})")
        reported = {int(ln.split(":", 1)[0].split()[1]) for ln in res.stdout.splitlines()
                    if ln.startswith("line ") and ": invalid:" in ln}
        hostile_lines = set(range(1, len(lines) + 1)) - valid_lines
        row.check(reported == hostile_lines,
                  f"import {attempt}: every hostile row reported invalid by line "
                  f"({len(reported & hostile_lines)}/{len(hostile_lines)}; unexpected "
                  f"{sorted(reported - hostile_lines)[:5]}, missing "
                  f"{sorted(hostile_lines - reported)[:5]})")
        raw = [c for c in CONTROL if c not in ("\ufffd", "\U0001f600", "\u00a0")]
        echoed = sorted({repr(c) for c in raw if c and c in (res.stdout + res.stderr)})
        row.check(not echoed, f"import {attempt}: no raw control character echoed "
                              f"({', '.join(echoed)})")
        row.check(len(res.stdout) < 200_000, f"import {attempt}: the report stays short "
                                             f"({len(res.stdout)} characters)")
        if attempt == 2:
            row.check(" 0 added" in res.stdout or "nothing to add" in res.stdout,
                      "import 2: nothing added again")
    pool = read_pool(out) if (out / "descriptors.npz").exists() else {"psmiles": []}
    keys = [polymer_key(canonical_psmiles(s)) for s in pool["psmiles"]]
    row.add("lost", len(want - set(keys)))
    row.add("dup", len(keys) - len(set(keys)))
    row.check(len(keys) == len(base_keys) + len(want),
              f"pool size {len(keys)} = base {len(base_keys)} + {len(want)} new")
    row.add("leftover", len(settle_leftovers(5, None)))
    return row


def slurm_up() -> tuple[bool, str]:
    conf = os.environ.get("SLURM_CONF") or "/tmp/optipoly-slurm/slurm.conf"
    if shutil.which("sinfo") is None:
        return False, "SLURM client tools not installed"
    if not Path(conf).is_file():
        return False, f"SLURM not up (no {conf}; start it with scripts/start_slurm.sh)"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], env={**os.environ, "SLURM_CONF": conf},
                             capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return False, "SLURM not up (sinfo timed out)"
    if out.returncode != 0 or not any(s.rstrip("*") in ("idle", "mix", "alloc")
                                      for s in out.stdout.split()):
        return False, f"SLURM not up (sinfo rc {out.returncode}: {out.stderr.strip()[:100]})"
    return True, conf


def _slurm_campaign(d: Path, name: str, psmiles: str, max_attempts: int = 3):
    from core.campaign.commands import create_campaign  # noqa: PLC0415
    from core.chem.polymer import polymer_key  # noqa: PLC0415
    from core.store import Store  # noqa: PLC0415
    d.mkdir(parents=True)
    pool = d / "pool.csv"
    write_pool_csv(pool)
    store = Store(d / "s.db")
    create_campaign(store, name, {
        "pool_source": str(pool), "preset": "smoke", "batch_size": 1,
        "experimental_in_model": True, "max_attempts": max_attempts,
        "cluster": slurm_profile(d / "slurm-logs", scheduler_host="127.0.0.1")},
        initial=reference_records(BENCH_REFERENCES), actor="bench")
    b = store.create_batch(name, [{"psmiles": psmiles, "key": polymer_key(psmiles)}],
                           strategy="ehvi", actor="bench")
    store.approve_batch(b["id"], actor="bench")
    return store, int(store.calculations(name)["id"].iloc[0])


def drill_slurm_scancel(root: Path, conf: str) -> Row:
    """``scancel`` of the SLURM job running a calculation (in its md step): the attempt is
    charged with the scheduler's verdict and retried; the calculation finishes once."""
    row = Row("SLURM: scancel of a running job")
    d = root / "slurm-scancel"
    store, cid = _slurm_campaign(d, "sc", PS)
    log = d / "runner.log"
    os.environ["SLURM_CONF"] = conf
    r = start_runner(d / "s.db", "sc", log)
    try:
        got = poll(lambda: (lambda c: c if c["step"] in ("md", "qm") and c["job_id"]
                                else None)(store.get_calculation(cid)), 600, interval=0.1)
        if row.check(got is not None, "the calculation reached md/qm in a SLURM job"):
            subprocess.run(["scancel", str(got["job_id"])], env={**os.environ,
                                                                 "SLURM_CONF": conf},
                           capture_output=True, timeout=30)
            row.notes.append(f"scancel of job {got['job_id']} in step {got['step']}")
        try:
            row.check(r.wait(900) == 0, "the runner finished the batch")
        except subprocess.TimeoutExpired:
            row.add("stuck", 1)
    finally:
        if r.poll() is None:
            r.kill()
            r.wait(30)
    calc = store.get_calculation(cid)
    row.check(calc["attempt"] == 2, f"the cancelled attempt was charged and retried "
                                    f"(attempt {calc['attempt']})")
    a = store.audit_log("sc")
    fails = [x for x in a[a["action"] == "attempt_failed"]["details"]]
    row.notes += [f"attempt failed: {f.get('error_type')}: {str(f.get('error_message'))[:160]}"
                  for f in fails]
    score_results(row, store, "sc", [cid])
    row.add("tracebacks", n_tracebacks(read(log)))
    row.add("leftover", len(settle_leftovers(60, str(d))))
    return row


def drill_slurm_runner_kill(root: Path, conf: str) -> Row:
    """A SLURM campaign; the runner is SIGKILLed while the job runs, then restarted: the
    orphaned job is cancelled and the calculation finishes once."""
    row = Row("SLURM: runner kill -9 during a job")
    d = root / "slurm"
    store, cid = _slurm_campaign(d, "sl", PS)
    log = d / "runner.log"
    os.environ["SLURM_CONF"] = conf
    r = start_runner(d / "s.db", "sl", log)
    got = poll(lambda: store.get_calculation(cid)["step"] not in (None, "submitted"), 600)
    row.check(got is not None, "the SLURM job started the calculation")
    r.send_signal(signal.SIGKILL)
    r.wait(30)
    r2 = start_runner(d / "s.db", "sl", log)
    try:
        row.check(r2.wait(900) == 0, "the restarted runner finished")
    except subprocess.TimeoutExpired:
        r2.kill()
        row.add("stuck", 1)
    calc = store.get_calculation(cid)
    row.check(bool(calc.get("job_id")), f"the calculation ran in SLURM job {calc.get('job_id')}")
    wlogs = " ".join(read(p) for p in (d / "slurm-logs").glob("*"))
    row.check("tls://" in wlogs, "the SLURM worker talked TLS to the scheduler")
    score_results(row, store, "sl", [cid])
    row.add("tracebacks", n_tracebacks(read(log)))
    row.add("leftover", len(settle_leftovers(60, str(d))))
    return row


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="each drill once, small batches")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random kill moments")
    ap.add_argument("--keep", action="store_true", help="keep the drill directories")
    ap.add_argument("--only", default=None, help="comma-separated drill names (substring)")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="bench_faults-"))
    print(f"bench_faults: {'quick' if args.quick else 'full'} run, seed {args.seed}, "
          f"work in {root}, marker {MARK_ENV}={MARK}", flush=True)
    q = args.quick
    drills: list[tuple[str, Callable[[], Row]]] = [
        ("runner-kill", lambda: drill_runner_kills(root, rng, quick=q, rounds=1 if q else 3)),
        ("sim-cli-kill", lambda: drill_sim_cli_kill(root, repeats=1 if q else 3)),
        ("cancel", lambda: drill_cancel(root)),
        ("two-stores", lambda: drill_two_stores(root)),
        ("corrupt-store", lambda: drill_corrupt_store(root)),
        ("read-only-store", lambda: drill_read_only_store(root)),
        ("full-store", lambda: drill_full_store(root)),
        ("hostile-pool", lambda: drill_hostile_pool(root)),
    ]
    skipped: list[tuple[str, str]] = []
    up, why = slurm_up()
    if up:
        drills.append(("slurm-runner-kill", lambda: drill_slurm_runner_kill(root, why)))
        drills.append(("slurm-scancel", lambda: drill_slurm_scancel(root, why)))
    else:
        skipped.append(("SLURM drills (runner kill -9, scancel)", why))
    if args.only:
        want = args.only.split(",")
        drills = [(n, f) for n, f in drills if any(w in n for w in want)]
    rows = []
    try:
        for name, fn in drills:
            t0 = time.monotonic()
            print(f"[{time.strftime('%H:%M:%S')}] drill {name} ...", flush=True)
            try:
                row = fn()
            except Exception as exc:  # noqa: BLE001 (a drill that breaks is a failed row)
                row = Row(name)
                row.check(False, f"the drill itself raised {type(exc).__name__}: {exc}")
                import traceback  # noqa: PLC0415
                traceback.print_exc()
            row.seconds = time.monotonic() - t0
            rows.append(row)
            print(f"[{time.strftime('%H:%M:%S')}]   {row.drill}: lost {row.lost}, dup {row.dup}, "
                  f"stuck {row.stuck}, leftover {row.leftover}, tracebacks {row.tracebacks}, "
                  f"checks {row.checks_ok}/{row.checks} ({row.seconds:.0f} s)", flush=True)
    finally:
        left = settle_leftovers(10, None)
        if left:
            print(f"killed {len(left)} process(es) left at the end: {left}")
        if not args.keep:
            for dirpath, dirnames, _ in os.walk(root):
                for dn in dirnames:
                    try:
                        os.chmod(os.path.join(dirpath, dn), 0o755)
                    except OSError:
                        pass
            shutil.rmtree(root, ignore_errors=True)
    print()
    print_table(rows, skipped)
    return 0 if all(r.clean() for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
