"""The course's one recipe for LoRA supervised fine-tuning: every setting that decides how a model
trains, built in one place. Notebook 03 writes the same `LoraConfig` and `SFTConfig` out in full, with
a reason per setting, and checks them against this file; notebook 00's fine-tune, the emulated jobs
of notebooks 01 and 02 (`helpers.train.lora.train`) and the training benchmark build theirs here."""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig
from trl import SFTConfig

LEARNING_RATE = 1e-3  # LoRA tolerates a high rate on a small model; about 2e-4 for 7B-class models
LORA_R = 16           # rank of the update matrices
MAX_LENGTH = 512      # tokens per example at most; the course's examples are about 100
# Settings that say how a run reports, evaluates and saves, not how it trains: a notebook may choose
# its own, and `differences` leaves them out.
REPORTING = frozenset({
    "output_dir", "logging_dir", "logging_steps", "logging_strategy", "logging_first_step", "eval_strategy",
    "eval_steps", "do_eval", "per_device_eval_batch_size", "eval_accumulation_steps", "save_strategy",
    "save_steps", "report_to", "disable_tqdm", "run_name", "hub_token", "push_to_hub_token"})


def use_bf16() -> bool:
    """bf16 on a CUDA GPU that has it, or on a CPU with native bf16 (AVX512-BF16, AMX)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def lora_config(r: int = LORA_R) -> LoraConfig:
    """LoRA on every linear layer of the blocks, scale alpha / r = 2, no dropout."""
    return LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")


def sft_config(output_dir: str | Path, max_steps: int, batch_size: int, learning_rate: float = LEARNING_RATE,
               seed: int = 0, **reporting) -> SFTConfig:
    """TRL's settings: loss on the answer only, a cosine schedule with a short warm-up, bf16 where the
    hardware has it, no recomputation on a CPU. `reporting` may set only the REPORTING fields."""
    unknown = sorted(set(reporting) - REPORTING)
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a reporting setting; the recipe decides how a model "
                         f"trains (change helpers/train/recipe.py for every notebook at once)")
    gpu = torch.cuda.is_available()
    return SFTConfig(
        output_dir=str(output_dir), max_steps=max_steps, per_device_train_batch_size=batch_size,
        learning_rate=learning_rate, lr_scheduler_type="cosine", warmup_steps=max(1, max_steps // 20),
        completion_only_loss=True, max_length=MAX_LENGTH, bf16=use_bf16(), use_cpu=not gpu,
        activation_checkpointing=gpu,  # saves GPU memory; on a CPU it only costs time
        seed=seed, **{"logging_steps": 1, "save_strategy": "no", "report_to": "none", **reporting})


def differences(config, reference) -> list[str]:
    """The training settings in which `config` differs from `reference` (two SFTConfigs or two
    LoraConfigs), as "name: value (recipe: value)"; reporting settings are left out."""
    ours, theirs = config.to_dict(), reference.to_dict()
    return [f"{key}: {ours.get(key)!r} (recipe: {theirs.get(key)!r})"
            for key in sorted((set(ours) | set(theirs)) - REPORTING) if ours.get(key) != theirs.get(key)]
