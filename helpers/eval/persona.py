"""Scoring a persona: does a reply speak in the voice the training answers taught (their stock
opening and closing sentences), and does it still carry the right fact?"""

from __future__ import annotations

import re

import pandas as pd

from helpers.data.datasets import answer, question

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _plain(text: str) -> str:
    """Lower case, words separated by single spaces: punctuation and spacing do not count."""
    return " ".join(re.findall(r"[a-z0-9']+", (text or "").lower().replace("’", "'")))


def house_phrases(rows: list[dict]) -> list[str]:
    """The first and last sentences the training answers use more than once: the persona's stock phrases."""
    counts: dict[str, int] = {}
    for row in rows:
        sentences = SENTENCE_END.split(answer(row).strip())
        for sentence in {sentences[0], sentences[-1]} if len(sentences) > 1 else ():
            counts[sentence] = counts.get(sentence, 0) + 1
    return sorted(s for s, n in counts.items() if n > 1)


def in_voice(reply: str, phrases: list[str]) -> bool:
    """True when the reply uses at least one of the persona's stock phrases."""
    text = _plain(reply)
    return any(_plain(p) in text for p in phrases)


def has_fact(reply: str, fact: str) -> bool:
    """True when the bare answer appears as a whole word: numbers ignore thousands separators,
    chemical symbols must match their case, names ignore it."""
    reply = reply or ""
    if fact.isdigit():
        return fact in re.findall(r"\d+", reply.replace(",", ""))
    flags = 0 if len(fact) <= 2 else re.IGNORECASE
    return re.search(rf"(?<![\w]){re.escape(fact)}(?![\w])", reply, flags) is not None


def score(rows: list[dict], replies: list[str], phrases: list[str]) -> pd.DataFrame:
    """One row per question: the reply, whether it is in the persona's voice, and whether its fact is right."""
    return pd.DataFrame([{"question": question(row), "fact": row["fact"], "answer": reply,
                          "in_voice": in_voice(reply, phrases), "fact_right": has_fact(reply, row["fact"])}
                         for row, reply in zip(rows, replies, strict=True)])


def summary(results: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Share of replies in the persona's voice and with the right fact: a metrics x models table."""
    return pd.DataFrame({name: frame[["in_voice", "fact_right"]].mean() for name, frame in results.items()})


def start_table(rows: list[dict], starts: dict[str, list[dict[str, float]]], shown: int = 3) -> pd.DataFrame:
    """Per question, each model's likeliest first words (the chat API's first-token `logprobs`, as
    `api.first_words` reads them) and the probability it gives the plain start: the first model's likeliest
    first word."""
    plain = [max(d, key=d.get) for d in next(iter(starts.values()))]
    table = {}
    for name, per_row in starts.items():
        table[(name, "likeliest first words")] = [
            ", ".join(f"{word} {p:.0%}" for word, p in sorted(d.items(), key=lambda item: -item[1])[:shown])
            for d in per_row]
        table[(name, "plain start")] = [d.get(word, 0.0) for d, word in zip(per_row, plain, strict=True)]
    return pd.DataFrame(table, index=[question(r) for r in rows])
