"""When a fine-tune pays for itself: the cost of one request, and the request count after which a
one-off training cost is repaid by cheaper requests."""

from __future__ import annotations

import math

import pandas as pd


def request_usd(prompt_tokens: float, reply_tokens: float, prices: tuple[float, float]) -> float:
    """Price of one request in US dollars, from (input, output) prices per million tokens."""
    return (prompt_tokens * prices[0] + reply_tokens * prices[1]) / 1e6


def break_even(one_off: float, per_request_before: float, per_request_after: float) -> int | None:
    """Fewest requests n with one_off + n * after <= n * before; None if a request is not cheaper after."""
    saving = per_request_before - per_request_after
    if saving <= 0:
        return None
    return math.ceil(one_off / saving)


def table(settings: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    """One row per way of counting cost, from (prompting per request, fine-tune one-off, fine-tune per
    request); adds the break-even and the saving per request."""
    rows = {name: {"prompting per request": before, "fine-tune one-off": one_off,
                   "fine-tune per request": after, "saving per request": before - after}
            for name, (before, one_off, after) in settings.items()}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame["break-even requests"] = pd.Series([break_even(o, b, a) for b, o, a in settings.values()],
                                             index=frame.index, dtype=object)  # None: never
    return frame
