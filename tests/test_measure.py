"""Serving measurements: what a streamed reply's figures are made of, and that concurrent requests
really are in flight together."""

import threading
from types import SimpleNamespace

import pandas as pd
import pytest

from helpers.data import datasets
from helpers.serve import measure


def chunk(text=None, usage=None):
    choices = [SimpleNamespace(delta=SimpleNamespace(content=text))] if text is not None else []
    return SimpleNamespace(choices=choices, usage=usage)


class FakeClient:
    """Streams "SELECT", " 1" then an empty end chunk; reports usage unless told not to. `barrier`
    makes each request wait until that many are in flight."""

    def __init__(self, usage=True, barrier=None):
        self.usage, self.barrier, self.calls = usage, barrier, []
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create))

    def create(self, **request):
        self.calls.append(request)
        if self.barrier:
            self.barrier.wait()
        if not request.get("stream"):
            return None
        return iter([chunk("SELECT"), chunk(" 1"), chunk(""),
                     chunk(usage=SimpleNamespace(completion_tokens=3) if self.usage else None)])


ROWS = datasets.load_split("test", limit=4, seed=0)


def test_a_streamed_request_counts_the_servers_tokens_or_else_the_pieces_of_text():
    client = FakeClient()
    line = measure.stream_request(client, "m", [{"role": "user", "content": "q"}], max_tokens=9)
    assert line["tokens"] == 3 and 0 < line["ttft_s"] <= line["seconds"]
    assert client.calls[0] | {"messages": None} == {"model": "m", "messages": None, "max_tokens": 9, "temperature": 0,
                                                     "stream": True, "stream_options": {"include_usage": True}}
    assert measure.stream_request(FakeClient(usage=False), "m", [], 9)["tokens"] == 2
    counted = measure.stream_request(FakeClient(), "m", [], 9, tokenizer=CharacterTokenizer())
    assert counted["tokens"] == len("SELECT 1")  # the reply's text, counted by the tokenizer given


class CharacterTokenizer:
    def __call__(self, text, add_special_tokens=True):
        assert add_special_tokens is False
        return SimpleNamespace(input_ids=list(text))


def test_concurrent_requests_are_in_flight_together():
    barrier = threading.Barrier(4, timeout=10)  # breaks (and the test fails) unless 4 requests wait at once
    lines, wall = measure.requests(FakeClient(barrier=barrier), "m", ROWS, concurrency=4)
    assert len(lines) == 4 and not barrier.broken and wall > 0


def test_measure_reports_single_and_concurrent_figures():
    figures = measure.measure(FakeClient(), "m", ROWS, concurrent=2)
    assert figures["tokens"] == 3 * len(ROWS) and figures["requests"] == len(ROWS)
    assert set(figures) == {"ttft_s", "tokens_per_s", "ttft_s_x2", "tokens_per_s_x2", "requests", "tokens"}


def test_table_names_the_columns_for_the_reader():
    table = measure.table({"a": {"ttft_s": 0.1, "tokens_per_s": 50, "tokens_per_s_x4": 60, "requests": 8},
                           "b": {"tokens_per_s": 20}}, concurrent=4)
    assert list(table.columns) == ["first token (s), 1 request", "tokens/s, 1 request", "tokens/s, 4 at once"]
    assert table.loc["b", "tokens/s, 1 request"] == 20 and pd.isna(table.loc["b", "tokens/s, 4 at once"])


@pytest.mark.parametrize("reference, replies, same", [(["a", "b"], ["a", "b"], 2), (["a", "b"], ["a", "b\n"], 1)])
def test_agreement_is_exact_text(reference, replies, same):
    assert measure.agreement(reference, replies) == same
