"""Ring chains: close a built CH3-capped chain into a ring, so the cell has no chain ends.

Why. An experimental amorphous density is that of a high polymer (M ≳ 10⁵ g/mol), whose chain
ends do not matter. A ``quick`` cell holds chains of ~10 repeat units (M ≈ 1,000–1,500 g/mol),
and each CH3 end carries an excess free volume: the specific volume of a linear chain follows
v(M) = v∞ + 2·v_e/M (Flory; Fox & Flory, J. Appl. Phys. 21, 581 (1950)). The n-alkanes at 298 K
(n-decane 0.730, n-hexadecane 0.770 g/cm³) give 2·v_e ≈ 26 cm³/mol, so a C50 polyethylene chain
(the ``quick`` PE chain) should be ~3 % lighter than the high polymer (0.820 against 0.85 g/cm³)
and a DP-10 PMMA or PS chain 2.5–3 %. A ring of the same units has no ends, at the same atom
count and cost.

Measured (``docs/density_benchmark.md``, fourth session): rings are *not* denser than linear
chains in ``quick`` cells (+0.75 ± 0.84 % over 11 polymers; the PE melt 0.809 against 0.819
g/cm³), so ``Preset.chain_topology`` stays ``"linear"`` in every preset; the option is kept so
that the result can be reproduced (``bench_density.py --forcefields gaff2,gaff2+ring``).

How. The two chain-end atoms (the first unit's head atom and the last unit's tail atom, each
bonded to a CH3 cap) are pulled together in vacuum by a UFF minimisation with a harmonic
distance restraint whose upper bound shrinks step by step (the chain folds around without
atoms passing through each other: UFF's van der Waals repulsion stays on). Then the caps are
removed, the head and tail atoms bonded (the same head-to-tail bond as between any two units)
and the ring minimised with UFF. Every unit of a ring is a *middle* unit, so the atom keys (and
so the transferred types and charges, ``forcefield.transfer_charges``) are those of the
oligomer's middle unit.

A ring of a few stiff units cannot close without strain (a cyclic tetramer of a rigid rod):
the closure is accepted only if the ring's strain (its UFF valence energy against the linear
chain's, ``ring_strain``) is at most 1 kcal/mol per repeat unit (``RingClosureError``
otherwise; the build step then keeps linear chains and says so).
"""
from __future__ import annotations

import time

import numpy as np
from rdkit import Chem
from rdkit.Chem import AllChem

from core.simulation.build import Chain
from core.simulation.errors import BuildError

__all__ = ["RingClosureError", "close_ring", "ring_strain"]


class RingClosureError(BuildError):
    """A chain could not be closed into an unstrained ring."""


def _end_atoms(mol: Chem.Mol, dp: int) -> tuple[int, int, list[int]]:
    """(head atom, tail atom, cap atoms incl. their H) of a CH3-capped chain of ``dp`` units."""
    caps = [a.GetIdx() for a in mol.GetAtoms() if a.GetIntProp("unit") in (-1, dp)]
    head = tail = None
    for a in mol.GetAtoms():
        if a.GetAtomicNum() == 6 and a.GetIntProp("unit") in (-1, dp):
            for nb in a.GetNeighbors():
                if nb.GetIntProp("unit") == 0:
                    head = nb.GetIdx()
                elif nb.GetIntProp("unit") == dp - 1:
                    tail = nb.GetIdx()
    if head is None or tail is None:
        raise RingClosureError("The chain has no CH3 caps at both ends to replace by a bond.")
    return head, tail, caps


def _take_positions(mol: Chem.Mol, ff) -> None:
    """Copy a force field's current coordinates (Å) into ``mol``'s conformer."""
    conf = mol.GetConformer()
    for i, p in enumerate(np.array(ff.Positions()).reshape(-1, 3)):
        conf.SetAtomPosition(i, p.tolist())


def _valence_minimum(mol: Chem.Mol, iterations: int) -> float:
    """UFF energy (kcal/mol) of ``mol`` with bonds, angles, torsions and inversions only (every
    van der Waals pair is cut off), minimised from its coordinates (on a copy)."""
    m = Chem.Mol(mol)
    ff = AllChem.UFFGetMoleculeForceField(m, vdwThresh=1e-4, ignoreInterfragInteractions=False)
    ff.Initialize()
    ff.Minimize(maxIts=iterations)
    return float(ff.CalcEnergy())


def ring_strain(ring: Chem.Mol, linear: Chem.Mol, dp: int, *, iterations: int = 5000) -> float:
    """Strain of a ring of ``dp`` units (kcal/mol per repeat unit): the UFF valence energy of the
    ring at its valence-only minimum minus that of the linear chain it was closed from.

    Flexible rings have ~0–0.4 (PE, PS, PMMA, bisphenol-A PC at 10 units); stiff rods are far
    above (cyclo-para-phenylene: 2.8 at 15 units, 17 at 6, the experimental strain of [6]CPP
    being ~16 kcal/mol per ring; a para-aramid tetramer 5.0).
    """
    return (_valence_minimum(ring, iterations) - _valence_minimum(linear, iterations)) / dp


def close_ring(chain: Chain, *, pull_steps: int = 12, iterations: int = 400,
               max_strain: float = 1.0, deadline: float | None = None) -> Chain:
    """The ring made from ``chain`` (CH3-capped, ``dp`` ≥ 3, one conformer, coordinates in Å).

    The head–tail distance is pulled to 3 Å in ``pull_steps`` geometric steps (UFF, restraint
    force constant 100 kcal/mol/Å², ``iterations`` minimiser steps each), the caps are replaced
    by a head–tail bond and the ring is minimised with UFF. Atom property ``ring_unit`` keeps each
    atom's unit index; ``unit`` becomes 1 for every atom (all units are middle units). Raises
    RingClosureError when UFF has no parameters for an atom, the ring is strained (``ring_strain``
    above ``max_strain`` kcal/mol per repeat unit) or ``deadline`` (``time.monotonic()``) passes.
    """
    dp = chain.dp
    if dp < 3:
        raise RingClosureError(f"A ring needs at least 3 repeat units (got {dp}).")
    mol = Chem.Mol(chain.mol)
    if mol.GetNumConformers() == 0:
        raise RingClosureError("The chain has no coordinates.")
    if not AllChem.UFFHasAllMoleculeParams(mol):
        raise RingClosureError("UFF has no parameters for an atom of this chain.")
    h, t, caps = _end_atoms(mol, dp)

    def check_time() -> None:
        if deadline is not None and time.monotonic() >= deadline:
            raise RingClosureError("The build step's time limit was reached while closing rings.")

    d0 = float(np.linalg.norm(mol.GetConformer().GetAtomPosition(h)
                              - mol.GetConformer().GetAtomPosition(t)))
    ff = AllChem.UFFGetMoleculeForceField(mol, ignoreInterfragInteractions=False)
    for target in np.geomspace(max(d0, 3.0), 3.0, pull_steps):
        check_time()
        ff.UFFAddDistanceConstraint(h, t, False, 0.0, float(target), 100.0)
        ff.Initialize()
        ff.Minimize(maxIts=iterations)
    _take_positions(mol, ff)

    rw = Chem.RWMol(mol)
    cap_bond = mol.GetBondBetweenAtoms(h, next(nb.GetIdx() for nb in mol.GetAtomWithIdx(h)
                                               .GetNeighbors() if nb.GetIntProp("unit") == -1))
    rw.AddBond(h, t, cap_bond.GetBondType())
    for a in rw.GetAtoms():
        a.SetIntProp("ring_unit", a.GetIntProp("unit"))
        a.SetIntProp("unit", 1)
    for idx in sorted(caps, reverse=True):
        rw.RemoveAtom(idx)
    ring = rw.GetMol()
    try:
        Chem.SanitizeMol(ring)
    except Exception as exc:  # noqa: BLE001 - RDKit raises several types here
        raise RingClosureError(f"The closed ring does not sanitise: {exc}") from exc
    check_time()
    ff = AllChem.UFFGetMoleculeForceField(ring, ignoreInterfragInteractions=False)
    for _ in range(10):
        if ff.Minimize(maxIts=iterations) == 0:
            break
        check_time()
    _take_positions(ring, ff)
    check_time()
    strain = ring_strain(ring, chain.mol, dp)
    if strain > max_strain:
        raise RingClosureError(
            f"A ring of {dp} units is strained: {strain:.1f} kcal/mol per repeat unit (UFF valence "
            f"terms against the linear chain; allowed {max_strain:g}).")
    return Chain(mol=ring, dp=dp, seed=chain.seed, method=chain.method)
