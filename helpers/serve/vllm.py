"""vLLM, the serving engine for GPUs. Its wheel is built for CUDA and pins its own torch and
transformers, so it lives in an environment of its own (`make vllm` on a GPU machine creates
.venv-vllm); the course starts its `vllm serve` command from there."""

from __future__ import annotations

from pathlib import Path

import torch

from helpers.env import ROOT

VENV = ROOT / ".venv-vllm"
VERSION = "0.33.0"  # reads transformers-5 checkpoints (from 0.19.1); pins torch 2.14 and transformers < 5.21


def executable(venv: str | Path = VENV) -> Path:
    """The `vllm` command of its environment, the course's .venv-vllm when `venv` is empty (it may not
    exist: see `why_not`)."""
    return Path(venv or VENV) / "bin" / "vllm"


def why_not(dry_run: bool, venv: str | Path = VENV) -> str | None:
    """None when this notebook can start vLLM here; else the reason, with what to do about it."""
    if dry_run:
        return "a dry run serves on the CPU only; set dry_run=False on a machine with a CUDA GPU"
    if not torch.cuda.is_available():
        return "there is no CUDA GPU here (vLLM's wheel is built for CUDA)"
    if not executable(venv).exists():
        return f"vLLM is not installed in {venv or VENV}: run `make vllm` (its own environment, vllm=={VERSION})"
    return None
