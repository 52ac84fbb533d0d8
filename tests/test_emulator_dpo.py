"""DPO jobs in the emulator, through the real openai SDK: the request in OpenAI's and Azure's shapes,
what the providers refuse, real training with TRL's DPOTrainer (from the base model and from a fine-tuned
one), and the held-out check: on prompts it never saw, the tuned model prefers the persona's voice more."""

import json

import openai
import pytest
import torch

from emulator import azure_client, openai_client
from helpers.data import datasets, preferences
from helpers.eval import persona

MODEL = "gpt-4o-mini-2024-07-18"
QUIP_TRAIN = datasets.read_jsonl(datasets.QUIP / "train.jsonl")
QUIP_TEST = datasets.read_jsonl(datasets.QUIP / "test.jsonl")


def jsonl(rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def upload(client, rows, name="pairs.jsonl"):
    return client.files.create(file=(name, jsonl(rows)), purpose="fine-tune")


def dpo(beta="auto", **hyper):
    return {"type": "dpo", "dpo": {"hyperparameters": {"beta": beta, **hyper}}}


def reply_logprob(model, tokenizer, prompt: list[dict], text: str) -> float:
    """log p(reply | prompt) under a model: the sum over the reply's tokens."""
    head = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    reply_ids = tokenizer(text + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + reply_ids])
    with torch.no_grad():
        scores = torch.log_softmax(model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1].float(), dim=-1)
    return float(scores.gather(1, torch.tensor(reply_ids)[:, None]).sum())


def margins(client, name: str, pairs: list[dict]) -> list[float]:
    """log p(chosen) - log p(rejected) of each held-out pair under the model the emulator serves as `name`."""
    model, tokenizer = client.emulator.chat.model(name)
    return [reply_logprob(model, tokenizer, p["prompt"], p["chosen"][0]["content"])
            - reply_logprob(model, tokenizer, p["prompt"], p["rejected"][0]["content"]) for p in pairs]


@pytest.fixture(scope="module")
def tuned():
    """One real DPO job on Quip's voice pairs (OpenAI's shapes): 8 steps of 4 pairs from the base model."""
    client = openai_client(max_steps=8)
    training = upload(client, preferences.to_provider(preferences.voice_pairs(QUIP_TRAIN)))
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=training.id, suffix="voice", seed=3,
                                         method=dpo(beta=0.1, batch_size=4, learning_rate_multiplier=20))
    client.emulator.wait_for_worker(job.id)
    return client, client.fine_tuning.jobs.retrieve(job.id)


def test_the_job_echoes_its_method_and_trains_for_real(tuned):
    client, job = tuned
    assert job.status == "succeeded", job.error
    assert job.method.type == "dpo" and job.method.dpo.hyperparameters.beta == 0.1
    assert job.method.dpo.hyperparameters.batch_size == 4 and job.hyperparameters.batch_size == 4
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    steps = sorted(e.data["step"] for e in events if e.type == "metrics")
    assert steps == list(range(1, 9))
    assert any("DPO (beta 0.1)" in e.message for e in events)
    losses = [e.data["train_loss"] for e in sorted(events, key=lambda e: e.created_at) if e.type == "metrics"]
    assert losses[-1] < losses[0] < 0.7  # DPO's loss starts at log 2 (0.693) and falls as pairs are ranked right
    assert job.trained_tokens > 0


def test_on_held_out_prompts_the_tuned_model_prefers_the_voice_more(tuned):
    client, job = tuned
    held_out = preferences.voice_pairs(QUIP_TEST, persona.house_phrases(QUIP_TRAIN))
    assert len(held_out) == len(QUIP_TEST)
    assert not {q["prompt"][-1]["content"] for q in held_out} & {r["messages"][1]["content"] for r in QUIP_TRAIN}
    before, after = margins(client, MODEL, held_out), margins(client, job.fine_tuned_model, held_out)
    gained = sum(a > b for a, b in zip(after, before, strict=True))
    assert sum(after) / len(after) > sum(before) / len(before) + 1.0 and gained >= 0.8 * len(held_out)


def test_logprobs_come_back_as_the_chat_api_returns_them(tuned):
    client, job = tuned
    question = QUIP_TEST[0]["messages"][:2]
    answer = client.chat.completions.create(model=job.fine_tuned_model, messages=question, max_tokens=6,
                                            temperature=0, logprobs=True, top_logprobs=3)
    tokens = answer.choices[0].logprobs.content
    assert len(tokens) == answer.usage.completion_tokens
    for token in tokens:
        assert token.logprob <= 0 and len(token.top_logprobs) == 3
        assert token.top_logprobs[0].logprob >= token.logprob - 1e-4  # greedy: the chosen token is the likeliest
    assert "".join(t.token for t in tokens).strip() == answer.choices[0].message.content
    assert persona.in_voice(client.chat.completions.create(
        model=MODEL, messages=question, max_tokens=6, temperature=0).choices[0].message.content, []) is False
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=question, top_logprobs=3)
    assert err.value.body["param"] == "top_logprobs"


def test_dpo_continues_from_a_fine_tuned_model():
    """A DPO job on a model an SFT job made trains on top of it: the new model is base + SFT + DPO."""
    client = openai_client(max_steps=2)
    sft = client.fine_tuning.jobs.create(model=MODEL, training_file=upload(client, QUIP_TRAIN[:12], "sft.jsonl").id,
                                         hyperparameters={"batch_size": 4})
    sft = client.emulator.wait_for_worker(sft.id)
    pairs = preferences.to_provider(preferences.voice_pairs(QUIP_TRAIN[:12]))
    job = client.fine_tuning.jobs.create(model=sft["fine_tuned_model"], training_file=upload(client, pairs).id,
                                         method=dpo(batch_size=4))
    job = client.emulator.wait_for_worker(job.id)
    assert job["status"] == "succeeded" and job["model"] == sft["fine_tuned_model"]
    assert job["fine_tuned_model"].startswith(f"ft:{MODEL}:")  # named after the provider's base model
    assert len(client.emulator.adapters[job["fine_tuned_model"]]) == 2
    assert client.models.retrieve(job["fine_tuned_model"]).owned_by == "user-emulator"


def test_what_the_providers_refuse_is_refused_their_way():
    client = openai_client(max_retries=0)
    pairs = upload(client, preferences.to_provider(preferences.voice_pairs(QUIP_TRAIN[:12])))
    with pytest.raises(openai.BadRequestError) as err:  # GPT-3.5 takes supervised jobs only
        client.fine_tuning.jobs.create(model="gpt-3.5-turbo-0125", training_file=pairs.id, method=dpo())
    assert err.value.body["param"] == "model" and "dpo" in err.value.body["message"]
    for method, param in ((dpo(beta=0), "method.dpo.hyperparameters.beta"),
                          (dpo(temperature=1), "method.dpo.hyperparameters"),
                          ({"type": "rlhf"}, "method.type")):
        with pytest.raises(openai.BadRequestError) as err:
            client.fine_tuning.jobs.create(model=MODEL, training_file=pairs.id, method=method)
        assert err.value.body["param"] == param
    azure = azure_client(max_retries=0)
    pairs = upload(azure, preferences.to_provider(preferences.voice_pairs(QUIP_TRAIN[:12])))
    while azure.files.retrieve(pairs.id).status != "processed":
        pass
    with pytest.raises(openai.BadRequestError) as err:
        azure.fine_tuning.jobs.create(model="gpt-35-turbo-0125", training_file=pairs.id, method=dpo(),
                                      extra_body={"trainingType": "Standard"})
    assert err.value.body["error"]["code"] == "invalidPayload" if "error" in err.value.body else \
        err.value.body["code"] == "invalidPayload"


def test_a_file_that_is_not_dpo_shaped_fails_the_job_naming_the_line():
    client = openai_client(max_retries=0)
    rows = preferences.to_provider(preferences.voice_pairs(QUIP_TRAIN[:12]))
    rows[4] = {**rows[4], "input": {"messages": rows[4]["input"]["messages"] + rows[4]["preferred_output"]}}
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=upload(client, rows).id, method=dpo())
    job = client.emulator.wait_for_worker(job.id)
    assert job["status"] == "failed" and job["error"]["code"] == "invalid_training_file"
    assert "line 5" in job["error"]["message"] and "user turn" in job["error"]["message"]
    chat = client.fine_tuning.jobs.create(model=MODEL, training_file=upload(client, QUIP_TRAIN[:12], "chat.jsonl").id,
                                          method=dpo())
    chat = client.emulator.wait_for_worker(chat.id)
    assert chat["status"] == "failed" and "line 1" in chat["error"]["message"] and "'input'" in chat["error"]["message"]
