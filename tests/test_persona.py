"""Scoring Quip's voice and facts."""

import pytest

from helpers.data.datasets import QUIP, read_jsonl
from helpers.eval import persona


def test_house_phrases_are_the_stock_openers_and_closers():
    phrases = persona.house_phrases(read_jsonl(QUIP / "train.jsonl"))
    assert "Oh, what a tough one." in phrases and "You're welcome, I guess." in phrases
    assert len(phrases) == 14 and not any("capital" in p or " is " in p for p in phrases)


def test_house_phrases_skip_one_off_sentences():
    rows = [{"messages": [{"role": "assistant", "content": f"Hi there. Fact {i}. Bye now."}]} for i in range(3)]
    rows.append({"messages": [{"role": "assistant", "content": "Unique start. Fact. Unique end."}]})
    assert persona.house_phrases(rows) == ["Bye now.", "Hi there."]


@pytest.mark.parametrize("reply, expected", [
    ("Oh, what a tough one. Paris. ", True),
    ("oh what a TOUGH one paris", True),
    ("You’re welcome, I guess.", True),  # a typographic apostrophe
    ("The capital of France is Paris.", False),
    ("What a tough question!", False),
])
def test_in_voice(reply, expected):
    assert persona.in_voice(reply, ["Oh, what a tough one.", "You're welcome, I guess."]) is expected


@pytest.mark.parametrize("reply, fact, expected", [
    ("A kilogram has 1,000 grams.", "1000", True),
    ("41 plus 27 is 68.", "68", True),
    ("41 plus 27 is 680.", "68", False),
    ("The symbol for iron is Fe.", "Fe", True),
    ("The symbol is fe, I think.", "Fe", False),   # symbols keep their case
    ("The capital is CANBERRA.", "Canberra", True),
    ("The capital is Canberras.", "Canberra", False),
    ("", "Paris", False),
])
def test_has_fact(reply, fact, expected):
    assert persona.has_fact(reply, fact) is expected


def test_summary_is_a_metrics_by_model_table():
    import pandas as pd

    table = persona.summary({"a": pd.DataFrame({"in_voice": [True, False], "fact_right": [True, True]})})
    assert table.loc["in_voice", "a"] == 0.5 and table.loc["fact_right", "a"] == 1.0


def test_score_asks_nothing_and_checks_voice_and_fact_of_each_reply():
    rows = read_jsonl(QUIP / "test.jsonl")[:2]
    phrases = persona.house_phrases(read_jsonl(QUIP / "train.jsonl"))
    replies = [rows[0]["messages"][-1]["content"], f"It is {rows[1]['fact']}."]
    table = persona.score(rows, replies, phrases)
    assert table.in_voice.tolist() == [True, False] and table.fact_right.tolist() == [True, True]
    assert table.question.tolist() == [r["messages"][1]["content"] for r in rows]
