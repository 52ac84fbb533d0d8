"""SDK clients whose requests never leave the process: an HTTP transport hands each one to an
`Emulator`. `openai_client()` is an `openai.OpenAI`, `azure_client()` an `openai.AzureOpenAI` with the
base model already deployed; `management_client()` reaches the same emulator's management API."""

from __future__ import annotations

import openai

from emulator import azure
from emulator.server import Emulator
from helpers.providers.conventions import get
from helpers.providers.http import http_module

FAKE_KEY = "sk-emulator-not-a-secret"
ENTRA_TOKEN = "emulator-entra-token"
OPENAI_URL = "https://emulator.invalid/v1"
AZURE_ENDPOINT = "https://course-emulator.openai.azure.com"
BASE_DEPLOYMENTS = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "o4-mini": "o4-mini-2025-04-16"}


def _transport(emulator: Emulator):
    hx = http_module()
    return hx.MockTransport(emulator.handle)


def client(provider: str = "openai", emulator: Emulator | None = None, max_retries: int = 2,
           api_version: str | None = None, entra_id: bool = False, base_deployments: dict | None = None,
           **settings):
    """The provider's SDK client wired to an emulator (a new one unless given; `settings` go to it).
    Where the provider versions its API, the client sends `api_version`; where models answer only
    through deployments, `base_deployments` (name -> model) are deployed and ready; `entra_id` signs
    in with a bearer token instead of a key."""
    spec = get(provider)
    emulator = emulator or Emulator(provider=spec.name, **settings)
    hx = http_module()
    args = {"max_retries": max_retries, "http_client": hx.Client(transport=_transport(emulator))}
    if spec.api_version:
        args.update(azure_endpoint=AZURE_ENDPOINT, api_version=api_version or spec.api_version)
    else:
        args["base_url"] = OPENAI_URL
    args.update({"azure_ad_token": ENTRA_TOKEN} if entra_id and spec.entra_id else {"api_key": FAKE_KEY})
    if spec.needs_deployment:
        for name, model in (base_deployments or BASE_DEPLOYMENTS).items():
            emulator.deployments.add(name, model, ready=True)
    sdk_client = getattr(openai, spec.sdk_client)(**args)
    sdk_client.emulator = emulator
    return sdk_client


def openai_client(emulator: Emulator | None = None, **options):
    """An `openai.OpenAI` client on an emulator (see `client`)."""
    return client("openai", emulator, **options)


def azure_client(emulator: Emulator | None = None, **options):
    """An `openai.AzureOpenAI` client on an Azure-flavoured emulator (see `client`)."""
    return client("azure", emulator, **options)


def management_client(sdk_client):
    """An HTTP client for management.azure.com, answered by the emulator behind `sdk_client`."""
    hx = http_module()
    return hx.Client(base_url=f"https://{azure.HOST}", transport=_transport(sdk_client.emulator),
                     headers={"Authorization": f"Bearer {azure.TOKEN}"})
