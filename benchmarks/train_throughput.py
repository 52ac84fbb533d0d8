"""Training throughput of the course's recipe (helpers/train/recipe.py, what every notebook trains
with) against TRL's defaults.

    python benchmarks/train_throughput.py [--steps 8] [--warmup 2] [--out runs/bench/train_throughput.json]

Both runs train the same LoRA adapter (the recipe's) on the same examples, in batches of the dry
runs' size, for the same steps; only the SFTConfig differs. Throughput counts trained, non-padding
tokens (TRL's running num_tokens) per second after the warm-up steps. The machine's matmul rate gives the ceiling: the useful
work of a LoRA step is about 4 x parameters FLOPs per token (forward, plus the backward pass
through frozen weights to reach the adapters; recomputation is not useful work).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from transformers import TrainerCallback
from trl import SFTConfig, SFTTrainer

from helpers import env, models
from helpers.data import datasets
from helpers.train import recipe

ROOT = Path(__file__).resolve().parent.parent
BATCH_SIZE = 4  # the dry runs' batch (notebooks 00 and 03 cap batch_size at 4)


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


def recipe_config(out: str | Path, steps: int) -> SFTConfig:
    """The course's recipe, as every notebook builds it on this machine."""
    return recipe.sft_config(out, max_steps=steps, batch_size=BATCH_SIZE, disable_tqdm=True)


def trl_default_config(out: str | Path, steps: int) -> SFTConfig:
    """TRL's defaults; only what a CPU run requires and the shared budget are set."""
    return SFTConfig(output_dir=str(out), max_steps=steps, per_device_train_batch_size=BATCH_SIZE,
                     use_cpu=not torch.cuda.is_available(), logging_steps=1,
                     save_strategy="no", report_to="none", disable_tqdm=True)


def measure(name: str, config: SFTConfig, warmup: int) -> dict:
    """Train once and return tokens/s after the warm-up steps."""
    model, tokenizer = models.load_model("")
    clock = StepClock()
    trainer = SFTTrainer(model=model, args=config, processing_class=tokenizer,
                         train_dataset=datasets.to_prompt_completion(datasets.load_split("train")),
                         peft_config=recipe.lora_config(),
                         callbacks=[clock])
    trainer.train()
    (s0, t0, n0), (s1, t1, n1) = clock.marks[warmup - 1], clock.marks[-1]
    checkpointing = bool(config.activation_checkpointing or config.gradient_checkpointing)
    return {"config": name, "bf16": config.bf16, "activation_checkpointing": checkpointing,
            "measured_steps": s1 - s0, "tokens": int(n1 - n0), "seconds": round(t1 - t0, 2),
            "tokens_per_second": round((n1 - n0) / (t1 - t0), 1),
            "parameters": model.num_parameters()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of the timing")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "train_throughput.json")
    args = parser.parse_args()
    env.set_offline(True)
    torch.manual_seed(0)
    peak = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    print(f"matmul: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s "
          f"({torch.get_num_threads()} threads)")
    runs = [measure("recipe", recipe_config(ROOT / "runs" / "bench" / "recipe", args.steps), args.warmup),
            measure("trl-defaults", trl_default_config(ROOT / "runs" / "bench" / "defaults", args.steps), args.warmup)]
    for run in runs:
        flops = 4 * run["parameters"] * run["tokens_per_second"] / 1e9
        run["useful_gflops"] = round(flops, 1)
        run["fraction_of_fp32_matmul"] = round(flops / peak["fp32"], 3)
        run["fraction_of_own_dtype_matmul"] = round(flops / peak["bf16" if run["bf16"] else "fp32"], 3)
        print(f"{run['config']:>13}: {run['tokens_per_second']:7.1f} tokens/s "
              f"(bf16={run['bf16']}, checkpointing={run['activation_checkpointing']}), "
              f"{flops:.0f} GFLOP/s useful = {run['fraction_of_fp32_matmul']:.0%} of fp32 matmul, "
              f"{run['fraction_of_own_dtype_matmul']:.0%} of its own dtype's")
    ratio = runs[0]["tokens_per_second"] / runs[1]["tokens_per_second"]
    print(f"recipe / TRL defaults: {ratio:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__},
        "matmul_gflops": {k: round(v, 1) for k, v in peak.items()},
        "steps": args.steps, "warmup": args.warmup, "runs": runs, "speedup": round(ratio, 3),
    }, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
