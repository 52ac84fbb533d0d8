"""Training on several processes: launching the course's training script (scripts/sft.py) from a
notebook with a progress bar, reading what each launch reports, and the memory arithmetic that says
which way of sharing the work across GPUs a model needs."""

from __future__ import annotations

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
