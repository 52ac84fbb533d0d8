"""What a fine-tuning job will bill: token limits per example, default epochs, price estimate."""

from __future__ import annotations

# Longest training example each model accepts; longer examples are truncated by the provider.
TOKEN_LIMITS = {
    "gpt-4o-mini-2024-07-18": 65_536,
    "gpt-4o-2024-08-06": 65_536,
    "gpt-3.5-turbo-0125": 16_385,
    "gpt-3.5-turbo-1106": 16_385,
    "gpt-3.5-turbo-0613": 4_096,
}

# Training price in US dollars per million billed tokens, by model family (longest prefix wins).
# OpenAI's pricing page cannot be reached from the course machines; these are its published
# list prices as reported by secondary sources on PRICES_CHECKED. Azure bills differently.
PRICES_CHECKED = "2026-11-25"
PRICES_USD_PER_MILLION = {
    "gpt-4.1-nano": 1.50,
    "gpt-4.1-mini": 5.00,
    "gpt-4.1": 25.00,
    "gpt-4o-mini": 3.00,
    "gpt-4o": 25.00,
    "gpt-3.5-turbo": 8.00,
}

# Inference list prices, USD per million tokens as (input, output): the base model, then the same
# model fine-tuned (OpenAI bills a fine-tuned model's tokens at a higher rate). Same sources and date.
INFERENCE_USD_PER_MILLION = {
    "gpt-4.1-nano": {"base": (0.10, 0.40), "fine-tuned": (0.20, 0.80)},
    "gpt-4.1-mini": {"base": (0.40, 1.60), "fine-tuned": (0.80, 3.20)},
    "gpt-4.1": {"base": (2.00, 8.00), "fine-tuned": (3.00, 12.00)},
    "gpt-4o-mini": {"base": (0.15, 0.60), "fine-tuned": (0.30, 1.20)},
    "gpt-4o": {"base": (2.50, 10.00), "fine-tuned": (3.75, 15.00)},
}

# The provider's default number of epochs aims at 3 passes, kept between 100 and 25,000
# example visits and between 1 and 25 epochs (the OpenAI cookbook's data-preparation rule).
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES, MAX_TARGET_EXAMPLES = 100, 25_000
MIN_DEFAULT_EPOCHS, MAX_DEFAULT_EPOCHS = 1, 25


def token_limit(model: str) -> int | None:
    """Per-example token limit of a fine-tunable model; None when the course does not know it."""
    name = model.removeprefix("ft:").split(":")[0]
    return TOKEN_LIMITS.get(name)


def _family(model: str, table: dict):
    """The entry of the model's family in a price table (longest matching prefix), or None."""
    name = model.removeprefix("ft:")
    matches = [p for p in table if name.startswith(p)]
    return table[max(matches, key=len)] if matches else None


def price_per_million(model: str) -> float | None:
    """Training list price (USD per 1M tokens) of the model's family, or None if unknown."""
    return _family(model, PRICES_USD_PER_MILLION)


def inference_prices(model: str) -> dict | None:
    """Inference list prices of the model's family: {"base": (input, output), "fine-tuned": (...)}, USD per 1M."""
    return _family(model, INFERENCE_USD_PER_MILLION)


def default_epochs(n_examples: int) -> int:
    """Epochs the provider picks for `n_epochs="auto"` with this many training examples."""
    if n_examples <= 0:
        return 0
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


def billed_tokens_per_epoch(example_tokens: list[int], limit: int | None) -> int:
    """Tokens billed for one pass: each example counts up to the model's limit."""
    if limit is None:
        return sum(example_tokens)
    return sum(min(limit, n) for n in example_tokens)


def estimate(example_tokens: list[int], model: str, epochs: int | None = None) -> dict:
    """Billed tokens and list-price cost of a job; `epochs=None` means the provider's default."""
    per_epoch = billed_tokens_per_epoch(example_tokens, token_limit(model))
    n_epochs = epochs or default_epochs(len(example_tokens))
    price = price_per_million(model)
    total = per_epoch * n_epochs
    return {
        "billed_tokens_per_epoch": per_epoch,
        "default_epochs": default_epochs(len(example_tokens)),
        "epochs": n_epochs,
        "estimated_billed_tokens": total,
        "price_usd_per_million": price,
        "estimated_cost_usd": None if price is None else round(total * price / 1e6, 4),
        "prices_checked": PRICES_CHECKED,
    }
