"""Progress of the MD step: fraction done and ETA from the LAMMPS log vs the schedule's steps."""
from __future__ import annotations

import pytest

from core.simulation.lammps_data import DataFileInfo
from core.simulation.md import (LogProgress, MDProgress, MDProgressReporter, _ladder_steps,
                                _total_steps, input_script, ladder_script, md_eta_s, run_lammps,
                                schedule_stages)
from core.simulation.presets import PRESETS

INFO = DataFileInfo(n_atoms=124, n_atom_types=4, shake_bond_types=(1,), total_charge=0.0,
                    total_mass=1000.0, box=20.0)
THERMO_HEADER = ("   Step          Time           Temp          Press          PotEng         "
                 "TotEng        Density         Volume    ")


def _rows(steps) -> list[str]:
    return [f"{s:>10d}   {s:<14d} 300.1   -12.0   3.2   50.1   0.95   6559.8" for s in steps]


def _synthetic_log() -> str:
    """A LAMMPS log in the layout of ``input_script``: minimisation (iterations 0…200, not MD),
    heat 200 steps, compress 300 steps, production 300 steps of which 150 are done."""
    return "\n".join([
        "LAMMPS (22 Jul 2025)", "Reading data file ...", "STAGE minimise", THERMO_HEADER,
        *_rows(range(0, 201, 50)), "Loop time of 0.06 on 1 procs for 200 steps with 124 atoms",
        "STAGE heat heat nvt T=300.0->600.0 P=0.0 steps=200", "PPPM initialization ...",
        "WARNING: something harmless", THERMO_HEADER, *_rows(range(0, 201, 20)),
        "Loop time of 0.025 on 1 procs for 200 steps with 124 atoms",
        "STAGE compress1 compress npt T=600.0->300.0 P=5000.0 steps=300", THERMO_HEADER,
        *_rows(range(200, 501, 20)), "Loop time of 0.05 on 1 procs for 300 steps with 124 atoms",
        "STAGE production0 npt T=300 P=1 steps=300", THERMO_HEADER,
        *_rows(range(500, 651, 10)),
    ]) + "\n"


def test_the_schedule_stages_sum_to_the_step_counts_of_every_preset():
    for p in PRESETS.values():
        stages = schedule_stages(input_script(p, INFO))
        assert [t for t, _ in stages][0] == "heat" and stages[-1][0] == "production0"
        assert sum(n for _, n in stages) == _total_steps(p)
        if p.ladder_temps:
            ladder = schedule_stages(ladder_script(p, INFO))
            assert len(ladder) == len(p.ladder_temps) + 1
            assert sum(n for _, n in ladder) == _ladder_steps(p)


def test_log_progress_counts_finished_stages_and_the_running_one():
    log = LogProgress()
    log.feed(_synthetic_log())
    # heat 200 + compress 300 finished, production 650 - 500 = 150 of 300: minimisation ignored
    assert log.steps_done == 200 + 300 + 150
    assert log.stage == "production0"
    prog = MDProgress(log.steps_done, 800, log.stage, md_eta_s(130.0, log.steps_done, 150))
    assert prog.fraction == pytest.approx(650 / 800)
    assert prog.eta_s == pytest.approx(30.0)  # 650 steps in 130 s -> 150 steps in 30 s
    assert prog.message() == "MD 81% (650 of 800 steps, production0), about 30 s left"


def test_log_progress_is_the_same_for_any_chunking_and_waits_for_a_whole_line():
    text = _synthetic_log()
    whole = LogProgress()
    whole.feed(text)
    for size in (1, 7, 64, 333):
        log = LogProgress()
        for i in range(0, len(text), size):
            log.feed(text[i:i + size])
        assert (log.steps_done, log.stage) == (whole.steps_done, whole.stage)
    # a half-written row ("   6" of "   660 ...") is not read as step 6 or 660 yet
    log = LogProgress()
    log.feed(text + "       6")
    assert log.steps_done == whole.steps_done
    log.feed("60   660   300.1\n")
    assert log.steps_done == whole.steps_done + 10


def test_a_stage_counts_its_own_steps_at_most_and_a_ladder_stage_spans_two_runs():
    log = LogProgress()
    log.feed("\n".join(["STAGE ladder1 npt T=600.0 P=1 steps=140", THERMO_HEADER,
                        *_rows(range(100, 141, 20)), "Loop time of 0.006 on 1 procs",
                        THERMO_HEADER, *_rows(range(140, 221, 20))]) + "\n")
    assert (log.steps_done, log.stage) == (120, "ladder1")  # steps 100 -> 220 of the stage
    log.feed("\n".join([THERMO_HEADER, *_rows([400])]) + "\n")
    assert log.steps_done == 140  # capped at the stage's own steps


def test_eta_is_unknown_before_the_first_step_and_zero_at_the_end():
    assert md_eta_s(10.0, 0, 1000) is None
    assert md_eta_s(0.0, 10, 1000) is None
    assert md_eta_s(60.0, 600, 0) == 0.0
    assert md_eta_s(60.0, 600, 1200) == pytest.approx(120.0)
    assert MDProgress(0, 100, None, None).message() == "MD 0% (0 of 100 steps)"
    assert "about 2 h 05 min left" in MDProgress(1, 10, "heat", 7500.0).message()


def test_reporter_says_each_new_tenth_or_after_a_quiet_interval(tmp_path):
    log_path, clock, said = tmp_path / "md.log", [0.0], []
    rep = MDProgressReporter(said.append, log_path, steps_before=1000, steps_total=2000,
                             every_fraction=0.1, every_s=300.0, clock=lambda: clock[0])
    assert rep.poll() is None and said == []  # no log yet
    log_path.write_text("STAGE heat heat nvt T=300.0->600.0 P=0.0 steps=1000\n" + THERMO_HEADER
                        + "\n" + "\n".join(_rows([0, 50])) + "\n")
    clock[0] = 10.0
    assert rep.poll() is None  # 1050 of 2000: still in the 50 % tenth it started in
    with open(log_path, "a") as fh:
        fh.write("\n".join(_rows([100, 200])) + "\n")
    clock[0] = 30.0
    prog = rep.poll()  # 1200 of 2000: the 60 % tenth is reached
    assert prog is not None and prog.steps_done == 1200 and prog.stage == "heat"
    assert prog.eta_s == pytest.approx(30.0 / 200 * 800)  # this job's rate: 200 steps in 30 s
    assert said == [prog.message()]
    with open(log_path, "a") as fh:
        fh.write("\n".join(_rows([210])) + "\n")
    clock[0] = 60.0
    assert rep.poll() is None  # 1210: same tenth, 30 s since the last report
    clock[0] = 331.0
    assert rep.poll().steps_done == 1210  # quiet for > 300 s with progress: said
    clock[0] = 700.0
    assert rep.poll() is None  # no new step since the last report: nothing to say
    assert len(said) == 2


@pytest.mark.integration
def test_run_lammps_reports_progress_while_it_runs(tmp_path):
    """A real LAMMPS run (LJ liquid, two stages): the log is followed while it grows."""
    script = "\n".join([
        "units lj", "atom_style atomic", "lattice fcc 0.8442", "region box block 0 6 0 6 0 6",
        "create_box 1 box", "create_atoms 1 box", "mass 1 1.0",
        "velocity all create 1.44 87287 loop geom", "pair_style lj/cut 2.5",
        "pair_coeff 1 1 1.0 1.0 2.5", "neighbor 0.3 bin", "thermo 100",
        "thermo_modify flush yes", "fix 1 all nve",
        "print 'STAGE one nve steps=3000'", "run 3000",
        "print 'STAGE two nve steps=3000'", "run 3000"]) + "\n"
    said: list[str] = []
    wall = run_lammps(script, tmp_path, name="lj", progress=said.append, poll_s=0.05)
    assert wall > 0 and said, "no progress was reported"
    assert all(m.startswith("MD ") and "of 6000 steps" in m for m in said)
    fractions = [int(m.split()[1].rstrip("%")) for m in said]
    assert fractions == sorted(fractions) and 0 < fractions[-1] <= 100
    assert len(set(f // 10 for f in fractions)) == len(fractions)  # at most one per tenth
