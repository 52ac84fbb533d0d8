"""Talking to a provider's API: the client (the offline emulator's in a dry run, OpenAI's or your
Azure OpenAI resource's otherwise), API errors explained in one sentence, and chat requests."""

from __future__ import annotations

import contextlib
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
from tqdm.auto import tqdm

from helpers.data.datasets import prompt_messages
from helpers.errors import CourseError
from helpers.providers import conventions
from helpers.providers.conventions import ERROR_HINTS
from helpers.providers.settings import require

COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"  # Entra ID tokens for Azure OpenAI


def offline():
    """The offline API emulator, a package of its own: loaded for dry runs only (it brings torch and
    the embedded model), so a live run, or a course without it, never needs it."""
    try:
        import emulator
    except ImportError as err:
        raise CourseError(f"dry_run=True needs the course's offline emulator (the emulator/ folder beside "
                          f"helpers/), which could not be imported: {err}. Reinstall the course with "
                          "`make install`, or set dry_run=False to use the provider itself.") from None
    return emulator


def get_client(dry_run: bool, max_steps: int = 30, env_file: str | Path | None = None, provider: str = "openai",
               api_version: str | None = None, entra_id: bool = False):
    """The emulator's client in a dry run; otherwise a real openai.OpenAI or openai.AzureOpenAI client,
    or a CourseError on how to provide the settings it lacks. Keys are never printed."""
    spec = conventions.get(provider)
    version = (api_version or spec.api_version) if spec.api_version else None  # unversioned APIs take none
    if entra_id and not spec.entra_id:
        raise CourseError(f"Entra ID sign-in is for Azure OpenAI; {spec.name} takes a key (entra_id=False).")
    if dry_run:
        return offline().client(spec.name, max_steps=max_steps, api_version=version, entra_id=entra_id)
    names = dict(spec.client_settings)
    extra = {"api_version": version} if version else {}
    if entra_id:
        del names["api_key"]
        extra["azure_ad_token_provider"] = entra_token_provider()
    values = require(list(names.values()), env_file)
    return getattr(openai, spec.sdk_client)(**{arg: values[name] for arg, name in names.items()}, **extra)


def entra_credential():
    """azure-identity's DefaultAzureCredential (az login, managed identity, ...), or how to get it."""
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise CourseError("Entra ID sign-in needs azure-identity: pip install azure-identity, then az login. "
                          "Or use a key (entra_id=False).") from None
    return DefaultAzureCredential()


def entra_token_provider():
    """A bearer-token provider for Azure OpenAI from your Entra ID sign-in."""
    credential = entra_credential()  # a CourseError on how to install azure-identity if it is missing
    from azure.identity import get_bearer_token_provider

    return get_bearer_token_provider(credential, COGNITIVE_SCOPE)


@contextlib.contextmanager
def explained_errors():
    """Turn an API error that retries could not fix into one clear sentence on what to do."""
    try:
        yield
    except openai.AuthenticationError:
        raise CourseError("The key was refused: check OPENAI_API_KEY or AZURE_OPENAI_API_KEY, and the endpoint "
                          "(the key is never printed).") from None
    except openai.RateLimitError as err:
        raise CourseError(f"Still rate limited after the client's retries ({err.message}). "
                          "Wait a minute and re-run this cell.") from None
    except openai.APIStatusError as err:
        body = (err.body or {}) if isinstance(err.body, dict) else {}
        where = f" (parameter {body['param']!r})" if body.get("param") else ""
        code = f" [{body['code']}]" if body.get("code") else ""
        hint = ERROR_HINTS.get(body.get("code"), "")
        detail = body.get("detail")  # servers built on FastAPI (transformers serve) explain themselves here
        message = detail if isinstance(detail, str) else err.message
        raise CourseError(f"The API refused the request with HTTP {err.status_code}{code}{where}: "
                          f"{message}{hint}") from None
    except openai.APIConnectionError:
        raise CourseError("Could not reach the API (network). Check the connection, or use dry_run=True.") from None


def ask(client, model: str, messages: list[dict], **options) -> str:
    """One chat completion's text (greedy unless told otherwise, or unless `max_completion_tokens` says it is a
    reasoning model, which takes only its default temperature). On Azure `model` is a deployment name."""
    if "max_completion_tokens" not in options:
        options.setdefault("temperature", 0)
    with explained_errors():
        reply = client.chat.completions.create(model=model, messages=messages, **options)
    return reply.choices[0].message.content or ""


def ask_all(client, model: str, rows: list[dict], label: str | None = None, max_tokens: int = 60,
            workers: int = 8, reasoning: bool = False) -> list[str]:
    """Greedy replies of `model` to each example's prompt (its messages before the answer), `workers`
    requests at a time (the emulator answers concurrent ones in a batch), in order, with a progress bar.
    `reasoning`: a reasoning model (o4-mini), asked with `max_completion_tokens` (its hidden reasoning counts
    against it) at its default temperature, since it refuses `max_tokens` and `temperature`."""
    limit = {"max_completion_tokens": max_tokens} if reasoning else {"max_tokens": max_tokens}

    def one(row: dict) -> str:
        return ask(client, model, prompt_messages(row), **limit)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(one, rows), total=len(rows), desc=label or model, leave=False))


def first_words(client, model: str, rows: list[dict], top: int = 20) -> list[dict[str, float]]:
    """How each example's reply would start: the probability of each of the `top` likeliest first tokens of
    `model`'s answer (spaces stripped), read from the chat API's `logprobs`, which OpenAI's and Azure's chat
    completions return."""
    found = []
    for row in rows:
        with explained_errors():
            reply = client.chat.completions.create(model=model, messages=prompt_messages(row), max_tokens=1,
                                                   temperature=0, logprobs=True, top_logprobs=top)
        probabilities: dict[str, float] = {}
        for token in reply.choices[0].logprobs.content[0].top_logprobs:
            word = token.token.strip() or repr(token.token)
            probabilities[word] = probabilities.get(word, 0.0) + math.exp(token.logprob)
        found.append(probabilities)
    return found
