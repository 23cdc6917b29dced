"""Importing measured / literature n_D, ν_D values (core.campaign.measurements, ``campaign
import-measurements`` and ``campaign new --measurements``).

The values are the experimental n_D / ν_D of reference polymers shipped in
assets/reference_polymers.csv (sourced numbers), not invented ones.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core.campaign.commands import create_campaign, main
from core.campaign.measurements import (MeasurementImportError, check_measurements,
                                        import_measurements, load_measurements_csv,
                                        parse_measurements_csv)
from core.chem.polymer import polymer_key
from core.store import Store

REPO = Path(__file__).resolve().parents[1]
POOL = ["*CC*", "*CC(*)C", "*CC(*)CC", "*CC(*)Cl", "*CC(*)F", "*CC(F)(F)*", "*CC(*)C#N",
        "*CC(*)c1ccccc1", "*CC(*)(C)C(=O)OC", "*CC(*)C(=O)OC", "*CCO*", "*CCS*",
        "*CCS(=O)(=O)*", "*c1ccc(S*)cc1", "*CC(*)C(=O)SC"]


def _refs(abbrevs=("PMMA", "PS", "PC", "COP")) -> pd.DataFrame:
    ref = pd.read_csv(REPO / "assets" / "reference_polymers.csv", comment="#")
    return ref.set_index("abbreviation").loc[list(abbrevs)].reset_index()


def _csv(tmp_path: Path, rows: list[dict], name: str = "meas.csv") -> Path:
    p = tmp_path / name
    pd.DataFrame(rows).to_csv(p, index=False)
    return p


def _good_rows(abbrevs=("PMMA", "PS", "PC", "COP")) -> list[dict]:
    return [{"psmiles": r.psmiles, "n_D": r.n_D, "abbe_number": r.abbe_number,
             "name": r.abbreviation} for r in _refs(abbrevs).itertuples()]


@pytest.fixture(scope="module")
def pool_csv(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("pool") / "pool.csv"
    pd.DataFrame({"id": [f"T{i}" for i in range(len(POOL))], "psmiles": POOL}).to_csv(
        p, index=False)
    return p


@pytest.fixture()
def store(tmp_path, pool_csv) -> Store:
    s = Store(tmp_path / "m.db")
    create_campaign(s, "m1", {"pool_source": str(pool_csv), "preset": "smoke"}, actor="t")
    return s


def test_parse_accepts_aliases_bom_comments_and_keeps_line_numbers() -> None:
    text = ("\ufeffSMILES,nD,nu_D,Name,Reference\n# a comment line\n"
            "*CC(*)c1ccccc1,1.592,31,PS,Kasarova 2007\n\n*CC(*)(C)C(=O)OC,1.492,58,,\n")
    rows = parse_measurements_csv(text)
    assert [r["line"] for r in rows] == [3, 5]
    assert rows[0]["psmiles"] == "*CC(*)c1ccccc1" and rows[0]["n_D"] == "1.592"
    assert rows[0]["abbe_number"] == "31" and rows[0]["source"] == "Kasarova 2007"
    with pytest.raises(MeasurementImportError, match="missing column.*abbe_number"):
        parse_measurements_csv("psmiles,n_D\n*CC*,1.5\n")
    with pytest.raises(MeasurementImportError, match="empty file"):
        parse_measurements_csv("\n\n")


def test_check_names_every_bad_row() -> None:
    rows = parse_measurements_csv(
        "psmiles,n_D,abbe_number,source\n"
        "*CC(*)c1ccccc1,1.592,31,Kasarova 2007\n"     # line 2: fine
        "*C(*)(F)C(*)Cl,1.45,40,x\n"                   # 3: three stars
        "*CCO*,abc,40,x\n"                             # 4: n_D not a number
        "*CCS*,3.5,200,x\n"                            # 5: n_D and ν_D implausible
        "*CC(*)c1ccccc1,1.59,31,x\n"                   # 6: same polymer as line 2
        "*CCO*,1.45,nan,\n"                            # 7: ν_D nan, no source
        "*CC(*)Cl,0.9,4,x\n")                          # 8: n_D < 1, ν_D < 5
    good, bad = check_measurements(rows)
    assert [g["line"] for g in good] == [2]
    assert good[0]["key"] == polymer_key("*CC(*)c1ccccc1") and good[0]["n_D"] == 1.592
    by = {p.line: p.problem for p in bad}
    assert sorted(by) == [3, 4, 5, 6, 7, 8]
    assert "invalid polymer SMILES" in by[3] and "exactly two '*'" in by[3]
    assert "n_D is not a number: abc" in by[4]
    assert "n_D = 3.5 is implausible (expected 1 to 3)" in by[5]
    assert "ν_D = 200 is implausible (expected 5 to 150)" in by[5]
    assert "duplicate: the same polymer as line 2" in by[6]
    assert "ν_D is not a finite number" in by[7] and "no source" in by[7]
    assert "n_D = 0.9 is implausible" in by[8] and "ν_D = 4 is implausible" in by[8]


def test_import_stores_experimental_observations_with_provenance(store) -> None:
    rows = parse_measurements_csv(pd.DataFrame(_good_rows()).to_csv(index=False))
    ids = import_measurements(store, "m1", rows, source="Kasarova 2007",
                              file_name="refs.csv", actor="alice")
    obs = store.observations("m1").set_index("id").loc[ids]
    assert len(obs) == 4 and set(obs["source"]) == {"experimental"}
    ps = obs.set_index("name").loc["PS"]
    assert ps["n_D"] == pytest.approx(1.592) and ps["abbe_number"] == pytest.approx(31)
    assert ps["result"] == {"n_D": 1.592, "abbe_number": 31.0, "origin": "experimental",
                            "source": "Kasarova 2007"}
    assert ps["provenance"]["source"] == "Kasarova 2007"
    assert ps["provenance"]["origin"] == "experimental"
    assert ps["provenance"]["file"] == "refs.csv" and ps["provenance"]["line"] == 3
    assert ps["provenance"]["imported_by"] == "alice"
    assert set(obs["cycle"]) == {0}
    audit = store.audit_log("m1")
    assert (audit["action"] == "import_measurements").sum() == 1


def test_a_file_with_one_bad_row_imports_nothing_and_reimport_is_a_duplicate(store) -> None:
    rows = _good_rows() + [{"psmiles": "*CC(*)C#N", "n_D": "high", "abbe_number": 40}]
    with pytest.raises(MeasurementImportError) as ei:
        import_measurements(store, "m1", parse_measurements_csv(
            pd.DataFrame(rows).to_csv(index=False)), source="s")
    assert "1 of 5 row(s) unusable; nothing was imported" in str(ei.value)
    assert "line 6: n_D is not a number: high" in str(ei.value)
    assert [p.line for p in ei.value.problems] == [6]
    assert len(store.observations("m1")) == 0
    ok = parse_measurements_csv(pd.DataFrame(rows[:2]).to_csv(index=False))
    import_measurements(store, "m1", ok, source="s")
    with pytest.raises(MeasurementImportError, match="already measured in this campaign"):
        import_measurements(store, "m1", ok, source="s")
    assert len(store.observations("m1")) == 2


def test_cli_import_measurements(tmp_path, store, capsys) -> None:
    db = str(store.path)
    good = _csv(tmp_path, _good_rows())
    assert main(["--db", db, "import-measurements", "m1", "--csv", str(good),
                 "--source", "Ando 2015"]) == 0
    assert "imported 4 measurement(s)" in capsys.readouterr().out
    obs = store.observations("m1")
    assert {p["source"] for p in obs["provenance"]} == {"Ando 2015"}
    bad = _csv(tmp_path, [{"psmiles": "*CC(*)Cl", "n_D": 1.54, "abbe_number": 50},
                          {"psmiles": "*C(*)(F)C(*)Cl", "n_D": 1.4, "abbe_number": 60},
                          {"psmiles": "*CCO*", "n_D": 1.45, "abbe_number": 900}], "bad.csv")
    assert main(["--db", db, "import-measurements", "m1", "--csv", str(bad),
                 "--source", "x"]) == 2
    err = capsys.readouterr().err
    assert "bad.csv: 2 of 3 row(s) unusable; nothing was imported" in err
    assert "line 3: invalid polymer SMILES" in err and "line 4: ν_D = 900" in err
    assert "Traceback" not in err
    assert len(store.observations("m1")) == 4
    assert main(["--db", db, "import-measurements", "m1", "--csv",
                 str(tmp_path / "absent.csv")]) == 2
    assert "not found" in capsys.readouterr().err


def test_new_campaign_starts_from_measurements_and_proposes(tmp_path, pool_csv,
                                                            capsys) -> None:
    """Without copied data a new campaign stopped at 'needs at least 2 observations'; with
    --measurements it has them and proposes its first batch."""
    db = str(tmp_path / "n.db")
    meas = _csv(tmp_path, _good_rows())
    assert main(["--db", db, "new", "fresh", "--preset", "smoke", "--batch-size", "2",
                 "--pool", str(pool_csv), "--measurements", str(meas),
                 "--source", "Kasarova 2007", "--propose"]) == 0
    out = capsys.readouterr().out
    assert "with 4 observation(s)" in out
    s = Store(db)
    obs = s.observations("fresh")
    assert set(obs["source"]) == {"experimental"} and set(obs["cycle"]) == {0}
    assert s.current_batch("fresh")["status"] == "proposed"
    assert s.cycles("fresh").iloc[0]["n_observations"] == 4
    assert s.campaign_config("fresh").experimental_in_model  # started from measured values
    assert "measured values are fitted too" in out
    # kept apart on request: no data of the campaign's own fidelity, so no proposal (exit 2)
    assert main(["--db", db, "new", "apart", "--preset", "smoke", "--pool", str(pool_csv),
                 "--measurements", str(meas), "--source", "Kasarova 2007",
                 "--no-experimental-in-model", "--propose"]) == 2
    assert "4 observation(s) of other fidelities (experimental)" in capsys.readouterr().err
    # a bad measurements file: exit 2, the rows named, no half-made campaign
    bad = _csv(tmp_path, [*_good_rows(("PMMA",)),
                          {"psmiles": "*CC*", "n_D": 1.49, "abbe_number": 58}], "b.csv")
    pd.concat([pd.read_csv(bad), pd.read_csv(bad).iloc[[0]]]).to_csv(bad, index=False)
    assert main(["--db", db, "new", "broken", "--pool", str(pool_csv),
                 "--measurements", str(bad), "--source", "x"]) == 2
    err = capsys.readouterr().err
    assert "line 4: duplicate: the same polymer as line 2" in err
    assert "broken" not in set(s.list_campaigns()["name"])


def test_export_keeps_the_measurement_source(tmp_path, store) -> None:
    from core.campaign.commands import export_observations

    import_measurements(store, "m1", parse_measurements_csv(
        pd.DataFrame(_good_rows(("PS", "PC"))).to_csv(index=False)), source="Ando 2015")
    flat, full = export_observations(store, "m1")
    assert set(flat["source"]) == {"experimental"}
    assert json.loads(flat.loc[0, "provenance"])["source"] == "Ando 2015"
    assert full[0]["result"]["origin"] == "experimental"
