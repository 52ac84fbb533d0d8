"""An Ollama Modelfile for a GGUF, with the chat template and stop tokens taken from the model's own
tokenizer (a Modelfile without them gives a model that never stops), and a check that the template
renders exactly the prompts the tokenizer's chat template builds, multi-turn chats included.

Ollama's TEMPLATE is a Go template over the chat's messages. `template` writes one from what the
tokenizer's chat template puts around each role's message, and `render` evaluates the part of Go's
template language it uses (as Ollama fills it in), so the check runs without Ollama."""

from __future__ import annotations

import re
from pathlib import Path

from helpers import models
from helpers.errors import CourseError

# Placeholders no real message contains: the chat template is rendered with them to see what it puts
# around each message.
SYSTEM, USER, ASSISTANT, USER2 = "\x00S\x00", "\x00U\x00", "\x00A\x00", "\x00V\x00"
ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)
CONDITION = re.compile(r'^(not\s+)?\.(\w+)$|^eq\s+\.(\w+)\s+"([^"]*)"$')
STOP_LINE = re.compile(r'^PARAMETER\s+stop\s+"(.*)"\s*$', re.M)
TEMPLATE_BLOCK = re.compile(r'^TEMPLATE\s+"""(.*?)"""', re.S | re.M)
PROBES = {  # what the check renders both ways: with and without a system message, one turn and several
    "a system message and a question": [("system", "You translate questions to SQL."), ("user", "How many rows?")],
    "a question alone": [("user", "How many rows?")],
    "a second turn": [("system", "You translate questions to SQL."), ("user", "How many rows?"),
                      ("assistant", "SELECT COUNT(*) FROM t"), ("user", "And how many columns?")],
    "a second turn without a system message": [("user", "How many rows?"), ("assistant", "SELECT COUNT(*) FROM t"),
                                                ("user", "And how many columns?")],
}


def _chat(tokenizer, messages: list[tuple[str, str]], generation_prompt: bool) -> str:
    try:
        return tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in messages], tokenize=False,
                                             add_generation_prompt=generation_prompt)
    except Exception as err:  # jinja's TemplateError, raised by templates that refuse a role (Gemma: system)
        raise CourseError(f"The tokenizer's chat template refused {[r for r, _ in messages]}: {err}. Write this "
                          "Modelfile's TEMPLATE by hand from the model card.") from None


def _after(text: str, marker: str) -> str:
    return text[text.index(marker) + len(marker):]


def _strip(text: str, prefix: str, what: str) -> str:
    if not text.startswith(prefix):
        raise CourseError(f"The chat template does not wrap each message the same way ({what}); write this "
                          "Modelfile's TEMPLATE by hand from the model card.")
    return text[len(prefix):]


def pieces(tokenizer) -> dict[str, str]:
    """What the chat template writes before and after each role's message, what it writes when there is
    no system message (many insert a default one), and the prompt that asks for the reply."""
    full = _chat(tokenizer, [("system", SYSTEM), ("user", USER), ("assistant", ASSISTANT), ("user", USER2)], True)
    marks = [SYSTEM, USER, ASSISTANT, USER2]
    if [full.count(m) for m in marks] != [1] * 4 or sorted(marks, key=full.index) != marks:
        raise CourseError("The chat template does not write each message once and in order; write this Modelfile's "
                          "TEMPLATE by hand from the model card.")
    between = [full[full.index(a) + len(a):full.index(b)] for a, b in zip(marks, marks[1:], strict=False)]
    user_end = _after(_chat(tokenizer, [("system", SYSTEM), ("user", USER)], False), USER)
    assistant_end = _after(_chat(tokenizer, [("system", SYSTEM), ("user", USER), ("assistant", ASSISTANT)], False),
                           ASSISTANT)
    user_start = _strip(between[2], assistant_end, "after an answer")
    alone = _chat(tokenizer, [("user", USER)], False)
    no_system = alone[:alone.index(USER)]
    if not no_system.endswith(user_start) or not between[0].endswith(user_start):
        raise CourseError("The chat template does not start a question the same way each time; write this "
                          "Modelfile's TEMPLATE by hand from the model card.")
    found = {"no_system": no_system[:len(no_system) - len(user_start)], "system_start": full[:full.index(SYSTEM)],
             "system_end": between[0][:len(between[0]) - len(user_start)], "user_start": user_start,
             "user_end": user_end, "assistant_start": _strip(between[1], user_end, "after a question"),
             "assistant_end": assistant_end, "reply": _strip(_after(full, USER2), user_end, "before the reply")}
    if models.adds_bos(tokenizer):  # the runner adds the BOS token: written here too, the model would read two
        for key in ("no_system", "system_start"):
            found[key] = found[key].removeprefix(tokenizer.bos_token)
    return found


def _go_text(text: str) -> str:
    if "{{" in text or '"""' in text:
        raise CourseError("The chat template writes '{{' or '\"\"\"', which an Ollama TEMPLATE cannot hold as text; "
                          "write this Modelfile's TEMPLATE by hand.")
    return text


def template(tokenizer) -> str:
    """Ollama's TEMPLATE (the `.Messages` form, which Ollama fills with the whole chat) for this
    tokenizer's chat template."""
    p = {key: _go_text(value) for key, value in pieces(tokenizer).items()}
    return (f'{{{{ if not .System }}}}{p["no_system"]}{{{{ end }}}}'
            f'{{{{ range .Messages }}}}'
            f'{{{{ if eq .Role "system" }}}}{p["system_start"]}{{{{ .Content }}}}{p["system_end"]}'
            f'{{{{ else if eq .Role "user" }}}}{p["user_start"]}{{{{ .Content }}}}{p["user_end"]}'
            f'{{{{ else if eq .Role "assistant" }}}}{p["assistant_start"]}{{{{ .Content }}}}{p["assistant_end"]}'
            f'{{{{ end }}}}{{{{ end }}}}{p["reply"]}')


def stop_tokens(tokenizer, generation_config=None) -> list[str]:
    """The texts that end a reply: the tokenizer's end-of-sequence token, every end token the model's
    generation config names (chat models often have several), and the special token the chat template
    closes an answer with (Gemma's <end_of_turn>, for one)."""
    ids = getattr(generation_config, "eos_token_id", None)
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    closing = pieces(tokenizer)["assistant_end"].strip()
    special = closing if closing in tokenizer.all_special_tokens or closing in tokenizer.get_added_vocab() else None
    tokens = [tokenizer.eos_token, *tokenizer.convert_ids_to_tokens(ids), special]
    return list(dict.fromkeys(t for t in tokens if t))


def modelfile(gguf: str | Path, tokenizer, generation_config=None, temperature: float = 0.0) -> str:
    """The Modelfile text: FROM the GGUF beside it, the TEMPLATE, one stop line per end token, and
    greedy decoding like the rest of the notebook."""
    stops = "".join(f'PARAMETER stop "{token}"\n' for token in stop_tokens(tokenizer, generation_config))
    return (f"FROM ./{Path(gguf).name}\n"
            f'TEMPLATE """{template(tokenizer)}"""\n'
            f"{stops}"
            f"PARAMETER temperature {temperature:g}\n")


def write_modelfile(gguf: str | Path, tokenizer, generation_config=None) -> Path:
    """Write `Modelfile` next to the GGUF (Ollama resolves FROM relative to the Modelfile)."""
    path = Path(gguf).parent / "Modelfile"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(modelfile(gguf, tokenizer, generation_config))
    return path


def parse(text: str) -> tuple[str, list[str]]:
    """TEMPLATE and stop tokens of a Modelfile's text."""
    found = TEMPLATE_BLOCK.search(text)
    if not found:
        raise CourseError('The Modelfile has no TEMPLATE """...""" block: Ollama would use a generic template.')
    return found.group(1), STOP_LINE.findall(text)


def _tree(go_template: str) -> list:
    """Text, {{ .X }}, {{ if C }} / {{ else if C }} / {{ else }} / {{ end }} and {{ range .X }} as nested
    lists: ("text", s), ("var", name), ("if", condition, then, otherwise), ("range", name, body)."""
    tokens, pos = [], 0
    for action in ACTION.finditer(go_template):
        tokens += [("text", go_template[pos:action.start()]), ("action", action.group(1).strip())]
        pos = action.end()
    tokens.append(("text", go_template[pos:]))

    def block(i: int, closers: tuple[str, ...]) -> tuple[list, int, str | None]:
        nodes = []
        while i < len(tokens):
            kind, value = tokens[i]
            i += 1
            if kind == "text":
                if value:
                    nodes.append(("text", value))
            elif value == "end" or value == "else" or value.startswith("else if "):
                if value not in closers and not (value.startswith("else if ") and "else" in closers):
                    raise ValueError(f"unexpected {{{{ {value} }}}}")
                return nodes, i, value
            elif value.startswith("if "):
                node, i = conditional(value[3:].strip(), i)
                nodes.append(node)
            elif value.startswith("range ."):
                body, i, _ = block(i, ("end",))
                nodes.append(("range", value[len("range ."):], body))
            elif re.fullmatch(r"\.\w+", value):
                nodes.append(("var", value[1:]))
            else:
                raise ValueError(f"unsupported action {{{{ {value} }}}}")
        if closers:
            raise ValueError(f"missing {{{{ {closers[0]} }}}}")
        return nodes, i, None

    def conditional(condition: str, i: int) -> tuple[tuple, int]:
        if not CONDITION.match(condition):
            raise ValueError(f"unsupported condition {condition!r}")
        then, i, closer = block(i, ("end", "else"))
        if closer.startswith("else if "):  # one {{ end }} closes the whole chain
            nested, i = conditional(closer[len("else if "):].strip(), i)
            return ("if", condition, then, [nested]), i
        otherwise: list = []
        if closer == "else":
            otherwise, i, _ = block(i, ("end",))
        return ("if", condition, then, otherwise), i

    nodes, _, _ = block(0, ())
    return nodes


def _truthy(condition: str, dot: dict) -> bool:
    negate, name, eq_name, eq_value = CONDITION.match(condition).groups()
    if eq_name:
        return dot.get(eq_name) == eq_value
    return bool(dot.get(name)) != bool(negate)


def _evaluate(nodes: list, dot: dict) -> str:
    out = []
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "var":
            out.append(str(dot.get(node[1], "")))
        elif node[0] == "if":
            out.append(_evaluate(node[2] if _truthy(node[1], dot) else node[3], dot))
        else:  # range
            out += [_evaluate(node[2], item) for item in dot.get(node[1], [])]
    return "".join(out)


def render(go_template: str, messages: list[tuple[str, str]]) -> str:
    """The prompt Ollama builds from a TEMPLATE for a chat (role, content pairs) before the model's
    reply, filled in as Ollama does: `.System` is the system messages' text, `.Messages` the chat with
    consecutive messages of one role joined."""
    collated: list[dict] = []
    for role, content in messages:
        if collated and collated[-1]["Role"] == role:
            collated[-1]["Content"] += "\n\n" + content
        else:
            collated.append({"Role": role, "Content": content})
    system = "\n\n".join(c for r, c in messages if r == "system")
    return _evaluate(_tree(go_template), {"System": system, "Messages": collated})


def check(modelfile_path: str | Path, tokenizer, generation_config=None) -> dict:
    """Compare a Modelfile with the tokenizer: its TEMPLATE must render the chat template's prompt for
    each of PROBES, and its stop tokens must include every end token. Returns what was checked; raises
    a CourseError naming the first difference."""
    go_template, stops = parse(Path(modelfile_path).read_text())
    bos = tokenizer.bos_token if models.adds_bos(tokenizer) else ""
    for case, messages in PROBES.items():
        expected = _chat(tokenizer, messages, True)
        expected = expected.removeprefix(bos) if bos else expected
        got = render(go_template, messages)
        if got != expected:
            at = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), min(len(got), len(expected)))
            raise CourseError(f"{modelfile_path}: for {case}, the TEMPLATE differs from the tokenizer's chat template at "
                              f"character {at}: {got[at:at + 40]!r} instead of {expected[at:at + 40]!r}.")
    missing = [t for t in stop_tokens(tokenizer, generation_config) if t not in stops]
    if missing:
        raise CourseError(f"{modelfile_path}: no PARAMETER stop for {missing}: the model would not stop after its reply.")
    return {"prompts_checked": len(PROBES), "stop_tokens": stops}
