"""The GPU check's CPU half: what it carries to a machine without network, the random-weight stand-in for the
embedded model, its refusal to run without a GPU, and its time budget. The GPU half runs on a GPU machine
(`make gpu-check`)."""

import importlib.metadata
import json
import subprocess
import sys
import time
import zipfile

import pytest
import torch

from helpers import models
from helpers.env import ROOT
from tools import gpu_check


def test_every_carried_package_is_one_this_environment_has_a_version_of():
    missing = []
    for name in (n for names in gpu_check.PACKAGES.values() for n in names):
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    assert missing == []  # bundle pins each at this environment's version


def test_bitsandbytes_keeps_one_cuda_library(tmp_path):
    wheel = tmp_path / "bitsandbytes-0.50.2-py3-none-manylinux_2_24_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name in ("libbitsandbytes_cuda118.so", "libbitsandbytes_cuda130.so", "libbitsandbytes_cuda132.so",
                     "libbitsandbytes_rocm72.so", "libbitsandbytes_cpu.so", "__init__.py"):
            zf.writestr(f"bitsandbytes/{name}", name * 100)
        zf.writestr("bitsandbytes-0.50.2.dist-info/METADATA", "Name: bitsandbytes")
    gpu_check._keep_one_cuda(wheel, "130")
    with zipfile.ZipFile(wheel) as zf:
        kept = sorted(n.split("/")[-1] for n in zf.namelist())
        assert zf.read("bitsandbytes/libbitsandbytes_cuda130.so") == b"libbitsandbytes_cuda130.so" * 100
    assert kept == ["METADATA", "__init__.py", "libbitsandbytes_cpu.so", "libbitsandbytes_cuda130.so"]


def test_without_the_embedded_wheel_a_random_model_of_its_configuration_stands_in(tmp_path, monkeypatch):
    source = tmp_path / "bundle" / gpu_check.EMBEDDED
    source.mkdir(parents=True)
    for name in gpu_check.TOKENIZER_FILES:  # what `bundle` copies: configuration and tokenizer, no weights
        if (models.embedded_model_dir() / name).exists():
            (source / name).write_bytes((models.embedded_model_dir() / name).read_bytes())
    config = json.loads((source / "config.json").read_text())
    config.update(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16)  # a small shape keeps the test to seconds
    (source / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr(gpu_check, "BUNDLE", tmp_path / "bundle")

    def no_wheel(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", no_wheel)
    result = gpu_check.embedded_step(tmp_path / "out")
    assert result["weights"] == "random" and result["versions"]["transformers"]
    monkeypatch.setenv("FT_COURSE_CACHE", str(tmp_path / "out" / "cache"))
    model, tokenizer = models.load_model("")
    assert model.config.num_hidden_layers == 2 and tokenizer.apply_chat_template([{"role": "user", "content": "hi"}],
                                                                                   tokenize=False).count("hi") == 1
    assert json.loads((tmp_path / "out" / "embedded.json").read_text())["weights"] == "random"


def test_no_bundle_and_no_wheel_says_what_to_carry(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "BUNDLE", tmp_path / "nothing")
    monkeypatch.setattr(importlib.metadata, "files", lambda name: (_ for _ in ()).throw(
        importlib.metadata.PackageNotFoundError(name)))
    with pytest.raises(SystemExit, match="run `python -m tools.gpu_check bundle` where there is a network"):
        gpu_check.embedded_step(tmp_path / "out")


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the check runs")
def test_the_check_refuses_a_machine_without_a_gpu(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tools.gpu_check", "run", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "No CUDA GPU here" in done.stderr
    assert not (tmp_path / "report.json").exists()


def test_a_step_past_the_budget_is_skipped_not_started(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "DEADLINE", time.monotonic() - 1)
    marker = tmp_path / "ran"
    result = gpu_check.run_command("late", [sys.executable, "-c", f"open({str(marker)!r}, 'w')"], tmp_path, 60)
    assert result["skipped"] and not result["ok"] and not marker.exists()
    monkeypatch.setattr(gpu_check, "DEADLINE", time.monotonic() + 60)
    slow = gpu_check.run_command("slow", [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path, 1)
    assert slow["timed_out"] and not slow["ok"] and slow["seconds"] < 15  # stopped at its limit, its group killed
