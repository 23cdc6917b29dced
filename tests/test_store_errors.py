"""Unusable, read-only and full databases: one clear line naming the file, exit code 2, and
no half-written campaign (real SQLite files; the read-only directory and the full disk are
real too: a directory without write permission, and a file-size limit on the process)."""
from __future__ import annotations

import os
import resource
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.campaign.commands import create_campaign, main
from core.store import Store, StoreError, StoreUnavailable

REPO = Path(__file__).resolve().parents[1]
RECORDS = [("PMMA", "*CC(*)(C)C(=O)OC", 1.4914, 57.4), ("PS", "*CC(*)c1ccccc1", 1.592, 30.9),
           ("PC", "*Oc1ccc(C(C)(C)c2ccc(OC(*)=O)cc2)cc1", 1.585, 29.9)]


def _good_db(path: Path, *, n_obs: int = 0) -> Path:
    """A real, cleanly closed store with campaign ``a`` (checkpointed: no -wal/-shm left)."""
    s = Store(path)
    s.create_campaign("a", {"preset": "smoke"}, actor="test")
    for i in range(n_obs):
        name, ps, n, v = RECORDS[i % len(RECORDS)]
        s.add_observation("a", ps, {"n_D": n, "abbe_number": v}, source="initial",
                          name=f"{name}-{i}", actor="test")
    s.close()
    assert not Path(str(path) + "-wal").exists()
    return path


def _bad_file(kind: str, tmp_path: Path) -> Path:
    p = tmp_path / f"{kind}.db"
    if kind == "garbage":
        p.write_bytes(bytes(range(256)) * 20)
    elif kind == "truncated":
        raw = _good_db(tmp_path / "full.db").read_bytes()
        p.write_bytes(raw[:3000])
    elif kind == "header_only":
        raw = _good_db(tmp_path / "full.db").read_bytes()
        p.write_bytes(raw[:100])
    elif kind == "directory":
        p.mkdir()
    return p


def _one_clear_line(err: str, path: Path) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "sqlite3." not in err
    assert str(path) in lines[0]
    return lines[0]


@pytest.mark.parametrize("kind", ["garbage", "truncated", "header_only", "directory"])
def test_unusable_file_is_a_named_error_and_cli_exit_2(kind, tmp_path, capsys, monkeypatch):
    p = _bad_file(kind, tmp_path)
    with pytest.raises(StoreUnavailable) as exc:
        Store(p).list_campaigns()
    assert str(p) in str(exc.value) and isinstance(exc.value, StoreError)
    for argv in (["status", "a"], ["export", "a", "--out", str(tmp_path / "exp")],
                 ["new", "b", "--preset", "smoke"]):
        monkeypatch.setenv("OPTIPOLY_DB", str(p))  # as the dashboard and the CLI read it
        assert main(argv) == 2, argv
        _one_clear_line(capsys.readouterr().err, p)


def test_unusable_file_as_a_program_exit_2(tmp_path):
    p = _bad_file("garbage", tmp_path)
    res = subprocess.run([sys.executable, "-m", "core.campaign", "status", "a"],
                         capture_output=True, text=True, cwd=REPO, timeout=120,
                         env={**os.environ, "OPTIPOLY_DB": str(p)})
    assert res.returncode == 2, res.stderr
    line = _one_clear_line(res.stderr, p)
    assert "not an SQLite database" in line


# --------------------------------------------------------------------------- read-only


def _as_unprivileged(cmd: list[str]) -> list[str]:
    """Root ignores file permissions: drop the capabilities that let it (DAC override)."""
    if os.geteuid() != 0:
        return cmd
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot make a directory read-only")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", *cmd]


@pytest.fixture()
def read_only_store(tmp_path):
    d = tmp_path / "var"
    d.mkdir()
    p = _good_db(d / "optipoly.db", n_obs=3)
    p.chmod(0o444)
    d.chmod(0o555)
    yield p
    d.chmod(0o755)
    p.chmod(0o644)


def _cli(args: list[str], db: Path) -> subprocess.CompletedProcess:
    return subprocess.run(_as_unprivileged([sys.executable, "-m", "core.campaign", *args]),
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, "OPTIPOLY_DB": str(db),
                               "PYTHONDONTWRITEBYTECODE": "1"})


def test_read_only_store_serves_read_commands(read_only_store, tmp_path):
    db = read_only_store
    res = _cli(["status", "a"], db)
    assert res.returncode == 0, res.stderr
    assert "campaign a: cycle 0, 3 observation(s)" in res.stdout
    res = _cli(["export", "a", "--out", str(tmp_path / "exp")], db)
    assert res.returncode == 0, res.stderr
    assert len(pd.read_csv(tmp_path / "exp" / "observations.csv")) == 3
    res = _cli(["new", "b", "--preset", "smoke"], db)
    assert res.returncode == 2
    assert "read-only" in _one_clear_line(res.stderr, db)
    assert sorted(x.name for x in db.parent.iterdir()) == ["optipoly.db"]


def test_read_only_open_in_process(tmp_path, monkeypatch):
    """Without write permission (simulated for root) the store opens ``mode=ro`` + immutable
    and refuses writes with a named error instead of touching the file."""
    p = _good_db(tmp_path / "ro.db", n_obs=2)
    before = p.read_bytes()
    s = Store(p, read_only=True)
    assert s.read_only and list(s.list_campaigns()["name"]) == ["a"]
    assert len(s.observations("a")) == 2
    with pytest.raises(StoreUnavailable, match="read-only"):
        s.create_campaign("b")
    s.close()
    assert p.read_bytes() == before
    monkeypatch.setattr("core.store.db._writable", lambda path: False)
    assert Store(p).read_only
    with pytest.raises(StoreUnavailable, match="read-only"):
        Store(tmp_path / "new.db")  # cannot create a database where nothing may be written


# --------------------------------------------------------------------------- full disk


def _limit_file_size() -> None:
    # 32 KiB: the -shm index fits, the write-ahead log does not grow past ~7 pages
    resource.setrlimit(resource.RLIMIT_FSIZE, (32768, 32768))


def test_full_disk_gives_one_line_and_leaves_no_half_campaign(tmp_path):
    db = _good_db(tmp_path / "f.db")
    init = tmp_path / "init.csv"
    rows = [{"name": f"{RECORDS[i % 3][0]}-{i}", "psmiles": RECORDS[i % 3][1],
             "n_D": RECORDS[i % 3][2], "abbe_number": RECORDS[i % 3][3],
             "provenance": "measured " + "x" * 400} for i in range(60)]
    pd.DataFrame(rows).to_csv(init, index=False)
    cmd = [sys.executable, "-m", "core.campaign", "--db", str(db), "new", "big", "--preset",
           "smoke", "--initial", str(init)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120,
                         preexec_fn=_limit_file_size,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert res.returncode == 2, res.stderr
    line = _one_clear_line(res.stderr, db)
    assert "disk" in line
    s = Store(db)
    assert list(s.list_campaigns()["name"]) == ["a"]  # nothing half-made
    s.close()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr  # the retry does not say "already exists"
    assert len(Store(db).observations("big")) == 60


def test_failed_first_proposal_rolls_back_the_whole_campaign(tmp_path, monkeypatch, capsys):
    """``new --propose`` is one transaction: a full disk while the batch is written leaves no
    campaign, no observations and no audit rows behind, and the retry succeeds."""
    pool_csv = tmp_path / "pool.csv"
    pd.DataFrame({"id": ["A", "B", "C", "D"],
                  "psmiles": ["*CC*", "*CC(*)Cl", "*CCO*", "*CC(*)C#N"]}).to_csv(pool_csv,
                                                                                  index=False)
    db = tmp_path / "p.db"
    store = Store(db)
    records = [{"name": n, "psmiles": ps, "values": {"n_D": nd, "abbe_number": v}}
               for n, ps, nd, v in RECORDS]
    cfg = {"pool_source": str(pool_csv), "batch_size": 2, "preset": "smoke"}

    def disk_full(*_a, **_k):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "create_batch", disk_full)
    with pytest.raises(StoreUnavailable, match="full"):
        create_campaign(store, "c1", cfg, initial=records, propose=True, actor="t")
    con = sqlite3.connect(db)
    assert [con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("campaigns", "observations", "cycles", "audit")] == [0, 0, 0, 0]
    con.close()
    # the same through the CLI: one line, exit code 2
    init = tmp_path / "init.csv"
    pd.DataFrame([{"name": n, "psmiles": ps, "n_D": nd, "abbe_number": v}
                  for n, ps, nd, v in RECORDS]).to_csv(init, index=False)
    argv = ["--db", str(db), "new", "c1", "--preset", "smoke", "--batch-size", "2", "--pool",
            str(pool_csv), "--initial", str(init), "--propose"]
    assert main(argv) == 2
    _one_clear_line(capsys.readouterr().err, db)
    monkeypatch.undo()
    assert main(argv) == 0
    assert "created campaign c1" in capsys.readouterr().out
    assert store.current_batch("c1")["status"] == "proposed"
    assert len(store.observations("c1")) == 3


def test_store_still_usable_after_a_failed_group(tmp_path):
    """A failure inside :meth:`Store.transaction` rolls back every step of the group; the
    connection is clean for the next call."""
    s = Store(tmp_path / "t.db")
    with pytest.raises(RuntimeError):
        with s.transaction():
            s.create_campaign("x")
            s.add_observation("x", "*CC*", {"n_D": 1.5, "abbe_number": 50}, source="initial")
            raise RuntimeError("boom")
    assert len(s.list_campaigns()) == 0
    with s.transaction():
        s.create_campaign("x")
        with pytest.raises(StoreError):  # a failing inner step undoes only itself
            s.create_campaign("x")
        s.add_observation("x", "*CC*", {"n_D": 1.5, "abbe_number": 50}, source="initial")
    assert len(s.observations("x")) == 1


def test_runner_keeps_a_result_it_could_not_store(tmp_path, monkeypatch):
    """A full disk while a finished result is stored is not the result's fault: the
    calculation stays running, the result is kept and stored at the next pass (it used to be
    failed for good as an "invalid result")."""
    from core.chem.polymer import polymer_key
    from core.execution.runner import Runner

    s = Store(tmp_path / "r.db")
    s.create_campaign("r", {"preset": "smoke"}, actor="t")
    b = s.create_batch("r", [{"psmiles": "*CC(*)C", "key": polymer_key("*CC(*)C")}],
                       strategy="ehvi", actor="t")
    assert s.approve_batch(b["id"], actor="t")["approved"]
    cid = int(s.calculations("r")["id"].iloc[0])
    att = s.start_attempt(cid, dask_key="k", workdir=str(tmp_path / "w"),
                          log_path=str(tmp_path / "w.log"))

    class Finished:
        status = "finished"

        def result(self):
            return {"result": {"n_D": 1.49, "abbe_number": 56.0}, "execution": {}}

    runner = Runner(s.path, "r", log=lambda msg: None)
    runner.futures[cid] = (Finished(), att)
    real = Store.complete_calculation

    def disk_full(self, *a, **k):
        with self._tx() as con:
            con.execute("UPDATE calculations SET message='half' WHERE id=?", (cid,))
            raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "complete_calculation", disk_full)
    with pytest.raises(StoreUnavailable, match="full"):
        runner._collect_results()
    calc = s.get_calculation(cid)
    assert calc["status"] == "running" and calc["message"] != "half" and cid in runner.futures
    monkeypatch.setattr(Store, "complete_calculation", real)
    runner._collect_results()
    assert s.get_calculation(cid)["status"] == "done" and len(s.observations("r")) == 1


def test_runner_on_a_read_only_store_exits_2_with_one_line(read_only_store):
    """The runner cannot take its lock beside a read-only database: one line naming the
    database, exit 2, no traceback, nothing written (found by benchmarks/bench_faults.py)."""
    db = read_only_store
    before = db.read_bytes()
    res = subprocess.run(_as_unprivileged([sys.executable, "-m", "core.runner", "--campaign",
                                           "a", "--db", str(db)]),
                         capture_output=True, text=True, cwd=REPO, timeout=120,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert res.returncode == 2, res.stderr
    assert "runner lock" in _one_clear_line(res.stderr, db)
    assert db.read_bytes() == before
    assert sorted(x.name for x in db.parent.iterdir()) == ["optipoly.db"]
