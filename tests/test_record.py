import json

import numpy as np
import pandas as pd
import pytest

from helpers import record


def test_metrics_are_written_as_plain_json_with_the_headline_filled_from_them(tmp_path):
    written = record.metrics(tmp_path, "F1 {base_f1:.0%} -> {finetuned_f1:.0%}", base_f1=np.float32(0.25),
                             finetuned_f1=0.75, steps=np.int64(40), folder=tmp_path, per_rank=[np.float64(0.5)],
                             missing=float("nan"))
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == written and on_disk["headline"] == "F1 25% -> 75%"
    assert on_disk["steps"] == 40 and on_disk["folder"] == str(tmp_path) and on_disk["missing"] is None
    assert not list(tmp_path.glob("*.tmp"))


def test_a_headline_naming_a_figure_that_was_not_given_fails_before_anything_is_written(tmp_path):
    with pytest.raises(KeyError, match="finetuned_f1"):
        record.metrics(tmp_path, "{finetuned_f1:.0%}", base_f1=0.2)
    assert not (tmp_path / "metrics.json").exists()


def test_before_and_after_come_from_the_first_column_and_the_fine_tuned_one():
    table = pd.DataFrame({"base model": [0.1, 0.2], "fine-tuned": [0.6, 0.9]}, index=["in_voice", "fact_right"])
    assert record.before_after(table, in_voice="in_voice", fact_right="facts") == {
        "base_in_voice": 0.1, "finetuned_in_voice": 0.6, "base_facts": 0.2, "finetuned_facts": 0.9}


def test_flatten_names_each_figure_by_its_row_and_column():
    table = pd.DataFrame({"latency (s)": [0.123456, 0.5], "tokens": [10, 20]}, index=["zero-shot", "few-shot (k=4)"])
    assert record.flatten(table, {"few-shot (k=4)": "few_shot"}, {"latency (s)": "latency"}) == {"few_shot_latency": 0.5}
    assert record.flatten(table, {"zero-shot": "zero"}, {"latency (s)": "latency"}, digits=2) == {"zero_latency": 0.12}
