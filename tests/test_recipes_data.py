"""The committed recipe dataset: reproducible, valid for the provider, and a real held-out test."""

import json

from helpers.data.datasets import RECIPES, read_jsonl
from helpers.data.validate import validate_file
from tools import generators

SPLITS = {"train": 200, "validation": 50, "test": 50}


GEN = generators.load("recipes")


def answers(split):
    return [json.loads(r["messages"][2]["content"]) for r in read_jsonl(RECIPES / f"{split}.jsonl")]


def test_generator_reproduces_committed_files_byte_for_byte(tmp_path):
    for path in GEN.write_all(tmp_path):
        assert path.read_bytes() == (RECIPES / path.name).read_bytes(), path.name


def test_every_split_is_big_enough_and_passes_the_validator():
    for split, minimum in SPLITS.items():
        report = validate_file(RECIPES / f"{split}.jsonl")
        assert report.ok, report.errors[:3]
        assert report.valid >= minimum
        assert not [w for w in report.warnings if w.code == "duplicate_example"]


def test_each_answer_can_be_read_off_the_recipe():
    for split in SPLITS:
        for row in read_jsonl(RECIPES / f"{split}.jsonl"):
            system, user, assistant = row["messages"]
            assert user["content"].startswith("Title: ") and user["content"].endswith("Generic ingredients: ")
            generics = json.loads(assistant["content"])
            assert 3 <= len(generics) <= 9 and len(set(generics)) == len(generics)
            for g in generics:
                surfaces = GEN.INGREDIENTS[g][1]
                assert any(s in user["content"] for s in surfaces) or (
                    g in ("salt", "pepper") and "salt and pepper" in user["content"]), (g, user["content"])


def test_held_out_ingredients_and_wordings_never_appear_in_training():
    train_text = (RECIPES / "train.jsonl").read_text()
    assert not GEN.HELD_INGREDIENTS & {g for a in answers("train") for g in a}
    for phrase in GEN.HELD_PREPS.values():
        assert phrase not in train_text
    for split in ("validation", "test"):
        assert all(GEN.HELD_INGREDIENTS & set(a) for a in answers(split))


def test_no_recipe_is_shared_between_splits():
    users = {s: {r["messages"][1]["content"] for r in read_jsonl(RECIPES / f"{s}.jsonl")} for s in SPLITS}
    assert not users["train"] & users["validation"] and not users["train"] & users["test"]
    assert not users["validation"] & users["test"]
