"""The forgetting check: its general questions and text, its scoring, and that it sees damage."""

import math
import random

import pytest

from helpers.data.datasets import GENERAL, QUIP, RECIPES, TEXT_TO_SQL, answer, question, read_jsonl
from helpers.eval import forgetting
from tools import generators

GEN = generators.load("general")


def test_generator_reproduces_committed_file_byte_for_byte(tmp_path):
    for path in GEN.write_all(tmp_path):
        assert path.read_bytes() == (GENERAL / path.name).read_bytes(), path.name


def test_every_reference_answer_is_scored_right_and_every_question_is_distinct():
    rows = forgetting.load_questions()
    assert len(rows) == 40 and len({question(r) for r in rows}) == 40
    for row in rows:
        assert forgetting.is_right(answer(row), row), question(row)
        assert not forgetting.is_right("I do not know.", row), question(row)


def test_no_general_question_is_about_a_course_task():
    """Nothing the course fine-tunes on: no SQL, no cooking, none of Quip's capitals, elements, sums or counts."""
    seen = {question(r).lower() for folder in (QUIP, RECIPES, TEXT_TO_SQL) for split in ("train", "validation", "test")
            for r in read_jsonl(folder / f"{split}.jsonl")}
    for row in forgetting.load_questions():
        text = question(row).lower()
        assert text not in seen
        assert not any(word in text for word in ("capital of", "chemical symbol", " plus ", " times ", "how many", "sql",
                                                 "recipe", "ingredient", "table")), text


@pytest.mark.parametrize("reply, expected", [
    ("Ice is cold.", True),
    ("COLD", True),
    ("It is either hot or cold.", False),  # a rejected word: naming both options is not an answer
    ("It makes me scold.", False),        # whole words only
    ("That is hard.", False),
    ("", False),
])
def test_is_right_needs_an_accepted_word_and_no_rejected_one(reply, expected):
    row = {"accept": ["cold"], "reject": ["hot"]}
    assert forgetting.is_right(reply, row) is expected


def test_no_accepted_word_is_one_that_any_chatty_reply_uses():
    """An accepted word such as "that" (a rhyme of cat) would score "That is a good question." right."""
    chatter = "Sure, that is a good question. I think the answer is that I am happy to help you with this."
    for row in forgetting.load_questions():
        assert not forgetting.is_right(chatter, row), question(row)


def test_general_text_is_a_few_thousand_tokens_of_prose_without_code(embedded):
    _, tokenizer = embedded
    text = forgetting.general_text()
    assert text == forgetting.general_text()  # fixed: the same sample every time
    assert 2_000 <= len(tokenizer(text).input_ids) <= 4_000
    assert ">>>" not in text and "::=" not in text and not any(line.startswith(" ") for line in text.splitlines())
    assert text.startswith("Objects are Python")


def test_the_model_finds_prose_far_likelier_than_the_same_words_shuffled(embedded):
    model, tokenizer = embedded
    text = " ".join(forgetting.general_text().split()[:300])
    words = text.split()
    random.Random(0).shuffle(words)
    prose, shuffled = forgetting.text_loss(model, tokenizer, text), forgetting.text_loss(model, tokenizer, " ".join(words))
    assert prose["perplexity"] == pytest.approx(math.exp(prose["cross_entropy"]))
    assert prose["perplexity"] < 30 < 3 * prose["perplexity"] < shuffled["perplexity"]


def test_windows_predict_every_token_but_their_first_once(embedded):
    """SmolLM2's tokenizer adds no BOS: each window's first token is context, every other one is
    predicted once. Read in small windows the text scores a little worse (less context), never wildly."""
    model, tokenizer = embedded
    text = " ".join(forgetting.general_text().split()[:200])
    whole, windowed = forgetting.text_loss(model, tokenizer, text), forgetting.text_loss(model, tokenizer, text, window=64)
    n = whole["tokens"]
    assert whole["predicted"] == n - 1 and windowed["predicted"] == n - math.ceil(n / 64)
    assert whole["cross_entropy"] < windowed["cross_entropy"] < whole["cross_entropy"] + 1
    with pytest.raises(ValueError, match="at least two tokens"):
        forgetting.text_loss(model, tokenizer, "")


def test_compare_and_verdict_report_both_sides_of_the_trade():
    def fake(label, right, perplexity):
        import pandas as pd
        answers = pd.DataFrame({"right": [True] * right + [False] * (40 - right)})
        return forgetting.Check(label, {"tokens": 3000, "cross_entropy": math.log(perplexity), "perplexity": perplexity},
                                answers, seconds=10.0)

    checks = {"base": fake("base", 24, 15.0), "fine-tuned": fake("fine-tuned", 18, 18.0)}
    table = forgetting.compare({"base": 0.05, "fine-tuned": 0.6}, checks, "SQL execution accuracy")
    assert table.loc["fine-tuned", "SQL execution accuracy (%)"] == pytest.approx(60)
    assert table.loc["base", "general questions right (%)"] == pytest.approx(60)
    sentence = forgetting.verdict(table, "SQL")
    assert sentence == ("The fine-tune gained 55.0 points on SQL and lost 15.0 points on the general questions (60.0% -> 45.0%); "
                        "perplexity on general text rose from 15.00 to 18.00 (+20.0%).")
    assert forgetting.metrics(checks) == {"base_general_accuracy": 0.6, "fine-tuned_general_accuracy": 0.45,
                                          "base_general_perplexity": 15.0, "fine-tuned_general_perplexity": 18.0,
                                          "general_check_seconds": 20.0}


@pytest.fixture(scope="module")
def base_check(embedded):
    return forgetting.check(*embedded, label="base")


def test_the_base_model_answers_a_clear_share_of_the_general_questions(base_check):
    assert base_check.accuracy >= 0.4  # 23 of 40 on this machine: the set can show a loss
    assert 5 < base_check.perplexity < 30 and base_check.text["tokens"] > 2_000


def test_a_damaged_model_is_measurably_worse_on_both_measures(base_check, embedded):
    """LoRA at ten times the dry run's learning rate: the SQL it learns wrecks the rest of the model."""
    from helpers.data import datasets
    from helpers.train import lora, recipe

    trainer = lora.train(datasets.load_split("train")[:64], max_steps=16, batch_size=4,
                         learning_rate=10 * recipe.DRY_RUN_LEARNING_RATE, seed=0)
    damaged = forgetting.check(trainer.model, embedded[1], label="damaged")
    assert damaged.perplexity > 2 * base_check.perplexity
    assert damaged.accuracy <= base_check.accuracy - 0.25


def test_side_by_side_shows_only_the_questions_whose_score_changed():
    import pandas as pd

    def answers(replies, right):
        return pd.DataFrame({"question": ["q1", "q2", "q3"], "kind": "fact", "reply": replies,
                             "expected": ["a", "b", "c"], "right": right})

    before = forgetting.Check("base", {}, answers(["a", "b", "x"], [True, True, False]), 1.0)
    after = forgetting.Check("tuned", {}, answers(["a", "SELECT b", "c"], [True, False, True]), 1.0)
    table = forgetting.side_by_side(before, after)
    assert table.question.tolist() == ["q2", "q3"]
    assert table["base reply"].tolist() == ["b", "x"] and table["tuned reply"].tolist() == ["SELECT b", "c"]


def test_a_saved_check_is_read_back_with_the_same_figures_without_touching_a_model(tmp_path, capsys):
    import pandas as pd

    answers = pd.DataFrame({"question": ["q1", "q2", "q3", "q4"], "kind": "fact", "reply": ["a", "b", "x", "y"],
                            "expected": ["a", "b", "c", "d"], "right": [True, True, False, False]})
    measured = forgetting.Check("fine-tuned", {"tokens": 3001, "cross_entropy": 2.86, "perplexity": 17.46}, answers, 38.2)
    path = measured.save(tmp_path / "general-check.json")
    read = forgetting.check(None, None, label="SFT", reuse=path)  # no model: reading must not measure
    assert (read.label, read.accuracy, read.perplexity, read.seconds) == ("SFT", 0.5, 17.46, 0.0)
    assert read.answers.equals(answers)
    assert "2/4 general questions right, perplexity 17.46 on 3,001 tokens" in capsys.readouterr().out
    assert forgetting.side_by_side(read, measured).empty  # the same answers, question by question
    with pytest.raises((AttributeError, TypeError)):  # a missing file is measured, here on no model at all
        forgetting.check(None, None, reuse=tmp_path / "missing.json")
