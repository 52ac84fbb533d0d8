"""Chat-format JSONL files: read them with clear errors, turn them into training datasets."""

from __future__ import annotations

import json
import random
from pathlib import Path

from datasets import Dataset

from helpers.env import DATA_DIR

TEXT_TO_SQL = DATA_DIR / "text_to_sql"


class JsonlError(ValueError):
    """A JSONL file has bad lines; the message names each one as file:line: problem."""


def _problem(row) -> str | None:
    """Why a parsed line is not a chat example, or None when it is one."""
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str) or "role" not in m:
            return f"messages[{i}] needs a 'role' and a string 'content'"
    if not any(m["role"] == "assistant" for m in messages):
        return "no assistant message to learn from"
    return None


def read_jsonl(path: str | Path) -> list[dict]:
    """Every chat example of a JSONL file; raises JsonlError listing all bad lines."""
    path = Path(path)
    rows, problems = [], []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                problems.append(f"{path}:{number}: not valid JSON ({err.msg}, column {err.colno})")
                continue
            why = _problem(row)
            if why:
                problems.append(f"{path}:{number}: {why}")
            else:
                rows.append(row)
    if problems:
        shown = "\n".join(problems[:10]) + ("\n..." if len(problems) > 10 else "")
        raise JsonlError(f"{len(problems)} bad line(s), {len(rows)} valid:\n{shown}")
    return rows


def load_split(split: str, limit: int | None = None, seed: int = 0) -> list[dict]:
    """A split of the text-to-SQL data; with `limit`, a seeded random subset of that size."""
    rows = read_jsonl(TEXT_TO_SQL / f"{split}.jsonl")
    if limit is not None and limit < len(rows):
        rows = random.Random(seed).sample(rows, limit)
    return rows


def to_prompt_completion(rows: list[dict]) -> Dataset:
    """TRL's prompt-completion form: the loss then covers the assistant answer only."""
    def split(messages: list[dict]) -> dict:
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        return {"prompt": messages[:last], "completion": messages[last:last + 1]}
    return Dataset.from_list([split(r["messages"]) for r in rows])
