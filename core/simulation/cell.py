"""Step 3 (cell): pack the chains into a periodic cubic box at low density with packmol.

The box edge follows from the total mass and the target packing density:
L = (M_total / (N_A · ρ))^(1/3), with M in g/mol, ρ in g/cm³ → L in Å (1 cm³ = 1e24 Å³).
packmol (PyPI ``packmol``) places the chains with periodic boundary conditions (``pbc``) and a
minimum distance ``tolerance`` (Å) between atoms of different molecules; its output is wrapped
into the box, so each chain is made whole again by walking its bonds with the minimum image.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from rdkit import Chem

from core.simulation.env import run_program, which
from core.simulation.errors import ExternalProgramError, PackingError

__all__ = ["box_length", "pack_chains", "unwrap_molecule", "AVOGADRO"]

AVOGADRO = 6.02214076e23


def box_length(total_mass_g_mol: float, density_g_cm3: float) -> float:
    """Cubic box edge (Å) holding ``total_mass_g_mol`` at ``density_g_cm3``."""
    if total_mass_g_mol <= 0 or density_g_cm3 <= 0:
        raise PackingError("Box size needs a positive mass and density.")
    vol_a3 = total_mass_g_mol / AVOGADRO / density_g_cm3 * 1e24
    return vol_a3 ** (1.0 / 3.0)


def unwrap_molecule(xyz: np.ndarray, bonds: list[tuple[int, int]], box: float) -> np.ndarray:
    """Make a molecule whole: BFS over bonds, each neighbour placed at its minimum image (Å)."""
    n = len(xyz)
    out = xyz.copy()
    adj: list[list[int]] = [[] for _ in range(n)]
    for i, j in bonds:
        adj[i].append(j)
        adj[j].append(i)
    seen = np.zeros(n, bool)
    for root in range(n):
        if seen[root]:
            continue
        seen[root] = True
        stack = [root]
        while stack:
            i = stack.pop()
            for j in adj[i]:
                if not seen[j]:
                    d = out[j] - out[i]
                    out[j] = out[i] + d - box * np.round(d / box)
                    seen[j] = True
                    stack.append(j)
    return out


def chain_extent(mol: Chem.Mol) -> float:
    """Largest distance (Å) between two atoms of a molecule's conformer."""
    xyz = mol.GetConformer().GetPositions()
    if len(xyz) < 2:
        return 0.0
    d2 = ((xyz[:, None, :] - xyz[None, :, :]) ** 2).sum(-1)
    return float(np.sqrt(d2.max()))


def pack_chains(chains: list[Chem.Mol], density_g_cm3: float, workdir: Path, *,
                tolerance: float = 2.0, seed: int = 1, timeout: float = 600) -> tuple[list[np.ndarray], float]:
    """Pack ``chains`` (RDKit mols with conformers) into a periodic cube.

    Returns (list of whole-molecule coordinate arrays in Å, box edge in Å); the box spans [0, L)³.
    The edge is the one of ``density_g_cm3``. When packmol fails there and the longest chain is
    longer than that edge (a stiff, fully aromatic rod meets its own periodic image, which
    packmol cannot resolve), it packs once more in a box of the chain's extent plus twice the
    tolerance (a less dense start; the MD's compression brings it up). Polymers that pack at the
    density's edge are unaffected.
    Raises PackingError when packmol does not reach the tolerance.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    from rdkit.Chem import Descriptors  # noqa: PLC0415
    total = sum(Descriptors.MolWt(m) for m in chains)
    L = box_length(total, density_g_cm3)
    for i, m in enumerate(chains):
        Chem.MolToXYZFile(m, str(workdir / f"chain_{i}.xyz"))
    try:
        return _packmol(chains, L, density_g_cm3, workdir, tolerance, seed, timeout), L
    except PackingError:
        rod = max((chain_extent(m) for m in chains), default=0.0) + 2.0 * tolerance
        if rod <= L:
            raise
    return _packmol(chains, rod, density_g_cm3, workdir, tolerance, seed, timeout), rod


def _packmol(chains: list[Chem.Mol], L: float, density_g_cm3: float, workdir: Path,
             tolerance: float, seed: int, timeout: float) -> list[np.ndarray]:
    """One packmol run of ``chains`` (``workdir/chain_<i>.xyz``) into a periodic cube of edge L
    (Å); whole-molecule coordinates per chain. Raises PackingError."""
    lines = [f"tolerance {tolerance}", "filetype xyz", "output packed.xyz", f"seed {seed}",
             f"pbc 0. 0. 0. {L:.4f} {L:.4f} {L:.4f}", "nloop 400"]
    for i in range(len(chains)):
        lines += [f"structure chain_{i}.xyz", "  number 1", "end structure"]
    (workdir / "packmol.inp").write_text("\n".join(lines) + "\n")
    try:
        cp = run_program([which("packmol")], cwd=workdir, step="cell", timeout=timeout,
                         stdin_file=workdir / "packmol.inp")
    except ExternalProgramError as exc:
        raise PackingError(f"packmol failed to pack {len(chains)} chains into a {L:.1f} Å box: "
                           f"{exc}") from exc
    if "Success!" not in cp.stdout and "Solution written" not in cp.stdout:
        raise PackingError(
            f"packmol could not place {len(chains)} chains in a {L:.1f} Å box at "
            f"{density_g_cm3} g/cm³ without overlaps (tolerance {tolerance} Å).")
    raw = np.loadtxt(workdir / "packed.xyz", skiprows=2, usecols=(1, 2, 3))
    coords, start = [], 0
    for m in chains:
        n = m.GetNumAtoms()
        bonds = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in m.GetBonds()]
        coords.append(unwrap_molecule(raw[start:start + n], bonds, L))
        start += n
    return coords
