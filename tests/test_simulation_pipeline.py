"""Integration tests: real antechamber/sqm/tleap/packmol/LAMMPS/PySCF through the pipeline."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from core.simulation.build import UnsupportedPolymer, build_chain
from core.simulation.pipeline import STEPS, WorkdirMismatch, run_pipeline

PS = "*C(C*)c1ccccc1"
RECORD_KEYS = {"n_D", "n_F", "n_C", "abbe_number", "density", "density_stderr", "alpha_A3",
               "molar_mass", "psmiles", "canonical_psmiles", "preset", "versions", "step_wall_s",
               "converged", "warnings", "workdir", "forcefield", "protocol", "tg_sim_K",
               "density_direct", "density_method", "density_packing_estimate"}


def test_unsupported_polymer_is_rejected_before_any_work(tmp_path):
    wd = tmp_path / "si"
    with pytest.raises(UnsupportedPolymer, match="Si"):
        run_pipeline("*C[Si](C)(C)*", "smoke", wd)
    assert not wd.exists()


def test_cli_reports_bad_input_with_exit_code_3(tmp_path, capsys):
    from core.simulation.__main__ import main
    assert main(["run", "*CC", "--preset", "smoke", "--workdir", str(tmp_path / "x")]) == 3
    assert "two" in capsys.readouterr().err


@pytest.mark.integration
def test_charges_transferred_from_real_am1bcc_are_exactly_neutral(tmp_path):
    from core.simulation.forcefield import neutralise, oligomer_and_charges, transfer_charges

    olig, params, maxcyc = oligomer_and_charges(PS, tmp_path, n=3, maxcyc_sulfur=0, timeout=120)
    assert maxcyc == 0  # no sulfur: single point
    assert abs(sum(q for _, q in params)) < 1e-3  # antechamber's oligomer is neutral
    chain = build_chain(PS, 7, seed=2)
    types, raw = transfer_charges(olig.mol, params, chain.mol, 7)
    q = neutralise(raw)
    assert sum(round(x * 1e6) for x in q) == 0
    # two interior units carry identical charge patterns (copied from the trimer's middle unit)
    mids = {}
    for a, qq, t in zip(chain.mol.GetAtoms(), q, types):
        mids.setdefault(a.GetIntProp("unit"), []).append((a.GetIntProp("local"), t, qq))
    a2, a3 = sorted(mids[2]), sorted(mids[3])
    assert [x[:2] for x in a2] == [x[:2] for x in a3]
    assert [x[2] for x in a2] == pytest.approx([x[2] for x in a3], abs=2e-6)
    assert set(types) == {"c3", "ca", "hc", "ha"}


def _dihedral(p0, p1, p2, p3):
    b0, b1, b2 = p0 - p1, p2 - p1, p3 - p2
    b1n = b1 / np.linalg.norm(b1)
    v = b0 - np.dot(b0, b1n) * b1n
    w = b2 - np.dot(b2, b1n) * b1n
    return math.atan2(np.dot(np.cross(b1n, v), w), np.dot(v, w))


@pytest.mark.integration
def test_lammps_data_writer_energies_match_hand_evaluation(tmp_path):
    """Write 2 chains of a polyester, let LAMMPS evaluate bonded energies, compare with numpy."""
    from core.simulation.forcefield import (neutralise, oligomer_and_charges, parametrise_chain,
                                            transfer_charges)
    from core.simulation.lammps_data import write_data_file
    from core.simulation.md import run_lammps

    s = "*C(C*)(C(=O)OC)C"  # PMMA: c, o, os, c3 types, impropers on the ester carbon
    olig, params, _ = oligomer_and_charges(s, tmp_path / "olig", n=3, maxcyc_sulfur=0,
                                           timeout=120)
    chain = build_chain(s, 4, seed=5)
    types, raw = transfer_charges(olig.mol, params, chain.mol, 4)
    ff = parametrise_chain(chain, types, neutralise(raw), tmp_path / "ff",
                           frcmod_source=tmp_path / "olig" / "oligomer.mol2")
    xyz = chain.mol.GetConformer().GetPositions()
    box = 60.0
    coords = [xyz - xyz.mean(0) + box / 2, xyz - xyz.mean(0) + box / 2 + np.array([0, 0, 25.0])]
    info = write_data_file(ff, coords, box, tmp_path / "md" / "system.data") if (
        tmp_path / "md").mkdir() is None else None
    assert info.n_atoms == 2 * len(types) and abs(info.total_charge) < 1e-9
    text = (tmp_path / "md" / "system.data").read_text()
    assert f"{len(ff.bonds) * 2} bonds" in text and f"{len(ff.impropers) * 2} impropers" in text
    charges = [float(ln.split()[3]) for ln in text.split("Atoms # full")[1].split("Bonds")[0]
               .strip().splitlines()]
    assert sum(round(q * 1e6) for q in charges) == 0

    script = "\n".join([
        "units real", "atom_style full", "boundary p p p",
        "pair_style lj/charmm/coul/long 8.0 10.0", "pair_modify mix arithmetic",
        "kspace_style pppm 1e-5", "bond_style harmonic", "angle_style harmonic",
        "dihedral_style fourier", "improper_style cvff", "special_bonds amber",
        "read_data system.data", "thermo_style custom step ebond eangle edihed eimp",
        "thermo_modify format float %20.10f", "run 0"]) + "\n"
    run_lammps(script, tmp_path / "md", name="e0")
    log = (tmp_path / "md" / "e0.log").read_text()
    row = log.split("E_bond")[1].splitlines()[1].split()
    e_bond, e_angle, e_dih, e_imp = (float(v) for v in row[1:5])

    eb = ea = ed = ei = 0.0
    for c in coords:
        for i, j, k, r0 in ff.bonds:
            eb += k * (np.linalg.norm(c[i] - c[j]) - r0) ** 2
        for i, j, l, k, th0 in ff.angles:
            u, v = c[i] - c[j], c[l] - c[j]
            th = math.degrees(math.acos(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v)))
            ea += k * math.radians(th - th0) ** 2
        for i, j, k, l, terms in ff.dihedrals:
            phi = _dihedral(c[i], c[j], c[k], c[l])
            ed += sum(K * (1 + math.cos(n * phi - math.radians(ph))) for K, n, ph in terms)
        for i, j, k, l, K, d, n in ff.impropers:
            ei += K * (1 + d * math.cos(n * _dihedral(c[i], c[j], c[k], c[l])))
    assert e_bond == pytest.approx(eb, rel=1e-3, abs=1e-3)  # file rounds coordinates to 1e-5 Å
    assert e_angle == pytest.approx(ea, rel=1e-3, abs=1e-3)  # file rounds coordinates to 1e-5 Å
    assert e_dih == pytest.approx(ed, rel=1e-3, abs=1e-3)  # file rounds coordinates to 1e-5 Å
    assert e_imp == pytest.approx(ei, rel=1e-3, abs=1e-3)  # file rounds coordinates to 1e-5 Å
    assert ff.impropers, "PMMA's ester carbon must carry an improper torsion"


@pytest.mark.integration
def test_smoke_polystyrene_end_to_end_and_resume(tmp_path):
    wd = tmp_path / "ps"
    events: list[tuple[str, str]] = []
    rec = run_pipeline(PS, "smoke", wd, progress=lambda s, m: events.append((s, m)), threads=1)
    assert RECORD_KEYS <= set(rec)
    assert json.loads(json.dumps(rec)) == rec  # JSON-serialisable
    assert set(rec["step_wall_s"]) == set(STEPS)
    for k in ("n_D", "n_F", "n_C", "abbe_number", "density"):
        assert math.isfinite(rec[k])
    # normal dispersion: α and n increase towards the blue
    a = rec["alpha_A3"]
    assert a["F"] > a["D"] > a["C"] > a["static"] > 0
    assert rec["n_F"] > rec["n_D"] > rec["n_C"] > 1.0
    assert rec["abbe_number"] == pytest.approx((rec["n_D"] - 1) / (rec["n_F"] - rec["n_C"]))
    assert rec["molar_mass"] == pytest.approx(104.15, abs=0.01)
    assert rec["canonical_psmiles"] and rec["preset"] == "smoke"
    assert {"rdkit", "ambertools", "lammps", "pyscf", "ours"} <= set(rec["versions"])
    cell = json.loads((wd / "cell" / "done.json").read_text())["result"]
    assert abs(cell["total_charge_e"]) < 1e-9
    assert (wd / "md" / "md.log").is_file()
    assert {s for s, _ in events} == set(STEPS)

    # rerun: every step is skipped, the record is identical
    mtimes = {s: (wd / s / "done.json").stat().st_mtime_ns for s in STEPS}
    events.clear()
    rec2 = run_pipeline(PS, "smoke", wd, progress=lambda s, m: events.append((s, m)))
    assert rec2 == rec
    assert all("skipped" in m for _, m in events) and len(events) == len(STEPS)
    assert mtimes == {s: (wd / s / "done.json").stat().st_mtime_ns for s in STEPS}

    # an interrupted calculation (optics never finished) resumes at that step only
    (wd / "optics" / "done.json").unlink()
    events.clear()
    rec3 = run_pipeline(PS, "smoke", wd, progress=lambda s, m: events.append((s, m)))
    redone = {s for s, m in events if m == "started"}
    assert redone == {"optics"}
    assert rec3["n_D"] == pytest.approx(rec["n_D"])

    with pytest.raises(WorkdirMismatch):
        run_pipeline("*CC(*)C(=O)OC", "smoke", wd)
    assert re.match(r"^\*", rec["canonical_psmiles"])


@pytest.mark.integration
def test_md_step_resumes_from_finished_lammps_job(tmp_path):
    """An interrupted md step reuses its finished main LAMMPS job instead of rerunning it."""
    wd = tmp_path / "ps"
    run_pipeline(PS, "smoke", wd, threads=1)
    for s in ("md", "qm", "optics"):
        (wd / s / "done.json").unlink()
    (wd / "record.json").unlink()
    log_mtime = (wd / "md" / "md.log").stat().st_mtime_ns
    events = []
    rec = run_pipeline(PS, "smoke", wd, progress=lambda s, m: events.append((s, m)))
    assert any(s == "md" and "reused" in m for s, m in events)
    assert (wd / "md" / "md.log").stat().st_mtime_ns == log_mtime  # LAMMPS not rerun
    assert math.isfinite(rec["density"])


@pytest.mark.integration
def test_changed_qm_settings_redo_only_qm_and_optics(tmp_path):
    from core.simulation.presets import get_preset

    wd = tmp_path / "ps"
    smoke = get_preset("smoke")
    rec = run_pipeline(PS, smoke, wd, threads=1)
    events = []
    other = smoke.with_overrides(qm_basis="3-21G")
    rec2 = run_pipeline(PS, other, wd, progress=lambda s, m: events.append((s, m)))
    assert {s for s, m in events if m == "started"} == {"qm", "optics"}
    assert rec2["density"] == rec["density"]
    assert rec2["alpha_A3"]["D"] != rec["alpha_A3"]["D"]


def test_second_run_on_a_busy_workdir_is_refused(tmp_path):
    from core.simulation.errors import WorkdirBusy
    from core.simulation.pipeline import _lock_workdir

    wd = tmp_path / "busy"
    wd.mkdir()
    held = _lock_workdir(wd)  # stands for another process running this calculation
    try:
        with pytest.raises(WorkdirBusy, match="already running"):
            run_pipeline(PS, "smoke", wd)
    finally:
        held.close()
    assert not (wd / "build").exists()


def test_step_dependencies_keep_qm_apart_from_the_md_chain():
    from core.simulation.pipeline import dependents

    assert dependents("build") == ["build", "forcefield", "cell", "md", "optics"]
    assert dependents("md") == ["md", "optics"]
    assert dependents("qm") == ["qm", "optics"]
    assert dependents("optics") == ["optics"]


@pytest.mark.integration
def test_two_threads_run_qm_beside_md_with_the_same_result(tmp_path):
    """threads=2: the QM step runs in a thread beside build → md; numbers equal a serial run."""
    import threading

    serial = run_pipeline(PS, "smoke", tmp_path / "serial", threads=1)
    seen_threads: dict[str, set[str]] = {}

    def progress(step, msg):
        if msg != "started" and not msg.startswith("done in"):
            return
        seen_threads.setdefault(step, set()).add(threading.current_thread().name)

    rec = run_pipeline(PS, "smoke", tmp_path / "par", progress=progress, threads=2)
    assert rec["details"]["qm"]["concurrent_with_md"] is True
    assert rec["details"]["qm"]["threads"] == 1
    assert serial["details"]["qm"]["concurrent_with_md"] is False
    assert all(name.startswith("qm") for name in seen_threads["qm"])
    assert all(not name.startswith("qm") for name in seen_threads["md"])
    # same polymer, same protocol, same seeds: identical α; density within MD noise of 1 rank
    for k in ("static", "F", "D", "C"):
        assert rec["alpha_A3"][k] == pytest.approx(serial["alpha_A3"][k], rel=1e-6)
    assert rec["density"] == pytest.approx(serial["density"], rel=1e-6)
    # a rerun skips everything, also the concurrent QM
    again = run_pipeline(PS, "smoke", tmp_path / "par", threads=2)
    assert again == rec


@pytest.mark.integration
def test_step_without_settings_fingerprint_is_redone(tmp_path):
    """A done marker from an old version (no settings fingerprint) is not trusted."""
    wd = tmp_path / "ps"
    run_pipeline(PS, "smoke", wd, threads=1)
    f = wd / "qm" / "done.json"
    rec = json.loads(f.read_text())
    del rec["fingerprint"]
    f.write_text(json.dumps(rec))
    events = []
    run_pipeline(PS, "smoke", wd, progress=lambda s, m: events.append((s, m)))
    assert {s for s, m in events if m == "started"} == {"qm", "optics"}
    assert "fingerprint" in json.loads(f.read_text())


@pytest.mark.integration
def test_until_md_prints_a_density_record_with_provenance(tmp_path, capsys):
    """Issue 11: ``--until md`` stops after the density step; the record names force field and
    protocol and carries Tg_sim from the (smoke) cooling ladder; no QM was run."""
    from core.simulation.__main__ import main

    wd = tmp_path / "ps"
    assert main(["run", PS, "--preset", "smoke", "--workdir", str(wd), "--until", "md",
                 "--threads", "1"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["forcefield"] == "gaff2" and rec["protocol"] == "smoke-md2-direct"
    assert rec["density"] > 0 and rec["density_stderr"] >= 0
    assert rec["density"] == rec["density_direct"]          # smoke reports the direct density
    # the token smoke ladder ran; its 0.1-ps points may be too noisy for a melt line, in which
    # case the record says why instead of a Tg
    assert (wd / "md" / "ladder.done.json").is_file()
    ml = rec["melt_line"]
    if "error" in ml:
        assert rec["tg_sim_K"] is None and "ladder" in ml["error"]
    else:
        assert [r["T_K"] for r in ml["ladder"]] == [600.0, 500.0, 400.0, 300.0]
        # Tg_sim is only reported where the ladder was precise enough
        assert (rec["tg_sim_K"] is not None) == ml["reliable"]
    assert rec["density_packing_estimate"] == pytest.approx(1.06, rel=0.06)
    assert "n_D" not in rec and not (wd / "qm").exists() and not (wd / "optics").exists()
    assert json.loads((wd / "density_record.json").read_text())["density"] == rec["density"]


@pytest.mark.integration
def test_sage_force_field_runs_through_the_same_pipeline(tmp_path):
    pytest.importorskip("openff.toolkit")
    from core.simulation.presets import get_preset

    rec = run_pipeline(PS, get_preset("smoke").with_overrides(forcefield="sage"),
                       tmp_path / "sage", until="md", threads=1)
    assert rec["forcefield"] == "sage" and math.isfinite(rec["density"])
    ff = json.loads((tmp_path / "sage" / "forcefield" / "forcefield.json").read_text())
    assert any(t.startswith("n") for t in ff["types"])      # Sage vdW ids (n1, n16, ...)


def _md_children(parent_pid: int) -> list[int]:
    """PIDs of LAMMPS children launched by ``parent_pid`` (tagged in their environment)."""
    import os

    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            env = open(f"/proc/{d}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if f"OPTIPOLY_MD_PARENT_PID={parent_pid}".encode() in env:
            out.append(int(d))
    return out


@pytest.mark.integration
def test_killed_pipeline_leaves_no_lammps_and_rerun_starts_clean(tmp_path):
    """Issue 13 (2): ``kill -9`` of the pipeline during MD must take LAMMPS with it, and the
    rerun must not append to the dead attempt's samples."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    wd = tmp_path / "ps"
    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "from core.simulation.presets import get_preset\n"
        "from core.simulation.pipeline import run_pipeline\n"
        "p = get_preset('smoke').with_overrides(production_ps=float(sys.argv[1]), ladder_temps=())\n"
        "run_pipeline(%r, p, %r, until='md', threads=1)\n"
    ) % (str(Path(__file__).resolve().parents[1]), PS, str(wd))
    proc = subprocess.Popen([sys.executable, "-c", script, "400"])
    deadline = time.time() + 240
    prod = wd / "md" / "production.dat"
    while time.time() < deadline:
        if prod.is_file() and len(prod.read_text().splitlines()) > 3:
            break
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the MD never started producing samples")
    children = _md_children(proc.pid)
    assert children, "no LAMMPS child found"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(os.path.exists(f"/proc/{c}") and
                                         open(f"/proc/{c}/stat").read().split()[2] != "Z"
                                         for c in children):
        time.sleep(0.3)
    alive = [c for c in children if os.path.exists(f"/proc/{c}")
             and open(f"/proc/{c}/stat").read().split()[2] != "Z"]
    assert not alive, f"LAMMPS survived its parent: {alive}"
    # the rerun (same settings) starts the sample file afresh: one header, monotonic times
    done = subprocess.run([sys.executable, "-c", script.replace(
        "float(sys.argv[1])", "0.3"), "0.3"], timeout=300)
    assert done.returncode == 0
    lines = prod.read_text().splitlines()
    assert sum(ln.startswith("# step") for ln in lines) == 1
    assert sum(ln.startswith("# Fix print") for ln in lines) <= 1
    times = [float(ln.split()[1]) for ln in lines if not ln.startswith("#")]
    assert times == sorted(times) and len(times) == len(set(times))


@pytest.mark.integration
def test_small_qm_unit_runs_first_and_md_gets_every_core(tmp_path):
    """Issue 11 (cost): a small unit's QM takes seconds; beside the MD one core would idle, so
    it runs first on all threads and LAMMPS then gets all threads too."""
    from core.simulation.presets import get_preset

    order: list[tuple[str, str]] = []
    p = get_preset("smoke").with_overrides(qm_concurrent_min_atoms=100)
    rec = run_pipeline(PS, p, tmp_path / "ps", threads=2,
                       progress=lambda s, m: order.append((s, m)))
    started = [s for s, m in order if m == "started"]
    # after the cheap steps (a polymer that cannot be built, typed or packed spends no QM time),
    # before the MD
    assert started == ["build", "forcefield", "cell", "qm", "md", "optics"]
    assert rec["details"]["qm"]["threads"] == 2
    assert rec["details"]["qm"]["concurrent_with_md"] is False
    assert any("2 rank(s)" in m or "× 2 thread(s)" in m for s, m in order if s == "md")


@pytest.mark.integration
@pytest.mark.parametrize("qm_min_atoms", [0, 100], ids=["qm-beside-md", "small-qm-first"])
def test_typing_failure_stops_before_any_qm(tmp_path, qm_min_atoms):
    """Issue 15: build → forcefield → cell must succeed before the QM starts, also with 2
    threads (QM beside the MD, or a small unit's QM before it). Here antechamber really runs
    past its (test-sized) limit on every oligomer the charge fallback tries."""
    from core.simulation.errors import StepTimeout
    from core.simulation.presets import get_preset

    smoke = get_preset("smoke")
    p = smoke.with_overrides(qm_concurrent_min_atoms=qm_min_atoms,
                             timeouts={**smoke.timeouts, "forcefield": 0.05})
    wd = tmp_path / "ps"
    events: list[tuple[str, str]] = []
    with pytest.raises(StepTimeout) as err:
        run_pipeline(PS, p, wd, threads=2, progress=lambda s, m: events.append((s, m)))
    assert err.value.step == "forcefield"
    assert "3-mer" in str(err.value) and "1-mer" in str(err.value)  # the fallback was tried
    assert json.loads((wd / "failed.json").read_text())["step"] == "forcefield"
    assert not (wd / "qm").exists() and not (wd / "cell").exists()
    assert not any(s == "qm" and m == "started" for s, m in events)


def test_qm_waits_for_the_cheap_steps_in_every_mode():
    from core.simulation.pipeline import QM_AFTER, _needed, _step_order

    assert QM_AFTER == ("build", "forcefield", "cell")
    assert _needed("qm") == ["build", "forcefield", "cell", "qm"]
    assert _needed("md") == ["build", "forcefield", "cell", "md"]
    assert _step_order(list(STEPS), qm_first_of_expensive=True) == [
        "build", "forcefield", "cell", "qm", "md", "optics"]
    assert _step_order(list(STEPS), qm_first_of_expensive=False) == list(STEPS)


@pytest.mark.integration
def test_md_blowup_at_2fs_reruns_at_1fs(tmp_path, monkeypatch):
    """An MD that becomes unstable (LAMMPS "Out of range atoms") at the preset's 2 fs is run
    again at 1 fs with the real LAMMPS; the record says so, and a rerun resumes at 1 fs."""
    from core.simulation import md
    from core.simulation.errors import MDUnstable
    from core.simulation.presets import get_preset

    real = md.run_md
    calls = []

    def flaky(info, workdir, p, **kw):
        calls.append(p.timestep_fs)
        if p.timestep_fs == 2.0:
            (workdir / "md.log").write_text("ERROR on proc 0: Out of range atoms\n")
            raise MDUnstable("The MD simulation became unstable (LAMMPS: ERROR on proc 0: Out "
                             "of range atoms - cannot compute PPPM).", step="md")
        return real(info, workdir, p, **kw)

    monkeypatch.setattr(md, "run_md", flaky)
    p = get_preset("smoke").with_overrides(timestep_fs=2.0)
    wd = tmp_path / "ps"
    rec = run_pipeline(PS, p, wd, threads=1, until="md")
    assert calls == [2.0, 1.0]
    assert (wd / "md" / "unstable_dt2" / "md.log").read_text().startswith("ERROR")
    assert any("MD ran at 1 fs" in w for w in rec["warnings"])
    assert 0.1 < rec["density"] < 3.0
    # the step is done: a rerun reuses it without any MD
    calls.clear()
    run_pipeline(PS, p, wd, threads=1, until="md")
    assert calls == []
