"""Force-field kernel mean embedding: the 170-d polymer descriptor of SPACIER / RadonPy.

Recipe (RadonPy ``FF_descriptor.ff_kernel_mean`` with SPACIER's settings; DESIGN.md):

1. cyclic 10-mer of the repeat unit, explicit H, no end groups; Kekulé + MDL aromaticity;
2. GAFF2 types (:mod:`core.chem.gaff2`, RadonPy's GAFF2_mod rules) and Gasteiger charges (RDKit);
3. per atom: mass (g/mol), charge q (e), LJ ε (kcal/mol), σ (Å); per bond: k_b
   (kcal/mol/Å²), r0 (Å); per angle: k_θ (kcal/mol/rad²), θ0 (deg); per dihedral:
   K_d = the largest Fourier amplitude (kcal/mol);
4. min–max scaling with fixed ranges (``SCALE_RANGES``) to x′;
5. d_{c,k} = mean_j exp(−(x′_j − μ_k)² / (2 s²)) with 20 centres μ_k = (2k+1)/40 and
   s = 0.025 for the 8 parameter classes, and 10 centres at the scaled masses of
   H, C, N, O, F, P, S, Cl, Br, I with s = 0.05 for the mass class.  170 columns.

Because the cyclic 10-mer is invariant under a shift by one repeat unit, every atom, bond,
angle and dihedral of the ring is a copy of one "owned" by the first unit (atoms; bonds
inside it plus the bond to the next unit; angles by apex; dihedrals by central bond).
Means over the owned set equal means over the whole ring, so only the first unit is typed
and looked up (10x less Python work); the ring itself is still built so that charges,
hybridisation and aromaticity come from the real 10-mer.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import sqlite3
import sys
import threading
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdPartialCharges

from core.errors import InputError
from . import gaff2
from .polymer import RDKIT_ERRORS, InvalidPolymer, canonical_psmiles, parse_psmiles

__all__ = [
    "DESCRIPTOR_NAMES",
    "DESCRIPTOR_VERSION",
    "SCALE_RANGES",
    "DescriptorError",
    "ff_parameters",
    "kernel_mean",
    "ff_kernel_mean",
    "ff_kernel_mean_batch",
]

N_CYCLIC = 10
_ELEMENTS = ("H", "C", "N", "O", "F", "P", "S", "Cl", "Br", "I")
_CLASSES = ("charge", "epsilon", "sigma", "k_bond", "r0", "k_angle", "theta0", "k_dih")
DESCRIPTOR_NAMES: list[str] = [f"mass_{e}" for e in _ELEMENTS] + [
    f"{c}_{k}" for c in _CLASSES for k in range(20)
]
# element masses used for the mass centres (RadonPy FF_descriptor.ff_mass), g/mol
_MASS_CENTRES = np.array([1.008, 12.011, 14.007, 15.999, 18.998, 30.974, 32.067, 35.453,
                          79.904, 126.904])
SCALE_RANGES: dict[str, tuple[float, float]] = {
    "mass": (1.008, 126.904),
    "charge": (-1.0, 1.0),
    "epsilon": (0.0047, 0.4955),
    "sigma": (0.5379, 4.0447),
    "k_bond": (48.08, 891.54),
    "r0": (0.957, 2.917),
    "k_angle": (25.816, 157.396),
    "theta0": (48.3, 180.0),
    "k_dih": (0.0, 11.69),
}
_MU = (2 * np.arange(20) + 1) / 40.0
_S = 0.025
_S_MASS = 0.05
_GAFF_VERSION = os.environ.get("OPTIPOLY_GAFF2_VERSION", "2.11")
DESCRIPTOR_VERSION = f"ffkm-2/gaff2-{_GAFF_VERSION}/n{N_CYCLIC}"


class DescriptorError(InputError):
    """The descriptor of a polymer could not be computed; the message names why."""


# --------------------------------------------------------------------------- ring build


def _ring(unit: Chem.Mol, n: int) -> tuple[Chem.Mol, int, int, int]:
    """Heavy-atom cyclic n-mer with atom k*m + i = atom i of unit k.

    Returns (ring with explicit H appended after the heavy atoms, m, head, tail) with head/
    tail the local indices of the atoms that carried the stars.
    """
    stars = [a.GetIdx() for a in unit.GetAtoms() if a.GetAtomicNum() == 0]
    head = unit.GetAtomWithIdx(stars[0]).GetNeighbors()[0].GetIdx()
    tail = unit.GetAtomWithIdx(stars[1]).GetNeighbors()[0].GetIdx()
    local = {}
    for a in unit.GetAtoms():
        if a.GetAtomicNum() > 0:
            local[a.GetIdx()] = len(local)
    m = len(local)
    rw = Chem.RWMol()
    atoms = [unit.GetAtomWithIdx(i) for i in local]
    for _ in range(n):
        for a in atoms:
            rw.AddAtom(Chem.Atom(a))
    intra = [(local[b.GetBeginAtomIdx()], local[b.GetEndAtomIdx()], b.GetBondType(), b.GetIsAromatic())
             for b in unit.GetBonds()
             if b.GetBeginAtomIdx() in local and b.GetEndAtomIdx() in local]
    for k in range(n):
        off = k * m
        for i, j, bt, aro in intra:
            rw.AddBond(off + i, off + j, bt)
            if aro:
                rw.GetBondBetweenAtoms(off + i, off + j).SetIsAromatic(True)
        rw.AddBond(off + local[tail], ((k + 1) % n) * m + local[head], Chem.BondType.SINGLE)
    ring = rw.GetMol()
    # No SanitizeMol: its ring perception enumerates every equivalent macrocycle (2^k for k
    # backbone rings: minutes for a 10-mer through cyclohexanes).  The units are already
    # sanitised (aromatic flags, Kekulé-able); only valences, the SSSR, conjugation and
    # hybridisation across the new inter-unit bonds need computing.  Checked identical
    # (types and Gasteiger charges) to full sanitisation on all PI1070 polymers where the
    # latter finishes.
    ring.UpdatePropertyCache(strict=False)
    Chem.GetSSSR(ring)
    Chem.SetConjugation(ring)
    Chem.SetHybridization(ring)
    ring = Chem.AddHs(ring)
    return ring, m, local[head], local[tail]


# --------------------------------------------------------------------------- parameters


def ff_parameters(psmiles: str, *, n: int = N_CYCLIC,
                  version: str | None = None) -> dict[str, np.ndarray]:
    """Raw (unscaled) force-field parameters of the cyclic ``n``-mer, first-unit owned set.

    Returns arrays ``mass, charge, epsilon, sigma, k_bond, r0, k_angle, theta0, k_dih``
    (units in the module docstring) plus ``types`` (GAFF2 types of the owned atoms).
    """
    try:
        unit = parse_psmiles(psmiles)
    except InvalidPolymer as exc:
        raise DescriptorError(str(exc)) from exc
    if n < 3:
        raise DescriptorError(f"cyclic oligomer needs n >= 3, got {n}")
    p = gaff2.load_gaff2(version or _GAFF_VERSION)
    try:
        ring, m, head, tail = _ring(unit, n)
    except RDKIT_ERRORS as exc:  # RDKit sanitisation of the joined ring
        raise DescriptorError(f"cannot build the cyclic {n}-mer of {psmiles!r}: {exc}") from exc
    try:
        gaff2.prepare(ring)
        rdPartialCharges.ComputeGasteigerCharges(ring)
    except RDKIT_ERRORS as exc:  # RDKit Kekulé / charge failures
        raise DescriptorError(f"cannot prepare the cyclic {n}-mer of {psmiles!r}: {exc}") from exc
    nheavy = n * m

    # owned atoms: unit-0 heavy atoms and their hydrogens
    owned_h: list[int] = []
    parent: dict[int, int] = {}
    for i in range(m):
        for nb in ring.GetAtomWithIdx(i).GetNeighbors():
            j = nb.GetIdx()
            if j >= nheavy:
                owned_h.append(j)
                parent[j] = i
    try:
        heavy_t = [gaff2._type_atom(ring.GetAtomWithIdx(i)) for i in range(m)]
        h_t: dict[int, str] = {}
        for h in owned_h:
            if parent[h] not in h_t:
                h_t[parent[h]] = gaff2._type_atom(ring.GetAtomWithIdx(h))
    except gaff2.Gaff2Error as exc:
        raise DescriptorError(f"GAFF2 typing failed for {psmiles!r}: {exc}") from exc

    def tp0(g: int) -> str:
        if g < nheavy:
            return heavy_t[g % m]
        par = parent.get(g)
        if par is None:
            par = ring.GetAtomWithIdx(g).GetNeighbors()[0].GetIdx()
            parent[g] = par
        return h_t[par % m]

    if gaff2.NEEDS_SPECIAL.intersection(heavy_t):
        # conjugation pairs (cc/cd, ce/cf, cp/cq ...) need the whole ring (period may be 2
        # units; the parameters of the mirror types are equal, so owned-set means hold)
        full = gaff2.special_types(ring, [tp0(g) for g in range(ring.GetNumAtoms())])
        tp = full.__getitem__
    else:
        tp = tp0

    owned = list(range(m)) + owned_h
    atoms = [ring.GetAtomWithIdx(i) for i in owned]
    mass = np.array([a.GetMass() for a in atoms])
    charge = np.array([a.GetDoubleProp("_GasteigerCharge") for a in atoms])
    if not np.all(np.isfinite(charge)):
        raise DescriptorError(f"Gasteiger charges are not finite for {psmiles!r}")
    types = [tp(i) for i in owned]
    lj = []
    for t in types:
        v = p.lj.get(t) or p.lj.get(gaff2.ALT_TYPES.get(t, t))
        if v is None:
            raise DescriptorError(f"no Lennard-Jones parameters for GAFF2 type {t}")
        lj.append(v)
    eps = np.array([v[0] for v in lj])
    sig = np.array([v[1] for v in lj])

    nbrs: dict[int, list[int]] = {}

    def nb_of(g: int) -> list[int]:
        v = nbrs.get(g)
        if v is None:
            v = [x.GetIdx() for x in ring.GetAtomWithIdx(g).GetNeighbors()]
            nbrs[g] = v
        return v

    # owned bonds: inside unit 0 (incl. X-H) + the bond unit0.tail -> unit1.head
    obonds = []
    for i in range(m):
        for j in nb_of(i):
            if j >= nheavy or (j < m and j > i):
                obonds.append((i, j))
    obonds.append((tail, m + head))
    sym = {}

    def el(g: int) -> str:
        s = sym.get(g)
        if s is None:
            s = ring.GetAtomWithIdx(g).GetSymbol()
            sym[g] = s
        return s

    try:
        kb, r0 = [], []
        for i, j in obonds:
            k, r = gaff2.bond_term(p, tp(i), tp(j))
            kb.append(k)
            r0.append(r)
        ka, th = [], []
        for j in range(m):
            nb = nb_of(j)
            for x in range(len(nb)):
                for y in range(x + 1, len(nb)):
                    i, k = nb[x], nb[y]
                    K, t0 = gaff2.angle_term(p, tp(i), tp(j), tp(k), el(i), el(j), el(k))
                    ka.append(K)
                    th.append(t0)
    except gaff2.Gaff2Error as exc:
        raise DescriptorError(f"GAFF2 parameters missing for {psmiles!r}: {exc}") from exc
    kd = []
    for j, k in obonds:
        tj, tk = tp(j), tp(k)
        for i in nb_of(j):
            if i == k:
                continue
            ti = tp(i)
            for l in nb_of(k):
                if l == j or l == i:
                    continue
                terms = gaff2.dihedral_terms(p, ti, tj, tk, tp(l))
                kd.append(0.0 if terms is None else max(t[0] for t in terms))
    return {
        "mass": mass, "charge": charge, "epsilon": eps, "sigma": sig,
        "k_bond": np.array(kb), "r0": np.array(r0), "k_angle": np.array(ka),
        "theta0": np.array(th), "k_dih": np.array(kd), "types": np.array(types),
    }


# --------------------------------------------------------------------------- kernel mean


def _scale(x: np.ndarray, cls: str) -> np.ndarray:
    lo, hi = SCALE_RANGES[cls]
    return (np.asarray(x, dtype=float) - lo) / (hi - lo)


_MU_MASS = _scale(_MASS_CENTRES, "mass")


def kernel_mean(values: np.ndarray, centres: np.ndarray, s: float) -> np.ndarray:
    """mean_j exp(−(v_j − μ_k)² / (2 s²)) for each centre μ_k (zeros for no values)."""
    v = np.asarray(values, dtype=float).reshape(1, -1)
    if v.size == 0:
        return np.zeros(len(centres))
    return np.exp(-((v - centres.reshape(-1, 1)) ** 2) / (2.0 * s * s)).mean(axis=1)


def _embed(params: dict[str, np.ndarray]) -> np.ndarray:
    parts = [kernel_mean(_scale(params["mass"], "mass"), _MU_MASS, _S_MASS)]
    for c in _CLASSES:
        parts.append(kernel_mean(_scale(params[c], c), _MU, _S))
    return np.concatenate(parts)


def ff_kernel_mean(psmiles: str) -> np.ndarray:
    """170-d force-field kernel mean embedding of a polymer SMILES (order: DESCRIPTOR_NAMES).

    Raises :class:`DescriptorError` (a ValueError) for invalid polymers or failed typing.
    """
    return _embed(ff_parameters(psmiles))


# --------------------------------------------------------------------------- batch


def _worker(items: list[tuple[int, str]]) -> list[tuple[int, np.ndarray | None, str | None]]:
    out = []
    for i, s in items:
        try:
            out.append((i, ff_kernel_mean(s), None))
        # process boundary (pool worker): every failure is reported per row by the caller
        except Exception as exc:  # noqa: BLE001
            out.append((i, None, f"{type(exc).__name__}: {exc}"))
    return out


def _key_worker(items: list[tuple[int, str]]) -> list[tuple[int, str | None, str | None]]:
    out = []
    for i, s in items:
        try:
            out.append((i, canonical_psmiles(s), None))
        except (InvalidPolymer, TypeError) as exc:
            out.append((i, None, str(exc)))
    return out


def _mp_context():
    """fork when this process has a single thread (fast, no __main__ guard needed);
    spawn otherwise (fork is unsafe under threads, e.g. inside Streamlit or dask)."""
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _run(ex: ProcessPoolExecutor | None, fn: Callable, chunks: list[list]) -> Iterator:
    """Yield ``fn(chunk)`` in order, from the pool when given; if the pool breaks (e.g. a
    spawn from a script without a ``__main__`` guard), warn and finish here instead."""
    if ex is None:
        for c in chunks:
            yield fn(c)
        return
    n = 0
    try:
        for res in ex.map(fn, chunks):
            n += 1
            yield res
    except BrokenProcessPool as exc:
        warnings.warn(f"descriptor worker pool failed ({exc}); computing serially",
                      RuntimeWarning, stacklevel=3)
        for c in chunks[n:]:
            yield fn(c)


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class _DiskCache:
    """SQLite key -> 170 float64 vector store (keyed by canonical PSMILES + version)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(str(self.path), timeout=30)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("CREATE TABLE IF NOT EXISTS ffkm (key TEXT PRIMARY KEY, vec BLOB)")

    @staticmethod
    def _k(key: str) -> str:
        return hashlib.sha1(f"{DESCRIPTOR_VERSION}|{key}".encode()).hexdigest()

    def get_many(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        out = {}
        for key in keys:
            row = self.con.execute("SELECT vec FROM ffkm WHERE key=?", (self._k(key),)).fetchone()
            if row is not None:
                out[key] = np.frombuffer(row[0], dtype=np.float64).copy()
        return out

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        with self.con:
            self.con.executemany(
                "INSERT OR REPLACE INTO ffkm (key, vec) VALUES (?, ?)",
                [(self._k(k), np.asarray(v, dtype=np.float64).tobytes()) for k, v in items.items()])

    def close(self) -> None:
        self.con.close()


def ff_kernel_mean_batch(
    psmiles: Sequence[str],
    *,
    n_jobs: int = 1,
    progress: Callable[[int, int], None] | None = None,
    cache: dict | None = None,
    cache_path: str | os.PathLike | None = None,
    on_error: str = "raise",
    chunk_size: int = 64,
) -> np.ndarray:
    """Descriptors of many polymers, shape (n, 170).

    - Duplicates (same canonical PSMILES) are computed once.
    - ``cache``: a dict keyed by canonical PSMILES, read and updated in place;
      ``cache_path``: an SQLite file with the same role across runs (keys include
      ``DESCRIPTOR_VERSION``).
    - ``n_jobs`` > 1 uses that many worker processes; ``progress(done, total)`` is called
      in this process as polymers finish (total = number of input rows).
    - ``on_error="raise"`` (default): an invalid or untypable polymer raises
      :class:`DescriptorError` naming the row; ``on_error="nan"`` gives a NaN row instead.
    """
    if on_error not in ("raise", "nan"):
        raise ValueError(f"on_error must be 'raise' or 'nan', got {on_error!r}")
    if isinstance(psmiles, str):
        raise TypeError("psmiles must be a sequence of strings, not a single string")
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    rows = list(psmiles)
    total = len(rows)
    out = np.full((total, len(DESCRIPTOR_NAMES)), np.nan)
    if total == 0:
        return out
    parallel = n_jobs > 1 and total > chunk_size
    ex = None
    disk = _DiskCache(cache_path) if cache_path is not None else None
    try:
        if parallel:
            ex = ProcessPoolExecutor(max_workers=n_jobs, mp_context=_mp_context())
        # 1. canonical keys (dedup + cache keys), in the workers when parallel
        key_items = _chunks(list(enumerate(rows)), chunk_size)
        key_res = _run(ex, _key_worker, key_items)
        keys: list[str | None] = [None] * total
        for res in key_res:
            for r, k, err in res:
                if k is None and on_error == "raise":
                    raise DescriptorError(f"row {r} ({rows[r]!r}): {err}")
                keys[r] = k
        # 2. cache look-ups
        known: dict[str, np.ndarray] = {}
        if cache is not None:
            for k in keys:
                if k is not None and k in cache:
                    known[k] = np.asarray(cache[k], dtype=float)
        if disk is not None:
            known.update(disk.get_many({k for k in keys if k is not None and k not in known}))
        count: dict[str, int] = {}
        for k in keys:
            if k is not None:
                count[k] = count.get(k, 0) + 1
        todo = sorted(k for k in count if k not in known)
        done = sum(1 for k in keys if k is None or k in known)
        if progress is not None:
            progress(done, total)
        # 3. descriptors of the new polymers (each canonical polymer once)
        new: dict[str, np.ndarray] = {}
        errors: dict[str, str] = {}
        chunks = _chunks(list(enumerate(todo)), chunk_size)
        results = _run(ex if len(chunks) > 1 else None, _worker, chunks)
        for res in results:
            for i, vec, err in res:
                k = todo[i]
                if vec is None:
                    errors[k] = err or "unknown error"
                else:
                    new[k] = vec
                done += count[k]
            if progress is not None:
                progress(done, total)
        if disk is not None and new:
            disk.put_many(new)
    finally:
        if ex is not None:
            ex.shutdown(cancel_futures=True)
        if disk is not None:
            disk.close()
    if cache is not None:
        cache.update(new)
    known.update(new)
    for r, k in enumerate(keys):
        if k is None:
            continue
        if k in known:
            out[r] = known[k]
        elif on_error == "raise":
            raise DescriptorError(f"row {r} ({rows[r]!r}): {errors[k]}")
    return out
