"""Helpers shared by the tests and ``benchmarks/bench_faults.py`` (one copy of each)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest

from core.simulation.presets import get_preset
from core.store import Store
from core.execution.task import read_progress

REPO = Path(__file__).resolve().parents[1]
#: polymers the runner tests simulate (polypropylene, PMMA, polystyrene, PVC)
PP, PMMA, PS, PVC = "*CC(*)C", "*CC(*)(C)C(=O)OC", "*CC(*)c1ccccc1", "*CC(*)Cl"
#: preset overrides that make the MD step long enough to interrupt
SLOW_MD = {"production_ps": 2000.0}
#: a small candidate pool of simple polymers (CSV pools of test campaigns)
POOL = ["*CC*", "*CC(*)C", "*CC(*)CC", "*CC(*)Cl", "*CC(*)F", "*CC(F)(F)*", "*CC(*)C#N",
        "*CC(*)c1ccccc1", "*CC(*)(C)C(=O)OC", "*CC(*)C(=O)OC", "*CCO*", "*CCS*", "*CCCS*",
        "*CCS(=O)(=O)*", "*c1ccc(S*)cc1", "*c1ccc(O*)cc1", "*CC(*)OC(C)=O", "*CC(*)c1ccncc1",
        "*CCCCO*", "*CC(C)(*)c1ccccc1", "*CCSCCS(=O)(=O)*", "*CC(*)C(=O)SC"]


def reference_records(abbrevs=("PMMA", "PS", "PC", "COP", "TPX", "CHDT-DVS")) -> list[dict]:
    """Measured n_D, ν_D of shipped reference polymers as initial observations."""
    ref = pd.read_csv(REPO / "assets" / "reference_polymers.csv", comment="#")
    ref = ref.set_index("abbreviation").loc[list(abbrevs)].reset_index()
    return [{"name": r.abbreviation, "psmiles": r.psmiles,
             "values": {"n_D": float(r.n_D), "abbe_number": float(r.abbe_number)},
             "provenance": {"source": r.source, "kind": "experimental"}}
            for r in ref.itertuples()]


def write_pool_csv(path: Path, psmiles: list[str] = POOL) -> Path:
    """A CSV pool (``id,psmiles``) of ``psmiles`` with ids T0, T1, …; returns ``path``."""
    path.write_text("id,psmiles\n" + "\n".join(f"T{i},{s}" for i, s in enumerate(psmiles)))
    return path


def slurm_profile(log_dir: Path, **extra: Any) -> dict:
    """The cluster profile of the one-node SLURM of ``scripts/start_slurm.sh``."""
    return {"profile": "slurm", "cores": 1, "memory": "2GB", "walltime": "00:20:00",
            "queue": "debug", "adapt_minimum": 0, "adapt_maximum": 1,
            "log_directory": str(log_dir), **extra, "job_script_prologue": [f"cd {REPO}"]}


def poll(cond: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """``cond()``'s first truthy value within ``timeout`` seconds, else None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    return None


def wait_for(cond: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Like :func:`poll`, but a timeout fails the test naming ``what`` was awaited."""
    v = poll(cond, timeout, interval)
    if not v:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")
    return v


def workdir_of(store: Store, calc_id: int) -> Path | None:
    """The calculation's work dir once the runner assigned one."""
    wd = store.get_calculation(calc_id)["workdir"]
    return Path(wd) if wd else None


def progress_at(store: Store, calc_id: int, step: str, attempt: int) -> Callable[[], Any]:
    """A condition for :func:`wait_for`: the calculation's progress record is at ``step`` of
    ``attempt`` (returns the record)."""
    def check():
        wd = workdir_of(store, calc_id)
        p = read_progress(wd) if wd else None
        return p if p and p["step"] == step and p["attempt"] == attempt else None
    return check


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in fh)
    except OSError:
        return False


def start_runner(store: Store, name: str, log: Path, *, idle_exit: bool = True) -> subprocess.Popen:
    """``python -m core.runner`` for a local campaign (polls every 0.3 s), logging to ``log``."""
    cmd = [sys.executable, "-m", "core.runner", "--campaign", name, "--db", str(store.path),
           "--poll", "0.3"] + (["--exit-when-idle"] if idle_exit else [])
    fh = open(log, "ab")
    return subprocess.Popen(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)


def run_until_cycles_done(store: Store, name: str, n: int, log: Path, timeout: float) -> None:
    """Run the local runner of an auto-approving campaign until cycles 1..n are done, then stop
    it with SIGTERM (it must exit 0); the runner is killed if anything fails on the way."""
    import signal  # noqa: PLC0415

    r = start_runner(store, name, log, idle_exit=False)
    try:
        wait_for(lambda: (lambda c: len(c) >= n and c.iloc[n - 1]["status"] == "done")(
            store.cycles(name).set_index("number").loc[1:]), timeout, f"{n} automatic cycles")
        r.send_signal(signal.SIGTERM)
        assert r.wait(60) == 0
    finally:
        if r.poll() is None:
            r.kill()


def slurm_env() -> dict:
    """The environment for the one-node SLURM of ``scripts/start_slurm.sh``; skips the test
    when it is not up."""
    conf = os.environ.get("SLURM_CONF") or "/tmp/optipoly-slurm/slurm.conf"
    if shutil.which("sinfo") is None:
        pytest.skip("SLURM client tools (sinfo) not installed: apt-get install slurm-wlm munge")
    if not Path(conf).is_file():
        pytest.skip(f"no SLURM config at {conf}: run scripts/start_slurm.sh first")
    env = {**os.environ, "SLURM_CONF": conf}
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True,
                             text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.skip("sinfo timed out: slurmctld not responding (run scripts/start_slurm.sh)")
    states = out.stdout.split()
    if out.returncode != 0 or not any(s.rstrip("*") in ("idle", "mix", "alloc") for s in states):
        pytest.skip(f"SLURM daemons not up (sinfo rc {out.returncode}, states {states}, "
                    f"{out.stderr.strip()[:200]}); run scripts/start_slurm.sh")
    return env


def slurm_runner(store: Store, name: str, env: dict, log: Path) -> subprocess.Popen:
    """``python -m core.runner`` for a SLURM campaign (exits when idle), logging to ``log``."""
    return subprocess.Popen([sys.executable, "-m", "core.runner", "--campaign", name, "--db",
                             str(store.path), "--poll", "0.5", "--exit-when-idle"], cwd=REPO,
                            env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)


# ---------------------------------------------------------------- dashboard (AppTest, Chromium)
#: Debian's chromium, driven by Playwright (never ``playwright install``), and its flags
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
#: a limit line of the chart tests: two (ν_D, n_D) points
LINE = {"p1": (30.0, 1.60), "p2": (60.0, 1.50), "label": "test line"}
#: what a smoke-preset result record says about its oracle (core.campaign.fidelity)
SMOKE_FIDELITY = {"preset": "smoke", "forcefield": get_preset("smoke").forcefield,
                  "protocol": get_preset("smoke").protocol}


def seed_store(db: Path, campaign: str = "demo") -> dict:
    """Seed ``db`` with a campaign in a realistic mid-run state; returns ids."""
    from core.chem.optics import load_reference_polymers
    from core.chem.polymer import canonical_psmiles, polymer_key
    from core.store import Store

    store = Store(db)
    store.create_campaign(campaign, {"preset": "smoke", "batch_size": 3,
                                     "experimental_in_model": True,  # measured seeds
                                     "acquisition_strategy": "ehvi"}, actor="test")
    refs = load_reference_polymers()
    init = refs[refs["abbreviation"].isin(["PMMA", "PS", "PC", "COP"])]
    for _, r in init.iterrows():
        store.add_observation(campaign, r["psmiles"], {"n_D": r["n_D"],
                                                       "abbe_number": r["abbe_number"]},
                              source="reference (experimental)", name=r["abbreviation"],
                              provenance={"source": r["source"]}, actor="test")
    later = refs[refs["abbreviation"].isin(["CHDT-DVS", "P18", "TPX"])]

    def cand(ps, i, name=None):
        can = canonical_psmiles(ps)
        return {"psmiles": can, "key": polymer_key(can), "name": name, "pool_id": str(i),
                "pred_mean": {"n_D": 1.55 + 0.01 * i, "abbe_number": 45.0 - i},
                "pred_std": {"n_D": 0.02, "abbe_number": 3.0}, "ehvi": 0.1 / (i + 1),
                "p_beyond": 0.3}

    b1 = store.create_batch(campaign, [cand(r["psmiles"], i, r["abbreviation"])
                                       for i, (_, r) in enumerate(later.iterrows())],
                            strategy="ehvi", actor="test")
    store.approve_batch(b1["id"], actor="test")
    calcs = store.calculations(campaign, batch_id=b1["id"])
    for k, (_, c) in enumerate(calcs.iterrows()):
        att = store.start_attempt(int(c["id"]), dask_key=f"calc-{c['id']}",
                                  workdir=str(db.parent / "runs" / str(c["id"])),
                                  log_path=str(db.parent / "runs" / str(c["id"]) / "calc.log"))
        if c["name"] != "TPX":
            r = later[later["abbreviation"] == c["name"]].iloc[0]
            store.complete_calculation(int(c["id"]), att,
                                       {"n_D": float(r["n_D"]),
                                        "abbe_number": float(r["abbe_number"]),
                                        **SMOKE_FIDELITY},
                                       provenance={"test": "reference values"})
        else:
            store.fail_attempt(int(c["id"]), att, error_type="ConvergenceError",
                               error_message="density did not converge", retryable=False)
    store.finish_batch_if_complete(b1["id"])
    pool_ps = ["*CC(*)c1ccc(S(C)(=O)=O)cc1", "*c1ccc(Sc2ccc(*)cc2)cc1", "*CC(*)C(=O)OC1CCCCC1",
               "*CC(*)c1ccc2ccccc2c1"]
    b2 = store.create_batch(campaign, [cand(p, 10 + i) for i, p in enumerate(pool_ps)],
                            strategy="ehvi", actor="test")
    # predictions over a small stand-in pool (the shape core.campaign.cycle.propose_batch saves)
    pool = [*pool_ps, "*CC(*)(C)C(=O)OC", "*CCOC(=O)c1ccc(C(=O)O*)cc1", "*CC(*)C#N",
            "*c1ccc(S(=O)(=O)c2ccc(O*)cc2)cc1", "*CC(F)(F)*", "*CCCCCCC(=O)N*",
            "*CSC(*)c1ccccc1", "*c1ccc(C(C)(C)c2ccc(OC(=O)O*)cc2)cc1"]
    pool = [canonical_psmiles(p) for p in pool]
    n = len(pool)
    rng = np.random.default_rng(0)
    store.save_predictions(campaign, int(b2["cycle"]), pd.DataFrame({
        "pool_id": [str(i) for i in range(n)], "psmiles": pool,
        "key": [polymer_key(p) for p in pool],
        "pred_mean_n_D": rng.uniform(1.45, 1.7, n), "pred_std_n_D": np.full(n, 0.02),
        "pred_mean_abbe_number": rng.uniform(20, 60, n),
        "pred_std_abbe_number": np.full(n, 3.0), "ehvi": rng.uniform(0, 0.1, n),
        "p_beyond": rng.uniform(0, 1, n)}))
    return {"batch_done": b1["id"], "batch_proposed": b2["id"], "store": store}


def serve_seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """:func:`seed_store` in ``tmp_path``, served to the dashboard through the environment
    (no runner process, smoke preset, chart cache in ``tmp_path``); ids, store and cache dir."""
    db = tmp_path / "optipoly.db"
    info = seed_store(db)
    for k, v in {"OPTIPOLY_DB": str(db), "OPTIPOLY_RUNNER": "0", "OPTIPOLY_CAMPAIGN": "demo",
                 "OPTIPOLY_PRESET": "smoke", "OPTIPOLY_CACHE": str(tmp_path / "cache")}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(REPO)
    return {**info, "cache": tmp_path / "cache"}


def app_test():
    """The dashboard (``app.py``) under ``streamlit.testing.v1.AppTest``."""
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(REPO / "app.py"), default_timeout=90)


def pareto_spec(at) -> dict:
    """Plotly JSON the Pareto chart component was given (figure, sig, image_keys, ...)."""
    import json

    comps = [c for c in at.get("component_instance")
             if c.proto.component_name.endswith("pareto_chart")]
    assert len(comps) == 1
    return json.loads(comps[0].proto.json_args)


def visible_text(markdown: str) -> str:
    """Text a reader sees of ``markdown`` (CommonMark + GFM strikethrough/tables, as in
    Streamlit's renderer): rendered to HTML, tags dropped, entities decoded."""
    import html
    import re

    from markdown_it import MarkdownIt

    out = MarkdownIt("commonmark").enable(["strikethrough", "table"]).render(markdown)
    return html.unescape(re.sub(r"<[^>]+>", "", out)).strip()


def crowded_chart_data() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Observations (two front members on one spot), references (PS and PC on one spot) and a
    batch of three (two nearly on one spot; one named only by its SMILES)."""
    obs = pd.DataFrame({
        "id": ["a", "b", "c", "d", "e"], "name": ["alpha", "beta", "gamma", "delta", "eps"],
        "psmiles": ["*CC*"] * 5, "abbe_number": [20.0, 20.2, 40.0, 55.0, 35.0],
        "n_D": [1.70, 1.699, 1.62, 1.55, 1.50], "cycle": [0, 0, 1, 1, 1],
        "on_front": [True, True, True, True, False]})
    refs = pd.DataFrame({"name": ["polystyrene", "polycarbonate", "PMMA"],
                         "abbreviation": ["PS", "PC", "PMMA"], "n_D": [1.592, 1.584, 1.492],
                         "abbe_number": [31.0, 31.0, 58.0]})
    batch = pd.DataFrame({"id": ["x1", "x2", "x3"], "name": ["*CC(*)S", "best", "third"],
                          "psmiles": ["*CC(*)S", "*CSC*", "*CCS*"],
                          "mu_n": [1.66, 1.661, 1.58], "sd_n": [0.01] * 3,
                          "mu_abbe": [45.0, 45.3, 25.0], "sd_abbe": [1.0] * 3,
                          "ehvi": [0.2, 0.3, 0.1]})
    return obs, refs, batch
