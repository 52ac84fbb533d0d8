import json

import pytest

from helpers import datasets


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})


def test_bad_lines_are_all_named_with_file_and_line(tmp_path):
    path = write(tmp_path / "chat.jsonl", [
        GOOD,
        '{"messages": [',                                           # 2: broken JSON
        json.dumps({"messages": [{"role": "user", "content": "x"}]}),  # 3: nothing to learn
        "",                                                          # 4: blank, skipped
        json.dumps([1, 2]),                                          # 5: not an object
        GOOD,
    ])
    with pytest.raises(datasets.JsonlError) as err:
        datasets.read_jsonl(path)
    text = str(err.value)
    assert "3 bad line(s), 2 valid" in text
    assert f"{path}:2: not valid JSON" in text
    assert f"{path}:3: no assistant message" in text
    assert f"{path}:5: expected a JSON object, got list" in text


def test_good_file_reads_every_line(tmp_path):
    path = write(tmp_path / "ok.jsonl", [GOOD] * 3)
    assert len(datasets.read_jsonl(path)) == 3


def test_load_split_subset_is_seeded():
    a = datasets.load_split("test", limit=10, seed=1)
    assert a == datasets.load_split("test", limit=10, seed=1)
    assert a != datasets.load_split("test", limit=10, seed=2)
    assert len(datasets.load_split("test")) == 120


def test_prompt_completion_puts_only_the_answer_in_completion():
    rows = datasets.load_split("train", limit=3)
    ds = datasets.to_prompt_completion(rows)
    assert ds.column_names == ["prompt", "completion"]
    assert [m["role"] for m in ds[0]["prompt"]] == ["system", "user"]
    assert ds[0]["completion"] == [rows[0]["messages"][2]]
