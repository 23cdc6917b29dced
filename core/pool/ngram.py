"""Order-k extended-SMILES n-gram language model over polymer SMILES.

The model follows the idea of the n-gram SMILES generator of iQSPR / XenonPy
(Ikebata et al., J. Comput. Aided Mol. Des. 31, 379 (2017); Yamada et al.,
ACS Cent. Sci. 5, 1717 (2019)): a SMILES string is a sequence of tokens and
P(token | previous k tokens) is estimated by counting.  Two things make the
plain n-gram usable for polymers:

* *Extended-SMILES bookkeeping.*  Ring-closure labels are renumbered so that a
  ring is always opened with the smallest free label (``c1ccc2ccccc2c1`` keeps
  its labels, ``C3CC3`` becomes ``C1CC1``).  The same label then means the same
  thing in every training string, and the sampler tracks the grammar state
  (open rings, branch depth, number of ``*``) and only allows tokens that keep
  the string syntactically complete: a ring can only be closed if it is open
  and not on the atom that opened it, ``)`` only inside a branch, the end token
  only when every ring and branch is closed and both ``*`` are present, and a
  ``*`` is always a terminal atom.  It also counts bond orders per atom and masks
  tokens that would exceed an atom's valence (C 4, N 3, O 2, S 6, halogens 1,
  aromatic atoms by ring connections).  At a dead end (nothing allowed) the last
  token is withdrawn and banned at that position (bounded backtracking).
  Training on Kekulé SMILES (the default in ``core.pool``) lets the valence
  bookkeeping see every double bond, so nearly every completed string parses.
* *Polymer-aware training strings.*  Every training string starts at one of
  the two ``*`` of the repeat unit.  With ``n_augment > 0`` randomised SMILES
  (random atom order, rooted at a random ``*``; Bjerrum, arXiv:1703.07076) are
  added, which multiplies the contexts a small corpus provides.

Sampling uses the longest context seen in training ("stupid back-off",
Brants et al., EMNLP-CoNLL 2007), with probability ``backoff`` of dropping one
order at each step (more novelty), and temperature T (p ∝ count^(1/T)).
All randomness comes from a seeded ``random.Random`` so a (model, seed,
parameters) triple always yields the same strings.

This module knows nothing of chemistry beyond SMILES syntax; chemical validity
is checked by ``core.chem.polymer`` downstream.
"""
from __future__ import annotations

import gzip
import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

from core.errors import InputError

FORMAT = "optipoly-ngram/1"
BOS = "<s>"
EOS = "</s>"

_TOKEN_RE = re.compile(r"(\[[^\]]+\]|Br|Cl|%\d{2}|[A-Za-z]|\d|[()=#\-+\\/:~@?>*$.])")
_BOND_TOKENS = frozenset({"-", "=", "#", "$", ":", "/", "\\"})


class SmilesTokenError(InputError):
    """A string could not be split into SMILES tokens (or uses unsupported syntax)."""


class ModelFileError(InputError):
    """A model file is missing, corrupt or of an unknown format."""


def tokenize(smiles: str) -> list[str]:
    """Split a SMILES string into tokens (bracket atoms, Br/Cl, %nn, single characters).

    Raises SmilesTokenError if the tokens do not reproduce the input exactly
    (e.g. whitespace or a stray ']') or if the string contains a '.' (mixtures).
    """
    if not isinstance(smiles, str) or not smiles:
        raise SmilesTokenError("empty SMILES")
    tokens = _TOKEN_RE.findall(smiles)
    if "".join(tokens) != smiles:
        raise SmilesTokenError(f"cannot tokenize SMILES {smiles!r}")
    if "." in tokens:
        raise SmilesTokenError(f"disconnected SMILES (contains '.') {smiles!r}")
    return tokens


@lru_cache(maxsize=4096)
def _ring_label(token: str) -> int | None:
    if token.isdigit() and len(token) == 1:
        return int(token)
    if token.startswith("%") and token[1:].isdigit():
        return int(token[1:])
    return None


def _label_token(label: int) -> str:
    return str(label) if label < 10 else f"%{label:02d}"


def relabel_rings(tokens: Sequence[str]) -> list[str]:
    """Renumber ring-closure labels so every ring opens with the smallest free label.

    ``C3CC3`` -> ``C1CC1``; ``c1ccc2ccccc2c1`` is unchanged.  Raises
    SmilesTokenError for an unclosed ring label.
    """
    open_map: dict[int, int] = {}
    out: list[str] = []
    for tok in tokens:
        lab = _ring_label(tok)
        if lab is None:
            out.append(tok)
            continue
        if lab in open_map:
            out.append(_label_token(open_map.pop(lab)))
        else:
            used = set(open_map.values())
            new = 1
            while new in used:
                new += 1
            open_map[lab] = new
            out.append(_label_token(new))
    if open_map:
        raise SmilesTokenError("unclosed ring label in " + "".join(tokens))
    return out


@lru_cache(maxsize=4096)
def _token_kind(tok: str) -> str:
    if tok == EOS:
        return "end"
    if tok == "*":
        return "star"
    if tok == "(":
        return "open"
    if tok == ")":
        return "close"
    if tok in _BOND_TOKENS:
        return "bond"
    if _ring_label(tok) is not None:
        return "ring"
    return "atom"


def training_strings(psmiles: Iterable[str], *, n_augment: int = 0, seed: int = 0,
                     kekule: bool = False) -> list[str]:
    """SMILES strings to train on: for each repeat unit, the RDKit SMILES rooted at each
    ``*`` plus ``n_augment`` randomised SMILES (random atom order, random ``*`` root).

    Stereo is dropped.  Units RDKit cannot parse or without exactly two ``*`` are skipped
    (validate upstream).  Deterministic for a given seed.
    """
    from rdkit import Chem  # local import: tokenising/sampling does not need RDKit

    rng = random.Random(seed)
    out: list[str] = []
    for s in psmiles:
        mol = Chem.MolFromSmiles(s)
        if mol is None:
            continue
        Chem.RemoveStereochemistry(mol)
        if kekule:
            Chem.Kekulize(mol, clearAromaticFlags=True)
        stars = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
        if len(stars) != 2:
            continue
        seen: set[str] = set()
        for st in stars:
            seen.add(Chem.MolToSmiles(mol, isomericSmiles=False, rootedAtAtom=st,
                                      kekuleSmiles=kekule))
        n_atoms = mol.GetNumAtoms()
        for _ in range(n_augment):
            perm = list(range(n_atoms))
            rng.shuffle(perm)
            m2 = Chem.RenumberAtoms(mol, perm)
            root = perm.index(stars[rng.randrange(2)])
            seen.add(Chem.MolToSmiles(m2, isomericSmiles=False, rootedAtAtom=root,
                                      canonical=False, kekuleSmiles=kekule))
        out.extend(sorted(seen))
    return out


@dataclass(frozen=True)
class NGramModel:
    """Counts of next tokens for every context of 0..order previous tokens.

    ``table[context] = (next_tokens, counts)``; contexts are tuples of tokens and start
    with ``BOS`` at the beginning of a string.
    """

    order: int
    table: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[int, ...]]]
    meta: dict = field(default_factory=dict)

    @property
    def vocab(self) -> list[str]:
        return sorted({t for nxt, _ in self.table.values() for t in nxt})


def train_ngram(strings: Iterable[str], *, order: int = 8) -> NGramModel:
    """Count next-token frequencies for contexts of length 0..``order``.

    ``strings`` are SMILES (ring labels are renumbered, see ``relabel_rings``); strings that
    cannot be tokenised raise SmilesTokenError.  Cost O(order × total tokens).
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    counts: dict[tuple[str, ...], Counter] = defaultdict(Counter)
    n_strings = 0
    n_tokens = 0
    for s in strings:
        toks = [BOS] + relabel_rings(tokenize(s)) + [EOS]
        n_strings += 1
        n_tokens += len(toks) - 1
        for i in range(1, len(toks)):
            nxt = toks[i]
            for L in range(0, order + 1):
                if L > i:
                    break
                counts[tuple(toks[i - L:i])][nxt] += 1
    if n_strings == 0:
        raise ValueError("no training strings")
    table = {ctx: (tuple(sorted(c)), tuple(c[t] for t in sorted(c))) for ctx, c in counts.items()}
    meta = {"n_strings": n_strings, "n_tokens": n_tokens, "n_contexts": len(table)}
    return NGramModel(order=order, table=table, meta=meta)


def save_model(model: NGramModel, path: str | Path) -> Path:
    """Write the model as gzipped JSON (format ``optipoly-ngram/1``); returns the path."""
    path = Path(path)
    vocab = model.vocab
    index = {t: i for i, t in enumerate(vocab)}
    ctx_vocab = sorted({t for ctx in model.table for t in ctx} | set(vocab))
    cindex = {t: i for i, t in enumerate(ctx_vocab)}
    rows = []
    for ctx in sorted(model.table, key=lambda c: (len(c), [cindex[t] for t in c])):
        nxt, cnt = model.table[ctx]
        rows.append([[cindex[t] for t in ctx], [index[t] for t in nxt], list(cnt)])
    doc = {"format": FORMAT, "order": model.order, "vocab": vocab, "ctx_vocab": ctx_vocab,
           "meta": model.meta, "table": rows}
    data = json.dumps(doc, separators=(",", ":")).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))  # byte-identical files
    return path


def load_model(path: str | Path) -> NGramModel:
    """Read a model written by ``save_model``; raises ModelFileError when it is not one."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") as fh:
            doc = json.loads(fh.read())
    except (OSError, json.JSONDecodeError, EOFError) as exc:
        raise ModelFileError(f"cannot read n-gram model {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not an {FORMAT} model file")
    vocab, cv = doc["vocab"], doc["ctx_vocab"]
    table = {tuple(cv[i] for i in ctx): (tuple(vocab[i] for i in nxt), tuple(cnt))
             for ctx, nxt, cnt in doc["table"]}
    return NGramModel(order=int(doc["order"]), table=table, meta=dict(doc.get("meta", {})))


@dataclass
class SampleStats:
    """Counters from ``sample``: attempts, strings completed, strings abandoned."""

    attempts: int = 0
    completed: int = 0
    abandoned: int = 0
    too_long: int = 0
    dead_end: int = 0


_BRACKET_RE = re.compile(
    r"^\[(\d+)?([A-Z][a-z]?|[a-z][a-z]?)(@*)(?:H(\d?))?([+-]+\d*)?(?::\d+)?\]$")
_BASE_VALENCE = {"C": 4, "N": 3, "O": 2, "S": 6, "P": 5, "F": 1, "Cl": 1, "Br": 1, "I": 1,
                 "B": 3, "Si": 4, "Se": 6, "*": 1}
_AROMATIC_CAPACITY = {"c": 3, "n": 3, "o": 2, "s": 2, "p": 3, "se": 2, "b": 3}
_BOND_ORDER = {"-": 1, "/": 1, "\\": 1, ":": 1, "=": 2, "#": 3, "$": 4}


@lru_cache(maxsize=None)
def atom_capacity(tok: str) -> tuple[int, bool]:
    """(maximum number of bond-order units, aromatic?) for an atom token.

    Organic-subset atoms use their highest normal valence (S 6, P 5); aromatic atoms count
    ring bonds as 1 each (c 3, n 3, o 2, s 2); bracket atoms subtract explicit H and shift
    by the formal charge (N+ 4, O- 1).  A heuristic used to mask impossible tokens while
    sampling — RDKit remains the judge of validity.
    """
    if tok in _AROMATIC_CAPACITY:
        return _AROMATIC_CAPACITY[tok], True
    if tok in _BASE_VALENCE:
        return _BASE_VALENCE[tok], False
    m = _BRACKET_RE.match(tok)
    if not m:
        return 4, False
    elem, h, charge = m.group(2), m.group(4), m.group(5)
    n_h = 0 if h is None else (int(h) if h else 1)
    q = 0
    if charge:
        sign = 1 if charge[0] == "+" else -1
        digits = charge.lstrip("+-")
        q = sign * (int(digits) if digits else len(charge))
    arom = elem[0].islower()
    if arom:
        cap = _AROMATIC_CAPACITY.get(elem, 3)
    else:
        cap = _BASE_VALENCE.get(elem, 4)
    if elem.capitalize() in ("N", "O", "S", "P", "Se"):
        cap += q
    else:
        cap -= abs(q)
    return max(cap - n_h, 0), arom


class _Grammar:
    """Syntax + valence state of a partial SMILES; ``allowed(tok)`` says whether appending
    ``tok`` keeps the string completable, ``push(tok)`` appends it."""

    __slots__ = ("n_star", "depth", "open_rings", "cap", "arom", "used", "nbrs", "stack",
                 "cur", "last", "before_bond", "pending", "max_open_rings")

    def __init__(self, max_open_rings: int) -> None:
        self.max_open_rings = max_open_rings
        self.n_star = 0
        self.depth = 0
        self.open_rings: dict[int, tuple[int, int]] = {}  # label -> (opening atom, order)
        self.cap: list[int] = []      # capacity (bond-order units) per atom
        self.arom: list[bool] = []
        self.used: list[int] = []     # units used per atom
        self.nbrs: list[set[int]] = []
        self.stack: list[int] = []    # branch points
        self.cur = -1                 # current atom
        self.last = "start"           # kind of the last token
        self.before_bond = "start"
        self.pending = 0              # order of a pending bond symbol (0: none)

    def _units(self, i: int, b: int) -> int:
        return 1 if (self.arom[i] and b == 2) else b

    def allowed(self, tok: str, kind: str) -> bool:
        cur, last = self.cur, self.last
        b = self.pending or 1
        rem = self.cap[cur] - self.used[cur] if cur >= 0 else 0
        if kind == "atom" or kind == "star":
            if kind == "star" and (self.n_star >= 2 or b != 1 or (
                    self.n_star == 1 and self.depth == 0 and self.open_rings)):
                return False
            if cur < 0:
                return last == "start"
            acap, aarom = atom_capacity(tok)
            return rem >= self._units(cur, b) and acap >= (1 if (aarom and b == 2) else b)
        if kind == "bond":
            return (last in ("atom", "ring", "close", "open") and cur >= 0
                    and rem >= self._units(cur, _BOND_ORDER[tok]))
        if kind == "ring":
            if not (last in ("atom", "ring")
                    or (last == "bond" and self.before_bond in ("atom", "ring"))):
                return False
            if rem < self._units(cur, b):
                return False
            lab = _ring_label(tok)
            if lab in self.open_rings:
                j, b0 = self.open_rings[lab]
                if j == cur or j in self.nbrs[cur]:
                    return False
                return not (b > b0 and self.cap[j] - self.used[j]
                            < self._units(j, b) - self._units(j, b0))
            free = 1
            while free in self.open_rings:
                free += 1
            return lab == free and len(self.open_rings) < self.max_open_rings
        if kind == "open":
            return last in ("atom", "ring", "close") and rem >= 1
        if kind == "close":
            return self.depth > 0 and last in ("atom", "ring", "close")
        # end
        return (self.n_star == 2 and not self.depth and not self.open_rings
                and last in ("atom", "ring", "close"))

    def push(self, tok: str, kind: str) -> None:
        cur = self.cur
        b = self.pending or 1
        if kind == "atom" or kind == "star":
            acap, aarom = atom_capacity(tok)
            i = len(self.cap)
            self.cap.append(acap)
            self.arom.append(aarom)
            self.used.append(0)
            self.nbrs.append(set())
            if cur >= 0:
                self.used[cur] += self._units(cur, b)
                self.used[i] += self._units(i, b)
                self.nbrs[cur].add(i)
                self.nbrs[i].add(cur)
            if kind == "star":
                self.n_star += 1
            self.cur = i
            self.pending = 0
            kind = "atom"
        elif kind == "bond":
            self.pending = _BOND_ORDER[tok]
            self.before_bond = self.last
        elif kind == "ring":
            lab = _ring_label(tok)
            if lab in self.open_rings:
                j, b0 = self.open_rings.pop(lab)
                self.used[cur] += self._units(cur, b)
                self.used[j] += max(self._units(j, b) - self._units(j, b0), 0)
                self.nbrs[cur].add(j)
                self.nbrs[j].add(cur)
            else:
                self.open_rings[lab] = (cur, b)
                self.used[cur] += self._units(cur, b)
            self.pending = 0
        elif kind == "open":
            self.depth += 1
            self.stack.append(cur)
        elif kind == "close":
            self.depth -= 1
            self.cur = self.stack.pop()
        self.last = kind


def _sample_one(model: NGramModel, rng: random.Random, inv_t: float, backoff: float,
                max_tokens: int, max_open_rings: int, max_atoms: int | None = None,
                max_backtracks: int = 20) -> tuple[str | None, str]:
    """One left-to-right draw with grammar + valence masking; (string or None, reason).

    At a dead end (no allowed token in any context) the last token is withdrawn and
    banned at that position, and the state rebuilt by replaying the prefix; after
    ``max_backtracks`` withdrawals the draw is abandoned.
    """
    table = model.table
    order = model.order
    toks_out: list[str] = []
    g = _Grammar(max_open_rings)
    banned: dict[int, set[str]] = {}
    backtracks = 0
    while len(toks_out) < max_tokens:
        hist = [BOS] + toks_out[-order:] if len(toks_out) < order else toks_out[-order:]
        L = min(order, len(hist))
        while L > 0 and backoff > 0.0 and rng.random() < backoff:
            L -= 1
        ban = banned.get(len(toks_out))
        chosen = None
        while L >= 0:
            entry = table.get(tuple(hist[len(hist) - L:]) if L else ())
            L -= 1
            if entry is None:
                continue
            cands: list[str] = []
            weights: list[float] = []
            for tok, c in zip(*entry):
                if ban is not None and tok in ban:
                    continue
                if g.allowed(tok, _token_kind(tok)):
                    cands.append(tok)
                    weights.append(c ** inv_t if inv_t != 1.0 else float(c))
            if not cands:
                continue
            r = rng.random() * sum(weights)
            acc = 0.0
            chosen = cands[-1]
            for tok, w in zip(cands, weights):
                acc += w
                if r < acc:
                    chosen = tok
                    break
            break
        if chosen is None:
            if not toks_out or backtracks >= max_backtracks:
                return None, "dead_end"
            backtracks += 1
            pos = len(toks_out) - 1
            for k in [k for k in banned if k > pos]:
                del banned[k]
            banned.setdefault(pos, set()).add(toks_out.pop())
            g = _Grammar(max_open_rings)
            for t in toks_out:
                g.push(t, _token_kind(t))
            continue
        if chosen == EOS:
            return "".join(toks_out), ""
        g.push(chosen, _token_kind(chosen))
        toks_out.append(chosen)
        if max_atoms is not None and len(g.cap) > max_atoms:
            return None, "too_long"
    return None, "too_long"


def sample(model: NGramModel, n: int, *, seed: int = 0, temperature: float = 1.0,
           backoff: float = 0.0, max_tokens: int = 200, max_open_rings: int = 4,
           max_atoms: int | None = None,
           rng: random.Random | None = None, stats: SampleStats | None = None) -> list[str]:
    """Draw ``n`` attempts from the model; returns the completed SMILES strings.

    Attempts that dead-end or exceed ``max_tokens`` are abandoned (counted in ``stats``),
    so ``len(result) <= n``; ``max_atoms`` abandons a draw as soon as it has more atoms
    (``*`` included).  ``temperature`` > 0 (1 = the trained distribution; higher
    flattens it).  ``backoff`` in [0, 1) is the per-step probability of dropping one
    context order.  Pass ``rng`` to continue a random stream across calls (then ``seed``
    is ignored).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= backoff < 1.0:
        raise ValueError(f"backoff must be in [0, 1), got {backoff}")
    rng = rng if rng is not None else random.Random(seed)
    inv_t = 1.0 / temperature
    out: list[str] = []
    for _ in range(n):
        s, why = _sample_one(model, rng, inv_t, backoff, max_tokens, max_open_rings, max_atoms)
        if stats is not None:
            stats.attempts += 1
            if s is None:
                stats.abandoned += 1
                setattr(stats, why, getattr(stats, why) + 1)
            else:
                stats.completed += 1
        if s is not None:
            out.append(s)
    return out
