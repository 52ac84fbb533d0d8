"""The course's one training recipe: what it sets, what may be changed per run, and that every
trainer in the course (notebook 00's and the emulator's one call, the benchmark) uses it."""

import importlib.util
import re
from pathlib import Path

import pytest
import torch
from trl import SFTConfig

from helpers.env import ROOT
from helpers.train import recipe
from tools import nbcheck


def test_the_recipe_trains_on_answers_with_a_cosine_schedule_and_a_short_warm_up(tmp_path):
    config = recipe.sft_config(tmp_path, max_steps=40, batch_size=4)
    assert (config.completion_only_loss, config.lr_scheduler_type, config.warmup_steps) == (True, "cosine", 2)
    assert (config.learning_rate, config.per_device_train_batch_size, config.max_length) == (1e-3, 4, 512)
    assert recipe.sft_config(tmp_path, max_steps=10, batch_size=4).warmup_steps == 1  # never zero


def test_only_reporting_settings_may_be_chosen_per_run(tmp_path):
    config = recipe.sft_config(tmp_path, 30, 4, eval_strategy="steps", eval_steps=15, logging_steps=2)
    assert recipe.differences(config, recipe.sft_config(tmp_path / "other", 30, 4)) == []
    with pytest.raises(ValueError, match="weight_decay: not a reporting setting"):
        recipe.sft_config(tmp_path, 30, 4, weight_decay=0.1)


def test_differences_name_each_changed_training_setting(tmp_path):
    reference = recipe.sft_config(tmp_path, 30, 4)
    drifted = SFTConfig(**{**reference.to_dict(), "lr_scheduler_type": "linear", "warmup_steps": 0,
                           "per_device_train_batch_size": 8, "output_dir": str(tmp_path / "x")})
    found = recipe.differences(drifted, reference)
    assert [line.split(":")[0] for line in found] == ["lr_scheduler_type", "per_device_train_batch_size", "warmup_steps"]
    assert "lr_scheduler_type: 'linear' (recipe: 'cosine')" in found
    lora = recipe.lora_config(16)
    assert recipe.differences(recipe.lora_config(8), lora) == ["lora_alpha: 16 (recipe: 32)", "r: 8 (recipe: 16)"]


def test_bf16_is_chosen_exactly_where_the_cpu_has_native_bf16():
    cpuinfo = Path("/proc/cpuinfo")
    flags = re.search(r"^flags\s*:(.*)$", cpuinfo.read_text(), re.M) if cpuinfo.exists() else None
    if torch.cuda.is_available() or flags is None:
        pytest.skip("a GPU decides by itself; without /proc/cpuinfo there is no second opinion")
    assert recipe.use_bf16() is bool(set(flags.group(1).split()) & {"avx512_bf16", "amx_bf16"})


@pytest.mark.parametrize("notebook", ["00-should-you-fine-tune", "03-huggingface-trl", "04-autotrain"])
def test_the_notebooks_that_train_default_to_the_recipes_rate_and_rank(notebook):
    values = nbcheck.dry_run_values(ROOT / "notebooks" / f"{notebook}.ipynb")
    assert (values["learning_rate"], values["lora_r"]) == (recipe.LEARNING_RATE, recipe.LORA_R)


def test_the_training_benchmark_measures_the_recipe(tmp_path):
    spec = importlib.util.spec_from_file_location("train_throughput", ROOT / "benchmarks" / "train_throughput.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    config = bench.recipe_config(tmp_path, steps=8)
    assert recipe.differences(config, recipe.sft_config(tmp_path, 8, bench.BATCH_SIZE)) == []
    assert bench.BATCH_SIZE == nbcheck.dry_run_values(ROOT / "notebooks" / "03-huggingface-trl.ipynb")["batch_size"]
