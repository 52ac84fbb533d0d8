"""A notebook's record: its figures and a one-line headline in <output_dir>/metrics.json, the file `make run`
collects from every notebook into one summary (tools/runall.py) and the tests check."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd


def _plain(value):
    """Numbers as JSON has them (numpy and pandas scalars included), containers walked through."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if math.isnan(value) else value
    if isinstance(value, Path):
        return str(value)
    return value


def metrics(output_dir: str | Path, headline: str, **figures) -> dict:
    """Write `figures` and the headline, a format string filled from them ("{finetuned_f1:.0%}"), to
    <output_dir>/metrics.json, replacing the file whole; return what was written."""
    record = {name: _plain(value) for name, value in figures.items()}
    record["headline"] = headline.format(**record)
    path = Path(output_dir) / "metrics.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)
    return record


def before_after(comparison: pd.DataFrame, before: str | None = None, after: str = "fine-tuned", **rows: str) -> dict:
    """Figures from a measures x models table (sql.compare, ingredients.summary, persona.summary): for each
    row=name, `base_<name>` from the `before` column (the first one by default) and `finetuned_<name>` from
    `after`."""
    before = before or comparison.columns[0]
    return {f"{prefix}_{name}": float(comparison.loc[row, column])
            for row, name in rows.items() for prefix, column in (("base", before), ("finetuned", after))}


def flatten(table: pd.DataFrame, rows: dict[str, str], columns: dict[str, str], digits: int = 4) -> dict:
    """Figures from a table of rows x measures, named `<row name>_<column name>` with the names given (rows and
    columns not named are left out), rounded to `digits` places."""
    return {f"{row_name}_{column_name}": round(float(table.loc[row, column]), digits)
            for row, row_name in rows.items() for column, column_name in columns.items()}
