"""Property-based: no input, however malformed, crashes the validator or loses a valid line."""

import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from helpers.data.chat_format import check_chat, check_preference
from helpers.data.validate import validate_file

KEYS = ["messages", "role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call",
        "tools", "functions", "parallel_tool_calls", "type", "function", "arguments", "id", "input",
        "preferred_output", "non_preferred_output", "text", "image_url", "url"]
ROLES = ["system", "user", "assistant", "tool", "function", "human", ""]

# JSON values built from the format's own vocabulary, so the checks are exercised deeply.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.sampled_from(ROLES) | st.text(max_size=8)
    | st.just("lone \ud800 surrogate") | st.just("<|endoftext|>"),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    max_leaves=25,
)
messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(ROLES)}, optional={
    "content": st.none() | st.text(max_size=20) | json_values, "weight": json_values, "name": json_values,
    "tool_calls": json_values, "tool_call_id": json_values}), max_size=5)
examples = json_values | st.fixed_dictionaries({"messages": messages}, optional={"tools": json_values})


def valid_line(text: str) -> str:
    return json.dumps({"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": text + "!"}]})


junk = (examples.map(json.dumps).map(str.encode)
        | st.binary(max_size=40).map(lambda b: b.replace(b"\n", b" "))
        | st.text(max_size=40).map(lambda t: t.replace("\n", " ").encode("utf-8", "surrogatepass")))
lines = st.lists(st.tuples(st.booleans(), junk, st.text(max_size=30)), min_size=1, max_size=25)


@settings(max_examples=300, deadline=None)
@given(examples)
@example({"messages": [{"role": "system", "content": [{"type": []}]}]})  # an unhashable part type (found by CI)
def test_checks_never_crash(row):
    for check in (check_chat, check_preference):
        for code, message in check(row):
            assert isinstance(code, str) and isinstance(message, str) and message


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines, st.booleans())
@example([(False, b"\xef\xbb\xbf", "")], False)  # a first line that is only a BOM is the file's BOM
def test_no_valid_line_is_ever_lost(tmp_path, spec, bom):
    raw, planted = [], []
    for number, (is_valid, junk_line, text) in enumerate(spec, start=1):
        if is_valid:
            raw.append(valid_line(text).encode())
            planted.append(number)
        else:
            raw.append(junk_line)
    path = tmp_path / "data.jsonl"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + b"\n".join(raw) + b"\n")
    report = validate_file(path)
    assert set(planted) <= set(report.valid_lines)
    assert report.valid == len(report.valid_lines) == len(report.example_tokens)
    content = raw if bom else [raw[0].removeprefix(b"\xef\xbb\xbf"), *raw[1:]]  # a leading BOM marks the file
    assert report.examples == sum(1 for r in content if r.strip())
    assert all(p.line is None or 1 <= p.line <= len(raw) for p in report.errors + report.warnings)
    out = tmp_path / "valid.jsonl"
    assert report.write_valid(out) == report.valid
    again = validate_file(out)
    assert again.valid == report.valid and not [e for e in again.errors if e.line is not None]
