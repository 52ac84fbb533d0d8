"""Azure OpenAI plumbing: the live client (key or Entra ID), and deployments through the Azure
management API with a client that the emulator serves in a dry run, waiting, and clean-up."""

from __future__ import annotations

import atexit
import time
from pathlib import Path

from tqdm.auto import tqdm

from helpers.providers import ARM_API_VERSION, find_setting, missing_settings_help

ARM = "https://management.azure.com"
COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"


def _course_error(message: str):
    from helpers.jobs import CourseError

    return CourseError(message)


def _settings(names: list[str], env_file: str | Path | None) -> dict:
    """The named settings, or a CourseError listing the missing ones (values are never shown)."""
    values = {n: find_setting(n, env_file) for n in names}
    missing = [n for n, v in values.items() if not v]
    if missing:
        raise _course_error(missing_settings_help(missing))
    return values


def entra_credential():
    """azure-identity's DefaultAzureCredential (az login, managed identity, ...), or how to get it."""
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise _course_error("Entra ID sign-in needs azure-identity: pip install azure-identity, then az login. "
                            "Or use a key (entra_id=False).") from None
    return DefaultAzureCredential()


def live_client(api_version: str, entra_id: bool = False, env_file: str | Path | None = None):
    """An openai.AzureOpenAI client for your resource, signed in with its key or with Entra ID."""
    import openai

    if entra_id:
        endpoint = _settings(["AZURE_OPENAI_ENDPOINT"], env_file)["AZURE_OPENAI_ENDPOINT"]
        credential = entra_credential()  # a CourseError on how to install azure-identity if it is missing
        from azure.identity import get_bearer_token_provider

        provider = get_bearer_token_provider(credential, COGNITIVE_SCOPE)
        return openai.AzureOpenAI(azure_endpoint=endpoint, api_version=api_version, azure_ad_token_provider=provider)
    values = _settings(["AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY"], env_file)
    return openai.AzureOpenAI(azure_endpoint=values["AZURE_OPENAI_ENDPOINT"], api_version=api_version,
                              api_key=values["AZURE_OPENAI_API_KEY"])


def resource(client, env_file: str | Path | None = None) -> dict:
    """Subscription, resource group and account of the resource the client talks to."""
    if hasattr(client, "emulator"):
        from helpers.emulator_azure import resource as emulated

        return emulated()
    values = _settings(["AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP"], env_file)
    account = find_setting("AZURE_OPENAI_RESOURCE", env_file) or str(client.base_url.host).split(".")[0]
    return {"subscription": values["AZURE_SUBSCRIPTION_ID"], "resource_group": values["AZURE_RESOURCE_GROUP"],
            "account": account}


def management_client(client, env_file: str | Path | None = None):
    """An HTTP client for management.azure.com with a bearer token: the emulator's in a dry run;
    otherwise AZURE_MANAGEMENT_TOKEN (az account get-access-token) or azure-identity's sign-in."""
    from helpers.emulator import http_module

    hx = http_module()
    if hasattr(client, "emulator"):
        return hx.Client(base_url=ARM, transport=hx.MockTransport(client.emulator.handle),
                         headers={"Authorization": "Bearer emulator-management-token"})
    token = find_setting("AZURE_MANAGEMENT_TOKEN", env_file)
    if not token:
        token = entra_credential().get_token(ARM + "/.default").token
    return hx.Client(base_url=ARM, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def deployment_url(where: dict, name: str) -> str:
    """The management path of one deployment of the resource."""
    return (f"/subscriptions/{where['subscription']}/resourceGroups/{where['resource_group']}/providers/"
            f"Microsoft.CognitiveServices/accounts/{where['account']}/deployments/{name}")


def checked(response) -> dict:
    """The JSON of a management answer, or a CourseError with Azure's error code and message."""
    if response.status_code >= 400:
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        raise _course_error(f"Azure management API answered HTTP {response.status_code} "
                            f"[{error.get('code', '?')}]: {error.get('message', response.text[:300])}")
    return response.json() if response.content else {}


def wait_for_deployment(mgmt, url: str, poll_seconds: float = 10, timeout: float = 3600) -> dict:
    """Poll a deployment until its provisioningState is Succeeded (or a CourseError on failure)."""
    bar = tqdm(desc=url.rsplit("/", 1)[-1], unit="poll")
    start = time.monotonic()
    while True:
        found = checked(mgmt.get(url, params={"api-version": ARM_API_VERSION}))
        state = found["properties"]["provisioningState"]
        bar.set_postfix_str(state)
        bar.update(1)
        if state == "Succeeded":
            bar.close()
            return found
        if state in ("Failed", "Canceled"):
            bar.close()
            raise _course_error(f"Deployment {found['name']} ended {state}: see the Azure portal for the reason.")
        if time.monotonic() - start > timeout:
            bar.close()
            raise _course_error(f"Deployment is still {state} after {timeout:.0f} s: re-run this cell to keep waiting.")
        time.sleep(poll_seconds)


_pending_deletes: dict[str, object] = {}


def delete_at_exit(mgmt, url: str) -> None:
    """Delete the deployment when Python exits, unless `delete_deployment` ran first: a notebook
    that stops with an error does not leave a deployment billing by the hour."""
    def delete():
        try:
            mgmt.delete(url, params={"api-version": ARM_API_VERSION})
        except Exception:  # nothing to do at exit but try
            pass

    _pending_deletes[url] = delete
    atexit.register(delete)


def delete_deployment(mgmt, url: str) -> bool:
    """Delete a deployment now; True if it existed. Cancels the delete-at-exit for it."""
    pending = _pending_deletes.pop(url, None)
    if pending is not None:
        atexit.unregister(pending)
    response = mgmt.delete(url, params={"api-version": ARM_API_VERSION})
    checked(response)
    return response.status_code in (200, 202)


def deployment_exists(mgmt, url: str) -> bool:
    """Whether the deployment is still there."""
    response = mgmt.get(url, params={"api-version": ARM_API_VERSION})
    if response.status_code == 404:
        return False
    checked(response)
    return True
