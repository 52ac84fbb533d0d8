"""Chat completions of the emulator: the embedded model answers for a base model name, the same
model with its jobs' LoRA adapters merged in for a fine-tuned one. Greedy requests for the same model
and length that wait together are answered in one batch, as a serving engine batches."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

import torch

from emulator.common import now
from helpers import models
from helpers.eval import generate
from helpers.train import lora

MAX_NEW_TOKENS = 512
BATCH = 16  # greedy requests answered together at most
_SAMPLING = threading.Lock()  # torch's random generator is the process's: one seeded sample at a time


class Request:
    """A greedy request waiting for its reply tokens."""

    def __init__(self, name: str, prompt: str, limit: int):
        self.key, self.prompt, self.tokens = (name, limit), prompt, None


class Chat:
    """The models behind the emulator's model names, loaded once each, and the requests waiting for them."""

    def __init__(self, adapters: dict[str, Path]):
        self.adapters = adapters  # fine-tuned model name -> its jobs' adapter folders, oldest first
        self.loaded: dict[str, tuple] = {}
        self.pending: list[Request] = []
        self._load_lock, self._pending_lock, self._generate_lock = threading.Lock(), threading.Lock(), threading.Lock()

    def model(self, name: str):
        """(model, tokenizer) behind a model name: the embedded base, or base plus a job's adapter."""
        with self._load_lock:  # concurrent first requests load the model once
            if name not in self.loaded:
                model, tokenizer = models.load_model("")
                for adapter in self.adapters.get(name, []):  # merged in turn: SFT's, then DPO's on top
                    model = lora.merge_loaded(model, adapter)
                model.eval()
                self.loaded[name] = (model, tokenizer)
        return self.loaded[name]

    def queue(self, name: str, prompt: str, limit: int) -> Request:
        """Put a greedy request in line; `answer` gives its tokens."""
        request = Request(name, prompt, limit)
        with self._pending_lock:
            self.pending.append(request)
        return request

    def answer(self, request: Request) -> list[int]:
        """The request's new tokens. Whoever generates next answers it together with the requests
        for the same model and length waiting behind it, up to BATCH of them."""
        with self._generate_lock:
            if request.tokens is None:
                with self._pending_lock:
                    batch = [request] + [r for r in self.pending if r.key == request.key and r is not request][:BATCH - 1]
                    self.pending[:] = [r for r in self.pending if not any(r is b for b in batch)]
                model, tokenizer = self.model(request.key[0])
                replies = generate.greedy(model, tokenizer, [r.prompt for r in batch], request.key[1])
                for waiting, tokens in zip(batch, replies, strict=True):
                    waiting.tokens = tokens
        return request.tokens

    def sampled(self, name: str, prompt: str, limit: int, body: dict) -> list[int]:
        """New tokens for a sampled request (temperature > 0), seeded when the request says so."""
        model, tokenizer = self.model(name)
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        with self._generate_lock, _SAMPLING, torch.no_grad():
            if body.get("seed") is not None:
                torch.manual_seed(int(body["seed"]))
            out = model.generate(**inputs, max_new_tokens=limit, do_sample=True, pad_token_id=tokenizer.eos_token_id,
                                 temperature=float(body.get("temperature", 1.0)), top_p=float(body.get("top_p", 1.0)))
        return out[0, inputs["input_ids"].shape[1]:].tolist()

    def logprobs(self, name: str, prompt_ids: list[int], new: list[int], top: int) -> dict:
        """The chat API's `logprobs` of a reply: each generated token's log-probability under the model
        (one forward pass over prompt and reply), with the `top` likeliest tokens at its position."""
        model, tokenizer = self.model(name)
        ids = torch.tensor([prompt_ids + new])
        with self._generate_lock, torch.no_grad():
            scores = torch.log_softmax(model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1].float(), dim=-1)

        def entry(token_id: int, logprob: float) -> dict:
            text = tokenizer.decode([token_id])
            return {"token": text, "logprob": round(logprob, 6), "bytes": list(text.encode())}

        content = []
        for position, token_id in enumerate(new):
            row = scores[position]
            best = torch.topk(row, top) if top else None
            content.append({**entry(token_id, float(row[token_id])), "top_logprobs": [] if best is None else
                            [entry(int(i), float(v)) for v, i in zip(best.values, best.indices, strict=True)]})
        return {"content": content, "refusal": None}

    def complete(self, name: str, body: dict) -> dict:
        """A chat.completion answer generated by the model behind `name`."""
        _, tokenizer = self.model(name)
        limit = min(int(body.get("max_completion_tokens") or body.get("max_tokens") or 256), MAX_NEW_TOKENS)
        prompt = tokenizer.apply_chat_template(body["messages"], add_generation_prompt=True, tokenize=False)
        if float(body.get("temperature", 1.0)) > 0:
            new = self.sampled(name, prompt, limit, body)
        else:
            new = self.answer(self.queue(name, prompt, limit))
        text = tokenizer.decode(new, skip_special_tokens=True).strip()
        finish = "length" if len(new) >= limit and new[-1] != tokenizer.eos_token_id else "stop"
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        prompt_tokens = len(prompt_ids)
        logprobs = (self.logprobs(name, prompt_ids, new, int(body.get("top_logprobs") or 0))
                    if body.get("logprobs") else None)
        return {"id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion", "created": now(),
                "model": name, "system_fingerprint": "fp_emulator",
                "choices": [{"index": 0, "finish_reason": finish, "logprobs": logprobs,
                             "message": {"role": "assistant", "content": text, "refusal": None}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(new),
                          "total_tokens": prompt_tokens + len(new)}}
