"""Scoring the recipe assistant: the ingredient list a reply names, against the gold."""

import json

import pytest

from helpers.data.datasets import RECIPES, read_jsonl
from helpers.eval import ingredients


@pytest.mark.parametrize("reply,expected", [
    ('["flour", "sugar"]', ["flour", "sugar"]),
    ('Sure! ["Flour", "brown sugar"] are the ingredients.', ["flour", "brown sugar"]),
    ("flour, sugar and eggs", ["flour", "sugar", "eggs"]),
    ('["flour", "sug', ["flour", "sug"]),  # cut off by max_tokens
    ("", []),
])
def test_parse_list(reply, expected):
    assert ingredients.parse_list(reply) == expected


def test_f1():
    assert ingredients.f1(["a", "b"], ["a", "b"]) == 1.0
    assert ingredients.f1(["a", "c"], ["a", "b"]) == 0.5
    assert ingredients.f1([], ["a"]) == 0.0 and ingredients.f1([], []) == 1.0


def test_score_reads_the_title_and_the_gold_from_each_example():
    rows = read_jsonl(RECIPES / "test.jsonl")[:2]
    gold = [json.loads(r["messages"][-1]["content"]) for r in rows]
    table = ingredients.score(rows, [json.dumps(gold[0]), ", ".join(gold[1][:1])])
    assert table.exact_match.tolist() == [True, len(gold[1]) == 1]
    assert table.f1[0] == 1.0 and table.f1[1] == pytest.approx(2 / (1 + len(gold[1])))
    assert table.recipe[0] == rows[0]["messages"][1]["content"].split("\n")[0].removeprefix("Title: ")
    summary = ingredients.summary({"model": table})
    assert summary.loc["f1", "model"] == pytest.approx(table.f1.mean())
