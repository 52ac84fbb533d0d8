"""The OpenAI API emulator, driven through the real openai SDK: every endpoint, pagination,
the metadata filter, cancel, injected faults, and one job that really trains."""

import json
import math
import threading

import openai
import pytest

from emulator import Emulator, Faults, openai_client
from helpers.data.datasets import RECIPES, prompt_messages, read_jsonl
from helpers.errors import CourseError
from helpers.providers import api, jobs
from helpers.providers.conventions import OPENAI
from helpers.providers.http import http_module

MODEL = "gpt-4o-mini-2024-07-18"


def upload(client, path=RECIPES / "train.jsonl", name=None):
    return client.files.create(file=(name or path.name, path.read_bytes()), purpose="fine-tune")


@pytest.fixture(scope="module")
def trained():
    """One real job: 6 LoRA steps of 4 examples on the recipe data, with a validation file."""
    client = openai_client(max_steps=6)
    train, valid = upload(client), upload(client, RECIPES / "validation.jsonl")
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=train.id, validation_file=valid.id,
                                         suffix="recipes", seed=1, metadata={"course_run": "t1"},
                                         hyperparameters={"batch_size": 4})
    client.emulator.wait_for_worker(job.id)
    return client, client.fine_tuning.jobs.retrieve(job.id)


def test_files_upload_retrieve_content_list_delete():
    client = openai_client()
    data = (RECIPES / "validation.jsonl").read_bytes()
    made = [upload(client, RECIPES / "validation.jsonl", name=f"v{i}.jsonl") for i in range(3)]
    assert made[0].bytes == len(data) and made[0].status == "processed" and made[0].filename == "v0.jsonl"
    assert client.files.retrieve(made[1].id).filename == "v1.jsonl"
    assert client.files.content(made[2].id).content == data
    page = client.files.list(purpose="fine-tune", limit=2)
    assert len(page.data) == 2 and page.has_more
    assert {f.id for f in client.files.list(purpose="fine-tune", limit=2)} == {f.id for f in made}  # auto-paging
    assert client.files.delete(made[0].id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(made[0].id)


def test_create_refuses_what_the_api_refuses():
    client = openai_client(max_retries=0)
    train = upload(client)
    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.create(model="gpt-4", training_file=train.id)
    assert err.value.body["code"] == "model_not_available"
    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.create(model=MODEL, training_file="file-nope")
    assert err.value.body["param"] == "training_file"
    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.create(model=MODEL, training_file=train.id, hyperparameters={"n_epochs": 0})
    assert err.value.body["param"] == "hyperparameters.n_epochs"
    assert client.fine_tuning.jobs.list().data == []


def test_a_bad_training_file_fails_the_job_naming_the_line(tmp_path):
    client = openai_client()
    lines = (RECIPES / "validation.jsonl").read_text().splitlines()
    lines[6] = lines[6].replace('"assistant"', '"robot"')
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=upload(client, bad).id)
    done = client.emulator.wait_for_worker(job.id, timeout=60)
    assert done["status"] == "failed" and done["error"]["code"] == "invalid_training_file"
    assert "line 7" in done["error"]["message"] and "robot" in done["error"]["message"]


def test_the_job_really_trains(trained):
    client, job = trained
    assert job.status == "succeeded" and job.fine_tuned_model.startswith(f"ft:{MODEL}:emulator:recipes:")
    assert job.trained_tokens > 10_000 and job.finished_at >= job.created_at
    results = jobs.results_frame(client, job)
    assert list(results.step) == [1, 2, 3, 4, 5, 6]
    assert results.train_loss.iloc[-1] < 0.6 * results.train_loss.iloc[0]
    assert math.isfinite(results.valid_loss.iloc[-1]) and results.valid_loss.iloc[-1] < results.train_loss.iloc[0]
    events = jobs.metrics_events(client, job.id)
    assert list(events.train_loss) == list(results.train_loss)  # the events carry the same real losses


def test_events_are_newest_first_and_paginated(trained):
    client, job = trained
    first = client.fine_tuning.jobs.list_events(job.id, limit=3)
    assert len(first.data) == 3 and first.has_more
    assert first.data[0].message == "The job has successfully completed"
    assert [e.created_at for e in first.data] == sorted((e.created_at for e in first.data), reverse=True)
    after = client.fine_tuning.jobs.list_events(job.id, limit=3, after=first.data[-1].id)
    every = list(client.fine_tuning.jobs.list_events(job.id, limit=3))
    assert [e.id for e in every[:6]] == [e.id for e in first.data + after.data]
    assert every[-1].message.startswith("Created fine-tuning job")


def test_checkpoints_models_and_metadata_filter(trained):
    client, job = trained
    [checkpoint] = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert checkpoint.step_number == 6 and checkpoint.fine_tuned_model_checkpoint.endswith(":ckpt-step-6")
    names = [m.id for m in client.models.list()]
    assert MODEL in names and job.fine_tuned_model in names
    assert client.models.retrieve(job.fine_tuned_model).owned_by == "user-emulator"
    assert [j.id for j in client.fine_tuning.jobs.list(metadata={"course_run": "t1"})] == [job.id]
    assert client.fine_tuning.jobs.list(metadata={"course_run": "other"}).data == []


def test_chat_answers_with_the_fine_tuned_model(trained):
    client, job = trained
    row = read_jsonl(RECIPES / "test.jsonl")[0]
    ask = {"messages": prompt_messages(row), "temperature": 0, "max_tokens": 40}  # the base model rambles on
    tuned = client.chat.completions.create(model=job.fine_tuned_model, **ask)
    base = client.chat.completions.create(model=MODEL, **ask)
    assert tuned.choices[0].message.content != base.choices[0].message.content
    assert tuned.choices[0].message.content.startswith("[")  # it learned the answer format
    assert tuned.usage.completion_tokens > 0 and tuned.model == job.fine_tuned_model
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="ft:gpt-4o-mini:nobody", messages=prompt_messages(row))


def test_cancel_a_queued_job():
    gate, at_gate = threading.Event(), threading.Event()  # the job waits in queued until the gate opens
    client = openai_client(faults=Faults(gate=gate, at_gate=at_gate))
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=upload(client).id)
    assert at_gate.wait(60) and client.fine_tuning.jobs.retrieve(job.id).status == "queued"
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    gate.set()
    done = client.emulator.wait_for_worker(job.id, timeout=60)
    assert done["status"] == "cancelled" and done["fine_tuned_model"] is None
    assert [e.message for e in client.fine_tuning.jobs.list_events(job.id)][0] == "Job was cancelled"
    with pytest.raises(openai.BadRequestError, match="already cancelled"):
        client.fine_tuning.jobs.cancel(job.id)


def test_rate_limits_and_server_errors_are_retried():
    client = openai_client(faults=Faults(rate_limits=1, server_errors=1))
    assert [m.id for m in client.models.list()] == list(OPENAI.fine_tunable)
    assert client.emulator.requests == 3  # 429, then 500, then the answer


def test_what_retries_cannot_fix_is_explained():
    client = openai_client(max_retries=1, faults=Faults(rate_limits=5))
    with pytest.raises(CourseError, match="rate limited"):
        with api.explained_errors():
            client.models.list()
    client = openai_client(max_retries=0)
    with pytest.raises(CourseError, match=r"HTTP 400 \[model_not_available\] \(parameter 'model'\)"):
        with api.explained_errors():
            client.fine_tuning.jobs.create(model="davinci", training_file="file-x")


def test_a_job_can_fail_with_an_injected_error():
    client = openai_client(faults=Faults(fail_jobs=1, failure_code="quota_exceeded"))
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=upload(client, RECIPES / "validation.jsonl").id)
    done = client.emulator.wait_for_worker(job.id)
    assert done["status"] == "failed" and done["error"]["code"] == "quota_exceeded" and done["fine_tuned_model"] is None
    with pytest.raises(CourseError, match="ended failed"):
        jobs.wait_for_job(client, job.id, poll_seconds=0.1, plot=False)


def test_state_stays_with_its_emulator():
    a, b = openai_client(), openai_client()
    upload(a)
    assert len(a.files.list().data) == 1 and b.files.list().data == []
    shared = Emulator()
    c, d = openai_client(shared), openai_client(shared)
    upload(c)
    assert [f.id for f in d.files.list()] == [f.id for f in c.files.list()]


def test_azure_style_paths_reach_the_same_endpoints():
    hx = http_module()
    em = Emulator()
    for path in ("/openai/models", "/openai/v1/models", "/v1/models"):
        url = f"https://res.openai.azure.com{path}?api-version=2025-04-01-preview"
        response = em.handle(hx.Request("GET", url, headers={"api-key": "k"}))
        assert response.status_code == 200 and json.loads(response.content)["object"] == "list"
    assert em.handle(hx.Request("GET", "https://api.openai.com/v1/models")).status_code == 401  # no key


def test_greedy_requests_answered_together_answer_as_one_by_one_and_sampling_keeps_its_seed():
    rows = read_jsonl(RECIPES / "test.jsonl")[:3]
    client = openai_client()
    one_by_one = api.ask_all(client, MODEL, rows, max_tokens=16, workers=1)
    chat = client.emulator.chat
    _, tokenizer = chat.model(MODEL)
    prompts = [tokenizer.apply_chat_template(prompt_messages(r), add_generation_prompt=True, tokenize=False)
               for r in rows]
    waiting = [chat.queue(MODEL, p, 16) for p in prompts]  # three requests in line before any is answered
    other = chat.queue(MODEL, prompts[0], 6)                # another length: not in their batch
    chat.answer(waiting[0])
    assert [tokenizer.decode(w.tokens, skip_special_tokens=True).strip() for w in waiting] == one_by_one
    assert other.tokens is None and chat.pending == [other] and chat.answer(other) == waiting[0].tokens[:6]
    assert api.ask_all(client, MODEL, rows, max_tokens=16, workers=3) == one_by_one  # concurrent requests
    sampled = [client.chat.completions.create(model=MODEL, messages=prompt_messages(rows[0]), max_tokens=16,
                                              temperature=1.0, seed=seed).choices[0].message.content
               for seed in (1, 1, 2)]
    assert sampled[0] == sampled[1] != sampled[2]  # a seed repeats its answer; another seed differs
