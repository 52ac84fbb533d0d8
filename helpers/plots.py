"""Plots the notebooks show: loss curves, before/after accuracy, tokens per training example, serving speed,
one training on one process or several, what DPO and GRPO logged."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd


def plot_loss(history: pd.DataFrame, loss_on: str, title: str = "Training loss"):
    """Loss per step, one line per split (train, validation); `loss_on` says which tokens the loss
    covers ("answer tokens", "every token"), as the axis label; returns the figure."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for split, part in history.groupby("split", sort=False):
        ax.plot(part.step, part.loss, marker="o" if len(part) < 30 else None, label=split)
    ax.set(xlabel="optimizer step", ylabel=f"loss ({loss_on})", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_accuracy(table: pd.DataFrame, title: str = "Base vs fine-tuned"):
    """Grouped bars from a metrics x runs table of fractions (such as sql.compare)."""
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


def plot_approaches(table: pd.DataFrame, title: str = "Prompting vs fine-tuning"):
    """One panel per column of an approaches x measures table (accuracy, tokens, seconds), a bar per approach."""
    fig, axes = plt.subplots(1, len(table.columns), figsize=(4 * len(table.columns), 3.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, column in zip(axes, table.columns, strict=False):
        bars = ax.bar(table.index, table[column], color=colors[:len(table)])
        ax.bar_label(bars, fmt="%.0f%%" if "%" in column else "%.3g")
        ax.set(title=column)
        ax.tick_params(axis="x", labelrotation=30)
        ax.margins(y=0.15)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_break_even(costs: pd.DataFrame, title: str = "When does the fine-tune pay for itself?"):
    """One panel per row of break_even.table: the cumulative cost of prompting and of fine-tuning
    over requests, the break-even marked (a fine-tune that never saves is drawn over 1,000 requests)."""
    fig, axes = plt.subplots(1, len(costs), figsize=(6 * len(costs), 3.5), squeeze=False)
    for ax, (name, row) in zip(axes[0], costs.iterrows(), strict=False):
        even = row["break-even requests"]
        n = max(10, 2 * even) if even is not None else 1_000
        ax.plot([0, n], [0, n * row["prompting per request"]], label="prompting (few-shot)")
        ax.plot([0, n], [row["fine-tune one-off"], row["fine-tune one-off"] + n * row["fine-tune per request"]],
                label="fine-tune (training + requests)")
        if even is not None:
            ax.axvline(even, color="gray", linestyle="--", label=f"break-even: {even:,} requests")
        ax.set(xlabel="requests", ylabel="cumulative cost", title=name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_serving(table: pd.DataFrame, title: str = "Serving the fine-tuned model on this machine"):
    """Two panels from an engines x measures table: the columns whose names hold "tokens/s" as grouped
    bars (one request; several at once), and the first-token latency columns ("first token")."""
    speed = [c for c in table.columns if "tokens/s" in c]
    latency = [c for c in table.columns if "first token" in c]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    panels = ((left, table[speed]), (right, table[latency].dropna(how="all")))
    for ax, data in panels:
        data.plot.bar(ax=ax, rot=20)
        for bars, column in zip(ax.containers, data.columns, strict=True):  # no bar, no label, where nothing was measured
            measured = data[column].notna().tolist()
            for rect, shown in zip(bars, measured, strict=True):
                rect.set_visible(shown)
            ax.bar_label(bars, labels=[f"{v:.3g}" if ok else "" for v, ok in zip(data[column], measured, strict=True)],
                         fontsize=8)
        ax.margins(y=0.15)
        ax.grid(alpha=0.3, axis="y")
    left.set(ylabel="generated tokens per second", title="throughput (higher is better)")
    right.set(ylabel="seconds", title="time to first token (lower is better)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_parity(runs: dict[str, dict], title: str = "One process or several: the same training"):
    """Loss per step of each launch (from scripts/sft.py's reports), and the median seconds per step."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    for (label, report), style in zip(runs.items(), ("-o", "--x", ":s"), strict=False):
        left.plot(range(1, len(report["losses"]) + 1), report["losses"], style, label=label)
    left.set(xlabel="optimizer step", ylabel="training loss", title="loss")
    left.legend()
    left.grid(alpha=0.3)
    medians = {label: float(pd.Series(r["step_seconds"][1:] or r["step_seconds"]).median()) for label, r in runs.items()}
    bars = right.bar(list(medians), list(medians.values()), color=["tab:blue", "tab:orange", "tab:green"][:len(medians)])
    right.bar_label(bars, fmt="%.2f s")
    right.set(ylabel="seconds per step (median)", title="step time")
    right.margins(y=0.2)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_dpo(histories: dict[str, pd.DataFrame], title: str = "What DPO logged"):
    """Three panels from `lora.dpo_history` tables, one line per run: the implicit rewards of the chosen and
    the rejected answers, their margin, and the share of pairs ranked right."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for color, (name, h) in zip(colors, histories.items(), strict=False):
        axes[0].plot(h.step, h["chosen reward"], color=color, label=f"{name}: chosen")
        axes[0].plot(h.step, h["rejected reward"], color=color, linestyle="--", label=f"{name}: rejected")
        axes[1].plot(h.step, h["margin"], color=color, label=name)
        axes[2].plot(h.step, 100 * h["pairs ranked right"], color=color, label=name)
    for ax, label in zip(axes, ("reward (beta x log-ratio to the reference)", "margin (chosen - rejected)",
                                "% of the batch's pairs ranked right"), strict=True):
        ax.axhline(0, color="gray", linewidth=0.8)
        ax.set(xlabel="optimizer step", ylabel=label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_grpo(history: pd.DataFrame, held_out: pd.DataFrame | None = None, title: str = "What GRPO logged"):
    """Three panels from `lora.grpo_history` (and `lora.grpo_held_out`): the mean reward per step with a band of
    one spread either side, and the held-out reward at each evaluation; the share of groups without signal;
    the seconds of each step, split into generation and the rest where they were timed."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    reward, spread = history["mean reward"], history["reward spread"]
    axes[0].plot(history.step, reward, marker="o", markersize=3, label="training answers (mean)")
    axes[0].fill_between(history.step, reward - spread, reward + spread, alpha=0.2, label="one spread either side")
    if held_out is not None and len(held_out):
        axes[0].plot(held_out.step, held_out["held-out reward"], marker="s", color="black", label="held-out prompts")
    axes[0].set(xlabel="optimizer step", ylabel="reward", title="reward")
    axes[1].bar(history.step, 100 * history["groups without signal"], color="tab:gray")
    axes[1].set(xlabel="optimizer step", ylabel="% of the step's prompts", title="groups without signal", ylim=(0, 100))
    if "generation seconds" in history:
        axes[2].bar(history.step, history["generation seconds"], label="generating the answers")
        axes[2].bar(history.step, history["training seconds"], bottom=history["generation seconds"],
                    label="scoring, forward, backward, optimizer")
    else:
        axes[2].bar(history.step, history["seconds"], label="whole step")
    axes[2].set(xlabel="optimizer step", ylabel="seconds", title="where a step's time goes")
    for ax in axes:
        ax.grid(alpha=0.3)
    for ax in (axes[0], axes[2]):
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
