"""Preference pairs for DPO: made from a model's own mistakes on training questions (sample answers,
run them, pair a right one with a wrong one), and written in TRL's form or the providers' DPO file form.

TRL's conversational preference form: {"prompt": [messages], "chosen": [assistant], "rejected": [assistant]}.
The providers' (OpenAI, Azure OpenAI): {"input": {"messages": [...]}, "preferred_output": [assistant],
"non_preferred_output": [assistant]}, one JSON object per line."""

from __future__ import annotations

from collections import Counter

import pandas as pd
from datasets import Dataset

from helpers.data.datasets import answer, prompt_messages
from helpers.eval import persona, sql

CHOSEN = ("gold", "own")  # the right answer of a pair: the dataset's, or one the model sampled itself


def reply(text: str) -> list[dict]:
    """One assistant message, as both forms hold each side of a pair."""
    return [{"role": "assistant", "content": text}]


def judge(examples: list[dict], samples: list[list[str]]) -> pd.DataFrame:
    """Every sampled answer run against its question's database: one row per sample, with whether it
    returns the gold rows and, if not, why (an error or a different result)."""
    rows = []
    for index, (example, replies) in enumerate(zip(examples, samples, strict=True)):
        scored = sql.score([example] * len(replies), replies)
        for text, (_, s) in zip(replies, scored.iterrows(), strict=True):
            rows.append({"question_index": index, "question": s.question, "gold": s.gold, "reply": text,
                         "sql": s.predicted, "right": bool(s.execution_match), "runs": not s.note.startswith("error"),
                         "note": s.note})
    return pd.DataFrame(rows)


def from_mistakes(examples: list[dict], samples: list[list[str]], chosen: str = "gold",
                  max_rejected: int = 2) -> tuple[list[dict], pd.DataFrame]:
    """DPO pairs in TRL's form from sampled answers, and the judged samples.

    For every question with a wrong sample: rejected = each distinct wrong query (at most `max_rejected`,
    those that run before those that fail), chosen = the gold answer, or with chosen="own" the model's
    own most frequent right query (the gold where it sampled none). A question whose samples are all
    right teaches DPO nothing and gives no pair."""
    if chosen not in CHOSEN:
        raise ValueError(f"chosen={chosen!r}: use one of {', '.join(CHOSEN)}")
    judged = judge(examples, samples)
    pairs = []
    for index, group in judged.groupby("question_index", sort=True):
        wrong = group[~group.right].drop_duplicates("sql").sort_values("runs", ascending=False, kind="stable")
        if wrong.empty:
            continue
        example = examples[index]
        right = Counter(group[group.right].sql)
        best = right.most_common(1)[0][0] if chosen == "own" and right else answer(example)
        for _, bad in wrong.head(max_rejected).iterrows():
            pairs.append({"prompt": prompt_messages(example), "chosen": reply(best), "rejected": reply(bad.sql),
                          "db_id": example.get("db_id"), "why_rejected": bad.note})
    return pairs, judged


def summary(judged: pd.DataFrame, pairs: list[dict]) -> pd.Series:
    """How the sampling went: questions, samples, right and failing samples, questions that gave a pair."""
    per_question = judged.groupby("question_index").right
    return pd.Series({"questions": judged.question_index.nunique(), "samples": len(judged),
                      "right samples (%)": round(100 * judged.right.mean(), 1),
                      "samples that fail to run (%)": round(100 * (~judged.runs).mean(), 1),
                      "questions with a wrong sample": int((~per_question.all()).sum()),
                      "pairs": len(pairs)}, name="sampling")


def voice_pairs(rows: list[dict], phrases: list[str] | None = None) -> list[dict]:
    """Pairs that prefer a persona's voice: chosen = the answer (stock opener, fact, stock closer), rejected =
    the same answer without the persona's stock sentences (`phrases`, by default those of `rows`): the fact
    said blandly."""
    phrases = set(persona.house_phrases(rows) if phrases is None else phrases)
    pairs = []
    for row in rows:
        sentences = persona.SENTENCE_END.split(answer(row).strip())
        bland = " ".join(s for s in sentences if s not in phrases)
        if bland and bland != answer(row):
            pairs.append({"prompt": prompt_messages(row), "chosen": reply(answer(row)), "rejected": reply(bland)})
    return pairs


def to_provider(pairs: list[dict]) -> list[dict]:
    """TRL-form pairs as lines of the providers' DPO file."""
    return [{"input": {"messages": p["prompt"]}, "preferred_output": p["chosen"],
             "non_preferred_output": p["rejected"]} for p in pairs]


def to_dataset(pairs: list[dict]) -> Dataset:
    """TRL-form pairs as the dataset DPOTrainer takes: the prompt, chosen and rejected columns only."""
    return Dataset.from_list([{key: p[key] for key in ("prompt", "chosen", "rejected")} for p in pairs])


def from_provider(rows: list[dict]) -> list[dict]:
    """Lines of a providers' DPO file (already validated) as TRL-form pairs."""
    return [{"prompt": r["input"]["messages"], "chosen": r["preferred_output"], "rejected": r["non_preferred_output"]}
            for r in rows]
