"""Write a LAMMPS data file (``atom_style full``) for n copies of one parametrised chain.

Styles the file is written for (and the input script must declare):
``bond_style harmonic`` E = K (r − r0)²; ``angle_style harmonic`` E = K (θ − θ0)²;
``dihedral_style fourier`` E = Σ_i K_i [1 + cos(n_i φ − d_i)] (Amber's multi-term torsions);
``improper_style cvff`` E = K [1 + d cos(n φ)], d = ±1 (Amber phase 0/180°);
``pair_style lj/charmm/coul/long`` (ε, σ per type, arithmetic mixing); ``special_bonds amber``.
Units ``real``: kcal/mol, Å, degrees, g/mol, e. Types are keyed by GAFF2 type names.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.simulation.forcefield import ForceField

__all__ = ["DataFileInfo", "write_data_file"]


@dataclass(frozen=True)
class DataFileInfo:
    """What the input script needs to know about a written data file."""

    n_atoms: int
    n_atom_types: int
    shake_bond_types: tuple[int, ...]   # bond types with a hydrogen (for fix shake)
    total_charge: float
    total_mass: float                   # g/mol
    box: float                          # Å


def _canon(names: tuple[str, ...]) -> tuple[str, ...]:
    return min(names, tuple(reversed(names)))


def write_data_file(ff: ForceField, coords: list[np.ndarray], box: float, path: Path,
                    *, title: str = "polymer cell", epsilon_scale: float = 1.0) -> DataFileInfo:
    """Write ``len(coords)`` copies of the chain described by ``ff`` into ``path``.

    ``coords[i]`` is the (n_atoms, 3) whole-molecule position array of chain i in Å; atoms are
    wrapped into [0, box) with image flags so molecules stay whole. ``epsilon_scale`` multiplies
    every LJ well depth ε (kcal/mol; ``Preset.lj_epsilon_scale``), σ is kept.
    """
    n = len(ff.types)
    if any(c.shape != (n, 3) for c in coords):
        raise ValueError(f"Every chain needs ({n}, 3) coordinates.")
    t = ff.types
    atom_types = sorted(set(t))
    atype = {name: i + 1 for i, name in enumerate(atom_types)}
    mass_of = {}
    for name, m in zip(t, ff.masses):
        mass_of.setdefault(name, m)

    def table(items, key):
        types: dict = {}
        ids = []
        for it in items:
            k = key(it)
            if k not in types:
                types[k] = len(types) + 1
            ids.append(types[k])
        return types, ids

    btypes, bids = table(ff.bonds, lambda b: (_canon((t[b[0]], t[b[1]])), round(b[2], 6),
                                               round(b[3], 6)))
    atypes, aids = table(ff.angles, lambda a: (_canon((t[a[0]], t[a[1]], t[a[2]])),
                                               round(a[3], 6), round(a[4], 5)))
    dtypes, dids = table(ff.dihedrals, lambda d: (
        _canon((t[d[0]], t[d[1]], t[d[2]], t[d[3]])),
        tuple((round(K, 6), int(nn), round(ph, 2)) for K, nn, ph in d[4])))
    itypes, iids = table(ff.impropers, lambda d: (round(d[4], 6), int(d[5]), int(d[6])))

    shake = tuple(sorted({bid for (names, _, _), bid in btypes.items()
                          if any(mass_of[nm] < 1.2 for nm in names)}))
    nc = len(coords)
    L = float(box)
    out = [f"LAMMPS data file: {title} (written by core.simulation.lammps_data)", "",
           f"{n * nc} atoms", f"{len(ff.bonds) * nc} bonds", f"{len(ff.angles) * nc} angles",
           f"{len(ff.dihedrals) * nc} dihedrals", f"{len(ff.impropers) * nc} impropers", "",
           f"{len(atom_types)} atom types", f"{max(len(btypes), 1)} bond types",
           f"{max(len(atypes), 1)} angle types", f"{max(len(dtypes), 1)} dihedral types",
           f"{max(len(itypes), 1)} improper types", "",
           f"0.0 {L:.6f} xlo xhi", f"0.0 {L:.6f} ylo yhi", f"0.0 {L:.6f} zlo zhi", "",
           "Masses", ""]
    out += [f"{atype[nm]} {mass_of[nm]:.4f} # {nm}" for nm in atom_types]
    out += ["", "Pair Coeffs # lj (epsilon kcal/mol, sigma A)", ""]
    for nm in atom_types:
        eps, sig = ff.lj[nm]
        if eps <= 0 or sig <= 0:
            eps, sig = 0.0, 1.0   # no LJ site (e.g. hydroxyl H): ε = 0 zeroes every mixed pair
        out.append(f"{atype[nm]} {eps * epsilon_scale:.6f} {sig:.6f} # {nm}")
    out += ["", "Bond Coeffs # harmonic", ""]
    out += [f"{i} {k:.6f} {r0:.6f} # {'-'.join(nm)}" for (nm, k, r0), i in btypes.items()] or [
        "1 0.0 1.0"]
    out += ["", "Angle Coeffs # harmonic", ""]
    out += [f"{i} {k:.6f} {th:.5f} # {'-'.join(nm)}" for (nm, k, th), i in atypes.items()] or [
        "1 0.0 109.5"]
    out += ["", "Dihedral Coeffs # fourier", ""]
    for (nm, terms), i in dtypes.items():
        s = " ".join(f"{K:.6f} {nn} {ph:.2f}" for K, nn, ph in terms)
        out.append(f"{i} {len(terms)} {s} # {'-'.join(nm)}")
    if not dtypes:
        out.append("1 1 0.0 1 0.0")
    out += ["", "Improper Coeffs # cvff", ""]
    out += [f"{i} {K:.6f} {d} {nn}" for (K, d, nn), i in itypes.items()] or ["1 0.0 1 2"]
    out += ["", "Atoms # full", ""]
    aid = 0
    for c, xyz in enumerate(coords):
        img = np.floor(xyz / L).astype(int)
        wrapped = xyz - img * L
        for i in range(n):
            aid += 1
            x, y, z = wrapped[i]
            ix, iy, iz = img[i]
            out.append(f"{aid} {c + 1} {atype[t[i]]} {ff.charges[i]:.6f} {x:.5f} {y:.5f} {z:.5f} "
                       f"{ix} {iy} {iz}")

    def section(title_, items, ids, width):
        rows, k = ["", title_, ""], 0
        for c in range(nc):
            off = c * n
            for it, tid in zip(items, ids):
                k += 1
                rows.append(f"{k} {tid} " + " ".join(str(off + it[j] + 1) for j in range(width)))
        return rows if k else []

    out += section("Bonds", ff.bonds, bids, 2)
    out += section("Angles", ff.angles, aids, 3)
    out += section("Dihedrals", ff.dihedrals, dids, 4)
    out += section("Impropers", ff.impropers, iids, 4)
    path.write_text("\n".join(out) + "\n")
    return DataFileInfo(n_atoms=n * nc, n_atom_types=len(atom_types), shake_bond_types=shake,
                        total_charge=math.fsum(ff.charges) * nc,
                        total_mass=math.fsum(ff.masses) * nc, box=L)
