"""No key reaches a file: the suite runs with fake keys set, and this scan runs after every other test."""

import pytest
from conftest import FAKE_SECRETS, files_holding

from helpers.env import ROOT


def test_the_scan_finds_a_planted_secret(tmp_path):
    (tmp_path / "nested").mkdir()
    planted = {"HF_TOKEN": "hf_planted0123456789", "OPENAI_API_KEY": "sk-planted0123456789"}
    (tmp_path / "nested" / "log.txt").write_text(f"token={planted['HF_TOKEN']}\n")
    (tmp_path / "clean.txt").write_text("nothing here\n")
    assert files_holding(tmp_path, planted) == [f"{tmp_path / 'nested' / 'log.txt'}: HF_TOKEN"]


@pytest.mark.last
def test_nothing_the_suite_wrote_holds_a_key(tmp_path_factory):
    """Executed notebooks (runs/test/*.executed.ipynb), their logs and files, and every test's temp files."""
    written = files_holding(ROOT / "runs", FAKE_SECRETS) + files_holding(tmp_path_factory.getbasetemp(), FAKE_SECRETS)
    assert written == [], "fake keys found in files the course wrote:\n" + "\n".join(written)
