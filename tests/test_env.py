import os

import pytest
from huggingface_hub import constants

from helpers import env


def test_dry_run_refuses_a_hub_model():
    with pytest.raises(ValueError, match="dry_run=False"):
        env.configure(dry_run=True, model_id="HuggingFaceTB/SmolLM2-360M-Instruct")


def test_embedded_model_goes_offline_even_after_import():
    env.set_offline(False)
    assert constants.HF_HUB_OFFLINE is False
    assert env.configure(dry_run=False, model_id="") is True
    assert constants.HF_HUB_OFFLINE is True
    assert all(os.environ[v] == "1" for v in env.OFFLINE_VARS)


def test_hub_model_outside_dry_run_allows_network():
    try:
        assert env.configure(dry_run=False, model_id="org/some-model") is False
        assert "HF_HUB_OFFLINE" not in os.environ and constants.HF_HUB_OFFLINE is False
    finally:
        env.set_offline(True)


def test_local_folder_counts_as_local(tmp_path):
    assert env.is_local_model(str(tmp_path)) and env.is_local_model("")
    assert not env.is_local_model("org/some-model")


def test_cache_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FT_COURSE_CACHE", str(tmp_path / "c"))
    assert env.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()


# transformers 5 kernelizes a model it loads on a GPU by default, fetching e.g. kernels-community/rotary from the hub.
# These tests take that path on the CPU: the model is told it runs on CUDA (compute capability 9.0, an H100/H200).
@pytest.fixture
def gpu_kernel_path(monkeypatch, tmp_path):
    import torch
    from transformers import PreTrainedModel

    original = PreTrainedModel.set_use_kernels

    def set_use_kernels(self, use_kernels, *args, **kwargs):
        self._kernels_device = "cuda"  # what from_pretrained records for device_map={"": "cuda"}
        return original(self, use_kernels, *args, **kwargs)

    monkeypatch.setattr(PreTrainedModel, "set_use_kernels", set_use_kernels)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setenv("KERNELS_CACHE", str(tmp_path / "kernels"))  # nothing downloaded yet
    monkeypatch.delenv(env.KERNELS_VAR, raising=False)
    monkeypatch.delenv("_FT_COURSE_SET_USE_HUB_KERNELS", raising=False)
    env.set_offline(True)
    monkeypatch.setattr(env, "on_gpu", lambda: True)  # from here on the notice is printed, as on a GPU
    monkeypatch.setattr(env, "_notified", set())
    return tmp_path / "kernels"


def test_the_gpu_kernel_path_fails_offline_without_the_course(gpu_kernel_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    from helpers import models

    monkeypatch.delenv(env.KERNELS_VAR, raising=False)  # what set_offline decided, undone
    with pytest.raises(ValueError, match="kernels-community/rotary' is not available in the local cache"):
        AutoModelForCausalLM.from_pretrained(models.embedded_model_dir())


def test_offline_with_no_kernel_cached_loads_without_kernels(gpu_kernel_path, capsys):
    from helpers import models

    model, _ = models.load_model("")
    assert os.environ[env.KERNELS_VAR] == "NO" and not model.use_kernels
    notices = [line for line in capsys.readouterr().out.splitlines() if "hub kernels" in line]
    assert notices == ["Note: hub kernels: the hub is offline and none is cached, so models use PyTorch's own layers "
                       "(no download)."]


def test_a_kernel_missing_from_a_partial_cache_is_skipped(gpu_kernel_path, capsys):
    from helpers import models

    (gpu_kernel_path / "kernels--kernels-community--activation" / "refs").mkdir(parents=True)  # another kernel
    assert env.hub_kernels() and env.KERNELS_VAR not in os.environ  # something is cached: kernels may be tried
    model = models.from_pretrained(str(models.embedded_model_dir()))
    assert not model.use_kernels and os.environ[env.KERNELS_VAR] == "NO"
    out = capsys.readouterr().out
    assert "one is not cached and the hub is offline (Version 2 of 'kernels-community/rotary'" in out


def test_going_online_gives_kernels_back_but_a_users_choice_stays(gpu_kernel_path, monkeypatch):
    assert os.environ[env.KERNELS_VAR] == "NO"
    env.set_offline(False)
    try:
        assert env.KERNELS_VAR not in os.environ  # online: transformers may fetch them
        monkeypatch.setenv(env.KERNELS_VAR, "NO")  # the learner's own setting
        env.set_offline(True)
        env.set_offline(False)
        assert os.environ[env.KERNELS_VAR] == "NO"
    finally:
        env.set_offline(True)


def test_loads_without_the_kernels_package(tmp_path):
    """transformers 5.25 refuses every load when `kernels` is missing, unless hub kernels are switched off."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['kernels'] = None\n"
            "from helpers import env, models\n"
            "env.set_offline(True)\n"
            "model, _ = models.load_model('')\n"
            "print('loaded', model.num_parameters())\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=env.ROOT, capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != env.KERNELS_VAR})
    assert "loaded 134515008" in done.stdout, done.stderr[-2000:]
