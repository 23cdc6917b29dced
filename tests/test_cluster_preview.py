"""Job-script previews in a subprocess (safe off the main thread) and per-kind templates."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.execution.cluster import JOBQUEUE_PROFILES, validate_profile
from core.execution.cluster_preview import (QUEUE_PLACEHOLDER, JobScriptPreviewError,
                                            _preview_cached, preview_job_script, profile_for_kind,
                                            profile_template)

REPO = Path(__file__).resolve().parents[1]
MARK = {"slurm": "#SBATCH", "pbs": "#PBS", "sge": "#$", "lsf": "#BSUB"}


@pytest.mark.parametrize("preset", ["smoke", "quick", "standard"])
@pytest.mark.parametrize("kind", JOBQUEUE_PROFILES)
def test_templates_are_valid_for_the_preset(kind, preset):
    t = profile_template(kind, preset=preset)
    validate_profile(t, preset=preset)  # walltime covers the preset's longest step
    assert t["queue"] == QUEUE_PLACEHOLDER[kind] and t["python"] == sys.executable
    assert t["cores"] >= 1 and t["memory"].endswith("GB")
    assert t["walltime"].endswith(":00:00")
    assert any("PYTHONPATH" in line for line in t["job_script_prologue"])


def test_profile_for_kind_keeps_saved_kind_and_templates_others():
    saved = {"profile": "slurm", "cores": 8, "memory": "16GB", "walltime": "04:00:00",
             "queue": "gpu"}
    assert profile_for_kind(saved, "slurm", preset="quick") == saved
    pbs = profile_for_kind(saved, "pbs", preset="quick")
    assert pbs == profile_template("pbs", preset="quick")
    local = profile_for_kind({"profile": "local", "n_workers": 3}, "slurm", preset="smoke")
    assert "n_workers" not in local and local["profile"] == "slurm"
    assert profile_for_kind(None, "local") == {"profile": "local"}
    assert profile_for_kind(saved, "local") == {"profile": "local", "n_workers": 2,
                                                "threads_per_worker": 1}


def test_preview_of_every_kind_from_a_worker_thread():
    """What Streamlit does: the page script runs in a thread, where importing dask_jobqueue
    raises 'signal only works in main thread'."""
    out: dict = {}

    def work():
        for kind in JOBQUEUE_PROFILES:
            try:
                out[kind] = preview_job_script(profile_template(kind, preset="quick"))
            except Exception as err:  # noqa: BLE001
                out[kind] = err

    t = threading.Thread(target=work)
    t.start()
    t.join(300)
    for kind in JOBQUEUE_PROFILES:
        script = out[kind]
        assert isinstance(script, str), (kind, script)
        assert MARK[kind] in script and sys.executable in script
        assert QUEUE_PLACEHOLDER[kind] in script and "--resources calc=1" in script
    assert "#SBATCH --cpus-per-task=2" in out["slurm"]
    assert "-pe smp 2" in out["sge"]


def test_local_preview_needs_no_subprocess():
    assert "LocalCluster(n_workers=2" in preview_job_script({"profile": "local"}, timeout_s=0)


def test_preview_timeout_is_a_clear_error():
    _preview_cached.cache_clear()
    with pytest.raises(JobScriptPreviewError, match="longer than 0.01 s"):
        preview_job_script(profile_template("slurm", preset="smoke"), timeout_s=0.01)


def test_preview_reports_the_child_error_in_one_line(tmp_path):
    _preview_cached.cache_clear()
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'Traceback...' >&2\necho 'ModuleNotFoundError: "
                      "No module named dask_jobqueue' >&2\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(JobScriptPreviewError, match="^ModuleNotFoundError: No module named"):
        preview_job_script(profile_template("pbs", preset="smoke"), python=str(broken))
    with pytest.raises(JobScriptPreviewError, match="could not start"):
        preview_job_script(profile_template("pbs", preset="smoke"),
                           python=str(tmp_path / "missing"))


def test_cli_reads_json_and_exits_2_on_a_bad_profile():
    ok = subprocess.run([sys.executable, "-m", "core.execution.cluster_preview"], cwd=REPO,
                        text=True,
                        input=json.dumps(profile_template("lsf", preset="smoke")),
                        capture_output=True, timeout=120, check=False)
    assert ok.returncode == 0 and "#BSUB" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "core.execution.cluster_preview"], cwd=REPO,
                         text=True,
                         input='{"profile": "slurm", "memory": "lots"}', capture_output=True,
                         timeout=120, check=False)
    assert bad.returncode == 2 and "memory" in bad.stderr and not bad.stdout
