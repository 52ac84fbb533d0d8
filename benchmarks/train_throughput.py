"""Training throughput of the course's recipe (helpers/train/recipe.py, what every notebook trains
with) against TRL's defaults, side by side in one run, on the CPU or on a CUDA GPU.

    python benchmarks/train_throughput.py [--batch-sizes 8,32] [--steps 10] [--warmup 3]
        [--config configs/models/SmolLM2-1.7B.json] [--profile] [--out runs/bench/train_throughput.json]

The recipe's run is `helpers.train.lora.make_trainer` itself: the recipe's LoraConfig and SFTConfig
and `recipe.speed_up`. The other is TRL's `SFTConfig` defaults with the same LoRA adapter. Both train
the same model on the same examples, in the same batches, for the same steps; each run is told it is
`--run-steps` long (as a full notebook run is), and timed over `--steps` steps after `--warmup`
(compilation, if the recipe compiles, happens in the warm-up).

Throughput counts trained, non-padding tokens per second. The ceiling is the device's own matrix
rate, measured in this run: a large bf16 (and fp32) matrix product on the GPU, or on the CPU. The
useful work of a LoRA step is counted as 4 x base parameters FLOPs per token: the forward pass (2) and
the backward pass through the frozen weights to reach the adapters (2); recomputation, the adapters'
own products and attention are not counted.

With `--config`, the model is one of that configuration's shape with random weights (the embedded
model's tokenizer), written once under runs/bench/models/: throughput does not depend on the weights.
With `--profile` (GPU), three more steps of each run go through torch.profiler: the GPU's busy time per
step, the host's overhead (wall time per step minus GPU time) and the top host costs.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import platform
import sys
import time
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import SFTConfig, SFTTrainer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runs from a plain checkout, with no install

from helpers import env, models  # noqa: E402
from helpers.data import datasets  # noqa: E402
from helpers.train import lora, recipe  # noqa: E402
from tools import nbcheck  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "03-huggingface-trl.ipynb"
SEED = next(f.default for f in dataclasses.fields(SFTConfig) if f.name == "seed")  # TRL's default seed
PROFILED_STEPS = 3


def matmul_tflops(dtype: torch.dtype, device: str) -> float:
    """Sustained square-matmul rate in TFLOP/s for one dtype: 8192 on a GPU (timed with CUDA events over 20
    products after warm-up), 2048 on a CPU (for 3 s). Random data: zeros run faster than real data."""
    if device == "cuda":
        n = 8192
        a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
        for _ in range(3):
            a @ b
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(20):
            a @ b
        end.record()
        torch.cuda.synchronize()
        return 2 * n**3 * 20 / (start.elapsed_time(end) / 1e3) / 1e12
    n, seconds = 2048, 3.0
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start) / 1e12


def random_model(config_path: Path) -> str:
    """A folder with a model of this configuration's shape, random bf16 weights, and the embedded tokenizer."""
    folder = ROOT / "runs" / "bench" / "models" / config_path.stem
    if not (folder / "config.json").exists():
        config = AutoConfig.from_pretrained(config_path)
        torch.manual_seed(0)
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        model.save_pretrained(folder)
        AutoTokenizer.from_pretrained(models.resolve_model("")).save_pretrained(folder)
        del model
    return str(folder)


class StepClock(TrainerCallback):
    """Times `steps` steps after `warmup` (synchronising the GPU only at both ends of the window), counts
    their non-padding tokens on the device, stops the run after them, then profiles PROFILED_STEPS more."""

    def __init__(self, trainer, warmup: int, steps: int, profile: bool):
        self.warmup, self.steps, self.profile = warmup, steps, profile
        self.tokens, self.counting, self.start, self.seconds, self.first_step = None, False, None, None, None
        self.profiler, self.started = None, None
        step = trainer.training_step

        def training_step(model, inputs, *args, **kwargs):  # tokens of the batch, without a device sync
            if self.counting:
                mask = inputs.get("attention_mask")
                count = mask.sum() if mask is not None else torch.tensor(inputs["input_ids"].numel())
                self.tokens = count if self.tokens is None else self.tokens + count
            return step(model, inputs, *args, **kwargs)

        trainer.training_step = training_step

    def _sync(self):
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == 0:
            self.started = time.perf_counter()
        self.counting = self.warmup <= state.global_step < self.warmup + self.steps
        if self.profile and state.global_step == self.warmup + self.steps:
            self._sync()
            activities = [torch.profiler.ProfilerActivity.CPU]
            if torch.cuda.is_available():
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            self.profiler = torch.profiler.profile(activities=activities)
            self.profiler.__enter__()
            self.profile_start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1:
            self._sync()
            self.first_step = time.perf_counter() - self.started
        if state.global_step == self.warmup:
            self._sync()
            self.start = time.perf_counter()
            self.compiled = any("forward" in layer.__dict__ for layer in recipe.decoder_layers(kwargs["model"]))
        if state.global_step == self.warmup + self.steps:
            self._sync()
            self.seconds = time.perf_counter() - self.start
            control.should_training_stop = not self.profile
        if self.profiler is not None and state.global_step == self.warmup + self.steps + PROFILED_STEPS:
            self._sync()
            self.profile_seconds = time.perf_counter() - self.profile_start
            self.profiler.__exit__(None, None, None)
            control.should_training_stop = True


def profile_summary(clock: StepClock) -> dict:
    """GPU busy time and host overhead per step, and the costliest host operations, from the profiled steps."""
    events = clock.profiler.key_averages()
    gpu_us = sum(e.self_device_time_total for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    wall_ms = clock.profile_seconds / PROFILED_STEPS * 1e3
    gpu_ms = gpu_us / PROFILED_STEPS / 1e3
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:8]
    return {"profiled_wall_ms_per_step": round(wall_ms, 2), "gpu_busy_ms_per_step": round(gpu_ms, 2),
            "launches_per_step": round(sum(e.count for e in events if e.key.startswith("cudaLaunch")
                                           or e.key.startswith("cuLaunch")) / PROFILED_STEPS),
            "top_host_costs_ms_per_step": {e.key[:60]: round(e.self_cpu_time_total / PROFILED_STEPS / 1e3, 2) for e in top}}


def recipe_trainer(rows: list[dict], out: Path, steps: int, batch_size: int, model_id: str = "") -> SFTTrainer:
    """The course's recipe, exactly as notebooks 00, 01 and 02 train (TRL's default seed, so both runs
    see the same batches)."""
    return lora.make_trainer(rows, steps, batch_size=batch_size, output_dir=out, seed=SEED, model_id=model_id)


def trl_defaults_trainer(rows: list[dict], out: Path, steps: int, batch_size: int, model_id: str = "") -> SFTTrainer:
    """TRL's defaults with the recipe's LoRA adapter; only what a CPU run requires and the shared
    budget are set."""
    model, tokenizer = models.load_model(model_id)
    config = SFTConfig(output_dir=str(out), max_steps=steps, per_device_train_batch_size=batch_size,
                       use_cpu=not torch.cuda.is_available(), save_strategy="no", report_to="none", disable_tqdm=True)
    return SFTTrainer(model=model, args=config, processing_class=tokenizer,
                      train_dataset=datasets.to_prompt_completion(rows), peft_config=recipe.lora_config())


def measure(name: str, trainer: SFTTrainer, warmup: int, steps: int, profile: bool) -> dict:
    """Train once and return tokens/s over the timed steps (and the profile's figures)."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    clock = StepClock(trainer, warmup, steps, profile)
    trainer.add_callback(clock)
    trainer.train()
    config = trainer.args
    trainable, total = trainer.model.get_nb_trainable_parameters()
    tokens = int(clock.tokens)
    run = {"config": name, "bf16": config.bf16,
           "activation_checkpointing": bool(config.activation_checkpointing or config.gradient_checkpointing),
           "compiled": clock.compiled,
           "first_step_seconds": round(clock.first_step, 2), "measured_steps": steps, "tokens": tokens,
           "seconds": round(clock.seconds, 3), "ms_per_step": round(clock.seconds / steps * 1e3, 2),
           "tokens_per_second": round(tokens / clock.seconds, 1),
           "parameters": total - trainable}  # the base model's, without the adapter
    if torch.cuda.is_available():
        run["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    if profile and clock.profiler is not None:
        try:
            run.update(profile_summary(clock))
        except Exception as err:  # a profiler that changed its fields must not lose the measurement
            run["profile_error"] = f"{type(err).__name__}: {err}"
        if torch.cuda.is_available() and "gpu_busy_ms_per_step" in run:
            run["host_overhead_ms_per_step"] = round(max(0.0, run["ms_per_step"] - run["gpu_busy_ms_per_step"]), 2)
    return run


RUNS = {"recipe": recipe_trainer, "trl-defaults": trl_defaults_trainer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="steps before the timing (compilation happens there)")
    parser.add_argument("--run-steps", type=int, default=120, help="the run's length as the trainers see it "
                        "(a full notebook 03 run); each stops after the warm-up and the timed steps")
    parser.add_argument("--batch-sizes", default="", help="comma-separated examples per step (default: notebook 03's "
                        "dry run)")
    parser.add_argument("--config", type=Path, default=None, help="a model config.json: random weights of that shape "
                        "instead of the embedded model")
    parser.add_argument("--runs", default="recipe,trl-defaults", help=f"which of {', '.join(RUNS)}, in order")
    parser.add_argument("--profile", action="store_true", help="profile 3 more steps of each run")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "train_throughput.json")
    args = parser.parse_args()
    env.set_offline(True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b] or [nbcheck.dry_run_values(NOTEBOOK)["batch_size"]]
    model_id = random_model(args.config) if args.config else ""
    rows = datasets.load_split("train")
    torch.manual_seed(0)
    peak = {"bf16": matmul_tflops(torch.bfloat16, device), "fp32": matmul_tflops(torch.float32, device)}
    name = torch.cuda.get_device_name() if device == "cuda" else (platform.processor() or platform.machine())
    print(f"{name}: matmul bf16 {peak['bf16']:.1f} TFLOP/s, fp32 {peak['fp32']:.1f} TFLOP/s; model "
          f"{args.config.stem if args.config else models.EMBEDDED_NAME}; {args.warmup} + {args.steps} steps per run",
          flush=True)
    out = ROOT / "runs" / "bench"
    results = []
    for batch_size in batch_sizes:
        for run_name in args.runs.split(","):
            trainer = RUNS[run_name](rows, out / run_name, args.run_steps, batch_size, model_id)
            run = measure(run_name, trainer, args.warmup, args.steps, args.profile)
            run["batch_size"] = batch_size
            results.append(run)
            del trainer
            gc.collect()
            if device == "cuda":
                torch.cuda.empty_cache()
    print(f"\n{'batch':>5} {'run':>13} {'tokens/s':>10} {'ms/step':>8} {'host ms':>8} {'ckpt':>5} {'compiled':>8} "
          f"{'TFLOP/s':>8} {'of bf16 peak':>12} {'vs TRL':>7}")
    for run in results:
        flops = 4 * run["parameters"] * run["tokens_per_second"] / 1e12
        run["useful_tflops"] = round(flops, 3)
        run["fraction_of_bf16_peak"] = round(flops / peak["bf16"], 4)
        run["fraction_of_fp32_peak"] = round(flops / peak["fp32"], 4)
        base = next((r for r in results if r["config"] == "trl-defaults" and r["batch_size"] == run["batch_size"]), None)
        run["vs_trl_defaults"] = round(run["tokens_per_second"] / base["tokens_per_second"], 3) if base else None
        print(f"{run['batch_size']:5d} {run['config']:>13} {run['tokens_per_second']:10.0f} {run['ms_per_step']:8.1f} "
              f"{run.get('host_overhead_ms_per_step', float('nan')):8.1f} {run['activation_checkpointing']!s:>5} "
              f"{run['compiled']!s:>8} {flops:8.2f} {run['fraction_of_bf16_peak']:12.2%} "
              f"{run['vs_trl_defaults'] or float('nan'):7.2f}")
    print("useful FLOPs = 4 x base parameters x trained tokens/s (forward + backward to the adapters' inputs)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "device": name, "machine": {"cpu": platform.processor() or platform.machine(),
                                    "threads": torch.get_num_threads(), "native_bf16": recipe.use_bf16(),
                                    "torch": torch.__version__},
        "model": args.config.stem if args.config else models.EMBEDDED_NAME,
        "matmul_tflops": {k: round(v, 2) for k, v in peak.items()},
        "steps": args.steps, "warmup": args.warmup, "run_steps": args.run_steps, "runs": results,
    }, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
