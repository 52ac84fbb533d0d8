"""The course's one recipe for LoRA supervised fine-tuning: every setting that decides how a model
trains, built in one place. Notebook 03 writes the same `LoraConfig` and `SFTConfig` out in full, with
a reason per setting, and checks them against this file; notebook 00's fine-tune, the emulated jobs
of notebooks 01 and 02 (`helpers.train.lora.train`) and the training benchmark build theirs here."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import types
import weakref
from pathlib import Path

import torch
from accelerate.utils import DistributedType
from peft import LoraConfig, PeftModel
from trl import DPOConfig, DPOTrainer, GRPOConfig, SFTConfig, SFTTrainer

from helpers import env
from helpers.errors import CourseError

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


# DPO from an SFT model (notebook 07, the emulator's DPO jobs). beta scales the implicit reward, the log-ratio
# of policy to reference: a larger beta keeps the model closer to its SFT start. The SFT term (the "sft" loss
# beside DPO's "sigmoid", RPO) adds the chosen answer's negative log-likelihood, which keeps the chosen answers
# likely while the rejected ones are pushed down. The rate is far below SFT's: the pairs are few and DPO
# over-optimises fast. From notebook 03's dry-run model, 16 steps of 8 pairs lost 1.7 points at 5e-5, 5.8 at 1e-4
# and 18.3 at 2e-4 (benchmarks/dpo_settings.py, seed 42, 2 cores).
DPO_BETA = 0.1
DPO_LEARNING_RATE = 5e-5
DPO_SFT_WEIGHT = 0.0


def dpo_config(output_dir: str | Path, max_steps: int, batch_size: int, learning_rate: float = DPO_LEARNING_RATE,
               beta: float = DPO_BETA, sft_weight: float = DPO_SFT_WEIGHT, seed: int = 0, **reporting) -> DPOConfig:
    """TRL's DPO settings in the recipe's way: the same schedule, precision and devices as `sft_config`,
    the sigmoid (original DPO) loss, plus the SFT term on the chosen answer where `sft_weight` > 0."""
    unknown = sorted(set(reporting) - REPORTING)
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a reporting setting; change helpers/train/recipe.py instead")
    gpu = torch.cuda.is_available()
    losses = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, sft_weight]} if sft_weight else {"loss_type": ["sigmoid"]}
    return DPOConfig(
        output_dir=str(output_dir), max_steps=max_steps, per_device_train_batch_size=batch_size,
        learning_rate=learning_rate, lr_scheduler_type="cosine", warmup_steps=max(1, max_steps // 20),
        beta=beta, **losses, max_length=MAX_LENGTH, bf16=use_bf16(), use_cpu=not gpu,
        activation_checkpointing=gpu, seed=seed,
        **{"logging_steps": 1, "save_strategy": "no", "report_to": "none", **reporting})


# GRPO from an SFT model (notebook 08, the emulator's reinforcement jobs): each prompt is answered
# `generations` times, each answer scored by the reward, and the answers above their group's mean reward made
# likelier, those below less likely. No reference model (beta 0, TRL's default since GRPO's DAPO variant): the
# reward, not a KL leash, keeps the answers right; a small rate and few steps keep the model near its start.
GRPO_GENERATIONS = 4
GRPO_LEARNING_RATE = 2e-5
GRPO_BETA = 0.0
GRPO_COMPLETION_TOKENS = 64  # the course's SQL answers are 10-30 tokens; a longer one is cut and scored as it is


def grpo_config(output_dir: str | Path, max_steps: int, prompts_per_step: int, generations: int = GRPO_GENERATIONS,
                learning_rate: float = GRPO_LEARNING_RATE, beta: float = GRPO_BETA,
                completion_tokens: int = GRPO_COMPLETION_TOKENS, temperature: float = 1.0,
                reward_weights: list[float] | None = None, seed: int = 0, **reporting) -> GRPOConfig:
    """TRL's GRPO settings in the recipe's way: the schedule, precision and devices of `sft_config`;
    `prompts_per_step` prompts x `generations` answers per optimizer step, sampled at `temperature`; the
    reward is the sum of the reward functions' scores, weighted by `reward_weights` (1 each by default)."""
    unknown = sorted(set(reporting) - REPORTING)
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a reporting setting; change helpers/train/recipe.py instead")
    gpu = torch.cuda.is_available()
    return GRPOConfig(
        output_dir=str(output_dir), max_steps=max_steps, per_device_train_batch_size=prompts_per_step * generations,
        num_generations=generations, max_completion_length=completion_tokens, temperature=temperature,
        learning_rate=learning_rate, lr_scheduler_type="cosine", warmup_steps=max(1, max_steps // 20),
        beta=beta, reward_weights=reward_weights, bf16=use_bf16(), use_cpu=not gpu, activation_checkpointing=gpu,
        seed=seed,
        **{"logging_steps": 1, "save_strategy": "no", "report_to": "none", **reporting})


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
# On a GPU, compiling the decoder layers costs about a minute once (61 s for the embedded model and 52 s for a
# 1.7B one, on an H200 host) and saves 0.1 to 0.2 s a step afterwards: it pays for runs of this length and more.
COMPILE_MIN_STEPS = 1000
# Workers that build the next batches while the GPU trains on this one (on a GPU only: on a CPU they would take
# cores from the training).
GPU_DATA_WORKERS = 2
# Activations must fit in this share of the GPU memory left after loading, for checkpointing to go. On an H200,
# `activation_gib` matched the measured peak for the embedded model and overestimated it by a quarter at a 1.7B
# shape (34.7 GiB at a batch of 128): at 0.6 it kept checkpointing for a 1.7B batch of 256 that fits.
ACTIVATION_MEMORY_SHARE = 0.8
_SPED_UP: weakref.WeakSet = weakref.WeakSet()  # models whose forward speed_up has patched already


def speed_up(trainer: SFTTrainer | DPOTrainer) -> SFTTrainer | DPOTrainer:
    """Make a trainer built with this recipe (SFT, or DPO: both read TRL's fused LM head) train faster on the
    device at hand; what it learns is unchanged (the same loss and gradients: tests/test_recipe.py). Measured
    by benchmarks/train_throughput.py.

    On a CPU:
    - The LM head and the loss run only at the positions that carry loss. TRL computes them there for
      every position, over the whole vocabulary, although only the answer, about an eighth of each
      example, has labels: that was half of each training step. Models whose logits TRL scales or caps,
      mixtures of experts (router loss) and very long answers keep TRL's head.
    - Attention is computed the plain way ("eager") while training: on a CPU, PyTorch's fused attention
      is slow to differentiate at the course's lengths (about 100 tokens). Generation keeps the model's
      own attention, which is faster there.
    On a CUDA GPU (one process, or plain data parallelism), where a small model's step is mostly the host
    launching thousands of small kernels one by one:
    - Activation checkpointing is turned off when the largest batch's activations fit in the memory left
      (`checkpointing_needed`): recomputing the forward pass costs half the useful work again, and its launches.
    - Attention uses PyTorch's own fused kernels rather than cuDNN's, whose calls cost the host about 0.3 ms
      each (measured on an H200 host: 36 ms of a step of the embedded model).
    - GPU_DATA_WORKERS processes build the next batches while the GPU computes.
    - For runs of COMPILE_MIN_STEPS steps or more, each decoder layer is compiled (`torch.compile`, one
      compilation shared by all layers): its norms, rotary embedding, activation and LoRA additions become a
      few fused kernels, and a third as many kernels are launched. Compiling takes about a minute.
    - A GPU out-of-memory error names the batch size to try instead.
    Whatever a training changes is put back when it ends, also when it fails or is interrupted."""
    if getattr(trainer.train, "sped_up", False):
        return trainer
    model = trainer.model.get_base_model() if isinstance(trainer.model, PeftModel) else trainer.model
    device = trainer.args.device.type
    during = []  # (enter, leave) pairs applied around each training
    if device == "cpu":
        config = model.config.get_text_config()
        if model not in _SPED_UP and not any(getattr(config, name, None) is not None for name in SCALED_LOGITS):
            output = fused_output_class()
            if output is None:  # a TRL without the hook: its own head and loss, slower on a CPU, the same training
                env.notify("this TRL has no fused LM head (trl.trainer.utils.FusedCausalLMOutput, TRL 1.15 and later), "
                           "so the trainer computes the head at every position, as TRL does")
            else:
                _score_labelled_positions_only(model, output)
        _SPED_UP.add(model)
        during.append(_attention_while_training(model, "eager"))
    elif device == "cuda" and trainer.accelerator.distributed_type in (DistributedType.NO, DistributedType.MULTI_GPU):
        notes = []
        if torch.backends.cuda.cudnn_sdp_enabled():
            during.append(_cudnn_attention_off())
            notes.append("PyTorch's own fused attention instead of cuDNN's")
        if trainer.args.dataloader_num_workers == 0:
            trainer.args.dataloader_num_workers = GPU_DATA_WORKERS
            notes.append(f"{GPU_DATA_WORKERS} workers prepare the batches")
        if checkpointing_on(trainer.args):
            needed, activations, free = checkpointing_needed(trainer, model)
            if not needed:
                _set_checkpointing(trainer, model, False)
                notes.append(f"activation checkpointing off (activations about {activations:.1f} GiB, "
                             f"{free:.1f} GiB free)")
        if not checkpointing_on(trainer.args) and trainer.args.max_steps >= COMPILE_MIN_STEPS and _can_compile():
            during.append(compiled_layers(model))
            notes.append("decoder layers compiled while training")
        if notes:
            print(f"speed_up on {torch.cuda.get_device_name()}: {'; '.join(notes)}", flush=True)
    _wrap_train(trainer, during)
    return trainer


def _wrap_train(trainer, during) -> None:
    """trainer.train with each (enter, leave) pair around it, left in reverse order whatever happens, and a GPU
    out-of-memory error turned into one that says what to change."""
    train = trainer.train

    @functools.wraps(train)
    def wrapped(*args, **kwargs):
        with contextlib.ExitStack() as stack:
            for enter, leave in during:
                enter()
                stack.callback(leave)
            try:
                return train(*args, **kwargs)
            except torch.cuda.OutOfMemoryError as err:
                raise CourseError(out_of_memory_advice(trainer.args)) from err

    wrapped.sped_up = True
    trainer.train = wrapped


def out_of_memory_advice(args) -> str:
    """What to change after a GPU out-of-memory error: half the batch with twice the accumulation (the same
    examples per optimizer step), or checkpointing."""
    batch, accumulation = args.per_device_train_batch_size, args.gradient_accumulation_steps
    used = ""
    if torch.cuda.is_available():
        peak, total = torch.cuda.max_memory_allocated(), torch.cuda.get_device_properties(0).total_memory
        used = f" ({peak / 2**30:.1f} of {total / 2**30:.1f} GiB at the peak)"
        torch.cuda.empty_cache()
    tries = [f"per_device_train_batch_size={batch // 2} with gradient_accumulation_steps={2 * accumulation} "
             "(the same examples per optimizer step)"] if batch > 1 else []
    if not checkpointing_on(args):
        tries.append("activation_checkpointing=True")
    tries.append("a shorter max_length, or a 4-bit model (models.load_model(..., quantize=True))")
    return (f"The GPU ran out of memory training with per_device_train_batch_size={batch}{used}. "
            f"Try {'; or '.join(tries)}.")


def checkpointing_on(args) -> bool:
    """Whether these training arguments ask for activation checkpointing (under either of its names)."""
    return bool(getattr(args, "activation_checkpointing", False) or getattr(args, "gradient_checkpointing", False))


def _set_checkpointing(trainer, model, on: bool) -> None:
    """Turn activation checkpointing on or off in the arguments (transformers 5 names it activation_checkpointing,
    earlier releases gradient_checkpointing) and on a model that has it already."""
    for name in ("activation_checkpointing", "gradient_checkpointing"):
        if hasattr(trainer.args, name):
            setattr(trainer.args, name, on)
    if not on and getattr(model, "is_gradient_checkpointing", False):
        model.gradient_checkpointing_disable()


def activation_gib(config, tokens: int, dtype_bytes: int = 2) -> float:
    """GiB of activations a LoRA training step keeps for the backward pass without checkpointing, for a
    decoder of Llama's shape: per token and layer about 10 x hidden + 4 x intermediate values (norm inputs and
    outputs, queries, keys, values, attention output, the MLP's three projections), plus the norms' float32
    copies. An upper bound for the course's models; measured against the real peak by the GPU check."""
    config = config.get_text_config()
    hidden = config.hidden_size
    intermediate = getattr(config, "intermediate_size", None) or 4 * hidden
    per_token_layer = (10 * hidden + 4 * intermediate) * dtype_bytes + 2 * hidden * 4
    return config.num_hidden_layers * tokens * per_token_layer / 2**30


def checkpointing_needed(trainer, model) -> tuple[bool, float, float]:
    """Whether the largest batch of this trainer's data would not fit in the GPU memory left without activation
    checkpointing; with the activations' and the free GiB."""
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]] if trainer.train_dataset is not None else []
    longest = min(max(lengths, default=trainer.args.max_length or 512), trainer.args.max_length or 10**9)
    activations = activation_gib(model.config, trainer.args.per_device_train_batch_size * longest)
    free = torch.cuda.mem_get_info()[0] / 2**30
    return activations > ACTIVATION_MEMORY_SHARE * free, activations, free


def _can_compile() -> bool:
    """torch.compile's GPU code needs Triton and a GPU it supports (compute capability 7.0 or more)."""
    return importlib.util.find_spec("triton") is not None and torch.cuda.get_device_capability() >= (7, 0)


def decoder_layers(model) -> list[torch.nn.Module]:
    """The repeated blocks of a transformers model: the modules whose class the model keeps whole when it is
    split over devices (`_no_split_modules`), or else the longest list of modules of one class."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if layers:
        return layers
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len({type(c) for c in m}) == 1]
    return list(max(lists, key=len, default=[]))


def compiled_layers(model, backend: str = "inductor"):
    """Each decoder layer's forward compiled while training (dynamic shapes: the batches' lengths vary), and
    its own forward back afterwards, so that generation runs as before."""
    saved = {}

    def enter():
        for layer in decoder_layers(model):
            saved[layer] = layer.__dict__.get("forward")
            layer.forward = torch.compile(layer.forward, backend=backend, dynamic=True)

    def leave():
        for layer, forward in saved.items():
            if forward is None:
                del layer.forward
            else:
                layer.forward = forward
        saved.clear()

    return enter, leave


def _cudnn_attention_off():
    """cuDNN's attention off while training (torch.backends.cuda.enable_cudnn_sdp), as it was afterwards."""
    was = torch.backends.cuda.cudnn_sdp_enabled()
    return (lambda: torch.backends.cuda.enable_cudnn_sdp(False)), (lambda: torch.backends.cuda.enable_cudnn_sdp(was))


def _attention_while_training(model, implementation: str):
    """The given attention from the start of a training to its end, then the model's own again."""
    own = model.config._attn_implementation
    return (lambda: model.set_attn_implementation(implementation)), (lambda: model.set_attn_implementation(own))


def fused_output_class():
    """TRL's output type for a forward called with fused_lm_head=True (trl.trainer.utils.FusedCausalLMOutput,
    new in TRL 1.15), or None in a TRL without it."""
    from trl.trainer import utils

    return getattr(utils, "FusedCausalLMOutput", None)


def _score_labelled_positions_only(model, output_class) -> None:
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
        with torch.no_grad():  # what TRL's trainers log: SFT the entropy and top-1 share, DPO also the mean logit
            extra = {"entropy": -(log_probs.exp() * log_probs).sum(-1), "is_top1": logits.argmax(-1) == target,
                     "mean_logits": logits.mean(-1), "log_sum_sq_probs": torch.logsumexp(2 * log_probs, dim=-1)}

        def spread(values):  # back to (batch, length - 1), zero where there is no label
            return values.new_zeros(mask.shape).masked_scatter(mask, values)

        per_token = spread(picked)
        count = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
        known = {f.name for f in dataclasses.fields(output_class)}
        return output_class(loss=-per_token.sum() / count, log_probs=per_token, label_mask=mask,
                            **{name: spread(value) for name, value in extra.items() if name in known})

    model.forward = types.MethodType(forward, model)
