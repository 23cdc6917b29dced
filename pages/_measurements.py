"""Measured / literature values on the Settings page (not a page itself): read an uploaded or
pasted measurements CSV and show why a file was refused (``core.campaign.measurements`` does the
checking)."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.campaign.measurements import (MAX_MEASUREMENT_BYTES, MeasurementImportError,
                                        parse_measurements_csv)
from pages._common import esc

#: what the upload / paste widgets say about the expected table
CSV_HELP = ("CSV with a header row: `psmiles`, `n_D`, `abbe_number` (ν_D) and optionally "
            "`name` and `source` (citation of that row). n_D must lie in 1.0–3.0 and ν_D in "
            "5–150; a file with any bad row imports nothing.")


def measurement_rows(upload: Any, pasted: str | None) -> tuple[list[dict], str] | None:
    """Rows (:func:`core.campaign.measurements.parse_measurements_csv`) and a file label from an
    ``st.file_uploader`` value or pasted CSV text (the upload wins); None when neither is
    given.  Raises :class:`MeasurementImportError` for an unusable table."""
    if upload is not None:
        data = upload.getvalue()
        if len(data) > MAX_MEASUREMENT_BYTES:
            raise MeasurementImportError(f"{upload.name}: {len(data) // 1024:,} KiB; the limit "
                                         f"is {MAX_MEASUREMENT_BYTES // 1024:,} KiB")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise MeasurementImportError(f"{upload.name}: not UTF-8 text (byte {exc.start})") \
                from None
        return parse_measurements_csv(text, file_name=upload.name), str(upload.name)
    if pasted and pasted.strip():
        return parse_measurements_csv(pasted, file_name="pasted table"), "pasted table"
    return None


def show_import_error(err: MeasurementImportError) -> None:
    """The refusal in one error line plus a table of the bad rows (line, input, problem);
    the table shows polymer SMILES literally."""
    st.error(esc(err.summary))
    if err.problems:
        st.dataframe(pd.DataFrame([{"line": p.line, "input": p.input, "problem": p.problem}
                                   for p in err.problems]),
                     hide_index=True, width="stretch")
