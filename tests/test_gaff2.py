"""Tests for core.chem.gaff2: data-file parsing, atom typing, parameter lookup and fallbacks."""
from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import pytest
from rdkit import Chem

from core.chem import gaff2
from core.chem.gaff2 import (Gaff2Error, Gaff2Parameters, angle_term, bond_term, dihedral_terms,
                             load_gaff2)


def _types(smiles: str) -> list[str]:
    m = Chem.AddHs(Chem.MolFromSmiles(smiles))
    gaff2.prepare(m)
    t = gaff2.atom_types(m)
    return [t[i] for i in range(m.GetNumAtoms())]


def _heavy_types(smiles: str) -> list[str]:
    m = Chem.AddHs(Chem.MolFromSmiles(smiles))
    gaff2.prepare(m)
    t = gaff2.atom_types(m)
    return [t[a.GetIdx()] for a in m.GetAtoms() if a.GetAtomicNum() > 1]


# ----------------------------------------------------------------------------- data file


def test_data_file_found_and_parsed() -> None:
    p = load_gaff2("2.11")
    assert p.path.endswith("gaff211.dat")
    eps, sigma = p.lj["c3"]
    assert eps == pytest.approx(0.1078)
    assert sigma == pytest.approx(2 * 1.9069 * 2 ** (-1 / 6), rel=1e-9)  # 3.3977 Å
    assert p.lj["ho"][1] == pytest.approx(0.5379, abs=1e-4)
    assert p.bonds[("c3", "c3")] == pytest.approx((232.5, 1.538))
    assert p.bonds[("c3", "hc")] == p.bonds[("hc", "c3")]
    assert p.angles[("c3", "c3", "c3")] == pytest.approx((64.9, 111.51))
    # generic torsion X-c3-c3-X: IDIVF 9, PK 1.40 -> k = 1.4/9 kcal/mol, n = 3
    (k, phase, n), = p.dihedrals[("X", "c3", "c3", "X")]
    assert (k, phase, n) == (pytest.approx(1.4 / 9), 0.0, 3)
    # multi-term specific torsion (negative periodicity continues the entry)
    assert p.dihedrals[("f", "c3", "c3", "f")] == ((1.0, 0.0, 3), (0.64, 180.0, 1))
    assert p.mass["c3"] == pytest.approx(12.01)


def test_latest_version_and_unknown_version() -> None:
    latest = load_gaff2("latest")
    assert latest.path.endswith("gaff2.dat")
    assert len(latest.bonds) > len(load_gaff2("2.11").bonds)
    with pytest.raises(Gaff2Error, match="unknown gaff2 version"):
        load_gaff2("9.9")


# ----------------------------------------------------------------------------- typing

TYPE_CASES = {
    "CCc1ccccc1": ["c3", "c3", "ca", "ca", "ca", "ca", "ca", "ca"],
    "CC(C)(C(=O)OC)C": ["c3", "c3", "c3", "c", "o", "os", "c3", "c3"],
    "CC(=O)NCC": ["c3", "c", "o", "ns", "c3", "c3"],
    "CC(=O)N(C)C": ["c3", "c", "o", "n", "c3", "c3"],
    "NC(C)=O": ["nt", "c", "c3", "o"],
    "c1ccccc1-c1ccccc1": ["ca"] * 5 + ["cp", "cp"] + ["ca"] * 5,
    "CC1CC1": ["c3", "cx", "cx", "cx"],
    "CC1CCC1": ["c3", "cy", "cy", "cy", "cy"],
    "CS(=O)(=O)c1ccccc1": ["c3", "sy", "o", "o"] + ["ca"] * 6,
    "CS(=O)(=O)C": ["c3", "s6", "o", "o", "c3"],
    "CS(=O)C": ["c3", "s4", "o", "c3"],
    "C[N+](=O)[O-]": ["c3", "no", "o", "o"],
    "CC(F)(F)C": ["c3", "c3f", "f", "f", "c3"],
    "CCO": ["c3", "c3", "oh"],
    "CC#N": ["c3", "c1", "n1"],
    "Nc1ccccc1": ["nv"] + ["ca"] * 6,
    "CNc1ccccc1": ["c3", "nu"] + ["ca"] * 6,
    "CN(C)c1ccccc1": ["c3", "nh", "c3"] + ["ca"] * 6,
    "CNC": ["c3", "n7", "c3"],
    "CN(C)C": ["c3", "n3", "c3", "c3"],
    "c1ccncc1": ["ca", "ca", "ca", "nb", "ca", "ca"],
    "CSC": ["c3", "ss", "c3"],
    "CS": ["c3", "sh"],
    "CC=S": ["c3", "cs", "s"],
    "C=CC": ["c2", "c2", "c3"],
    "CCl": ["c3", "cl"],
    "CBr": ["c3", "br"],
    "CI": ["c3", "i"],
    "CP(=O)(OC)OC": ["c3", "p5", "o", "os", "c3", "os", "c3"],
    "CP(C)C": ["c3", "p3", "c3", "c3"],
}


@pytest.mark.parametrize("smiles,expected", sorted(TYPE_CASES.items()))
def test_heavy_atom_types(smiles: str, expected: list[str]) -> None:
    assert _heavy_types(smiles) == expected


def test_hydrogen_types() -> None:
    t = _types("OCC(F)C=O")  # O C C(F) C=O + H
    hs = t[6:]
    # ho on O; h1 on C-O; h1 on C-F (one EW neighbour); h4 on aldehyde C (sp2, 1 EW)
    assert hs == ["ho", "h1", "h1", "h1", "h4"]
    assert _types("FC(F)F")[-1] == "h3"
    assert _types("ClCCl")[-2:] == ["h2", "h2"]
    assert _types("c1ccccc1")[-1] == "ha"
    assert _types("CN")[-1] == "hn"
    assert _types("CS")[-1] == "hs"
    assert _types("CP")[-1] == "hp"
    # RadonPy's GAFF2_mod rule: H on C next to a 4-connected N or P is hx
    assert _types("CP(=O)(O)O")[5] == "hx"


def test_conjugation_pairs() -> None:
    thio = _heavy_types("Cc1cccs1")
    assert thio[-1] == "ss"
    assert sorted(thio[1:5]) == ["cc", "cc", "cd", "cd"]  # MDL model: thiophene not aromatic
    diene = _heavy_types("CC=CC=CC=CC")  # inner sp2 carbons alternate ce/cf
    inner = diene[2:6]
    assert set(inner) == {"ce", "cf"}
    m = Chem.AddHs(Chem.MolFromSmiles("CC=CC=CC=CC"))
    gaff2.prepare(m)
    t = gaff2.atom_types(m)
    for b in m.GetBonds():
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        if {t[i], t[j]} <= {"ce", "cf"}:
            # GAFF convention: double bonds join ce-cf, single bonds join equal letters
            assert (t[i] != t[j]) == (b.GetBondTypeAsDouble() == 2.0)


def test_untypable_element_raises() -> None:
    m = Chem.AddHs(Chem.MolFromSmiles("C[Si](C)(C)C"))
    gaff2.prepare(m)
    with pytest.raises(Gaff2Error, match="Si"):
        gaff2.atom_types(m)


# ----------------------------------------------------------------------------- parameters


def test_bond_and_angle_fallback_to_similar_types() -> None:
    p = load_gaff2("2.11")
    # c3f has no entries of its own: falls back to c3
    assert bond_term(p, "c3f", "f") == p.bonds[("c3", "f")]
    assert angle_term(p, "f", "c3f", "f", "F", "C", "F") == p.angles[("f", "c3", "f")]
    with pytest.raises(Gaff2Error, match="bond"):
        bond_term(p, "zz", "qq")


def test_dihedral_lookup_order() -> None:
    p = load_gaff2("2.11")
    specific = dihedral_terms(p, "f", "c3", "c3", "f")
    assert specific == p.dihedrals[("f", "c3", "c3", "f")]
    generic = dihedral_terms(p, "hc", "c3", "c3", "hc")
    assert generic == p.dihedrals.get(("hc", "c3", "c3", "hc"), p.dihedrals[("X", "c3", "c3", "X")])
    # h1 -> hc alternative is not used for outer atoms, generic X-c3-c3-X applies
    assert dihedral_terms(p, "h1", "c3", "c3", "h1") is not None
    assert dihedral_terms(p, "zz", "zz", "zz", "zz") is None


def test_direction_duplicates_merged_and_c3f_torsions() -> None:
    p = load_gaff2("2.11")
    # gaff2.dat lists hc-c3-c3-c3 and c3-c3-c3-hc separately: both directions see both
    assert p.dihedrals[("hc", "c3", "c3", "c3")] == p.dihedrals[("c3", "c3", "c3", "hc")]
    assert len(p.dihedrals[("hc", "c3", "c3", "c3")]) == 2
    # for MD only the first definition counts (no doubled barrier)
    assert p.dihedrals_md[("hc", "c3", "c3", "c3")] == p.dihedrals_md[("c3", "c3", "c3", "hc")]
    assert len(p.dihedrals_md[("hc", "c3", "c3", "c3")]) == 1
    assert dihedral_terms(p, "c3", "c3", "c3", "hc", md=True) == p.dihedrals_md[("hc", "c3", "c3", "c3")]
    # fluoroalkane torsions (J. Mol. Model. 25, 39 (2019)) override the c3 fallback
    assert dihedral_terms(p, "f", "c3f", "c3f", "f") == ((0.1211, 0.0, 3),)
    assert dihedral_terms(p, "f", "c3f", "c3", "hc") == ((0.1407, 0.0, 3),)
    # ... and c3f terms without an entry fall back to c3 (here the generic X-c3-c3-X)
    assert dihedral_terms(p, "f", "c3f", "c3", "c3f") == p.dihedrals[("X", "c3", "c3", "X")]


def test_empirical_angle_formula() -> None:
    """Wang et al. (2004) eq.: θ0 = mean of a-b-a and c-b-c; k from Z, C and bond lengths."""
    p = Gaff2Parameters(
        version="test", path="-", mass={}, lj={},
        bonds={("xa", "xb"): (300.0, 1.5), ("xb", "xa"): (300.0, 1.5),
               ("xb", "xc"): (300.0, 1.4), ("xc", "xb"): (300.0, 1.4)},
        angles={("xa", "xb", "xa"): (60.0, 110.0), ("xc", "xb", "xc"): (60.0, 120.0)},
        dihedrals={})
    k, th = angle_term(p, "xa", "xb", "xc", "C", "C", "O")
    assert th == pytest.approx(115.0)
    expect = (143.9 * 1.183 * 1.339 * 1.219 / 2.9 / math.sqrt(math.radians(115.0))
              * math.exp(-2 * 0.1 ** 2 / 2.9 ** 2))
    assert k == pytest.approx(expect, rel=1e-12)
    with pytest.raises(Gaff2Error, match="angle"):
        angle_term(p, "xa", "xb", "xq", "C", "C", "O")


def test_parameterize_counts_ethane() -> None:
    m = Chem.AddHs(Chem.MolFromSmiles("CC"))
    ff = gaff2.parameterize(m)
    assert ff.types == ["c3", "c3"] + ["hc"] * 6
    assert len(ff.bonds) == 7
    assert len(ff.angles) == 12  # 6 H-C-C + 6 H-C-H
    assert len(ff.dihedrals) == 9
    assert ff.missing == []
    assert sum(ff.charges) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(Gaff2Error, match="explicit hydrogen"):
        gaff2.parameterize(Chem.MolFromSmiles("CC"))


_ANTECHAMBER = shutil.which("antechamber") or str(Path(sys.executable).parent / "antechamber")
# the member of a mirror pair is a matter of bookkeeping; c3f is GAFF2_mod's name for c3
_NORMALISE = {"cd": "cc", "cf": "ce", "cq": "cp", "nd": "nc", "nf": "ne", "c3f": "c3"}


@pytest.mark.integration
@pytest.mark.skipif(not Path(_ANTECHAMBER).exists(), reason="antechamber not installed")
def test_agrees_with_antechamber_on_simple_molecules(tmp_path) -> None:
    """Real ``antechamber -at gaff2`` on capped units: identical types up to mirror pairs."""
    import subprocess

    from rdkit.Chem import AllChem

    for smi in ["CCc1ccccc1", "CC(C)(C(=O)OC)C", "CC(=O)NCC", "c1ccccc1-c1ccccc1", "CC1CC1",
                "CC(F)(F)C", "CNc1ccccc1", "CC=CC=CC=CC"]:
        m = Chem.AddHs(Chem.MolFromSmiles(smi))
        AllChem.EmbedMolecule(m, randomSeed=1)
        Chem.MolToMolFile(m, str(tmp_path / "in.mol"))
        subprocess.run([_ANTECHAMBER, "-i", "in.mol", "-fi", "mdl", "-o", "out.ac", "-fo", "ac",
                        "-at", "gaff2", "-pf", "y", "-dr", "no"], cwd=tmp_path, check=True,
                       capture_output=True, timeout=120)
        ref = [ln.split()[-1] for ln in (tmp_path / "out.ac").read_text().splitlines()
               if ln.startswith("ATOM")]
        gaff2.prepare(m)
        t = gaff2.atom_types(m)
        mine = [_NORMALISE.get(t[i], t[i]) for i in range(m.GetNumAtoms())]
        assert mine == [_NORMALISE.get(x, x) for x in ref], smi
