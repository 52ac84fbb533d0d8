"""Azure's side of the emulator: deployments through the management API (management.azure.com)
and chat completions addressed to a deployment (/openai/deployments/{name}/chat/completions).

A deployment answers "Creating" for its first `Emulator.deploy_polls` reads, then "Succeeded";
only then does its name answer chat completions, as on Azure."""

from __future__ import annotations

import json
import re
import time

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "course-rg"
ACCOUNT = "course-emulator"
ARM_PATH = (r"/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.CognitiveServices"
            r"/accounts/([^/]+)/deployments(?:/([^/]+))?")
SKUS = ("standard", "globalstandard", "developertier")
NOT_DEPLOYED = ("The API deployment for this resource does not exist. If you created the deployment "
                "within the last 5 minutes, please wait a moment and try again.")


def resource() -> dict:
    """The emulated Azure OpenAI resource: subscription, resource group and account name."""
    return {"subscription": SUBSCRIPTION, "resource_group": RESOURCE_GROUP, "account": ACCOUNT}


def add_deployment(em, name: str, model: str, ready: bool = False, sku: dict | None = None) -> dict:
    """Record a deployment of `model` under `name`; `ready` skips the Creating phase."""
    arm_id = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
              f"Microsoft.CognitiveServices/accounts/{ACCOUNT}/deployments/{name}")
    em.deployments[name] = {
        "id": arm_id, "type": "Microsoft.CognitiveServices/accounts/deployments", "name": name,
        "sku": sku or {"name": "Standard", "capacity": 1},
        "properties": {"model": {"format": "OpenAI", "name": model, "version": "1"},
                       "provisioningState": "Succeeded" if ready else "Creating"},
        "_polls_left": 0 if ready else em.deploy_polls, "_created": time.time()}
    return em.deployments[name]


def deployed_model(em, name: str) -> str:
    """The model behind a deployment name that is ready, or the 404 Azure answers."""
    from helpers.emulator import ApiError

    found = em.deployments.get(name)
    if not found or found["properties"]["provisioningState"] != "Succeeded":
        raise ApiError(404, NOT_DEPLOYED, code="DeploymentNotFound")
    return found["properties"]["model"]["name"]


def deployment_chat(em, request, query, name):
    """POST /openai/deployments/{name}/chat/completions: the model is the deployment's."""
    from helpers.emulator_jobs import complete

    model = deployed_model(em, name)
    body = json.loads(request.content or b"{}")
    return 200, complete(em, model, body)


ROUTES = [("POST", r"/deployments/([^/]+)/chat/completions", deployment_chat)]


# -- management.azure.com ----------------------------------------------------------------------
def handle_management(em, request, query: dict):
    """Answer one Azure Resource Manager request for the account's deployments."""
    from helpers.emulator import http_module

    hx = http_module()
    em.requests += 1
    status, body = _arm(em, request, query)
    return hx.Response(status, json=body) if body is not None else hx.Response(status)


def _arm_error(status: int, code: str, message: str) -> tuple[int, dict]:
    return status, {"error": {"code": code, "message": message}}


def _arm(em, request, query: dict) -> tuple[int, dict | None]:
    """Route, authenticate and answer; ARM's error shape is {"error": {"code", "message"}}."""
    if not request.headers.get("authorization", "").startswith("Bearer "):
        return _arm_error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
    match = re.fullmatch(ARM_PATH, request.url.path)
    if not match:
        return _arm_error(404, "InvalidResourceType", f"No route for {request.url.path}")
    if not query.get("api-version"):
        return _arm_error(400, "MissingApiVersionParameter",
                          "The api-version query parameter (?api-version=) is required for all requests.")
    subscription, group, account, name = match.groups()
    if (subscription, group, account) != (SUBSCRIPTION, RESOURCE_GROUP, ACCOUNT):
        return _arm_error(404, "ResourceNotFound", f"The Resource 'Microsoft.CognitiveServices/accounts/{account}' "
                                                   f"under resource group '{group}' was not found.")
    if name is None:
        return 200, {"value": [_shown(d) for d in em.deployments.values()]}
    handler = {"PUT": _put, "GET": _get, "DELETE": _delete}.get(request.method)
    if handler is None:
        return _arm_error(405, "MethodNotAllowed", f"{request.method} is not supported here")
    return handler(em, request, name)


def _shown(deployment: dict) -> dict:
    return {k: v for k, v in deployment.items() if not k.startswith("_")}


def _put(em, request, name: str):
    """Create (201) or update (200) a deployment, after checking the body as ARM does."""
    try:
        body = json.loads(request.content or b"{}")
    except json.JSONDecodeError:
        return _arm_error(400, "InvalidRequestContent", "The request content is not valid JSON.")
    sku, model = body.get("sku") or {}, ((body.get("properties") or {}).get("model")) or {}
    if str(sku.get("name", "")).lower() not in SKUS or not isinstance(sku.get("capacity"), int) or sku["capacity"] < 1:
        return _arm_error(400, "InvalidSku", f"sku must name one of {', '.join(SKUS)} with a capacity of 1 or more, "
                                             f"got {sku}")
    if model.get("format") != "OpenAI" or not model.get("name") or not model.get("version"):
        return _arm_error(400, "InvalidResourceProperties",
                          "properties.model needs format 'OpenAI', the model's name and a version")
    known = model["name"] in em.adapters or model["name"] in em.spec.fine_tunable
    if not known:
        return _arm_error(400, "DeploymentModelNotSupported",
                          f"The model '{model['name']}' does not exist in account {ACCOUNT}.")
    existed = name in em.deployments
    created = add_deployment(em, name, model["name"], sku=sku)
    return (200 if existed else 201), _shown(created)


def _get(em, request, name: str):
    """Read a deployment; each read moves a Creating one closer to Succeeded."""
    found = em.deployments.get(name)
    if found is None:
        return _arm_error(404, "DeploymentNotFound", f"Deployment '{name}' not found in account {ACCOUNT}.")
    if found["_polls_left"] > 0:
        found["_polls_left"] -= 1
    elif found["properties"]["provisioningState"] == "Creating":
        found["properties"]["provisioningState"] = "Succeeded"
    return 200, _shown(found)


def _delete(em, request, name: str):
    """Delete a deployment: 200 when it existed, 204 when there was nothing to delete."""
    if em.deployments.pop(name, None) is None:
        return 204, None
    return 200, None

