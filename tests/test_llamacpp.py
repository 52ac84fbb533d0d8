"""llama.cpp's converter, driven by the course: the GGUF file carries the weights, the tokenizer's chat
template and its end token (what Ollama and llama.cpp's server read), and failures quote the log.
Needs the llama.cpp environment, which `make test` builds (`make llamacpp`)."""

import gguf
import pytest
from transformers import AutoTokenizer

from helpers.serve import llamacpp


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir):
    return tiny_model_dir, AutoTokenizer.from_pretrained(tiny_model_dir)


def field(reader: gguf.GGUFReader, name: str):
    return reader.fields[name].contents()


@pytest.mark.parametrize("outtype", ["f16", "q8_0"])
def test_the_gguf_carries_the_chat_template_and_end_token(tiny_model, tmp_path, outtype):
    folder, tokenizer = tiny_model
    out = llamacpp.convert(folder, tmp_path / f"tiny-{outtype}.gguf", outtype)
    reader = gguf.GGUFReader(out)
    assert field(reader, "general.architecture") == "llama"
    assert field(reader, "tokenizer.chat_template") == tokenizer.chat_template
    assert field(reader, "tokenizer.ggml.eos_token_id") == tokenizer.eos_token_id
    assert field(reader, "tokenizer.ggml.tokens")[tokenizer.eos_token_id] == "<|im_end|>"
    kinds = {t.name: t.tensor_type.name for t in reader.tensors}
    assert kinds["blk.0.attn_q.weight"] == outtype.upper()  # the type asked for, on the big matrices
    assert (out.parent / f"tiny-{outtype}.log").exists()


def test_a_failed_conversion_quotes_the_converter(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text('{"architectures": ["NoSuchForCausalLM"]}')
    quoted = r"(?s)converter failed on .*bad \(exit 1\).*Model NoSuchForCausalLM is not supported"
    with pytest.raises(llamacpp.LlamaCppError, match=quoted):
        llamacpp.convert(tmp_path / "bad", tmp_path / "bad.gguf")
    assert not (tmp_path / "bad.gguf").exists()


def test_a_missing_environment_says_what_to_run(tmp_path):
    assert "make llamacpp" in llamacpp.why_not(tmp_path / "no-venv")
    with pytest.raises(llamacpp.LlamaCppError, match="make llamacpp"):
        llamacpp.convert(tmp_path, tmp_path / "x.gguf", venv=tmp_path / "no-venv")
    assert llamacpp.why_not() is None  # the course's own environment is complete
