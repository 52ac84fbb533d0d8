"""LoRA training with the course's recipe, merging an adapter, and what a trainer logged."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.lora import LoraLayer

from helpers import models
from helpers.data import datasets
from helpers.train import lora, recipe

LOG = [
    {"loss": 2.0, "step": 1, "num_tokens": 100.0},
    {"loss": 1.0, "step": 2, "num_tokens": 210.0},
    {"eval_loss": 1.5, "step": 2},
    {"train_runtime": 3.0, "step": 2},
]


def test_loss_history_splits_train_and_validation():
    history = lora.loss_history(LOG)
    assert history.to_dict("list") == {"step": [1, 2, 2], "split": ["train", "train", "validation"],
                                       "loss": [2.0, 1.0, 1.5]}
    assert lora.loss_history([]).empty


def test_trained_tokens_is_the_last_running_count():
    assert lora.trained_tokens(LOG) == 210
    assert lora.trained_tokens([]) == 0


def test_merged_model_computes_what_the_adapter_did(embedded, tmp_path):
    model, tokenizer = embedded
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                        task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    ids = tokenizer("SELECT name FROM employees", return_tensors="pt")
    with torch.no_grad():
        with peft_model.disable_adapter():
            base_logits = peft_model(**ids).logits
        adapted = peft_model(**ids).logits
    peft_model.save_pretrained(tmp_path / "adapter")
    tokenizer.save_pretrained(tmp_path / "adapter")
    peft_model.unload()  # leave the shared fixture model as it was
    merged = lora.merge_adapter(models.resolve_model(""), tmp_path / "adapter", tmp_path / "merged")
    assert (tmp_path / "merged" / "model.safetensors").exists()
    with torch.no_grad():
        merged_logits = merged(**ids).logits
    assert not torch.allclose(adapted, base_logits, atol=1e-3)  # the adapter changes the output
    torch.testing.assert_close(merged_logits, adapted, atol=1e-4, rtol=1e-4)


def test_one_call_training_uses_the_recipe_and_adapts_every_linear_layer(embedded, tmp_path):
    rows = datasets.load_split("train", limit=8)
    trainer = lora.make_trainer(rows, max_steps=3, learning_rate=5e-4, batch_size=4, lora_r=8, seed=3,
                                output_dir=tmp_path)
    assert recipe.differences(trainer.args, recipe.sft_config(tmp_path, 3, 4, 5e-4, 3)) == []
    applied = trainer.model.peft_config["default"]
    assert (applied.r, applied.lora_alpha, applied.lora_dropout) == (8, 16, 0.0)
    adapted = {name[name.index("layers."):] for name, module in trainer.model.named_modules()
               if isinstance(module, LoraLayer)}
    linear = {name for name, module in embedded[0].named_modules() if isinstance(module, torch.nn.Linear)}
    assert "lm_head" in linear and len(adapted) == 7 * embedded[0].config.num_hidden_layers
    assert adapted == {name[name.index("layers."):] for name in linear if "layers." in name}  # not the head


def test_grpo_with_the_recipe_scores_each_prompts_answers_with_the_reward_and_moves_the_adapter(tmp_path):
    """Two GRPO steps of 2 prompts x 4 answers: the reward sees every answer with its row's columns, the
    step's logged reward is the mean of what it returned, and the adapter's B matrices (zero at first) moved."""
    rows = [{"prompt": row["messages"][:-1], "db_id": row["db_id"]} for row in datasets.load_split("train", limit=4)]
    seen = []

    def shorter_is_better(completions, db_id, **_):
        seen.append((len(completions), set(db_id)))
        return [1.0 / (1 + len(c[0]["content"])) for c in completions]

    trainer = lora.train_grpo(rows, [shorter_is_better], 2, prompts_per_step=2, seed=1, learning_rate=1e-3,
                              completion_tokens=16, output_dir=tmp_path)
    assert recipe.differences(trainer.args, recipe.grpo_config(tmp_path, 2, 2, learning_rate=1e-3, completion_tokens=16,
                                                               seed=1)) == []
    assert trainer.args.per_device_train_batch_size == 2 * recipe.GRPO_GENERATIONS
    assert [n for n, _ in seen] == [8, 8] and all(ids <= {r["db_id"] for r in rows} for _, ids in seen)
    history = lora.grpo_history(trainer.state.log_history)
    assert history.step.tolist() == [1, 2] and history["mean reward"].between(0, 1).all()
    assert (history["groups without signal"] <= 1).all()
    moved = [p.abs().max().item() for n, p in trainer.model.named_parameters() if "lora_B" in n]
    assert max(moved) > 0


def test_score_groups_finds_the_prompts_whose_answers_disagree():
    """The reward functions are called as GRPOTrainer calls them (chat completions, the rows' columns) and summed."""
    def right(completions, gold, **kwargs):
        return [float(c[0]["content"] == g) for c, g in zip(completions, gold, strict=True)]

    def short(completions, **kwargs):
        return [0.1 * (len(c[0]["content"]) < 3) for c in completions]

    rows = [{"prompt": [{"role": "user", "content": "a?"}], "gold": "a"},
            {"prompt": [{"role": "user", "content": "b?"}], "gold": "b"}]
    groups = lora.score_groups(rows, [["a", "xyz"], ["c", "d"]], [right, short])
    assert groups.rewards.tolist() == [[1.1, 0.0], [0.1, 0.1]]
    assert groups.signal.tolist() == [True, False]  # both answers to b? score the same: no signal
    assert groups["mean"].tolist() == pytest.approx([0.55, 0.1]) and groups.spread.tolist() == pytest.approx([0.55, 0])


def test_grpo_logs_split_a_step_into_generation_and_training_and_keep_the_reward_before_training():
    log = [{"step": 1, "reward": 0.5, "reward_std": 0.2, "frac_reward_zero_std": 0.25, "loss": 0.01, "step_time": 3.0,
            "rewards/execution_reward/mean": 0.45, "rewards/runs_reward/mean": 0.05},
           {"step": 2, "reward": 0.6, "reward_std": 0.1, "frac_reward_zero_std": 0.5, "loss": 0.02, "step_time": 4.0,
            "rewards/execution_reward/mean": 0.52, "rewards/runs_reward/mean": 0.08},
           {"step": 2, "eval_reward": 0.7, "eval_reward_std": 0.3}]
    history = lora.grpo_history(log, generation_seconds=[1.0, 1.5])
    assert history["training seconds"].tolist() == [2.0, 2.5]
    assert history["execution_reward reward"].tolist() == [0.45, 0.52] and "runs_reward reward" in history
    held = lora.grpo_held_out(log, before={"eval_reward": 0.4, "eval_reward_std": 0.2})
    assert held.step.tolist() == [0, 2] and held["held-out reward"].tolist() == [0.4, 0.7]
