"""A fine-tuning job behind the emulator's API: it validates its files, really trains a LoRA adapter
with the course's recipe (supervised; DPO with TRL's DPOTrainer; reinforcement with TRL's GRPOTrainer,
the job's grader as the reward), from the embedded model or from a
model an earlier job made, and publishes the fine-tuned model, posting events along the way. Every
change of the job's status goes through the emulator's lock (`Emulator.move`, `fail`, `succeed`),
so a job that has ended, a cancelled one included, never changes again."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pandas as pd

from emulator.common import ApiError
from helpers.data import cost, preferences
from helpers.data.datasets import read_jsonl, to_prompt_completion
from helpers.data.validate import validate_file
from helpers.eval import generate, graders
from helpers.train import recipe

VALID_SAMPLE = 32  # validation examples scored at the end of a job


class JobStopped(Exception):
    """The job failed (an injected failure) while training."""


FORMATS = {"supervised": "chat", "dpo": "preference", "reinforcement": "reinforcement"}  # each method's file format


def load_examples(em, file_id: str, model: str, param: str, method: str = "supervised",
                  grader: dict | None = None) -> tuple[list[dict], dict]:
    """The examples of an uploaded file and its validation stats, or an ApiError naming the bad lines.
    A DPO job's file must be in the preference format; its examples come back as TRL's pairs. A
    reinforcement job's lines end with the user's turn and carry what its grader reads; they come back as
    prompts, each with its line (less the messages) as the grader's item, in JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / em.files[file_id]["filename"]
        path.write_bytes(em.contents[file_id])
        report = validate_file(path, model=model, format=FORMATS[method], provider=em.provider,
                               grader_fields=graders.variables(grader) if grader else ())
        if report.errors:
            first = min(report.errors, key=lambda p: p.line is None)  # a bad line before what follows from it
            more = f" (and {len(report.errors) - 1} more problems)" if len(report.errors) > 1 else ""
            where = f"line {first.line}: " if first.line else ""
            raise ApiError(400, f"The file {file_id} is not valid: {where}{first.message}{more}", param=param,
                           code=f"invalid_{param}")
        rows = read_jsonl(path, FORMATS[method])
    if method == "dpo":
        rows = preferences.from_provider(rows)
    if method == "reinforcement":
        rows = [{"prompt": row["messages"], "item": json.dumps({k: v for k, v in row.items() if k != "messages"})}
                for row in rows]
    for number, row in enumerate(rows, start=1):
        messages = (row["prompt"] + row["chosen"] + row["rejected"] if method == "dpo" else row["prompt"]
                    if method == "reinforcement" else row["messages"])
        if any(not isinstance(m.get("content"), str) for m in messages):
            raise ApiError(400, f"Example {number} uses tool calls or content parts, which the emulator "
                           "does not train on", param=param, code="unsupported_by_emulator")
    return rows, report.stats


def plan_training(em, job: dict, n_examples: int) -> dict:
    """Epochs, batch size and learning rate the job asked for (and DPO's beta), and the bounded steps it runs."""
    kind = job["method"]["type"]
    hyper = job["method"][kind]["hyperparameters"]
    epochs = cost.default_epochs(n_examples) if hyper["n_epochs"] == "auto" else int(hyper["n_epochs"])
    batch = em.batch_size if hyper["batch_size"] == "auto" else int(hyper["batch_size"])
    multiplier = 1.0 if hyper["learning_rate_multiplier"] == "auto" else float(hyper["learning_rate_multiplier"])
    full = epochs * math.ceil(n_examples / batch)
    rate = {"dpo": recipe.DPO_LEARNING_RATE, "reinforcement": recipe.GRPO_LEARNING_RATE}.get(kind, recipe.LEARNING_RATE)
    plan = {"method": kind, "epochs": epochs, "batch_size": batch, "full_steps": full, "steps": min(full, em.max_steps),
            "learning_rate": rate * multiplier}
    if kind == "dpo":
        plan["beta"] = recipe.DPO_BETA if hyper["beta"] == "auto" else float(hyper["beta"])
    return plan


def start_model(em, job: dict) -> str:
    """The model a job trains from: "" for the embedded model under a base name; for a model an earlier
    job made, its adapters merged into the embedded model, saved in the job's folder."""
    adapters = em.adapters.get(job["model"], [])
    if not adapters:
        return ""
    folder = em.workdir / job["id"] / "start"
    model, tokenizer = em.chat.model(job["model"])  # the model that answers under that name, adapters merged
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def run_job(em, job_id: str) -> None:
    """validating files -> queued -> running -> succeeded | failed | cancelled, for real."""
    job = em.jobs[job_id]
    em.event(job_id, f"Validating training file: {job['training_file']}")
    try:
        method = job["method"]["type"]
        grader = job["method"][method].get("grader")
        rows, stats = load_examples(em, job["training_file"], job["_base"], "training_file", method, grader)
        valid_rows = (load_examples(em, job["validation_file"], job["_base"], "validation_file", method, grader)[0]
                      if job["validation_file"] else [])
    except ApiError as err:
        em.fail(job_id, err.code, err.message, err.param)
        return
    if not em.move(job_id, em.spec.job_statuses[1], "Files validated, moving job to queued state"):
        return
    if not em.wait_at_gate(job_id):
        return
    if not em.move(job_id, "running", "Fine-tuning job started"):
        return
    plan = plan_training(em, job, len(rows))
    start = "the embedded SmolLM2-135M-Instruct" + (f" with {job['model']} merged in" if job["model"] in em.adapters else "")
    if method == "dpo":
        what = f"DPO (beta {plan['beta']:g})"
    elif method == "reinforcement":
        what = f"GRPO ({recipe.GRPO_GENERATIONS} answers per prompt, graded by {grader['name']!r})"
    else:
        what = "LoRA"
    em.event(job_id, f"Emulator: {plan['steps']} {what} steps on {start}; "
                     f"the provider would run {plan['full_steps']} ({plan['epochs']} epochs of "
                     f"{len(rows)} examples, batch {plan['batch_size']})")
    fail_now = em.take_failure()
    results: list[dict] = []

    graded: list[dict] = []  # a reinforcement job's grader responses since the last logged step

    def on_log(step: int, logs: dict) -> None:
        log_step(em, job_id, step, logs, plan, results, graded[:])
        broken = grader_failure(graded)
        graded.clear()
        if broken:
            em.fail(job_id, "grader_error", broken, "method.reinforcement.grader")
            raise JobStopped
        if fail_now:
            em.fail(job_id, em.faults.failure_code, "The job failed due to an internal error (injected).")
            raise JobStopped

    options = {"learning_rate": plan["learning_rate"], "seed": job["seed"], "on_log": on_log,
               "should_stop": lambda: em.ended(job_id), "output_dir": em.workdir / job_id, "model_id": start_model(em, job)}
    try:
        if method == "dpo":
            trainer = em.train_dpo(rows, plan["steps"], beta=plan["beta"], batch_size=plan["batch_size"], **options)
        elif method == "reinforcement":
            reward = graders.reward_function(grader, score_with=em.score_with, on_results=graded.extend)
            trainer = em.train_grpo(rows, [reward], plan["steps"], prompts_per_step=plan["batch_size"], **options)
        else:
            trainer = em.train(rows, plan["steps"], batch_size=plan["batch_size"], **options)
    except JobStopped:
        return
    if not em.ended(job_id):
        finish(em, job_id, trainer, stats["billed_tokens_per_epoch"] * plan["epochs"], valid_rows, plan, results)


def log_step(em, job_id: str, step: int, logs: dict, plan: dict, results: list[dict],
             graded: list[dict] = ()) -> None:
    """One training step: a results row and a metrics event (a reinforcement job's with the step's grader
    responses, `graded`)."""
    if plan["method"] == "reinforcement":
        row = {"step": step, "train_reward_mean": round(float(logs["reward"]), 4),
               "train_reward_std": round(float(logs.get("reward_std", float("nan"))), 4),
               "train_groups_without_signal": round(float(logs.get("frac_reward_zero_std", float("nan"))), 4),
               "valid_reward_mean": None}
        results.append(row)
        em.event(job_id, f"Step {step}/{plan['steps']} , train mean reward={row['train_reward_mean']:.2f}",
                 rft_metrics(em.jobs[job_id], step, plan["steps"], row["train_reward_mean"], None, graded))
        return
    row = {"step": step, "train_loss": round(float(logs["loss"]), 4),
           "train_accuracy": round(float(logs.get("mean_token_accuracy", float("nan"))), 4),
           "valid_loss": None, "valid_mean_token_accuracy": None}
    results.append(row)
    data = {"step": step, "train_loss": row["train_loss"], "train_mean_token_accuracy": row["train_accuracy"],
            "total_steps": plan["steps"]}
    em.event(job_id, f"Step {step}/{plan['steps']}: training loss={row['train_loss']:.4f}", data)


def finish(em, job_id: str, trainer, trained_tokens: int, valid_rows: list[dict], plan: dict,
           results: list[dict]) -> None:
    """Validation loss, adapter and results file; then the job succeeds with its model, unless it
    ended meanwhile."""
    if valid_rows and results and plan["method"] == "supervised":  # DPO jobs: validated, not scored
        scores = trainer.evaluate(eval_dataset=to_prompt_completion(valid_rows[:VALID_SAMPLE]))
        last = results[-1]
        last["valid_loss"] = round(float(scores["eval_loss"]), 4)
        last["valid_mean_token_accuracy"] = round(float(scores.get("eval_mean_token_accuracy", float("nan"))), 4)
        if len(valid_rows) <= VALID_SAMPLE:  # the sample was the whole validation file
            last["full_valid_loss"], last["full_valid_mean_token_accuracy"] = (
                last["valid_loss"], last["valid_mean_token_accuracy"])
        em.event(job_id, f"Step {plan['steps']}/{plan['steps']}: validation loss={last['valid_loss']:.4f}",
                 {"step": plan["steps"], "valid_loss": last["valid_loss"],
                  "valid_mean_token_accuracy": last["valid_mean_token_accuracy"]})
    if valid_rows and results and plan["method"] == "reinforcement":
        asked = em.jobs[job_id]["method"]["reinforcement"]["hyperparameters"]["eval_samples"]
        sample = VALID_SAMPLE if asked == "auto" else int(asked)
        responses = valid_responses(em, job_id, trainer, valid_rows[:sample])
        last = results[-1]
        last["valid_reward_mean"] = round(sum(r["reward"] for r in responses) / len(responses), 4)
        em.event(job_id, f"Step {last['step']}/{plan['steps']} , train mean reward={last['train_reward_mean']:.2f}, "
                         f"full validation mean reward={last['valid_reward_mean']:.2f}",
                 rft_metrics(em.jobs[job_id], last["step"], plan["steps"], last["train_reward_mean"],
                             last["valid_reward_mean"], responses, prefix="valid"))
    adapter = em.workdir / job_id / "adapter"
    trainer.save_model(str(adapter))
    columns = RFT_COLUMNS if plan["method"] == "reinforcement" else em.spec.result_columns
    csv = pd.DataFrame(results, columns=list(columns)).rename(columns=columns).to_csv(index=False).encode()
    step = results[-1]["step"] if results else plan["steps"]
    keys = ("train_reward_mean", "valid_reward_mean") if plan["method"] == "reinforcement" else ("train_loss", "valid_loss")
    metrics = {k: results[-1][k] for k in keys} if results else {}
    em.succeed(job_id, adapter, step, metrics, csv, trained_tokens)


# A reinforcement job fails once a step's grades failed more often than this. The providers fail a job whose
# grader errs "too often" without saying where the line is; the step's error shares are in its metrics event.
GRADER_ERROR_LIMIT = 0.5


def grader_failure(responses: list[dict]) -> str | None:
    """Why a step's grader responses fail the job (more than GRADER_ERROR_LIMIT of them errored: the flags, and
    the first error's details), or None."""
    failed = [r["metadata"]["errors"] for r in responses if any(r["metadata"]["errors"][f] for f in graders.ERROR_FLAGS)]
    if not responses or len(failed) <= GRADER_ERROR_LIMIT * len(responses):
        return None
    flags = sorted({flag for errors in failed for flag in graders.ERROR_FLAGS if errors[flag]})
    details = next((str(errors[key]) for errors in failed for key in ("python_grader_runtime_error_details",
                    "python_grader_server_error_type", "model_grader_server_error_details") if errors.get(key)), "")
    return (f"The grader failed on {len(failed)} of {len(responses)} samples of a training step ({', '.join(flags)})"
            + (f": {details[:400]}" if details else "") + ". Try it on a few samples with the graders run endpoint "
            "(client.fine_tuning.alpha.graders.run), fix it, and start a new job.")


RFT_COLUMNS = {"step": "step", "train_reward_mean": "train_reward_mean", "train_reward_std": "train_reward_std",
               "train_groups_without_signal": "train_groups_without_signal", "valid_reward_mean": "valid_reward_mean"}


def valid_responses(em, job_id: str, trainer, prompts: list[dict]) -> list[dict]:
    """The job's grader's run responses on the tuned model's greedy answers to validation prompts."""
    job = em.jobs[job_id]
    model, tokenizer = trainer.model, trainer.processing_class
    to_answer = [{"messages": p["prompt"] + [{"role": "assistant", "content": ""}]} for p in prompts]
    replies = generate.replies(model, tokenizer, to_answer, desc="validation")
    grader = job["method"]["reinforcement"]["grader"]
    return graders.run_many(grader, [(reply, json.loads(p["item"])) for reply, p in zip(replies, prompts, strict=True)],
                            score_with=em.score_with)


def rft_metrics(job: dict, step: int, total: int, train_reward: float, valid_reward: float | None,
                responses: list[dict], prefix: str = "train") -> dict:
    """A reinforcement job's metrics event data, in the providers' shape: the rewards under `scores` (and the
    older flat keys), and each error flag's share of the step's grader responses under `errors`."""
    grader = job["method"]["reinforcement"]["grader"]
    shares = {f"{prefix}_{flag}_mean": (round(sum(bool(r["metadata"]["errors"][flag]) for r in responses) / len(responses), 4)
                                        if responses else 0.0) for flag in graders.ERROR_FLAGS}
    data = {"step": step, "total_steps": total, "train_mean_reward": train_reward,
            "scores": {"train_reward_mean": train_reward, "valid_reward_mean": valid_reward,
                       "graders": [{"name": grader["name"], "type": grader["type"], "train_reward_mean": train_reward,
                                    "valid_reward_mean": valid_reward}]},
            "errors": {"graders": [{"name": grader["name"], "type": grader["type"], **shares}]}}
    if valid_reward is not None:
        data["full_valid_mean_reward"] = valid_reward
    return data
