"""Chat-format JSONL files: read and write them, take a course data set's split, and the parts of
a chat example (its prompt and its answer). Bad lines raise errors that name file and line."""

from __future__ import annotations

import json
import random
from pathlib import Path

from datasets import Dataset

from helpers.data.chat_format import CHECKS, CODES
from helpers.env import DATA_DIR

TEXT_TO_SQL = DATA_DIR / "text_to_sql"
RECIPES = DATA_DIR / "recipes"
QUIP = DATA_DIR / "quip"
GENERAL = DATA_DIR / "general"  # questions outside every task, for measuring forgetting
# Extra top-level keys (such as db_id) are kept for local training; helpers.data.validate flags them.
EXTRA_KEYS_OK = {"unrecognized_example_key"}


class JsonlError(ValueError):
    """A JSONL file has bad lines; the message names each one as file:line: problem."""


def read_jsonl(path: str | Path, format: str = "chat") -> list[dict]:
    """Every example of a JSONL file in a fine-tuning format ("chat", or "preference" for DPO); raises
    JsonlError listing all bad lines."""
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
            errors = [f"{code}: {message}" for code, message in CHECKS[format](row)
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


def answer_index(example: dict) -> int:
    """Index of the last assistant message: the answer. Earlier ones are few-shot examples."""
    return max(i for i, m in enumerate(example["messages"]) if m["role"] == "assistant")


def prompt_messages(example: dict) -> list[dict]:
    """The messages a model is sent: everything before the answer."""
    return example["messages"][:answer_index(example)]


def answer(example: dict) -> str:
    """The text of the answer: the last assistant message."""
    return example["messages"][answer_index(example)]["content"]


def question(example: dict) -> str:
    """The question asked: the last user message."""
    return next(m["content"] for m in reversed(example["messages"]) if m["role"] == "user")


def to_prompt_completion(rows: list[dict]) -> Dataset:
    """TRL's prompt-completion form: the loss then covers the answer only."""
    def split(row: dict) -> dict:
        last = answer_index(row)
        return {"prompt": row["messages"][:last], "completion": row["messages"][last:last + 1]}
    return Dataset.from_list([split(r) for r in rows])
