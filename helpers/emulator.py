"""An offline stand-in for OpenAI's and Azure OpenAI's fine-tuning APIs that really trains.

`openai_client()` returns an `openai.OpenAI` client, `azure_client()` an `openai.AzureOpenAI`
client, whose requests never leave the process: an HTTP transport hands them to an `Emulator`,
which implements files, fine_tuning.jobs (events, checkpoints, cancel, metadata filter, cursor
pagination), chat.completions and models, in the chosen provider's shapes (`helpers.providers`).
A job validates its file with `helpers.validate`, then fine-tunes the embedded
SmolLM2-135M-Instruct with LoRA for a bounded number of steps: the loss in its events is real,
and chat completions on the fine-tuned model answer with the trained adapter. Azure's
deployments (management.azure.com) are served by `helpers.emulator_azure`.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import re
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

import openai

from helpers.providers import AZURE_API_VERSION, PROVIDERS, TRAINING_TYPES, Provider

FINE_TUNABLE = PROVIDERS["openai"].fine_tunable
PREFIXES = ("/openai/v1", "/openai", "/v1")  # OpenAI, Azure and Azure's v1 route
BASE_LEARNING_RATE = 1e-3  # LoRA rate that learning_rate_multiplier scales
FAKE_KEY = "sk-emulator-not-a-secret"
AZURE_ENDPOINT = "https://course-emulator.openai.azure.com"
MANAGEMENT_HOST = "management.azure.com"


def http_module():
    """httpx2 for openai >= 3 (its default client), httpx before."""
    if int(openai.__version__.split(".")[0]) >= 3:
        import httpx2

        return httpx2
    import httpx

    return httpx


@dataclass
class Faults:
    """Failures to inject, for tests: each count is used up by the next requests or jobs."""
    rate_limits: int = 0          # answer 429 with retry-after-ms
    server_errors: int = 0        # answer 500
    retry_after_ms: int = 10
    fail_jobs: int = 0            # jobs that fail while running, with failure_code
    failure_code: str = "server_error"
    step_delay: float = 0.0       # seconds added to each training step (a slow job)


@dataclass
class Emulator:
    """The state of one emulated account: files, jobs, events, checkpoints and models."""
    max_steps: int = 30           # training steps a job runs at most (a real job runs all epochs)
    batch_size: int = 4           # examples per step for "auto" (OpenAI picks small batches for small files)
    provider: str = "openai"      # whose shapes to answer in: "openai" or "azure"
    file_seconds: float = 0.3     # Azure: an upload stays "pending" this long
    deploy_polls: int = 2         # Azure: a new deployment reads "Creating" this many times
    deployments: dict = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    files: dict = field(default_factory=dict)
    contents: dict = field(default_factory=dict)
    jobs: dict = field(default_factory=dict)
    events: dict = field(default_factory=dict)
    checkpoints: dict = field(default_factory=dict)
    adapters: dict = field(default_factory=dict)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="openai-emulator-")))
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list = field(default_factory=list)
    _models: dict = field(default_factory=dict)
    requests: int = 0             # requests answered, retries included
    generate_calls: int = 0       # model.generate runs (concurrent greedy requests share one)

    def __post_init__(self):
        if self.provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {sorted(PROVIDERS)}, not {self.provider!r}")
        # adapters and trainer files live as long as the emulator
        weakref.finalize(self, shutil.rmtree, self.workdir, ignore_errors=True)

    @property
    def spec(self) -> Provider:
        """The provider whose conventions this emulator follows."""
        return PROVIDERS[self.provider]

    # -- HTTP ---------------------------------------------------------------------------------
    def handle(self, request):
        """Answer one SDK request (an httpx or httpx2 Request) with a Response."""
        hx = http_module()
        self.requests += 1
        fault = self._fault()
        if fault:
            return hx.Response(fault[0], json=_error(fault[1], "server_error"), headers=fault[2])
        from helpers import emulator_azure

        query = dict(parse_qsl(request.url.query.decode() if isinstance(request.url.query, bytes)
                               else str(request.url.query)))
        if request.url.host == MANAGEMENT_HOST:
            return emulator_azure.handle_management(self, request, query)
        path = request.url.path
        for prefix in PREFIXES:
            if path.startswith(prefix + "/"):
                path = path[len(prefix):]
                break
        try:
            self._check_access(request, query, prefix)
            for method, pattern, name in ROUTES + emulator_azure.ROUTES:
                match = re.fullmatch(pattern, path)
                if match and method == request.method:
                    handler = getattr(self, name) if isinstance(name, str) else name.__get__(self)
                    status, body = handler(request, query, *match.groups())
                    if isinstance(body, bytes):
                        return hx.Response(status, content=body)
                    return hx.Response(status, json=body)
        except ApiError as err:
            return hx.Response(err.status, json=_error(err.message, err.kind, err.param, err.code))
        return hx.Response(404, json=_error(f"Unknown endpoint {request.method} {path}", "invalid_request_error"))

    def _check_access(self, request, query: dict, prefix: str) -> None:
        """A key is required; Azure's /openai/... routes also need ?api-version=."""
        headers = request.headers
        if not headers.get("api-key") and not headers.get("authorization", "").startswith("Bearer "):
            raise ApiError(401, "Access denied: no api-key header and no Authorization: Bearer token.",
                           kind="authentication_error", code="401")
        if self.provider == "azure" and prefix == "/openai" and not query.get("api-version"):
            raise ApiError(400, "The api-version query parameter (?api-version=) is required for all requests.",
                           code="MissingApiVersionParameter")

    def _fault(self):
        """(status, message, headers) of an injected failure, or None."""
        with self.lock:
            if self.faults.rate_limits:
                self.faults.rate_limits -= 1
                return 429, "Rate limit reached (injected)", {"retry-after-ms": str(self.faults.retry_after_ms)}
            if self.faults.server_errors:
                self.faults.server_errors -= 1
                return 500, "The server had an error (injected)", {}
        return None

    # -- files --------------------------------------------------------------------------------
    def create_file(self, request, query):
        fields = _multipart(request)
        if "file" not in fields or not isinstance(fields["file"], tuple):
            raise ApiError(400, "Upload a file in the 'file' field", param="file")
        filename, data = fields["file"]
        purpose = fields.get("purpose", "")
        if purpose not in ("fine-tune", "assistants", "batch", "vision", "user_data", "evals"):
            raise ApiError(400, f"Invalid purpose {purpose!r}", param="purpose")
        if purpose == "fine-tune" and not filename.endswith(".jsonl"):
            raise ApiError(400, "Fine-tuning files must be .jsonl", param="file", code="invalid_file_format")
        return 200, self._store_file(filename, data, purpose)

    def _store_file(self, filename: str, data: bytes, purpose: str) -> dict:
        pending = self.spec.new_file_status != "processed" and purpose == "fine-tune"
        meta = {"id": self.spec.new_id("file-"), "object": "file", "bytes": len(data), "created_at": _now(),
                "filename": filename, "purpose": purpose, "status": "pending" if pending else "processed",
                "status_details": None, "_ready_at": time.monotonic() + (self.file_seconds if pending else 0)}
        with self.lock:
            self.files[meta["id"]] = meta
            self.contents[meta["id"]] = data
        return _public(meta)

    def list_files(self, request, query):
        found = [self._file(f) for f in list(self.files) if query.get("purpose") in (None, self.files[f]["purpose"])]
        found.sort(key=lambda f: f["created_at"], reverse=query.get("order", "desc") == "desc")
        return 200, _page(found, query, default_limit=10000)

    def get_file(self, request, query, file_id):
        return 200, self._file(file_id)

    def delete_file(self, request, query, file_id):
        self._file(file_id)
        with self.lock:
            del self.files[file_id], self.contents[file_id]
        return 200, {"id": file_id, "object": "file", "deleted": True}

    def file_content(self, request, query, file_id):
        self._file(file_id)
        return 200, self.contents[file_id]

    def _file(self, file_id: str) -> dict:
        """A file as the API shows it; an upload turns "processed" once its time has come."""
        if file_id not in self.files:
            raise ApiError(404, f"No such File object: {file_id}", param="id")
        meta = self.files[file_id]
        if meta["status"] == "pending" and time.monotonic() >= meta["_ready_at"]:
            meta["status"] = "processed"
        return _public(meta)

    # -- jobs ---------------------------------------------------------------------------------
    def create_job(self, request, query):
        body = json.loads(request.content or b"{}")
        model, training = body.get("model"), body.get("training_file")
        if self.provider == "azure":
            _check_azure_job(body, query)
        elif model not in FINE_TUNABLE:
            raise ApiError(400, f"Model {model} is not available for fine-tuning or does not exist.",
                           param="model", code="model_not_available")
        for key in ("training_file", "validation_file"):
            if body.get(key) and body[key] not in self.files:
                raise ApiError(400, f"invalid {key}: file {body[key]} does not exist", param=key,
                               code=f"invalid_{key}")
            if body.get(key) and self._file(body[key])["status"] != "processed":
                raise ApiError(400, f"The file {body[key]} is not ready yet (status "
                               f"{self._file(body[key])['status']}): wait until it is processed.", param=key,
                               code="invalidPayload")
        if not training:
            raise ApiError(400, "Missing required parameter: 'training_file'.", param="training_file")
        suffix = body.get("suffix") or ""
        try:
            self.spec.check_suffix(suffix)
        except ValueError as err:
            raise ApiError(400, str(err), param="suffix") from None
        metadata = body.get("metadata") or {}
        if len(metadata) > 16:
            raise ApiError(400, "metadata holds at most 16 pairs", param="metadata")
        hyper = _hyperparameters(body)
        job = {"id": self.spec.new_id("ftjob-"), "object": "fine_tuning.job", "created_at": _now(), "error": None,
               "fine_tuned_model": None, "finished_at": None, "hyperparameters": hyper, "model": model,
               "organization_id": "org-emulator", "result_files": [], "seed": body.get("seed", 42),
               "status": self.spec.job_statuses[0], "trained_tokens": None, "training_file": training,
               "validation_file": body.get("validation_file"), "estimated_finish": None,
               "integrations": None, "metadata": metadata or None, "suffix": suffix,
               "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
               "_training_type": body.get("trainingType")}
        with self.lock:
            self.jobs[job["id"]] = job
            self.events[job["id"]], self.checkpoints[job["id"]] = [], []
        self._event(job["id"], f"Created fine-tuning job: {job['id']}")
        worker = threading.Thread(target=self._run_job, args=(job["id"],), daemon=True)
        self.threads.append(worker)
        worker.start()
        return 200, self._public_job(job)

    def list_jobs(self, request, query):
        wanted = {k[len("metadata["):-1]: v for k, v in query.items() if k.startswith("metadata[")}
        found = [j for j in self.jobs.values()
                 if all((j["metadata"] or {}).get(k) == v for k, v in wanted.items())]
        found.sort(key=lambda j: (j["created_at"], j["id"]), reverse=True)
        return 200, _page([self._public_job(j) for j in found], query)

    def get_job(self, request, query, job_id):
        return 200, self._public_job(self._job(job_id))

    def cancel_job(self, request, query, job_id):
        job = self._job(job_id)
        if job["status"] in ("succeeded", "failed", "cancelled"):
            raise ApiError(400, f"Job {job_id} has already {job['status']}", param="fine_tuning_job_id")
        job["_cancel"] = True
        job["status"] = "cancelled"
        self._event(job_id, "Job was cancelled")
        return 200, self._public_job(job)

    def list_events(self, request, query, job_id):
        self._job(job_id)
        return 200, _page(list(reversed(self.events[job_id])), query)

    def list_checkpoints(self, request, query, job_id):
        self._job(job_id)
        return 200, _page(list(reversed(self.checkpoints[job_id])), query, default_limit=10)

    def _public_job(self, job: dict) -> dict:
        """A job as the API shows it; Azure writes "auto" as -1 and has no files or org until the end."""
        shown = _public(job)
        if self.provider == "azure":
            auto = {k: (-1 if v == "auto" else v) for k, v in job["hyperparameters"].items()}
            shown.update(hyperparameters=auto, organization_id=None,
                         result_files=job["result_files"] or None)
        return shown

    def _job(self, job_id: str) -> dict:
        if job_id not in self.jobs:
            raise ApiError(404, f"Could not find fine-tuning job {job_id}", param="fine_tuning_job_id")
        return self.jobs[job_id]

    def _event(self, job_id: str, message: str, data: dict | None = None, level: str = "info") -> None:
        event = {"id": self.spec.new_id("ftevent-"), "object": "fine_tuning.job.event", "created_at": _now(),
                 "level": level, "message": message, "data": data or {},
                 "type": "metrics" if data else "message"}
        with self.lock:
            self.events[job_id].append(event)

    # -- the job itself -------------------------------------------------------------------------
    def _run_job(self, job_id: str) -> None:
        """validating_files -> queued -> running -> succeeded | failed | cancelled, for real."""
        from helpers.emulator_jobs import run_job

        try:
            run_job(self, self.jobs[job_id])
        except Exception as err:  # the job fails; the emulator keeps serving
            self._fail(job_id, "server_error", f"Training failed inside the emulator: {err}")

    def _fail(self, job_id: str, code: str, message: str, param: str | None = None) -> None:
        job = self.jobs[job_id]
        job.update(status="failed", finished_at=_now(), error={"code": code, "message": message, "param": param})
        self._event(job_id, f"Fine-tuning job failed: {message}", level="error")

    def wait(self, timeout: float = 600) -> None:
        """Block until every job thread has finished (tests use it)."""
        for worker in list(self.threads):
            worker.join(timeout)

    # -- models and chat ----------------------------------------------------------------------
    def list_models(self, request, query):
        names = list(self.spec.fine_tunable) + list(self.adapters)
        return 200, {"object": "list", "data": [_model_card(n) for n in names]}

    def get_model(self, request, query, name):
        if name not in self.spec.fine_tunable and name not in self.adapters:
            raise ApiError(404, f"The model '{name}' does not exist", param="model", code="model_not_found")
        return 200, _model_card(name)

    def chat(self, request, query):
        from helpers.emulator_azure import deployed_model
        from helpers.emulator_jobs import complete

        body = json.loads(request.content or b"{}")
        name = body.get("model")
        if self.provider == "azure":  # Azure's v1 route names a deployment in "model"
            name = deployed_model(self, name)
        if name not in self.spec.fine_tunable and name not in self.adapters:
            raise ApiError(404, f"The model '{name}' does not exist or you do not have access to it.",
                           param="model", code="model_not_found")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise ApiError(400, "'messages' must be a non-empty list", param="messages")
        return 200, complete(self, name, body)


class ApiError(Exception):
    """An API error answer: HTTP status and OpenAI's error body fields."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code


ROUTES = [
    ("POST", r"/files", "create_file"),
    ("GET", r"/files", "list_files"),
    ("GET", r"/files/([^/]+)", "get_file"),
    ("DELETE", r"/files/([^/]+)", "delete_file"),
    ("GET", r"/files/([^/]+)/content", "file_content"),
    ("POST", r"/fine_tuning/jobs", "create_job"),
    ("GET", r"/fine_tuning/jobs", "list_jobs"),
    ("GET", r"/fine_tuning/jobs/([^/]+)", "get_job"),
    ("POST", r"/fine_tuning/jobs/([^/]+)/cancel", "cancel_job"),
    ("GET", r"/fine_tuning/jobs/([^/]+)/events", "list_events"),
    ("GET", r"/fine_tuning/jobs/([^/]+)/checkpoints", "list_checkpoints"),
    ("GET", r"/models", "list_models"),
    ("GET", r"/models/(.+)", "get_model"),
    ("POST", r"/chat/completions", "chat"),
]


def _error(message: str, kind: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _now() -> int:
    return int(time.time())


def _public(job: dict) -> dict:
    """A job as the API shows it (without the emulator's private fields)."""
    return {k: v for k, v in job.items() if not k.startswith("_")}


def _model_card(name: str) -> dict:
    owner = "user-emulator" if name.startswith("ft:") or ".ft-" in name else "system"
    return {"id": name, "object": "model", "created": _now(), "owned_by": owner}


def _hyperparameters(body: dict) -> dict:
    """batch_size, learning_rate_multiplier, n_epochs: "auto" or checked numbers."""
    given = dict(body.get("hyperparameters") or {})
    method = body.get("method") or {}
    given.update(((method.get("supervised") or {}).get("hyperparameters")) or {})
    limits = {"n_epochs": (1, 50), "batch_size": (1, 256), "learning_rate_multiplier": (1e-9, 1e9)}
    for key, (low, high) in limits.items():
        value = given.get(key, "auto")
        if value != "auto" and not (isinstance(value, (int, float)) and low <= value <= high):
            raise ApiError(400, f"{key} must be 'auto' or between {low:g} and {high:g}, got {value!r}",
                           param=f"hyperparameters.{key}")
        given[key] = value
    return {k: given[k] for k in limits}


def _page(items: list, query: dict, default_limit: int = 20) -> dict:
    """One cursor page: the items after `after`, at most `limit`, and whether more follow."""
    limit = int(query.get("limit", default_limit))
    after = query.get("after")
    if after:
        ids = [i["id"] for i in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit,
            "first_id": items[0]["id"] if items else None,
            "last_id": items[:limit][-1]["id"] if items else None}


def _multipart(request) -> dict:
    """The fields of a multipart/form-data body: text, or (filename, bytes) for files."""
    body = request.read() if hasattr(request, "read") else request.content
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parse(io.BytesIO(head + body))
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        fields[name] = (filename, data) if filename is not None else data.decode()
    return fields


def _check_azure_job(body: dict, query: dict) -> None:
    """Azure's extra rules for a new job: its model names and a training type."""
    if body.get("model") not in PROVIDERS["azure"].fine_tunable or not body.get("trainingType"):
        # what the service answers for both mistakes (a missing trainingType included)
        raise ApiError(400, "The specified base model does not support fine-tuning.", code="invalidPayload")
    if body["trainingType"] not in TRAINING_TYPES:
        raise ApiError(400, f"trainingType must be one of {', '.join(TRAINING_TYPES)}, not {body['trainingType']!r}",
                       param="trainingType", code="invalidPayload")
    version = query.get("api-version", "9999")  # the /openai/v1 route has none
    if body["trainingType"] == "developerTier" and version < "2025-04-01-preview":
        raise ApiError(400, f"trainingType developerTier needs api-version 2025-04-01-preview or later, not {version}",
                       param="trainingType", code="invalidPayload")


def _transport(emulator: Emulator):
    hx = http_module()
    return hx.Client(transport=hx.MockTransport(emulator.handle))


def openai_client(emulator: Emulator | None = None, max_retries: int = 2, **settings):
    """An `openai.OpenAI` client wired to an emulator (a new one unless given; settings go to it)."""
    emulator = emulator or Emulator(**settings)
    client = openai.OpenAI(api_key=FAKE_KEY, base_url="https://emulator.invalid/v1", max_retries=max_retries,
                           http_client=_transport(emulator))
    client.emulator = emulator
    return client


def azure_client(emulator: Emulator | None = None, max_retries: int = 2, api_version: str = AZURE_API_VERSION,
                 base_deployments: dict | None = None, entra_id: bool = False, **settings):
    """An `openai.AzureOpenAI` client wired to an Azure-flavoured emulator, with the base model
    already deployed (`base_deployments`: deployment name -> model); `entra_id` sends a bearer token."""
    from helpers.emulator_azure import add_deployment

    emulator = emulator or Emulator(provider="azure", **settings)
    for name, model in (base_deployments or {"gpt-4o-mini": "gpt-4o-mini-2024-07-18"}).items():
        add_deployment(emulator, name, model, ready=True)
    auth = {"azure_ad_token": "emulator-entra-token"} if entra_id else {"api_key": FAKE_KEY}
    client = openai.AzureOpenAI(azure_endpoint=AZURE_ENDPOINT, api_version=api_version, max_retries=max_retries,
                                http_client=_transport(emulator), **auth)
    client.emulator = emulator
    return client

