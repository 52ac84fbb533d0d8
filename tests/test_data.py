"""The committed text-to-SQL dataset: reproducible, well formed, and a real generalisation test."""

import json
import re
import sqlite3

import pytest

from helpers.data.datasets import TEXT_TO_SQL
from helpers.eval.sql import DB_DIR, run_sql
from tools import generators

SPLITS = ("train", "validation", "test")
LITERAL = re.compile(r"'([^']*)'|\b(\d+)\b")


def rows(split):
    return [json.loads(line) for line in (TEXT_TO_SQL / f"{split}.jsonl").read_text().splitlines()]


def literals(sql):
    return {a or b for a, b in LITERAL.findall(sql)}


def test_generator_reproduces_committed_files_byte_for_byte(tmp_path):
    written = generators.load("text_to_sql").write_all(tmp_path)
    assert len(written) == 6
    for path in written:
        committed = TEXT_TO_SQL / path.relative_to(tmp_path)
        if path.suffix == ".sqlite" and path.read_bytes()[96:100] != committed.read_bytes()[96:100]:
            # another SQLite library version stamps its own number into the header: compare content
            dump = lambda p: list(sqlite3.connect(p).iterdump())  # noqa: E731
            assert dump(path) == dump(committed), committed
        else:
            assert path.read_bytes() == committed.read_bytes(), committed


def test_another_seed_gives_other_data(tmp_path):
    gen = generators.load("text_to_sql")
    assert gen.build_splits(seed=1)["train"] != gen.build_splits()["train"]


def test_sizes_and_domains():
    sizes = {split: len(rows(split)) for split in SPLITS}
    assert sizes["train"] >= 500 and sizes["test"] >= 100 and sizes["validation"] > 0
    dbs = sorted(p.stem for p in DB_DIR.glob("*.sqlite"))
    assert dbs == ["company", "library", "shop"]
    for db in dbs:
        tables = run_sql(DB_DIR / f"{db}.sqlite",
                         "SELECT name FROM sqlite_master WHERE type = 'table'")
        assert 2 <= len(tables) <= 4


@pytest.mark.parametrize("split", SPLITS)
def test_every_line_is_a_chat_example_whose_gold_sql_returns_rows(split):
    for number, row in enumerate(rows(split), start=1):
        where = f"{split}.jsonl:{number}"
        assert set(row) == {"db_id", "messages"}, where
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"], where
        assert all(set(m) == {"role", "content"} and m["content"].strip() for m in row["messages"]), where
        assert "Schema:" in row["messages"][0]["content"], where
        result = run_sql(DB_DIR / f"{row['db_id']}.sqlite", row["messages"][2]["content"])
        assert result and result not in ([(0,)], [(None,)]), where


def test_sql_shapes_are_all_covered():
    gold = " ".join(r["messages"][2]["content"] for r in rows("train"))
    for shape in ("WHERE", "COUNT(", "AVG(", "MAX(", "MIN(", "GROUP BY", "ORDER BY", "LIMIT", "JOIN"):
        assert shape in gold, shape


def test_no_question_is_shared_between_splits():
    questions = {s: {r["messages"][1]["content"] for r in rows(s)} for s in SPLITS}
    assert not questions["train"] & questions["test"]
    assert not questions["train"] & questions["validation"]
    assert not questions["validation"] & questions["test"]


def test_test_values_never_appear_in_training():
    seen = set().union(*(literals(r["messages"][2]["content"]) for r in rows("train")))
    for r in rows("test"):
        assert not literals(r["messages"][2]["content"]) & seen, r["messages"][1]["content"]


def skeleton(row):
    """The question with its values masked: the phrasing alone."""
    question = row["messages"][1]["content"]
    for value in sorted(literals(row["messages"][2]["content"]), key=len, reverse=True):
        question = re.sub(rf"\b{re.escape(value)}\b", "{v}", question)
    return question


def test_test_phrasings_never_appear_in_training():
    train = {skeleton(r) for r in rows("train")}
    assert not {skeleton(r) for r in rows("test")} & train
