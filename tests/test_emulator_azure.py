"""The emulator's Azure OpenAI dialect, driven through the real SDK (openai.AzureOpenAI) and the
management client: api-version and api-key, pending files and jobs, Azure ids and names,
trainingType, deployments that go Creating -> Succeeded, chat by deployment name, clean-up."""

import json
import re

import openai
import pytest

from emulator import Emulator, azure_client
from helpers.data.datasets import QUIP, prompt_messages, read_jsonl, write_jsonl
from helpers.errors import CourseError
from helpers.providers import api, azure, jobs
from helpers.providers.azure import ARM_API_VERSION
from helpers.providers.http import http_module

MODEL = "gpt-4o-mini-2024-07-18"
HEX32 = r"[0-9a-f]{32}"


def upload(client, path=QUIP / "train.jsonl"):
    return jobs.upload(client, path, poll_seconds=0.05)


def create(client, training_file, **extra):
    body = {"trainingType": "GlobalStandard", **extra.pop("extra_body", {})}
    return client.fine_tuning.jobs.create(model=extra.pop("model", MODEL), training_file=training_file,
                                          extra_body=body, **extra)


@pytest.fixture(scope="module")
def trained():
    """One real Azure-style job: 3 LoRA steps on Quip's data, with a validation file."""
    client = azure_client(max_steps=3)
    train, valid = upload(client), upload(client, QUIP / "validation.jsonl")
    job = create(client, train.id, validation_file=valid.id, suffix="quip", seed=3)
    first = job
    return client, first, jobs.wait_for_job(client, job.id, poll_seconds=0.2, plot=False)


def deploy(client, name, model, sku=None):
    mgmt = azure.management_client(client, dry_run=True)
    url = azure.deployment_url(azure.resource(client, dry_run=True), name)
    body = {"sku": sku or {"name": "standard", "capacity": 1},
            "properties": {"model": {"format": "OpenAI", "name": model, "version": "1"}}}
    return mgmt, url, mgmt.put(url, params={"api-version": ARM_API_VERSION}, json=body)


def test_requests_carry_api_version_and_api_key():
    seen = []
    em = Emulator(provider="azure")
    handle = em.handle
    em.handle = lambda request: seen.append(request) or handle(request)
    client = azure_client(em)
    client.models.list()
    assert seen[0].url.path == "/openai/models" and "api-version=2025-04-01-preview" in str(seen[0].url)
    assert seen[0].headers["api-key"] and "authorization" not in seen[0].headers
    hx = http_module()
    bare = hx.Request("GET", "https://x.openai.azure.com/openai/models", headers={"api-key": "k"})
    answer = handle(bare)
    assert answer.status_code == 400 and json.loads(answer.content)["error"]["code"] == "MissingApiVersionParameter"
    assert handle(hx.Request("GET", "https://x.openai.azure.com/openai/models?api-version=1")).status_code == 401


def test_entra_id_token_is_accepted_as_bearer():
    seen = []
    em = Emulator(provider="azure")
    handle = em.handle
    em.handle = lambda request: seen.append(request) or handle(request)
    client = azure_client(em, entra_id=True)
    assert "gpt-4o-mini-2024-07-18" in [m.id for m in client.models.list()]
    assert seen[0].headers["authorization"] == "Bearer emulator-entra-token" and "api-key" not in seen[0].headers


def test_files_are_pending_then_processed_and_ids_have_32_hex_digits():
    client = azure_client(file_polls=2)  # the first two reads say pending
    raw = client.files.create(file=("t.jsonl", (QUIP / "train.jsonl").read_bytes()), purpose="fine-tune")
    assert raw.status == "pending" and re.fullmatch(f"file-{HEX32}", raw.id)
    with pytest.raises(openai.BadRequestError, match="not ready yet"):
        create(client, raw.id)
    assert [client.files.retrieve(raw.id).status for _ in range(3)] == ["pending", "pending", "processed"]
    assert jobs.wait_for_file(client, raw, poll_seconds=0).status == "processed"
    later = client.files.create(file=("u.jsonl", (QUIP / "validation.jsonl").read_bytes()), purpose="fine-tune")
    assert jobs.wait_for_file(client, later, poll_seconds=0).status == "processed"  # waits out the pending reads


def test_azure_refuses_what_azure_refuses():
    client = azure_client(max_retries=0)
    train = upload(client)
    with pytest.raises(openai.BadRequestError, match="does not support fine-tuning") as err:
        client.fine_tuning.jobs.create(model=MODEL, training_file=train.id)  # no trainingType
    assert err.value.body["code"] == "invalidPayload"
    with pytest.raises(CourseError, match="trainingType is missing"):
        with api.explained_errors():
            create(client, train.id, model="gpt-4o-mini")  # undated name
    with pytest.raises(openai.BadRequestError, match="at most 18"):
        create(client, train.id, suffix="x" * 19)
    with pytest.raises(openai.BadRequestError, match="trainingType must be one of"):
        create(client, train.id, extra_body={"trainingType": "Premium"})
    old = azure_client(client.emulator, api_version="2024-10-21", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="developerTier needs api-version 2025-04-01-preview"):
        create(old, train.id, extra_body={"trainingType": "developerTier"})


def test_the_job_trains_in_azure_shapes(trained):
    client, first, job = trained
    assert first.status == "pending" and re.fullmatch(f"ftjob-{HEX32}", first.id)
    assert first.hyperparameters.n_epochs == -1 and first.result_files is None and first.organization_id is None
    assert job.status == "succeeded"
    assert job.fine_tuned_model == f"{MODEL}.ft-{job.id.removeprefix('ftjob-')}-quip"
    results = jobs.results_frame(client, job)
    assert list(results.columns) == ["step", "train_loss", "train_mean_token_accuracy", "valid_loss",
                                     "validation_mean_token_accuracy", "full_valid_loss",
                                     "full_valid_mean_token_accuracy"]
    assert results.step.tolist() == [1, 2, 3] and results.full_valid_loss.iloc[-1] == results.valid_loss.iloc[-1]
    checkpoint = client.fine_tuning.jobs.checkpoints.list(job.id).data[0]
    assert checkpoint.id.startswith("ftchkpt-") and checkpoint.step_number == 3
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    assert all(re.fullmatch(f"ftevent-{HEX32}", e.id) for e in events)


def test_deploy_wait_call_by_deployment_name_and_delete(trained):
    client, _, job = trained
    mgmt, url, response = deploy(client, "quip-ft", job.fine_tuned_model)
    assert response.status_code == 201 and response.json()["properties"]["provisioningState"] == "Creating"
    question = prompt_messages(read_jsonl(QUIP / "test.jsonl")[0])
    with pytest.raises(CourseError, match="DeploymentNotFound"):
        api.ask(client, "quip-ft", question, max_tokens=8)
    found = azure.wait_for_deployment(mgmt, url, poll_seconds=0)
    assert found["properties"]["provisioningState"] == "Succeeded"
    assert found["properties"]["model"]["name"] == job.fine_tuned_model
    reply = client.chat.completions.create(model="quip-ft", messages=question, max_tokens=8, temperature=0)
    assert reply.model == job.fine_tuned_model and reply.choices[0].message.content
    # Azure's v1 route, where model= names the deployment too
    v1 = openai.OpenAI(api_key="k", base_url="https://x.openai.azure.com/openai/v1/", http_client=client._client)
    assert v1.chat.completions.create(model="quip-ft", messages=question, max_tokens=8).model == job.fine_tuned_model
    listed = mgmt.get(url.rsplit("/", 1)[0], params={"api-version": ARM_API_VERSION}).json()["value"]
    assert {d["name"] for d in listed} == {"gpt-4o-mini", "o4-mini", "quip-ft"}  # the base deployments and ours
    assert azure.delete_deployment(mgmt, url) is True
    assert not azure.deployment_exists(mgmt, url)
    assert azure.delete_deployment(mgmt, url) is False  # nothing left: 204


def test_the_management_api_checks_what_arm_checks(trained):
    client, _, job = trained
    assert deploy(client, "d", job.fine_tuned_model, sku={"name": "huge", "capacity": 1})[2].status_code == 400
    _, _, unknown = deploy(client, "d", "gpt-4o-mini-2024-07-18.ft-nothing")
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "DeploymentModelNotSupported"
    mgmt, url, _ = deploy(client, "d", job.fine_tuned_model)
    assert mgmt.get(url).status_code == 400  # no api-version
    hx = http_module()
    anonymous = hx.Client(base_url=azure.ARM, transport=hx.MockTransport(client.emulator.handle))
    assert anonymous.get(url, params={"api-version": ARM_API_VERSION}).status_code == 401
    elsewhere = url.replace("course-rg", "other-rg")
    with pytest.raises(CourseError, match="ResourceNotFound"):
        azure.checked(mgmt.get(elsewhere, params={"api-version": ARM_API_VERSION}))
    azure.delete_deployment(mgmt, url)


def test_a_deployment_left_behind_is_deleted_at_exit(trained):
    client, _, job = trained
    mgmt, url, _ = deploy(client, "forgotten", job.fine_tuned_model)
    at_exit = azure.delete_at_exit(mgmt, url)
    assert url in azure.pending_deletes()
    at_exit()  # what atexit runs when the kernel stops
    assert not azure.deployment_exists(mgmt, url)
    mgmt, url, _ = deploy(client, "deleted", job.fine_tuned_model)
    azure.delete_at_exit(mgmt, url)
    azure.delete_deployment(mgmt, url)
    assert url not in azure.pending_deletes()


def test_live_client_says_which_settings_are_missing_and_never_shows_a_key(monkeypatch, tmp_path, capsys):
    for name in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CourseError) as err:
        api.get_client(False, provider="azure", env_file=tmp_path / "none.env")
    assert "AZURE_OPENAI_ENDPOINT" in str(err.value) and "AZURE_OPENAI_API_KEY" in str(err.value)
    secret = "a" * 32
    (tmp_path / ".env").write_text(f"AZURE_OPENAI_API_KEY={secret}\nAZURE_OPENAI_ENDPOINT=https://res.openai.azure.com\n")
    client = api.get_client(False, provider="azure", env_file=tmp_path / ".env")
    assert isinstance(client, openai.AzureOpenAI) and str(client.base_url) == "https://res.openai.azure.com/openai/"
    assert client.api_key == secret and secret not in repr(client) and secret not in capsys.readouterr().out


def test_bom_files_round_trip(tmp_path):
    rows = read_jsonl(QUIP / "validation.jsonl")
    path = write_jsonl(rows, tmp_path / "v.jsonl", bom=True)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf") and read_jsonl(path) == rows


def test_find_job_ignores_jobs_of_other_runs_when_the_filter_is_ignored(tmp_path):
    client = azure_client()
    train = upload(client)
    other = create(client, train.id, metadata={"course_run": "someone-else"})
    client.fine_tuning.jobs.cancel(other.id)
    original = client.fine_tuning.jobs.list
    client.fine_tuning.jobs.list = lambda **kw: original(limit=kw.get("limit", 20))  # a service without the filter
    mine = create(client, train.id, metadata={"course_run": "mine"}, suffix="a")
    assert jobs.find_job(client, "mine").id == mine.id
    assert jobs.find_job(client, "nobody") is None
    assert client.fine_tuning.jobs.cancel(mine.id).status == "cancelled"  # never let it train in the background


def test_entra_id_without_azure_identity_says_what_to_install(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_azure(name, *args, **kwargs):
        if name.startswith("azure.identity"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_azure)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
    with pytest.raises(CourseError, match="pip install azure-identity"):
        api.get_client(False, provider="azure", entra_id=True, env_file=tmp_path / "none.env")
