"""A served model measured as its users feel it: time to the first token of a streamed reply, and
tokens per second for one request at a time and for several at once.

Engines count tokens differently (transformers serve counts the end token, llama-cpp-python's stream
reports no usage at all), so given the model's tokenizer every engine's reply text is counted with it."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
from openai import OpenAI
from tqdm.auto import tqdm

from helpers.data.datasets import prompt_messages
from helpers.eval import generate, sql
from helpers.providers import api


def count_tokens(tokenizer, text: str) -> int:
    """Tokens of a reply's text, as the model's tokenizer splits it (no special tokens)."""
    return len(tokenizer(text, add_special_tokens=False).input_ids)


def stream_request(client, model: str, messages: list[dict], max_tokens: int = 64, tokenizer=None) -> dict:
    """One greedy streamed chat request: seconds to the first text, seconds in all, tokens generated:
    the reply's text counted with `tokenizer` if given, else the server's usage when it reports one,
    else one per streamed piece of text."""
    start = time.perf_counter()
    first, pieces, usage, text = None, 0, None, []
    stream = client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens, temperature=0,
                                            stream=True, stream_options={"include_usage": True})
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            first = first or time.perf_counter()
            pieces += 1
            text.append(chunk.choices[0].delta.content)
        usage = getattr(chunk, "usage", None) or usage
    end = time.perf_counter()
    tokens = count_tokens(tokenizer, "".join(text)) if tokenizer else usage.completion_tokens if usage else pieces
    return {"ttft_s": (first or end) - start, "seconds": end - start, "tokens": tokens}


def requests(client, model: str, rows: list[dict], max_tokens: int = 64, concurrency: int = 1,
             label: str = "requests", tokenizer=None) -> tuple[pd.DataFrame, float]:
    """Send each row's prompt, `concurrency` at a time: one line per request, and the wall seconds."""
    def one(row):
        return stream_request(client, model, prompt_messages(row), max_tokens, tokenizer)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        lines = list(tqdm(pool.map(one, rows), total=len(rows), desc=f"{label} x{concurrency}", leave=False))
    return pd.DataFrame(lines), time.perf_counter() - start


def measure(client, model: str, rows: list[dict], concurrent: int = 4, max_tokens: int = 64,
            label: str = "requests", tokenizer=None) -> dict:
    """Latency and throughput of a served model on the rows' prompts: median time to first token and
    tokens/s of single requests sent one after another, then the total tokens/s and the median time to
    first token when `concurrent` requests are in flight at once."""
    client.chat.completions.create(model=model, messages=prompt_messages(rows[0]), max_tokens=4)  # warm up
    single, single_wall = requests(client, model, rows, max_tokens, 1, label, tokenizer)
    together, together_wall = requests(client, model, rows, max_tokens, concurrent, label, tokenizer)
    return {"ttft_s": float(single.ttft_s.median()),
            "tokens_per_s": float(single.tokens.sum() / single_wall),
            f"ttft_s_x{concurrent}": float(together.ttft_s.median()),
            f"tokens_per_s_x{concurrent}": float(together.tokens.sum() / together_wall),
            "requests": len(rows), "tokens": int(single.tokens.sum())}


def in_process(model, tokenizer, rows: list[dict], max_tokens: int = 64) -> dict:
    """The same prompts answered one at a time by `generate` in this process (no server, no HTTP),
    the replies counted as the servers' are."""
    seconds, tokens = 0.0, 0
    for row in tqdm(rows, desc="in-process", leave=False):
        start = time.perf_counter()
        reply = generate.greedy(model, tokenizer, [generate.prompt_text(tokenizer, row)], max_tokens)[0]
        seconds += time.perf_counter() - start
        tokens += count_tokens(tokenizer, tokenizer.decode(reply, skip_special_tokens=True))
    return {"tokens_per_s": tokens / seconds, "requests": len(rows), "tokens": tokens}


def agreement(reference: list[str], replies: list[str]) -> int:
    """How many replies are exactly the reference's text."""
    return sum(a == b for a, b in zip(reference, replies, strict=True))


def run_engine(server, rows: list[dict], reference: list[str], speed_rows: list[dict], concurrent: int = 4,
               max_tokens: int = 64, tokenizer=None) -> tuple[pd.DataFrame, dict]:
    """What the notebook does step by step for `transformers serve`, for any running server: answer
    every row through the OpenAI SDK, score the answers, count those equal to `reference`, and measure
    speed on `speed_rows`. Returns the scores and one line of figures."""
    client = OpenAI(base_url=server.base_url, api_key="local")
    replies = api.ask_all(client, server.model, rows, label=server.name, max_tokens=max_tokens)
    scores = sql.score(rows, replies)
    line = {"start_s": server.seconds_to_ready, "execution_accuracy": float(scores.execution_match.mean()),
            "same_as_in_process": agreement(reference, replies),
            **measure(client, server.model, speed_rows, concurrent, max_tokens, server.name, tokenizer)}
    return scores, line


COLUMNS = {"start_s": "start (s)", "size_mb": "size (MB)", "execution_accuracy": "execution accuracy",
           "same_as_in_process": "same answer as in-process", "ttft_s": "first token (s), 1 request",
           "tokens_per_s": "tokens/s, 1 request"}


def table(lines: dict[str, dict], concurrent: int = 4) -> pd.DataFrame:
    """Engines x figures, with readable column names, from the lines of run_engine (and friends)."""
    names = {**COLUMNS, f"ttft_s_x{concurrent}": f"first token (s), {concurrent} at once",
             f"tokens_per_s_x{concurrent}": f"tokens/s, {concurrent} at once"}
    frame = pd.DataFrame(lines).T
    return frame[[c for c in names if c in frame.columns]].rename(columns=names).astype(float)
