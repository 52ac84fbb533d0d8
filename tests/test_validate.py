"""Whole files: line numbers, file-level rules, statistics, the cost figures and the command line."""

import json

from helpers.data import cost, validate
from helpers.data.validate import describe, main, validate_file

HAPPY = "You are a happy assistant that puts a positive spin on everything."
# The OpenAI cookbook's toy file (Chat_finetuning_data_prep), rewritten here: the last answer
# repeats far past 4,096 tokens.
TOY = [
    [("system", HAPPY), ("user", "I fell off my bike today."),
     ("assistant", "It's great that you're getting exercise outdoors!")],
    [("system", HAPPY), ("user", "I lost my tennis match today."), ("assistant", "It's ok, it happens to everyone."),
     ("user", "But I trained so hard!"), ("assistant", "It will pay off next time."),
     ("user", "I'm going to switch to golf."), ("assistant", "Golf is fun too!"),
     ("user", "I don't even know how to play golf."), ("assistant", "It's easy to learn!")],
    [("user", "I lost my book today."), ("assistant", "You can read everything on ebooks these days!")],
    [("system", HAPPY), ("assistant", "You're great!")],
    [("system", HAPPY), ("user", "I'm hungry."), ("assistant", "Eat a banana!" * 1500)],
]


def line(*turns, **extra):
    return json.dumps({"messages": [{"role": r, "content": c} for r, c in turns], **extra})


def good(i):
    return line(("system", "Answer in one word."), ("user", f"Question {i}?"), ("assistant", f"Answer{i}"))


def write(tmp_path, lines, name="train.jsonl", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes("\n".join(lines).encode(encoding) + b"\n" if isinstance(lines[0], str) else b"\n".join(lines) + b"\n")
    return path


def codes_at(problems):
    return [(p.line, p.code) for p in problems]


def test_the_cookbook_toy_file_figures(tmp_path):
    path = write(tmp_path, [line(*turns) for turns in TOY])
    report = validate_file(path, model="gpt-3.5-turbo-0613")
    s = report.stats
    assert (s["encoding"], s["token_limit"]) == ("cl100k_base", 4096)
    assert s["billed_tokens_per_epoch"] == 4306
    assert (s["default_epochs"], s["estimated_billed_tokens"]) == (20, 86_120)
    assert s["examples_over_limit"] == 1 and (5, "example_too_long") in codes_at(report.warnings)
    assert (s["examples_missing_system"], s["examples_missing_user"]) == (1, 1)
    assert s["messages_per_example"]["max"] == 9
    assert (None, "too_few_examples") in codes_at(report.errors)  # 5 examples: the provider wants 10


def test_every_bad_line_is_reported_and_every_valid_line_kept(tmp_path):
    lines = [good(1), "{not json", good(2), "[1, 2]", "", line(("user", "no reply")), good(3), "NaN"]
    lines += [good(i) for i in range(4, 14)]
    report = validate_file(write(tmp_path, lines))
    assert codes_at(report.errors) == [(2, "invalid_json"), (4, "data_type"),
                                       (6, "example_missing_assistant_message"), (8, "invalid_json")]
    assert (5, "empty_line") in codes_at(report.warnings)
    assert report.examples == 17 and report.valid == 13
    assert report.valid_lines == [1, 3, 7] + list(range(9, 19))
    out = tmp_path / "clean.jsonl"
    assert report.write_valid(out) == 13
    assert out.read_text().splitlines() == [good(i) for i in range(1, 14)]
    assert validate_file(out).ok


def test_pathological_json_is_an_error_not_a_crash(tmp_path):
    lines = [good(i) for i in range(12)] + ["[" * 100_000, '{"messages": "\\ud800"}', "Infinity"]
    report = validate_file(write(tmp_path, lines))
    assert codes_at(report.errors) == [(13, "invalid_json"), (14, "missing_messages_list"), (15, "invalid_json")]
    assert report.valid == 12


def test_a_line_that_is_not_utf8_is_named_and_the_rest_survive(tmp_path):
    lines = [good(i).encode() for i in range(12)]
    lines[3] = good(3).encode().replace(b"Question", b"Questi\xf3n")  # Latin-1, not UTF-8
    report = validate_file(write(tmp_path, lines))
    [error] = report.errors
    assert (error.line, error.code) == (4, "not_utf8") and "byte" in error.message
    assert report.valid == 11


def test_byte_order_mark_depends_on_the_provider(tmp_path):
    path = write(tmp_path, [good(i) for i in range(12)], encoding="utf-8-sig")
    openai = validate_file(path)
    assert openai.ok and openai.valid == 12  # line 1 is kept
    assert (1, "byte_order_mark") in codes_at(openai.warnings)
    assert not [w for w in validate_file(path, provider="azure").warnings if "byte_order" in w.code]
    plain = write(tmp_path, [good(i) for i in range(12)], name="plain.jsonl")
    assert (None, "missing_byte_order_mark") in codes_at(validate_file(plain, provider="azure").warnings)
    assert not [w for w in validate_file(plain).warnings if "byte_order" in w.code]


def test_windows_line_endings_are_fine(tmp_path):
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(b"".join(good(i).encode() + b"\r\n" for i in range(60)))
    report = validate_file(path)
    assert report.ok and report.valid == 60 and not report.warnings


def test_duplicates_point_to_the_first_copy(tmp_path):
    report = validate_file(write(tmp_path, [good(i) for i in range(12)] + [good(2)]))
    [dup] = [w for w in report.warnings if w.code == "duplicate_example"]
    assert dup.line == 13 and "line 3" in dup.message
    assert report.valid == 13  # a duplicate is still a valid example


def test_example_count_thresholds(tmp_path):
    assert (None, "too_few_examples") in codes_at(validate_file(write(tmp_path, [good(i) for i in range(9)])).errors)
    ten = validate_file(write(tmp_path, [good(i) for i in range(10)]))
    assert ten.ok and (None, "few_examples") in codes_at(ten.warnings)
    fifty = validate_file(write(tmp_path, [good(i) for i in range(50)]))
    assert not [w for w in fifty.warnings if w.code == "few_examples"]


def test_file_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(validate, "MAX_FILE_BYTES", 100)
    report = validate_file(write(tmp_path, [good(i) for i in range(12)]))
    assert (None, "file_too_large") in codes_at(report.errors)


def test_unknown_model_is_said_and_counted_with_o200k(tmp_path):
    report = validate_file(write(tmp_path, [good(i) for i in range(12)]), model="my-model")
    [warning] = [w for w in report.warnings if w.code == "unknown_model"]
    assert "o200k_base" in warning.message and "gpt-4o-mini-2024-07-18" in warning.message
    assert report.stats["token_limit"] is None and report.stats["estimated_cost_usd"] is None
    assert report.stats["estimated_billed_tokens"] == cost.default_epochs(12) * sum(report.example_tokens)


def test_the_model_decides_the_encoding_and_the_limit(tmp_path):
    path = write(tmp_path, [line(("user", "Kể cho tôi nghe về phở bò Hà Nội."), ("assistant", "Phở bò " * 300))] * 12)
    old, new = validate_file(path, model="gpt-3.5-turbo-0613"), validate_file(path)
    assert old.stats["encoding"] == "cl100k_base" and new.stats["encoding"] == "o200k_base"
    assert new.stats["tokens_per_example"]["max"] < old.stats["tokens_per_example"]["max"]
    assert old.stats["examples_over_limit"] == 0 and new.stats["examples_over_limit"] == 0


def test_tools_count_towards_tokens(tmp_path):
    tool = {"type": "function", "function": {"name": "weather", "description": "Weather of a city " * 20}}
    plain = validate_file(write(tmp_path, [good(i) for i in range(12)], name="a.jsonl"))
    with_tools = validate_file(write(tmp_path, [json.dumps({**json.loads(good(i)), "tools": [tool]})
                                                for i in range(12)], name="b.jsonl"))
    assert with_tools.ok
    assert with_tools.stats["tokens_per_example"]["min"] > plain.stats["tokens_per_example"]["max"] + 80


def test_preference_files(tmp_path):
    row = {"input": {"messages": [{"role": "user", "content": "Hi"}]},
           "preferred_output": [{"role": "assistant", "content": "Hello! How can I help?"}],
           "non_preferred_output": [{"role": "assistant", "content": "What."}]}
    lines = [json.dumps({**row, "input": {"messages": [{"role": "user", "content": f"Hi {i}"}]}}) for i in range(12)]
    report = validate_file(write(tmp_path, lines), format="preference")
    assert report.ok and report.valid == 12
    assert report.stats["assistant_tokens_per_example"]["min"] > 0
    assert not validate_file(write(tmp_path, lines), format="chat").valid


def test_percentiles_are_the_true_ones():
    d = describe(list(range(1, 102)))  # 1..101
    assert (d["min"], d["max"], d["median"], d["p5"], d["p95"]) == (1, 101, 51, 6, 96)
    assert describe([]) == {}


def test_json_output_and_exit_status(tmp_path, capsys):
    clean = write(tmp_path, [good(i) for i in range(60)], name="clean.jsonl")
    assert main([str(clean), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"examples", "valid", "errors", "warnings", "stats"}
    assert (out["examples"], out["valid"], out["errors"]) == (60, 60, [])
    assert set(out["stats"]) >= {"billed_tokens_per_epoch", "default_epochs", "estimated_billed_tokens",
                                 "examples_over_limit"}
    bad = write(tmp_path, [good(i) for i in range(12)] + ["{"], name="bad.jsonl")
    assert main([str(bad), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["errors"][0] == {
        "line": 13, "code": "invalid_json",
        "message": "not valid JSON: Expecting property name enclosed in double quotes (column 2)"}


def test_text_output_names_file_and_line(tmp_path, capsys):
    bad = write(tmp_path, [good(i) for i in range(12)] + [json.dumps({"messages": [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"},
        {"role": "assistant", "content": "x", "weight": 3}]})])
    assert main([str(bad), "--write-valid", str(tmp_path / "ok.jsonl")]) == 1
    out = capsys.readouterr()
    assert f"{bad}:13: invalid_weight: messages[2].weight is 3" in out.out
    assert "wrote 12 valid example(s)" in out.err and len((tmp_path / "ok.jsonl").read_text().splitlines()) == 12


def test_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path / "nope.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_notebook_rendering_shows_the_problems(tmp_path):
    report = validate_file(write(tmp_path, [good(i) for i in range(12)] + ["{"]))
    page = report._repr_html_()
    assert "1 error(s) to fix" in page and "invalid_json" in page and "<table" in page
    assert report.problems().iloc[0].to_dict()["code"] == "invalid_json"


def test_a_broken_preference_file_names_each_bad_line_and_keeps_the_valid_ones(tmp_path):
    def row(i, **change):
        base = {"input": {"messages": [{"role": "system", "content": "Be Quip."}, {"role": "user", "content": f"Q{i}?"}]},
                "preferred_output": [{"role": "assistant", "content": f"Wow. A{i}. Obviously."}],
                "non_preferred_output": [{"role": "assistant", "content": f"A{i}."}]}
        return json.dumps({**base, **change})

    reply = [{"role": "assistant", "content": "Fine."}]
    missing_output = json.loads(row(13))
    del missing_output["non_preferred_output"]
    broken = {13: json.dumps(missing_output),
              14: row(14, preferred_output=reply + reply),
              15: row(15, input={"messages": [{"role": "user", "content": "Hi"}, *reply]}),
              16: row(16, non_preferred_output=[{"role": "assistant", "content": ""}])}
    path = write(tmp_path, [row(i) for i in range(1, 13)] + list(broken.values()))
    report = validate_file(path, format="preference")
    assert {(p.line, p.code) for p in report.errors} == {
        (13, "missing_preference_key"), (14, "invalid_preference_output"), (15, "input_ends_with_assistant"),
        (16, "empty_preference_output")}
    assert report.valid == 12 and report.write_valid(tmp_path / "ok.jsonl") == 12
    # DPO reads the input once with each output: an example costs more than its input and outputs once
    one = validate_file(write(tmp_path, [row(1)], name="one.jsonl"), format="preference")
    input_only = validate_file(write(tmp_path, [json.dumps({"messages": json.loads(row(1))["input"]["messages"]
                                                            + [{"role": "assistant", "content": "x"}]})],
                                     name="input.jsonl"))
    assert one.example_tokens[0] > 2 * (input_only.example_tokens[0] - 4)


def test_a_reinforcement_file_ends_each_line_with_the_user_and_carries_what_its_grader_reads(tmp_path):
    from helpers.eval import graders

    def row(i, **change):
        return json.dumps({"messages": [{"role": "system", "content": "SQL only."}, {"role": "user", "content": f"Q{i}?"}],
                           "db_id": "shop", "gold_sql": f"SELECT {i}", **change})

    grader = {"type": "multi", "name": "m", "calculate_output": "exact",
              "graders": {"exact": {"type": "string_check", "name": "exact", "operation": "eq",
                                    "input": "{{ sample.output_text }}", "reference": "{{ item.gold_sql }}"}}}
    fields = graders.variables(grader)
    ends_with_answer = json.loads(row(13))
    ends_with_answer["messages"].append({"role": "assistant", "content": "SELECT 13"})
    no_gold = json.loads(row(14))
    del no_gold["gold_sql"]
    lines = [row(i) for i in range(1, 13)] + [json.dumps(ends_with_answer), json.dumps(no_gold),
                                                json.dumps({"input": {"messages": []}})]
    report = validate_file(write(tmp_path, lines), format="reinforcement", grader_fields=fields)
    assert codes_at(report.errors) == [(13, "last_message_not_user"), (14, "missing_grader_field"),
                                       (15, "missing_messages_list")]
    assert "the grader reads {{ item.gold_sql }}, but this line has no gold_sql" in report.errors[1].message
    assert "looks like a preference example" in report.errors[2].message
    assert report.valid == 12 and report.write_valid(tmp_path / "ok.jsonl") == 12
    # without the grader, the line without the field is valid: only the grader knows what it reads
    assert validate_file(write(tmp_path, lines, name="b.jsonl"), format="reinforcement").valid == 13
