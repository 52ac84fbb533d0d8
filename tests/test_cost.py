"""Default epochs, billed tokens and the price estimate."""

import pytest

from helpers.data import cost


@pytest.mark.parametrize("n,epochs", [
    (0, 0), (1, 25), (3, 25), (5, 20), (10, 10), (33, 3), (34, 3), (1000, 3),
    (8333, 3), (8334, 2), (12_500, 2), (12_501, 1), (100_000, 1),
])
def test_default_epochs(n, epochs):
    assert cost.default_epochs(n) == epochs


def test_each_example_is_billed_up_to_the_limit():
    assert cost.billed_tokens_per_epoch([100, 5000, 4096], 4096) == 100 + 4096 + 4096
    assert cost.billed_tokens_per_epoch([100, 5000], None) == 5100


@pytest.mark.parametrize("model,limit", [
    ("gpt-4o-mini-2024-07-18", 65_536), ("gpt-4o-2024-08-06", 65_536),
    ("gpt-3.5-turbo-0125", 16_385), ("gpt-3.5-turbo-1106", 16_385), ("gpt-3.5-turbo-0613", 4_096),
    ("ft:gpt-3.5-turbo-0613:my-org:recipes:7p4lURel", 4_096), ("gpt-4.1-2025-04-14", None),
])
def test_token_limits(model, limit):
    assert cost.token_limit(model) == limit


def test_the_longest_matching_family_sets_the_price():
    assert cost.price_per_million("gpt-4o-mini-2024-07-18") == cost.PRICES_USD_PER_MILLION["gpt-4o-mini"]
    assert cost.price_per_million("gpt-4o-2024-08-06") == cost.PRICES_USD_PER_MILLION["gpt-4o"]
    assert cost.price_per_million("gpt-4o-mini-2024-07-18") < cost.price_per_million("gpt-4o-2024-08-06")
    assert cost.price_per_million("llama-3") is None


def test_estimate_uses_default_epochs_unless_told():
    tokens = [200] * 50  # 50 examples: 3 epochs by default
    auto = cost.estimate(tokens, "gpt-4o-mini-2024-07-18")
    assert (auto["billed_tokens_per_epoch"], auto["epochs"], auto["estimated_billed_tokens"]) == (10_000, 3, 30_000)
    assert auto["estimated_cost_usd"] == pytest.approx(30_000 * cost.PRICES_USD_PER_MILLION["gpt-4o-mini"] / 1e6)
    fixed = cost.estimate(tokens, "gpt-4o-mini-2024-07-18", epochs=5)
    assert (fixed["epochs"], fixed["default_epochs"], fixed["estimated_billed_tokens"]) == (5, 3, 50_000)
    assert cost.estimate(tokens, "my-model")["estimated_cost_usd"] is None
