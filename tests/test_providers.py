"""What differs between OpenAI and Azure OpenAI, in one table; settings and how a missing one is explained."""

import re

import pytest

from helpers.errors import CourseError
from helpers.providers.conventions import AZURE, OPENAI, PROVIDERS, get
from helpers.providers.settings import find_setting, missing_settings_help, require


def test_names_follow_each_provider():
    job = "ftjob-" + "a" * 32
    assert OPENAI.model_name("gpt-4o-mini-2024-07-18", "quip", job) == "ft:gpt-4o-mini-2024-07-18:emulator:quip:aaaaaaaa"
    assert AZURE.model_name("gpt-4o-mini-2024-07-18", "", job) == "gpt-4o-mini-2024-07-18.ft-" + "a" * 32
    assert AZURE.model_name("gpt-4o-mini-2024-07-18", "quip", job).endswith("-quip")
    assert re.fullmatch(r"file-[0-9a-f]{32}", AZURE.new_id("file-"))
    assert re.fullmatch(r"file-[0-9a-f]{24}", OPENAI.new_id("file-"))


def test_suffix_limits():
    assert AZURE.check_suffix("x" * 18) == "x" * 18 and OPENAI.check_suffix("x" * 64)
    with pytest.raises(ValueError, match="19 characters; azure allows at most 18"):
        AZURE.check_suffix("x" * 19)


def test_azure_model_names_use_dashes():
    assert "gpt-35-turbo-0125" in AZURE.fine_tunable and "gpt-3.5-turbo-0125" not in AZURE.fine_tunable
    assert "gpt-3.5-turbo-0125" in OPENAI.fine_tunable


def test_settings_come_from_the_environment_then_a_dotenv_file(monkeypatch, tmp_path):
    monkeypatch.delenv("AZURE_RESOURCE_GROUP", raising=False)
    env = tmp_path / ".env"
    env.write_text("AZURE_RESOURCE_GROUP=from-file\n")
    assert find_setting("AZURE_RESOURCE_GROUP", env) == "from-file"
    monkeypatch.setenv("AZURE_RESOURCE_GROUP", "from-env")
    assert find_setting("AZURE_RESOURCE_GROUP", env) == "from-env"
    assert find_setting("AZURE_RESOURCE_GROUP_MISSING", tmp_path / "absent.env") is None


def test_missing_settings_help_names_each_and_says_how():
    text = missing_settings_help(["AZURE_OPENAI_ENDPOINT", "AZURE_SUBSCRIPTION_ID"])
    assert "AZURE_OPENAI_ENDPOINT=..." in text and "az account show" in text and "dry_run=True" in text


def test_require_names_every_missing_setting_and_no_value(monkeypatch, tmp_path):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
    for name in ("AZURE_OPENAI_API_KEY", "AZURE_SUBSCRIPTION_ID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(CourseError) as err:
        require(["AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "AZURE_SUBSCRIPTION_ID"], tmp_path / "none.env")
    assert "Missing setting(s) AZURE_OPENAI_API_KEY, AZURE_SUBSCRIPTION_ID." in str(err.value)
    assert "res.openai.azure.com" not in str(err.value)


def test_every_provider_is_found_by_its_name_and_an_unknown_one_is_named():
    assert [get(name) for name in PROVIDERS] == [OPENAI, AZURE]
    with pytest.raises(CourseError, match="not 'bedrock'"):
        get("bedrock")
