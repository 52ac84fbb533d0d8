import os

import pytest
from huggingface_hub import constants

from helpers import env


def test_dry_run_refuses_a_hub_model():
    with pytest.raises(ValueError, match="dry_run=False"):
        env.configure(dry_run=True, model_id="HuggingFaceTB/SmolLM2-360M-Instruct")


def test_embedded_model_goes_offline_even_after_import():
    env.set_offline(False)
    assert constants.HF_HUB_OFFLINE is False
    assert env.configure(dry_run=False, model_id="") is True
    assert constants.HF_HUB_OFFLINE is True
    assert all(os.environ[v] == "1" for v in env.OFFLINE_VARS)


def test_hub_model_outside_dry_run_allows_network():
    try:
        assert env.configure(dry_run=False, model_id="org/some-model") is False
        assert "HF_HUB_OFFLINE" not in os.environ and constants.HF_HUB_OFFLINE is False
    finally:
        env.set_offline(True)


def test_local_folder_counts_as_local(tmp_path):
    assert env.is_local_model(str(tmp_path)) and env.is_local_model("")
    assert not env.is_local_model("org/some-model")


def test_cache_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FT_COURSE_CACHE", str(tmp_path / "c"))
    assert env.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
