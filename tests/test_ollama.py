"""The Ollama Modelfile: its template renders what the tokenizer's chat template renders, and it
stops where the model's end tokens say (Ollama itself is not installable here)."""

import copy

import pytest
from transformers import AutoTokenizer, GenerationConfig

from helpers import models
from helpers.errors import CourseError
from helpers.serve import ollama

# A template in the style of Llama 3: no default system prompt, its own end-of-turn token.
LLAMA3_STYLE = ("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
                "{{ m['content'] }}<|eot_id|>{% endfor %}"
                "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")


@pytest.fixture(scope="module")
def smollm():
    folder = models.embedded_model_dir()
    return AutoTokenizer.from_pretrained(folder), GenerationConfig.from_pretrained(folder)


def test_render_fills_ollamas_template_as_ollama_does():
    template = ('{{ if not .System }}[default]{{ end }}{{ range .Messages }}{{ if eq .Role "system" }}S:{{ .Content }}|'
                '{{ else if eq .Role "user" }}U:{{ .Content }}|{{ else }}A:{{ .Content }}|{{ end }}{{ end }}reply:')
    assert ollama.render(template, [("system", "be brief"), ("user", "hi")]) == "S:be brief|U:hi|reply:"
    chat = [("user", "hi"), ("assistant", "hello"), ("user", "bye")]
    assert ollama.render(template, chat) == "[default]U:hi|A:hello|U:bye|reply:"
    assert ollama.render(template, [("user", "a"), ("user", "b")]) == "[default]U:a\n\nb|reply:"  # Ollama joins a role's run
    assert ollama.render("{{ if .System }}{{ .System }}{{ else }}none{{ end }}.", [("system", "x")]) == "x."
    for broken, problem in (("{{ if .System }}x", "missing"), ("{{ end }}", "unexpected"), ("{{ .A | upper }}", "unsupported")):
        with pytest.raises(ValueError, match=problem):
            ollama.render(broken, [])


def test_the_modelfile_renders_smollms_chat_template_and_stops_at_its_end_token(smollm, tmp_path):
    tokenizer, generation = smollm
    path = ollama.write_modelfile(tmp_path / "model-q8_0.gguf", tokenizer, generation)
    text = path.read_text()
    assert text.startswith("FROM ./model-q8_0.gguf\n") and 'PARAMETER stop "<|im_end|>"' in text
    go_template, stops = ollama.parse(text)
    chats = [[("system", "Schema: t(a)"), ("user", "Count t.")],
             [("user", "Count t.")],  # SmolLM2 inserts its default system prompt here, and only here
             [("system", "Schema: t(a)"), ("user", "Count t."), ("assistant", "SELECT COUNT(*) FROM t"), ("user", "And a?")],
             [("user", "Count t."), ("assistant", "SELECT 1"), ("user", "Again.")]]
    for chat in chats:
        expected = tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in chat], tokenize=False,
                                                 add_generation_prompt=True)
        assert ollama.render(go_template, chat) == expected
    assert expected.count("You are a helpful AI assistant") == 1
    assert tokenizer.convert_ids_to_tokens(generation.eos_token_id) in stops
    assert ollama.check(path, tokenizer, generation) == {"prompts_checked": 4, "stop_tokens": ["<|im_end|>"]}


def test_another_chat_template_its_bos_and_its_end_tokens_are_carried_over(tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(models.embedded_model_dir(), add_bos_token=True)  # adds BOS itself
    tokenizer.chat_template = LLAMA3_STYLE
    generation = GenerationConfig(eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|endoftext|>")])
    path = ollama.write_modelfile(tmp_path / "m.gguf", tokenizer, generation)
    template, stops = ollama.parse(path.read_text())
    assert stops == ["<|im_end|>", "<|endoftext|>"]
    # the runner adds the BOS token when it tokenizes, so the template must not write it a second time
    assert not ollama.render(template, [("user", "q")]).startswith(tokenizer.bos_token)
    assert "You are a helpful AI assistant" not in template  # this template has no default system prompt
    assert ollama.check(path, tokenizer, generation)["prompts_checked"] == 4


def test_a_template_that_refuses_a_role_gets_a_clear_error(smollm):
    tokenizer = copy.deepcopy(smollm[0])
    tokenizer.chat_template = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not "
                               "supported') }}{% endif %}<t>{{ m['content'] }}</t>{% endfor %}")
    with pytest.raises(CourseError, match="refused .*System role not supported.*by hand"):
        ollama.template(tokenizer)


def test_a_modelfile_without_the_template_or_a_stop_token_is_caught(smollm, tmp_path):
    tokenizer, generation = smollm
    path = ollama.write_modelfile(tmp_path / "m.gguf", tokenizer, generation)
    good = path.read_text()
    path.write_text(good.replace('PARAMETER stop "<|im_end|>"\n', ""))
    with pytest.raises(CourseError, match=r"no PARAMETER stop for \['<\|im_end\|>'\]: the model would not stop"):
        ollama.check(path, tokenizer, generation)
    path.write_text(good.replace("{{ if not .System }}", "{{ if .System }}"))  # the default prompt in the wrong place
    misplaced = r"for a system message and a question, the TEMPLATE differs .* at character 23: .are a helpful"
    with pytest.raises(CourseError, match=misplaced):
        ollama.check(path, tokenizer, generation)
    path.write_text(good.replace('{{ else if eq .Role "assistant" }}<|im_start|>assistant\n{{ .Content }}<|im_end|>\n', ""))
    with pytest.raises(CourseError, match=r"for a second turn, the TEMPLATE differs"):  # answers dropped from history
        ollama.check(path, tokenizer, generation)
    path.write_text("FROM ./m.gguf\n")
    with pytest.raises(CourseError, match="no TEMPLATE"):
        ollama.check(path, tokenizer, generation)
