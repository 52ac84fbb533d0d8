"""Request costs and the break-even between prompting and a fine-tune."""

import pytest

from helpers.data import cost
from helpers.eval import break_even


def test_request_price_from_prices_per_million():
    assert break_even.request_usd(1_000, 100, (0.15, 0.60)) == pytest.approx(0.00015 + 0.00006)


def test_break_even_is_the_first_request_count_that_repays_the_one_off():
    assert break_even.break_even(100.0, 1.5, 0.5) == 100
    assert break_even.break_even(100.0, 1.4, 0.5) == 112  # 111 requests save 99.9, not yet 100
    assert break_even.break_even(0.0, 1.0, 0.5) == 0
    assert break_even.break_even(100.0, 0.5, 0.5) is None and break_even.break_even(1.0, 0.4, 0.5) is None


def test_table_has_a_row_per_way_of_counting():
    table = break_even.table({"seconds": (1.5, 100.0, 0.5), "usd": (0.4, 1.0, 0.5)})
    assert table.loc["seconds", "break-even requests"] == 100
    assert table.loc["usd", "break-even requests"] is None
    assert table.loc["usd", "saving per request"] == pytest.approx(-0.1)


def test_fine_tuned_tokens_cost_more_at_the_provider():
    prices = cost.inference_prices("gpt-4o-mini-2024-07-18")
    assert prices["fine-tuned"][0] > prices["base"][0] and prices["fine-tuned"][1] > prices["base"][1]
    assert cost.inference_prices("ft:gpt-4.1-mini-2025-04-14:org::abc") == cost.INFERENCE_USD_PER_MILLION["gpt-4.1-mini"]
    assert cost.inference_prices("claude-3") is None
