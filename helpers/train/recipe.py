"""The course's one recipe for LoRA supervised fine-tuning: every setting that decides how a model
trains, built in one place. Notebook 03 writes the same `LoraConfig` and `SFTConfig` out in full, with
a reason per setting, and checks them against this file; notebook 00's fine-tune, the emulated jobs
of notebooks 01 and 02 (`helpers.train.lora.train`) and the training benchmark build theirs here."""

from __future__ import annotations

import dataclasses
import functools
import types
import weakref
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel
from transformers import TrainerCallback
from trl import SFTConfig, SFTTrainer
from trl.trainer.utils import FusedCausalLMOutput

LEARNING_RATE = 1e-3  # LoRA tolerates a high rate on a small model; about 2e-4 for 7B-class models
# A dry run's short schedule (40 steps of 8) learns more at twice the rate: with seeds 42 and 7,
# notebook 03's dry run reached 62.5% and 55% execution accuracy at 2e-3 (60% and 47.5% at 1e-3, with
# a float32 head); a full run (120 steps) does better at 1e-3 (85% against 80.8% on 120 questions).
DRY_RUN_LEARNING_RATE = 2e-3
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


def for_parity(config: SFTConfig) -> SFTConfig:
    """The recipe turned into a measuring instrument, for comparing process counts: plain SGD in float32.
    AdamW's first steps move each weight by about the learning rate times the sign of its gradient, which
    turns the last-bit differences of another summation order into visible ones (TRL's own equivalence
    tests use SGD for this reason). Never for a real run."""
    return dataclasses.replace(config, optim="sgd", bf16=False, fp16=False)


def differences(config, reference) -> list[str]:
    """The training settings in which `config` differs from `reference` (two SFTConfigs or two
    LoraConfigs), as "name: value (recipe: value)"; reporting settings are left out."""
    ours, theirs = config.to_dict(), reference.to_dict()
    return [f"{key}: {ours.get(key)!r} (recipe: {theirs.get(key)!r})"
            for key in sorted((set(ours) | set(theirs)) - REPORTING) if ours.get(key) != theirs.get(key)]


# Logit transforms TRL's head applies (Gemma 2's soft cap; Cohere's, Granite's, Falcon-H1's scales):
# a model that has one keeps TRL's head.
SCALED_LOGITS = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling")
# Labelled positions x vocabulary above which TRL's tiled head is used: its tiles need less memory.
MAX_HEAD_ELEMENTS = 2**26
_SPED_UP: weakref.WeakSet = weakref.WeakSet()  # models speed_up has changed already


def speed_up(trainer: SFTTrainer) -> SFTTrainer:
    """Make a trainer built with this recipe train faster on a CPU; what it learns is unchanged (the
    losses and gradients of TRL's own path; see tests/test_recipe.py). Measured with
    benchmarks/train_throughput.py.

    - The LM head and the loss run only at the positions that carry loss. On a CPU TRL computes them for
      every position, over the whole vocabulary, although only the answer, about an eighth of each
      example, has labels: that was half of each training step. Models whose logits TRL scales or caps,
      mixtures of experts (router loss) and very long answers keep TRL's head.
    - Attention is computed the plain way ("eager") while training: on a CPU, PyTorch's fused attention
      is slow to differentiate at the course's lengths (about 100 tokens). Generation keeps the model's
      own attention, which is faster there; if training raises, the next training restores it.
    On a GPU it changes nothing: TRL already computes the head only where there are labels."""
    if trainer.args.device.type != "cpu":
        return trainer
    model = trainer.model.get_base_model() if isinstance(trainer.model, PeftModel) else trainer.model
    if model in _SPED_UP:
        return trainer
    _SPED_UP.add(model)
    config = model.config.get_text_config()
    if not any(getattr(config, name, None) is not None for name in SCALED_LOGITS):
        _score_labelled_positions_only(model)
    trainer.add_callback(_EagerAttentionWhileTraining(model))
    return trainer


def _score_labelled_positions_only(model) -> None:
    """Wrap the forward that TRL's SFTTrainer calls with fused_lm_head=True: the backbone runs on every
    token, the LM head only where the next token's label is not -100, in the dtype TRL's head uses (the
    autocast dtype when autocast is on), and the log-softmax in float32 as TRL's."""
    trl_forward = model.forward

    @functools.wraps(type(model).forward)
    def forward(self, *args, fused_lm_head=False, labels=None, shift_labels=None, num_items_in_batch=None, **kwargs):
        head = self.get_output_embeddings()
        targets = None if labels is None else labels[:, 1:]  # each position's next token
        mask = None if targets is None else targets != -100
        if (not fused_lm_head or shift_labels is not None or kwargs.get("output_router_logits")
                or mask is None or int(mask.sum()) * head.weight.shape[0] > MAX_HEAD_ELEMENTS):
            return trl_forward(*args, fused_lm_head=fused_lm_head, labels=labels, shift_labels=shift_labels,
                               num_items_in_batch=num_items_in_batch, **kwargs)
        hidden = self.base_model(*args, **{**kwargs, "use_cache": False}).last_hidden_state[:, :-1]
        logits = head(hidden[mask]).float()
        log_probs = logits.log_softmax(-1)
        target = targets[mask]
        picked = log_probs.gather(-1, target[:, None]).squeeze(-1)
        with torch.no_grad():
            entropy = -(log_probs.exp() * log_probs).sum(-1)
            is_top1 = logits.argmax(-1) == target

        def spread(values):  # back to (batch, length - 1), zero where there is no label
            return values.new_zeros(mask.shape).masked_scatter(mask, values)

        per_token = spread(picked)
        count = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
        return FusedCausalLMOutput(loss=-per_token.sum() / count, log_probs=per_token, entropy=spread(entropy),
                                   is_top1=spread(is_top1), label_mask=mask)

    model.forward = types.MethodType(forward, model)


class _EagerAttentionWhileTraining(TrainerCallback):
    """Eager attention from the first training step to the last, then the model's own again."""

    def __init__(self, model):
        self.model, self.own = model, model.config._attn_implementation

    def on_train_begin(self, args, state, control, **kwargs):
        self.model.set_attn_implementation("eager")

    def on_train_end(self, args, state, control, **kwargs):
        self.model.set_attn_implementation(self.own)
