"""LoRA supervised fine-tuning with the course's recipe, as a script to launch on one process or many.

    # one process (CPU or one GPU)
    python scripts/sft.py --max_steps 40 --output_dir runs/sft

    # data-parallel on 2 CPU processes over gloo (a laptop, CI): the CPU switch is what makes it real DDP
    ACCELERATE_USE_CPU=1 accelerate launch --config_file configs/accelerate/cpu_ddp.yaml scripts/sft.py --output_dir runs/sft

    # GPUs: DDP, FSDP2 or DeepSpeed ZeRO, one config each (set num_processes to your GPU count)
    accelerate launch --config_file configs/accelerate/multi_gpu.yaml scripts/sft.py --model_name_or_path <hub id>
    accelerate launch --config_file configs/accelerate/fsdp2.yaml scripts/sft.py --model_name_or_path ...
    accelerate launch --config_file configs/accelerate/zero3.yaml scripts/sft.py --model_name_or_path ...

The model, data, LoraConfig and SFTConfig are the course's (helpers/train/recipe.py, through
`lora.make_trainer`, as notebooks 00 and 03 train in-process); `per_device_train_batch_size` is per
process, so the global batch is that times the number of processes. Before anything loads, the script
refuses a launch that gives more processes a GPU than there are GPUs; before training, one whose launcher
and trainer disagree on the number of processes (several launch commands exit 0 while they run one
process, or several unrelated trainings). It saves the adapter, and the merged model with --merge.
`--record` writes `report.json` (world size, backend, losses, step times, what each rank saw; the
instrument lives in helpers/train/distributed.py).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, as a plain file

from helpers import env, models  # noqa: E402
from helpers.data import datasets  # noqa: E402
from helpers.train import distributed, lora, recipe  # noqa: E402


@dataclass
class ScriptArguments:
    model_name_or_path: str = field(default="", metadata={"help": "a model folder or hub id; empty: the embedded "
                                                                  "SmolLM2-135M-Instruct"})
    output_dir: str = field(default="runs/sft", metadata={"help": "the adapter and the merged model go here"})
    max_steps: int = field(default=120, metadata={"help": "optimizer steps"})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "examples per process per step"})
    learning_rate: float = field(default=recipe.LEARNING_RATE, metadata={"help": "peak learning rate"})
    lora_r: int = field(default=recipe.LORA_R, metadata={"help": "LoRA rank"})
    max_train_samples: int = field(default=0, metadata={"help": "use the first N training examples (0: all)"})
    seed: int = field(default=42, metadata={"help": "data order and LoRA initialisation"})
    merge: bool = field(default=False, metadata={"help": "also save the adapter merged into the base model"})
    parity: bool = field(default=False, metadata={"help": "plain SGD in float32, to compare process counts"})
    record: bool = field(default=False, metadata={"help": "write report.json: losses, step times, what each rank saw"})
    fail_on_rank: int = field(default=-1, metadata={"help": "testing, with --record: raise on this rank at the first step"})


def main(args: ScriptArguments):
    distributed.check_gpus()
    env.set_offline(env.is_local_model(args.model_name_or_path))

    # Data: the course's text-to-SQL training split
    rows = datasets.load_split("train")
    rows = rows[:args.max_train_samples] if args.max_train_samples else rows

    # Trainer: the course's recipe (LoraConfig, SFTConfig, speed_up), on this process's share of each batch
    trainer = lora.make_trainer(rows, args.max_steps, args.learning_rate, args.per_device_train_batch_size, args.lora_r,
                                args.seed, output_dir=Path(args.output_dir) / "checkpoints", quiet=False,
                                model_id=args.model_name_or_path, parity=args.parity)
    world = distributed.check_world(trainer.accelerator)
    record = distributed.Record(trainer, world, args.fail_on_rank) if args.record else None

    # Train
    trainer.train()

    # Save: every rank (with FSDP or ZeRO-3 gathering the weights is collective), then merge on the main one
    out = Path(args.output_dir)
    trainer.save_model(str(out / "adapter"))
    if args.merge and trainer.accelerator.is_main_process:
        lora.merge_adapter(models.resolve_model(args.model_name_or_path), out / "adapter", out / "merged")
    if record:
        record.write(out / "report.json", args)
    return trainer.accelerator


if __name__ == "__main__":
    accelerator = main(HfArgumentParser(ScriptArguments).parse_args_into_dataclasses()[0])
    distributed.finish(accelerator)  # after the trainer is gone: with it alive, a gloo rank can hang on exit
