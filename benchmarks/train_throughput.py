"""Training throughput of the course's recipe (helpers/train/recipe.py, what every notebook trains
with) against TRL's defaults, side by side in one run.

    python benchmarks/train_throughput.py [--steps 10] [--warmup 2] [--out runs/bench/train_throughput.json]

The recipe's run is `helpers.train.lora.make_trainer` itself: the recipe's LoraConfig and SFTConfig
and its CPU speed-ups. The other is TRL's `SFTConfig` defaults with the same LoRA adapter. Both train
the same model on the same examples, in batches of notebook 03's dry run, for the same steps.
Throughput counts trained, non-padding tokens (TRL's running num_tokens) per second after the
warm-up steps. The machine's matmul rate gives the ceiling: the useful work of a LoRA step is about
4 x parameters FLOPs per token (forward, plus the backward pass through the frozen weights to reach
the adapters; recomputation is not useful work).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import torch
from transformers import TrainerCallback
from trl import SFTConfig, SFTTrainer

from helpers import env, models
from helpers.data import datasets
from helpers.train import lora, recipe
from tools import nbcheck

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "03-huggingface-trl.ipynb"
SEED = next(f.default for f in dataclasses.fields(SFTConfig) if f.name == "seed")  # TRL's default seed


def matmul_gflops(dtype: torch.dtype, n: int = 2048, seconds: float = 3.0) -> float:
    """Sustained square-matmul rate in GFLOP/s for one dtype on the CPU."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start) / 1e9


class StepClock(TrainerCallback):
    """Wall time and TRL's running token count at each logged step."""

    def __init__(self):
        self.marks: list[tuple[int, float, float]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "num_tokens" in logs:
            self.marks.append((state.global_step, time.perf_counter(), float(logs["num_tokens"])))


def recipe_trainer(rows: list[dict], out: Path, steps: int, batch_size: int) -> SFTTrainer:
    """The course's recipe, exactly as notebooks 00, 01 and 02 train (TRL's default seed, so both runs
    see the same batches)."""
    return lora.make_trainer(rows, steps, batch_size=batch_size, output_dir=out, seed=SEED)


def trl_defaults_trainer(rows: list[dict], out: Path, steps: int, batch_size: int) -> SFTTrainer:
    """TRL's defaults with the recipe's LoRA adapter; only what a CPU run requires and the shared
    budget are set."""
    model, tokenizer = models.load_model("")
    config = SFTConfig(output_dir=str(out), max_steps=steps, per_device_train_batch_size=batch_size,
                       use_cpu=not torch.cuda.is_available(), logging_steps=1, save_strategy="no",
                       report_to="none", disable_tqdm=True)
    return SFTTrainer(model=model, args=config, processing_class=tokenizer,
                      train_dataset=datasets.to_prompt_completion(rows), peft_config=recipe.lora_config())


def measure(name: str, trainer: SFTTrainer, warmup: int) -> dict:
    """Train once and return tokens/s after the warm-up steps."""
    clock = StepClock()
    trainer.add_callback(clock)
    trainer.train()
    (s0, t0, n0), (s1, t1, n1) = clock.marks[warmup - 1], clock.marks[-1]
    config = trainer.args
    trainable, total = trainer.model.get_nb_trainable_parameters()
    return {"config": name, "bf16": config.bf16,
            "activation_checkpointing": bool(config.activation_checkpointing or config.gradient_checkpointing),
            "measured_steps": s1 - s0, "tokens": int(n1 - n0), "seconds": round(t1 - t0, 2),
            "tokens_per_second": round((n1 - n0) / (t1 - t0), 1),
            "parameters": total - trainable}  # the base model's, without the adapter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="optimizer steps per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of the timing")
    parser.add_argument("--batch-size", type=int, default=0, help="examples per step (default: notebook 03's dry run)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "train_throughput.json")
    args = parser.parse_args()
    env.set_offline(True)
    batch_size = args.batch_size or nbcheck.dry_run_values(NOTEBOOK)["batch_size"]
    rows = datasets.load_split("train")
    torch.manual_seed(0)
    peak = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    print(f"matmul: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s "
          f"({torch.get_num_threads()} threads); batches of {batch_size} examples, {args.steps} steps")
    out = ROOT / "runs" / "bench"
    runs = [measure("recipe", recipe_trainer(rows, out / "recipe", args.steps, batch_size), args.warmup),
            measure("trl-defaults", trl_defaults_trainer(rows, out / "defaults", args.steps, batch_size), args.warmup)]
    print(f"{'run':>13} {'tokens/s':>9} {'bf16':>5} {'GFLOP/s':>8} {'of bf16 matmul':>15} {'of fp32 matmul':>15}")
    for run in runs:
        flops = 4 * run["parameters"] * run["tokens_per_second"] / 1e9
        run["useful_gflops"] = round(flops, 1)
        run["fraction_of_bf16_matmul"] = round(flops / peak["bf16"], 3)
        run["fraction_of_fp32_matmul"] = round(flops / peak["fp32"], 3)
        print(f"{run['config']:>13} {run['tokens_per_second']:9.1f} {run['bf16']!s:>5} {flops:8.0f} "
              f"{run['fraction_of_bf16_matmul']:15.0%} {run['fraction_of_fp32_matmul']:15.0%}")
    ratio = runs[0]["tokens_per_second"] / runs[1]["tokens_per_second"]
    print(f"recipe / TRL defaults: {ratio:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "native_bf16": recipe.use_bf16(), "torch": torch.__version__},
        "matmul_gflops": {k: round(v, 1) for k, v in peak.items()},
        "batch_size": batch_size, "steps": args.steps, "warmup": args.warmup, "runs": runs,
        "speedup": round(ratio, 3),
    }, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
