"""The rules of OpenAI's fine-tuning formats (chat, preference and reinforcement), one example at a time.

Each check yields (code, message) pairs; CODES lists every code with its severity and meaning.
`helpers.data.validate` applies them to a whole file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

CODES = {  # code: (severity, what it means)
    "not_utf8": ("error", "the line is not valid UTF-8 text"),
    "invalid_json": ("error", "the line is not one JSON value"),
    "data_type": ("error", "the line is JSON but not an object"),
    "unrecognized_example_key": ("error", "the example has a top-level key the format lacks"),
    "missing_messages_list": ("error", "no 'messages' list"),
    "empty_messages_list": ("error", "'messages' is an empty list"),
    "message_data_type": ("error", "a message is not an object"),
    "message_missing_key": ("error", "a message has no 'role'"),
    "unrecognized_role": ("error", "a role other than system, user, assistant, tool, function"),
    "message_unrecognized_key": ("error", "a message key its role does not allow"),
    "missing_content": ("error", "a message lacks content it needs"),
    "content_type": ("error", "content is neither text nor a list of content parts"),
    "invalid_name": ("error", "'name' is missing where required, or not a non-empty string"),
    "weight_not_allowed": ("error", "'weight' on a message that is not the assistant's"),
    "invalid_weight": ("error", "'weight' other than 0 or 1"),
    "invalid_tool_calls": ("error", "'tool_calls' is not a list of function calls"),
    "missing_tool_call_id": ("error", "a tool message without 'tool_call_id'"),
    "unknown_tool_call_id": ("error", "a tool message answering no earlier tool call"),
    "invalid_function_call": ("error", "'function_call' is not {name, arguments}"),
    "invalid_tools": ("error", "'tools' is not a list of function definitions"),
    "invalid_functions": ("error", "'functions' is not a list of 1-128 function definitions"),
    "invalid_parallel_tool_calls": ("error", "'parallel_tool_calls' is not true or false"),
    "example_missing_assistant_message": ("error", "no assistant message to learn from"),
    "no_trained_assistant_message": ("error", "every assistant message has weight 0"),
    "missing_preference_key": ("error", "a preference example lacks a required key"),
    "invalid_input": ("error", "'input' is not an object with a non-empty 'messages' list"),
    "input_ends_with_assistant": ("error", "the input already ends with the assistant's reply"),
    "input_not_ending_with_user": ("error", "the input's last message is not the user turn the outputs answer"),
    "invalid_preference_output": ("error", "an output is not a list of one assistant message"),
    "preference_output_not_text": ("error", "an output carries tool calls or a weight: DPO compares text replies"),
    "empty_preference_output": ("error", "an output's reply is empty: there is nothing to prefer"),
    "last_message_not_user": ("error", "a reinforcement example does not end with the user turn the model answers"),
    "missing_grader_field": ("error", "a reinforcement example lacks a field its grader reads"),
    "too_few_examples": ("error", "fewer valid examples than the provider accepts"),
    "file_too_large": ("error", "the file is larger than the provider accepts"),
    "empty_line": ("warning", "a blank line; it is skipped"),
    "byte_order_mark": ("warning", "a UTF-8 byte-order mark the provider does not expect"),
    "missing_byte_order_mark": ("warning", "no byte-order mark, which Azure OpenAI documents"),
    "duplicate_example": ("warning", "the same example as an earlier line"),
    "empty_assistant_content": ("warning", "an assistant message trained on empty text"),
    "identical_preference_outputs": ("warning", "preferred and non-preferred outputs are equal"),
    "example_too_long": ("warning", "more tokens than the model's limit: it will be truncated"),
    "unknown_model": ("warning", "the course knows no token limit or price for the model"),
    "few_examples": ("warning", "fewer examples than the provider recommends"),
    "missing_system_message": ("warning", "examples without a system message"),
    "missing_user_message": ("warning", "examples without a user message"),
}

ROLES = ("system", "user", "assistant", "tool", "function")
PLAIN_ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = {
    "system": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "weight", "tool_calls", "function_call", "refusal"},
    "tool": {"role", "content", "tool_call_id"},
    "function": {"role", "content", "name"},
}
EXAMPLE_KEYS = {
    "chat": {"messages", "tools", "parallel_tool_calls", "functions"},
    "preference": {"input", "preferred_output", "non_preferred_output"},
}
INPUT_KEYS = {"messages", "tools", "parallel_tool_calls"}


def _kind(value) -> str:
    """JSON's name for a Python value's type, for messages."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _is_name(value) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _check_function(spec, where: str, code: str) -> Iterator[tuple[str, str]]:
    """A function definition: {name, description?, parameters?, strict?}."""
    if not isinstance(spec, dict) or not _is_name(spec.get("name")):
        yield code, f"{where} needs a 'name' string"
        return
    if "description" in spec and not isinstance(spec["description"], str):
        yield code, f"{where}.description must be a string"
    if "parameters" in spec and not isinstance(spec["parameters"], dict):
        yield code, f"{where}.parameters must be a JSON schema object"


def _check_call(call, where: str, code: str) -> Iterator[tuple[str, str]]:
    """A function call: {name, arguments} with arguments a JSON string."""
    if not isinstance(call, dict) or not _is_name(call.get("name")):
        yield code, f"{where} needs a 'name' string"
    elif not isinstance(call.get("arguments"), str):
        yield code, f"{where}.arguments must be a string of JSON, got {_kind(call.get('arguments'))}"


def _check_content(content, where: str, role: str) -> Iterator[tuple[str, str]]:
    """Text, or a list of text (and, for users, image) content parts."""
    if isinstance(content, str):
        return
    allowed = {"text", "image_url"} if role == "user" else {"text"}
    if not isinstance(content, list) or not content:
        yield "content_type", f"{where}.content must be text, got {_kind(content)}"
        return
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        ok = (kind == "text" and isinstance(part.get("text"), str)) or (
            kind == "image_url" and isinstance(part.get("image_url"), dict)
            and isinstance(part["image_url"].get("url"), str))
        if not ok or kind not in allowed:  # `ok` first: an unhashable type (a list) is never looked up
            yield "content_type", (f"{where}.content[{j}] must be {{'type': 'text', 'text': ...}}"
                                   + (" or an image_url part" if role == "user" else ""))
            return


def _check_message(m, where: str, call_ids: set) -> Iterator[tuple[str, str]]:
    """One message: role, allowed keys, content, name, weight and calls."""
    if not isinstance(m, dict):
        yield "message_data_type", f"{where} must be an object, got {_kind(m)}"
        return
    if "role" not in m:
        yield "message_missing_key", f"{where} has no 'role'"
        return
    role = m["role"]
    if role not in ROLES:
        yield "unrecognized_role", f"{where} has role {role!r}; use one of {', '.join(ROLES)}"
        return
    for key in sorted(set(m) - MESSAGE_KEYS[role], key=str):
        if key == "weight":
            yield "weight_not_allowed", f"{where}: 'weight' belongs on assistant messages, not {role}"
        else:
            yield "message_unrecognized_key", (f"{where} ({role}) has unknown key {key!r}; allowed: "
                                               + ", ".join(sorted(MESSAGE_KEYS[role])))
    content = m.get("content")
    if content is None and not (role == "assistant" and (m.get("tool_calls") or m.get("function_call"))):
        yield "missing_content", f"{where} ({role}) has no 'content'" + (
            " (or 'tool_calls')" if role == "assistant" else "")
    elif content is not None:
        yield from _check_content(content, where, role)
    if ("name" in m or role == "function") and "name" in MESSAGE_KEYS[role] and not _is_name(m.get("name")):
        yield "invalid_name", f"{where} ({role}) needs 'name' as a non-empty string"
    if role == "assistant":
        yield from _check_assistant(m, where, call_ids)
    if role == "tool":
        call_id = m.get("tool_call_id")
        if not isinstance(call_id, str):
            yield "missing_tool_call_id", f"{where} (tool) needs the 'tool_call_id' it answers"
        elif call_id not in call_ids:
            yield "unknown_tool_call_id", f"{where} answers tool call {call_id!r}, which no earlier assistant message made"


def _check_assistant(m: dict, where: str, call_ids: set) -> Iterator[tuple[str, str]]:
    """weight, tool_calls and function_call of an assistant message."""
    if "weight" in m and (type(m["weight"]) is not int or m["weight"] not in (0, 1)):
        yield "invalid_weight", f"{where}.weight is {json.dumps(m['weight'])}; use 0 (skip) or 1 (train)"
    if "tool_calls" in m:
        calls = m["tool_calls"]
        if not isinstance(calls, list) or not calls:
            yield "invalid_tool_calls", f"{where}.tool_calls must be a non-empty list"
            return
        for k, call in enumerate(calls):
            at = f"{where}.tool_calls[{k}]"
            if not isinstance(call, dict) or not isinstance(call.get("id"), str) or call.get("type") != "function":
                yield "invalid_tool_calls", f"{at} needs an 'id' string and \"type\": \"function\""
                continue
            call_ids.add(call["id"])
            yield from _check_call(call.get("function"), f"{at}.function", "invalid_tool_calls")
    if "function_call" in m:
        yield from _check_call(m["function_call"], f"{where}.function_call", "invalid_function_call")
    if m.get("content") == "" and m.get("weight", 1) != 0 and not m.get("tool_calls"):
        yield "empty_assistant_content", f"{where} (assistant) is trained on an empty reply"


def _check_definitions(row: dict) -> Iterator[tuple[str, str]]:
    """tools, functions and parallel_tool_calls at the top of an example."""
    if "tools" in row:
        tools = row["tools"]
        if not isinstance(tools, list):
            yield "invalid_tools", f"'tools' must be a list, got {_kind(tools)}"
        else:
            for k, tool in enumerate(tools):
                if not isinstance(tool, dict) or tool.get("type") != "function":
                    yield "invalid_tools", f"tools[{k}] needs \"type\": \"function\" and a 'function'"
                else:
                    yield from _check_function(tool.get("function"), f"tools[{k}].function", "invalid_tools")
    if "functions" in row:
        functions = row["functions"]
        if not isinstance(functions, list) or not 1 <= len(functions) <= 128:
            yield "invalid_functions", "'functions' must be a list of 1 to 128 definitions"
        else:
            for k, spec in enumerate(functions):
                yield from _check_function(spec, f"functions[{k}]", "invalid_functions")
    if "parallel_tool_calls" in row and not isinstance(row["parallel_tool_calls"], bool):
        yield "invalid_parallel_tool_calls", "'parallel_tool_calls' must be true or false"


def _check_messages(messages, prefix: str = "") -> Iterator[tuple[str, str]]:
    """The messages list of an example and the assistant turn it must train on."""
    if not isinstance(messages, list):
        yield "missing_messages_list", f"{prefix}'messages' must be a list of messages, got {_kind(messages)}"
        return
    if not messages:
        yield "empty_messages_list", f"{prefix}'messages' is empty; add the conversation to learn from"
        return
    call_ids: set = set()
    for i, m in enumerate(messages):
        if not _is_plain(m):
            yield from _check_message(m, f"{prefix}messages[{i}]", call_ids)


def _is_plain(m) -> bool:
    """Fast path: a {role, content} message with text content passes every message rule."""
    return (type(m) is dict and len(m) == 2 and type(m.get("content")) is str
            and m.get("role") in PLAIN_ROLES and (m["content"] or m["role"] != "assistant"))


def _check_unknown_keys(row: dict, allowed: set, where: str = "example") -> Iterator[tuple[str, str]]:
    for key in sorted(set(row) - allowed, key=str):
        yield "unrecognized_example_key", f"{where} has unknown key {key!r}; allowed: {', '.join(sorted(allowed))}"


def check_chat(row) -> Iterator[tuple[str, str]]:
    """Problems of one supervised (chat) example, as (code, message) pairs."""
    if not isinstance(row, dict):
        yield "data_type", f"each line must be a JSON object, got {_kind(row)}"
        return
    if "messages" not in row and "preferred_output" in row:
        yield "missing_messages_list", "no 'messages': this looks like a preference example: check it with format 'preference'"
        return
    yield from _check_unknown_keys(row, EXAMPLE_KEYS["chat"])
    if "messages" not in row:
        yield "missing_messages_list", "the example has no 'messages' list"
        return
    yield from _check_definitions(row)
    yield from _check_messages(row["messages"])
    messages = row["messages"] if isinstance(row["messages"], list) else []
    replies = [m for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
    if messages and not replies:
        yield "example_missing_assistant_message", "no assistant message: add the reply the model should learn"
    elif replies and all(m.get("weight", 1) == 0 for m in replies):
        yield "no_trained_assistant_message", "every assistant message has weight 0, so nothing is learned"


def check_preference(row) -> Iterator[tuple[str, str]]:
    """Problems of one preference (DPO) example, as (code, message) pairs."""
    if not isinstance(row, dict):
        yield "data_type", f"each line must be a JSON object, got {_kind(row)}"
        return
    if "messages" in row and "input" not in row:
        yield "missing_preference_key", ("no 'input': this looks like a supervised chat example; a preference (DPO) "
                                         "example has 'input', 'preferred_output' and 'non_preferred_output'")
        return
    yield from _check_unknown_keys(row, EXAMPLE_KEYS["preference"])
    missing = [k for k in ("input", "preferred_output", "non_preferred_output") if k not in row]
    for key in missing:
        yield "missing_preference_key", f"the example has no {key!r}"
    if "input" in row:
        given = row["input"]
        if not isinstance(given, dict) or not isinstance(given.get("messages"), list) or not given["messages"]:
            yield "invalid_input", "'input' must be an object with a non-empty 'messages' list"
        else:
            yield from _check_unknown_keys(given, INPUT_KEYS, "input")
            yield from _check_definitions(given)
            yield from _check_messages(given["messages"], "input.")
            last = given["messages"][-1]
            role = last.get("role") if isinstance(last, dict) else None
            if role == "assistant":
                yield "input_ends_with_assistant", ("input.messages ends with an assistant reply; end it with the "
                                                    "user turn and put the replies in the two outputs")
            elif role in ROLES and role != "user":
                yield "input_not_ending_with_user", (f"input.messages ends with a {role} message; end it with the "
                                                     "user turn that both outputs answer")
    for key in ("preferred_output", "non_preferred_output"):
        if key not in row:
            continue
        out = row[key]
        if not (isinstance(out, list) and len(out) == 1 and isinstance(out[0], dict)
                and out[0].get("role") == "assistant"):
            count = f"a list of {len(out)}" if isinstance(out, list) else _kind(out)
            yield "invalid_preference_output", (f"{key!r} must be a list of exactly one assistant message, got "
                                                f"{count}")
            continue
        message = out[0]
        extra = sorted(k for k in ("tool_calls", "function_call", "weight") if k in message)
        if extra:
            yield "preference_output_not_text", f"{key}[0] has {', '.join(extra)}; DPO outputs are text replies only"
        found = [(c, m) for c, m in _check_message(message, f"{key}[0]", set()) if c != "empty_assistant_content"]
        yield from found
        content = message.get("content")
        if not found and not extra and not (_text(content) or "").strip():
            yield "empty_preference_output", f"{key}[0] has an empty reply; write the reply this side stands for"
    if not missing and row["preferred_output"] == row["non_preferred_output"]:
        yield "identical_preference_outputs", "preferred and non-preferred outputs are the same: nothing to learn"


def check_reinforcement(row, grader_fields: frozenset = frozenset()) -> Iterator[tuple[str, str]]:
    """Problems of one reinforcement fine-tuning example: chat messages ending with the user's turn (the
    model writes the reply, the grader scores it), and every `item.*` field the grader reads."""
    if not isinstance(row, dict):
        yield "data_type", f"each line must be a JSON object, got {_kind(row)}"
        return
    if "messages" not in row:
        hint = ": this looks like a preference example" if "input" in row else ""
        yield "missing_messages_list", f"the example has no 'messages' list{hint}"
        return
    yield from _check_definitions(row)
    yield from _check_messages(row["messages"])
    messages = row["messages"] if isinstance(row["messages"], list) else []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    if messages and last.get("role") != "user":
        yield "last_message_not_user", (f"messages ends with a {last.get('role')!r} message; a reinforcement example "
                                        "ends with the user turn the model answers (put a reference answer in a "
                                        "field of the line, such as 'reference_answer', for the grader to read)")
    for field in sorted(grader_fields):
        try:
            field_value(field, {"item": row})
        except MissingField as missing:
            yield "missing_grader_field", (f"the grader reads {{{{ {field} }}}}, but this line has no "
                                           f"{'.'.join(missing.walked[1:])}; add it to every line")


class MissingField(LookupError):
    """A field path leads nowhere; `walked` are its parts up to and including the missing one."""

    def __init__(self, walked: list[str]):
        super().__init__(".".join(walked))
        self.walked = walked


FIELD_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\[\d+\]")


def field_value(path: str, scope: dict):
    """The value a grader's template path names (`item.a.b`, `sample.output_json.x[0]`) in `scope`,
    or MissingField."""
    value, walked = scope, []
    for part in FIELD_PART.findall(path):
        walked.append(part)
        try:
            value = value[int(part[1:-1])] if part.startswith("[") else value[part]
        except (KeyError, IndexError, TypeError):
            raise MissingField(walked) from None
    return value


def _text(content) -> str | None:
    """The text of a message's content: a string, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return None


def example_messages(row: dict, fmt: str) -> tuple[list[dict], dict]:
    """The messages a valid example trains on, and its tool definitions (for token counts). A preference
    example is read twice, its input with each output: DPO scores both replies in full."""
    if fmt == "reinforcement":
        return row["messages"], row
    if fmt == "preference":
        given = row["input"]
        return given["messages"] + row["preferred_output"] + given["messages"] + row["non_preferred_output"], given
    return row["messages"], row


CHECKS = {"chat": check_chat, "preference": check_preference, "reinforcement": check_reinforcement}
