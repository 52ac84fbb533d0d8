"""Greedy generation, the one way every scorer and the emulator's chat get a model's replies:
prompts in the model's chat template, left-padded batches, each reply cut after its end token."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from helpers import models
from helpers.data.datasets import prompt_messages

# Prompts generated together: a dry run's 40 test questions in one batch (one core: 34 s, against 44 s
# in batches of 16).
BATCH = 40


def prompt_text(tokenizer, example: dict) -> str:
    """The text the model reads for a chat example: its prompt messages in the chat template."""
    return tokenizer.apply_chat_template(prompt_messages(example), tokenize=False, add_generation_prompt=True)


def prompt_tokens(tokenizer, examples: list[dict]) -> list[int]:
    """Tokens in each example's prompt, as the model is sent it."""
    return [len(tokenizer(prompt_text(tokenizer, ex), add_special_tokens=False).input_ids) for ex in examples]


@torch.inference_mode()
def greedy(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[list[int]]:
    """The new tokens of each prompt (chat-template text), generated greedily in one left-padded
    batch; each reply ends with its first end-of-sequence token, if it has one."""
    model.eval()
    batch = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left",
                      add_special_tokens=False).to(model.device)
    out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    replies = []
    for row in out[:, batch["input_ids"].shape[1]:].tolist():
        end = row.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in row else len(row)
        replies.append(row[:end])
    return replies


def replies(model, tokenizer, examples: list[dict], max_new_tokens: int = 64, batch_size: int = BATCH,
            desc: str = "generating") -> list[str]:
    """Greedy reply texts to each chat example's prompt, `batch_size` at a time, with a progress bar."""
    prompts = [prompt_text(tokenizer, ex) for ex in examples]
    texts: list[str] = []
    for i in tqdm(range(0, len(prompts), batch_size), desc=desc, unit="batch"):
        texts += tokenizer.batch_decode(greedy(model, tokenizer, prompts[i:i + batch_size], max_new_tokens),
                                        skip_special_tokens=True)
    return texts


def time_requests(model, tokenizer, examples: list[dict], max_new_tokens: int = 64,
                  desc: str = "timing") -> pd.DataFrame:
    """Answer the examples one at a time, as separate requests: seconds, prompt and reply tokens of each."""
    rows = []
    for ex in tqdm(examples, desc=desc, unit="request"):
        prompt = prompt_text(tokenizer, ex)
        start = time.perf_counter()
        reply = greedy(model, tokenizer, [prompt], max_new_tokens)[0]
        rows.append({"seconds": time.perf_counter() - start, "prompt_tokens": prompt_tokens(tokenizer, [ex])[0],
                     "reply_tokens": len(reply)})
    return pd.DataFrame(rows)


@torch.inference_mode()
def sampled(model, tokenizer, examples: list[dict], n: int, temperature: float = 1.0, max_new_tokens: int = 64,
            batch_size: int = 16, seed: int = 0, desc: str = "sampling", cache: str | Path | None = None) -> list[list[str]]:
    """`n` sampled reply texts to each chat example's prompt (temperature sampling, seeded), `batch_size`
    prompts at a time with a progress bar: what a model says when it is not forced to its likeliest answer.
    With `cache`, a folder: answers that this very model (`models.weights_digest`) sampled there before, to the
    same prompts with the same settings and seed, are read instead of sampled again; new ones are written there."""
    model.eval()
    prompts = [prompt_text(tokenizer, ex) for ex in examples]
    if cache is not None:
        settings = {"model": models.weights_digest(model), "prompts": prompts, "n": n, "temperature": temperature,
                    "max_new_tokens": max_new_tokens, "seed": seed}
        key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        path = Path(cache) / f"sampled-{key}.json"
        if path.exists():
            texts = json.loads(path.read_text())
            print(f"{desc}: {len(texts)} questions x {n} answers read from {path}, sampled before by this model "
                  f"with the same settings and seed")
            return texts
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    texts: list[list[str]] = []
    try:
        for i in tqdm(range(0, len(prompts), batch_size), desc=desc, unit="batch"):
            batch = tokenizer(prompts[i:i + batch_size], return_tensors="pt", padding=True, padding_side="left",
                              add_special_tokens=False).to(model.device)
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature,
                                 top_p=1.0, top_k=0, num_return_sequences=n, pad_token_id=tokenizer.pad_token_id)
            decoded = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
            texts += [decoded[j:j + n] for j in range(0, len(decoded), n)]
    finally:
        torch.random.set_rng_state(generator_state)
    if cache is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(texts))
    return texts
