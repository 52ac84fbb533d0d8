"""LoRA supervised fine-tuning with the course's recipe, as a script to launch on one process or many.

    # one process (CPU or one GPU)
    python scripts/sft.py --max_steps 40 --output_dir runs/sft

    # data-parallel on 2 CPU processes over gloo (a laptop, CI): the CPU switch is what makes it real DDP
    ACCELERATE_USE_CPU=1 accelerate launch --config_file configs/accelerate/cpu_ddp.yaml scripts/sft.py --output_dir runs/sft

    # GPUs: DDP, FSDP2 or DeepSpeed ZeRO, one config each (set num_processes to your GPU count)
    accelerate launch --config_file configs/accelerate/multi_gpu.yaml scripts/sft.py --model_id HuggingFaceTB/SmolLM2-1.7B
    accelerate launch --config_file configs/accelerate/fsdp2.yaml scripts/sft.py --model_id ...
    accelerate launch --config_file configs/accelerate/zero3.yaml scripts/sft.py --model_id ...

The model, data, LoraConfig and SFTConfig are the course's (helpers/train/recipe.py, through
`lora.make_trainer`, as notebooks 00 and 03 train in-process); `per_device_batch_size` is per process,
so the global batch is that times the number of processes. Before training, the script checks that the
launcher and the trainer agree on the number of processes: several launch commands exit 0 while they
run one process, or several unrelated trainings. It writes the adapter, the merged model with --merge,
and `report.json` (world size, backend, losses, step times, and what each rank saw).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate.utils import DistributedType, gather_object
from transformers import HfArgumentParser, TrainerCallback

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, as a plain file

from helpers import env, models  # noqa: E402
from helpers.data import datasets  # noqa: E402
from helpers.train import lora, recipe  # noqa: E402


@dataclass
class ScriptArguments:
    model_id: str = field(default="", metadata={"help": "a model folder or hub id; empty: the embedded SmolLM2-135M-Instruct"})
    output_dir: str = field(default="runs/sft", metadata={"help": "adapter, merged model and report.json go here"})
    max_steps: int = field(default=40, metadata={"help": "optimizer steps"})
    per_device_batch_size: int = field(default=8, metadata={"help": "examples per process per step"})
    learning_rate: float = field(default=recipe.DRY_RUN_LEARNING_RATE, metadata={"help": "peak learning rate"})
    lora_r: int = field(default=recipe.LORA_R, metadata={"help": "LoRA rank"})
    train_examples: int = field(default=0, metadata={"help": "use the first N training examples (0: all)"})
    seed: int = field(default=42, metadata={"help": "data order and LoRA initialisation"})
    merge: bool = field(default=False, metadata={"help": "also save the adapter merged into the base model"})
    parity: bool = field(default=False, metadata={"help": "plain SGD in float32, to compare process counts"})
    fail_on_rank: int = field(default=-1, metadata={"help": "testing: raise on this rank at the first step"})


class Recorder(TrainerCallback):
    """Step times, and once, under plain data parallelism, the sum of the adapter's gradient after the
    all-reduce (with ZeRO or FSDP each rank holds only a shard of it, or none)."""

    def __init__(self, fail_on_rank: int, rank: int, whole_gradients: bool):
        self.fail_on_rank, self.rank, self.whole_gradients = fail_on_rank, rank, whole_gradients
        self.step_seconds, self.gradient, self.started = [], None, None

    def on_step_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()
        if state.global_step == 0 and self.rank == self.fail_on_rank:
            raise RuntimeError(f"rank {self.rank} failed on purpose (--fail_on_rank {self.fail_on_rank})")

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if self.gradient is None and self.whole_gradients:
            grads = [p.grad.detach().double().flatten() for n, p in model.named_parameters() if p.grad is not None]
            self.gradient = torch.cat(grads).sum().item() if grads else None

    def on_step_end(self, args, state, control, **kwargs):
        self.step_seconds.append(time.perf_counter() - self.started)


def batch_fingerprints(trainer) -> list[str]:
    """Wrap the trainer's step so the rank records a digest of each example it trains on."""
    seen = []
    original = trainer.training_step

    def training_step(model, inputs, *args, **kwargs):
        for row in inputs["input_ids"]:
            tokens = row[row != trainer.processing_class.pad_token_id].cpu().numpy()  # on a GPU, the batch is there
            seen.append(hashlib.sha1(tokens.tobytes()).hexdigest()[:12])
        return original(model, inputs, *args, **kwargs)

    trainer.training_step = training_step
    return seen


def check_gpus() -> None:
    """Before anything loads: a launch that gives each process a GPU needs as many GPUs as processes on this
    machine (otherwise the extra ranks fail at their first CUDA call, after minutes of loading)."""
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if processes == 1 or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"):
        return
    gpus = torch.cuda.device_count()
    if processes > gpus:
        raise SystemExit(
            f"This launch starts {processes} processes with a GPU each, but this machine has {gpus} GPU"
            f"{'s' if gpus != 1 else ''}. Launch with --num_processes {max(gpus, 1)} (or set num_processes in the "
            "config), or, to train on CPUs, with ACCELERATE_USE_CPU=1 and configs/accelerate/cpu_ddp.yaml.")


def check_world(accelerator) -> dict:
    """The launcher's process count must be the trainer's, and several processes must really be
    distributed: otherwise the run is one process, or several unrelated trainings."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    world = {"launcher_world_size": launched, "world_size": accelerator.num_processes,
             "distributed_type": str(accelerator.distributed_type),
             "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None}
    requested = next((name for name in ("DEEPSPEED", "FSDP") if os.environ.get(f"ACCELERATE_USE_{name}") == "true"), None)
    if requested and requested not in world["distributed_type"]:
        world["note"] = (f"the launch config asks for {requested}, but this runs as {world['distributed_type']}: on CPUs "
                         "accelerate runs DeepSpeed and FSDP configs as plain data parallelism, so this checks the launch, "
                         "not the sharding, which needs GPUs")
        print(world["note"], flush=True)
    if launched != accelerator.num_processes or (launched > 1 and world["backend"] is None):
        raise SystemExit(
            f"The launcher started {launched} processes, but this one trains as {accelerator.num_processes} of "
            f"{world['distributed_type']} (backend {world['backend']}): these would be {launched} unrelated trainings, "
            "not data parallelism. On CPUs launch with ACCELERATE_USE_CPU=1 (and --multi_gpu); on GPUs check "
            "that each process sees its own GPU.")
    return world


def main(args: ScriptArguments) -> dict:
    check_gpus()
    env.set_offline(env.is_local_model(args.model_id))
    rows = datasets.load_split("train")
    rows = rows[:args.train_examples] if args.train_examples else rows
    trainer = lora.make_trainer(rows, args.max_steps, args.learning_rate, args.per_device_batch_size, args.lora_r,
                                args.seed, output_dir=Path(args.output_dir) / "checkpoints", quiet=False,
                                model_id=args.model_id, parity=args.parity)
    accelerator = trainer.accelerator
    world = check_world(accelerator)
    data_parallel = accelerator.distributed_type in (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU)
    recorder = Recorder(args.fail_on_rank, accelerator.process_index, data_parallel)
    trainer.add_callback(recorder)
    seen = batch_fingerprints(trainer)
    trainable, total = trainer.model.get_nb_trainable_parameters()

    trainer.train()

    ranks = gather_object([{"rank": accelerator.process_index, "examples": seen, "first_gradient_sum": recorder.gradient}])
    report = {**world, "engine": type(trainer.model_wrapped).__name__, "args": asdict(args),
              "global_batch": args.per_device_batch_size * accelerator.num_processes,
              "parameters": {"trainable": trainable, "total": total},
              "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
              "step_seconds": recorder.step_seconds, "ranks": ranks}
    out = Path(args.output_dir)
    trainer.save_model(str(out / "adapter"))  # every rank: with FSDP or ZeRO-3 gathering the weights is collective
    if accelerator.is_main_process:
        if args.merge:
            lora.merge_adapter(models.resolve_model(args.model_id), out / "adapter", out / "merged")
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    # Tear down in this order: with the trainer still alive, a gloo rank can hang forever on exit.
    del trainer
    accelerator.free_memory()
    gc.collect()
    accelerator.end_training()
    return report


if __name__ == "__main__":
    main(HfArgumentParser(ScriptArguments).parse_args_into_dataclasses()[0])
