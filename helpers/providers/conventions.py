"""What differs between fine-tuning on OpenAI and on Azure OpenAI, in one table: the client and the
settings it reads, naming, file and job life cycles, limits, result columns and the shapes of the
API's answers. The clients, the job helpers, the file checks and the emulator read it; nothing
else tests which provider it is talking to."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from helpers.errors import CourseError

AZURE_API_VERSION = "2025-04-01-preview"  # Azure's data plane: files, jobs, events, checkpoints
JOB_ENDED = ("succeeded", "failed", "cancelled")  # a job in one of these never changes again
JOB_STOPPED = ("failed", "cancelled")  # ended without a model: re-running a notebook may start anew


@dataclass(frozen=True)
class Provider:
    """One provider's conventions, as its API shows them."""
    name: str
    sdk_client: str               # the openai SDK class: openai.OpenAI or openai.AzureOpenAI
    client_settings: dict         # SDK argument -> the setting (environment variable) it is read from
    api_version: str | None       # default ?api-version= of every data-plane request; None: none is sent
    entra_id: bool                # signs in with a Microsoft Entra ID token as well as with a key
    fine_tunable: tuple[str, ...]
    model_refusal: tuple          # (code, param, message) the API answers for a model it does not fine-tune
    dpo_models: tuple[str, ...]   # base models that take method={"type": "dpo"}, and their fine-tunes
    dpo_refusal: tuple            # (code, param, message) for a DPO job on any other model
    rft_models: tuple[str, ...]   # base models that take method={"type": "reinforcement"} (and only that method)
    rft_refusal: tuple            # (code, param, message) for a reinforcement job on any other model, and for
                                  # another method on a reinforcement-only model ({method} names it)
    training_types: dict          # trainingType -> the oldest api-version that has it; empty: no such field
    suffix_limit: int
    id_digits: int                # hex digits after file- / ftjob- / ftevent-
    checkpoint_prefix: str
    new_file_status: str          # a fresh upload; jobs need "processed"
    job_statuses: tuple[str, str]  # while validating files, then while waiting for capacity
    organization_in_jobs: bool    # jobs name the organization that owns them
    auto_shown_as: object         # how a job shows a hyperparameter left to the provider
    empty_list_as_null: bool      # a job's empty lists (result_files) read null
    result_columns: dict          # results CSV header, from the course's internal names
    needs_deployment: bool        # a fine-tuned model answers only once deployed, by the deployment's name
    expects_bom: bool             # training files are documented as UTF-8 with a byte-order mark

    def new_id(self, prefix: str) -> str:
        """An object id in this provider's style."""
        return prefix + secrets.token_hex(self.id_digits // 2)

    def model_name(self, base: str, suffix: str, job_id: str) -> str:
        """The fine-tuned model's name: ft:<base>:<org>:<suffix>:<id> or <base>.ft-<id>[-suffix]."""
        if self.organization_in_jobs:
            return f"ft:{base}:emulator:{suffix}:{job_id[-8:]}"
        return f"{base}.ft-{job_id.removeprefix('ftjob-')}" + (f"-{suffix}" if suffix else "")

    def check_suffix(self, suffix: str) -> str:
        """The suffix, or a ValueError saying how long it may be here."""
        if len(suffix) > self.suffix_limit:
            raise ValueError(f"suffix {suffix!r} has {len(suffix)} characters; {self.name} allows at most "
                             f"{self.suffix_limit}")
        return suffix


# Reinforcement fine-tuning (RFT, graded by a grader) is for the reasoning model o4-mini on both providers
# (OpenAI's RFT guide; Azure's "Reinforcement fine-tuning" how-to, 2026), and o4-mini takes no other method.
_RFT_MODELS = ("o4-mini-2025-04-16",)

_OPENAI_COLUMNS = {"step": "step", "train_loss": "train_loss", "train_accuracy": "train_accuracy",
                   "valid_loss": "valid_loss", "valid_mean_token_accuracy": "valid_mean_token_accuracy"}
_AZURE_COLUMNS = {"step": "step", "train_loss": "train_loss", "train_accuracy": "train_mean_token_accuracy",
                  "valid_loss": "valid_loss", "valid_mean_token_accuracy": "validation_mean_token_accuracy",
                  "full_valid_loss": "full_valid_loss",
                  "full_valid_mean_token_accuracy": "full_valid_mean_token_accuracy"}

# DPO (direct preference optimization) is offered for the GPT-4o and GPT-4.1 families on both providers
# (OpenAI's and Azure's fine-tuning guides, 2026), not for GPT-3.5.
_DPO_MODELS = ("gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano-2025-04-14", "gpt-4o-mini-2024-07-18",
               "gpt-4o-2024-08-06")

OPENAI = Provider(
    name="openai", sdk_client="OpenAI", client_settings={"api_key": "OPENAI_API_KEY"}, api_version=None, entra_id=False,
    fine_tunable=("gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano-2025-04-14",
                  "gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "gpt-3.5-turbo-0125", "gpt-3.5-turbo-1106",
                  "gpt-3.5-turbo-0613", *_RFT_MODELS),
    model_refusal=("model_not_available", "model", "Model {model} is not available for fine-tuning or does not exist."),
    dpo_models=_DPO_MODELS,
    dpo_refusal=("invalid_request_error", "model", "Model {model} does not support the 'dpo' fine-tuning method."),
    rft_models=_RFT_MODELS,
    rft_refusal=("invalid_request_error", "model", "Model {model} does not support the '{method}' fine-tuning method."),
    training_types={}, suffix_limit=64, id_digits=24, checkpoint_prefix="ftckpt_", new_file_status="processed",
    job_statuses=("validating_files", "queued"), organization_in_jobs=True, auto_shown_as="auto",
    empty_list_as_null=False, result_columns=_OPENAI_COLUMNS, needs_deployment=False, expects_bom=False)

AZURE = Provider(
    name="azure", sdk_client="AzureOpenAI",
    client_settings={"azure_endpoint": "AZURE_OPENAI_ENDPOINT", "api_key": "AZURE_OPENAI_API_KEY"},
    api_version=AZURE_API_VERSION, entra_id=True,
    fine_tunable=("gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano-2025-04-14",
                  "gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "gpt-35-turbo-0125", "gpt-35-turbo-1106", *_RFT_MODELS),
    # what the service answers for an unknown model and for a missing trainingType alike
    model_refusal=("invalidPayload", None, "The specified base model does not support fine-tuning."),
    dpo_models=_DPO_MODELS,
    dpo_refusal=("invalidPayload", None, "The specified base model does not support the DPO training method."),
    rft_models=_RFT_MODELS,
    rft_refusal=("invalidPayload", None, "The specified base model does not support the {method} training method."),
    training_types={"Standard": "", "GlobalStandard": "", "developerTier": "2025-04-01-preview"},
    suffix_limit=18, id_digits=32, checkpoint_prefix="ftchkpt-", new_file_status="pending",
    job_statuses=("pending", "pending"), organization_in_jobs=False, auto_shown_as=-1, empty_list_as_null=True,
    result_columns=_AZURE_COLUMNS, needs_deployment=True, expects_bom=True)

PROVIDERS = {"openai": OPENAI, "azure": AZURE}

# Extra advice for error codes whose message alone misleads (keys are the API's error codes).
ERROR_HINTS = {
    "invalidPayload": ("\nOn Azure this also means: the model name is not one Azure fine-tunes here (use the "
                       "dated name, e.g. gpt-4o-mini-2024-07-18), or trainingType is missing from extra_body."),
    "DeploymentNotFound": ("\nOn Azure a model answers only through a deployment whose provisioningState is "
                           "Succeeded: deploy it, wait, and call it by the deployment name."),
}


def get(name: str) -> Provider:
    """The conventions of the provider called `name`, or a CourseError listing the known ones."""
    if name not in PROVIDERS:
        raise CourseError(f"provider must be one of {', '.join(map(repr, PROVIDERS))}, not {name!r}")
    return PROVIDERS[name]
