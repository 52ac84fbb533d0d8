"""Azure's deployments, as Azure Resource Manager (management.azure.com) shows them.

A deployment answers "Creating" for its first `polls` reads, then "Succeeded"; only then does its
name answer chat completions, as on Azure."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from emulator.common import ApiError

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "course-rg"
ACCOUNT = "course-emulator"
HOST = "management.azure.com"
TOKEN = "emulator-management-token"
ARM_PATH = (r"/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.CognitiveServices"
            r"/accounts/([^/]+)/deployments(?:/([^/]+))?")
SKUS = ("standard", "globalstandard", "developertier")
NOT_DEPLOYED = ("The API deployment for this resource does not exist. If you created the deployment "
                "within the last 5 minutes, please wait a moment and try again.")


def resource() -> dict:
    """The emulated Azure OpenAI resource: subscription, resource group and account name."""
    return {"subscription": SUBSCRIPTION, "resource_group": RESOURCE_GROUP, "account": ACCOUNT}


def _error(status: int, code: str, message: str) -> tuple[int, dict]:
    """ARM's error shape: {"error": {"code", "message"}}."""
    return status, {"error": {"code": code, "message": message}}


def _shown(deployment: dict) -> dict:
    return {k: v for k, v in deployment.items() if not k.startswith("_")}


class Deployments:
    """The account's deployments: created, read (each read moves a new one closer to Succeeded),
    listed and deleted through the management API."""

    def __init__(self, polls: int):
        self.polls = polls  # reads a new deployment answers "Creating"
        self.items: dict[str, dict] = {}

    def add(self, name: str, model: str, ready: bool = False, sku: dict | None = None) -> dict:
        """Record a deployment of `model` under `name`; `ready` skips the Creating phase."""
        arm_id = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
                  f"Microsoft.CognitiveServices/accounts/{ACCOUNT}/deployments/{name}")
        self.items[name] = {
            "id": arm_id, "type": "Microsoft.CognitiveServices/accounts/deployments", "name": name,
            "sku": sku or {"name": "Standard", "capacity": 1},
            "properties": {"model": {"format": "OpenAI", "name": model, "version": "1"},
                           "provisioningState": "Succeeded" if ready else "Creating"},
            "_polls_left": 0 if ready else self.polls}
        return self.items[name]

    def model_of(self, name: str) -> str:
        """The model behind a deployment name that is ready, or the 404 Azure answers."""
        found = self.items.get(name)
        if not found or found["properties"]["provisioningState"] != "Succeeded":
            raise ApiError(404, NOT_DEPLOYED, code="DeploymentNotFound")
        return found["properties"]["model"]["name"]

    def answer(self, request, query: dict, known: Callable[[str], bool]) -> tuple[int, dict | None]:
        """Route, authenticate and answer one management request; `known` tells which models exist."""
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return _error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        match = re.fullmatch(ARM_PATH, request.url.path)
        if not match:
            return _error(404, "InvalidResourceType", f"No route for {request.url.path}")
        if not query.get("api-version"):
            return _error(400, "MissingApiVersionParameter",
                          "The api-version query parameter (?api-version=) is required for all requests.")
        subscription, group, account, name = match.groups()
        if (subscription, group, account) != (SUBSCRIPTION, RESOURCE_GROUP, ACCOUNT):
            return _error(404, "ResourceNotFound", f"The Resource 'Microsoft.CognitiveServices/accounts/{account}' "
                                                   f"under resource group '{group}' was not found.")
        if name is None:
            return 200, {"value": [_shown(d) for d in self.items.values()]}
        if request.method == "PUT":
            return self._put(request, name, known)
        if request.method == "GET":
            return self._get(name)
        if request.method == "DELETE":
            return (200, None) if self.items.pop(name, None) is not None else (204, None)
        return _error(405, "MethodNotAllowed", f"{request.method} is not supported here")

    def _put(self, request, name: str, known: Callable[[str], bool]):
        """Create (201) or update (200) a deployment, after checking the body as ARM does."""
        try:
            body = json.loads(request.content or b"{}")
        except json.JSONDecodeError:
            return _error(400, "InvalidRequestContent", "The request content is not valid JSON.")
        sku, model = body.get("sku") or {}, ((body.get("properties") or {}).get("model")) or {}
        if (str(sku.get("name", "")).lower() not in SKUS or not isinstance(sku.get("capacity"), int)
                or sku["capacity"] < 1):
            return _error(400, "InvalidSku", f"sku must name one of {', '.join(SKUS)} with a capacity of 1 or more, "
                                             f"got {sku}")
        if model.get("format") != "OpenAI" or not model.get("name") or not model.get("version"):
            return _error(400, "InvalidResourceProperties",
                          "properties.model needs format 'OpenAI', the model's name and a version")
        if not known(model["name"]):
            return _error(400, "DeploymentModelNotSupported",
                          f"The model '{model['name']}' does not exist in account {ACCOUNT}.")
        existed = name in self.items
        return (200 if existed else 201), _shown(self.add(name, model["name"], sku=sku))

    def _get(self, name: str):
        """Read a deployment; each read moves a Creating one closer to Succeeded."""
        found = self.items.get(name)
        if found is None:
            return _error(404, "DeploymentNotFound", f"Deployment '{name}' not found in account {ACCOUNT}.")
        if found["_polls_left"] > 0:
            found["_polls_left"] -= 1
        elif found["properties"]["provisioningState"] == "Creating":
            found["properties"]["provisioningState"] = "Succeeded"
        return 200, _shown(found)
