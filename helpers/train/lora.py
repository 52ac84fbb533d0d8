"""LoRA training with the course's recipe in one call (SFT; DPO and GRPO from an SFT model), merging an
adapter into its base model, and what a trainer logged (losses, tokens, DPO's rewards, GRPO's rewards)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import datasets as hf_datasets
import pandas as pd
import torch
from peft import PeftModel
from transformers import AutoTokenizer, PrinterCallback, TrainerCallback
from trl import DPOTrainer, GRPOTrainer, SFTTrainer

from helpers import models
from helpers.data import preferences
from helpers.data.datasets import to_prompt_completion
from helpers.train import recipe


def loss_history(log_history: list[dict]) -> pd.DataFrame:
    """Training and evaluation losses per step from a Trainer's state.log_history."""
    rows = [{"step": h["step"], "split": split, "loss": h[key]}
            for h in log_history
            for key, split in (("loss", "train"), ("eval_loss", "validation")) if key in h]
    return pd.DataFrame(rows, columns=["step", "split", "loss"])


def trained_tokens(log_history: list[dict]) -> int:
    """Tokens the trainer saw (TRL logs a running num_tokens), 0 if never logged."""
    return int(max((h.get("num_tokens", 0) for h in log_history), default=0))


def run_figures(trainer, seconds: float) -> dict:
    """What a finished training is reported by: its time, steps, batch size, tokens, and the training loss at the
    last logged step and on average over the run."""
    history = loss_history(trainer.state.log_history)
    train = history[history.split == "train"].loss
    mean = next((h["train_loss"] for h in reversed(trainer.state.log_history) if "train_loss" in h), None)
    return {"train_seconds": round(seconds, 1), "train_steps": trainer.state.global_step,
            "batch_size": trainer.args.per_device_train_batch_size, "trained_tokens": trained_tokens(trainer.state.log_history),
            "final_train_loss": round(float(train.iloc[-1]), 4) if len(train) else None,
            "mean_train_loss": round(float(mean), 4) if mean is not None else None}


def merge_loaded(model, adapter_dir: str | Path):
    """A loaded model with a LoRA adapter folded into its weights: no LoRA products at every token."""
    return PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()


def merge_adapter(model_path: str, adapter_dir: str | Path, out_dir: str | Path):
    """Load the base model in full precision, fold the LoRA adapter in, save; return the model."""
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    base = models.from_pretrained(model_path, dtype=dtype)
    merged = merge_loaded(base, adapter_dir)
    merged.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(adapter_dir).save_pretrained(out_dir)
    return merged


class _Hooks(TrainerCallback):
    """Passes each logged loss to on_log(step, logs) and asks should_stop() after every step."""

    def __init__(self, on_log=None, should_stop=None):
        self.report, self.stop = on_log, should_stop

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.report and logs and "loss" in logs:
            self.report(state.global_step, logs)

    def on_step_end(self, args, state, control, **kwargs):
        if self.stop and self.stop():
            control.should_training_stop = True


def make_trainer(rows: list[dict], max_steps: int, learning_rate: float = recipe.LEARNING_RATE, batch_size: int = 8,
                 lora_r: int = recipe.LORA_R, seed: int = 0, on_log=None, should_stop=None,
                 output_dir: str | Path | None = None, quiet: bool = True, model_id: str = "",
                 parity: bool = False) -> SFTTrainer:
    """An SFTTrainer for LoRA on chat examples (loss on each last answer) with the course's recipe,
    ready to train; the embedded model unless `model_id` names another.

    on_log(step, logs) sees every logged step; should_stop() is asked after each step; quiet
    silences the trainer's printing and progress bars (the emulator trains in the background); parity
    trains with plain SGD in float32 (recipe.for_parity), to compare runs on different process counts."""
    args = recipe.sft_config(output_dir or tempfile.mkdtemp(prefix="lora-"), max_steps, batch_size, learning_rate,
                             seed, disable_tqdm=quiet)
    if parity:
        args = recipe.for_parity(args)
    args.device  # noqa: B018 - sets up the process group (and DeepSpeed's ZeRO-3 loading) before the model loads
    model, tokenizer = models.load_model(model_id)
    if quiet:
        hf_datasets.disable_progress_bars()
    trainer = SFTTrainer(model=model, args=args, train_dataset=to_prompt_completion(rows), processing_class=tokenizer,
                         peft_config=recipe.lora_config(lora_r), callbacks=[_Hooks(on_log, should_stop)])
    if quiet:
        trainer.remove_callback(PrinterCallback)
    return recipe.speed_up(trainer)


def train(rows: list[dict], max_steps: int, **options) -> SFTTrainer:
    """LoRA SFT with the course's recipe (`make_trainer`'s options); returns the trained trainer.
    Notebook 03 builds the same LoraConfig and SFTConfig step by step."""
    trainer = make_trainer(rows, max_steps, **options)
    trainer.train()
    return trainer


def make_dpo_trainer(pairs: list[dict], max_steps: int, model_id: str = "", batch_size: int = 8,
                     lora_r: int = recipe.LORA_R, seed: int = 0, on_log=None, should_stop=None,
                     output_dir: str | Path | None = None, quiet: bool = True, **settings) -> DPOTrainer:
    """A DPOTrainer for LoRA on preference pairs (TRL's prompt/chosen/rejected form) with the course's
    recipe (`recipe.dpo_config`; `settings` are its learning_rate, beta and sft_weight), ready to train.
    `model_id` is the SFT model to start from (a merged folder; empty for the embedded model); with LoRA,
    the reference is that same model with the adapter switched off, so no second copy is loaded."""
    args = recipe.dpo_config(output_dir or tempfile.mkdtemp(prefix="dpo-"), max_steps, batch_size, seed=seed,
                             disable_tqdm=quiet, **settings)
    model, tokenizer = models.load_model(model_id)
    if quiet:
        hf_datasets.disable_progress_bars()
    trainer = DPOTrainer(model=model, args=args, train_dataset=preferences.to_dataset(pairs), processing_class=tokenizer,
                         peft_config=recipe.lora_config(lora_r), callbacks=[_Hooks(on_log, should_stop)])
    if quiet:
        trainer.remove_callback(PrinterCallback)
    return recipe.speed_up(trainer)


def train_dpo(pairs: list[dict], max_steps: int, **options) -> DPOTrainer:
    """LoRA DPO with the course's recipe (`make_dpo_trainer`'s options); returns the trained trainer."""
    trainer = make_dpo_trainer(pairs, max_steps, **options)
    trainer.train()
    return trainer


def dpo_history(log_history: list[dict]) -> pd.DataFrame:
    """What DPOTrainer logged per step: loss, the implicit rewards of chosen and rejected answers (beta times
    the log-ratio of policy to reference), their margin, and the share of pairs ranked right."""
    keys = {"loss": "loss", "rewards/chosen": "chosen reward", "rewards/rejected": "rejected reward",
            "rewards/margins": "margin", "rewards/accuracies": "pairs ranked right"}
    rows = [{"step": h["step"], **{name: h[key] for key, name in keys.items() if key in h}}
            for h in log_history if "rewards/margins" in h]
    return pd.DataFrame(rows, columns=["step", *keys.values()])


def make_grpo_trainer(prompts: list[dict], reward_funcs: list, max_steps: int, model_id: str = "",
                      prompts_per_step: int = 4, lora_r: int = recipe.LORA_R, seed: int = 0, on_log=None,
                      should_stop=None, output_dir: str | Path | None = None, quiet: bool = True,
                      reward_weights: list[float] | None = None, **settings) -> GRPOTrainer:
    """A GRPOTrainer for LoRA with the course's recipe (`recipe.grpo_config`; `settings` are its generations,
    learning_rate, beta, completion_tokens and temperature), ready to train. `prompts` are rows with a
    "prompt" (chat messages ending with the user's) and the columns the reward functions read; each reward
    function takes (completions, **columns) and returns one number per completion, as TRL calls it."""
    args = recipe.grpo_config(output_dir or tempfile.mkdtemp(prefix="grpo-"), max_steps, prompts_per_step, seed=seed,
                              disable_tqdm=quiet, reward_weights=reward_weights, **settings)
    model, tokenizer = models.load_model(model_id)
    if quiet:
        hf_datasets.disable_progress_bars()
    trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs, args=args,
                          train_dataset=hf_datasets.Dataset.from_list(prompts), processing_class=tokenizer,
                          peft_config=recipe.lora_config(lora_r), callbacks=[_Hooks(on_log, should_stop)])
    if quiet:
        trainer.remove_callback(PrinterCallback)
    return trainer


def train_grpo(prompts: list[dict], reward_funcs: list, max_steps: int, **options) -> GRPOTrainer:
    """LoRA GRPO with the course's recipe (`make_grpo_trainer`'s options); returns the trained trainer."""
    trainer = make_grpo_trainer(prompts, reward_funcs, max_steps, **options)
    trainer.train()
    return trainer


def grpo_history(log_history: list[dict], generation_seconds: list[float] | None = None) -> pd.DataFrame:
    """What GRPOTrainer logged per step: the mean reward of the step's answers and its spread, the share of
    prompts whose answers all scored the same (no learning signal), the loss, the answers' mean length, the
    seconds of the step, and each reward function's mean ("<name> reward"). With `generation_seconds` (from
    `time_generation`), the step's seconds are split into generating the answers and the rest (scoring them,
    the forward and backward passes, the optimizer)."""
    keys = {"reward": "mean reward", "reward_std": "reward spread", "frac_reward_zero_std": "groups without signal",
            "loss": "loss", "completions/mean_length": "answer tokens", "step_time": "seconds"}
    rows = []
    for h in (h for h in log_history if "reward" in h):
        row = {"step": h["step"], **{name: h[key] for key, name in keys.items() if key in h}}
        row.update({f"{key.split('/')[1]} reward": value for key, value in h.items()
                    if key.startswith("rewards/") and key.endswith("/mean")})
        rows.append(row)
    per_function = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in keys.values() and k != "step"]
    table = pd.DataFrame(rows, columns=["step", *keys.values(), *per_function])
    if generation_seconds is not None and len(table):
        generation = pd.Series(generation_seconds[:len(table)], index=table.index[:len(generation_seconds)])
        table["generation seconds"] = generation
        table["training seconds"] = table["seconds"] - generation
    return table


def grpo_held_out(log_history: list[dict], before: dict | None = None) -> pd.DataFrame:
    """The held-out reward GRPOTrainer logged at each evaluation (its `eval_dataset`'s prompts, sampled as in
    training): the mean and the spread of the answers' rewards, and the share of groups without signal.
    `before` is what `trainer.evaluate()` returned before training, at step 0 (`train()` starts a new log)."""
    keys = {"eval_reward": "held-out reward", "eval_reward_std": "held-out spread",
            "eval_frac_reward_zero_std": "held-out groups without signal"}
    logged = ([{"step": 0, **before}] if before else []) + list(log_history)
    rows = [{"step": h["step"], **{name: h[key] for key, name in keys.items() if key in h}}
            for h in logged if "eval_reward" in h]
    return pd.DataFrame(rows, columns=["step", *keys.values()]).drop_duplicates("step", keep="last")


def time_generation(trainer: GRPOTrainer) -> list[float]:
    """A list that fills with the seconds each of the trainer's generation calls takes (one per optimizer step
    in training, with TRL's defaults; evaluations are not counted). It wraps GRPOTrainer's internal `_generate`;
    a TRL release without it leaves the list empty, and only the steps' total seconds are known."""
    seconds: list[float] = []
    generate = getattr(trainer, "_generate", None)
    if not callable(generate):
        return seconds

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return generate(*args, **kwargs)
        finally:
            if trainer.model.training:
                seconds.append(time.perf_counter() - start)

    trainer._generate = timed
    return seconds


def score_groups(rows: list[dict], samples: list[list[str]], reward_funcs: list) -> pd.DataFrame:
    """Each prompt's sampled answers scored as GRPOTrainer scores them (the reward functions' sum, each called
    with the completions as chat messages and the rows' other columns): one line per prompt, with the rewards,
    their mean and spread, and whether they differ, the only case in which GRPO learns from the prompt."""
    lines = []
    for row, answers in zip(rows, samples, strict=True):
        columns = {key: [value] * len(answers) for key, value in row.items() if key != "prompt"}
        completions = [[{"role": "assistant", "content": a}] for a in answers]
        totals = [sum(parts) for parts in zip(*(f(completions=completions, **columns) for f in reward_funcs),
                                             strict=True)]
        lines.append({"question": row["prompt"][-1]["content"], "rewards": [round(t, 3) for t in totals],
                      "mean": sum(totals) / len(totals), "spread": float(pd.Series(totals).std(ddof=0)),
                      "signal": len({round(t, 6) for t in totals}) > 1})
    return pd.DataFrame(lines, columns=["question", "rewards", "mean", "spread", "signal"])
