"""scripts/sft.py under real launchers: two CPU ranks that really share the work (gloo, DDP), the same
training as one process with the same global batch, a clear refusal when the launcher and the trainer
disagree, a failing rank that fails the whole launch, and every shipped accelerate config parsed the way
`accelerate launch` parses it. A 2-layer model built from a config keeps each launch to seconds."""

import json
import os
import signal
import subprocess
import sys
from types import SimpleNamespace
from unittest import mock

import pytest
import torch
from safetensors.torch import load_file

from helpers.env import ROOT

SCRIPT = ROOT / "scripts" / "sft.py"
CONFIGS = sorted((ROOT / "configs" / "accelerate").glob("*.yaml"))
ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch"]
LIMIT = 240  # seconds for one launch before the test fails (and kills the launch's processes)


def launch(command: list[str], out, extra_env=None) -> subprocess.CompletedProcess:
    """Run a launch in its own process group with a hard time limit; whatever happens, no process of
    the group is left afterwards."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(extra_env or {})}
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True) as proc:
        try:
            output, _ = proc.communicate(timeout=LIMIT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            pytest.fail(f"the launch did not end within {LIMIT} s:\n{output[-3000:]}")
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # no rank, launcher or helper process left behind
    return subprocess.CompletedProcess(command, proc.returncode, output)


def train_args(tiny_model_dir, out, batch: int, *extra: str) -> list[str]:
    return [str(SCRIPT), "--model_name_or_path", str(tiny_model_dir), "--output_dir", str(out), "--max_steps", "4",
            "--per_device_train_batch_size", str(batch), "--max_train_samples", "64", "--parity", "--record", *extra]


@pytest.fixture(scope="module")
def one_and_two(tiny_model_dir, tmp_path_factory):
    """The same 4 steps with a global batch of 4: 1 process x 4, then 2 CPU processes x 2 over gloo."""
    out = tmp_path_factory.mktemp("parity")
    single = launch([sys.executable, *train_args(tiny_model_dir, out / "one", 4)], out)
    double = launch([*ACCELERATE, "--config_file", str(ROOT / "configs/accelerate/cpu_ddp.yaml"),
                     *train_args(tiny_model_dir, out / "two", 2)], out, {"ACCELERATE_USE_CPU": "1"})
    assert single.returncode == 0 and double.returncode == 0, single.stdout[-3000:] + double.stdout[-3000:]
    return [json.loads((out / name / "report.json").read_text()) | {"dir": out / name} for name in ("one", "two")]


def test_two_ranks_really_train_together_over_gloo(one_and_two):
    _, two = one_and_two
    assert (two["launcher_world_size"], two["world_size"], two["backend"]) == (2, 2, "gloo")
    assert two["engine"] == "DistributedDataParallel" and two["global_batch"] == 4
    ranks = sorted(two["ranks"], key=lambda r: r["rank"])
    assert set(ranks[0]["examples"]).isdisjoint(ranks[1]["examples"])  # each rank its own half of each batch
    assert len(ranks[0]["gradient_sums"]) == 4  # recorded at every optimizer step
    assert ranks[0]["gradient_sums"] == pytest.approx(ranks[1]["gradient_sums"], abs=0, rel=1e-12)  # all-reduced


def test_two_processes_reproduce_one_with_the_same_global_batch(one_and_two):
    one, two = one_and_two
    assert len(one["losses"]) == len(two["losses"]) == 4
    assert max(abs(a - b) for a, b in zip(one["losses"], two["losses"], strict=True)) < 1e-5
    first_batch = set(one["ranks"][0]["examples"][:4])
    assert first_batch == set(two["ranks"][0]["examples"][:2]) | set(two["ranks"][1]["examples"][:2])
    assert two["ranks"][0]["gradient_sums"][0] == pytest.approx(one["ranks"][0]["gradient_sums"][0], rel=1e-5)
    a = load_file(one["dir"] / "adapter" / "adapter_model.safetensors")
    b = load_file(two["dir"] / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
    assert max((a[k]).abs().max().item() for k in a if "lora_B" in k) > 1e-4  # the adapters did move


def test_a_rank_that_fails_fails_the_whole_launch_with_its_error(tiny_model_dir, tmp_path):
    failed = launch([*ACCELERATE, "--config_file", str(ROOT / "configs/accelerate/cpu_ddp.yaml"),
                     *train_args(tiny_model_dir, tmp_path / "run", 2, "--fail_on_rank", "1")], tmp_path,
                    {"ACCELERATE_USE_CPU": "1"})
    assert failed.returncode != 0
    assert "rank 1 failed on purpose (--fail_on_rank 1)" in failed.stdout
    assert not (tmp_path / "run" / "report.json").exists()


def test_a_config_that_asks_for_more_gpus_than_the_machine_has_is_refused_before_anything_loads(tiny_model_dir, tmp_path):
    gpus = torch.cuda.device_count()
    refused = launch([*ACCELERATE, "--config_file", str(ROOT / "configs/accelerate/multi_gpu.yaml"),
                      "--num_processes", str(max(gpus + 1, 2)), *train_args(tiny_model_dir, tmp_path / "run", 2)], tmp_path)
    assert refused.returncode != 0
    assert f"starts {max(gpus + 1, 2)} processes with a GPU each, but this machine has {gpus} GPU" in refused.stdout
    assert "Loaded " not in refused.stdout and not (tmp_path / "run").exists()  # no model, no output folder


def test_fsdp2_really_shards_over_gloo_and_reproduces_one_process(tiny_model_dir, tmp_path):
    """accelerate runs FSDP configs as DDP on CPUs; the instrument applies FSDP2's fully_shard itself."""
    instrument = ["-m", "helpers.train.distributed", "--model_name_or_path", str(tiny_model_dir), "--max_steps", "4",
                  "--global_batch", "4"]
    one = launch([sys.executable, *instrument, "--output_dir", str(tmp_path / "one")], tmp_path)
    two = launch([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", *instrument,
                  "--output_dir", str(tmp_path / "two")], tmp_path, {"CUDA_VISIBLE_DEVICES": ""})
    assert one.returncode == 0 and two.returncode == 0, one.stdout[-3000:] + two.stdout[-3000:]
    single, sharded = (json.loads((tmp_path / run / "report.json").read_text()) for run in ("one", "two"))
    assert (sharded["world_size"], sharded["backend"], sharded["sharding"]) == (2, "gloo", "FSDP2 fully_shard")
    for rank in sharded["ranks"]:  # each rank holds half of every kind of parameter, not a copy
        for kind in ("frozen", "trainable"):
            assert rank["held"][kind] == pytest.approx(rank["total"][kind] / 2, rel=0.02), (rank, kind)
    assert single["ranks"][0]["held"] == single["ranks"][0]["total"]
    assert max(abs(a - b) for a, b in zip(single["losses"], sharded["losses"], strict=True)) < 1e-5
    a, b = (load_file(tmp_path / run / "adapter" / "adapter_model.safetensors") for run in ("one", "two"))
    assert a.keys() == b.keys() and max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
    assert max(v.abs().max().item() for k, v in a.items() if "lora_B" in k) > 1e-4  # the adapters did move
    assert "did not run forward before backward" not in two.stdout  # the tied LM head, read by TRL's head


@pytest.mark.parametrize("processes, distributed, backend", [(1, "DistributedType.DEEPSPEED", "gloo"),
                                                             (1, "DistributedType.NO", None),
                                                             (2, "DistributedType.MULTI_CPU", None)])
def test_the_script_refuses_when_the_launcher_and_the_trainer_disagree(monkeypatch, processes, distributed, backend):
    """What each rank sees when a DeepSpeed config is launched on CPUs without the CPU switch (seen with
    deepspeed 0.19.8: each rank trains as 1 of 1), when a launcher sets WORLD_SIZE but the trainer runs
    alone, and when two processes never joined a process group."""
    from helpers.train import distributed

    monkeypatch.setenv("WORLD_SIZE", "2")
    accelerator = SimpleNamespace(num_processes=processes, distributed_type=distributed)
    with mock.patch("torch.distributed.is_initialized", return_value=backend is not None), \
            mock.patch("torch.distributed.get_backend", return_value=backend), \
            pytest.raises(SystemExit, match="launcher started 2 processes, but this one trains as .* not data parallelism"):
        distributed.check_world(accelerator)
    monkeypatch.setenv("WORLD_SIZE", str(processes))
    with mock.patch("torch.distributed.is_initialized", return_value=True), \
            mock.patch("torch.distributed.get_backend", return_value="gloo"):
        assert distributed.check_world(accelerator)["world_size"] == processes  # agreeing launches pass


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_is_parsed_as_accelerate_launch_parses_it(path):
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import DeepSpeedPlugin, FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    args, defaults, _ = _validate_launch_command(launch_command_parser().parse_args(["--config_file", str(path), str(SCRIPT)]))
    expected = {"single_gpu": (1, False), "multi_gpu": (2, True), "cpu_ddp": (2, True), "fsdp2": (2, False),
                "zero2": (2, False), "zero3": (2, False)}[path.stem]
    assert (args.num_processes, bool(args.multi_gpu)) == expected
    if args.use_fsdp:
        with mock.patch.dict(os.environ, prepare_multi_gpu_env(args)):
            plugin = FullyShardedDataParallelPlugin()
        assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
        assert plugin.auto_wrap_policy.__name__ == "transformer_auto_wrap_policy"
        assert str(plugin.state_dict_type) == "StateDictType.FULL_STATE_DICT"
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = ",".join([*defaults.deepspeed_config, "mixed_precision"])
        _, ds_env = prepare_deepspeed_cmd_env(args)
        with mock.patch.dict(os.environ, ds_env):
            plugin = DeepSpeedPlugin()
        assert plugin.zero_stage == int(path.stem[-1]) and plugin.zero3_init_flag == (path.stem == "zero3")


def test_the_memory_arithmetic_gives_the_zero_papers_figures():
    """ZeRO (Rajbhandari et al., 2020), figure 1: a 7.5B-parameter model on 64 GPUs with mixed-precision
    Adam needs 120 GB per GPU with DDP, 16.6 GB with gradients and optimizer state sharded, 1.9 GB with
    everything sharded."""
    from helpers.train import distributed

    gib = distributed.memory_per_gpu(7.5e9, 7.5e9, 64).iloc[:, 0] * 2**30 / 1e9  # back to GB
    assert list(gib.round(1)) == [120.0, 16.6, 1.9]
    lora = distributed.memory_per_gpu(7.5e9, 0.0, 1).iloc[:, 0] * 2**30 / 1e9
    assert list(lora.round(1)) == [15.0, 15.0, 15.0]  # frozen weights only: 2 bytes each


def test_a_failed_launch_is_reported_with_the_end_of_its_log(tmp_path):
    from helpers.errors import CourseError
    from helpers.train import distributed

    with pytest.raises(CourseError, match=r"(?s)broken launch failed \(exit 3\).*rank 0 says why"):
        distributed.run([sys.executable, "-c", "import sys; print('rank 0 says why'); sys.exit(3)"], tmp_path, 2,
                        label="broken launch")


class OnGPU:
    """A row of a batch as the trainer hands it over on a GPU: numpy() refuses until it is copied back."""

    def __init__(self, values):
        self.values = torch.as_tensor(values)

    def __ne__(self, other):
        return self.values != other

    def __getitem__(self, mask):
        return OnGPU(self.values[mask])

    def numpy(self):
        raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() first")

    def cpu(self):
        return self.values


def test_the_batch_record_reads_batches_that_live_on_a_gpu():
    from accelerate.utils import DistributedType

    from helpers.train import distributed

    trainer = SimpleNamespace(processing_class=SimpleNamespace(pad_token_id=0), training_step=lambda model, inputs: 1.0,
                              accelerator=SimpleNamespace(process_index=0, distributed_type=DistributedType.NO),
                              add_callback=lambda callback: None)
    record = distributed.Record(trainer, {})
    assert trainer.training_step(None, {"input_ids": [OnGPU([5, 6, 0]), OnGPU([5, 6]), OnGPU([7, 0])]}) == 1.0
    seen = record.examples
    assert len(seen) == 3 and seen[0] == seen[1] != seen[2]  # padding left out of the digest
