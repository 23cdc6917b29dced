"""Cluster profiles: validation, walltime checks, job-script previews (no scheduler needed)."""
from __future__ import annotations

import pytest

from core.execution.cluster import (ClusterConfigError, ClusterProfile, WalltimeTooShort,
                                    format_walltime, job_script, minimum_walltime_s, parse_walltime,
                                    required_walltime_s, scheduler_job_state, validate_profile)


@pytest.mark.parametrize("text,seconds", [("01:30:00", 5400), ("1-00:00:00", 86400),
                                          ("00:10", 600), ("45", 2700), ("72:00:00", 259200)])
def test_parse_walltime(text, seconds):
    assert parse_walltime(text) == seconds


@pytest.mark.parametrize("bad", ["", "abc", "00:00:00", "1:2:3:4", None])
def test_parse_walltime_rejects(bad):
    with pytest.raises(ClusterConfigError):
        parse_walltime(bad)


def test_format_walltime():
    assert format_walltime(5400) == "01:30:00" and format_walltime(259200) == "72:00:00"


def test_defaults_and_derived_values():
    local = ClusterProfile()
    assert local.profile == "local" and local.calc_threads == 1 and local.max_parallel == 2
    slurm = ClusterProfile(profile="slurm", cores=8, walltime="02:00:00", adapt_maximum=6)
    assert slurm.calc_threads == 8 and slurm.max_parallel == 6
    # lifetime = walltime - max(5 min, 10 %) = 7200 - 720
    assert slurm.lifetime_s() == 6480
    assert slurm.lifetime_s() + slurm.lifetime_stagger_s() < 7200


@pytest.mark.parametrize("bad,match", [
    ({"profile": "k8s"}, "profile"), ({"n_workers": 0}, "n_workers"),
    ({"profile": "slurm", "memory": "lots"}, "memory"),
    ({"profile": "slurm", "walltime": "00:30:00", "worker_lifetime": "00:40:00"}, "shorter"),
    ({"profile": "slurm", "queue": "a b"}, "queue"),
    ({"profile": "slurm", "job_script_prologue": ["module load x\nrm -rf /"]}, "single line"),
    ({"adapt_minimum": 5, "adapt_maximum": 2}, "adapt_minimum"),
    ({"colour": "red"}, "unknown"),
])
def test_profile_validation(bad, match):
    with pytest.raises(ClusterConfigError, match=match):
        ClusterProfile.from_dict(bad)


def test_walltime_too_short_for_preset():
    need = required_walltime_s("quick")
    assert need == 3600  # the longest step timeout of the quick preset (qm: 3600 s)
    with pytest.raises(WalltimeTooShort, match="'qm' step of preset 'quick'") as ei:
        validate_profile({"profile": "slurm", "walltime": "00:20:00"}, "quick")
    assert "at least 01:11:00" in str(ei.value)
    validate_profile({"profile": "slurm", "walltime": "01:11:00"}, "quick")
    with pytest.raises(WalltimeTooShort):
        validate_profile({"profile": "pbs", "walltime": "48:00:00"}, "standard")  # md 72 h
    with pytest.raises(WalltimeTooShort, match="at least 80:06:00"):
        validate_profile({"profile": "pbs", "walltime": "80:00:00"}, "standard")
    assert minimum_walltime_s(72 * 3600) == 80 * 3600 + 360
    validate_profile({"profile": "pbs", "walltime": "80:06:00"}, "standard")
    validate_profile({"profile": "local"}, "standard")  # no walltime locally
    validate_profile({"profile": "slurm", "walltime": "72:00:00", "allow_short_walltime": True},
                     "standard")  # the user's explicit choice


def test_slurm_job_script():
    s = job_script({"profile": "slurm", "cores": 4, "memory": "8GB", "walltime": "02:00:00",
                    "queue": "gpu", "account": "proj42",
                    "job_extra_directives": ["--exclusive"],
                    "job_script_prologue": ["module load lammps", "source /opt/venv/bin/activate"]})
    for line in ["#SBATCH -p gpu", "#SBATCH -A proj42", "#SBATCH --cpus-per-task=4",
                 "#SBATCH -t 02:00:00", "#SBATCH --exclusive", "module load lammps",
                 "--resources calc=1", "--lifetime 6480s", "--nthreads 4"]:
        assert line in s, line


@pytest.mark.parametrize("profile,needle", [("pbs", "#PBS -l walltime=03:00:00"),
                                            ("sge", "#$ -l h_rt=03:00:00"),
                                            ("lsf", "#BSUB -W 03:00")])
def test_other_schedulers(profile, needle):
    s = job_script({"profile": profile, "walltime": "03:00:00", "account": "acc"})
    assert needle in s and "--resources calc=1" in s


def test_local_description():
    assert "LocalCluster(n_workers=3" in job_script({"profile": "local", "n_workers": 3})


def test_job_state_rejects_injection():
    with pytest.raises(ClusterConfigError):
        scheduler_job_state("slurm", "1; rm -rf /")
    assert scheduler_job_state("local", "123") is None


def test_ended_jobs_needs_a_scheduler_query_and_valid_ids():
    from core.execution.cluster import ended_jobs
    assert ended_jobs("pbs", ["123"]) is None  # no query for this profile: cannot tell
    assert ended_jobs("local", []) is None
    with pytest.raises(ClusterConfigError, match="not a job id"):
        ended_jobs("slurm", ["1; rm -rf /"])
