"""Step 2 (forcefield): GAFF2 types and parameters + AM1-BCC charges for the chains.

Protocol
--------
1. A CH3-terminated trimer is built with the same builder as the chains (``build.build_chain``).
2. ``antechamber -at gaff2 -c bcc`` types it and computes AM1-BCC charges with sqm. As measured in
   DESIGN.md, sqm's own geometry optimisation is the cost driver, so a single point on the RDKit
   geometry is used (``maxcyc=0``; PS charges agree within 0.014 e) except for S-containing units,
   which get a limited optimisation (``Preset.sqm_maxcyc_sulfur``) because the S charge of sulfones
   moves from +1.18 to +1.45 e on relaxation. When the trimer fails (sqm error, antechamber
   timeout: its AM1-BCC bond typing grows combinatorially with some conjugated units), the
   charges come from the dimer, then the monomer (``oligomer_charges_with_fallback``); the
   oligomer used is recorded and reported as a warning.
3. Types and charges are copied atom by atom onto the long chains by position class (head cap +
   first unit, interior units from the trimer's middle unit, last unit + tail cap); the residual
   charge is spread evenly and the result rounded to 1e-6 e with an exact zero sum.
4. ``parmchk2`` fills parameters missing from gaff2.dat (each one is reported as a warning; a
   bond/angle it cannot fill raises UnsupportedAtomType), ``tleap`` assembles the chain topology
   (prmtop), which is parsed into plain Python data for the LAMMPS writer.

Energies kcal/mol, lengths Å, angles degrees, charges e.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rdkit import Chem

from core.simulation.build import Chain, atom_key, build_chain
from core.simulation.env import amber_env, run_program, which
from core.simulation.errors import (BuildError, ChargeError, ExternalProgramError, StepTimeout,
                                    UnsupportedAtomType)

__all__ = ["ForceField", "am1bcc_oligomer", "transfer_charges", "neutralise",
           "parametrise_chain", "parse_prmtop", "AMBER_CHARGE_UNIT",
           "oligomer_and_charges", "OligomerCharges", "oligomer_charges_with_fallback",
           "charge_oligomer_sizes"]

AMBER_CHARGE_UNIT = 18.2223  # prmtop charge = q[e] * 18.2223


@dataclass
class ForceField:
    """Topology + parameters of one chain (atom indices 0-based, in the chain's atom order).

    ``dihedrals``: (i, j, k, l, [(K, n, phase_deg), ...]) proper torsions (LAMMPS fourier);
    ``impropers``: (i, j, k, l, K, d, n) with d = ±1 (LAMMPS cvff, central atom k as in Amber).
    ``lj``: GAFF2 type -> (epsilon kcal/mol, sigma Å).
    """

    types: list[str]
    charges: list[float]
    masses: list[float]
    bonds: list[tuple[int, int, float, float]]
    angles: list[tuple[int, int, int, float, float]]
    dihedrals: list[tuple[int, int, int, int, list[tuple[float, int, float]]]]
    impropers: list[tuple[int, int, int, int, float, int, int]]
    lj: dict[str, tuple[float, float]]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("types", "charges", "masses", "bonds", "angles",
                                              "dihedrals", "impropers", "lj", "warnings")}

    @classmethod
    def from_dict(cls, d: dict) -> "ForceField":
        return cls(types=list(d["types"]), charges=[float(q) for q in d["charges"]],
                   masses=[float(m) for m in d["masses"]],
                   bonds=[tuple(b) for b in d["bonds"]], angles=[tuple(a) for a in d["angles"]],
                   dihedrals=[(a, b, c, e, [tuple(t) for t in terms])
                              for a, b, c, e, terms in d["dihedrals"]],
                   impropers=[tuple(x) for x in d["impropers"]],
                   lj={k: tuple(v) for k, v in d["lj"].items()}, warnings=list(d["warnings"]))


# ----------------------------------------------------------------------------- charges
def _read_mol2_atoms(path: Path) -> list[tuple[str, float]]:
    """(GAFF2 type, charge) per atom of a Tripos mol2 file written by antechamber."""
    out, on = [], False
    for line in path.read_text().splitlines():
        if line.startswith("@<TRIPOS>"):
            on = line.strip() == "@<TRIPOS>ATOM"
            continue
        if on and line.strip():
            parts = line.split()
            out.append((parts[5], float(parts[8])))
    return out


def am1bcc_oligomer(oligomer: Chem.Mol, workdir: Path, *, maxcyc: int = 0,
                    timeout: float = 900) -> list[tuple[str, float]]:
    """GAFF2 type and AM1-BCC charge (e) per atom of ``oligomer`` (needs a 3-D conformer).

    ``maxcyc`` = sqm geometry-optimisation cycles (0 = single point on the given geometry).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    Chem.MolToMolFile(oligomer, str(workdir / "oligomer.sdf"))
    ek = (f"qm_theory='AM1', grms_tol=0.0005, scfconv=1.d-10, ndiis_attempts=700, "
          f"maxcyc={int(maxcyc)}")
    try:
        run_program([which("antechamber"), "-i", "oligomer.sdf", "-fi", "mdl", "-o",
                     "oligomer.mol2", "-fo", "mol2", "-at", "gaff2", "-c", "bcc", "-nc", "0",
                     "-ek", ek, "-pf", "y", "-dr", "no"],
                    cwd=workdir, step="forcefield", timeout=timeout, env=amber_env(),
                    log_name="antechamber.log")
    except ExternalProgramError as exc:
        sqm_out = workdir / "sqm.out"
        detail = sqm_out.read_text()[-800:] if sqm_out.is_file() else ""
        raise ChargeError(
            "AM1-BCC charges could not be computed (antechamber/sqm failed on the capped "
            f"oligomer). {exc}\n{detail}") from exc
    atoms = _read_mol2_atoms(workdir / "oligomer.mol2")
    if len(atoms) != oligomer.GetNumAtoms():
        raise ChargeError(f"antechamber returned {len(atoms)} atoms for a "
                          f"{oligomer.GetNumAtoms()}-atom oligomer.")
    bad = [(i, t) for i, (t, _) in enumerate(atoms) if t.upper() == "DU" or not t[0].islower()]
    if bad:
        sym = oligomer.GetAtomWithIdx(bad[0][0]).GetSymbol()
        raise UnsupportedAtomType(
            f"antechamber could not assign a GAFF2 atom type to {len(bad)} atom(s) "
            f"(first: atom {bad[0][0] + 1}, element {sym}, got '{bad[0][1]}').")
    return atoms


def transfer_charges(oligomer: Chem.Mol, olig_params: list[tuple[str, float]], chain: Chem.Mol,
                     chain_dp: int, olig_dp: int = 3) -> tuple[list[str], list[float]]:
    """Copy types and charges from the oligomer onto a chain by (position class, local, H ordinal).

    Returns (types, raw charges) for the chain; the charges are *not* yet neutral.
    A dimer or monomer (the charge fallback, ``oligomer_charges_with_fallback``) has no middle
    unit: a dimer's middle unit gets the tail unit's types and the mean of the head and tail
    units' charges (e), a monomer's single unit stands for head, middle and tail.
    """
    table = {}
    for a, (t, q) in zip(oligomer.GetAtoms(), olig_params):
        table[atom_key(a, olig_dp)] = (t, q)
    if olig_dp == 2:
        for (cls, local, h), (t, q) in list(table.items()):
            if cls == "tail" and ("head", local, h) in table:
                table[("mid", local, h)] = (t, 0.5 * (q + table[("head", local, h)][1]))
    elif olig_dp == 1:
        for (cls, local, h), tq in list(table.items()):
            if cls == "head":
                table[("mid", local, h)] = table[("tail", local, h)] = tq
    types, charges = [], []
    for a in chain.GetAtoms():
        key = atom_key(a, chain_dp)
        if key not in table:
            raise ChargeError(f"No oligomer atom matches chain atom {a.GetIdx()} {key}.")
        t, q = table[key]
        types.append(t)
        charges.append(q)
    return types, charges


def neutralise(charges: list[float], *, decimals: int = 6) -> list[float]:
    """Spread the residual evenly, round to ``decimals`` and make the sum exactly zero.

    Works in integer units of 10^-decimals e so the written file sums to 0 exactly; the last
    rounding units go to the atoms of largest |q| (one unit each).
    """
    n = len(charges)
    if n == 0:
        return []
    mean = math.fsum(charges) / n
    scale = 10 ** decimals
    ints = [round((q - mean) * scale) for q in charges]
    resid = sum(ints)
    order = sorted(range(n), key=lambda i: -abs(charges[i]))
    step = -1 if resid > 0 else 1
    k = 0
    while resid != 0:
        ints[order[k % n]] += step
        resid += step
        k += 1
    return [i / scale for i in ints]


# ----------------------------------------------------------------------------- prmtop
def _prmtop_sections(text: str) -> dict[str, list[str]]:
    sections, name, fmt, buf = {}, None, None, []

    def flush():
        if name is None:
            return
        m = re.match(r"\((\d+)([a-zA-Z])(\d+)", fmt or "")
        width = int(m.group(3)) if m else 80
        items = []
        for line in buf:
            for s in range(0, len(line), width):
                tok = line[s:s + width].strip()
                if tok:
                    items.append(tok)
        sections[name] = items

    for line in text.splitlines():
        if line.startswith("%FLAG"):
            flush()
            name, fmt, buf = line.split()[1], None, []
        elif line.startswith("%FORMAT"):
            fmt = line[len("%FORMAT"):].strip()
        elif line.startswith("%"):
            continue
        elif name is not None:
            buf.append(line.rstrip("\n"))
    flush()
    return sections


def parse_prmtop(text: str) -> ForceField:
    """Parse an Amber prmtop (as written by tleap) into a ForceField."""
    s = _prmtop_sections(text)
    ints = lambda k: [int(x) for x in s.get(k, [])]  # noqa: E731
    floats = lambda k: [float(x) for x in s.get(k, [])]  # noqa: E731
    types = s["AMBER_ATOM_TYPE"]
    charges = [q / AMBER_CHARGE_UNIT for q in floats("CHARGE")]
    masses = floats("MASS")
    ntypes = int(s["POINTERS"][1])
    tidx = ints("ATOM_TYPE_INDEX")
    nbidx = ints("NONBONDED_PARM_INDEX")
    acoef, bcoef = floats("LENNARD_JONES_ACOEF"), floats("LENNARD_JONES_BCOEF")
    lj: dict[str, tuple[float, float]] = {}
    for t, ti in zip(types, tidx):
        if t in lj:
            continue
        ip = nbidx[ntypes * (ti - 1) + ti - 1] - 1
        a, b = acoef[ip], bcoef[ip]
        if a <= 0 or b <= 0:
            lj[t] = (0.0, 0.0)
        else:
            lj[t] = (b * b / (4 * a), (a / b) ** (1 / 6))
    bk, br = floats("BOND_FORCE_CONSTANT"), floats("BOND_EQUIL_VALUE")
    bonds = []
    for key in ("BONDS_INC_HYDROGEN", "BONDS_WITHOUT_HYDROGEN"):
        v = ints(key)
        for i in range(0, len(v), 3):
            p = v[i + 2] - 1
            bonds.append((v[i] // 3, v[i + 1] // 3, bk[p], br[p]))
    ak, at = floats("ANGLE_FORCE_CONSTANT"), floats("ANGLE_EQUIL_VALUE")
    angles = []
    for key in ("ANGLES_INC_HYDROGEN", "ANGLES_WITHOUT_HYDROGEN"):
        v = ints(key)
        for i in range(0, len(v), 4):
            p = v[i + 3] - 1
            angles.append((v[i] // 3, v[i + 1] // 3, v[i + 2] // 3, ak[p], math.degrees(at[p])))
    dk, dn, dp = floats("DIHEDRAL_FORCE_CONSTANT"), floats("DIHEDRAL_PERIODICITY"), floats(
        "DIHEDRAL_PHASE")
    proper: dict[tuple[int, int, int, int], list[tuple[float, int, float]]] = {}
    impropers = []
    for key in ("DIHEDRALS_INC_HYDROGEN", "DIHEDRALS_WITHOUT_HYDROGEN"):
        v = ints(key)
        for i in range(0, len(v), 5):
            a, b, c, d, p = v[i:i + 5]
            atoms = (abs(a) // 3, abs(b) // 3, abs(c) // 3, abs(d) // 3)
            K, n, ph = dk[p - 1], int(round(abs(dn[p - 1]))), math.degrees(dp[p - 1])
            if d < 0:  # improper: K[1 + cos(n phi - phase)] -> cvff K[1 + d cos(n phi)]
                sign = 1 if abs(ph) < 1e-3 else -1
                impropers.append((*atoms, K, sign, n))
            else:
                proper.setdefault(atoms, []).append((K, n, round(ph, 4)))
    dihedrals = [(a, b, c, d, terms) for (a, b, c, d), terms in proper.items()]
    return ForceField(types=types, charges=charges, masses=masses, bonds=bonds, angles=angles,
                      dihedrals=dihedrals, impropers=impropers, lj=lj)


# ----------------------------------------------------------------------------- tleap
def _write_mol2(mol: Chem.Mol, types: list[str], charges: list[float], path: Path) -> None:
    conf = mol.GetConformer()
    lines = ["@<TRIPOS>MOLECULE", "POL", f"{mol.GetNumAtoms()} {mol.GetNumBonds()} 1 0 0",
             "SMALL", "USER_CHARGES", "", "@<TRIPOS>ATOM"]
    for a in mol.GetAtoms():
        p = conf.GetAtomPosition(a.GetIdx())
        lines.append(f"{a.GetIdx() + 1:7d} {a.GetSymbol()}{a.GetIdx() + 1:<6d} {p.x:10.4f} "
                     f"{p.y:10.4f} {p.z:10.4f} {types[a.GetIdx()]:<5s} 1 POL "
                     f"{charges[a.GetIdx()]:10.6f}")
    lines.append("@<TRIPOS>BOND")
    for k, b in enumerate(mol.GetBonds(), 1):
        bt = {1.0: "1", 2.0: "2", 3.0: "3", 1.5: "ar"}.get(b.GetBondTypeAsDouble(), "1")
        lines.append(f"{k:6d} {b.GetBeginAtomIdx() + 1:5d} {b.GetEndAtomIdx() + 1:5d} {bt}")
    lines.append("@<TRIPOS>SUBSTRUCTURE")
    lines.append("     1 POL         1 TEMP              0 ****  ****    0 ROOT")
    path.write_text("\n".join(lines) + "\n")


def _parmchk_warnings(frcmod: Path) -> tuple[list[str], list[str]]:
    """(warnings for parameters parmchk2 filled, fatal missing bond/angle parameters)."""
    warnings, fatal, section = [], [], ""
    for line in frcmod.read_text().splitlines()[1:]:
        if line.strip() in {"MASS", "BOND", "ANGLE", "DIHE", "IMPROPER", "NONBON"}:
            section = line.strip()
            continue
        if not line.strip():
            continue
        width = {"MASS": 2, "BOND": 5, "ANGLE": 8, "DIHE": 11, "IMPROPER": 11}.get(section, 2)
        term = line[:width].replace(" ", "")
        if "ATTN" in line:
            if section in {"BOND", "ANGLE", "NONBON"}:
                fatal.append(f"{section.lower()} {term}")
            else:
                warnings.append(f"no GAFF2 {section.lower()} parameter for {term}; set to zero "
                                f"by parmchk2")
        else:
            m = re.search(r"[Ss]ame as (.+?),\s*penalty score=\s*([0-9.]+)", line)
            why = (f"same as {m.group(1).replace(' ', '')}, penalty {m.group(2)}" if m
                   else "by analogy")
            warnings.append(f"GAFF2 {section.lower()} parameter {term} filled by parmchk2 "
                            f"({why})")
    return warnings, fatal


def parametrise_chain(chain: Chain, types: list[str], charges: list[float], workdir: Path, *,
                      frcmod_source: Path, timeout: float = 600) -> ForceField:
    """GAFF2 parameters for ``chain`` via parmchk2 + tleap; returns the parsed ForceField.

    ``frcmod_source`` is the mol2 (with GAFF2 types) parmchk2 inspects for missing parameters.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    _write_mol2(chain.mol, types, charges, workdir / "chain.mol2")
    env = amber_env()
    run_program([which("parmchk2"), "-i", str(frcmod_source), "-f", "mol2", "-o", "missing.frcmod",
                 "-s", "gaff2"], cwd=workdir, step="forcefield", timeout=timeout, env=env)
    # the chain can contain type combinations the oligomer lacks only if types differ; check both
    run_program([which("parmchk2"), "-i", "chain.mol2", "-f", "mol2", "-o", "missing_chain.frcmod",
                 "-s", "gaff2"], cwd=workdir, step="forcefield", timeout=timeout, env=env)
    warnings, fatal = _parmchk_warnings(workdir / "missing_chain.frcmod")
    if fatal:
        raise UnsupportedAtomType(
            "GAFF2 has no parameters (even by analogy, parmchk2) for: " + "; ".join(fatal[:5]))
    leap_in = ("source leaprc.gaff2\nloadamberparams missing_chain.frcmod\n"
               "m = loadmol2 chain.mol2\nsaveamberparm m chain.prmtop chain.inpcrd\nquit\n")
    (workdir / "leap.in").write_text(leap_in)
    run_program([which("tleap"), "-f", "leap.in"], cwd=workdir, step="forcefield",
                timeout=timeout, env=env, log_name="tleap.log")
    prmtop = workdir / "chain.prmtop"
    if not prmtop.is_file() or prmtop.stat().st_size == 0:
        log = (workdir / "tleap.log").read_text()[-1500:]
        raise UnsupportedAtomType(f"tleap could not build the chain topology:\n{log}")
    ff = parse_prmtop(prmtop.read_text())
    if ff.types != types:
        raise ExternalProgramError("tleap changed the atom order or types of the chain.",
                                   step="forcefield")
    ff.charges = list(charges)  # exact (neutralised) charges, not prmtop's 18.2223-scaled ones
    ff.warnings = warnings
    return ff


@dataclass(frozen=True)
class OligomerCharges:
    """GAFF2 types and AM1-BCC charges of the CH3-capped oligomer that gave them.

    ``n``: units of that oligomer (``requested_n`` unless the fallback took a shorter one);
    ``params``: [(GAFF2 type, charge e)] per oligomer atom; ``maxcyc``: sqm optimisation cycles;
    ``mol2``: antechamber's typed mol2 of the oligomer (parmchk2's input); ``failures``: one line
    per longer oligomer that failed, with its error class and message.
    """

    chain: Chain
    params: list[tuple[str, float]]
    maxcyc: int
    n: int
    requested_n: int
    mol2: Path
    failures: tuple[str, ...] = ()

    @property
    def warning(self) -> str | None:
        """The record warning of a fallback (None when the requested oligomer worked)."""
        if self.n == self.requested_n:
            return None
        names = {1: "monomer", 2: "dimer", 3: "trimer"}
        return (f"AM1-BCC charges from the CH3-capped {names.get(self.n, f'{self.n}-mer')}, "
                f"not the {names.get(self.requested_n, f'{self.requested_n}-mer')}: "
                + "; ".join(self.failures))


# why a shorter oligomer can help: sqm/antechamber cost and failures grow steeply with size
# (antechamber's AM1-BCC bond typing on a 164-atom trimer ran > 300 s, the dimer took 7 s);
# an atom GAFF2 cannot type stays untypable in any oligomer, so UnsupportedAtomType is final
FALLBACK_ERRORS = (ChargeError, StepTimeout, ExternalProgramError, BuildError)


def charge_oligomer_sizes(n: int) -> list[int]:
    """The oligomer sizes tried for the charges: ``n``, then the dimer, then the monomer."""
    return [n] + [k for k in (2, 1) if k < n]


def oligomer_charges_with_fallback(psmiles: str, workdir: Path, *, n: int, maxcyc_sulfur: int,
                                   timeout: float, seed: int = 7,
                                   progress: Callable[[str], None] | None = None
                                   ) -> OligomerCharges:
    """``oligomer_and_charges`` on the CH3-capped ``n``-mer; when that fails (sqm error, an
    antechamber timeout of ``timeout`` s, no 3-D oligomer) on the dimer, then on the monomer.

    The ``n``-mer works in ``workdir``, a shorter k-mer in ``workdir.parent/<name>_n<k>``. Each
    attempt may take up to ``timeout`` s per external program. Raises the last attempt's error,
    its message naming every attempt, when all fail; UnsupportedAtomType at once.
    """
    failures: list[str] = []
    sizes = charge_oligomer_sizes(n)
    for k in sizes:
        wd = workdir if k == n else workdir.parent / f"{workdir.name}_n{k}"
        if failures and progress:
            progress(f"retrying the AM1-BCC charges on the CH3-capped {k}-mer")
        try:
            olig, params, maxcyc = oligomer_and_charges(psmiles, wd, n=k,
                                                        maxcyc_sulfur=maxcyc_sulfur,
                                                        timeout=timeout, seed=seed)
        except FALLBACK_ERRORS as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            failures.append(f"{k}-mer: {type(exc).__name__}: {first}")
            if progress:
                progress(f"charges on the {k}-mer failed ({type(exc).__name__}: {first})")
            if k == sizes[-1]:
                exc.args = ("; ".join(failures) + "\n" + str(exc),)
                raise
            continue
        return OligomerCharges(chain=olig, params=params, maxcyc=maxcyc, n=k, requested_n=n,
                               mol2=wd / "oligomer.mol2", failures=tuple(failures))
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def oligomer_and_charges(psmiles: str, workdir: Path, *, n: int, maxcyc_sulfur: int,
                         timeout: float, seed: int = 7) -> tuple[Chain, list[tuple[str, float]], int]:
    """Build the CH3-capped n-mer and compute its GAFF2 types + AM1-BCC charges.

    Returns (oligomer chain, [(type, q)], sqm maxcyc used).
    """
    # the oligomer's 3-D build counts as one program of the step: at most ``timeout`` s (but
    # never under 60 s: a short program limit is meant for antechamber/sqm, not for RDKit)
    olig = build_chain(psmiles, n, seed=seed, deadline=time.monotonic() + max(timeout, 60.0))
    has_s = any(a.GetSymbol() == "S" for a in olig.mol.GetAtoms())
    maxcyc = maxcyc_sulfur if has_s else 0
    params = am1bcc_oligomer(olig.mol, workdir, maxcyc=maxcyc, timeout=timeout)
    return olig, params, maxcyc
