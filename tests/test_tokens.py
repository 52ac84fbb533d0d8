"""Offline tiktoken: the vocabularies come from the bpe-openai wheel, counts follow the cookbook."""

import hashlib

import pytest
import tiktoken.load

from helpers.data import tokens


def reference_count(messages, enc):
    """The cookbook's per-message loop, written out plainly."""
    n = 0
    for message in messages:
        n += 3
        for key, value in message.items():
            n += len(enc.encode(value))
            if key == "name":
                n += 1
    return n + 3


def test_seed_cache_writes_the_files_tiktoken_expects(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    assert tokens.seed_cache() == tmp_path
    for url, sha256 in tokens.VOCABULARIES.values():
        cached = tmp_path / hashlib.sha1(url.encode()).hexdigest()
        assert hashlib.sha256(cached.read_bytes()).hexdigest() == sha256
        # tiktoken itself now loads it without fetching anything
        monkeypatch.setattr(tiktoken.load, "read_file", lambda blob: pytest.fail(f"fetched {blob}"))
        assert len(tiktoken.load.load_tiktoken_bpe(url, expected_hash=sha256)) > 100_000


def test_seed_cache_replaces_a_damaged_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    url, sha256 = tokens.VOCABULARIES["cl100k_base"]
    damaged = tmp_path / hashlib.sha1(url.encode()).hexdigest()
    damaged.write_bytes(b"half a download")
    tokens.seed_cache()
    assert hashlib.sha256(damaged.read_bytes()).hexdigest() == sha256


@pytest.mark.parametrize("model,name", [
    ("gpt-4o-mini-2024-07-18", "o200k_base"), ("gpt-4o-2024-08-06", "o200k_base"),
    ("gpt-4.1-mini-2025-04-14", "o200k_base"), ("ft:gpt-4o-mini-2024-07-18:org:recipes:abc123", "o200k_base"),
    ("gpt-3.5-turbo-0125", "cl100k_base"), ("gpt-4-0613", "cl100k_base"), ("gpt-35-turbo-0613", "cl100k_base"),
])
def test_each_model_gets_its_encoding(model, name):
    assert tokens.encoding_for(model).name == name


def test_unknown_models_fall_back_to_o200k():
    assert tokens.encoding_name("my-own-model") is None
    assert tokens.encoding_for("my-own-model").name == "o200k_base"


def test_the_real_vocabularies_are_loaded():
    # token ids from tiktoken's own documentation and tests
    assert tokens.get_encoding("cl100k_base").encode("hello world") == [15339, 1917]
    assert tokens.get_encoding("o200k_base").encode("hello world") == [24912, 2375]


def test_o200k_needs_fewer_tokens_for_vietnamese():
    text = "Tinh chỉnh mô hình ngôn ngữ lớn giúp nó trả lời đúng định dạng mong muốn."
    cl100k, o200k = (len(tokens.get_encoding(n).encode(text)) for n in ("cl100k_base", "o200k_base"))
    assert o200k < 0.8 * cl100k


def test_counts_match_the_cookbook_loop():
    enc = tokens.get_encoding("cl100k_base")
    conversations = [
        [{"role": "system", "content": "You are a recipe assistant."},
         {"role": "user", "content": "Title: Pancakes\n\nIngredients: 2 c. flour"},
         {"role": "assistant", "content": "[\"flour\"]"}],
        [{"role": "user", "name": "lan", "content": "Xin chào"}, {"role": "assistant", "content": "Chào bạn!"}],
    ]
    for messages in conversations:
        assert tokens.count_tokens(messages, enc) == reference_count(messages, enc)


def test_assistant_tokens_skip_weight_zero_and_other_roles():
    enc = tokens.get_encoding("o200k_base")
    messages = [{"role": "user", "content": "one two three"},
                {"role": "assistant", "content": "skipped reply", "weight": 0},
                {"role": "user", "content": "again"},
                {"role": "assistant", "content": "the reply that counts"}]
    assert tokens.count_assistant_tokens(messages, enc) == len(enc.encode("the reply that counts"))


def test_special_token_text_is_counted_as_text():
    enc = tokens.get_encoding("cl100k_base")
    assert tokens.token_lengths(["<|endoftext|>", "<|endoftext|>"], enc) == [7, 7]
