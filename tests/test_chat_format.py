"""Every format rule: an example that breaks it gets its code, the fixed example gets none."""

import copy

import pytest

from helpers.data.chat_format import CODES, check_chat, check_preference, check_reinforcement

U = {"role": "user", "content": "Hi"}
A = {"role": "assistant", "content": "Hello!"}
S = {"role": "system", "content": "Be brief."}
CALL = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\": \"Hue\"}"}}
TOOL = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}


def chat(*messages, **extra):
    return {"messages": list(messages), **extra}


def pref(**change):
    row = {"input": {"messages": [U]}, "preferred_output": [A],
           "non_preferred_output": [{"role": "assistant", "content": "Go away."}]}
    row.update(change)
    return row


# (code, example that breaks the rule, the same example fixed)
CHAT_CASES = [
    ("data_type", ["messages"], chat(U, A)),
    ("unrecognized_example_key", chat(U, A, label="x"), chat(U, A)),
    ("missing_messages_list", {"conversation": [U, A]}, chat(U, A)),
    ("missing_messages_list", {"messages": "Hi"}, chat(U, A)),
    ("empty_messages_list", chat(), chat(U, A)),
    ("message_data_type", chat("Hi", A), chat(U, A)),
    ("message_missing_key", chat({"content": "Hi"}, A), chat(U, A)),
    ("unrecognized_role", chat({"role": "human", "content": "Hi"}, A), chat(U, A)),
    ("message_unrecognized_key", chat({**U, "id": 3}, A), chat(U, A)),
    ("missing_content", chat({"role": "user"}, A), chat(U, A)),
    ("missing_content", chat(U, {"role": "assistant"}), chat(U, A)),
    ("content_type", chat({"role": "user", "content": 42}, A), chat(U, A)),
    ("content_type", chat({"role": "system", "content": [{"type": ["text"]}]}, U, A), chat(S, U, A)),
    ("content_type", chat(U, {"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}),
     chat(U, {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]})),
    ("invalid_name", chat({**U, "name": 7}, A), chat({**U, "name": "lan"}, A)),
    ("invalid_name", chat(U, {"role": "function", "content": "{}"}, A),
     chat(U, {"role": "function", "name": "weather", "content": "{}"}, A)),
    ("weight_not_allowed", chat({**U, "weight": 0}, A), chat(U, {**A, "weight": 0}, U, A)),
    ("invalid_weight", chat(U, {**A, "weight": 0.5}), chat(U, {**A, "weight": 1})),
    ("invalid_weight", chat(U, {**A, "weight": True}), chat(U, {**A, "weight": 1})),
    ("invalid_tool_calls", chat(U, {"role": "assistant", "tool_calls": {"id": "call_1"}}),
     chat(U, {"role": "assistant", "tool_calls": [CALL]}, {"role": "tool", "tool_call_id": "call_1", "content": "sun"}, A)),
    ("invalid_tool_calls",
     chat(U, {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "weather", "arguments": {}}}]}),
     chat(U, {"role": "assistant", "tool_calls": [CALL]})),
    ("missing_tool_call_id", chat(U, {"role": "assistant", "tool_calls": [CALL]}, {"role": "tool", "content": "sun"}, A),
     chat(U, {"role": "assistant", "tool_calls": [CALL]}, {"role": "tool", "tool_call_id": "call_1", "content": "sun"}, A)),
    ("unknown_tool_call_id", chat(U, {"role": "tool", "tool_call_id": "call_1", "content": "sun"}, A),
     chat(U, {"role": "assistant", "tool_calls": [CALL]}, {"role": "tool", "tool_call_id": "call_1", "content": "sun"}, A)),
    ("invalid_function_call", chat(U, {"role": "assistant", "function_call": {"name": "weather"}}),
     chat(U, {"role": "assistant", "function_call": {"name": "weather", "arguments": "{}"}})),
    ("invalid_tools", chat(U, A, tools=[{"type": "function", "function": {"description": "no name"}}]), chat(U, A, tools=[TOOL])),
    ("invalid_tools", chat(U, A, tools={"weather": TOOL}), chat(U, A, tools=[TOOL])),
    ("invalid_functions", chat(U, A, functions=[]), chat(U, A, functions=[{"name": "weather"}])),
    ("invalid_parallel_tool_calls", chat(U, A, tools=[TOOL], parallel_tool_calls="yes"),
     chat(U, A, tools=[TOOL], parallel_tool_calls=False)),
    ("example_missing_assistant_message", chat(S, U), chat(S, U, A)),
    ("no_trained_assistant_message", chat(U, {**A, "weight": 0}), chat(U, {**A, "weight": 0}, U, A)),
    ("empty_assistant_content", chat(U, {"role": "assistant", "content": ""}), chat(U, A)),
]

PREFERENCE_CASES = [
    ("data_type", "text", pref()),
    ("missing_preference_key", {"input": {"messages": [U]}, "preferred_output": [A]}, pref()),
    ("unrecognized_example_key", pref(preferred_completion=[A]), pref()),
    ("invalid_input", pref(input={"messages": []}), pref()),
    ("input_ends_with_assistant", pref(input={"messages": [U, A]}), pref(input={"messages": [U, A, U]})),
    ("invalid_preference_output", pref(preferred_output=[A, A]), pref()),
    ("invalid_preference_output", pref(non_preferred_output=[U]), pref()),
    ("missing_content", pref(preferred_output=[{"role": "assistant"}]), pref()),
    ("unrecognized_role", pref(input={"messages": [{"role": "human", "content": "Hi"}]}), pref()),
    ("identical_preference_outputs", pref(non_preferred_output=[A]), pref()),
    ("input_not_ending_with_user", pref(input={"messages": [U, {"role": "system", "content": "Be brief."}]}),
     pref(input={"messages": [{"role": "system", "content": "Be brief."}, U]})),
    ("empty_preference_output", pref(non_preferred_output=[{"role": "assistant", "content": "  "}]), pref()),
    ("empty_preference_output", pref(preferred_output=[{"role": "assistant", "content": [{"type": "text", "text": ""}]}]),
     pref()),
    ("preference_output_not_text", pref(preferred_output=[{**A, "weight": 1}]), pref()),
    ("preference_output_not_text", pref(non_preferred_output=[{"role": "assistant", "content": None, "tool_calls": [CALL]}]),
     pref()),
]


def codes(check, row):
    return [code for code, _ in check(row)]


def errors(check, row):
    return [code for code in codes(check, row) if CODES[code][0] == "error"]


@pytest.mark.parametrize("code,bad,good", CHAT_CASES, ids=[c[0] for c in CHAT_CASES])
def test_chat_rule(code, bad, good):
    assert code in codes(check_chat, bad)
    assert codes(check_chat, good) == []


@pytest.mark.parametrize("code,bad,good", PREFERENCE_CASES, ids=[c[0] for c in PREFERENCE_CASES])
def test_preference_rule(code, bad, good):
    assert code in codes(check_preference, bad)
    assert codes(check_preference, good) == []


FIELDS = frozenset({"item.reference.rows[0]", "item.db_id"})
REF = {"db_id": "shop", "reference": {"rows": [1]}}
REINFORCEMENT_CASES = [
    ("last_message_not_user", chat(S, U, A, **REF), chat(S, U, **REF)),
    ("last_message_not_user", chat(U, S, **REF), chat(S, U, **REF)),
    ("missing_grader_field", chat(S, U, db_id="shop"), chat(S, U, db_id="shop", reference={"rows": [2]})),
    ("missing_grader_field", chat(S, U, db_id="shop", reference={"rows": []}), chat(S, U, db_id="shop", reference={"rows": [0]})),
]


@pytest.mark.parametrize("code,bad,good", REINFORCEMENT_CASES, ids=[c[0] for c in REINFORCEMENT_CASES])
def test_reinforcement_rule(code, bad, good):
    assert code in [c for c, _ in check_reinforcement(bad, FIELDS)]
    assert list(check_reinforcement(good, FIELDS)) == []


def test_every_line_level_code_has_a_failing_case():
    covered = {c[0] for c in CHAT_CASES + PREFERENCE_CASES + REINFORCEMENT_CASES}
    file_level = {"not_utf8", "invalid_json", "too_few_examples", "file_too_large", "empty_line",
                  "byte_order_mark", "missing_byte_order_mark", "duplicate_example", "example_too_long",
                  "unknown_model", "few_examples", "missing_system_message", "missing_user_message"}
    assert set(CODES) - covered == file_level  # the file-level ones are tested in test_validate.py


def test_messages_say_where_the_problem_is():
    [(code, message)] = check_chat(chat(U, A, {"role": "assistant", "content": "x", "weight": "1"}))
    assert code == "invalid_weight" and "messages[2].weight" in message and "0 (skip) or 1 (train)" in message


def test_a_chat_line_checked_as_preference_says_so():
    [(code, message)] = check_preference(chat(U, A))
    assert code == "missing_preference_key" and "supervised chat example" in message


def test_a_preference_line_checked_as_chat_says_so():
    [(code, message)] = check_chat(pref())
    assert code == "missing_messages_list" and "preference" in message


def test_checks_do_not_change_the_example():
    row = chat(U, {"role": "assistant", "tool_calls": [CALL]}, {"role": "tool", "tool_call_id": "call_1", "content": "x"}, A)
    before = copy.deepcopy(row)
    list(check_chat(row))
    assert row == before
