"""AutoTrain helpers: its data layout, its config checked by its own classes (inside its own
environment), failures it hides behind exit status 0, and its log read back."""

import json
import subprocess
import textwrap

import pytest
import torch
import yaml

from helpers import models
from helpers.data import datasets
from helpers.train import autotrain

ROWS = datasets.load_split("train", limit=3)


def config(tmp_path, **params):
    """A small llm-sft config for the embedded model, with `params` overriding the CPU settings."""
    data = autotrain.write_data(ROWS, tmp_path / "data")
    return {
        "task": "llm-sft", "base_model": str(tmp_path / "base"), "project_name": "unit-test",
        "log": "none", "backend": "local",
        "data": {"path": str(data), "train_split": "train", "valid_split": None,
                 "chat_template": "tokenizer", "column_mapping": {"text_column": "messages"}},
        "params": {"block_size": 128, "epochs": 1, "batch_size": 2, "lr": 1e-3, "peft": True,
                   "quantization": None, "mixed_precision": None, "optimizer": "adamw_torch", **params},
    }


def test_missing_environment_says_how_to_create_it(tmp_path):
    with pytest.raises(autotrain.AutoTrainError, match="make autotrain"):
        autotrain.executable(tmp_path / "no-venv")


def test_data_layout_keeps_only_the_messages(tmp_path):
    folder = autotrain.write_data(ROWS, tmp_path / "data")
    lines = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    assert [line["messages"] for line in lines] == [row["messages"] for row in ROWS]
    assert all(set(line) == {"messages"} for line in lines) and "db_id" in ROWS[0]


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """AutoTrain's verdict on a good config and three bad ones, from one start of its parser."""
    tmp = tmp_path_factory.mktemp("configs")
    configs = {"good": config(tmp, lora_r=8), "misspelled": config(tmp, learning_rate=1e-3),
               "bad-value": config(tmp, epochs="two"), "bad-name": {**config(tmp), "project_name": "runs/x_y"}}
    paths = {name: autotrain.write_config(cfg, tmp / f"{name}.yml") for name, cfg in configs.items()}
    results = autotrain.check_configs(list(paths.values()))
    return {name: results[str(path)] for name, path in paths.items()}


def test_config_is_checked_by_autotrains_own_parameter_class(checked):
    params = checked["good"]
    assert params["trainer"] == "sft" and params["text_column"] == "messages"
    assert params["lora_r"] == 8 and params["quantization"] is None and params["peft"] is True
    assert params["lora_alpha"] == 32  # a default filled in by AutoTrain, not by us
    assert params["push_to_hub"] is False


def test_a_misspelled_key_is_an_error_not_a_silent_default(checked):
    assert "silently ignore learning_rate" in checked["misspelled"]


def test_a_bad_value_names_the_field(checked):
    assert "epochs" in checked["bad-value"] and "integer" in checked["bad-value"]
    assert "alphanumeric" in checked["bad-name"]


def test_check_config_raises_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(autotrain, "check_configs", lambda paths, venv: {str(paths[0]): "ValueError: bad"})
    with pytest.raises(autotrain.AutoTrainError, match=r"c\.yml: AutoTrain rejects this config: ValueError: bad"):
        autotrain.check_config(tmp_path / "c.yml")
    monkeypatch.setattr(autotrain, "check_configs", lambda paths, venv: {str(paths[0]): {"lr": 0.1}})
    assert autotrain.check_config(tmp_path / "c.yml") == {"lr": 0.1}


def test_legacy_model_folder_computes_the_same_logits_in_autotrains_transformers(embedded, tmp_path):
    model, tokenizer = embedded
    legacy = autotrain.legacy_model_dir(models.embedded_model_dir(), tmp_path / "legacy")
    assert (legacy / "model.safetensors").is_symlink()
    unfixed = autotrain.legacy_model_dir(models.embedded_model_dir(), tmp_path / "unfixed")
    cfg = json.loads((unfixed / "config.json").read_text())
    del cfg["rope_theta"]
    (unfixed / "config.json").write_text(json.dumps(cfg))
    text = "SELECT name FROM employees WHERE salary > 50000 ORDER BY name"
    script = textwrap.dedent(f"""
        import json, sys, torch, transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
        out = {{"version": transformers.__version__}}
        for name in ("legacy", "unfixed"):
            path = {str(tmp_path)!r} + "/" + name
            tok = AutoTokenizer.from_pretrained(path)
            ids = tok({text!r}, return_tensors="pt")
            with torch.no_grad():
                out[name] = AutoModelForCausalLM.from_pretrained(path)(**ids).logits[0, -1].tolist()
            out["ids"] = ids["input_ids"][0].tolist()
        print(json.dumps(out))
    """)
    result = subprocess.run([str(autotrain.executable().parent / "python"), "-c", script],
                            capture_output=True, text=True, check=True)
    theirs = json.loads(result.stdout.strip().splitlines()[-1])
    assert theirs["version"].startswith("4.")
    ids = tokenizer(text, return_tensors="pt")
    assert ids["input_ids"][0].tolist() == theirs["ids"]
    with torch.no_grad():
        ours = model(**ids).logits[0, -1]
    assert torch.allclose(ours, torch.tensor(theirs["legacy"]), atol=1e-3)
    assert (ours - torch.tensor(theirs["unfixed"])).abs().max() > 0.1  # rope_theta matters


def test_a_failed_training_is_reported_although_autotrain_exits_with_0(tmp_path, monkeypatch, capsys):
    fake_token = "hf_FAKEtokenFORtests0123456789"
    monkeypatch.setenv("HF_TOKEN", fake_token)
    cfg = {**config(tmp_path), "hub": {"username": "learner", "token": "${HF_TOKEN}", "push_to_hub": False}}
    path = autotrain.write_config(cfg, tmp_path / "config.yml")  # base/ does not exist
    with pytest.raises(autotrain.AutoTrainError, match=r"AutoTrain failed: .*base(?s:.*)Full log: .*unit-test\.log"):
        autotrain.run(path, tmp_path)
    log = (tmp_path / "unit-test.log").read_text()
    assert "Job ID" in log  # AutoTrain itself carried on as if all were well
    shown = capsys.readouterr().out
    assert "Starting local training" in shown and "| INFO" not in shown  # its messages, without log noise
    written = [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
    assert written and not any(fake_token in text for text in written + [shown])
    assert json.loads((tmp_path / "unit-test" / "training_params.json").read_text())["token"] is None


def test_redact_hides_the_hub_token(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_123")
    assert autotrain.redact("token=hf_secret_value_123 ok") == "token=***** ok"
    monkeypatch.delenv("HF_TOKEN")
    assert autotrain.redact("nothing to hide") == "nothing to hide"


LOG = """\
INFO | x | autotrain.parser:run:224 - {'model': 'm', 'epochs': 2, 'lr': 0.001}
  0%|          | 0/4 [00:00<?, ?it/s]
 25%|██▌       | 1/4 [00:08<00:24,  8.0s/it]INFO     | t | autotrain.trainers.common:on_log:367 - {'loss': 1.8, 'grad_norm': 1.0, 'learning_rate': 0.001, 'epoch': 0.5}
 50%|█████     | 2/4 [00:16<00:16,  8.0s/it]INFO     | t | autotrain.trainers.common:on_log:367 - {'loss': 1.2, 'grad_norm': 1.0, 'learning_rate': 0.0005, 'epoch': 1.0}
100%|██████████| 4/4 [00:32<00:00,  8.0s/it]INFO     | t | autotrain.trainers.common:on_log:367 - {'loss': 0.6, 'grad_norm': 1.0, 'learning_rate': 0.0, 'epoch': 2.0}
INFO     | t | autotrain.trainers.common:on_log:367 - {'train_runtime': 32.5, 'train_loss': 1.1, 'epoch': 2.0}
"""


def test_loss_history_is_read_from_the_log_with_real_step_numbers():
    history = autotrain.loss_history(LOG)
    assert history.to_dict("list") == {"step": [1, 2, 4], "split": ["train"] * 3, "loss": [1.8, 1.2, 0.6]}
    assert autotrain.train_summary(LOG) == {"train_runtime": 32.5, "train_loss": 1.1, "epoch": 2.0}
    assert autotrain.loss_history("no training here").empty and autotrain.train_summary("") == {}


def test_progress_bars_and_messages_are_told_apart():
    line = LOG.splitlines()[3]
    match = autotrain.PROGRESS.match(line)
    assert match and match.groups() == ("2", "4")
    assert line[match.end():].startswith("INFO")
    assert not autotrain.PROGRESS.match("Map: 100%|██████████| 48/48 [00:00<00:00, 14569.88 examples/s]")


def test_output_is_split_at_carriage_returns_as_well_as_newlines():
    class Stream:
        def __init__(self, data):
            self.chunks = [data[i:i + 7] for i in range(0, len(data), 7)]

        def read1(self, _size):
            return self.chunks.pop(0) if self.chunks else b""

    pieces = list(autotrain._pieces(Stream(b"a 1/4\r a 2/4\rdone\nlast")))
    assert pieces == ["a 1/4", " a 2/4", "done", "last"]


def test_the_yaml_written_is_the_dict_given(tmp_path):
    cfg = config(tmp_path)
    assert yaml.safe_load(autotrain.write_config(cfg, tmp_path / "c.yml").read_text()) == cfg
