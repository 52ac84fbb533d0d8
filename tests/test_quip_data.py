"""The committed Quip dataset: reproducible, valid, every answer in voice and true to its fact,
and a test split whose questions training never saw."""

from helpers.data.datasets import QUIP, read_jsonl
from helpers.data.validate import validate_file
from helpers.eval import persona
from tools import generators

GEN = generators.load("quip")


def test_generator_reproduces_committed_files_byte_for_byte(tmp_path):
    for path in GEN.write_all(tmp_path):
        assert path.read_bytes() == (QUIP / path.name).read_bytes(), path.name


def test_uploaded_splits_are_valid_for_azure_apart_from_the_bom():
    for split in ("train", "validation"):
        report = validate_file(QUIP / f"{split}.jsonl", provider="azure")
        assert report.ok and report.valid == GEN.SIZES[split]
        allowed = {"missing_byte_order_mark"} | ({"few_examples"} if split == "validation" else set())
        assert {w.code for w in report.warnings} <= allowed, split
    assert len(read_jsonl(QUIP / "test.jsonl")) == GEN.SIZES["test"]  # kept local: its "fact" key is ours


def test_every_answer_is_in_voice_and_states_its_fact():
    phrases = persona.house_phrases(read_jsonl(QUIP / "train.jsonl"))
    for row in read_jsonl(QUIP / "test.jsonl"):
        answer = row["messages"][-1]["content"]
        assert persona.in_voice(answer, phrases) and persona.has_fact(answer, row["fact"]), answer


def test_no_test_question_or_subject_was_seen_in_training():
    seen = {r["messages"][1]["content"] for split in ("train", "validation") for r in read_jsonl(QUIP / f"{split}.jsonl")}
    test = [r["messages"][1]["content"] for r in read_jsonl(QUIP / "test.jsonl")]
    assert not set(test) & seen and len(set(test)) == len(test)
    kinds = {"capital": 0, "symbol": 0, "plus": 0, "times": 0, "How many": 0}
    for question in test:
        kinds[next(k for k in kinds if k in question)] += 1
    assert all(n >= 4 for n in kinds.values()), kinds
