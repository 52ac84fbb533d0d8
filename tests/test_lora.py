import torch
from peft import LoraConfig, get_peft_model

from helpers import models, training

LOG = [
    {"loss": 2.0, "step": 1, "num_tokens": 100.0},
    {"loss": 1.0, "step": 2, "num_tokens": 210.0},
    {"eval_loss": 1.5, "step": 2},
    {"train_runtime": 3.0, "step": 2},
]


def test_loss_history_splits_train_and_validation():
    history = training.loss_history(LOG)
    assert history.to_dict("list") == {"step": [1, 2, 2], "split": ["train", "train", "validation"],
                                       "loss": [2.0, 1.0, 1.5]}
    assert training.loss_history([]).empty


def test_trained_tokens_is_the_last_running_count():
    assert training.trained_tokens(LOG) == 210
    assert training.trained_tokens([]) == 0


def test_bf16_choice_matches_the_hardware():
    expected = (torch.cuda.is_bf16_supported() if torch.cuda.is_available()
                else torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert training.use_bf16() == expected


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
    merged = training.merge_adapter(models.resolve_model(""), tmp_path / "adapter", tmp_path / "merged")
    assert (tmp_path / "merged" / "model.safetensors").exists()
    with torch.no_grad():
        merged_logits = merged(**ids).logits
    assert not torch.allclose(adapted, base_logits, atol=1e-3)  # the adapter changes the output
    torch.testing.assert_close(merged_logits, adapted, atol=1e-4, rtol=1e-4)
