"""Forgetting: what a fine-tune cost the model outside its task. Two measures, taken the same way
on the base and the fine-tuned model, offline and in well under a minute on a CPU:

- **general text**: the mean cross-entropy per token (and its perplexity) on a fixed sample of
  ordinary English prose, the Python Language Reference's own text that `help()` shows, which
  every Python installation ships (`pydoc_data`); a model that forgot how English goes is more
  surprised by it;
- **general questions**: 40 short factual and instruction-following questions (data/general),
  answered greedily and scored by the words a right answer contains.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from helpers import models
from helpers.data.datasets import GENERAL, answer, question, read_jsonl
from helpers.eval import generate

# Sections of the Python Language Reference, as pydoc_data.topics names them: the ones written as
# running prose (objects and values, names and scopes, exceptions, truth values), about 3,000 tokens.
TEXT_TOPICS = ("objects", "execmodel", "truth")
WINDOW = 512  # tokens the model reads at once; the text is cut into windows of this size
MAX_NEW_TOKENS = 32  # reply tokens per general question: the answer comes in the first sentence


def general_text(topics: tuple[str, ...] = TEXT_TOPICS) -> str:
    """The general-text sample: the prose paragraphs of the chosen reference sections, without their
    code examples and grammar rules (indented lines) and with footnote marks removed. Its wording
    changes a little between Python versions: compare figures measured with the same Python."""
    from pydoc_data.topics import topics as sections  # shipped with every CPython

    paragraphs = []
    for name in topics:
        for block in re.split(r"\n\s*\n", sections[name]):
            lines = block.splitlines()
            if not lines or any(line.startswith("   ") or ">>>" in line for line in lines):
                continue
            text = " ".join(re.sub(r"\[\d+\]|\*+", "", " ".join(lines)).split())  # one line, marks removed
            if len(text.split()) >= 8:
                paragraphs.append(text)
    return "\n\n".join(paragraphs)


@torch.inference_mode()
def text_loss(model, tokenizer, text: str | None = None, window: int = WINDOW) -> dict:
    """Mean cross-entropy per predicted token of `text` (the general-text sample by default), read in
    windows of `window` tokens, and its perplexity (exp of the mean). Lower is better. A model whose
    tokenizer starts every text with a BOS token reads each window after one, and every token is
    predicted; otherwise the first token of each window is context only. `predicted` counts them."""
    ids = tokenizer(general_text() if text is None else text, add_special_tokens=False,
                    return_tensors="pt").input_ids[0]
    bos = tokenizer.bos_token_id
    starts_with_bos = models.adds_bos(tokenizer)
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(ids), window):
        chunk = ids[start:start + window]
        if starts_with_bos:
            chunk = torch.cat([torch.tensor([bos]), chunk])
        if len(chunk) < 2:
            break
        chunk = chunk.to(model.device)[None]
        logits = model(input_ids=chunk).logits[0, :-1].float()
        total += torch.nn.functional.cross_entropy(logits, chunk[0, 1:], reduction="sum").item()
        count += chunk.shape[1] - 1
    if count == 0:
        raise ValueError(f"text_loss needs at least two tokens of text, got {len(ids)}")
    mean = total / count
    return {"tokens": len(ids), "predicted": count, "cross_entropy": mean, "perplexity": math.exp(mean)}


def load_questions() -> list[dict]:
    """The general questions (data/general/test.jsonl), each with the words a right answer contains."""
    return read_jsonl(GENERAL / "test.jsonl")


def _mentions(text: str, words: list[str]) -> bool:
    return any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE) for w in words)


def is_right(reply: str, row: dict) -> bool:
    """A reply is right when it names an accepted word (whole word, any case) and no rejected one."""
    return _mentions(reply, row["accept"]) and not _mentions(reply, row.get("reject", []))


def answer_questions(model, tokenizer, rows: list[dict] | None = None, max_new_tokens: int = MAX_NEW_TOKENS,
                     desc: str = "general questions") -> pd.DataFrame:
    """Greedy replies to the general questions, one row each: question, reply, expected answer, right."""
    rows = load_questions() if rows is None else rows
    replies = generate.replies(model, tokenizer, rows, max_new_tokens=max_new_tokens, desc=desc)
    return pd.DataFrame([{"question": question(row), "kind": row["kind"], "reply": reply,
                          "expected": answer(row), "right": is_right(reply, row)}
                         for row, reply in zip(rows, replies, strict=True)])


@dataclass
class Check:
    """One model's general capability: the text loss, the answers, and the seconds the check took."""

    label: str
    text: dict
    answers: pd.DataFrame
    seconds: float

    @property
    def accuracy(self) -> float:
        return float(self.answers.right.mean())

    @property
    def perplexity(self) -> float:
        return self.text["perplexity"]

    def save(self, path: str | Path) -> Path:
        """Write the check as JSON, for a later notebook that starts from the same model (`check(reuse=...)`)."""
        path = Path(path)
        path.write_text(json.dumps({"label": self.label, "text": self.text, "seconds": round(self.seconds, 1),
                                    "answers": self.answers.to_dict(orient="records")}, indent=1) + "\n")
        return path


def check(model, tokenizer, label: str = "model", reuse: str | Path | None = None) -> Check:
    """Measure one model on the general text and the general questions, and print the result. With `reuse`,
    the path of a check saved by an earlier notebook for this very model (`Check.save`), its figures are read
    from there when it exists instead of measured again (no time spent: `seconds` is 0)."""
    if reuse is not None and Path(reuse).exists():
        saved = json.loads(Path(reuse).read_text())
        result = Check(label, saved["text"], pd.DataFrame(saved["answers"]), 0.0)
        source = f"read from {Path(reuse).name}, measured earlier by the notebook that trained this model"
    else:
        start = time.perf_counter()
        text = text_loss(model, tokenizer)
        answers = answer_questions(model, tokenizer, desc=f"{label}: general questions")
        result = Check(label, text, answers, time.perf_counter() - start)
        source = f"{result.seconds:.0f} s"
    print(f"{label}: {int(result.answers.right.sum())}/{len(result.answers)} general questions right, perplexity "
          f"{result.perplexity:.2f} on {result.text['tokens']:,} tokens of general text ({source})")
    return result


def compare(task: dict[str, float], checks: dict[str, Check], task_name: str = "task accuracy") -> pd.DataFrame:
    """Models x measures: the task accuracy (a fraction per model), the share of general questions
    right (both in %), and the perplexity on general text."""
    return pd.DataFrame({
        f"{task_name} (%)": {name: 100 * task[name] for name in checks},
        "general questions right (%)": {name: 100 * c.accuracy for name, c in checks.items()},
        "general-text perplexity (lower is better)": {name: c.perplexity for name, c in checks.items()},
    })


def verdict(table: pd.DataFrame, task: str = "the task", base: str | None = None, tuned: str | None = None) -> str:
    """One sentence from a `compare` table: what the fine-tune gained on its task and what it cost."""
    (task_before, general_before, ppl_before) = table.loc[base or table.index[0]]
    (task_after, general_after, ppl_after) = table.loc[tuned or table.index[-1]]

    def points(change: float) -> str:
        return f"gained {change:.1f} points" if change > 0 else f"lost {-change:.1f} points" if change < 0 else "held steady"

    moved = "rose" if ppl_after > ppl_before else "fell" if ppl_after < ppl_before else "stayed"
    return (f"The fine-tune {points(task_after - task_before)} on {task} and {points(general_after - general_before)} "
            f"on the general questions ({general_before:.1f}% -> {general_after:.1f}%); perplexity on general text "
            f"{moved} from {ppl_before:.2f} to {ppl_after:.2f} ({ppl_after / ppl_before - 1:+.1%}).")


def metrics(checks: dict[str, Check]) -> dict:
    """The figures for metrics.json: `<prefix>_general_accuracy` and `<prefix>_general_perplexity` for
    each model (the prefix is the key of `checks`), and the seconds all the checks took."""
    out = {}
    for prefix, c in checks.items():
        out[f"{prefix}_general_accuracy"] = c.accuracy
        out[f"{prefix}_general_perplexity"] = c.perplexity
    out["general_check_seconds"] = round(sum(c.seconds for c in checks.values()), 1)
    return out


def side_by_side(before: Check, after: Check, n: int = 6) -> pd.DataFrame:
    """Up to `n` general questions whose score changed between two checks, with both replies."""
    both = before.answers.join(after.answers[["reply", "right"]], rsuffix=" after")
    changed = both[both.right != both["right after"]]
    return changed.rename(columns={"reply": f"{before.label} reply", "reply after": f"{after.label} reply"})[
        ["question", "expected", f"{before.label} reply", f"{after.label} reply"]].head(n)
