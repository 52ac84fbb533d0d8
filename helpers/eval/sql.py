"""Scoring text-to-SQL: run predicted SQL, compare it with the gold, tabulate base vs fine-tuned."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pandas as pd

from helpers.data.datasets import TEXT_TO_SQL, answer, question
from helpers.eval import generate

DB_DIR = TEXT_TO_SQL / "databases"
MAX_SQL_STEPS = 2_000_000  # SQLite VM steps before a runaway query is stopped
FENCE = re.compile(r"```(?:sql|sqlite)?\s*(.*?)(?:```|$)", re.S | re.I)
QUOTED = re.compile(r"('(?:[^']|'')*')")


def extract_sql(text: str) -> str:
    """The SQL inside a reply: the first fenced block if any, up to the first semicolon."""
    match = FENCE.search(text)
    sql = match.group(1) if match else text
    return sql.split(";")[0].strip()


def normalize_sql(sql: str) -> str:
    """Collapse whitespace and lower-case everything outside string literals."""
    parts = QUOTED.split(" ".join(sql.strip().rstrip(";").split()))
    return "".join(p if p.startswith("'") else p.lower() for p in parts)


def exact_match(predicted: str, gold: str) -> bool:
    """Same query text once whitespace, case and a trailing semicolon are ignored."""
    return normalize_sql(predicted) == normalize_sql(gold)


def run_sql(db: str | Path, sql: str) -> list[tuple]:
    """Execute read-only SQL on a SQLite file; a runaway query raises sqlite3.OperationalError."""
    con = sqlite3.connect(f"file:{Path(db).resolve()}?mode=ro", uri=True)
    steps = iter(range(MAX_SQL_STEPS // 1000))
    con.set_progress_handler(lambda: next(steps, None) is None, 1000)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _canonical(rows: list[tuple]) -> list[tuple]:
    """Round floats so 2.0 == 2 and AVG rounding noise does not count as a mismatch."""
    return [tuple(round(v, 4) if isinstance(v, float) else v for v in row) for row in rows]


def execution_match(db: str | Path, predicted: str, gold: str) -> tuple[bool, str]:
    """Whether predicted SQL returns the gold rows (in order only if gold has ORDER BY)."""
    expected = _canonical(run_sql(db, gold))
    try:
        got = _canonical(run_sql(db, predicted))
    except (sqlite3.Error, sqlite3.Warning, ValueError) as err:
        return False, f"error: {err}"
    if "order by" in normalize_sql(gold):
        same = got == expected
    else:
        same = Counter(got) == Counter(expected)
    return same, "" if same else f"{len(got)} rows, expected {len(expected)}"


SHAPES = [("join", "join "), ("group by", "group by"), ("order by + limit", "order by"),
          ("aggregate", r"(count|avg|max|min|sum)\("), ("filter", "where ")]


def shape(sql: str) -> str:
    """The main construct of a query, checked from the hardest: join, group by, ... select."""
    text = normalize_sql(sql)
    return next((name for name, pattern in SHAPES if re.search(pattern, text)), "select")


def generate_sql(model, tokenizer, examples: list[dict], batch_size: int = generate.BATCH, desc: str = "generating") -> list[str]:
    """The model's greedy replies to each question (at most 64 new tokens: one query and a little more)."""
    return generate.replies(model, tokenizer, examples, max_new_tokens=64, batch_size=batch_size, desc=desc)


def score(examples: list[dict], replies: list[str], db_dir: Path = DB_DIR) -> pd.DataFrame:
    """One row per example: question, gold, predicted SQL, execution and exact match."""
    rows = []
    for ex, reply in zip(examples, replies, strict=True):
        sql, gold = extract_sql(reply), answer(ex)
        ok, why = execution_match(db_dir / f"{ex['db_id']}.sqlite", sql, gold)
        rows.append({"db_id": ex["db_id"], "shape": shape(gold),
                     "question": question(ex),
                     "gold": gold, "predicted": sql, "execution_match": ok,
                     "exact_match": exact_match(sql, gold), "note": why})
    return pd.DataFrame(rows)


def evaluate(model, tokenizer, examples: list[dict], batch_size: int = generate.BATCH,
             label: str = "model", reuse: str | Path | None = None) -> pd.DataFrame:
    """Generate SQL for every example and score it; prints the two accuracies. With `reuse`, the path of the
    scores an earlier notebook saved for this very model (`save_scores`): the questions scored there are read
    from there, and only the others are generated and scored here."""
    start = time.perf_counter()
    saved = {}
    if reuse is not None and Path(reuse).exists():
        saved = {(row["db_id"], row["question"]): row for row in json.loads(Path(reuse).read_text())}
    keys = [(ex["db_id"], question(ex)) for ex in examples]
    missing = [ex for ex, key in zip(examples, keys, strict=True) if key not in saved]
    table = score(missing, generate_sql(model, tokenizer, missing, batch_size, desc=label))
    source = f"{time.perf_counter() - start:.0f} s"
    if saved:
        fresh = iter(table.to_dict(orient="records"))
        table = pd.DataFrame([saved[key] if key in saved else next(fresh) for key in keys])
        source = (f"{len(examples) - len(missing)} read from {Path(reuse).name}, scored by the notebook that trained "
                  f"this model; {len(missing)} scored here in {source}")
    print(f"{label}: execution accuracy {table.execution_match.mean():.1%}, "
          f"exact match {table.exact_match.mean():.1%} on {len(table)} questions ({source})")
    return table


def save_scores(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a scored run (`evaluate`) as JSON, for a later notebook that starts from the same model
    (`evaluate(reuse=...)`)."""
    path = Path(path)
    path.write_text(json.dumps(table.to_dict(orient="records"), indent=1) + "\n")
    return path


def compare(base: pd.DataFrame, tuned: pd.DataFrame) -> pd.DataFrame:
    """Accuracy table of two scored runs, one row per metric, fractions 0..1."""
    metrics = ["execution_match", "exact_match"]
    return pd.DataFrame({"base": base[metrics].mean(), "fine-tuned": tuned[metrics].mean()})


def compare_by_shape(base: pd.DataFrame, tuned: pd.DataFrame) -> pd.DataFrame:
    """Execution accuracy per SQL shape for two scored runs, with question counts."""
    table = pd.DataFrame({"questions": base.groupby("shape").size(),
                          "base": base.groupby("shape").execution_match.mean(),
                          "fine-tuned": tuned.groupby("shape").execution_match.mean()})
    return table.sort_values("fine-tuned")


def side_by_side(base: pd.DataFrame, tuned: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """A few questions with gold, base and fine-tuned SQL next to each other."""
    view = pd.DataFrame({"question": base.question, "gold": base.gold,
                         "base": base.predicted, "fine-tuned": tuned.predicted,
                         "fine-tuned ok": tuned.execution_match})
    return view.head(n)
