"""Azure OpenAI deployments, through the Azure management API (Azure Resource Manager,
management.azure.com): which resource the client talks to, a management client with a bearer
token (the emulator's in a dry run), deploying, waiting, and deleting, also at exit."""

from __future__ import annotations

import atexit
import time
from pathlib import Path

from tqdm.auto import tqdm

from helpers.errors import CourseError
from helpers.providers.api import entra_credential, offline
from helpers.providers.http import http_module
from helpers.providers.settings import find_setting, require

ARM = "https://management.azure.com"
ARM_API_VERSION = "2024-10-01"  # the management API's own version, not the data plane's


def resource(client, dry_run: bool, env_file: str | Path | None = None) -> dict:
    """Subscription, resource group and account of the resource the client talks to (in a dry run,
    the emulator's)."""
    if dry_run:
        return offline().resource()
    values = require(["AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP"], env_file)
    account = find_setting("AZURE_OPENAI_RESOURCE", env_file) or str(client.base_url.host).split(".")[0]
    return {"subscription": values["AZURE_SUBSCRIPTION_ID"], "resource_group": values["AZURE_RESOURCE_GROUP"],
            "account": account}


def management_client(client, dry_run: bool, env_file: str | Path | None = None):
    """An HTTP client for management.azure.com with a bearer token: the emulator's in a dry run;
    otherwise AZURE_MANAGEMENT_TOKEN (az account get-access-token) or azure-identity's sign-in."""
    if dry_run:
        return offline().management_client(client)
    token = find_setting("AZURE_MANAGEMENT_TOKEN", env_file)
    if not token:
        token = entra_credential().get_token(ARM + "/.default").token
    hx = http_module()
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
        raise CourseError(f"Azure management API answered HTTP {response.status_code} "
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
            raise CourseError(f"Deployment {found['name']} ended {state}: see the Azure portal for the reason.")
        if time.monotonic() - start > timeout:
            bar.close()
            raise CourseError(f"Deployment is still {state} after {timeout:.0f} s: re-run this cell to keep waiting.")
        time.sleep(poll_seconds)


_pending_deletes: dict[str, object] = {}


def delete_at_exit(mgmt, url: str):
    """Delete the deployment when Python exits, unless `delete_deployment` ran first: a notebook
    that stops with an error does not leave a deployment billing by the hour. Returns what will run."""
    def delete():
        try:
            mgmt.delete(url, params={"api-version": ARM_API_VERSION})
        except Exception:  # nothing to do at exit but try
            pass

    _pending_deletes[url] = delete
    atexit.register(delete)
    return delete


def pending_deletes() -> list[str]:
    """The deployments that will be deleted at exit."""
    return list(_pending_deletes)


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
