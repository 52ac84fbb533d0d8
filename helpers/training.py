"""Training plumbing: hardware choices, loss history, merging a LoRA adapter."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch


def use_bf16() -> bool:
    """bf16 on a CUDA GPU that has it, or on a CPU with native bf16 (AVX512-BF16, AMX)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def loss_history(log_history: list[dict]) -> pd.DataFrame:
    """Training and evaluation losses per step from a Trainer's state.log_history."""
    rows = [{"step": h["step"], "split": split, "loss": h[key]}
            for h in log_history
            for key, split in (("loss", "train"), ("eval_loss", "validation")) if key in h]
    return pd.DataFrame(rows, columns=["step", "split", "loss"])


def trained_tokens(log_history: list[dict]) -> int:
    """Tokens the trainer saw (TRL logs a running num_tokens), 0 if never logged."""
    return int(max((h.get("num_tokens", 0) for h in log_history), default=0))


def merge_adapter(model_path: str, adapter_dir: str | Path, out_dir: str | Path):
    """Load the base model in full precision, fold the LoRA adapter in, save; return the model."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    base = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(adapter_dir).save_pretrained(out_dir)
    return merged
