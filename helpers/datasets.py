"""Chat-format JSONL files: read and write them, convert them to pandas and Hugging Face
datasets and back, split them; bad lines raise errors that name file and line."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
from datasets import Dataset

from helpers.chat_format import CODES, check_chat
from helpers.env import DATA_DIR

TEXT_TO_SQL = DATA_DIR / "text_to_sql"
RECIPES = DATA_DIR / "recipes"
QUIP = DATA_DIR / "quip"
# Extra top-level keys (such as db_id) are kept for local training; helpers.validate flags them.
EXTRA_KEYS_OK = {"unrecognized_example_key"}


class JsonlError(ValueError):
    """A JSONL file has bad lines; the message names each one as file:line: problem."""


def read_jsonl(path: str | Path) -> list[dict]:
    """Every chat example of a JSONL file; raises JsonlError listing all bad lines."""
    path = Path(path)
    rows, problems = [], []
    with path.open(encoding="utf-8-sig") as f:  # Azure files may start with a BOM
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                problems.append(f"{path}:{number}: not valid JSON ({err.msg}, column {err.colno})")
                continue
            errors = [f"{code}: {message}" for code, message in check_chat(row)
                      if CODES[code][0] == "error" and code not in EXTRA_KEYS_OK]
            if errors:
                problems.append(f"{path}:{number}: {errors[0]}")
            else:
                rows.append(row)
    if problems:
        shown = "\n".join(problems[:10]) + ("\n..." if len(problems) > 10 else "")
        raise JsonlError(f"{len(problems)} bad line(s), {len(rows)} valid:\n{shown}")
    return rows


def write_jsonl(rows: list[dict], path: str | Path, bom: bool = False) -> Path:
    """Write one JSON object per line (UTF-8, with a byte-order mark if `bom`, as Azure asks),
    replacing `path` only once all is written."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                   encoding="utf-8-sig" if bom else "utf-8")
    tmp.replace(path)
    return path


def load_split(split: str, limit: int | None = None, seed: int = 0, folder: Path = TEXT_TO_SQL) -> list[dict]:
    """A split of a course dataset (text-to-SQL by default); with `limit`, a seeded random subset."""
    rows = read_jsonl(folder / f"{split}.jsonl")
    if limit is not None and limit < len(rows):
        rows = random.Random(seed).sample(rows, limit)
    return rows


def to_prompt_completion(rows: list[dict]) -> Dataset:
    """TRL's prompt-completion form: the loss then covers the assistant answer only."""
    def split(messages: list[dict]) -> dict:
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        return {"prompt": messages[:last], "completion": messages[last:last + 1]}
    return Dataset.from_list([split(r["messages"]) for r in rows])


def split_rows(rows: list[dict], validation_fraction: float = 0.2, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """A seeded shuffle cut into (train, validation); together they hold every row once."""
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction={validation_fraction}; use a number between 0 and 1")
    shuffled = random.Random(seed).sample(rows, len(rows))
    n_validation = max(1, round(len(rows) * validation_fraction))
    return shuffled[n_validation:], shuffled[:n_validation]


def _drop_missing(value):
    """Remove the null fields a table adds for keys only some rows have."""
    if isinstance(value, dict):
        return {k: _drop_missing(v) for k, v in value.items() if not _is_missing(v)}
    if isinstance(value, list):
        return [_drop_missing(v) for v in value]
    return value


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def to_frame(rows: list[dict]) -> pd.DataFrame:
    """One row per example, one column per top-level key (messages, tools, ...)."""
    return pd.DataFrame.from_records(rows)


def from_frame(frame: pd.DataFrame) -> list[dict]:
    """Chat examples back from `to_frame`'s table, without the gaps pandas fills in."""
    return [_drop_missing(r) for r in frame.to_dict("records")]


def to_dataset(rows: list[dict]) -> Dataset:
    """A Hugging Face Dataset of the examples (a `messages` column TRL understands)."""
    # from_list takes its columns from the first row only: give every row every key.
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return Dataset.from_list([{k: r.get(k) for k in keys} for r in rows])


def from_dataset(dataset: Dataset) -> list[dict]:
    """Chat examples back from a Dataset, without the nulls Arrow adds for absent keys."""
    return [_drop_missing(r) for r in dataset.to_list()]


def chat_rows(frame: pd.DataFrame, user: str, assistant: str, system: str | None = None) -> list[dict]:
    """Chat examples from a table: `user` and `assistant` name columns; `system` is fixed text."""
    missing = [c for c in (user, assistant) if c not in frame.columns]
    if missing:
        raise KeyError(f"no column {missing[0]!r}; the table has {', '.join(map(str, frame.columns))}")
    head = [{"role": "system", "content": system}] if system else []
    return [{"messages": head + [{"role": "user", "content": str(u)}, {"role": "assistant", "content": str(a)}]}
            for u, a in zip(frame[user], frame[assistant], strict=False)]
