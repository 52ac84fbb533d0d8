"""What differs between fine-tuning on OpenAI and on Azure OpenAI, in one place: settings and
keys, naming, job and file life cycles, limits and result columns. The notebooks, the job
helpers and the emulator all read these tables instead of testing for a provider themselves."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

AZURE_API_VERSION = "2025-04-01-preview"  # data plane: files, jobs, events, checkpoints
ARM_API_VERSION = "2024-10-01"            # control plane (management.azure.com): deployments
TRAINING_TYPES = ("Standard", "GlobalStandard", "developerTier")


@dataclass(frozen=True)
class Provider:
    """One provider's conventions, as its API shows them."""
    name: str
    settings: tuple[str, ...]     # environment variables a live run reads (the first is the key)
    fine_tunable: tuple[str, ...]
    suffix_limit: int
    id_digits: int                # hex digits after file- / ftjob- / ftevent-
    checkpoint_prefix: str
    new_file_status: str          # a fresh upload; jobs need "processed"
    job_statuses: tuple[str, str]  # while validating files, then while waiting for capacity
    result_columns: dict          # results CSV header, from the course's internal names
    needs_deployment: bool        # a fine-tuned model answers only once deployed

    def new_id(self, prefix: str) -> str:
        """An object id in this provider's style."""
        return prefix + secrets.token_hex(self.id_digits // 2)

    def model_name(self, base: str, suffix: str, job_id: str) -> str:
        """The fine-tuned model's name: ft:<base>:<org>:<suffix>:<id> or <base>.ft-<id>[-suffix]."""
        if self.name == "openai":
            return f"ft:{base}:emulator:{suffix}:{job_id[-8:]}"
        return f"{base}.ft-{job_id.removeprefix('ftjob-')}" + (f"-{suffix}" if suffix else "")

    def check_suffix(self, suffix: str) -> str:
        """The suffix, or a ValueError saying how long it may be here."""
        if len(suffix) > self.suffix_limit:
            raise ValueError(f"suffix {suffix!r} has {len(suffix)} characters; {self.name} allows at most "
                             f"{self.suffix_limit}")
        return suffix


_OPENAI_COLUMNS = {"step": "step", "train_loss": "train_loss", "train_accuracy": "train_accuracy",
                   "valid_loss": "valid_loss", "valid_mean_token_accuracy": "valid_mean_token_accuracy"}
_AZURE_COLUMNS = {"step": "step", "train_loss": "train_loss", "train_accuracy": "train_mean_token_accuracy",
                  "valid_loss": "valid_loss", "valid_mean_token_accuracy": "validation_mean_token_accuracy",
                  "full_valid_loss": "full_valid_loss",
                  "full_valid_mean_token_accuracy": "full_valid_mean_token_accuracy"}

OPENAI = Provider(
    name="openai", settings=("OPENAI_API_KEY",),
    fine_tunable=("gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano-2025-04-14",
                  "gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "gpt-3.5-turbo-0125", "gpt-3.5-turbo-1106",
                  "gpt-3.5-turbo-0613"),
    suffix_limit=64, id_digits=24, checkpoint_prefix="ftckpt_", new_file_status="processed",
    job_statuses=("validating_files", "queued"), result_columns=_OPENAI_COLUMNS, needs_deployment=False)

AZURE = Provider(
    name="azure",
    settings=("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP",
              "AZURE_OPENAI_RESOURCE"),
    fine_tunable=("gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano-2025-04-14",
                  "gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "gpt-35-turbo-0125", "gpt-35-turbo-1106"),
    suffix_limit=18, id_digits=32, checkpoint_prefix="ftchkpt-", new_file_status="pending",
    job_statuses=("pending", "pending"), result_columns=_AZURE_COLUMNS, needs_deployment=True)

PROVIDERS = {"openai": OPENAI, "azure": AZURE}

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
    from dotenv import dotenv_values, find_dotenv

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

# Extra advice for error codes whose message alone misleads (keys are the API's error codes).
ERROR_HINTS = {
    "invalidPayload": ("\nOn Azure this also means: the model name is not one Azure fine-tunes here (use the "
                       "dated name, e.g. gpt-4o-mini-2024-07-18), or trainingType is missing from extra_body."),
    "DeploymentNotFound": ("\nOn Azure a model answers only through a deployment whose provisioningState is "
                           "Succeeded: deploy it, wait, and call it by the deployment name."),
}
