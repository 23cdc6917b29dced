"""Measured or literature n_D / ν_D values as observations (cf. BayBE's ``add_measurements``).

A measurements table is a CSV with one polymer per row::

    psmiles,n_D,abbe_number,name,source
    *CC(*)c1ccccc1,1.592,31,PS,Kasarova 2007
    *CCS(=O)(=O)CCSC1CCC(S*)CC1,1.6107,50.6,,Ando 2015

Columns (header names are case-insensitive): ``psmiles`` (or ``smiles``), ``n_D`` (or ``nD``,
``refractive_index``), ``abbe_number`` (or ``nu_D``, ``ν_D``, ``abbe``, ``vd``) and optionally
``name`` and ``source`` (the citation of that row; otherwise the ``source`` given for the
whole file is used, and one of the two is required).

Every row is checked before anything is stored (:func:`check_measurements`): the polymer
SMILES by :func:`core.chem.polymer.validate_psmiles` (the central validator), n_D a number in
[1.0, 3.0], ν_D a number in [5, 150], no polymer twice in the file and none that already has
an experimental observation in the campaign.  A file with any bad row changes nothing:
:class:`MeasurementImportError` lists every bad row (``problems``) with its line number.

Stored observations (:func:`import_measurements`) have ``source="experimental"``,
``result = {"n_D", "abbe_number", "origin": "experimental", "source"}`` and a provenance with
the source text, file name, line, who imported them and when.  Values are raw measurements;
the optimiser treats them like any other observation of that polymer.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from core.errors import InputError
from core.store import Store, StoreError, utcnow

__all__ = ["ORIGIN_EXPERIMENTAL", "N_D_RANGE", "ABBE_RANGE", "MAX_MEASUREMENT_ROWS",
           "MAX_MEASUREMENT_BYTES", "RowProblem", "MeasurementImportError",
           "parse_measurements_csv", "load_measurements_csv", "check_measurements",
           "import_measurements"]

#: ``observations.source`` (and ``result.origin``) of imported measurements
ORIGIN_EXPERIMENTAL = "experimental"
#: plausible range of a polymer's refractive index n_D (inclusive)
N_D_RANGE = (1.0, 3.0)
#: plausible range of a polymer's Abbe number ν_D (inclusive)
ABBE_RANGE = (5.0, 150.0)
#: at most this many data rows / bytes per file
MAX_MEASUREMENT_ROWS = 5000
MAX_MEASUREMENT_BYTES = 5 * 1024 * 1024

_ALIASES: dict[str, tuple[str, ...]] = {
    "psmiles": ("psmiles", "smiles", "polymer_smiles", "polymer smiles"),
    "n_D": ("n_d", "nd", "n", "refractive_index", "refractive index"),
    "abbe_number": ("abbe_number", "abbe number", "abbe", "nu_d", "ν_d", "v_d", "vd", "nud"),
    "name": ("name",),
    "source": ("source", "reference", "citation"),
}
_REQUIRED = ("psmiles", "n_D", "abbe_number")


@dataclass(frozen=True)
class RowProblem:
    """One unusable row: its line in the file (header = line 1), a short echo of the polymer
    SMILES and what is wrong with it."""

    line: int
    input: str
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


class MeasurementImportError(InputError):
    """A measurements file is unusable; nothing was imported.

    ``problems`` lists the bad rows (empty when the file as a whole is wrong, e.g. a missing
    column); the message names them, at most ``shown`` of them.
    """

    def __init__(self, message: str, problems: Sequence[RowProblem] = (), *,
                 shown: int = 20) -> None:
        self.problems = list(problems)
        lines = [message]
        lines += [f"  {p}" for p in self.problems[:shown]]
        if len(self.problems) > shown:
            lines.append(f"  … and {len(self.problems) - shown} more")
        super().__init__("\n".join(lines))
        self.summary = message


def _echo(text: Any, limit: int = 80) -> str:
    """A value as it may be shown in a message: plain printable ASCII up to ``limit``
    characters as is, anything else via :func:`core.chem.polymer.preview` (escaped, cut)."""
    from core.chem.polymer import preview  # noqa: PLC0415

    s = "" if text is None else str(text)
    return s if s.isascii() and s.isprintable() and len(s) <= limit else preview(s, limit)


def parse_measurements_csv(text: str, *, file_name: str = "measurements") -> list[dict]:
    """Rows of a measurements CSV as dicts ``{line, psmiles, n_D, abbe_number, name,
    source}`` (raw, stripped strings; ``line`` = line number in the file, header = 1).

    Raises :class:`MeasurementImportError` when the table as a whole is unusable: empty, a
    required column missing, more than :data:`MAX_MEASUREMENT_ROWS` rows.  Blank lines and
    lines starting with ``#`` are skipped.  Values are not checked here (see
    :func:`check_measurements`).
    """
    text = text.lstrip("\ufeff")  # byte-order mark of spreadsheet exports
    lines = [ln for ln in io.StringIO(text, newline="")]
    body = "".join(ln if ln.strip() and not ln.lstrip().startswith("#") else "\n"
                   for ln in lines)
    reader = csv.reader(io.StringIO(body, newline=""))
    header: list[str] | None = None
    rows: list[dict] = []
    try:
        for rec in reader:
            if not any(c.strip() for c in rec):
                continue
            if header is None:
                header = [c.strip() for c in rec]
                cols = _column_map(header, file_name)
                continue
            if len(rows) >= MAX_MEASUREMENT_ROWS:
                raise MeasurementImportError(
                    f"{file_name}: more than {MAX_MEASUREMENT_ROWS:,} rows; split the file")
            row: dict[str, Any] = {"line": reader.line_num}
            for key in _ALIASES:
                i = cols.get(key)
                row[key] = rec[i].strip() if i is not None and i < len(rec) else ""
            row["_extra"] = len(rec) > len(header)
            rows.append(row)
    except csv.Error as exc:
        raise MeasurementImportError(f"{file_name}: not a readable CSV table "
                                     f"(line {reader.line_num}: {exc})") from None
    if header is None:
        raise MeasurementImportError(f"{file_name}: empty file (expected a header row "
                                     "psmiles,n_D,abbe_number[,name,source])")
    if not rows:
        raise MeasurementImportError(f"{file_name}: no data rows below the header")
    return rows


def _column_map(header: list[str], file_name: str) -> dict[str, int]:
    """Index of each known column in ``header`` (first match of its aliases)."""
    low = [h.strip().lower() for h in header]
    out: dict[str, int] = {}
    for key, names in _ALIASES.items():
        for i, h in enumerate(low):
            if h in names:
                out[key] = i
                break
    missing = [k for k in _REQUIRED if k not in out]
    if missing:
        want = "; ".join(f"{k} (or {', '.join(_ALIASES[k][1:4])})" for k in missing)
        raise MeasurementImportError(
            f"{file_name}: missing column(s) {want}; the header is "
            f"{_echo(','.join(header), 120)}")
    return out


def load_measurements_csv(path: str | Path) -> list[dict]:
    """:func:`parse_measurements_csv` of a file (UTF-8, at most
    :data:`MAX_MEASUREMENT_BYTES`); a missing or unreadable file raises
    :class:`MeasurementImportError`."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if not p.is_file():
            raise MeasurementImportError(f"{p} is not a file")
        if size > MAX_MEASUREMENT_BYTES:
            raise MeasurementImportError(f"{p}: {size // 1024:,} KiB; the limit is "
                                         f"{MAX_MEASUREMENT_BYTES // 1024:,} KiB")
        text = p.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise MeasurementImportError(f"measurements file {p} not found") from None
    except UnicodeDecodeError as exc:
        raise MeasurementImportError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise MeasurementImportError(f"{p}: cannot be read: {exc.strerror or exc}") from None
    return parse_measurements_csv(text, file_name=p.name)


def _number(raw: str, label: str, lo: float, hi: float) -> tuple[float | None, str | None]:
    """(value, None) for a finite number in [lo, hi], else (None, problem)."""
    if raw is None or str(raw).strip() == "":
        return None, f"no {label} value"
    try:
        v = float(str(raw).strip())
    except ValueError:
        return None, f"{label} is not a number: {_echo(raw, 40)}"
    if not math.isfinite(v):
        return None, f"{label} is not a finite number: {_echo(raw, 40)}"
    if not lo <= v <= hi:
        return None, f"{label} = {v:g} is implausible (expected {lo:g} to {hi:g})"
    return v, None


def check_measurements(rows: Iterable[Mapping[str, Any]], *, source: str | None = None,
                       existing: Mapping[str, str] | None = None
                       ) -> tuple[list[dict], list[RowProblem]]:
    """Validate measurement rows (from :func:`parse_measurements_csv`, or dicts with the same
    keys; ``line`` defaults to the row's position + 2).

    Returns (good records, problems).  A good record has ``line, psmiles`` (stripped input),
    ``key`` (:func:`core.chem.polymer.polymer_key`), ``name``, ``source``, ``n_D`` and
    ``abbe_number`` (floats).  ``source`` is the citation used for rows without their own;
    ``existing`` maps polymer keys that already have an experimental observation to a
    description (those rows are duplicates).  Every problem of a row is named, joined by
    "; ".
    """
    from core.chem.polymer import polymer_key, validate_psmiles  # noqa: PLC0415

    existing = dict(existing or {})
    default_source = (source or "").strip()
    seen: dict[str, int] = {}
    good: list[dict] = []
    problems: list[RowProblem] = []
    for i, row in enumerate(rows):
        line = int(row.get("line") or i + 2)
        raw_ps = "" if row.get("psmiles") is None else str(row.get("psmiles"))
        why: list[str] = []
        key = None
        ps = raw_ps.strip()
        if not ps:
            why.append("no polymer SMILES")
        else:
            try:
                validate_psmiles(ps)
                key = polymer_key(ps)
            except ValueError as exc:
                why.append(f"invalid polymer SMILES: {exc}")
        n, err_n = _number(row.get("n_D"), "n_D", *N_D_RANGE)
        a, err_a = _number(row.get("abbe_number"), "ν_D", *ABBE_RANGE)
        why += [e for e in (err_n, err_a) if e]
        src = str(row.get("source") or "").strip() or default_source
        if not src:
            why.append("no source (give a source for the file or fill the 'source' column)")
        if row.get("_extra"):
            why.append("more cells than header columns (a comma inside an unquoted value?)")
        if key is not None:
            if key in seen:
                why.append(f"duplicate: the same polymer as line {seen[key]}")
            elif key in existing:
                why.append(f"duplicate: already measured in this campaign ({existing[key]})")
            else:
                seen[key] = line
        if why:
            problems.append(RowProblem(line, _echo(raw_ps, 80), "; ".join(why)))
            continue
        name = str(row.get("name") or "").strip()[:120] or None
        good.append({"line": line, "psmiles": ps, "key": key, "name": name,
                     "source": src[:500], "n_D": n, "abbe_number": a})
    return good, problems


def _existing_experimental(store: Store, campaign: Any) -> dict[str, str]:
    """Keys of the campaign's experimental observations -> 'observation <id> (<name>)'."""
    from core.ui.figures import observation_origin  # noqa: PLC0415

    obs = store.observations(campaign)
    out: dict[str, str] = {}
    for r in obs.to_dict("records"):
        if observation_origin(r.get("source"), r.get("provenance"),
                              r.get("result")).kind == ORIGIN_EXPERIMENTAL:
            out.setdefault(str(r["key"]), f"observation {r['id']}"
                           + (f", {_echo(r['name'], 40)}" if r.get("name") else ""))
    return out


def import_measurements(store: Store, campaign: Any, rows: Iterable[Mapping[str, Any]], *,
                        source: str | None = None, file_name: str | None = None,
                        actor: str = "cli", cycle: int | None = None) -> list[int]:
    """Check every row (:func:`check_measurements`) and store them all as experimental
    observations, or raise :class:`MeasurementImportError` listing the bad rows and store
    nothing.  Returns the new observation ids.

    ``source`` is the citation of rows without their own (e.g. ``"Ando 2015"``);
    ``file_name`` is recorded in the provenance.  ``cycle`` defaults to the campaign's latest
    cycle (0 for a new campaign): the values are known from then on, so earlier cycles'
    history is unchanged.  The campaign must optimise n_D and abbe_number.
    """
    from core.campaign.cycle import record_cycle_metrics  # noqa: PLC0415

    camp = store.get_campaign(campaign)
    objs = list(camp["config"]["objectives"])
    label = file_name or "measurements"
    if set(objs) != {"n_D", "abbe_number"}:
        raise MeasurementImportError(
            f"{label}: campaign {camp['name']!r} optimises {objs}; measurements give n_D "
            "and abbe_number")
    rows = list(rows)
    if not rows:
        raise MeasurementImportError(f"{label}: no measurement rows")
    good, problems = check_measurements(rows, source=source,
                                        existing=_existing_experimental(store, camp["id"]))
    if problems:
        raise MeasurementImportError(
            f"{label}: {len(problems)} of {len(rows)} row(s) unusable; nothing was imported",
            problems)
    if cycle is None:
        cyc = store.cycles(camp["id"])
        cycle = int(cyc["number"].max()) if len(cyc) else 0
    now = utcnow()
    ids: list[int] = []
    with store.transaction():
        for g in good:
            result = {"n_D": g["n_D"], "abbe_number": g["abbe_number"],
                      "origin": ORIGIN_EXPERIMENTAL, "source": g["source"]}
            prov = {"origin": ORIGIN_EXPERIMENTAL, "source": g["source"],
                    "file": file_name, "line": g["line"], "imported_by": actor,
                    "imported_at": now}
            ids.append(store.add_observation(
                camp["id"], g["psmiles"], {"n_D": g["n_D"], "abbe_number": g["abbe_number"]},
                source=ORIGIN_EXPERIMENTAL, key=g["key"], name=g["name"], cycle=int(cycle),
                result=result, provenance=prov, actor=actor))
        store.log(camp["id"], "import_measurements", actor=actor,
                  details={"file": file_name, "n": len(ids), "cycle": int(cycle),
                           "sources": sorted({g["source"] for g in good})[:20]})
        if len(store.cycles(camp["id"])):
            record_cycle_metrics(store, camp["id"], int(cycle))
    return ids
