"""Plots the notebooks show: loss curves, before/after accuracy, tokens per training example."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd


def plot_loss(history: pd.DataFrame, title: str = "Training loss"):
    """Loss per step, one line per split (train, validation); returns the figure."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for split, part in history.groupby("split", sort=False):
        ax.plot(part.step, part.loss, marker="o" if len(part) < 30 else None, label=split)
    ax.set(xlabel="optimizer step", ylabel="loss (assistant tokens)", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_accuracy(table: pd.DataFrame, title: str = "Base vs fine-tuned"):
    """Grouped bars from a metrics x runs table of fractions (evaluation.compare)."""
    ax = (table * 100).plot.bar(rot=0, figsize=(6, 3.5), ylim=(0, 105))
    ax.set(ylabel="% of test questions", title=title)
    for bars in ax.containers:
        ax.bar_label(bars, fmt="%.0f%%")
    ax.figure.tight_layout()
    return ax.figure


def plot_token_counts(example_tokens: list[int], limit: int | None = None, title: str = "Tokens per example"):
    """Histogram of tokens per training example, with the model's limit when it is in view."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(example_tokens, bins=min(40, max(5, len(set(example_tokens)))), color="tab:blue", alpha=0.8)
    if limit and max(example_tokens, default=0) > 0.5 * limit:
        ax.axvline(limit, color="tab:red", linestyle="--", label=f"limit {limit:,}")
        ax.legend()
    ax.set(xlabel="tokens (billed)", ylabel="examples", title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
