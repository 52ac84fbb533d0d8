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


def train_lora(rows: list[dict], max_steps: int, learning_rate: float = 1e-3, batch_size: int = 8,
               lora_r: int = 16, seed: int = 0, on_log=None, should_stop=None, output_dir: str | Path | None = None,
               quiet: bool = True, model_id: str = ""):
    """LoRA SFT of a model (the embedded one by default) on chat examples, loss on each last answer;
    returns the trainer. Notebook 03 shows the same LoraConfig and SFTConfig step by step.

    on_log(step, logs) sees every logged step; should_stop() is asked after each step; quiet
    silences the trainer's printing and progress bar (the emulator trains in the background).
    """
    import tempfile

    import datasets as hf_datasets
    from peft import LoraConfig
    from transformers import PrinterCallback, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from helpers import datasets, models

    class Hooks(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if on_log and logs and "loss" in logs:
                on_log(state.global_step, logs)

        def on_step_end(self, args, state, control, **kwargs):
            if should_stop and should_stop():
                control.should_training_stop = True

    model, tokenizer = models.load_model(model_id)
    args = SFTConfig(
        output_dir=str(output_dir or tempfile.mkdtemp(prefix="lora-")), max_steps=max_steps,
        per_device_train_batch_size=batch_size, learning_rate=learning_rate, lr_scheduler_type="cosine",
        warmup_steps=max(1, max_steps // 20), completion_only_loss=True, max_length=512,
        bf16=use_bf16(), use_cpu=not torch.cuda.is_available(), logging_steps=1, save_strategy="no",
        activation_checkpointing=torch.cuda.is_available(),  # on CPU recomputation only costs time
        report_to="none", seed=seed, disable_tqdm=quiet)
    peft_config = LoraConfig(r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.0, target_modules="all-linear",
                             task_type="CAUSAL_LM")
    if quiet:
        hf_datasets.disable_progress_bars()
    trainer = SFTTrainer(model=model, args=args, train_dataset=datasets.to_prompt_completion(rows),
                         processing_class=tokenizer, peft_config=peft_config, callbacks=[Hooks()])
    if quiet:
        trainer.remove_callback(PrinterCallback)
    trainer.train()
    return trainer
