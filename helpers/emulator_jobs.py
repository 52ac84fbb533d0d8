"""What happens behind the emulator's API: a job that validates and really trains, and chat
completions answered by the embedded model or a job's LoRA adapter."""

from __future__ import annotations

import math
import secrets
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import torch

from helpers import cost, datasets, models, training
from helpers.validate import validate_file

VALID_SAMPLE = 32  # validation examples scored at the end of a job
MAX_NEW_TOKENS = 512
_generate_lock = threading.Lock()
_load_lock = threading.Lock()


class JobStopped(Exception):
    """The job was cancelled or failed while training."""


def load_examples(em, file_id: str, model: str, param: str) -> tuple[list[dict], dict]:
    """The examples of an uploaded file and its validation stats, or an ApiError naming the bad lines."""
    from helpers.emulator import ApiError

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / em.files[file_id]["filename"]
        path.write_bytes(em.contents[file_id])
        report = validate_file(path, model=model)
        if report.errors:
            first = report.errors[0]
            more = f" (and {len(report.errors) - 1} more problems)" if len(report.errors) > 1 else ""
            where = f"line {first.line}: " if first.line else ""
            raise ApiError(400, f"The file {file_id} is not valid: {where}{first.message}{more}", param=param,
                           code=f"invalid_{param}")
        rows = datasets.read_jsonl(path)
    for number, row in enumerate(rows, start=1):
        if any(not isinstance(m.get("content"), str) for m in row["messages"]):
            raise ApiError(400, f"Example {number} uses tool calls or content parts, which the emulator "
                           "does not train on", param=param, code="unsupported_by_emulator")
    return rows, report.stats


def run_job(em, job: dict) -> None:
    """Validate the files, train for real, publish the model; events and status along the way."""
    from helpers.emulator import ApiError

    job_id = job["id"]
    em._event(job_id, f"Validating training file: {job['training_file']}")
    try:
        rows, stats = load_examples(em, job["training_file"], job["model"], "training_file")
        valid_rows = (load_examples(em, job["validation_file"], job["model"], "validation_file")[0]
                      if job["validation_file"] else [])
    except ApiError as err:
        em._fail(job_id, err.code, err.message, err.param)
        return
    if job.get("_cancel"):
        return
    job["status"] = em.spec.job_statuses[1]
    em._event(job_id, "Files validated, moving job to queued state")
    time.sleep(em.faults.step_delay)
    if job.get("_cancel"):
        return
    job["status"] = "running"
    em._event(job_id, "Fine-tuning job started")
    plan = plan_training(em, job, len(rows))
    em._event(job_id, f"Emulator: {plan['steps']} LoRA steps on the embedded SmolLM2-135M-Instruct; "
                      f"the provider would run {plan['full_steps']} ({plan['epochs']} epochs of "
                      f"{len(rows)} examples, batch {plan['batch_size']})")
    fail_now = _take_failure(em)
    results = []
    try:
        trainer = training.train_lora(
            rows, plan["steps"], learning_rate=plan["learning_rate"], batch_size=plan["batch_size"],
            seed=job["seed"], on_log=lambda step, logs: _log_step(em, job, step, logs, plan, results, fail_now),
            should_stop=lambda: job.get("_cancel") or job["status"] == "failed",
            output_dir=em.workdir / job_id)
    except JobStopped:
        return
    if job.get("_cancel") or job["status"] == "failed":
        return
    _finish(em, job, trainer, stats["billed_tokens_per_epoch"], valid_rows, plan, results)


def plan_training(em, job: dict, n_examples: int) -> dict:
    """Epochs, batch size and learning rate the job asked for, and the bounded steps it runs."""
    hyper = job["hyperparameters"]
    epochs = cost.default_epochs(n_examples) if hyper["n_epochs"] == "auto" else int(hyper["n_epochs"])
    batch = em.batch_size if hyper["batch_size"] == "auto" else int(hyper["batch_size"])
    multiplier = 1.0 if hyper["learning_rate_multiplier"] == "auto" else float(hyper["learning_rate_multiplier"])
    full = epochs * math.ceil(n_examples / batch)
    return {"epochs": epochs, "batch_size": batch, "full_steps": full, "steps": min(full, em.max_steps),
            "learning_rate": 1e-3 * multiplier}


def _take_failure(em) -> bool:
    with em.lock:
        if em.faults.fail_jobs:
            em.faults.fail_jobs -= 1
            return True
    return False


def _log_step(em, job, step, logs, plan, results, fail_now) -> None:
    """One training step: a metrics event and a results row; injected failures and delays."""
    row = {"step": step, "train_loss": round(float(logs["loss"]), 4),
           "train_accuracy": round(float(logs.get("mean_token_accuracy", float("nan"))), 4),
           "valid_loss": None, "valid_mean_token_accuracy": None}
    results.append(row)
    data = {"step": step, "train_loss": row["train_loss"], "train_mean_token_accuracy": row["train_accuracy"],
            "total_steps": plan["steps"]}
    em._event(job["id"], f"Step {step}/{plan['steps']}: training loss={row['train_loss']:.4f}", data)
    time.sleep(em.faults.step_delay)
    if fail_now:
        em._fail(job["id"], em.faults.failure_code, "The job failed due to an internal error (injected).")
        raise JobStopped


def _finish(em, job, trainer, billed_per_epoch, valid_rows, plan, results) -> None:
    """Validation loss, adapter, checkpoint, results file and the fine-tuned model name."""
    from helpers.emulator import _now

    job_id = job["id"]
    if valid_rows and results:
        scores = trainer.evaluate(eval_dataset=datasets.to_prompt_completion(valid_rows[:VALID_SAMPLE]))
        results[-1]["valid_loss"] = round(float(scores["eval_loss"]), 4)
        results[-1]["valid_mean_token_accuracy"] = round(float(scores.get("eval_mean_token_accuracy", float("nan"))), 4)
        if len(valid_rows) <= VALID_SAMPLE:  # the sample was the whole validation file
            results[-1]["full_valid_loss"] = results[-1]["valid_loss"]
            results[-1]["full_valid_mean_token_accuracy"] = results[-1]["valid_mean_token_accuracy"]
        em._event(job_id, f"Step {plan['steps']}/{plan['steps']}: validation loss={results[-1]['valid_loss']:.4f}",
                  {"step": plan["steps"], "valid_loss": results[-1]["valid_loss"],
                   "valid_mean_token_accuracy": results[-1]["valid_mean_token_accuracy"]})
    adapter = em.workdir / job_id / "adapter"
    trainer.save_model(str(adapter))
    name = em.spec.model_name(job["model"], job["suffix"], job_id)
    em.adapters[name] = adapter
    step = results[-1]["step"] if results else plan["steps"]
    em.checkpoints[job_id].append({
        "id": em.spec.new_id(em.spec.checkpoint_prefix), "object": "fine_tuning.job.checkpoint", "created_at": _now(),
        "fine_tuned_model_checkpoint": f"{name}:ckpt-step-{step}", "fine_tuning_job_id": job_id,
        "step_number": step, "metrics": {k: results[-1][k] for k in ("train_loss", "valid_loss")} if results else {}})
    em.adapters[f"{name}:ckpt-step-{step}"] = adapter
    columns = em.spec.result_columns
    csv = pd.DataFrame(results, columns=list(columns)).rename(columns=columns).to_csv(index=False).encode()
    result_file = em._store_file("step_metrics.csv", csv, "fine-tune-results")
    job.update(status="succeeded", fine_tuned_model=name, finished_at=_now(), result_files=[result_file["id"]],
               trained_tokens=billed_per_epoch * plan["epochs"])
    em._event(job_id, f"New fine-tuned model created: {name}")
    em._event(job_id, "The job has successfully completed")


def _model_for(em, name: str):
    """(model, tokenizer) behind a model name: the embedded base, or base plus a job's adapter."""
    with _load_lock:  # concurrent first requests load the model once
        if name not in em._models:
            _load(em, name)
    return em._models[name]


def _load(em, name: str) -> None:
    """Load the embedded model for `name`, with the job's adapter merged in when it has one."""
    model, tokenizer = models.load_model("")
    if name in em.adapters:
        from peft import PeftModel

        # merged: the same weights, without LoRA's extra products at every generated token
        model = PeftModel.from_pretrained(model, str(em.adapters[name])).merge_and_unload()
    model.eval()
    em._models[name] = (model, tokenizer)


class _Pending:
    """A greedy request waiting to be answered, possibly in one batch with others."""

    def __init__(self, key: tuple, prompt: str):
        self.key, self.prompt, self.tokens = key, prompt, None


_pending: list[_Pending] = []
_pending_lock = threading.Lock()
BATCH = 16  # greedy requests answered together at most


def _generate_greedy(em, name: str, entry: _Pending) -> list[int]:
    """New tokens for a greedy request. Whoever holds the generation lock answers every pending
    request for the same model and length at once (left-padded), as a serving engine batches."""
    with _pending_lock:
        _pending.append(entry)
    with _generate_lock:
        if entry.tokens is None:
            with _pending_lock:  # this request, and others for the same model waiting behind it
                batch = [entry] + [e for e in _pending if e.key == entry.key and e is not entry][:BATCH - 1]
                _pending[:] = [e for e in _pending if not any(e is b for b in batch)]
            model, tokenizer = _model_for(em, name)
            inputs = tokenizer([e.prompt for e in batch], return_tensors="pt", padding=True, padding_side="left",
                               add_special_tokens=False)
            with torch.no_grad():
                out = model.generate(**inputs, max_new_tokens=entry.key[2], do_sample=False,
                                     pad_token_id=tokenizer.eos_token_id)
            em.generate_calls += 1
            for e, row in zip(batch, out[:, inputs["input_ids"].shape[1]:].tolist(), strict=True):
                stop = row.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in row else len(row)
                e.tokens = row[:stop]
    return entry.tokens


def _generate_sampled(em, name: str, prompt: str, limit: int, body: dict) -> list[int]:
    """New tokens for a sampled request (temperature > 0), seeded when the request says so."""
    model, tokenizer = _model_for(em, name)
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with _generate_lock, torch.no_grad():
        if body.get("seed") is not None:
            torch.manual_seed(int(body["seed"]))
        out = model.generate(**inputs, max_new_tokens=limit, do_sample=True, pad_token_id=tokenizer.eos_token_id,
                             temperature=float(body.get("temperature", 1.0)), top_p=float(body.get("top_p", 1.0)))
        em.generate_calls += 1
    return out[0, inputs["input_ids"].shape[1]:].tolist()


def complete(em, name: str, body: dict) -> dict:
    """A chat.completion answer generated by the model behind `name`; concurrent greedy
    requests are answered in one batch."""
    from helpers.emulator import _now

    _, tokenizer = _model_for(em, name)
    limit = min(int(body.get("max_completion_tokens") or body.get("max_tokens") or 256), MAX_NEW_TOKENS)
    prompt = tokenizer.apply_chat_template(body["messages"], add_generation_prompt=True, tokenize=False)
    if float(body.get("temperature", 1.0)) > 0:
        new = _generate_sampled(em, name, prompt, limit, body)
    else:
        new = _generate_greedy(em, name, _Pending((id(em), name, limit), prompt))
    text = tokenizer.decode(new, skip_special_tokens=True).strip()
    finish = "length" if len(new) >= limit and new[-1] != tokenizer.eos_token_id else "stop"
    prompt_tokens = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    return {"id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion", "created": _now(),
            "model": name, "system_fingerprint": "fp_emulator",
            "choices": [{"index": 0, "finish_reason": finish, "logprobs": None,
                         "message": {"role": "assistant", "content": text, "refusal": None}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(new),
                      "total_tokens": prompt_tokens + len(new)}}
