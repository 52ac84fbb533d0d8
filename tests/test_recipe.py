"""The course's one training recipe: what it sets, what may be changed per run, and that every
trainer in the course (notebook 00's and the emulator's one call, the benchmark) uses it."""

import importlib.util
import re
from pathlib import Path

import papermill
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import (
    AutoTokenizer,
    Gemma2Config,
    Gemma2ForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    MixtralConfig,
    MixtralForCausalLM,
    TrainerCallback,
)
from trl import SFTConfig, SFTTrainer

from helpers import models
from helpers.data import datasets
from helpers.env import ROOT
from helpers.errors import CourseError
from helpers.train import lora, recipe
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
    path = ROOT / "notebooks" / f"{notebook}.ipynb"
    defaults = {name: float(p["default"]) for name, p in papermill.inspect_notebook(str(path)).items()
                if name in ("learning_rate", "lora_r")}
    assert defaults == {"learning_rate": recipe.LEARNING_RATE, "lora_r": recipe.LORA_R}
    dry_run_rate = recipe.LEARNING_RATE if notebook == "04-autotrain" else recipe.DRY_RUN_LEARNING_RATE
    assert nbcheck.dry_run_values(path)["learning_rate"] == dry_run_rate


def test_the_training_benchmark_measures_the_recipe_itself(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("train_throughput", ROOT / "benchmarks" / "train_throughput.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    calls = []
    monkeypatch.setattr(lora, "make_trainer", lambda *args, **kwargs: calls.append((args, kwargs)))
    bench.recipe_trainer([{"messages": []}], tmp_path, 8, 4)
    assert calls == [(([{"messages": []}], 8), {"batch_size": 4, "output_dir": tmp_path, "seed": bench.SEED, "model_id": ""})]
    assert bench.SEED == SFTConfig.__dataclass_fields__["seed"].default


# speed_up: a tiny model of the embedded one's kind (2 layers, the same vocabulary) trains in seconds.
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "tie_word_embeddings": True}


def tiny_trainer(tmp_path, rows, speed_up: bool, kind=(LlamaForCausalLM, LlamaConfig), **config) -> SFTTrainer:
    tokenizer = AutoTokenizer.from_pretrained(models.resolve_model(""))
    torch.manual_seed(0)
    model_class, config_class = kind
    model = model_class(config_class(vocab_size=len(tokenizer), **{**TINY, **config}))
    trainer = SFTTrainer(model=model, args=recipe.sft_config(tmp_path / str(speed_up), 2, 4, disable_tqdm=True),
                         train_dataset=datasets.to_prompt_completion(rows), processing_class=tokenizer,
                         peft_config=recipe.lora_config(4))
    return recipe.speed_up(trainer) if speed_up else trainer


def loss_gradients_and_flops(trainer, num_items_in_batch=None):
    """One batch through TRL's compute_loss in float32 (in bf16 both agree to bf16's rounding): the
    loss, TRL's logged metrics, the adapter's gradients and the FLOPs of the forward pass. Training passes
    num_items_in_batch (the labelled tokens of the whole step, across accumulation and ranks)."""
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train()
    with FlopCounterMode(display=False) as flops:
        loss = trainer.compute_loss(trainer.model, batch, num_items_in_batch=num_items_in_batch)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in trainer.model.named_parameters() if p.requires_grad}
    metrics = {name: values[-1] for name, values in trainer._metrics["train"].items()}
    labelled = int((batch["labels"][:, 1:] != -100).sum())
    return loss.detach(), metrics, grads, flops.get_total_flops(), labelled, batch["labels"].numel()


def test_speed_up_scores_only_the_labelled_positions_and_learns_the_same(tmp_path):
    rows = datasets.load_split("train", limit=4)
    loss, metrics, grads, flops, labelled, positions = loss_gradients_and_flops(tiny_trainer(tmp_path, rows, False))
    fast_loss, fast_metrics, fast_grads, fast_flops, _, _ = loss_gradients_and_flops(tiny_trainer(tmp_path, rows, True))
    torch.testing.assert_close(fast_loss, loss, rtol=1e-5, atol=1e-5)
    assert fast_metrics.keys() == metrics.keys() and {"entropy", "mean_token_accuracy"} <= metrics.keys()
    for name in ("entropy", "mean_token_accuracy"):
        assert fast_metrics[name] == pytest.approx(metrics[name], rel=1e-4), name
    assert fast_grads.keys() == grads.keys() and any(g.abs().sum() > 0 for g in grads.values())
    for name, grad in grads.items():
        torch.testing.assert_close(fast_grads[name], grad, rtol=1e-4, atol=1e-7, msg=name)
    # the head (64 x vocabulary, 2 FLOPs a product) is what changes: TRL applies it at every position
    head = 2 * 64 * len(AutoTokenizer.from_pretrained(models.resolve_model("")))
    assert 0 < labelled < positions / 2
    assert flops - fast_flops == pytest.approx(head * (positions - 4 - labelled), rel=0.01)


def test_speed_up_learns_the_same_with_the_token_count_training_passes(tmp_path):
    """Trainer.train hands compute_loss num_items_in_batch (here: as if the step had twice these tokens, from a
    second micro-batch): the loss is a sum over this batch divided by that count, on TRL's path and ours."""
    rows = datasets.load_split("train", limit=4)
    count = torch.tensor(2 * 57)
    loss, _, grads, *_ = loss_gradients_and_flops(tiny_trainer(tmp_path, rows, False), count)
    fast_loss, _, fast_grads, *_ = loss_gradients_and_flops(tiny_trainer(tmp_path, rows, True), count)
    own_loss, *_ = loss_gradients_and_flops(tiny_trainer(tmp_path, rows, True))
    torch.testing.assert_close(fast_loss, loss, rtol=1e-5, atol=1e-5)
    assert abs(fast_loss.item() - own_loss.item()) > 0.1 * own_loss.item()  # the count was used, not the batch's own
    for name, grad in grads.items():
        torch.testing.assert_close(fast_grads[name], grad, rtol=1e-4, atol=1e-7, msg=name)


def test_a_trl_without_the_fused_head_hook_keeps_trls_own_head_with_a_notice(tmp_path, monkeypatch, capsys):
    """TRL before 1.15 has no trl.trainer.utils.FusedCausalLMOutput: speed_up must neither fail to import nor
    patch the head, and the loss is TRL's own."""
    import trl.trainer.utils

    from helpers import env

    rows = datasets.load_split("train", limit=4)
    loss, metrics, grads, flops, *_ = loss_gradients_and_flops(tiny_trainer(tmp_path, rows, False))
    trainer = tiny_trainer(tmp_path, rows, False)
    monkeypatch.setattr(env, "_notified", set())
    with monkeypatch.context() as without_hook:
        without_hook.delattr(trl.trainer.utils, "FusedCausalLMOutput")
        recipe.speed_up(trainer)
    assert "has no fused LM head" in capsys.readouterr().out
    fallback_loss, _, fallback_grads, fallback_flops, *_ = loss_gradients_and_flops(trainer)
    torch.testing.assert_close(fallback_loss, loss, rtol=1e-6, atol=1e-6)
    assert fallback_flops == flops  # the head at every position, as TRL computes it
    for name, grad in grads.items():
        torch.testing.assert_close(fallback_grads[name], grad, rtol=1e-5, atol=1e-8, msg=name)


def test_speed_up_attends_eagerly_while_training_and_restores_the_model_after(tmp_path):
    seen = []

    class Spy(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            seen.append(model.get_base_model().config._attn_implementation)

    trainer = tiny_trainer(tmp_path, datasets.load_split("train", limit=8), True)
    before = trainer.model.get_base_model().config._attn_implementation
    trainer.add_callback(Spy())
    trainer.train()
    assert (before, seen) == ("sdpa", ["eager", "eager"])
    assert trainer.model.get_base_model().config._attn_implementation == "sdpa"


@pytest.mark.parametrize("kind, config", [
    ((Gemma2ForCausalLM, Gemma2Config), {"final_logit_softcapping": 0.05}),  # TRL caps the logits
    ((MixtralForCausalLM, MixtralConfig), {"num_local_experts": 2, "num_experts_per_tok": 1,
                                           "output_router_logits": True}),  # TRL adds the router's loss
], ids=["soft-capped logits", "mixture of experts"])
def test_speed_up_leaves_the_head_to_trl_where_trl_transforms_the_logits_or_adds_a_loss(tmp_path, kind, config):
    rows = datasets.load_split("train", limit=4)
    loss, metrics, grads, *_ = loss_gradients_and_flops(tiny_trainer(tmp_path, rows, False, kind, **config))
    fast_loss, fast_metrics, fast_grads, *_ = loss_gradients_and_flops(tiny_trainer(tmp_path, rows, True, kind, **config))
    torch.testing.assert_close(fast_loss, loss, rtol=1e-6, atol=1e-6)
    assert fast_metrics["entropy"] == pytest.approx(metrics["entropy"], rel=1e-6)


def test_a_failed_training_restores_the_models_attention_and_a_second_trainer_is_sped_up_too(tmp_path):
    class Fail(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            raise RuntimeError("a cell interrupted")

    seen = []

    class Spy(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            seen.append(model.get_base_model().config._attn_implementation)

    trainer = recipe.speed_up(tiny_trainer(tmp_path, datasets.load_split("train", limit=8), True))  # twice: no harm
    model = trainer.model.get_base_model()
    trainer.add_callback(Fail())
    with pytest.raises(RuntimeError, match="interrupted"):
        trainer.train()
    assert model.config._attn_implementation == "sdpa"  # put back although the step failed
    second = recipe.speed_up(SFTTrainer(model=trainer.model, args=trainer.args, train_dataset=trainer.train_dataset,
                                        processing_class=trainer.processing_class, callbacks=[Spy()]))
    second.train()
    assert seen == ["eager", "eager"] and model.config._attn_implementation == "sdpa"


def test_compiled_layers_learn_the_same_and_generation_gets_the_layers_own_forward_back(tmp_path):
    rows = datasets.load_split("train", limit=4)
    loss, _, grads, *_ = loss_gradients_and_flops(tiny_trainer(tmp_path, rows, False))
    trainer = tiny_trainer(tmp_path, rows, False)
    layers = recipe.decoder_layers(trainer.model.get_base_model())
    assert [type(layer).__name__ for layer in layers] == ["LlamaDecoderLayer"] * 2
    enter, leave = recipe.compiled_layers(trainer.model.get_base_model(), backend="eager")  # Dynamo, no code generation
    enter()
    assert all("forward" in layer.__dict__ for layer in layers)
    compiled_loss, _, compiled_grads, *_ = loss_gradients_and_flops(trainer)
    leave()
    assert not any("forward" in layer.__dict__ for layer in layers)
    torch.testing.assert_close(compiled_loss, loss, rtol=1e-5, atol=1e-5)
    for name, grad in grads.items():
        torch.testing.assert_close(compiled_grads[name], grad, rtol=1e-4, atol=1e-7, msg=name)


def test_a_gpu_out_of_memory_error_names_the_batch_size_to_try(tmp_path):
    class OutOfMemory(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    trainer = tiny_trainer(tmp_path, datasets.load_split("train", limit=8), True)
    trainer.add_callback(OutOfMemory())
    with pytest.raises(CourseError) as err:
        trainer.train()
    assert ("per_device_train_batch_size=4" in str(err.value)
            and "Try per_device_train_batch_size=2 with gradient_accumulation_steps=2" in str(err.value))
    assert isinstance(err.value.__cause__, torch.cuda.OutOfMemoryError)


def test_checkpointing_goes_only_where_the_largest_batch_fits(tmp_path, monkeypatch):
    trainer = tiny_trainer(tmp_path, datasets.load_split("train", limit=8), False)
    model = trainer.model.get_base_model()
    longest = max(len(ids) for ids in trainer.train_dataset["input_ids"])
    budget = recipe.activation_gib(model.config, 4 * longest) / recipe.ACTIVATION_MEMORY_SHARE  # batches of 4
    for free, needed in ((budget * 1.01, False), (budget * 0.99, True)):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda free=free: (int(free * 2**30), 80 * 2**30))
        assert recipe.checkpointing_needed(trainer, model)[0] is needed


def test_the_parity_instrument_changes_only_the_optimizer_and_the_precision(tmp_path):
    config = recipe.sft_config(tmp_path, 10, 4)
    changed = recipe.differences(recipe.for_parity(config), config)
    assert [line.split(":")[0] for line in changed] == ["bf16", "optim"] or [line.split(":")[0] for line in changed] == ["optim"]
    assert recipe.for_parity(config).optim == "sgd" and recipe.for_parity(config).bf16 is False


def tiny_dpo_trainer(tmp_path, pairs, speed_up: bool, **settings):
    from trl import DPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(models.resolve_model(""))
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), **TINY))
    data = __import__("datasets").Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
    trainer = DPOTrainer(model=model, args=recipe.dpo_config(tmp_path / f"dpo{speed_up}", 2, 4, disable_tqdm=True,
                                                             **settings),
                         train_dataset=data, processing_class=tokenizer, peft_config=recipe.lora_config(4))
    return recipe.speed_up(trainer) if speed_up else trainer


@pytest.mark.parametrize("sft_weight", [0.0, 1.0])
def test_speed_up_gives_dpo_the_same_loss_rewards_and_gradients(tmp_path, sft_weight):
    """DPO reads the same fused head as SFT (log-probabilities where the answer is): scored only there, a DPO
    step (policy and reference, with or without the SFT term) is the same, reference included."""
    from helpers.data import preferences

    rows = datasets.load_split("train", limit=4)
    pairs = [{"prompt": datasets.prompt_messages(r), "chosen": preferences.reply(datasets.answer(r)),
              "rejected": preferences.reply("SELECT 1")} for r in rows]

    def one_step(trainer):
        for p in trainer.model.parameters():  # a moved adapter, so that policy and reference differ
            if p.requires_grad:
                torch.nn.init.normal_(p, std=0.05)
        batch = next(iter(trainer.get_train_dataloader()))
        trainer.model.train()
        loss = trainer.compute_loss(trainer.model, batch)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
        return loss.detach(), {k: v[-1] for k, v in trainer._metrics["train"].items()}, grads

    torch.manual_seed(1)
    loss, metrics, grads = one_step(tiny_dpo_trainer(tmp_path, pairs, False, sft_weight=sft_weight))
    torch.manual_seed(1)
    fast_loss, fast_metrics, fast_grads = one_step(tiny_dpo_trainer(tmp_path, pairs, True, sft_weight=sft_weight))
    torch.testing.assert_close(fast_loss, loss, rtol=1e-5, atol=1e-6)
    assert abs(metrics["rewards/margins"]) > 1e-4  # the check has something to compare
    for name in ("rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected"):
        assert fast_metrics[name] == pytest.approx(metrics[name], rel=1e-4, abs=1e-6), name
    for name, grad in grads.items():
        torch.testing.assert_close(fast_grads[name], grad, rtol=1e-4, atol=1e-7, msg=name)
