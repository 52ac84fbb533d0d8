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


def test_frame_round_trip_keeps_every_example_exactly():
    frame = datasets.to_frame(MIXED)
    assert list(frame.columns) == ["messages", "tools"] and len(frame) == 3
    assert datasets.from_frame(frame) == MIXED


def test_dataset_round_trip_drops_the_nulls_arrow_adds():
    ds = datasets.to_dataset(MIXED)
    assert ds.num_rows == 3 and "messages" in ds.column_names
    assert ds[2]["messages"][0].get("weight", "absent") is None  # what Arrow does to absent keys
    assert datasets.from_dataset(ds) == MIXED


def test_jsonl_round_trip(tmp_path):
    path = datasets.write_jsonl(MIXED, tmp_path / "mixed.jsonl")
    assert datasets.read_jsonl(path) == MIXED
    assert not list(tmp_path.glob("*.tmp"))


def test_chat_rows_from_table_columns():
    import pandas as pd

    table = pd.DataFrame({"question": ["2+2?", "3+3?"], "answer": [4, 6]})
    rows = datasets.chat_rows(table, "question", "answer", system="Answer with a number.")
    assert rows[1]["messages"] == [{"role": "system", "content": "Answer with a number."},
                                   {"role": "user", "content": "3+3?"}, {"role": "assistant", "content": "6"}]
    with pytest.raises(KeyError, match="no column 'reply'.*question, answer"):
        datasets.chat_rows(table, "question", "reply")


def test_split_is_seeded_and_a_partition():
    rows = [{"messages": [{"role": "user", "content": str(i)}, {"role": "assistant", "content": "x"}]}
            for i in range(50)]
    train, validation = datasets.split_rows(rows, 0.2, seed=3)
    assert (len(train), len(validation)) == (40, 10)
    assert sorted(map(json.dumps, train + validation)) == sorted(map(json.dumps, rows))
    assert (train, validation) == datasets.split_rows(rows, 0.2, seed=3)
    assert validation != datasets.split_rows(rows, 0.2, seed=4)[1]
    with pytest.raises(ValueError, match="between 0 and 1"):
        datasets.split_rows(rows, 1.5)
