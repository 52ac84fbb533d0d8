"""Reinforcement fine-tuning jobs in the emulator, through the real openai SDK: the request in OpenAI's and
Azure's shapes with a grader, real GRPO training with the grader as the reward (the course's SQL grader,
sandboxed), the reward metrics in events and results, and what the providers refuse."""

import json

import openai
import pytest

from emulator import azure_client, openai_client
from helpers.data import datasets
from helpers.eval import graders

MODEL = "o4-mini-2025-04-16"


def rft_rows(split: str, limit: int, seed: int = 0) -> list[dict]:
    """Text-to-SQL lines in the RFT format: the messages up to the user's question, and what the grader reads."""
    return [{"messages": row["messages"][:-1], "db_id": row["db_id"], "gold_sql": row["messages"][-1]["content"]}
            for row in datasets.load_split(split, limit=limit, seed=seed)]


def upload(client, rows, name="rft.jsonl"):
    return client.files.create(file=(name, "".join(json.dumps(r) + "\n" for r in rows).encode()), purpose="fine-tune")


def rft(grader, **hyper):
    return {"type": "reinforcement", "reinforcement": {"grader": grader, "hyperparameters": hyper}}


@pytest.fixture(scope="module")
def graded():
    """One real job: 2 GRPO steps of 2 prompts x 4 answers, graded by the course's SQL grader."""
    client = openai_client(max_steps=2)
    training, validation = upload(client, rft_rows("train", 12)), upload(client, rft_rows("validation", 10), "v.jsonl")
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=training.id, validation_file=validation.id,
                                         suffix="sql", seed=5, method=rft(graders.sql_grader(), batch_size=2,
                                                                          reasoning_effort="low", eval_samples=4))
    client.emulator.wait_for_worker(job.id)
    return client, client.fine_tuning.jobs.retrieve(job.id)


def test_the_job_echoes_its_grader_and_trains_with_it_for_real(graded):
    client, job = graded
    assert job.status == "succeeded", job.error
    assert job.method.type == "reinforcement"
    assert job.method.reinforcement.grader.name == "sql_execution"
    assert job.method.reinforcement.hyperparameters.reasoning_effort == "low"
    events = sorted(client.fine_tuning.jobs.list_events(job.id, limit=100), key=lambda e: e.created_at)
    metrics = [e.data for e in events if e.type == "metrics"]
    rewards = [d["scores"]["train_reward_mean"] for d in metrics if d["scores"]["valid_reward_mean"] is None]
    assert len(rewards) == 2 and all(0 <= r <= 1 for r in rewards)
    assert [d["train_mean_reward"] for d in metrics][:2] == rewards  # the older flat key too
    assert metrics[0]["errors"]["graders"][0]["train_python_grader_runtime_error_mean"] == 0  # the grader never failed
    assert any("GRPO" in e.message and "sql_execution" in e.message for e in events)
    valid = [d["full_valid_mean_reward"] for d in metrics if "full_valid_mean_reward" in d]
    assert len(valid) == 1 and 0 <= valid[0] <= 1
    results = client.files.content(job.result_files[0]).text.splitlines()
    assert results[0] == "step,train_reward_mean,train_reward_std,train_groups_without_signal,valid_reward_mean"
    assert len(results) == 3
    answer = client.chat.completions.create(model=job.fine_tuned_model, messages=rft_rows("test", 1)[0]["messages"],
                                            temperature=0, max_tokens=32)
    assert answer.choices[0].message.content


def test_the_reward_is_the_graders_score():
    """A python grader that scores every answer 0.25: the step's mean reward, and the validation's, is 0.25."""
    client = openai_client(max_steps=1)
    constant = {"type": "python", "name": "quarter", "source": "def grade(sample, item):\n    return 0.25\n"}
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=upload(client, rft_rows("train", 10)).id,
                                         validation_file=upload(client, rft_rows("validation", 10), "v.jsonl").id,
                                         method=rft(constant, batch_size=2, eval_samples=2))
    job = client.emulator.wait_for_worker(job.id)
    assert job["status"] == "succeeded", job["error"]
    data = [e.data for e in client.fine_tuning.jobs.list_events(job["id"], limit=100) if e.type == "metrics"]
    assert [d["scores"]["train_reward_mean"] for d in data] == [0.25] * 2  # the step, and the validation event
    assert [d["scores"]["valid_reward_mean"] for d in data if d["scores"]["valid_reward_mean"] is not None] == [0.25]


def test_what_the_providers_refuse_is_refused_their_way():
    client = openai_client(max_retries=0)
    training, validation = upload(client, rft_rows("train", 12)), upload(client, rft_rows("validation", 10))
    with pytest.raises(openai.BadRequestError) as err:  # both providers' RFT needs a validation file
        client.fine_tuning.jobs.create(model=MODEL, training_file=training.id, method=rft(graders.sql_grader()))
    assert err.value.body["param"] == "validation_file"
    with pytest.raises(openai.BadRequestError) as err:  # GPT-4o mini takes supervised and DPO, not RFT
        client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=training.id,
                                       validation_file=validation.id, method=rft(graders.sql_grader()))
    assert err.value.body["param"] == "model" and "'reinforcement'" in err.value.body["message"]
    with pytest.raises(openai.BadRequestError) as err:  # o4-mini takes RFT only
        client.fine_tuning.jobs.create(model=MODEL, training_file=training.id, validation_file=validation.id)
    assert "'supervised'" in err.value.body["message"]
    for method, param in ((rft({"type": "string_check", "name": "x", "operation": "has",
                                "input": "{{ sample.output_text }}", "reference": "{{ item.gold_sql }}"}),
                           "method.reinforcement.grader.operation"),
                          ({"type": "reinforcement", "reinforcement": {}}, "method.reinforcement.grader"),
                          (rft(graders.sql_grader(), reasoning_effort="max"),
                           "method.reinforcement.hyperparameters.reasoning_effort"),
                          (rft(graders.sql_grader(), beta=0.1), "method.reinforcement.hyperparameters")):
        with pytest.raises(openai.BadRequestError) as err:
            client.fine_tuning.jobs.create(model=MODEL, training_file=training.id, validation_file=validation.id,
                                           method=method)
        assert err.value.body["param"] == param
    azure = azure_client(max_retries=0)
    training = upload(azure, rft_rows("train", 12))
    while azure.files.retrieve(training.id).status != "processed":
        pass
    with pytest.raises(openai.BadRequestError) as err:  # Azure: RFT needs a validation file too
        azure.fine_tuning.jobs.create(model=MODEL, training_file=training.id, method=rft(graders.sql_grader()),
                                      extra_body={"trainingType": "Standard"})
    assert err.value.body.get("param", err.value.body.get("error", {}).get("param")) == "validation_file"


EXACT = {"type": "string_check", "name": "exact", "operation": "eq", "input": "{{ sample.output_text }}",
         "reference": "{{ item.gold_sql }}"}


@pytest.mark.parametrize("change, words", [
    (lambda row: {**row, "messages": row["messages"] + [{"role": "assistant", "content": row["gold_sql"]}]},
     "ends with the user turn"),
    (lambda row: {key: value for key, value in row.items() if key != "gold_sql"}, "{{ item.gold_sql }}"),
])
def test_a_line_the_provider_would_refuse_fails_the_job_naming_it(change, words):
    client = openai_client(max_retries=0, max_steps=1)
    rows = rft_rows("train", 12)
    rows[6] = change(rows[6])
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=upload(client, rows).id,
                                         validation_file=upload(client, rft_rows("validation", 10), "v.jsonl").id,
                                         method=rft(EXACT))
    job = client.emulator.wait_for_worker(job.id)
    assert job["status"] == "failed" and job["error"]["code"] == "invalid_training_file"
    assert "line 7" in job["error"]["message"] and words in job["error"]["message"]


def test_a_grader_that_fails_too_often_fails_the_job_naming_its_error():
    """A python grader that raises on every answer: the first step's metrics report the failures, then the job
    fails with the grader's own error (its line), and no model is made."""
    client = openai_client(max_steps=3)
    broken = {"type": "python", "name": "broken", "source": "def grade(sample, item):\n    return item['no_such_field']\n"}
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=upload(client, rft_rows("train", 10)).id,
                                         validation_file=upload(client, rft_rows("validation", 10), "v.jsonl").id,
                                         method=rft(broken, batch_size=2))
    job = client.emulator.wait_for_worker(job.id)
    assert job["status"] == "failed" and job["fine_tuned_model"] is None
    assert job["error"]["code"] == "grader_error" and job["error"]["param"] == "method.reinforcement.grader"
    assert "failed on 8 of 8 samples" in job["error"]["message"]
    assert "no_such_field" in job["error"]["message"] and "line 2" in job["error"]["message"]
    data = [e.data for e in client.fine_tuning.jobs.list_events(job["id"], limit=100) if e.type == "metrics"]
    assert len(data) == 1 and data[0]["errors"]["graders"][0]["train_python_grader_runtime_error_mean"] == 1.0
