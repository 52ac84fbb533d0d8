"""Settings a live run reads (keys, endpoints, Azure resource names): from the environment, a .env
file or Colab's secrets. Values are never printed; a missing one gets a message on how to add it."""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values, find_dotenv

from helpers.errors import CourseError

SETTING_HELP = {
    "OPENAI_API_KEY": "your OpenAI API key (sk-...)",
    "AZURE_OPENAI_API_KEY": "a key of your Azure OpenAI resource (portal: Resource -> Keys and Endpoint)",
    "AZURE_OPENAI_ENDPOINT": "https://<resource>.openai.azure.com (same page)",
    "AZURE_SUBSCRIPTION_ID": "the subscription id, for deploying (az account show --query id -o tsv)",
    "AZURE_RESOURCE_GROUP": "the resource group of the Azure OpenAI resource",
    "AZURE_OPENAI_RESOURCE": "the resource (account) name, the <resource> of the endpoint",
}


def find_setting(name: str, env_file: str | Path | None = None) -> str | None:
    """A setting from the environment, a .env file, or Colab's secrets; None if absent."""
    if os.environ.get(name):
        return os.environ[name]
    path = env_file or find_dotenv(usecwd=True)
    value = dotenv_values(path).get(name) if path and Path(path).exists() else None
    if value:
        return value
    try:
        from google.colab import userdata  # only inside Colab

        return userdata.get(name)
    except Exception:
        return None


def missing_settings_help(names: list[str]) -> str:
    """How to provide the settings that are missing, without showing any value."""
    lines = "\n".join(f"  {n}=...   # {SETTING_HELP.get(n, '')}" for n in names)
    return (f"Missing setting(s) {', '.join(names)}. Provide each in any of these ways, then re-run:\n"
            f"  - the environment: export NAME=value\n"
            f"  - a .env file beside the notebook or in the course folder, one per line:\n{lines}\n"
            f"  - Google Colab: the key icon (Secrets) -> add each NAME, allow notebook access\n"
            f"Or keep dry_run=True: the offline emulator needs none of them.")


def require(names: list[str], env_file: str | Path | None = None) -> dict[str, str]:
    """The named settings, or a CourseError listing every missing one (values are never shown)."""
    values = {n: find_setting(n, env_file) for n in names}
    missing = [n for n, v in values.items() if not v]
    if missing:
        raise CourseError(missing_settings_help(missing))
    return values
