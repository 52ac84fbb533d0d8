"""The emulator's state and routes: files, fine-tuning jobs (supervised, DPO and reinforcement, from a base model or
a fine-tuned one; events, checkpoints, cancel, the metadata filter, cursor pagination), models and chat
completions, the graders API of reinforcement fine-tuning (validate and run), in the chosen provider's shapes
(`helpers.providers.conventions`), and Azure's deployments on management.azure.com.

Every change to a job goes through `Emulator.lock`; a job that has ended never changes again."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from emulator import azure, worker
from emulator.chat import Chat
from emulator.common import ApiError, error_body, multipart, now, page, public
from helpers.eval import graders
from helpers.providers.conventions import JOB_ENDED, PROVIDERS, Provider
from helpers.providers.http import http_module
from helpers.train import lora

PREFIXES = ("/openai/v1", "/openai", "/v1")  # OpenAI, Azure and Azure's v1 route
PURPOSES = ("fine-tune", "assistants", "batch", "vision", "user_data", "evals")


@dataclass
class Faults:
    """Failures to inject, for tests: each count is used up by the next requests or jobs."""
    rate_limits: int = 0          # answer 429 with retry-after-ms
    server_errors: int = 0        # answer 500
    retry_after_ms: int = 10
    fail_jobs: int = 0            # jobs that fail while running, with failure_code
    failure_code: str = "server_error"
    gate: threading.Event | None = None  # jobs wait in their queued state until this is set
    at_gate: threading.Event | None = None  # set as a job starts waiting at the gate


@dataclass
class Emulator:
    """The state of one emulated account: files, jobs, events, checkpoints, models, deployments."""
    max_steps: int = 30           # training steps a job runs at most (a real job runs all epochs)
    batch_size: int = 4           # examples per step for "auto" (OpenAI picks small batches for small files)
    provider: str = "openai"      # whose shapes to answer in: "openai" or "azure"
    file_polls: int = 2           # Azure: an upload reads "pending" this many times
    deploy_polls: int = 2         # Azure: a new deployment reads "Creating" this many times
    faults: Faults = field(default_factory=Faults)
    train: Callable = lora.train  # how a job trains: rows, steps and options in, a trainer out
    train_dpo: Callable = lora.train_dpo  # how a DPO job trains: preference pairs, steps and options in
    train_grpo: Callable = lora.train_grpo  # how a reinforcement job trains: prompts, rewards, steps and options in
    files: dict = field(default_factory=dict)
    contents: dict = field(default_factory=dict)
    jobs: dict = field(default_factory=dict)
    events: dict = field(default_factory=dict)
    checkpoints: dict = field(default_factory=dict)
    adapters: dict = field(default_factory=dict)  # fine-tuned model name -> its adapter folders, oldest first
    bases: dict = field(default_factory=dict)     # fine-tuned model name -> the provider's base model under it
    requests: int = 0             # requests answered, retries included
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="openai-emulator-")))
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self):
        if self.provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {sorted(PROVIDERS)}, not {self.provider!r}")
        self.deployments = azure.Deployments(self.deploy_polls)
        self.chat = Chat(self.adapters)
        self.workers: dict[str, threading.Event] = {}  # job id -> set once its worker has stopped
        weakref.finalize(self, shutil.rmtree, self.workdir, ignore_errors=True)  # adapters and trainer files

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
            return hx.Response(fault[0], json=error_body(fault[1], "server_error"), headers=fault[2])
        query = dict(parse_qsl(request.url.query.decode() if isinstance(request.url.query, bytes)
                               else str(request.url.query)))
        if request.url.host == azure.HOST:
            status, body = self.deployments.answer(request, query, self.knows_model)
            return hx.Response(status, json=body) if body is not None else hx.Response(status)
        path = request.url.path
        prefix = next((p for p in PREFIXES if path.startswith(p + "/")), "")
        path = path[len(prefix):]
        try:
            self._check_access(request, query, prefix)
            for method, pattern, name in ROUTES:
                match = re.fullmatch(pattern, path)
                if match and method == request.method:
                    status, body = getattr(self, name)(request, query, *match.groups())
                    return hx.Response(status, content=body) if isinstance(body, bytes) else hx.Response(status, json=body)
        except ApiError as err:
            return hx.Response(err.status, json=err.body())
        return hx.Response(404, json=error_body(f"Unknown endpoint {request.method} {path}", "invalid_request_error"))

    def _check_access(self, request, query: dict, prefix: str) -> None:
        """A key is required; where the provider versions its API, /openai/... routes need ?api-version=."""
        headers = request.headers
        if not headers.get("api-key") and not headers.get("authorization", "").startswith("Bearer "):
            raise ApiError(401, "Access denied: no api-key header and no Authorization: Bearer token.",
                           kind="authentication_error", code="401")
        if self.spec.api_version and prefix == "/openai" and not query.get("api-version"):
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
        fields = multipart(request)
        if "file" not in fields or not isinstance(fields["file"], tuple):
            raise ApiError(400, "Upload a file in the 'file' field", param="file")
        filename, data = fields["file"]
        purpose = fields.get("purpose", "")
        if purpose not in PURPOSES:
            raise ApiError(400, f"Invalid purpose {purpose!r}", param="purpose")
        if purpose == "fine-tune" and not filename.endswith(".jsonl"):
            raise ApiError(400, "Fine-tuning files must be .jsonl", param="file", code="invalid_file_format")
        return 200, self.store_file(filename, data, purpose)

    def store_file(self, filename: str, data: bytes, purpose: str) -> dict:
        """Keep an upload (or a results file); a training upload starts in the provider's new-file status."""
        status = self.spec.new_file_status if purpose == "fine-tune" else "processed"
        meta = {"id": self.spec.new_id("file-"), "object": "file", "bytes": len(data), "created_at": now(),
                "filename": filename, "purpose": purpose, "status": status, "status_details": None,
                "_reads_pending": self.file_polls if status == "pending" else 0}
        with self.lock:
            self.files[meta["id"]] = meta
            self.contents[meta["id"]] = data
        return public(meta)

    def list_files(self, request, query):
        with self.lock:
            found = [public(f) for f in self.files.values() if query.get("purpose") in (None, f["purpose"])]
        found.sort(key=lambda f: f["created_at"], reverse=query.get("order", "desc") == "desc")
        return 200, page(found, query, default_limit=10000)

    def get_file(self, request, query, file_id):
        """Read a file; each read moves a pending upload closer to processed (listing files does not)."""
        with self.lock:
            meta = self._file(file_id)
            if meta["status"] == "pending":
                if meta["_reads_pending"] > 0:
                    meta["_reads_pending"] -= 1
                else:
                    meta["status"] = "processed"
            return 200, public(meta)

    def delete_file(self, request, query, file_id):
        with self.lock:
            self._file(file_id)
            del self.files[file_id], self.contents[file_id]
        return 200, {"id": file_id, "object": "file", "deleted": True}

    def file_content(self, request, query, file_id):
        with self.lock:
            self._file(file_id)
            return 200, self.contents[file_id]

    def _file(self, file_id: str) -> dict:
        if file_id not in self.files:
            raise ApiError(404, f"No such File object: {file_id}", param="id")
        return self.files[file_id]

    # -- jobs ---------------------------------------------------------------------------------
    def create_job(self, request, query):
        body = json.loads(request.content or b"{}")
        model, training = body.get("model"), body.get("training_file")
        self._check_model(body, query)
        for key in ("training_file", "validation_file"):
            if body.get(key) and body[key] not in self.files:
                raise ApiError(400, f"invalid {key}: file {body[key]} does not exist", param=key,
                               code=f"invalid_{key}")
            if body.get(key) and self.files[body[key]]["status"] != "processed":
                raise ApiError(400, f"The file {body[key]} is not ready yet (status "
                               f"{self.files[body[key]]['status']}): wait until it is processed.", param=key,
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
        kind, hyper, method_hyper = _method(body)
        details = {"hyperparameters": method_hyper}
        if kind == "reinforcement":
            given = (body.get("method") or {}).get("reinforcement") or {}
            if "grader" not in given:
                raise ApiError(400, "Missing required parameter: 'method.reinforcement.grader'.",
                               param="method.reinforcement.grader", code="missing_required_parameter")
            try:
                details["grader"] = graders.validate(given["grader"], "method.reinforcement.grader", self.knows_model)
            except graders.GraderError as err:
                raise ApiError(400, f"Invalid grader: {err}", param=err.param, code="invalid_grader") from None
        job = {"id": self.spec.new_id("ftjob-"), "object": "fine_tuning.job", "created_at": now(), "error": None,
               "fine_tuned_model": None, "finished_at": None, "hyperparameters": hyper, "model": model,
               "organization_id": "org-emulator" if self.spec.organization_in_jobs else None,
               "result_files": [], "seed": body.get("seed", 42), "status": self.spec.job_statuses[0],
               "trained_tokens": None, "training_file": training, "validation_file": body.get("validation_file"),
               "estimated_finish": None, "integrations": None, "metadata": metadata or None, "suffix": suffix,
               "method": {"type": kind, kind: details}, "_base": self.base_of(model)}
        with self.lock:
            self.jobs[job["id"]] = job
            self.events[job["id"]], self.checkpoints[job["id"]] = [], []
            self._add_event(job["id"], f"Created fine-tuning job: {job['id']}")
            shown = self._shown_job(job)
            self.workers[job["id"]] = threading.Event()
        threading.Thread(target=self._run_job, args=(job["id"],), daemon=True).start()
        return 200, shown

    def base_of(self, model: str) -> str:
        """The provider's base model under a model name: itself, or what a fine-tuned model was made from."""
        return self.bases.get(model, model)

    def _check_model(self, body: dict, query: dict) -> None:
        """The model must be one the provider fine-tunes (or a fine-tune of one: training goes on from it),
        with a training type where it has them, and take the method asked for."""
        training_types, version = self.spec.training_types, query.get("api-version", "9999")  # v1 routes have none
        model = body.get("model")
        known = model in self.spec.fine_tunable or (isinstance(model, str) and model in self.adapters)
        if not known or (training_types and not body.get("trainingType")):
            code, param, message = self.spec.model_refusal
            raise ApiError(400, message.format(model=model), param=param, code=code)
        method = (body.get("method") or {}).get("type", "supervised")
        if method == "dpo" and self.base_of(model) not in self.spec.dpo_models:
            code, param, message = self.spec.dpo_refusal
            raise ApiError(400, message.format(model=model), param=param, code=code)
        if (method == "reinforcement") != (self.base_of(model) in self.spec.rft_models):
            code, param, message = self.spec.rft_refusal
            raise ApiError(400, message.format(model=model, method=method), param=param, code=code)
        if method == "reinforcement" and not body.get("validation_file"):  # both providers' RFT guides
            raise ApiError(400, "Reinforcement fine-tuning needs a validation file as well as a training file.",
                           param="validation_file", code=self.spec.model_refusal[0])
        if not training_types:
            return
        kind = body["trainingType"]
        if kind not in training_types:
            raise ApiError(400, f"trainingType must be one of {', '.join(training_types)}, not {kind!r}",
                           param="trainingType", code="invalidPayload")
        if version < training_types[kind]:
            raise ApiError(400, f"trainingType {kind} needs api-version {training_types[kind]} or later, not {version}",
                           param="trainingType", code="invalidPayload")

    def list_jobs(self, request, query):
        wanted = {k[len("metadata["):-1]: v for k, v in query.items() if k.startswith("metadata[")}
        with self.lock:
            found = [self._shown_job(j) for j in self.jobs.values()
                     if all((j["metadata"] or {}).get(k) == v for k, v in wanted.items())]
        found.sort(key=lambda j: (j["created_at"], j["id"]), reverse=True)
        return 200, page(found, query)

    def get_job(self, request, query, job_id):
        with self.lock:
            return 200, self._shown_job(self._job(job_id))

    def cancel_job(self, request, query, job_id):
        with self.lock:
            job = self._job(job_id)
            if job["status"] in JOB_ENDED:
                raise ApiError(400, f"Job {job_id} has already {job['status']}", param="fine_tuning_job_id")
            job["status"] = "cancelled"
            self._add_event(job_id, "Job was cancelled")
            return 200, self._shown_job(job)

    def list_events(self, request, query, job_id):
        with self.lock:
            self._job(job_id)
            events = list(reversed(self.events[job_id]))
        return 200, page(events, query)

    def list_checkpoints(self, request, query, job_id):
        with self.lock:
            self._job(job_id)
            checkpoints = list(reversed(self.checkpoints[job_id]))
        return 200, page(checkpoints, query, default_limit=10)

    def _shown_job(self, job: dict) -> dict:
        """A job as the provider shows it: "auto" as the provider writes it, empty lists as it writes them."""
        shown = json.loads(json.dumps(public(job)))  # a copy: the worker goes on changing the job
        auto = self.spec.auto_shown_as
        shown["hyperparameters"] = {k: (auto if v == "auto" else v) for k, v in job["hyperparameters"].items()}
        kind = job["method"]["type"]
        shown["method"][kind]["hyperparameters"] = {k: (auto if v == "auto" else v)
                                                     for k, v in job["method"][kind]["hyperparameters"].items()}
        if self.spec.empty_list_as_null:
            shown["result_files"] = job["result_files"] or None
        return shown

    def _job(self, job_id: str) -> dict:
        if job_id not in self.jobs:
            raise ApiError(404, f"Could not find fine-tuning job {job_id}", param="fine_tuning_job_id")
        return self.jobs[job_id]

    # -- what the job worker calls: every change under the lock, none once a job has ended ----------
    def ended(self, job_id: str) -> bool:
        """Whether the job has succeeded, failed or been cancelled."""
        with self.lock:
            return self.jobs[job_id]["status"] in JOB_ENDED

    def event(self, job_id: str, message: str, data: dict | None = None) -> bool:
        """Post an event for a job that has not ended; False (and nothing posted) once it has."""
        return self._change(job_id, message, data)

    def move(self, job_id: str, status: str, message: str) -> bool:
        """Move a job that has not ended to `status`, with an event saying so; False once it has ended."""
        return self._change(job_id, message, status=status)

    def fail(self, job_id: str, code: str, message: str, param: str | None = None) -> bool:
        """Fail a job that has not ended, with the API's error object; False once it has ended."""
        return self._change(job_id, f"Fine-tuning job failed: {message}", level="error", status="failed",
                            finished_at=now(), error={"code": code, "message": message, "param": param})

    def _change(self, job_id: str, message: str, data: dict | None = None, level: str = "info", **fields) -> bool:
        """Set `fields` of a job that has not ended and post the event that says so, under the lock;
        False, and nothing changed, once the job has ended."""
        with self.lock:
            if self.ended(job_id):
                return False
            self.jobs[job_id].update(fields)
            self._add_event(job_id, message, data, level)
            return True

    def succeed(self, job_id: str, adapter: Path, step: int, metrics: dict, results_csv: bytes,
                trained_tokens: int) -> bool:
        """Publish a job's model (and its checkpoint) and results file, all at once, unless it has ended."""
        with self.lock:
            if self.ended(job_id):
                return False
            job = self.jobs[job_id]
            name = self.spec.model_name(job["_base"], job["suffix"], job_id)
            checkpoint = f"{name}:ckpt-step-{step}"
            self.adapters[name] = self.adapters[checkpoint] = [*self.adapters.get(job["model"], []), adapter]
            self.bases[name] = self.bases[checkpoint] = job["_base"]
            self.checkpoints[job_id].append({
                "id": self.spec.new_id(self.spec.checkpoint_prefix), "object": "fine_tuning.job.checkpoint",
                "created_at": now(), "fine_tuned_model_checkpoint": checkpoint, "fine_tuning_job_id": job_id,
                "step_number": step, "metrics": metrics})
            result_file = self.store_file("step_metrics.csv", results_csv, "fine-tune-results")
            job.update(status="succeeded", fine_tuned_model=name, finished_at=now(), result_files=[result_file["id"]],
                       trained_tokens=trained_tokens)
            self._add_event(job_id, f"New fine-tuned model created: {name}")
            self._add_event(job_id, "The job has successfully completed")
            return True

    def wait_at_gate(self, job_id: str) -> bool:
        """Hold a queued job while the `faults.gate` is closed; False if it ended while waiting."""
        gate = self.faults.gate
        if gate is not None and self.faults.at_gate is not None:
            self.faults.at_gate.set()
        while gate is not None and not gate.wait(timeout=0.05):
            if self.ended(job_id):
                return False
        return not self.ended(job_id)

    def take_failure(self) -> bool:
        """Whether the next job is to fail (an injected fault), using one up."""
        with self.lock:
            if self.faults.fail_jobs:
                self.faults.fail_jobs -= 1
                return True
        return False

    def _add_event(self, job_id: str, message: str, data: dict | None = None, level: str = "info") -> None:
        event = {"id": self.spec.new_id("ftevent-"), "object": "fine_tuning.job.event", "created_at": now(),
                 "level": level, "message": message, "data": data or {}, "type": "metrics" if data else "message"}
        with self.lock:
            self.events[job_id].append(event)

    def _run_job(self, job_id: str) -> None:
        try:
            worker.run_job(self, job_id)
        except Exception as err:  # the job fails; the emulator keeps serving
            self.fail(job_id, "server_error", f"Training failed inside the emulator: {err}")
        finally:
            self.workers[job_id].set()

    def wait_for_worker(self, job_id: str, timeout: float = 300) -> dict:
        """Block until the job's worker has stopped; the job as it then is. A TimeoutError names the job."""
        if not self.workers[job_id].wait(timeout):
            raise TimeoutError(f"the worker of {job_id} is still running after {timeout:.0f} s "
                               f"(status {self.jobs[job_id]['status']})")
        with self.lock:
            return self._shown_job(self.jobs[job_id])

    # -- models and chat ----------------------------------------------------------------------
    def knows_model(self, name: str) -> bool:
        """A base model the provider fine-tunes, or a model (or checkpoint) a job made here."""
        return name in self.spec.fine_tunable or name in self.adapters

    def list_models(self, request, query):
        names = list(self.spec.fine_tunable) + list(self.adapters)
        return 200, {"object": "list", "data": [_model_card(n) for n in names]}

    def get_model(self, request, query, name):
        if not self.knows_model(name):
            raise ApiError(404, f"The model '{name}' does not exist", param="model", code="model_not_found")
        return 200, _model_card(name)

    def chat_completion(self, request, query):
        body = json.loads(request.content or b"{}")
        name = body.get("model")
        if self.spec.needs_deployment:  # Azure's v1 route names a deployment in "model"
            name = self.deployments.model_of(name)
        return self._chat(name, body)

    def deployment_chat(self, request, query, deployment):
        """POST /openai/deployments/{name}/chat/completions: the model is the deployment's."""
        return self._chat(self.deployments.model_of(deployment), json.loads(request.content or b"{}"))

    def _chat(self, name: str, body: dict):
        if not self.knows_model(name):
            raise ApiError(404, f"The model '{name}' does not exist or you do not have access to it.",
                           param="model", code="model_not_found")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise ApiError(400, "'messages' must be a non-empty list", param="messages")
        top = body.get("top_logprobs")
        if top is not None and (type(top) is not int or not 0 <= top <= 20):
            raise ApiError(400, f"top_logprobs must be an integer from 0 to 20, got {top!r}", param="top_logprobs")
        if top is not None and not body.get("logprobs"):
            raise ApiError(400, "logprobs must be set to true when top_logprobs is given", param="top_logprobs")
        return 200, self.chat.complete(name, body)

    # -- graders (reinforcement fine-tuning) ------------------------------------------------------
    def _grader(self, body: dict) -> dict:
        """The request's grader, checked as the providers check it: a 400 naming the bad field."""
        if "grader" not in body:
            raise ApiError(400, "Missing required parameter: 'grader'.", param="grader", code="missing_required_parameter")
        try:
            return graders.validate(body["grader"], models=self.knows_model)
        except graders.GraderError as err:
            raise ApiError(400, f"Invalid grader: {err}", param=err.param, code="invalid_grader") from None

    def validate_grader(self, request, query):
        return 200, {"grader": self._grader(json.loads(request.content or b"{}"))}

    def run_grader(self, request, query):
        body = json.loads(request.content or b"{}")
        grader = self._grader(body)
        if not isinstance(body.get("model_sample"), str):
            raise ApiError(400, "model_sample must be a string: the model's reply to grade", param="model_sample")
        if body.get("item") is not None and not isinstance(body["item"], dict):
            raise ApiError(400, "item must be a JSON object: the dataset line the sample answers", param="item")
        return 200, graders.run(grader, body["model_sample"], body.get("item"), score_with=self.score_with)

    def score_with(self, model: str, messages: list[dict], sampling: dict) -> tuple[str, tuple[int, int]]:
        """A score_model grader's reply from the emulator's own models, and the tokens it took."""
        answer = self.chat.complete(model, {"messages": messages, "temperature": sampling.get("temperature", 0),
                                            "max_completion_tokens": sampling.get("max_completions_tokens") or 16,
                                            "seed": sampling.get("seed")})
        usage = answer["usage"]
        return answer["choices"][0]["message"]["content"], (usage["prompt_tokens"], usage["completion_tokens"])


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
    ("POST", r"/chat/completions", "chat_completion"),
    ("POST", r"/deployments/([^/]+)/chat/completions", "deployment_chat"),
    ("POST", r"/fine_tuning/alpha/graders/validate", "validate_grader"),
    ("POST", r"/fine_tuning/alpha/graders/run", "run_grader"),
]


def _model_card(name: str) -> dict:
    owner = "user-emulator" if name.startswith("ft:") or ".ft-" in name else "system"
    return {"id": name, "object": "model", "created": now(), "owned_by": owner}


METHODS = ("supervised", "dpo", "reinforcement")
LIMITS = {"n_epochs": (1, 50), "batch_size": (1, 256), "learning_rate_multiplier": (1e-9, 1e9)}
METHOD_LIMITS = {"dpo": {"beta": (1e-9, 2.0)},
                 # Azure's documented ranges (OpenAI publishes none)
                 "reinforcement": {"compute_multiplier": (0.5, 3.0), "eval_interval": (1, 25), "eval_samples": (1, 10)}}
REASONING_EFFORTS = ("default", "low", "medium", "high")  # reinforcement: how hard o4-mini thinks while sampled


def _method(body: dict) -> tuple[str, dict, dict]:
    """The job's method type, its hyperparameters as a job shows them at the top level (batch_size,
    learning_rate_multiplier, n_epochs) and as its `method` shows them (DPO adds beta): "auto" or checked
    numbers, from `method.<type>.hyperparameters` or the older top-level `hyperparameters`."""
    method = body.get("method") or {"type": "supervised"}
    kind = method.get("type") if isinstance(method, dict) else None
    if kind not in METHODS:
        raise ApiError(400, f"method.type must be one of {', '.join(map(repr, METHODS))}, not {kind!r}",
                       param="method.type")
    given = dict(body.get("hyperparameters") or {})
    nested = ((method.get(kind) or {}).get("hyperparameters")) or {}
    given.update(nested)
    limits = {**LIMITS, **METHOD_LIMITS.get(kind, {})}
    if kind == "reinforcement":
        effort = given.pop("reasoning_effort", "default")
        if effort not in REASONING_EFFORTS:
            raise ApiError(400, f"reasoning_effort must be one of {', '.join(REASONING_EFFORTS)}, not {effort!r}",
                           param="method.reinforcement.hyperparameters.reasoning_effort")
    unknown = sorted(set(given) - set(limits))
    if unknown:
        raise ApiError(400, f"Unknown hyperparameter(s) for method {kind!r}: {', '.join(unknown)}",
                       param=f"method.{kind}.hyperparameters")
    for key, (low, high) in limits.items():
        value = given.get(key, "auto")
        if value != "auto" and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                    and low <= value <= high):
            raise ApiError(400, f"{key} must be 'auto' or between {low:g} and {high:g}, got {value!r}",
                           param=f"method.{kind}.hyperparameters.{key}" if key in nested else f"hyperparameters.{key}")
        given[key] = value
    shown = {k: given[k] for k in limits}
    if kind == "reinforcement":
        shown["reasoning_effort"] = effort
    return kind, {k: given[k] for k in LIMITS}, shown
