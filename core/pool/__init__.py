"""Candidate pool: corpus, n-gram generation, the shipped default pool, user imports.

The seed study screened a pool of 10,000 virtual homopolymers sampled from a
probabilistic language model trained on known polymers.  This module rebuilds that:

* **Corpus** — ``assets/polymer_corpus.csv`` (``name, psmiles, class, source``): known
  polymers authored for this project (commodity, engineering, optical, fluorinated and
  sulfur-containing ones), plus any corpus file the user points to (CSV with a
  ``psmiles``/``smiles`` column, or a plain list, one polymer SMILES per line).
* **Model** — the order-k extended-SMILES n-gram of :mod:`core.pool.ngram`, trained on the
  corpus (with randomised-SMILES augmentation), saved as ``model.ngram.json.gz``.
* **Generation** — sample, validate with :func:`core.chem.polymer.parse_psmiles`, filter
  (≤ ``max_heavy_atoms`` heavy atoms, ≤ ``max_rings`` rings, ring sizes 3..
  ``max_ring_size``, no peroxides/cumulenes/heteroatom–halogen bonds), deduplicate by
  :func:`core.chem.polymer.canonical_psmiles` against each other and against the corpus.
* **Pool directory** — ``descriptors.npz`` (the single source of truth, replaced
  atomically: ``X`` float32 (n, 170), ``ids``, canonical ``psmiles``, ``sources``,
  descriptor ``names``, the manifest), plus human-readable copies ``pool.csv.gz`` (id,
  psmiles, source) and ``manifest.json`` (model, corpus + sha256, seed, counts, versions,
  timings, file hashes) and the model file ``model.ngram.json.gz``.

Regenerate the shipped pool with (see ``assets/pool/manifest.json`` for the exact line)::

    python -m core.pool generate --n 10000 --seed 0 --out assets/pool

Users add their own candidates with ``python -m core.pool import FILE --out DIR`` or
through :func:`import_candidates` (pure: validation + descriptors, nothing written).
"""
from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import os
import platform
import random
import re
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from core.errors import InputError
from core.pool import ngram
from core.atomic_io import atomic_write_bytes
from core.chem.polymer import (MAX_PSMILES_LENGTH, InvalidPolymer, canonical_psmiles, parse_psmiles,
                               polymer_key, preview)

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "assets"
CORPUS_PATH = ASSETS / "polymer_corpus.csv"
DEFAULT_POOL_DIR = ASSETS / "pool"
POOL_FORMAT = "optipoly-pool/1"
POOL_CSV = "pool.csv.gz"
POOL_NPZ = "descriptors.npz"
MANIFEST = "manifest.json"
MODEL_FILE = "model.ngram.json.gz"
N_DESCRIPTORS = 170
_SMILES_COLUMNS = ("psmiles", "smiles", "polymer_smiles", "p_smiles")
#: longest row (line) of a polymer list that is read; longer ones are reported as invalid rows.
#: Far above any real row (a polymer SMILES has at most MAX_PSMILES_LENGTH characters; a pool
#: CSV with 170 descriptor columns ~4,000) and below the csv module's 131,072-character field
#: limit, so csv never raises on a long field.
MAX_ROW_CHARS = 65_536
#: how much of a user's row is shown back in reports and messages
ECHO_CHARS = 80
# Lines end at LF, CRLF or CR only, and fields of a plain list are separated by ASCII blanks
# only: str.splitlines()/str.split() would also break at U+2028, U+0085, no-break spaces …,
# silently turning "*CC*<NBSP>c1ccccc1" into "*CC*"; kept, such characters are reported.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BLANKS = " \t"
_FIELD_SEP = re.compile(r"[ \t]+")

ProgressFn = Callable[[str], None]


class PoolError(InputError):
    """Bad input to the pool functions (corpus, pool directory, parameters)."""


class CorpusError(PoolError):
    """A corpus/candidate file that cannot be read (no SMILES column, empty, not text)."""


class RowTooLong(CorpusError):
    """A row of a polymer list longer than :data:`MAX_ROW_CHARS` (a 10 MB line, binary data):
    named by its line number, its start shown (never the whole row).  :func:`import_candidates`
    and :func:`load_corpus` list such rows as invalid and read the rest of the file."""

    def __init__(self, source: str, line: int, n_chars: int, start: str) -> None:
        self.source, self.line, self.n_chars, self.start = source, line, n_chars, start
        #: the reason without the file and line (for per-row reports)
        self.reason = (f"{n_chars:,} characters, more than the {MAX_ROW_CHARS:,} allowed in one "
                       f"row (a polymer SMILES has at most {MAX_PSMILES_LENGTH:,})")
        super().__init__(f"{source}: line {line}: {self.reason}; it starts {start}")


def clip(text: str, limit: int = ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters (with "…") for reports that show user input."""
    return text if len(text) <= limit else text[:limit] + "…"


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class ModelParams:
    """How the n-gram is trained: context ``order``, randomised SMILES per polymer
    (``n_augment``), Kekulé (True) or aromatic SMILES, seed of the augmentation."""

    order: int = 10
    n_augment: int = 20
    kekule: bool = True
    train_seed: int = 0


@dataclass(frozen=True)
class SampleParams:
    """Sampling temperature (p ∝ count^(1/T)), per-step order back-off probability,
    maximum tokens per string."""

    temperature: float = 1.0
    backoff: float = 0.0
    max_tokens: int = 160


@dataclass(frozen=True)
class Filters:
    """Which valid polymer SMILES are kept as candidates (counts exclude the two ``*``)."""

    max_heavy_atoms: int = 50
    max_rings: int = 7
    max_ring_size: int = 7
    # at most this many atom environments (atom + its bonded neighbours, in the chain) that
    # occur nowhere in the training corpus; None switches the check off
    max_unseen_environments: int | None = 1
    # (name, SMARTS, scope): "chain" patterns are searched in the repeat unit closed on
    # itself (the bond between two units exists there: ``*O...O*`` is a peroxide), "unit"
    # patterns (ring-dependent ones) in the repeat unit.
    forbidden: tuple[tuple[str, str, str], ...] = (
        ("peroxide", "[#8][#8]", "chain"),
        ("cumulene", "[#6]=[#6]=[#6]", "chain"),
        ("heteroatom-halogen bond", "[#7,#8,#15,#16][F,Cl,Br,I]", "chain"),
        ("S-S-S chain", "[#16][#16][#16]", "chain"),
        ("N-N-N chain", "[#7][#7][#7]", "chain"),
        ("hypervalent S without S=O", "[#16;v4,v5,v6;!$([#16]=[#8,#7])]", "chain"),
        ("sulfur(VI) without two S=O/S=N", "[#16;v6;!$([#16](=[#8,#7])=[#8,#7])]", "chain"),
        ("S-H on hypervalent S", "[#16;v4,v6;!H0]", "chain"),
        ("P(V) without P=O/P=N/P=S", "[#15;v5;!$([#15]=[#8,#7,#16])]", "chain"),
        ("cyclobutadiene", "[#6]1=[#6][#6]=[#6]1", "unit"),
        ("cyclopropene", "[#6;r3]=[#6;r3]", "unit"),
        ("triple bond in a ring", "[R]#[R]", "unit"),
    )


@lru_cache(maxsize=None)
def _smarts(pattern: str):
    from rdkit import Chem

    patt = Chem.MolFromSmarts(pattern)
    if patt is None:  # pragma: no cover - patterns are constants
        raise PoolError(f"bad SMARTS {pattern!r}")
    return patt


def chain_mol(mol):
    """The repeat unit closed on itself: both ``*`` removed and their neighbours bonded, so
    the bond between consecutive units exists.  Falls back to the cyclic trimer (via
    ``Chem.molzip``) when both ``*`` sit on one atom or on two bonded atoms."""
    from rdkit import Chem

    stars = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
    h, t = (mol.GetAtomWithIdx(i).GetNeighbors()[0].GetIdx() for i in stars)
    if h != t and mol.GetBondBetweenAtoms(h, t) is None:
        rw = Chem.RWMol(mol)
        rw.AddBond(h, t, Chem.BondType.SINGLE)
        for i in sorted(stars, reverse=True):
            rw.RemoveAtom(i)
        m = rw.GetMol()
        if Chem.SanitizeMol(m, catchErrors=True) == Chem.SanitizeFlags.SANITIZE_NONE:
            return m
    pieces = []
    for k in range(3):
        m = Chem.RWMol(mol)
        m.GetAtomWithIdx(stars[0]).SetAtomMapNum(k + 1)
        m.GetAtomWithIdx(stars[1]).SetAtomMapNum((k + 1) % 3 + 1)
        pieces.append(m.GetMol())
    combo = Chem.CombineMols(Chem.CombineMols(pieces[0], pieces[1]), pieces[2])
    ring = Chem.molzip(combo)
    Chem.SanitizeMol(ring)
    return ring


def filter_reason(mol, filters: Filters) -> str | None:
    """Why a parsed polymer (RDKit mol with two ``*``) fails ``filters``; None if it passes.

    Ring and size limits apply to the repeat unit; "chain" groups are searched in
    :func:`chain_mol` (so groups formed across the bond between two units are caught).
    """
    n_heavy = sum(1 for a in mol.GetAtoms() if a.GetAtomicNum() > 1)
    if n_heavy > filters.max_heavy_atoms:
        return f"more than {filters.max_heavy_atoms} heavy atoms"
    ri = mol.GetRingInfo()
    if ri.NumRings() > filters.max_rings:
        return f"more than {filters.max_rings} rings"
    for ring in ri.AtomRings():
        if len(ring) > filters.max_ring_size:
            return f"ring larger than {filters.max_ring_size}"
    chain = None
    for name, patt, scope in filters.forbidden:
        if scope == "chain":
            if chain is None:
                chain = chain_mol(mol)
            target = chain
        else:
            target = mol
        if target.HasSubstructMatch(_smarts(patt)):
            return name
    return None


def atom_environments(chain) -> set[tuple]:
    """Radius-1 atom environments of a molecule: (element, aromatic, total H, charge,
    in ring, sorted (neighbour element, aromatic, bond type)).  Used to flag chemistry the
    training corpus never shows (an n-gram can join fragments into unseen groups)."""
    out = set()
    for a in chain.GetAtoms():
        if a.GetAtomicNum() == 0:
            continue
        i = a.GetIdx()
        nb = tuple(sorted((n.GetSymbol(), n.GetIsAromatic(),
                           str(chain.GetBondBetweenAtoms(i, n.GetIdx()).GetBondType()))
                          for n in a.GetNeighbors()))
        out.add((a.GetSymbol(), a.GetIsAromatic(), a.GetTotalNumHs(), a.GetFormalCharge(),
                 a.IsInRing(), nb))
    return out


def corpus_environments(psmiles: Iterable[str]) -> frozenset:
    """Union of :func:`atom_environments` over the chains of a corpus."""
    envs: set[tuple] = set()
    for s in psmiles:
        envs |= atom_environments(chain_mol(parse_psmiles(s)))
    return frozenset(envs)


# --------------------------------------------------------------------------- reading lists


def _read_text(text_or_path: str | os.PathLike) -> tuple[str, str]:
    """(text, label) from a path or from literal text (anything with a newline, or not a
    file, is taken as text)."""
    if isinstance(text_or_path, os.PathLike) or (
            isinstance(text_or_path, str) and "\n" not in text_or_path
            and len(text_or_path) < 4096 and Path(text_or_path).is_file()):
        path = Path(text_or_path)
        if not path.is_file():
            raise CorpusError(f"no such file: {path}")
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        try:
            return raw.decode("utf-8-sig"), str(path)
        except UnicodeDecodeError as exc:
            raise CorpusError(f"{path} is not UTF-8 text: {exc}") from exc
    if not isinstance(text_or_path, str):
        raise CorpusError(f"expected a path or text, got {type(text_or_path).__name__}")
    return text_or_path, "<text>"


def read_polymer_list(text_or_path: str | os.PathLike,
                      problems: list[tuple[int, str, str]] | None = None
                      ) -> list[tuple[int, str, str]]:
    """Rows of a polymer list as (line number, polymer SMILES, name).

    Accepted formats: a CSV/TSV whose header has a ``psmiles`` or ``smiles`` column
    (case-insensitive; a ``name`` column is used when present), or plain text with one
    polymer SMILES per line (first whitespace-separated field; blank lines and lines
    starting with ``#`` are skipped).  Line numbers are 1-based lines of the file.
    Lines longer than :data:`MAX_ROW_CHARS` are left out: with a ``problems`` list each is
    appended to it as (line number, its start clipped to ~80 characters, reason); without one
    the first raises :class:`RowTooLong`.
    Raises CorpusError when a CSV has no SMILES column, is not valid CSV, or nothing is listed.
    """
    text, label = _read_text(text_or_path)
    lines = _LINE_BREAK.split(text)
    for i, ln in enumerate(lines):
        if len(ln) > MAX_ROW_CHARS:
            err = RowTooLong(label, i + 1, len(ln), preview(ln, ECHO_CHARS))
            if problems is None:
                raise err
            problems.append((i + 1, clip(ln), err.reason))
            lines[i] = ""  # skipped like a blank line; the numbering of the others is kept
    first = next((ln for ln in lines if ln.strip(_BLANKS) and
                  not ln.lstrip(_BLANKS).startswith("#")), None)
    if first is None:
        raise CorpusError(f"{label}: no polymer SMILES listed")
    delim = "\t" if "\t" in first else ","
    header = [h.strip().lower() for h in next(csv.reader([first], delimiter=delim))]
    rows: list[tuple[int, str, str]] = []
    if len(header) > 1 or header[0] in _SMILES_COLUMNS:
        col = next((header.index(c) for c in _SMILES_COLUMNS if c in header), None)
        if col is None:
            raise CorpusError(
                f"{label}: CSV header {header} has no polymer SMILES column "
                f"(expected one of {', '.join(_SMILES_COLUMNS)})")
        name_col = header.index("name") if "name" in header else None
        start = lines.index(first)
        reader = csv.reader(io.StringIO("\n".join(lines[start + 1:])), delimiter=delim)
        try:
            for rec in reader:
                lineno = start + 1 + reader.line_num
                if not rec or all(not f.strip() for f in rec):
                    continue
                smi = rec[col].strip() if col < len(rec) else ""
                name = (rec[name_col].strip() if name_col is not None and name_col < len(rec)
                        else "")
                rows.append((lineno, smi, name))
        except csv.Error as exc:  # e.g. a quote opened and never closed
            raise CorpusError(f"{label}: line {start + 1 + reader.line_num}: not valid CSV "
                              f"({exc})") from None
    else:
        for i, ln in enumerate(lines, start=1):
            s = ln.strip(_BLANKS)
            if not s or s.startswith("#"):
                continue
            parts = _FIELD_SEP.split(s, maxsplit=1)
            rows.append((i, parts[0], parts[1].strip() if len(parts) > 1 else ""))
    if not rows:
        raise CorpusError(f"{label}: no polymer SMILES listed")
    return rows


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Corpus:
    """Validated, canonical, deduplicated training polymers and where they came from."""

    psmiles: list[str]
    sources: list[dict]
    invalid: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, reason)


def load_corpus(paths: Sequence[str | os.PathLike]) -> Corpus:
    """Read corpus files, validate every row, canonicalise and deduplicate.

    Invalid rows are skipped and listed in ``Corpus.invalid`` (a user corpus may hold a
    few); each file's name, sha256 and counts go to ``Corpus.sources``.
    """
    if not paths:
        raise CorpusError("no corpus file given")
    seen: set[str] = set()
    out: list[str] = []
    sources: list[dict] = []
    invalid: list[tuple[str, int, str]] = []
    for p in paths:
        path = Path(p)
        too_long: list[tuple[int, str, str]] = []
        rows = read_polymer_list(path, too_long)
        invalid += [(str(path), lineno, why) for lineno, _, why in too_long]
        n_valid = 0
        n_new = 0
        for lineno, smi, _name in rows:
            try:
                can = canonical_psmiles(smi)
            except InvalidPolymer as exc:
                invalid.append((str(path), lineno, str(exc)))
                continue
            n_valid += 1
            if can not in seen:
                seen.add(can)
                out.append(can)
                n_new += 1
        try:
            rel = str(path.resolve().relative_to(REPO))
        except ValueError:
            rel = None
        sources.append({"name": path.name, "path_in_repo": rel, "sha256": sha256_file(path),
                        "rows": len(rows), "valid": n_valid, "added": n_new})
    if not out:
        raise CorpusError("the corpus holds no valid polymer SMILES")
    return Corpus(psmiles=out, sources=sources, invalid=invalid)


# --------------------------------------------------------------------------- model


def train_model(psmiles: Sequence[str], params: ModelParams = ModelParams()) -> ngram.NGramModel:
    """Train the n-gram on polymer SMILES (see :mod:`core.pool.ngram`); records params in meta."""
    strings = ngram.training_strings(psmiles, n_augment=params.n_augment,
                                     seed=params.train_seed, kekule=params.kekule)
    model = ngram.train_ngram(strings, order=params.order)
    model.meta.update({"params": asdict(params), "n_polymers": len(psmiles)})
    return model


# --------------------------------------------------------------------------- generation


def _parse_for_pool(s: str, filters: Filters):
    """(mol, None) or (None, reason) — validation plus the cheap unit-level limits."""
    try:
        mol = parse_psmiles(s, max_heavy_atoms=max(filters.max_heavy_atoms, 1))
    except InvalidPolymer as exc:
        msg = str(exc)
        if "heavy atoms" in msg:
            return None, f"more than {filters.max_heavy_atoms} heavy atoms"
        return None, "invalid: " + msg.split(" in ")[0].split(":")[0]
    return mol, None


def _finish_check(s: str, mol, filters: Filters,
                  known_envs: frozenset | None = None) -> tuple[str | None, str | None]:
    why = filter_reason(mol, filters)
    if why:
        return None, why
    if known_envs is not None and filters.max_unseen_environments is not None:
        unseen = len(atom_environments(chain_mol(mol)) - known_envs)
        if unseen > filters.max_unseen_environments:
            return None, f"more than {filters.max_unseen_environments} atom environments " \
                         f"unseen in the corpus"
    try:
        can = canonical_psmiles(s)
        if canonical_psmiles(can) != can:
            # RDKit re-perceives aromaticity differently on re-parsing (strained or bridged
            # "aromatic" rings): not a structure to simulate, and not a stable id
            return None, "unstable aromaticity (canonical form not idempotent)"
        return can, None
    except InvalidPolymer as exc:  # pragma: no cover - parse_psmiles passed
        return None, "invalid: " + str(exc)


def check_candidate(s: str, filters: Filters = Filters()) -> tuple[str | None, str | None]:
    """(canonical PSMILES, None) when ``s`` is a valid polymer passing ``filters``,
    else (None, reason); reasons starting with "invalid" mean it failed validation."""
    mol, why = _parse_for_pool(s, filters)
    if mol is None:
        return None, why
    return _finish_check(s, mol, filters)


@dataclass
class GenerationStats:
    """Counts from :func:`generate_candidates`: ``attempts`` strings started, ``completed``
    (the others hit a dead end or ``max_tokens``), ``valid`` (passed core.chem.polymer
    validation), ``rejected`` by reason (invalid ones and filtered ones), ``duplicates``
    (repeats of an earlier sample), ``in_corpus``, ``accepted``."""

    attempts: int = 0
    completed: int = 0
    dead_ends: int = 0
    too_long: int = 0
    valid: int = 0
    rejected: dict = field(default_factory=dict)
    duplicates: int = 0
    in_corpus: int = 0
    accepted: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def generate_candidates(model: ngram.NGramModel, n: int, *, seed: int = 0,
                        sample_params: SampleParams = SampleParams(),
                        filters: Filters = Filters(), exclude: Iterable[str] = (),
                        max_attempts: int | None = None,
                        known_envs: frozenset | None = None,
                        progress: ProgressFn | None = None
                        ) -> tuple[list[str], GenerationStats]:
    """Sample until ``n`` valid, filtered, unique candidates not in ``exclude`` (canonical
    PSMILES) are found, or ``max_attempts`` (default 60·n) strings were drawn.

    ``known_envs`` (:func:`corpus_environments` of the training corpus) enables the
    ``filters.max_unseen_environments`` check.  Returns the canonical PSMILES in the order
    found (deterministic for a given model, seed and parameters) and the counts.
    """
    if n < 0:
        raise PoolError(f"n must be >= 0, got {n}")
    from rdkit import Chem

    max_attempts = max_attempts if max_attempts is not None else 60 * max(n, 1)
    excl = set(exclude)
    rng = random.Random(seed)
    stats = GenerationStats()
    sstats = ngram.SampleStats()
    out: list[str] = []
    seen_raw: dict[str, tuple[str | None, str | None]] = {}
    seen_mol: dict[str, tuple[str | None, str | None]] = {}
    seen_can: set[str] = set()
    t0 = time.perf_counter()
    last_report = 0.0
    while len(out) < n and stats.attempts < max_attempts:
        strings = ngram.sample(model, 1, rng=rng, temperature=sample_params.temperature,
                               backoff=sample_params.backoff,
                               max_tokens=sample_params.max_tokens, stats=sstats,
                               max_atoms=filters.max_heavy_atoms + 2)
        stats.attempts += 1
        for s in strings:
            stats.completed += 1
            if s in seen_raw:
                can, why = seen_raw[s]
            else:
                mol, why = _parse_for_pool(s, filters)
                can = None
                if mol is not None:
                    molkey = Chem.MolToSmiles(mol)   # same molecule -> same verdict
                    if molkey in seen_mol:
                        can, why = seen_mol[molkey]
                    else:
                        can, why = _finish_check(s, mol, filters, known_envs)
                        seen_mol[molkey] = (can, why)
                seen_raw[s] = (can, why)
            if why is not None and why.startswith("invalid"):
                stats.rejected[why] = stats.rejected.get(why, 0) + 1
                continue
            stats.valid += 1
            if why is not None:
                stats.rejected[why] = stats.rejected.get(why, 0) + 1
                continue
            if can in seen_can:
                stats.duplicates += 1
                continue
            seen_can.add(can)
            if can in excl:
                stats.in_corpus += 1
                continue
            out.append(can)
        if progress is None or (stats.attempts % 200 and len(out) < n):
            continue
        now = time.perf_counter() - t0
        if now - last_report > 5.0 or len(out) >= n:
            last_report = now
            progress(f"sampling: {len(out)}/{n} candidates, {stats.attempts} strings drawn, "
                     f"{stats.valid} valid, {stats.duplicates} duplicates, "
                     f"{stats.in_corpus} in corpus ({now:.0f} s)")
    stats.accepted = len(out)
    stats.dead_ends = sstats.dead_end
    stats.too_long = sstats.too_long
    stats.seconds = time.perf_counter() - t0
    return out, stats


# --------------------------------------------------------------------------- descriptors


def _default_descriptors(psmiles: list[str], n_jobs: int,
                         progress: Callable[[int, int], None] | None) -> np.ndarray:
    from core.chem.descriptors import ff_kernel_mean_batch

    return ff_kernel_mean_batch(psmiles, n_jobs=n_jobs, progress=progress, on_error="nan")


def compute_descriptors(psmiles: Sequence[str], *, n_jobs: int = 1,
                        descriptor_fn: Callable | None = None,
                        progress: ProgressFn | None = None
                        ) -> tuple[np.ndarray, dict[int, str]]:
    """170-d descriptors (core.chem.descriptors.ff_kernel_mean_batch) of ``psmiles``.

    Returns (X (n, 170) float64 with NaN rows for failures, {row index: reason}).  A polymer
    whose descriptor fails never takes the others down.  ``descriptor_fn(list, n_jobs=...)``
    replaces the default (it may raise for a bad polymer: the list is then retried one by
    one).
    """
    n = len(psmiles)
    if n == 0:
        return np.zeros((0, N_DESCRIPTORS)), {}
    t0 = time.perf_counter()
    last = [0.0]

    def tick(done: int, total: int) -> None:
        el = time.perf_counter() - t0
        if progress is not None and (el - last[0] > 5.0 or done == total):
            last[0] = el
            eta = el / done * (total - done) if done else float("nan")
            progress(f"descriptors: {done}/{total} ({el:.0f} s, about {eta:.0f} s left)")

    errors: dict[int, str] = {}
    if descriptor_fn is None:
        X = np.asarray(_default_descriptors(list(psmiles), n_jobs, tick), dtype=float)
    else:
        try:
            X = np.asarray(descriptor_fn(list(psmiles), n_jobs=n_jobs), dtype=float)
        # a caller-supplied function may raise anything: isolate the failing polymer(s)
        except Exception:  # noqa: BLE001
            X = np.full((n, N_DESCRIPTORS), np.nan)
            for i, s in enumerate(psmiles):
                try:
                    X[i] = np.asarray(descriptor_fn([s], n_jobs=1), dtype=float).reshape(-1)
                # the row stays NaN and the message becomes that row's report
                except Exception as exc:  # noqa: BLE001
                    errors[i] = f"descriptor failed: {exc}"
        tick(n, n)
    if X.shape != (n, N_DESCRIPTORS):
        raise PoolError(f"descriptor function returned shape {X.shape}, expected "
                        f"({n}, {N_DESCRIPTORS})")
    failed: dict[int, str] = {}
    for i in np.flatnonzero(~np.isfinite(X).all(axis=1)):
        failed[int(i)] = errors.get(int(i)) or _descriptor_error(psmiles[int(i)], descriptor_fn)
    return X, failed


def _descriptor_error(s: str, descriptor_fn: Callable | None) -> str:
    """The reason the descriptor of one polymer fails (recomputed alone to get the message)."""
    try:
        if descriptor_fn is None:
            from core.chem.descriptors import ff_kernel_mean
            x = ff_kernel_mean(s)
        else:
            x = descriptor_fn([s], n_jobs=1)
        if not np.isfinite(np.asarray(x, dtype=float)).all():
            return "descriptor failed: non-finite values"
        return "descriptor failed"  # pragma: no cover - failed in the batch only
    # any failure of the (possibly caller-supplied) descriptor is the report itself
    except Exception as exc:  # noqa: BLE001
        return f"descriptor failed: {exc}"


# --------------------------------------------------------------------------- pool files


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed .npz with fixed timestamps (byte-identical for identical arrays)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            b = io.BytesIO()
            np.lib.format.write_array(b, np.asanyarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, b.getvalue(), compresslevel=9)
    return buf.getvalue()


def _csv_gz_bytes(ids: Sequence[str], psmiles: Sequence[str], sources: Sequence[str]) -> bytes:
    sio = io.StringIO()
    w = csv.writer(sio, lineterminator="\n")
    w.writerow(["id", "psmiles", "source"])
    for row in zip(ids, psmiles, sources):
        w.writerow(row)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(sio.getvalue().encode())
    return buf.getvalue()


def _descriptor_version() -> str | None:
    try:
        from core.chem.descriptors import DESCRIPTOR_VERSION
        return str(DESCRIPTOR_VERSION)
    except ImportError:  # pragma: no cover - descriptors are part of core
        return None


def _descriptor_names() -> list[str]:
    try:
        from core.chem.descriptors import DESCRIPTOR_NAMES
        return list(DESCRIPTOR_NAMES)
    except ImportError:  # pragma: no cover - descriptors are part of core
        return [f"x{i}" for i in range(N_DESCRIPTORS)]


def write_pool(out_dir: str | os.PathLike, ids: Sequence[str], psmiles: Sequence[str],
               X: np.ndarray, manifest: dict, sources: Sequence[str] | None = None) -> dict:
    """Write a pool directory; returns the manifest written.

    ``descriptors.npz`` is the single source of truth (``X`` float32 with |x| < 1e-7 flushed
    to 0 — the descriptors lie in [0, 1] — plus ``ids``, ``psmiles``, ``sources``,
    descriptor ``names`` and the ``manifest`` as JSON) and is replaced atomically, last, so
    a reader sees the old pool or the new one, never a mix.  ``pool.csv.gz`` and
    ``manifest.json`` (with the sha256 of both data files) are human-readable copies.
    """
    out = Path(out_dir)
    n = len(ids)
    X = np.asarray(X, dtype=float)
    if len(psmiles) != n or X.shape != (n, N_DESCRIPTORS):
        raise PoolError(f"inconsistent pool: {n} ids, {len(psmiles)} psmiles, X {X.shape}")
    if len(set(ids)) != n:
        raise PoolError("pool ids are not unique")
    if not np.isfinite(X).all():
        raise PoolError("pool descriptors contain non-finite values")
    sources = list(sources) if sources is not None else ["generated"] * n
    if len(sources) != n:
        raise PoolError(f"{len(sources)} sources for {n} candidates")
    X32 = X.astype(np.float32)
    X32[np.abs(X32) < 1e-7] = 0.0
    csv_bytes = _csv_gz_bytes(ids, psmiles, sources)
    manifest = {k: v for k, v in manifest.items() if k != "files"}
    manifest["format"] = POOL_FORMAT
    manifest["n"] = n
    npz_bytes = _npz_bytes({"X": X32, "ids": np.array(ids, dtype=str),
                            "psmiles": np.array(psmiles, dtype=str),
                            "sources": np.array(sources, dtype=str),
                            "names": np.array(_descriptor_names(), dtype=str),
                            "manifest": np.array(json.dumps(manifest))})
    outer = dict(manifest, files={POOL_NPZ: hashlib.sha256(npz_bytes).hexdigest(),
                                  POOL_CSV: hashlib.sha256(csv_bytes).hexdigest()})
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / POOL_CSV, csv_bytes)
    atomic_write_bytes(out / MANIFEST, (json.dumps(outer, indent=1) + "\n").encode())
    atomic_write_bytes(out / POOL_NPZ, npz_bytes)
    return outer


def read_pool(pool_dir: str | os.PathLike) -> dict:
    """Read a pool directory: dict with ``ids``, ``psmiles``, ``sources`` (lists of str),
    ``X`` (float64, (n, 170)), ``manifest``.  Raises PoolError when it is missing or
    inconsistent."""
    d = Path(pool_dir)
    try:
        with np.load(d / POOL_NPZ, allow_pickle=False) as z:
            X = z["X"].astype(np.float64)
            ids = z["ids"].tolist()
            psmiles = z["psmiles"].tolist()
            sources = z["sources"].tolist()
            manifest = json.loads(str(z["manifest"]))
    except (OSError, KeyError, ValueError, json.JSONDecodeError, zipfile.BadZipFile) as exc:
        raise PoolError(f"cannot read pool directory {d}: {exc}") from exc
    n = len(ids)
    if len(psmiles) != n or len(sources) != n or X.shape != (n, N_DESCRIPTORS):
        raise PoolError(f"pool directory {d} is inconsistent ({n} ids, X {X.shape})")
    return {"ids": ids, "psmiles": psmiles, "sources": sources, "X": X, "manifest": manifest}


@lru_cache(maxsize=4)
def _cached_pool(path: str, stamp: tuple[int, int]) -> dict:
    pool = read_pool(path)
    pool["X"].setflags(write=False)
    return pool


def load_default_pool(pool_dir: str | os.PathLike | None = None) -> dict:
    """The shipped pool (``assets/pool``): ``ids`` (list[str]), ``psmiles`` (list[str],
    canonical), ``X`` (np.ndarray (n, 170) float64, read-only, shared between calls),
    ``manifest`` (dict).  Cached in memory (re-read when the file changes)."""
    d = Path(pool_dir) if pool_dir is not None else DEFAULT_POOL_DIR
    try:
        st = (d / POOL_NPZ).stat()
    except OSError as exc:
        raise PoolError(f"no pool at {d} (run: python -m core.pool generate --out {d})") from exc
    pool = _cached_pool(str(d.resolve()), (st.st_mtime_ns, st.st_size))
    return {"ids": list(pool["ids"]), "psmiles": list(pool["psmiles"]), "X": pool["X"],
            "manifest": json.loads(json.dumps(pool["manifest"]))}


# --------------------------------------------------------------------------- imports


@dataclass
class ImportReport:
    """Result of :func:`import_candidates` (nothing is written by it).

    ``psmiles``/``keys``/``ids``/``X``/``rows``: the accepted candidates (canonical PSMILES,
    same again as dedup key, content ids ``U-<sha1[:10]>``, descriptors (k, 170), their line
    numbers); ``invalid``: (line, text, reason); ``duplicates``: (line, text, reason) with
    reason "duplicate of line N" or "already in the pool".
    """

    psmiles: list[str]
    ids: list[str]
    X: np.ndarray
    rows: list[int]
    invalid: list[tuple[int, str, str]]
    duplicates: list[tuple[int, str, str]]
    n_rows: int

    @property
    def keys(self) -> list[str]:
        return list(self.psmiles)

    @property
    def n_added(self) -> int:
        return len(self.psmiles)

    @property
    def n_invalid(self) -> int:
        return len(self.invalid)

    @property
    def n_duplicates(self) -> int:
        return len(self.duplicates)

    def summary(self) -> str:
        return (f"{self.n_rows} rows: {self.n_added} added, {self.n_invalid} invalid, "
                f"{self.n_duplicates} duplicates skipped")


def _stable_canonical(s: str) -> str:
    """canonical_psmiles iterated to a fixed point (RDKit may re-perceive aromaticity once)."""
    can = canonical_psmiles(s)
    for _ in range(3):
        nxt = canonical_psmiles(can)
        if nxt == can:
            break
        can = nxt
    return can


def candidate_id(canonical: str, prefix: str = "U") -> str:
    """Content-derived id of a user candidate: ``<prefix>-`` + first 10 hex of sha1."""
    return f"{prefix}-" + hashlib.sha1(canonical.encode()).hexdigest()[:10]


def import_candidates(text_or_path: str | os.PathLike, existing_keys: Iterable[str] = (), *,
                      max_heavy_atoms: int = 150, n_jobs: int = 1,
                      descriptor_fn: Callable | None = None) -> ImportReport:
    """Validate a user's candidate list and compute descriptors for the new ones.

    ``text_or_path``: a file path or the text itself (CSV with a psmiles/smiles column, or
    one polymer SMILES per line).  ``existing_keys``: canonical PSMILES (or
    :func:`core.chem.polymer.polymer_key` keys) already in the campaign's pool
    (``load_default_pool()["psmiles"]`` plus earlier imports).  Rows that fail
    :func:`core.chem.polymer.parse_psmiles` (or the descriptor computation) are listed in
    ``invalid`` with the reason; repeats within the file and polymers already present are
    skipped and listed in ``duplicates``.  Descriptors of all accepted rows are computed
    before returning — the report is complete or the call raises; nothing is written.
    Rows longer than :data:`MAX_ROW_CHARS` are invalid rows too; every text in ``invalid``
    and ``duplicates`` is clipped to ~80 characters.
    Raises CorpusError when the input cannot be read at all.
    """
    invalid: list[tuple[int, str, str]] = []
    rows = read_polymer_list(text_or_path, invalid)
    n_rows = len(rows) + len(invalid)  # over-long rows count as (invalid) rows
    existing = set(existing_keys)
    first_line: dict[str, int] = {}
    duplicates: list[tuple[int, str, str]] = []
    acc: list[tuple[int, str]] = []
    for lineno, smi, _name in rows:
        try:
            parse_psmiles(smi, max_heavy_atoms=max_heavy_atoms)
            can = _stable_canonical(smi)
            key = polymer_key(smi)  # cached together with canonical_psmiles
        except InvalidPolymer as exc:
            invalid.append((lineno, clip(smi), str(exc)))
            continue
        if can in first_line:
            duplicates.append((lineno, clip(smi), f"duplicate of line {first_line[can]}"))
            continue
        first_line[can] = lineno
        if can in existing or key in existing:
            duplicates.append((lineno, clip(smi), "already in the pool"))
            continue
        acc.append((lineno, can))
    X, failed = compute_descriptors([c for _, c in acc], n_jobs=n_jobs,
                                    descriptor_fn=descriptor_fn) if acc else (
        np.zeros((0, N_DESCRIPTORS)), {})
    keep = [i for i in range(len(acc)) if i not in failed]
    text_of = {ln: s for ln, s, _ in rows}
    for i, why in sorted(failed.items()):
        invalid.append((acc[i][0], clip(text_of[acc[i][0]]), why))
    invalid.sort()
    return ImportReport(psmiles=[acc[i][1] for i in keep],
                        ids=[candidate_id(acc[i][1]) for i in keep],
                        X=X[keep] if keep else np.zeros((0, N_DESCRIPTORS)),
                        rows=[acc[i][0] for i in keep], invalid=invalid,
                        duplicates=duplicates, n_rows=n_rows)


def import_into_pool(path: str | os.PathLike, pool_dir: str | os.PathLike, *, n_jobs: int = 1,
                     base_pool: str | os.PathLike | None = None,
                     descriptor_fn: Callable | None = None) -> ImportReport:
    """Import a candidate file into a pool directory (created from ``base_pool``, default the
    shipped pool, when it does not exist yet).  Nothing is written unless the whole import
    was computed; files are replaced atomically, the manifest records the import."""
    if not Path(path).is_file():
        raise CorpusError(f"no such file: {path}")
    d = Path(pool_dir)
    if (d / POOL_NPZ).exists():
        pool = read_pool(d)
    else:
        pool = read_pool(base_pool if base_pool is not None else DEFAULT_POOL_DIR)
        pool["manifest"] = dict(pool["manifest"], base_pool=str(base_pool or DEFAULT_POOL_DIR))
    have = (pool["manifest"].get("descriptors") or {}).get("version")
    if descriptor_fn is None and have is not None and have != _descriptor_version():
        raise PoolError(f"pool {d} holds descriptors of version {have}, this code computes "
                        f"{_descriptor_version()}: run `python -m core.pool redescribe "
                        f"{d}` first")
    rep = import_candidates(path, pool["psmiles"], n_jobs=n_jobs, descriptor_fn=descriptor_fn)
    if rep.n_added:
        man = pool["manifest"]
        man.setdefault("imports", []).append({
            "file": Path(path).name, "sha256": sha256_file(path),
            "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "rows": rep.n_rows, "added": rep.n_added, "invalid": rep.n_invalid,
            "duplicates": rep.n_duplicates})
        write_pool(d, pool["ids"] + rep.ids, pool["psmiles"] + rep.psmiles,
                   np.vstack([pool["X"], rep.X]), man,
                   sources=pool["sources"] + [f"import:{Path(path).name}"] * rep.n_added)
    return rep


def redescribe_pool(pool_dir: str | os.PathLike, *, n_jobs: int = 1,
                    progress: ProgressFn | None = None) -> dict:
    """Recompute the descriptors of every candidate of a pool directory with the current
    :mod:`core.chem.descriptors` (after a descriptor change); ids and PSMILES are kept.  Raises
    PoolError (writing nothing) if any descriptor fails.  Returns the new manifest."""
    d = Path(pool_dir)
    p = read_pool(d)
    t0 = time.perf_counter()
    X, failed = compute_descriptors(p["psmiles"], n_jobs=n_jobs, progress=progress)
    if failed:
        i, why = next(iter(failed.items()))
        raise PoolError(f"{len(failed)} descriptors failed, e.g. {p['ids'][i]} "
                        f"{p['psmiles'][i]}: {why}; pool unchanged")
    man = p["manifest"]
    man.setdefault("descriptors", {})["version"] = _descriptor_version()
    man.setdefault("timings_s", {})["redescribe"] = round(time.perf_counter() - t0, 2)
    man["redescribed_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return write_pool(d, p["ids"], p["psmiles"], X, man, sources=p["sources"])


# --------------------------------------------------------------------------- build


def _versions() -> dict:
    import rdkit

    v = {"python": platform.python_version(), "numpy": np.__version__,
         "rdkit": rdkit.__version__, "platform": platform.platform()}
    try:
        import pandas
        v["pandas"] = pandas.__version__
    except ImportError:  # pragma: no cover
        pass
    return v


def build_pool(n: int, *, seed: int = 0, corpus_paths: Sequence[str | os.PathLike] = (),
               use_default_corpus: bool = True, model_params: ModelParams = ModelParams(),
               sample_params: SampleParams = SampleParams(), filters: Filters = Filters(),
               out_dir: str | os.PathLike = DEFAULT_POOL_DIR, n_jobs: int = 1,
               model_path: str | os.PathLike | None = None, save_model: bool = True,
               descriptor_fn: Callable | None = None, command: str | None = None,
               progress: ProgressFn | None = None) -> dict:
    """Train (or load) the model, generate ``n`` candidates, compute descriptors, write the
    pool directory.  Returns the manifest.  Candidates whose descriptors fail are dropped
    and replaced by further samples (counted in the manifest)."""
    say = progress or (lambda msg: None)
    t_all = time.perf_counter()
    paths = ([CORPUS_PATH] if use_default_corpus else []) + [Path(p) for p in corpus_paths]
    corpus = load_corpus(paths)
    say(f"corpus: {len(corpus.psmiles)} unique valid polymers from "
        f"{', '.join(s['name'] for s in corpus.sources)} ({len(corpus.invalid)} invalid rows)")
    t0 = time.perf_counter()
    if model_path is not None:
        model = ngram.load_model(model_path)
        model_src = {"loaded_from": str(model_path), "sha256": sha256_file(model_path)}
    else:
        model = train_model(corpus.psmiles, model_params)
        model_src = {"trained_on": [s["name"] for s in corpus.sources]}
    t_train = time.perf_counter() - t0
    say(f"model: order {model.order}, {model.meta.get('n_contexts')} contexts "
        f"({t_train:.1f} s)")
    excl = set(corpus.psmiles)
    envs = corpus_environments(corpus.psmiles)
    cands, gstats = generate_candidates(model, n, seed=seed, sample_params=sample_params,
                                        filters=filters, exclude=excl, known_envs=envs,
                                        progress=say)
    if len(cands) < n:
        raise PoolError(f"only {len(cands)} of {n} candidates after {gstats.attempts} draws: "
                        f"raise the temperature/back-off or use a larger corpus")
    t0 = time.perf_counter()
    X, failed = compute_descriptors(cands, n_jobs=n_jobs, descriptor_fn=descriptor_fn,
                                    progress=say)
    n_desc_failed = len(failed)
    extra_rounds = 0
    while failed and extra_rounds < 5:
        extra_rounds += 1
        keep = [i for i in range(len(cands)) if i not in failed]
        cands = [cands[i] for i in keep]
        X = X[keep]
        more, st2 = generate_candidates(model, n - len(cands), seed=seed + 1000003 * extra_rounds,
                                        sample_params=sample_params, filters=filters,
                                        exclude=excl | set(cands), known_envs=envs)
        Xm, failed = compute_descriptors(more, n_jobs=n_jobs, descriptor_fn=descriptor_fn)
        n_desc_failed += len(failed)
        cands += more
        X = np.vstack([X, Xm])
        gstats.attempts += st2.attempts
    if failed:
        raise PoolError(f"descriptor computation keeps failing ({n_desc_failed} polymers)")
    t_desc = time.perf_counter() - t0
    width = max(5, len(str(n)))
    ids = [f"VP{i + 1:0{width}d}" for i in range(n)]
    out = Path(out_dir)
    man = {
        "command": command,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seed": seed,
        "corpus": corpus.sources,
        "corpus_unique_polymers": len(corpus.psmiles),
        "corpus_invalid_rows": len(corpus.invalid),
        "corpus_atom_environments": len(envs),
        "model": {"type": "extended-SMILES n-gram (core.pool.ngram)", "order": model.order,
                  **model_src, "params": model.meta.get("params"),
                  "n_training_strings": model.meta.get("n_strings"),
                  "n_contexts": model.meta.get("n_contexts")},
        "sampling": asdict(sample_params),
        "filters": {**{k: v for k, v in asdict(filters).items() if k != "forbidden"},
                    "forbidden": {k: f"{v} ({scope})" for k, v, scope in filters.forbidden}},
        "counts": {**gstats.as_dict(), "descriptor_failures_replaced": n_desc_failed,
                   "pool": n},
        "descriptors": {"module": "core.chem.descriptors.ff_kernel_mean_batch",
                        "version": _descriptor_version(), "n": N_DESCRIPTORS,
                        "stored_dtype": "float32", "flushed_below": 1e-7},
        "versions": _versions(),
        "timings_s": {"train": round(t_train, 2), "sample": round(gstats.seconds, 2),
                      "descriptors": round(t_desc, 2)},
    }
    if save_model:
        out.mkdir(parents=True, exist_ok=True)
        ngram.save_model(model, out / MODEL_FILE)
        man["model"]["file"] = MODEL_FILE
        man["model"]["file_sha256"] = sha256_file(out / MODEL_FILE)
    man["timings_s"]["total"] = round(time.perf_counter() - t_all, 2)
    man = write_pool(out, ids, cands, X, man)
    say(f"wrote {n} candidates to {out} ({man['timings_s']['total']:.0f} s)")
    return man


# --------------------------------------------------------------------------- CLI


def _progress_printer(msg: str) -> None:
    print(f"[pool {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.pool", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="train/load the n-gram, sample, write a pool directory")
    g.add_argument("--n", type=int, default=10000)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--corpus", action="append", default=[],
                   help="extra corpus file (CSV with psmiles/smiles column or a list); repeatable")
    g.add_argument("--no-default-corpus", action="store_true",
                   help="do not include assets/polymer_corpus.csv")
    g.add_argument("--model", default=None, help="load this model file instead of training")
    g.add_argument("--order", type=int, default=ModelParams.order)
    g.add_argument("--augment", type=int, default=ModelParams.n_augment)
    g.add_argument("--aromatic", action="store_true", help="train on aromatic (not Kekulé) SMILES")
    g.add_argument("--temperature", type=float, default=SampleParams.temperature)
    g.add_argument("--backoff", type=float, default=SampleParams.backoff)
    g.add_argument("--max-heavy-atoms", type=int, default=Filters.max_heavy_atoms)
    g.add_argument("--max-rings", type=int, default=Filters.max_rings)
    g.add_argument("--max-unseen-envs", type=int, default=Filters.max_unseen_environments,
                   help="atom environments absent from the corpus allowed per candidate "
                        "(-1: no limit)")
    g.add_argument("--n-jobs", type=int, default=2)
    g.add_argument("--out", default=str(DEFAULT_POOL_DIR))
    rd = sub.add_parser("redescribe", help="recompute the descriptors of a pool directory")
    rd.add_argument("pool_dir", nargs="?", default=str(DEFAULT_POOL_DIR))
    rd.add_argument("--n-jobs", type=int, default=2)
    im = sub.add_parser("import", help="validate a candidate file and add it to a pool directory")
    im.add_argument("file")
    im.add_argument("--out", required=True, help="pool directory to add to (created from --base)")
    im.add_argument("--base", default=None, help="pool to start from (default: assets/pool)")
    im.add_argument("--n-jobs", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "generate":
            cmd = "python -m core.pool " + " ".join(
                a if a != str(REPO) else "." for a in (argv if argv is not None else sys.argv[1:]))
            man = build_pool(
                args.n, seed=args.seed, corpus_paths=args.corpus,
                use_default_corpus=not args.no_default_corpus,
                model_params=ModelParams(order=args.order, n_augment=args.augment,
                                         kekule=not args.aromatic),
                sample_params=SampleParams(temperature=args.temperature, backoff=args.backoff),
                filters=Filters(max_heavy_atoms=args.max_heavy_atoms, max_rings=args.max_rings,
                                max_unseen_environments=(None if args.max_unseen_envs < 0
                                                         else args.max_unseen_envs)),
                out_dir=args.out, n_jobs=args.n_jobs, model_path=args.model,
                command=cmd, progress=_progress_printer)
            print(json.dumps(man["counts"], indent=1))
        elif args.cmd == "redescribe":
            man = redescribe_pool(args.pool_dir, n_jobs=args.n_jobs, progress=_progress_printer)
            print(f"recomputed {man['n']} descriptors (version {man['descriptors']['version']}) "
                  f"in {man['timings_s']['redescribe']:.0f} s")
        else:
            rep = import_into_pool(args.file, args.out, n_jobs=args.n_jobs, base_pool=args.base)
            for line, text, why in rep.invalid:
                print(f"line {line}: invalid: {text!r}: {why}")
            for line, text, why in rep.duplicates:
                print(f"line {line}: skipped: {text!r}: {why}")
            print(rep.summary() + (f"; pool written to {args.out}" if rep.n_added else
                                   "; nothing to add, pool unchanged"))
    except (PoolError, ngram.ModelFileError, ngram.SmilesTokenError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
