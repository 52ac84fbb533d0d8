"""Few-shot prompts: k solved examples placed in the chat before the question, picked at
random or retrieved as the most similar (retrieval in its simplest form: shared words)."""

from __future__ import annotations

import math
import random
import re
from collections import Counter

from helpers.data.datasets import question  # the question of a chat example (notebook 00 calls it from here)

WORD = re.compile(r"\w+")


def with_examples(example: dict, shots: list[dict]) -> dict:
    """The example with each shot's user question and assistant answer inserted after the system message."""
    messages = example["messages"]
    head = [m for m in messages[:1] if m["role"] == "system"]
    solved = [m for shot in shots for m in shot["messages"] if m["role"] in ("user", "assistant")]
    return {**example, "messages": head + solved + messages[len(head):]}


def candidates(pool: list[dict], example: dict) -> list[dict]:
    """Pool rows usable as shots: those with the example's database (same schema) when it has one."""
    if "db_id" not in example:
        return pool
    return [row for row in pool if row.get("db_id") == example["db_id"]]


def _words(text: str) -> list[str]:
    return WORD.findall(text.lower())


class Retriever:
    """Ranks pool rows by the words their question shares with a query, rare words weighing more (IDF)."""

    def __init__(self, pool: list[dict]):
        self.pool = pool
        self.bags = [set(_words(question(row))) for row in pool]
        counts = Counter(word for bag in self.bags for word in bag)
        self.idf = {word: math.log(len(pool) / n) for word, n in counts.items()}

    def top(self, example: dict, k: int) -> list[dict]:
        """The k most similar rows among the example's candidates; ties keep pool order."""
        query = set(_words(question(example)))
        allowed = {id(row) for row in candidates(self.pool, example)}
        ranked = sorted((i for i, row in enumerate(self.pool) if id(row) in allowed),
                        key=lambda i: -sum(self.idf[w] for w in query & self.bags[i]))
        return [self.pool[i] for i in ranked[:k]]


def random_prompts(rows: list[dict], pool: list[dict], k: int, seed: int = 0) -> list[dict]:
    """Each row with k shots drawn at random (seeded) from its candidates in the pool."""
    rng = random.Random(seed)
    out = []
    for row in rows:
        options = candidates(pool, row)
        out.append(with_examples(row, rng.sample(options, min(k, len(options)))))
    return out


def retrieved_prompts(rows: list[dict], pool: list[dict], k: int) -> list[dict]:
    """Each row with the k pool examples whose questions are most like its own."""
    retriever = Retriever(pool)
    return [with_examples(row, retriever.top(row, k)) for row in rows]
