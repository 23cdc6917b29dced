"""Tests of core.pool: corpus, generation, filters, pool files, default pool, imports."""
from __future__ import annotations

import csv
import hashlib
import json
import time

import numpy as np
import pytest

from core import pool
from core.chem.polymer import canonical_psmiles, validate_psmiles

SMALL_N = 12


# --------------------------------------------------------------------------- corpus


def _corpus_rows():
    with open(pool.CORPUS_PATH, newline="") as fh:
        return list(csv.DictReader(fh))


def test_corpus_table_is_valid_and_unique():
    rows = _corpus_rows()
    assert len(rows) >= 150
    assert set(rows[0]) == {"name", "psmiles", "class", "source"}
    for r in rows:
        validate_psmiles(r["psmiles"])  # raises on any bad row
        assert r["name"] and r["class"] and r["source"]
    names = [r["name"] for r in rows]
    assert len(set(names)) == len(names)
    canon = [canonical_psmiles(r["psmiles"]) for r in rows]
    assert len(set(canon)) == len(canon), "two rows are the same polymer"


def test_corpus_covers_reference_and_sulfur_polymers():
    canon = {canonical_psmiles(r["psmiles"]) for r in _corpus_rows()}
    for s in ["*CC(*)(C)C(=O)OC",                        # PMMA
              "*CC(*)c1ccccc1",                          # PS
              "*Oc1ccc(C(C)(C)c2ccc(OC(*)=O)cc2)cc1",    # BPA-PC
              "*CC(*)CC(C)C",                            # TPX
              "*Sc1ccc(*)cc1",                           # PPS
              "*Oc1ccc(S(=O)(=O)c2ccc(*)cc2)cc1"]:       # PES
        assert canonical_psmiles(s) in canon
    rows = _corpus_rows()
    with_s = [r for r in rows if "S" in r["psmiles"].replace("Si", "") or "s" in
              r["psmiles"].replace("Cl", "")]
    sulfonyl = [r for r in rows if "S(=O)(=O)" in r["psmiles"] or "S(*)(=O)=O" in r["psmiles"]
                or "S(C)(=O)=O" in r["psmiles"]]
    assert len(with_s) >= 40 and len(sulfonyl) >= 10


def test_load_corpus_counts_and_hash(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("name,smiles\nPE,*CC*\nPE2,*CCCC*\nbad,C1CC\nPS,*CC(*)c1ccccc1\n")
    c = pool.load_corpus([f])
    assert c.psmiles == ["*C*", "*CC(*)c1ccccc1"]
    assert c.invalid and c.invalid[0][1] == 4
    src = c.sources[0]
    assert src["rows"] == 4 and src["valid"] == 3 and src["added"] == 2
    assert src["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()


def test_pi1070_as_user_corpus(shared_data, tmp_path):
    """PI1070.csv (many columns, a ``smiles`` column) reads as a corpus; first 60 rows."""
    lines = (shared_data / "PI1070.csv").read_text().splitlines()[:61]
    f = tmp_path / "pi60.csv"
    f.write_text("\n".join(lines) + "\n")
    c = pool.load_corpus([f])
    assert c.sources[0]["rows"] == 60 and c.sources[0]["valid"] == 60
    assert "*C*" in c.psmiles  # PI1: polyethylene


# --------------------------------------------------------------------------- reading lists


def test_read_polymer_list_formats():
    rows = pool.read_polymer_list("name,PSMILES\nPE,*CC*\n\nPS,*CC(*)c1ccccc1\n")
    assert rows == [(2, "*CC*", "PE"), (4, "*CC(*)c1ccccc1", "PS")]
    rows = pool.read_polymer_list("id\tsmiles\n1\t*CC*\n")
    assert rows == [(2, "*CC*", "")]
    rows = pool.read_polymer_list("# my list\n*CC*  polyethylene\n\n*CCO*\n")
    assert rows == [(2, "*CC*", "polyethylene"), (4, "*CCO*", "")]
    rows = pool.read_polymer_list("smiles\n*CC*\n")
    assert rows == [(2, "*CC*", "")]


def test_read_polymer_list_errors(tmp_path):
    with pytest.raises(pool.CorpusError, match="no polymer SMILES column"):
        pool.read_polymer_list("name,value\nPE,1\n")
    with pytest.raises(pool.CorpusError, match="no polymer SMILES"):
        pool.read_polymer_list("# nothing\n\n")
    with pytest.raises(pool.CorpusError):
        pool.load_corpus([])
    f = tmp_path / "binary.csv"
    f.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(pool.CorpusError, match="UTF-8"):
        pool.read_polymer_list(f)


# --------------------------------------------------------------------------- filters


@pytest.mark.parametrize("s,reason", [
    ("*C(OOC(*)C)OC", "peroxide"),
    ("*OC(C)C(O*)=O", "peroxide"),                 # O-O formed across the unit junction
    ("*CC(*)[SH](C)(C)=O", "sulfur(VI) without two S=O/S=N"),
    ("*CC(*)(C)C(=O)OC1=C(Br)C=C1Br", "cyclobutadiene"),
    ("*CC(*)OCl", "heteroatom-halogen bond"),
    ("*CC(*)C1CCCCCCCC1", "ring larger than 7"),
    ("*CC(*)" + "C" * 60, "more than 50 heavy atoms"),
])
def test_filters_reject(s, reason):
    can, why = pool.check_candidate(s)
    assert can is None and why == reason


@pytest.mark.parametrize("s", ["*Oc1ccc(S(=O)(=O)c2ccc(*)cc2)cc1", "*Sc1ccc(*)cc1",
                               "*CC(*)S(C)(=O)=O", "*SSCCOCOCC*", "*N=P(*)(OC)OC",
                               "*CC(*)c1ccc([N+](=O)[O-])cc1", "*C=C*"])
def test_filters_accept_real_polymers(s):
    can, why = pool.check_candidate(s)
    assert why is None and can == canonical_psmiles(s)


def test_check_candidate_reports_invalid():
    can, why = pool.check_candidate("*CC(*)C(C)(C)(C)C")
    assert can is None and why.startswith("invalid")


def test_chain_mol_bonds_the_two_ends():
    from rdkit import Chem

    from core.chem.polymer import parse_psmiles

    smi = Chem.MolToSmiles(pool.chain_mol(parse_psmiles("*Sc1ccc(*)cc1")))
    assert smi == Chem.CanonSmiles("c1cc2ccc1S2")
    # both stars on one atom: falls back to the cyclic trimer
    smi = Chem.MolToSmiles(pool.chain_mol(parse_psmiles("*C(*)(F)F")))
    assert smi == Chem.CanonSmiles("FC1(F)C(F)(F)C1(F)F")


# --------------------------------------------------------------------------- generation


@pytest.fixture(scope="module")
def small_model():
    rows = _corpus_rows()[::7]  # ~40 polymers of all classes
    corpus = [canonical_psmiles(r["psmiles"]) for r in rows]
    model = pool.train_model(corpus, pool.ModelParams(order=5, n_augment=5))
    return model, corpus


def test_small_model_generates_valid_unique_novel(small_model):
    model, corpus = small_model
    out, stats = pool.generate_candidates(model, 30, seed=0, exclude=corpus)
    assert len(out) == 30 == stats.accepted
    assert len(set(out)) == 30
    assert not set(out) & set(corpus)
    for s in out:
        validate_psmiles(s)
        assert canonical_psmiles(s) == s
        assert pool.check_candidate(s) == (s, None)
    assert stats.attempts >= stats.completed >= stats.valid >= 30
    assert stats.completed + stats.dead_ends + stats.too_long == stats.attempts
    again, _ = pool.generate_candidates(model, 30, seed=0, exclude=corpus)
    assert again == out
    other, _ = pool.generate_candidates(model, 30, seed=1, exclude=corpus)
    assert other != out


def test_unseen_environment_filter(small_model):
    from core.chem.polymer import parse_psmiles

    model, corpus = small_model
    envs = pool.corpus_environments(corpus)
    pe = pool.atom_environments(pool.chain_mol(parse_psmiles("*CC*")))
    assert pe == {("C", False, 2, 0, True, (("C", False, "SINGLE"), ("C", False, "SINGLE")))}
    out, stats = pool.generate_candidates(model, 15, seed=0, exclude=corpus, known_envs=envs,
                                          filters=pool.Filters(max_unseen_environments=0))
    assert len(out) == 15
    for s in out:
        assert pool.atom_environments(pool.chain_mol(parse_psmiles(s))) <= envs
    assert any("unseen" in k for k in stats.rejected)


def test_generation_stops_at_max_attempts(small_model):
    model, corpus = small_model
    out, stats = pool.generate_candidates(model, 10_000, seed=0, exclude=corpus,
                                          max_attempts=50)
    assert stats.attempts == 50 and len(out) < 10_000


def _long_line_text(n: int = 10 * 1024 * 1024) -> str:
    return "psmiles,name\n*CC(*)Cl,PVC\n*CC(*)" + "C" * n + ",huge\n*CCO*,PEO\n"


@pytest.mark.parametrize("text", [
    _long_line_text(),                                      # CSV, huge row in the middle
    "*CC(*)Cl\n*CC(*)" + "C" * (10 * 1024 * 1024) + "\n*CCO*\n",   # plain list
    "x" * 200_000 + "\n*CC(*)Cl\n*CCO*\n",                 # huge first line (header guess)
])
def test_import_reports_overlong_rows_by_number_without_echo(text):
    """A 10 MB line used to raise _csv.Error ("field larger than field limit") out of the
    dashboard's upload and the CLI; now it is one invalid row, named by its line number,
    with at most ~80 characters of it echoed."""
    rep = pool.import_candidates(text, descriptor_fn=lambda ps, n_jobs=1:
                                 np.zeros((len(ps), 170)))
    assert rep.n_added == 2 and rep.n_invalid == 1
    (line, shown, why), = rep.invalid
    assert line in (1, 2, 3) and text.splitlines()[line - 1].startswith(shown[:20])
    assert len(shown) <= 100 and len(why) <= 300, (len(shown), len(why))
    assert "characters" in why and f"{pool.MAX_ROW_CHARS:,}" in why
    with pytest.raises(pool.RowTooLong, match=f"line {line}:") as exc:
        pool.read_polymer_list(text)
    assert len(str(exc.value)) <= 300 and isinstance(exc.value, pool.CorpusError)


def test_import_cli_long_line_is_one_short_row(tmp_path, capsys):
    d = tmp_path / "base"
    pool.write_pool(d, ["a"], ["*CC(*)C"], np.zeros((1, 170)), {})
    f = tmp_path / "huge.csv"
    f.write_text(_long_line_text())
    assert pool.main(["import", str(f), "--out", str(d)]) == 0
    cap = capsys.readouterr()
    assert len(cap.out) + len(cap.err) < 2000, (len(cap.out), len(cap.err))
    assert "line 3: invalid" in cap.out and "3 rows: 2 added, 1 invalid" in cap.out


def test_import_rejects_invisible_characters_row_by_row():
    # a no-break space or a Unicode line separator is neither a field separator nor a line
    # break of a polymer list: "*CC*<NBSP>c1ccccc1" must not become polyethylene named
    # "c1ccccc1"
    text = ("*CC(*)Cl\n*CC(*)\u202eCl\n*CC(*)\x00C\n*CCO*\n*CC*\u00a0c1ccccc1\n"
            "*CC*\u2028c1ccccc1\n*CC(*)Br\tname with\u00a0nbsp\n")
    rep = pool.import_candidates(text, descriptor_fn=lambda ps, n_jobs=1:
                                 np.zeros((len(ps), 170)))
    assert rep.rows == [1, 4, 7]
    why = {ln: w for ln, _, w in rep.invalid}
    assert "U+202E" in why[2] and "U+0000" in why[3]
    assert "U+00A0" in why[5] and "U+2028" in why[6]
    assert pool.read_polymer_list("*CC*\u00a0c1ccccc1\n") == [(1, "*CC*\u00a0c1ccccc1", "")]


# --------------------------------------------------------------------------- pool files


@pytest.fixture(scope="module")
def built_pool(tmp_path_factory):
    d = tmp_path_factory.mktemp("pool")
    msgs: list[str] = []
    man = pool.build_pool(SMALL_N, seed=0, out_dir=d, n_jobs=1, progress=msgs.append,
                          command="test", model_params=pool.ModelParams(order=6, n_augment=3))
    return d, man, msgs


def test_build_pool_writes_consistent_files(built_pool):
    d, man, msgs = built_pool
    assert any(m.startswith("sampling:") for m in msgs)
    assert any(m.startswith("descriptors:") for m in msgs)
    p = pool.read_pool(d)
    assert len(p["ids"]) == SMALL_N and p["X"].shape == (SMALL_N, 170)
    assert p["ids"] == [f"VP{i:05d}" for i in range(1, SMALL_N + 1)]
    assert np.isfinite(p["X"]).all() and p["X"].min() >= 0 and p["X"].max() <= 1
    disk = json.loads((d / pool.MANIFEST).read_text())
    for name in (pool.POOL_NPZ, pool.POOL_CSV):
        assert disk["files"][name] == hashlib.sha256((d / name).read_bytes()).hexdigest()
    assert disk["corpus"][0]["sha256"] == pool.sha256_file(pool.CORPUS_PATH)
    assert disk["counts"]["pool"] == SMALL_N and disk["seed"] == 0
    assert {"rdkit", "numpy", "python"} <= set(disk["versions"])
    assert disk["model"]["file_sha256"] == pool.sha256_file(d / pool.MODEL_FILE)
    import gzip
    with gzip.open(d / pool.POOL_CSV, "rt") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["psmiles"] for r in rows] == p["psmiles"]


def test_build_pool_is_reproducible_and_model_reloads(built_pool, tmp_path):
    d, man, _ = built_pool
    man2 = pool.build_pool(SMALL_N, seed=0, out_dir=tmp_path / "a", n_jobs=1, command="test",
                           model_path=d / pool.MODEL_FILE)
    assert man2["files"][pool.POOL_CSV] == man["files"][pool.POOL_CSV]  # byte-identical
    a, b = pool.read_pool(d), pool.read_pool(tmp_path / "a")
    assert a["psmiles"] == b["psmiles"] and np.array_equal(a["X"], b["X"])
    man3 = pool.build_pool(SMALL_N, seed=1, out_dir=tmp_path / "b", n_jobs=1, command="test",
                           model_path=d / pool.MODEL_FILE)
    assert man3["files"][pool.POOL_CSV] != man["files"][pool.POOL_CSV]


def test_cli_generate(tmp_path, capsys):
    out = tmp_path / "p"
    rc = pool.main(["generate", "--n", "4", "--seed", "2", "--order", "6", "--augment", "2",
                    "--n-jobs", "1", "--out", str(out)])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["pool"] == 4
    man = json.loads((out / pool.MANIFEST).read_text())
    assert man["command"].startswith("python -m core.pool generate --n 4 --seed 2")
    assert man["model"]["params"]["order"] == 6 and man["seed"] == 2
    from core.chem.descriptors import DESCRIPTOR_VERSION
    assert man["descriptors"]["version"] == DESCRIPTOR_VERSION
    assert pool.main(["generate", "--n", "4", "--out", str(out), "--corpus",
                      str(tmp_path / "missing.csv")]) == 2


def test_write_pool_rejects_inconsistent_input(tmp_path):
    X = np.zeros((2, 170))
    with pytest.raises(pool.PoolError):
        pool.write_pool(tmp_path, ["a", "a"], ["*C*", "*CO*"], X, {})
    with pytest.raises(pool.PoolError):
        pool.write_pool(tmp_path, ["a", "b"], ["*C*"], X, {})
    with pytest.raises(pool.PoolError):
        pool.write_pool(tmp_path, ["a", "b"], ["*C*", "*CO*"], X * np.nan, {})
    assert not list(tmp_path.iterdir())
    with pytest.raises(pool.PoolError):
        pool.read_pool(tmp_path)


# --------------------------------------------------------------------------- default pool


def test_default_pool_shape_dtype_uniqueness():
    p = pool.load_default_pool()
    n = len(p["ids"])
    assert n == p["manifest"]["n"] >= 10_000
    assert p["X"].shape == (n, 170) and p["X"].dtype == np.float64
    assert len(set(p["ids"])) == n and len(set(p["psmiles"])) == n
    assert np.isfinite(p["X"]).all()
    assert p["X"].min() >= 0.0 and p["X"].max() <= 1.0
    corpus = {canonical_psmiles(r["psmiles"]) for r in _corpus_rows()}
    assert not corpus & set(p["psmiles"])
    for s in p["psmiles"][:: max(1, n // 40)]:
        assert canonical_psmiles(s) == s
    assert p["manifest"]["corpus"][0]["sha256"] == pool.sha256_file(pool.CORPUS_PATH)


def test_default_pool_is_cached_and_read_only():
    a = pool.load_default_pool()
    t = time.perf_counter()
    b = pool.load_default_pool()
    assert time.perf_counter() - t < 1.0
    assert b["X"] is a["X"] and not a["X"].flags.writeable
    b["ids"].append("x")  # callers get their own lists
    assert len(pool.load_default_pool()["ids"]) == len(a["ids"])


def test_default_pool_descriptors_match_recomputation():
    from core.chem.descriptors import ff_kernel_mean_batch

    p = pool.load_default_pool()
    idx = [0, 1, len(p["ids"]) // 2, len(p["ids"]) - 1]
    X = ff_kernel_mean_batch([p["psmiles"][i] for i in idx])
    assert np.allclose(X, p["X"][idx], atol=1e-6)


# --------------------------------------------------------------------------- imports


IMPORT_TEXT = """psmiles,name
*CC(*)c1ccc(Cl)cc1Cl,dichlorostyrene
not a smiles,junk
*CC(*)c1ccc(Cl)cc1Cl,again
*C(*)c1ccccc1,one more
*CC*,polyethylene
*CCC,one star
*Oc1ccc(S(=O)(=O)c2ccc(*)cc2)cc1,PES
*C(C*)c1ccc(Cl)cc1Cl,shifted repeat
"""


def test_import_report_cases():
    rep = pool.import_candidates(IMPORT_TEXT, existing_keys=[canonical_psmiles("*CC*")])
    assert rep.n_rows == 8
    assert [r for r, _, _ in rep.invalid] == [3, 7]
    assert "unparsable" in rep.invalid[0][2] or "whitespace" in rep.invalid[0][2]
    assert "two '*'" in rep.invalid[1][2]
    dup = {r: why for r, _, why in rep.duplicates}
    assert dup == {4: "duplicate of line 2", 6: "already in the pool", 9: "duplicate of line 2"}
    assert rep.rows == [2, 5, 8]
    assert rep.psmiles == [canonical_psmiles(s) for s in
                           ["*CC(*)c1ccc(Cl)cc1Cl", "*C(*)c1ccccc1",
                            "*Oc1ccc(S(=O)(=O)c2ccc(*)cc2)cc1"]]
    assert rep.X.shape == (3, 170) and np.isfinite(rep.X).all()
    assert len(set(rep.ids)) == 3 and all(i.startswith("U-") for i in rep.ids)
    assert rep.summary() == "8 rows: 3 added, 2 invalid, 3 duplicates skipped"


def test_import_accepts_polymer_keys_as_existing():
    from core.chem.polymer import polymer_key

    rep = pool.import_candidates("*CCO*\n*CC(*)C\n", existing_keys=[polymer_key("*OCC*")])
    assert rep.duplicates == [(1, "*CCO*", "already in the pool")] and rep.rows == [2]


def test_import_descriptor_failure_is_reported_not_half_imported():
    calls = []

    def picky(ps, n_jobs=1):
        calls.append(list(ps))
        if any("Cl" in s for s in ps):
            raise RuntimeError("no parameters for this one")
        return np.full((len(ps), 170), 0.5)

    rep = pool.import_candidates("*CC(*)Cl\n*CC(*)C#N\n*CCO*\n", descriptor_fn=picky)
    assert rep.rows == [2, 3]
    assert rep.invalid == [(1, "*CC(*)Cl", "descriptor failed: no parameters for this one")]
    assert rep.X.shape == (2, 170)


def test_import_into_pool_and_cli(built_pool, tmp_path, capsys):
    base, _, _ = built_pool
    f = tmp_path / "mine.csv"
    f.write_text(IMPORT_TEXT)
    out = tmp_path / "campaign_pool"
    rc = pool.main(["import", str(f), "--out", str(out), "--base", str(base)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "line 3: invalid" in text and "line 6: skipped" not in text
    assert "8 rows: 4 added, 2 invalid, 2 duplicates skipped" in text
    p = pool.read_pool(out)
    assert len(p["ids"]) == SMALL_N + 4
    assert p["sources"][-1] == "import:mine.csv"
    assert p["manifest"]["imports"][0]["added"] == 4
    # importing the same file again adds nothing and leaves the files untouched
    before = (out / pool.POOL_NPZ).read_bytes()
    rep = pool.import_into_pool(f, out)
    assert rep.n_added == 0 and rep.n_duplicates == 6
    assert (out / pool.POOL_NPZ).read_bytes() == before


def test_import_unreadable_file_changes_nothing(built_pool, tmp_path):
    base, _, _ = built_pool
    before = {p.name: p.read_bytes() for p in base.iterdir()}
    bad = tmp_path / "bad.csv"
    bad.write_text("name,value\nx,1\n")
    with pytest.raises(pool.CorpusError):
        pool.import_into_pool(bad, base)
    assert before == {p.name: p.read_bytes() for p in base.iterdir()}
    assert pool.main(["import", str(bad), "--out", str(base)]) == 2


def test_import_refuses_pool_of_other_descriptor_version(tmp_path):
    d = tmp_path / "old"
    pool.write_pool(d, ["a"], ["*CC(*)C"], np.zeros((1, 170)),
                    {"descriptors": {"version": "ffkm-0/old"}})
    f = tmp_path / "x.txt"
    f.write_text("*CC(*)Cl\n")
    with pytest.raises(pool.PoolError, match="version"):
        pool.import_into_pool(f, d)
    assert len(pool.read_pool(d)["ids"]) == 1
    assert pool.main(["redescribe", str(d), "--n-jobs", "1"]) == 0
    p = pool.read_pool(d)
    from core.chem.descriptors import DESCRIPTOR_VERSION, ff_kernel_mean
    assert p["manifest"]["descriptors"]["version"] == DESCRIPTOR_VERSION
    assert np.allclose(p["X"][0], ff_kernel_mean("*CC(*)C"), atol=1e-6)
    assert pool.import_into_pool(f, d).n_added == 1


def test_import_stores_a_stable_canonical_form():
    # RDKit re-perceives this bridged ring's aromaticity once: the stored form is the
    # fixed point of canonical_psmiles
    s = "*C=C1C(=O)c2cc(-c3ccc4cc(c3=O)C4=C*)ccc21"
    rep = pool.import_candidates(s + "\n", descriptor_fn=lambda ps, n_jobs=1:
                                 np.zeros((len(ps), 170)))
    (can,) = rep.psmiles
    assert canonical_psmiles(can) == can
