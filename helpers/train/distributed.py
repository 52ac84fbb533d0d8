"""Training on several processes: the checks scripts/sft.py makes before it loads and before it trains,
the instrument that records what each rank did (`--record`), launching the script from a notebook with a
progress bar, FSDP2 shown on CPU processes (`sharded_parity`), and the memory arithmetic that says which
way of sharing the work across GPUs a model needs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from helpers import processes
from helpers.env import ROOT
from helpers.errors import CourseError

SCRIPT = ROOT / "scripts" / "sft.py"
CONFIGS = ROOT / "configs" / "accelerate"
LOGGED_STEP = re.compile(r"\{'loss': ")  # the Trainer prints one such line per logged step (every step here)


def check_gpus() -> None:
    """Before anything loads: a launch that gives each process a GPU needs as many GPUs as processes on this
    machine (otherwise the extra ranks fail at their first CUDA call, after minutes of loading)."""
    import torch

    processes_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if processes_here == 1 or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"):
        return
    gpus = torch.cuda.device_count()
    if processes_here > gpus:
        raise SystemExit(
            f"This launch starts {processes_here} processes with a GPU each, but this machine has {gpus} GPU"
            f"{'s' if gpus != 1 else ''}. Launch with --num_processes {max(gpus, 1)} (or set num_processes in the "
            "config), or, to train on CPUs, with ACCELERATE_USE_CPU=1 and configs/accelerate/cpu_ddp.yaml.")


def check_world(accelerator) -> dict:
    """The launcher's process count must be the trainer's, and several processes must really be
    distributed: otherwise the run is one process, or several unrelated trainings."""
    import torch

    launched = int(os.environ.get("WORLD_SIZE", "1"))
    world = {"launcher_world_size": launched, "world_size": accelerator.num_processes,
             "distributed_type": str(accelerator.distributed_type),
             "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None}
    requested = next((name for name in ("DEEPSPEED", "FSDP") if os.environ.get(f"ACCELERATE_USE_{name}") == "true"), None)
    if requested and requested not in world["distributed_type"]:
        world["note"] = (f"the launch config asks for {requested}, but this runs as {world['distributed_type']}: on CPUs "
                         "accelerate runs DeepSpeed and FSDP configs as plain data parallelism, so this checks the launch, "
                         "not the sharding (python -m helpers.train.distributed shows FSDP2 on CPU processes)")
        print(world["note"], flush=True)
    if launched != accelerator.num_processes or (launched > 1 and world["backend"] is None):
        raise SystemExit(
            f"The launcher started {launched} processes, but this one trains as {accelerator.num_processes} of "
            f"{world['distributed_type']} (backend {world['backend']}): these would be {launched} unrelated trainings, "
            "not data parallelism. On CPUs launch with ACCELERATE_USE_CPU=1 (and --multi_gpu); on GPUs check "
            "that each process sees its own GPU.")
    return world


class Record:
    """What scripts/sft.py --record measures on each rank, as a callback and a wrapped training step: the time of
    every step, a digest of every example the rank trains on, and at every optimizer step, under plain data
    parallelism, the sum of the adapter's gradient after the all-reduce (with ZeRO or FSDP each rank holds only
    a shard of it, or none). `write` gathers the ranks' records (a collective call) into report.json."""

    def __init__(self, trainer, world: dict, fail_on_rank: int = -1):
        from accelerate.utils import DistributedType
        from transformers import TrainerCallback

        self.trainer, self.world, self.fail_on_rank = trainer, world, fail_on_rank
        self.rank = trainer.accelerator.process_index
        self.whole_gradients = trainer.accelerator.distributed_type in (
            DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU)
        self.step_seconds, self.gradient_sums, self.examples, self.started = [], [], [], None
        record = self

        class Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                record.started = time.perf_counter()
                if state.global_step == 0 and record.rank == record.fail_on_rank:
                    raise RuntimeError(f"rank {record.rank} failed on purpose (--fail_on_rank {record.fail_on_rank})")

            def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
                if record.whole_gradients:
                    import torch

                    grads = [p.grad.detach().double().flatten() for p in model.parameters() if p.grad is not None]
                    record.gradient_sums.append(torch.cat(grads).sum().item() if grads else None)

            def on_step_end(self, args, state, control, **kwargs):
                record.step_seconds.append(time.perf_counter() - record.started)

        trainer.add_callback(Callback())
        step = trainer.training_step

        def training_step(model, inputs, *args, **kwargs):
            for row in inputs["input_ids"]:
                tokens = row[row != trainer.processing_class.pad_token_id].cpu().numpy()  # on a GPU, the batch is there
                self.examples.append(hashlib.sha1(tokens.tobytes()).hexdigest()[:12])
            return step(model, inputs, *args, **kwargs)

        trainer.training_step = training_step

    def write(self, path: Path, args) -> dict:
        """Gather every rank's record (all ranks call this) and write the report on the main process."""
        from dataclasses import asdict

        from accelerate.utils import gather_object

        trainer = self.trainer
        ranks = gather_object([{"rank": self.rank, "examples": self.examples, "gradient_sums": self.gradient_sums}])
        trainable, total = trainer.model.get_nb_trainable_parameters()
        report = {**self.world, "engine": type(trainer.model_wrapped).__name__, "args": asdict(args),
                  "global_batch": args.per_device_train_batch_size * trainer.accelerator.num_processes,
                  "parameters": {"trainable": trainable, "total": total},
                  "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
                  "step_seconds": self.step_seconds, "ranks": ranks}
        if trainer.accelerator.is_main_process:
            Path(path).write_text(json.dumps(report, indent=2) + "\n")
        return report


def finish(accelerator) -> None:
    """End a launch once its trainer is gone: with the trainer still alive, a gloo rank can hang forever on exit."""
    import gc

    accelerator.free_memory()
    gc.collect()
    accelerator.end_training()


def run(command: list[str], out_dir: str | Path, steps: int, env: dict | None = None, timeout: float = 900,
        label: str = "training") -> dict:
    """Run one launch of the script (its whole process group, with a hard time limit), show a bar over
    its steps, keep its output in `<out_dir>/launch.log`, and return its report.json. A launch that
    fails raises with the end of its log; none leaves a process behind."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").unlink(missing_ok=True)  # figures must come from this launch
    log_path = out_dir / "launch.log"
    started = time.monotonic()
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, start_new_session=True)
        try:
            with tqdm(total=steps, desc=label, unit="step") as bar:
                while proc.poll() is None:
                    done = len(LOGGED_STEP.findall(log_path.read_text(errors="replace")))
                    bar.update(min(done, steps) - bar.n)
                    if time.monotonic() - started > timeout:
                        raise CourseError(f"{label} did not finish within {timeout:.0f} s and was stopped; its log: {log_path}")
                    time.sleep(0.5)
                bar.update(steps - bar.n if proc.returncode == 0 else 0)
        finally:  # also on an interrupted cell: the launcher and its ranks are in their own session
            processes.stop_group(proc)
    if proc.returncode:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        raise CourseError(f"{label} failed (exit {proc.returncode}). The end of its log ({log_path}):\n{tail}")
    return json.loads((out_dir / "report.json").read_text())


# Bytes per parameter for mixed-precision training with AdamW (ZeRO paper): bf16 weights (2) and
# gradients (2), plus float32 master weights, momentum and variance (12).
BYTES = {"weights": 2, "gradients": 2, "optimizer": 12}


def memory_per_gpu(parameters: float, trainable: float, gpus: int) -> pd.DataFrame:
    """GiB per GPU for the model's training state (activations not included), by how the work is
    shared: DDP copies everything; ZeRO-2 shards gradients and optimizer state; ZeRO-3 and FSDP's full
    shard also shard the weights. `trainable` is what LoRA trains (the frozen weights need no gradient
    or optimizer state)."""
    weights, grads, optim = parameters * BYTES["weights"], trainable * BYTES["gradients"], trainable * BYTES["optimizer"]
    ways = {"DDP (a full copy on each GPU)": weights + grads + optim,
            "ZeRO-2 (gradients and optimizer sharded)": weights + (grads + optim) / gpus,
            "ZeRO-3 / FSDP full shard (everything sharded)": (weights + grads + optim) / gpus}
    return pd.Series({k: v / 2**30 for k, v in ways.items()}, name=f"GiB per GPU, {gpus} GPUs").to_frame()


def what_each_rank_holds(ddp: dict, sharded: dict) -> pd.DataFrame:
    """Parameters each rank holds, from a DDP launch's report (scripts/sft.py: a full copy on every rank) and a
    sharded one's (`sharded_parity`: each rank's shards), with their float32 size and share of the model."""
    trainable, total = ddp["parameters"]["trainable"], ddp["parameters"]["total"]
    rows = {(f"DDP ({ddp['world_size']} processes)", f"rank {r}"): {"frozen": total - trainable, "trainable": trainable}
            for r in range(ddp["world_size"])}
    for rank in sorted(sharded["ranks"], key=lambda r: r["rank"]):
        rows[(f"FSDP2 ({sharded['world_size']} processes)", f"rank {rank['rank']}")] = rank["held"]
    table = pd.DataFrame(rows).T
    held = table["frozen"] + table["trainable"]
    table["share of the model"] = (held / total).map("{:.0%}".format)
    table["MB (float32)"] = (held * 4 / 1e6).round(1)
    return table


def what_fits(memory: pd.DataFrame, gpu_memory_gib: float) -> list[str]:
    """For each model size of a memory table (rows: size, then the ways of `memory_per_gpu` from the least
    sharded; columns: full fine-tune, LoRA), the first way whose training state fits one GPU, as sentences."""
    lines = []
    for size in memory.index.get_level_values(0).unique():
        rows = memory.loc[size]
        first = {kind: next((way.split(" (")[0] for way, gib in rows[kind].items() if gib <= gpu_memory_gib), None)
                 for kind in rows.columns}
        said = [f"{way} for {kind}" if way else f"nothing on these GPUs for {kind}" for kind, way in first.items()]
        lines.append(f"{size}: {' and '.join(said)}")
    return lines


# ---------------------------------------------------------------- FSDP2 on CPU processes, as an instrument
# accelerate runs an FSDP config on CPUs as plain data parallelism, so the sharding itself is never exercised
# there. This instrument applies FSDP2 (`fully_shard`) itself, to the recipe's model over gloo, and trains a few
# steps in parity mode (SGD, float32), to show what each rank holds and that sharded training is the training
# of one process. The trainer is the recipe's (data, collation, TRL's loss with its fused LM head); only the
# loop is written out, because accelerate's own loop would wrap the model in DDP on CPUs.

def _held(model) -> dict:
    """Parameters this rank holds (its shards), and the model's totals, frozen and trainable apart."""
    held, total = {"frozen": 0, "trainable": 0}, {"frozen": 0, "trainable": 0}
    for p in model.parameters():
        kind = "trainable" if p.requires_grad else "frozen"
        held[kind] += p.to_local().numel() if hasattr(p, "to_local") else p.numel()
        total[kind] += p.numel()
    return {"held": held, "total": total}


def sharded_parity(output_dir: str, model_id: str = "", max_steps: int = 6, global_batch: int = 4,
                   learning_rate: float | None = None, seed: int = 42) -> dict:
    """Train `max_steps` parity steps on every process of the launch (torchrun, gloo), the model sharded with
    FSDP2 when there are several: each decoder layer one unit, the tied embedding and LM head one unit (as
    accelerate groups tied weights), the rest the root's. Writes report.json and the gathered adapter."""
    import datasets as hf_datasets
    import torch
    import torch.distributed as dist
    from trl import SFTTrainer

    from helpers import models
    from helpers.data import datasets
    from helpers.train import recipe

    world = int(os.environ.get("WORLD_SIZE", "1"))
    learning_rate = recipe.LEARNING_RATE if learning_rate is None else learning_rate  # scripts/sft.py's default
    args = recipe.for_parity(recipe.sft_config(Path(output_dir) / "checkpoints", max_steps, global_batch // world,
                                               learning_rate, seed, disable_tqdm=True))
    args.device  # noqa: B018 - sets up the process group before the model loads
    rank = dist.get_rank() if dist.is_initialized() else 0
    model, tokenizer = models.load_model(model_id)
    hf_datasets.disable_progress_bars()
    trainer = SFTTrainer(model=model, args=args, train_dataset=datasets.to_prompt_completion(datasets.load_split("train")),
                         processing_class=tokenizer, peft_config=recipe.lora_config())
    peft_model, base = trainer.model, trainer.model.get_base_model()
    if world > 1:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh("cpu", (world,))
        for layer in recipe.decoder_layers(base):
            fully_shard(layer, mesh=mesh)
        head, embeddings = base.get_output_embeddings(), base.get_input_embeddings()
        tied = head.weight is embeddings.weight
        if tied:  # one parameter, two modules: one unit (TRL's head reads the weight without calling the module)
            fully_shard([embeddings, head], mesh=mesh)
        fully_shard(peft_model, mesh=mesh)
    trainer.model = trainer.model_wrapped = peft_model  # the sharded model gets the trainer's optimizer and schedule
    trainer.create_optimizer_and_scheduler(max_steps)
    optimizer, schedule = trainer.optimizer, trainer.lr_scheduler
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    batches, losses = iter(trainer.get_train_dataloader()), []
    peft_model.train()
    for step in range(max_steps):
        batch = next(batches)
        tokens = (batch["labels"][:, 1:] != -100).sum()  # the loss is a mean over the whole global batch's tokens
        if world > 1:
            dist.all_reduce(tokens)
        loss = trainer.compute_loss(peft_model, batch, num_items_in_batch=tokens)  # x world: ranks' gradients average
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, args.max_grad_norm)  # as the trainer clips (a DTensor-aware norm)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        reported = loss.detach() / world
        if world > 1:
            dist.all_reduce(reported)
        losses.append(reported.item())
        print({"loss": losses[-1], "step": step + 1}, flush=True)
    adapter = {name: (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().contiguous()
               for name, p in peft_model.named_parameters() if p.requires_grad}  # gathering is collective
    holdings = [{"rank": rank, **_held(peft_model)}]
    if world > 1:
        gathered = [None] * world
        dist.all_gather_object(gathered, holdings[0])
        holdings = gathered
    report = {"world_size": world, "backend": dist.get_backend() if dist.is_initialized() else None,
              "sharding": "FSDP2 fully_shard" if world > 1 else "none", "losses": losses, "ranks": holdings,
              "global_batch": global_batch}
    if rank == 0:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        peft_model.save_pretrained(str(out / "adapter"), state_dict=adapter)  # PEFT's names, as scripts/sft.py saves
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return report


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="FSDP2 on CPU processes, in parity mode (see sharded_parity)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--model_name_or_path", default="")
    parser.add_argument("--max_steps", type=int, default=6)
    parser.add_argument("--global_batch", type=int, default=4)
    parser.add_argument("--learning_rate", type=float, default=None, help="default: the recipe's, as scripts/sft.py")
    args = parser.parse_args()
    sharded_parity(args.output_dir, args.model_name_or_path, args.max_steps, args.global_batch, args.learning_rate)


if __name__ == "__main__":
    main()
