"""Scoring the recipe assistant: parse the ingredient list a model wrote, compare it with the gold."""

from __future__ import annotations

import json
import re

import pandas as pd

from helpers.data.datasets import answer, question


def parse_list(text: str) -> list[str]:
    """The ingredients in a reply: a JSON list if there is one, else comma/line separated items."""
    match = re.search(r"\[.*?\]", text or "", re.S)
    if match:
        try:
            items = json.loads(match.group(0))
            if isinstance(items, list):
                return [str(i).strip().lower() for i in items if str(i).strip()]
        except json.JSONDecodeError:
            pass
    parts = re.split(r"[,\n]|\band\b", text or "")
    return [p.strip(" -*\"'.[]").lower() for p in parts if p.strip(" -*\"'.[]")]


def f1(predicted: list[str], gold: list[str]) -> float:
    """Harmonic mean of precision and recall over the two sets of ingredients."""
    p, g = set(predicted), set(gold)
    if not p or not g:
        return float(p == g)
    hits = len(p & g)
    return 0.0 if hits == 0 else 2 * hits / (len(p) + len(g))


def score(rows: list[dict], replies: list[str]) -> pd.DataFrame:
    """One row per recipe: its title, the expected and the replied ingredients, exact match and F1."""
    records = []
    for row, reply in zip(rows, replies, strict=True):
        gold, predicted = json.loads(answer(row)), parse_list(reply)
        records.append({"recipe": question(row).split("\n")[0].removeprefix("Title: "),
                        "expected": ", ".join(gold), "answer": reply,
                        "exact_match": sorted(predicted) == sorted(gold), "f1": f1(predicted, gold)})
    return pd.DataFrame(records)


def summary(results: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Mean exact match and F1 per model: a metrics x models table of fractions."""
    return pd.DataFrame({name: frame[["exact_match", "f1"]].mean() for name, frame in results.items()})
