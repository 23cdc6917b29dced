"""Page logic of the dashboard as plain functions (no Streamlit): KPIs, per-cycle history,
table building, change signatures. Each page calls these and only draws the result, so the
logic is unit-tested without a browser (``AppTest`` does not run fragments).

Units: n_D dimensionless refractive index at 589.29 nm; ``abbe_number`` ν_D dimensionless;
times in seconds (UNIX epoch); hypervolume in (ν_D × n_D) units above the reference point.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.config import BatchState, CalcState, DEFAULT_REFERENCE_POINT
from core.optimize.acquisition import hypervolume_2d, pareto_mask

__all__ = [
    "beyond_mask", "front_mask", "annotate_observations", "same_fidelity_rows", "compute_kpis", "cycle_history",
    "data_signature", "frame_digest", "format_elapsed", "heartbeat_state", "with_structure_images",
    "limit_line_points", "filter_pool", "parse_smiles_lines", "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_ROWS", "reference_point_xy", "reference_point_from_config", "log_tail",
    "escape_markdown", "markdown_code", "parse_upload", "SMILES_COLUMNS",
]

#: uploads of candidate lists: at most this many bytes / rows are read
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_UPLOAD_ROWS = 1000
#: header names of the polymer SMILES column of an uploaded CSV, in order of preference: the
#: ones ``python -m core.pool import`` accepts (core.pool.read_polymer_list)
SMILES_COLUMNS: tuple[str, ...] = ("psmiles", "smiles", "polymer_smiles", "p_smiles")


def limit_line_points(line: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    """(p1, p2) as ((ν_D, n_D), (ν_D, n_D)) from a LimitLine-like object or a dict."""
    if isinstance(line, Mapping):
        p1, p2 = line["p1"], line["p2"]
    else:
        p1, p2 = line.p1, line.p2
    return (float(p1[0]), float(p1[1])), (float(p2[0]), float(p2[1]))


def beyond_mask(abbe: Sequence[float] | np.ndarray, n: Sequence[float] | np.ndarray,
                line: Any) -> np.ndarray:
    """True where the point (ν_D, n_D) lies strictly above the straight limit line.

    Uses ``line.is_beyond(n, abbe)`` when the object provides it (core.chem.optics.LimitLine),
    otherwise the line through its two points. NaN values give False.
    """
    x = np.asarray(abbe, dtype=float)
    y = np.asarray(n, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if hasattr(line, "is_beyond"):
        out = np.zeros(x.shape, dtype=bool)
        if ok.any():
            out[ok] = np.asarray(line.is_beyond(y[ok], x[ok]), dtype=bool)
        return out
    (x1, y1), (x2, y2) = limit_line_points(line)
    if x1 == x2:
        raise ValueError("limit line points must have different Abbe numbers")
    y_line = y1 + (y2 - y1) / (x2 - x1) * (x - x1)
    return ok & (y > y_line)


def front_mask(abbe: Sequence[float] | np.ndarray, n: Sequence[float] | np.ndarray) -> np.ndarray:
    """Non-dominated points (both objectives maximised); NaN rows are never on the front."""
    x = np.asarray(abbe, dtype=float)
    y = np.asarray(n, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    out = np.zeros(x.shape, dtype=bool)
    if ok.any():
        out[ok] = pareto_mask(np.column_stack([x[ok], y[ok]]))
    return out


def annotate_observations(obs: pd.DataFrame, line: Any | None,
                          fidelity: Any | None = None) -> pd.DataFrame:
    """Copy of ``obs`` (columns ``n_D, abbe_number``) with boolean ``same_fidelity``,
    ``on_front`` and ``beyond`` and the text column ``fidelity``.

    ``fidelity`` (a :class:`core.campaign.fidelity.Fidelity`, the campaign's): rows of another
    fidelity (another preset / force field / protocol, smoke results, experimental values) get
    ``same_fidelity`` False, are never on the front and never counted as beyond the line
    (core.campaign.fidelity rules).  Without it every row counts (``fidelity`` column empty).
    """
    from core.campaign.fidelity import observation_fidelities  # noqa: PLC0415

    o = obs.copy()
    if len(o) == 0:
        for c in ("same_fidelity", "on_front", "beyond"):
            o[c] = pd.Series(dtype=bool)
        o["fidelity"] = pd.Series(dtype=str)
        return o
    if fidelity is None:
        same = np.ones(len(o), dtype=bool)
        o["fidelity"] = ""
    else:
        fids = observation_fidelities(o)
        same = np.array([f.matches(fidelity) for f in fids], dtype=bool)
        o["fidelity"] = [f.label for f in fids]
    o["same_fidelity"] = same
    x, y = o["abbe_number"].to_numpy(float), o["n_D"].to_numpy(float)
    front = np.zeros(len(o), dtype=bool)
    front[same] = front_mask(x[same], y[same])
    o["on_front"] = front
    o["beyond"] = (beyond_mask(x, y, line) & same if line is not None
                   else np.zeros(len(o), dtype=bool))
    return o


def same_fidelity_rows(obs: pd.DataFrame | None) -> pd.DataFrame | None:
    """The rows of an :func:`annotate_observations` frame that count for the campaign (all
    rows of a frame without the ``same_fidelity`` column)."""
    if obs is None or "same_fidelity" not in obs or len(obs) == 0:
        return obs
    return obs[obs["same_fidelity"].astype(bool)]


def reference_point_from_config(config: Mapping[str, Any]) -> tuple[float, float]:
    """(ν_D, n_D) reference point from a campaign config dict (``objectives`` and
    ``reference_point`` listed in the same order, e.g. ["n_D", "abbe_number"] / [1.30, 10])."""
    objs = list(config.get("objectives", ["n_D", "abbe_number"]))
    ref = list(config.get("reference_point", DEFAULT_REFERENCE_POINT))
    vals = dict(zip(objs, ref))
    if "n_D" not in vals or "abbe_number" not in vals:
        raise ValueError(f"campaign objectives {objs} do not include n_D and abbe_number")
    return float(vals["abbe_number"]), float(vals["n_D"])


def reference_point_xy(ref: Any) -> tuple[float, float]:
    """Reference point as (ν_D, n_D) from a dict ({'abbe_number','n_D'} or {'abbe','n'}) or a
    2-sequence already ordered (ν_D, n_D)."""
    if isinstance(ref, Mapping):
        for kx, ky in (("abbe_number", "n_D"), ("abbe", "n"), ("nu_D", "n_D")):
            if kx in ref and ky in ref:
                return float(ref[kx]), float(ref[ky])
        raise ValueError(f"reference point dict needs abbe_number and n_D keys, got {list(ref)}")
    r = list(ref)
    if len(r) != 2:
        raise ValueError("reference point must have two values (ν_D, n_D)")
    return float(r[0]), float(r[1])


def cycle_history(obs: pd.DataFrame, ref_xy: tuple[float, float], line: Any | None
                  ) -> pd.DataFrame:
    """Cumulative state after each cycle: ``cycle, n_evaluated, n_beyond, hypervolume``.

    ``hypervolume`` is the 2-D hypervolume of all observations up to and including that cycle
    in (ν_D, n_D) space above ``ref_xy`` = (ν_ref, n_ref); ``n_beyond`` counts observations
    beyond the limit line up to that cycle.  Only the campaign's own fidelity counts (rows
    with ``same_fidelity`` False from :func:`annotate_observations` are left out).
    """
    cols = ["cycle", "n_evaluated", "n_beyond", "hypervolume"]
    obs = same_fidelity_rows(obs)
    if obs is None or len(obs) == 0:
        return pd.DataFrame(columns=cols)
    o = obs.dropna(subset=["n_D", "abbe_number"])
    cyc = pd.to_numeric(o["cycle"], errors="coerce").fillna(0).astype(int).to_numpy()
    x = o["abbe_number"].to_numpy(float)
    y = o["n_D"].to_numpy(float)
    bey = beyond_mask(x, y, line) if line is not None else np.zeros(len(o), dtype=bool)
    rows = []
    for c in sorted(set(cyc.tolist())):
        m = cyc <= c
        hv = hypervolume_2d(np.column_stack([x[m], y[m]]), np.asarray(ref_xy, float))
        rows.append({"cycle": c, "n_evaluated": int(m.sum()), "n_beyond": int(bey[m].sum()),
                     "hypervolume": hv})
    return pd.DataFrame(rows, columns=cols)


def compute_kpis(obs: pd.DataFrame, calc_status: Iterable[str], ref_xy: tuple[float, float],
                 line: Any | None, current_cycle: int | None = None) -> dict[str, Any]:
    """Headline numbers of the Overview page (over the campaign's own fidelity: rows with
    ``same_fidelity`` False from :func:`annotate_observations` are left out).

    Returns ``cycle`` (``current_cycle`` or the largest observed cycle), ``evaluated``
    (observations with finite n_D and ν_D), ``running`` (calculations in status running /
    submitted / queued), ``failed``, ``beyond`` (observations above the limit line),
    ``beyond_frac`` and ``hypervolume`` (ν_D×n_D units above ``ref_xy``).
    """
    statuses = [str(s).lower() for s in calc_status]
    running = sum(s in (CalcState.RUNNING, "submitted", CalcState.QUEUED, "pending",
                        BatchState.APPROVED) for s in statuses)
    failed = sum(s == CalcState.FAILED for s in statuses)
    obs = same_fidelity_rows(obs)
    if obs is None or len(obs) == 0:
        return {"cycle": int(current_cycle or 0), "evaluated": 0, "running": running,  # not vocabulary: key
                "failed": failed, "beyond": 0, "beyond_frac": 0.0, "hypervolume": 0.0}  # not vocabulary: key
    o = obs.dropna(subset=["n_D", "abbe_number"])
    x = o["abbe_number"].to_numpy(float)
    y = o["n_D"].to_numpy(float)
    bey = int(beyond_mask(x, y, line).sum()) if line is not None else 0
    hv = hypervolume_2d(np.column_stack([x, y]), np.asarray(ref_xy, float)) if len(o) else 0.0
    cyc = (int(current_cycle) if current_cycle is not None else
           int(pd.to_numeric(o["cycle"], errors="coerce").fillna(0).max()) if "cycle" in o else 0)
    return {"cycle": cyc, "evaluated": int(len(o)), "running": running, "failed": failed,  # not vocabulary: keys
            "beyond": bey, "beyond_frac": bey / len(o) if len(o) else 0.0, "hypervolume": hv}


def data_signature(*parts: Any) -> str:
    """Short stable hash of JSON-able parts (e.g. counts, max ids, status tallies) used to
    decide whether the live fragment must rebuild its figure."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:16]


def frame_digest(df: pd.DataFrame | None, columns: Sequence[str] | None = None) -> str:
    """Short hash of the values (and order) of ``columns`` of ``df`` (those present; all when
    None): equal for equal contents, so a result built from the frame can be shared by every
    session showing the same data. Values that are not scalars (dicts, lists) count by their
    text. '' for None; the column names are part of the hash."""
    if df is None:
        return ""
    cols = [c for c in (df.columns if columns is None else columns) if c in df]
    h = hashlib.sha1(json.dumps([str(c) for c in cols]).encode())
    h.update(str(len(df)).encode())
    for c in cols:
        col = df[c]
        if col.dtype == object:
            col = col.map(lambda v: v if isinstance(v, (str, int, float, bool)) or v is None
                          else json.dumps(v, sort_keys=True, default=str))
            col = col.astype(str)
        h.update(pd.util.hash_pandas_object(col, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def format_elapsed(seconds: float | None) -> str:
    """'—' for None/NaN, else '12 s', '3 min 04 s', '2 h 05 min'."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "—"
    s = max(0, int(round(float(seconds))))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def heartbeat_state(last_beat: float | None, now: float | None = None,
                    stale_after_s: float = 30.0) -> tuple[str, str]:
    """('alive'|'stale'|'never', human text) for the runner heartbeat timestamp (epoch s)."""
    if last_beat is None:
        return "never", "runner has not reported yet"
    now = time.time() if now is None else now
    age = max(0.0, now - float(last_beat))
    if age <= stale_after_s:
        return "alive", f"runner alive (heartbeat {format_elapsed(age)} ago)"
    return "stale", f"runner silent for {format_elapsed(age)}"


def with_structure_images(df: pd.DataFrame, smiles_col: str = "psmiles",
                          image_col: str = "structure", width: int = 160, height: int = 110
                          ) -> pd.DataFrame:
    """Copy of ``df`` with a column of SVG data URIs (for ``ImageColumn``) as first column."""
    from core.chem.structure_images import polymer_data_uri

    out = df.copy()
    if len(out) == 0:
        out.insert(0, image_col, pd.Series(dtype=str))
        return out
    out.insert(0, image_col, [polymer_data_uri(str(s), width, height) for s in out[smiles_col]])
    return out


def filter_pool(pool: pd.DataFrame, *, text: str = "", groups: Sequence[str] = (),
                matches: pd.DataFrame | None = None,
                n_min: float | None = None, abbe_min: float | None = None,
                require_beyond: bool = False, line: Any | None = None,
                sort_by: str | None = None, limit: int = 500) -> pd.DataFrame:
    """Rows of ``pool`` (columns ``id, psmiles`` and optionally ``n_pred, abbe_pred, ehvi``)
    passing every filter: case-sensitive substring ``text`` of the id or polymer SMILES,
    containing all substructure ``groups`` (columns of ``matches``, aligned with ``pool``),
    predicted n_D ≥ ``n_min``, ν_D ≥ ``abbe_min``, predicted point beyond ``line``. Sorted by
    ``sort_by`` descending if given; at most ``limit`` rows."""
    keep = np.ones(len(pool), dtype=bool)
    t = (text or "").strip()
    if t:
        keep &= (pool["psmiles"].astype(str).str.contains(t, regex=False).to_numpy()
                 | pool["id"].astype(str).str.contains(t, regex=False).to_numpy())
    if groups:
        if matches is None:
            raise ValueError("filtering by substructure needs the match matrix")
        for g in groups:
            keep &= np.asarray(matches[g], dtype=bool)
    if n_min is not None and "n_pred" in pool:
        keep &= pool["n_pred"].to_numpy(float) >= n_min
    if abbe_min is not None and "abbe_pred" in pool:
        keep &= pool["abbe_pred"].to_numpy(float) >= abbe_min
    if require_beyond and line is not None and "n_pred" in pool:
        keep &= beyond_mask(pool["abbe_pred"], pool["n_pred"], line)
    out = pool[keep]
    if sort_by and sort_by in out:
        out = out.sort_values(sort_by, ascending=False)
    return out.head(limit)


def parse_smiles_lines(text: str, max_rows: int = MAX_UPLOAD_ROWS) -> list[str]:
    """Non-empty, non-comment lines of pasted text (first token of each, up to a space, tab
    or comma), at most ``max_rows``; raises ValueError when there are more.

    Only LF/CR end a line and only ASCII blanks separate: a no-break space or U+2028 stays in
    the token, so :func:`core.chem.polymer.check_psmiles_characters` names it instead of the
    SMILES being cut silently."""
    out = []
    for line in re.split(r"\r\n|\r|\n", text or ""):
        s = line.strip(" \t")
        if not s or s.startswith("#"):
            continue
        out.append(re.split(r"[ \t,]", s, maxsplit=1)[0])
    if len(out) > max_rows:
        raise ValueError(f"{len(out)} rows given; the limit is {max_rows}")
    return out


def parse_upload(text: str, *, csv_file: bool, label: str = "the file",
                 max_rows: int = MAX_UPLOAD_ROWS) -> list[dict[str, str | None]]:
    """Rows ``{"psmiles", "name"}`` of an uploaded candidate file, read as the CLI reads one.

    A CSV (``csv_file``; tab-separated when its header has a tab) needs a polymer SMILES
    column named as in :data:`SMILES_COLUMNS` (case-insensitive; an optional ``name`` column,
    cut to 80 characters).  A single-column file whose first line is no such header, and any
    non-CSV file, is a plain list, one polymer SMILES per line (:func:`parse_smiles_lines`).
    Raises ValueError with a message for the user, naming ``label``, when the file is empty,
    has a header but no rows, has no SMILES column, is not valid CSV or has more than
    ``max_rows`` rows.
    """
    import io

    body = (text or "").lstrip("\ufeff")
    empty = (f"{label} is empty: nothing to add. Upload a CSV with a psmiles (or smiles) "
             "column, or a list with one polymer SMILES per line.")
    if not body.strip(" \t\r\n"):
        raise ValueError(empty)
    first = next(ln for ln in re.split(r"\r\n|\r|\n", body) if ln.strip(" \t"))
    sep = "\t" if "\t" in first else ","
    header = [h.strip().lower() for h in first.split(sep)]
    if not csv_file or (len(header) == 1 and header[0] not in SMILES_COLUMNS):
        rows = [{"psmiles": s, "name": None} for s in parse_smiles_lines(body, max_rows)]
        if not rows:
            raise ValueError(f"{label} lists no polymer SMILES (only blank or # lines): "
                             "nothing to add.")
        return rows
    try:
        df = pd.read_csv(io.StringIO(body), sep=sep, nrows=max_rows + 1, dtype=str,
                         keep_default_na=False, skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        raise ValueError(empty) from None
    except pd.errors.ParserError as err:
        raise ValueError(f"{label} is not valid CSV: {err}") from None
    cols = {str(c).strip().lower(): c for c in df.columns}
    col = next((cols[c] for c in SMILES_COLUMNS if c in cols), None)
    if col is None:
        raise ValueError(f"{label} has no polymer SMILES column: its header needs one of "
                         f"{', '.join(SMILES_COLUMNS)} (found: "
                         f"{', '.join(str(c) for c in df.columns)})")
    if len(df) > max_rows:
        raise ValueError(f"{label} has more than {max_rows} rows; the limit is {max_rows}")
    name_col = cols.get("name")
    rows = []
    for _, r in df.iterrows():
        smi = str(r[col]).strip()
        name = str(r[name_col]).strip()[:80] if name_col is not None else ""
        if smi or name:
            rows.append({"psmiles": smi, "name": name or None})
    if not rows:
        raise ValueError(f"{label} has a header ({', '.join(str(c) for c in df.columns)}) "
                         "but no rows: nothing to add.")
    return rows


def log_tail(path: str | None, allowed_root: str | None = None, n_lines: int = 40,
             max_bytes: int = 64_000) -> str:
    """Last ``n_lines`` of a calculation log. The path must resolve inside ``allowed_root``
    (when given) — the store's log paths are shown, never arbitrary files."""
    import os

    if not path:
        return ""
    real = os.path.realpath(path)
    if allowed_root is not None:
        root = os.path.realpath(allowed_root)
        if os.path.commonpath([real, root]) != root:
            return f"(log outside the run directory: {path})"
    try:
        with open(real, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError as err:
        return f"(log not readable: {err.strerror})"
    return "\n".join(data.splitlines()[-n_lines:])


def simulation_summary(result: dict) -> dict:
    """What a point's details say about how its numbers were made (issue 11 provenance).

    Returns ``{"density": "1.037 ± 0.002 g/cm³", "made_with": "GAFF2 · quick-md1-direct",
    "tg_sim": "Tg_sim 412 ± 15 K" | None, "cross_check": "packing-coefficient estimate …" | None,
    "warnings": [...]}`` from a simulation record (older records without force field or
    protocol say so rather than guessing).
    """
    out: dict = {"density": None, "made_with": None, "tg_sim": None, "cross_check": None,
                 "warnings": [str(w) for w in (result.get("warnings") or [])]}
    rho = result.get("density")
    if isinstance(rho, (int, float)):
        err = result.get("density_stderr")
        out["density"] = f"{rho:.3f}" + (f" ± {err:.3f}" if isinstance(err, (int, float)) else
                                         "") + " g/cm³"
    ff = result.get("forcefield")
    proto = result.get("protocol")
    if ff or proto:
        out["made_with"] = f"{'OpenFF Sage' if ff == 'sage' else (ff or '?').upper()} · " \
                           f"{proto or 'protocol not recorded'}"
    elif rho is not None:
        out["made_with"] = "force field and protocol not recorded (older record)"
    tg = result.get("tg_sim_K")
    if isinstance(tg, (int, float)):
        se = result.get("tg_sim_stderr_K")
        out["tg_sim"] = f"Tg_sim {tg:.0f}" + (f" ± {se:.0f}" if isinstance(se, (int, float))
                                               else "") + " K (MD dilatometry, fast cooling)"
    est = result.get("density_packing_estimate")
    if isinstance(est, (int, float)) and isinstance(rho, (int, float)):
        out["cross_check"] = (f"packing-coefficient estimate {est:.3f} g/cm³ "
                              f"(MD {100 * (rho / est - 1):+.1f} %)")
    return out


# characters that start Markdown markup anywhere in a line (emphasis, code, links, HTML,
# strikethrough, Streamlit's $math$, entities, GFM table cells) and only at a line's start
# (headings, quotes, list items, setext / thematic-break lines)
_MD_INLINE = re.compile(r"([\\`*_\[\]<~$&|])")
_MD_LINE_START = re.compile(r"^([ \t]*)([#>+=-]|\d+(?=[.)]))", re.MULTILINE)


def escape_markdown(text: Any) -> str:
    """``text`` (any value, via ``str``) escaped so that Streamlit's Markdown (``st.markdown``,
    ``st.error``, ``st.caption``, ``st.toast`` …) shows it literally: ``*C(*)(F)Cl`` stays
    ``*C(*)(F)Cl`` instead of becoming italic "C()(F)Cl", ``[N+](=O)`` is not a link,
    ``a_b_c``, backticks, ``<tags>``, ``~~``, ``$…$`` and line-leading ``#``/``-``/``1.``
    are not markup.  Backslash escapes (CommonMark), so only use it outside code spans
    (see :func:`markdown_code`)."""
    s = _MD_INLINE.sub(r"\\\1", str(text))
    return _MD_LINE_START.sub(lambda m: m.group(1) + (
        "\\" + m.group(2) if not m.group(2)[0].isdigit() else m.group(2) + "\\"), s)


def markdown_code(text: Any) -> str:
    """``text`` as a Markdown code span (shown literally, monospace), with a backtick fence
    longer than any backtick run inside it; newlines become spaces."""
    s = str(text).replace("\r", " ").replace("\n", " ")
    if not s:
        return ""
    fence = "`" * (max((len(r) for r in re.findall(r"`+", s)), default=0) + 1)
    pad = " " if s[0] == "`" or s[-1] == "`" or (s[0] == " " and s[-1] == " ") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


# --------------------------------------------------------------------------- screening columns
__all__ += ["SCREENING_COLUMNS", "screening_flag_names", "join_screening", "filter_screening",
            "screening_summary"]

#: the screening columns the Pool and Batch pages show (``core.optimize.cost_estimate.screen``):
#: estimated CPU minutes on one core for the campaign's preset, SA score (1 easy … 10 hard),
#: unfit-motif flags ("; "-joined names, "" when none), the simulability pre-check and why not
SCREENING_COLUMNS: tuple[str, ...] = ("cost_cpu_min", "sa_score", "flags", "simulable",
                                      "unsimulable_reason")


def screening_flag_names() -> list[str]:
    """Names of the unfit-motif flags (``core.chem.feasibility.MOTIFS``), in their order."""
    from core.chem.feasibility import MOTIFS  # noqa: PLC0415
    return list(MOTIFS)


def join_screening(table: pd.DataFrame, screening: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` with :data:`SCREENING_COLUMNS` of ``screening`` (the frame of
    ``core.optimize.cost_estimate.screen`` over ``table["psmiles"]``, row for row) and a
    ``flagged`` column.  Raises ValueError when the two do not describe the same polymers."""
    if len(screening) != len(table) or \
            list(screening["psmiles"].astype(str)) != list(table["psmiles"].astype(str)):
        raise ValueError("the screening frame does not match the table's polymers row for row")
    out = table.copy()
    for c in (*SCREENING_COLUMNS, "flagged"):
        out[c] = screening[c].to_numpy()
    return out


def filter_screening(table: pd.DataFrame, *, hide_flagged: bool = False,
                     hide_flags: Sequence[str] = (), hide_unsimulable: bool = False,
                     max_cost_min: float | None = None) -> pd.DataFrame:
    """Rows of ``table`` (with :data:`SCREENING_COLUMNS`, see :func:`join_screening`) that
    pass: no motif flag at all (``hide_flagged``), none of the named flags (``hide_flags``),
    passing the simulability pre-check (``hide_unsimulable``), an estimated cost of at most
    ``max_cost_min`` CPU minutes (a row of unknown cost fails it).  Raises ValueError for an
    unknown flag name or a negative or non-finite cost limit."""
    names = screening_flag_names()
    unknown = [f for f in hide_flags if f not in names]
    if unknown:
        raise ValueError(f"unknown motif flag(s) {unknown}; known: {names}")
    keep = np.ones(len(table), dtype=bool)
    if hide_flagged or hide_flags or hide_unsimulable or max_cost_min is not None:
        missing = [c for c in SCREENING_COLUMNS if c not in table]
        if missing:
            raise ValueError(f"filtering on the screening needs the columns {missing}")
    flags = table["flags"].fillna("").astype(str) if "flags" in table else None
    if hide_flagged:
        keep &= (flags == "").to_numpy()
    for f in hide_flags:
        keep &= ~flags.map(lambda s, f=f: f in s.split("; ")).to_numpy(bool)
    if hide_unsimulable:
        keep &= table["simulable"].to_numpy(bool)
    if max_cost_min is not None:
        if not math.isfinite(float(max_cost_min)) or float(max_cost_min) < 0:
            raise ValueError(f"the cost limit must be a finite number ≥ 0 CPU minutes, got "
                             f"{max_cost_min!r}")
        cost = pd.to_numeric(table["cost_cpu_min"], errors="coerce").to_numpy(float)
        keep &= np.isfinite(cost) & (cost <= float(max_cost_min))
    return table[keep]


def screening_summary(table: pd.DataFrame) -> str:
    """One line for a caption: how many rows are flagged, fail the pre-check, and the median
    estimated cost (CPU minutes)."""
    if not len(table) or "flags" not in table:
        return ""
    n_flag = int((table["flags"].fillna("").astype(str) != "").sum())
    n_bad = int((~table["simulable"].astype(bool)).sum())
    cost = pd.to_numeric(table["cost_cpu_min"], errors="coerce")
    med = f"median {cost.median():.3g} CPU-min" if cost.notna().any() else "cost unknown"
    return (f"{n_flag:,} flagged · {n_bad:,} fail the simulability pre-check · {med} "
            "(estimated for the campaign's preset)")


def batch_table_order(cands: pd.DataFrame, hand_added: str | None = None) -> pd.DataFrame:
    """The batch's candidates (``Store.batch_candidates``) in the order the Batch page shows
    them: those a person added by hand (``source == hand_added``, by default the store's
    ``core.store.batches.HAND_ADDED``) first, the latest addition on top, then the proposed
    ones in rank order; with a ``hand_added`` bool column.  The index is reset."""
    if hand_added is None:
        from core.store.batches import HAND_ADDED as hand_added  # noqa: PLC0415, N811
    if "source" not in cands or "rank" not in cands:
        raise ValueError("batch_table_order needs the columns 'source' and 'rank'")
    mine = (cands["source"] == hand_added).to_numpy(bool)
    out = pd.concat([cands[mine].sort_values("rank", ascending=False),
                     cands[~mine].sort_values("rank")], ignore_index=True)
    out["hand_added"] = (out["source"] == hand_added).to_numpy(bool)
    return out


def joint_value_text(joint_value: float | None, se: float | None = None,
                     n_selected: int | None = None) -> str:
    """Caption fragment for a batch's joint value, the expected hypervolume gain of its
    selected candidates (n_D × ν_D units): ``joint expected gain of the 3 selected 0.0123 ±
    0.0004``; "" when unknown."""
    if joint_value is None or not math.isfinite(float(joint_value)):
        return ""
    who = f" of the {n_selected} selected" if n_selected is not None else ""
    pm = (f" ± {float(se):.2g}" if se is not None and math.isfinite(float(se)) and se > 0
          else "")
    return f"joint expected gain (hypervolume){who} {float(joint_value):.4g}{pm}"
