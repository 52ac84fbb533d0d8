"""Chat-format JSONL files and the parts of a chat example."""

import json

import pytest

from helpers.data import datasets


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
    assert f"{path}:3: example_missing_assistant_message: no assistant message" in text
    assert f"{path}:5: data_type: each line must be a JSON object, got a list" in text


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


MIXED = [  # examples whose messages carry different keys: the case tables get wrong
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "Hello", "weight": 0},
                  {"role": "user", "content": "Again"}, {"role": "assistant", "content": "Hello again"}]},
    {"messages": [{"role": "user", "content": "Weather in Hue?"},
                  {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                                        "function": {"name": "weather", "arguments": "{}"}}]},
                  {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                  {"role": "assistant", "content": "Sunny."}],
     "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]},
    {"messages": [{"role": "user", "content": "Xin chào"}, {"role": "assistant", "content": "Chào bạn!"}]},
]


def test_jsonl_round_trip(tmp_path):
    path = datasets.write_jsonl(MIXED, tmp_path / "mixed.jsonl")
    assert datasets.read_jsonl(path) == MIXED
    assert not list(tmp_path.glob("*.tmp"))


def example(question, sql):
    return {"messages": [{"role": "system", "content": "schema"}, {"role": "user", "content": question},
                         {"role": "assistant", "content": sql}]}


def test_few_shot_prompts_exclude_every_answer_and_score_the_last():
    shot = example("q0", "SELECT 0")
    shot["messages"] += [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "SELECT 1"}]
    assert datasets.answer(shot) == "SELECT 1" and datasets.question(shot) == "q1"
    assert [m["content"] for m in datasets.prompt_messages(shot)] == ["schema", "q0", "SELECT 0", "q1"]
