"""Unit tests of core.pool.ngram: tokens, ring relabelling, counts, masks, sampling, files."""
from __future__ import annotations

import gzip

import pytest
from rdkit import Chem

from core.pool import ngram
from core.pool.ngram import (EOS, ModelFileError, SmilesTokenError, atom_capacity, relabel_rings,
                             tokenize, train_ngram)


def test_tokenize_roundtrip_and_special_tokens():
    s = "*CC(*)c1ccc([N+](=O)[O-])cc1Cl"
    toks = tokenize(s)
    assert "".join(toks) == s
    assert "[N+]" in toks and "[O-]" in toks and "Cl" in toks
    assert tokenize("C%12CC%12") == ["C", "%12", "C", "C", "%12"]
    assert tokenize("*Br") == ["*", "Br"]


@pytest.mark.parametrize("bad", ["", "CC.CC", "C C", "C]"])
def test_tokenize_rejects(bad):
    with pytest.raises(SmilesTokenError):
        tokenize(bad)


def test_relabel_rings_smallest_free_label():
    assert "".join(relabel_rings(tokenize("C3CC3"))) == "C1CC1"
    assert "".join(relabel_rings(tokenize("c1ccc2ccccc2c1"))) == "c1ccc2ccccc2c1"
    assert "".join(relabel_rings(tokenize("C5CC5C7CC7"))) == "C1CC1C1CC1"
    assert "".join(relabel_rings(tokenize("C2CC1CCC12"))) == "C1CC2CCC21"
    with pytest.raises(SmilesTokenError):
        relabel_rings(tokenize("C1CC"))


@pytest.mark.parametrize("tok,cap", [("C", (4, False)), ("c", (3, True)), ("O", (2, False)),
                                      ("Cl", (1, False)), ("S", (6, False)),
                                      ("[nH]", (2, True)), ("[N+]", (4, False)),
                                      ("[O-]", (1, False)), ("[CH2]", (2, False)),
                                      ("*", (1, False))])
def test_atom_capacity(tok, cap):
    assert atom_capacity(tok) == cap


def test_counts_by_hand():
    m = train_ngram(["*CC*"], order=2)
    # tokens: <s> * C C * </s>
    assert dict(zip(*m.table[("C",)])) == {"C": 1, "*": 1}
    assert dict(zip(*m.table[("*", "C")])) == {"C": 1}
    assert dict(zip(*m.table[("C", "C")])) == {"*": 1}
    assert dict(zip(*m.table[("C", "*")])) == {EOS: 1}
    assert sum(m.table[()][1]) == 5
    assert m.meta["n_strings"] == 1 and m.meta["n_tokens"] == 5


def _complete(s: str) -> bool:
    """Syntactic completeness: two stars, balanced branches, every ring label closed."""
    toks = tokenize(s)
    depth = 0
    for t in toks:
        depth += (t == "(") - (t == ")")
        if depth < 0:
            return False
    relabel_rings(toks)  # raises on an unclosed ring
    return depth == 0 and toks.count("*") == 2


CORPUS = ["*CC(*)c1ccccc1", "*CC(*)(C)C(=O)OC", "*Oc1ccc(S(=O)(=O)c2ccc(*)cc2)cc1",
          "*Sc1ccc(*)cc1", "*CCO*", "*CC(*)Cl", "*NCCCCCC(*)=O", "*CC(*)C#N",
          "*Oc1ccc(C(C)(C)c2ccc(OC(*)=O)cc2)cc1", "*c1ccc(*)s1", "*OCCOC(=O)c1ccc(C(*)=O)cc1",
          "*CC(*)(F)F"]


@pytest.mark.parametrize("kekule", [False, True])
def test_samples_are_complete_and_mostly_valid(kekule):
    strings = ngram.training_strings(CORPUS, n_augment=5, seed=0, kekule=kekule)
    assert all(s.startswith("*") for s in strings)
    m = train_ngram(strings, order=5)
    stats = ngram.SampleStats()
    out = ngram.sample(m, 300, seed=0, stats=stats)
    assert stats.attempts == 300 and stats.completed == len(out) > 50
    assert stats.abandoned == stats.dead_end + stats.too_long == 300 - len(out)
    assert all(_complete(s) for s in out)
    parsed = [Chem.MolFromSmiles(s) for s in out]
    assert sum(p is not None for p in parsed) / len(out) > 0.7


def test_sampling_is_seeded():
    m = train_ngram(ngram.training_strings(CORPUS, n_augment=3), order=4)
    a = ngram.sample(m, 50, seed=3, temperature=1.3, backoff=0.1)
    b = ngram.sample(m, 50, seed=3, temperature=1.3, backoff=0.1)
    c = ngram.sample(m, 50, seed=4, temperature=1.3, backoff=0.1)
    assert a == b and a != c


def test_low_temperature_reproduces_the_single_training_string():
    m = train_ngram(["*CC(*)c1ccccc1"], order=6)
    assert set(ngram.sample(m, 20, seed=0, temperature=0.2)) == {"*CC(*)c1ccccc1"}


@pytest.mark.parametrize("kw", [{"temperature": 0}, {"temperature": -1}, {"backoff": 1.0}])
def test_sample_rejects_bad_parameters(kw):
    m = train_ngram(["*CC*"], order=2)
    with pytest.raises(ValueError):
        ngram.sample(m, 1, **kw)


def test_order_must_be_positive():
    with pytest.raises(ValueError):
        train_ngram(["*CC*"], order=0)


def test_save_load_roundtrip(tmp_path):
    m = train_ngram(ngram.training_strings(CORPUS, n_augment=2), order=5)
    p = ngram.save_model(m, tmp_path / "m.json.gz")
    m2 = ngram.load_model(p)
    assert m2.order == m.order and m2.table == m.table
    assert ngram.sample(m2, 40, seed=1) == ngram.sample(m, 40, seed=1)
    # byte-identical when saved twice
    p2 = ngram.save_model(m2, tmp_path / "m2.json.gz")
    assert p.read_bytes() == p2.read_bytes()


def test_load_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.json.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write('{"format": "something-else"}')
    with pytest.raises(ModelFileError):
        ngram.load_model(bad)
    (tmp_path / "junk.gz").write_bytes(b"not gzip")
    with pytest.raises(ModelFileError):
        ngram.load_model(tmp_path / "junk.gz")
    with pytest.raises(ModelFileError):
        ngram.load_model(tmp_path / "missing.gz")
