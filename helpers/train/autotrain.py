"""Hugging Face AutoTrain Advanced, driven from the course's environment: it lives in its own
virtual environment (its pinned stack clashes with ours), so we write its data and YAML config,
check the config with AutoTrain's own classes, run its command line and read what it produced."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from helpers.data.datasets import write_jsonl
from helpers.env import OFFLINE_VARS, ROOT
from helpers.errors import CourseError

VENV = ROOT / ".venv-autotrain"
VERSION = "0.8.36"  # the last release (January 2025); the project has not been maintained since
PROGRESS = re.compile(r"^\s*\d+%\|[^|]*\|\s*(\d+)/(\d+) \[[^\]]*(?:it/s|s/it)\]")
LOG_LINE = re.compile(r"^(INFO|WARNING|ERROR|CRITICAL)\s+\|[^|]*\|\s*\S+ - (.*)")  # loguru's format
LOSS_LINE = re.compile(r"on_log:\d+ - (\{.*\})\s*$")
PROBLEM = re.compile(r"\| ERROR +\||Failed to merge adapter|^\w*Error: ")
SECRET_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
MODEL_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


class AutoTrainError(CourseError):
    """AutoTrain failed or is missing; the message says what happened and what to do."""


def executable(venv: Path = VENV) -> Path:
    """The `autotrain` command of its virtual environment, or an error on how to create it."""
    path = Path(venv) / "bin" / "autotrain"
    if not path.exists():
        raise AutoTrainError(f"AutoTrain is not installed in {venv}. Create its environment with "
                             "`make autotrain` (about 3 GB and a few minutes; it is kept apart because "
                             f"autotrain-advanced=={VERSION} pins old transformers, trl and peft).")
    return path


def legacy_model_dir(model_dir: str | Path, out_dir: str | Path) -> Path:
    """A copy of a model folder saved by transformers 5 that transformers 4.x (AutoTrain's) reads the
    same way: weights linked, not copied; rope_theta and the tokenizer class written the old way."""
    model_dir, out_dir = Path(model_dir).resolve(), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in model_dir.iterdir():
        target = out_dir / item.name
        if item.name not in ("config.json", "tokenizer_config.json") and not target.exists():
            target.symlink_to(item)
    config = json.loads((model_dir / "config.json").read_text())
    rope = config.get("rope_parameters") or {}
    if "rope_theta" in rope:  # without it transformers 4 silently falls back to 10,000
        config.setdefault("rope_theta", rope["rope_theta"])
    config.setdefault("torch_dtype", config.get("dtype", "float32"))
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tok = json.loads((model_dir / "tokenizer_config.json").read_text())
    if tok.get("tokenizer_class") == "TokenizersBackend":  # the v5 name; v4 knows the fast class
        tok["tokenizer_class"] = "PreTrainedTokenizerFast"
    if tok.get("model_max_length", 0) > 1e9:
        tok["model_max_length"] = config.get("max_position_embeddings", 2048)
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tok, indent=2) + "\n")
    return out_dir


def write_data(rows: list[dict], folder: str | Path, split: str = "train") -> Path:
    """AutoTrain's local data layout: `<folder>/<split>.jsonl`, one {"messages": [...]} per line."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl([{"messages": r["messages"]} for r in rows], folder / f"{split}.jsonl")
    return folder


def write_config(config: dict, path: str | Path) -> Path:
    """Save a config dict as the YAML file `autotrain --config` reads."""
    import yaml

    path = Path(path)
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


CHECK_SCRIPT = """
import json, sys
from autotrain.parser import AutoTrainConfigParser
results = []
for path in sys.argv[1:]:
    try:
        parser = AutoTrainConfigParser(path)
        cls = parser.task_param_map[parser.task]
        unknown = sorted(set(parser.parsed_config) - set(cls.model_fields))
        if unknown:
            raise ValueError(f"AutoTrain would silently ignore {', '.join(unknown)} "
                             f"(not fields of {cls.__name__}); check their spelling")
        results.append(cls(**parser.parsed_config).model_dump(mode="json"))
    except Exception as err:
        results.append(f"{type(err).__name__}: {err}")
print(json.dumps(results))
"""


def check_configs(paths: list[str | Path], venv: Path = VENV) -> dict[str, dict | str]:
    """Parse YAML configs with AutoTrain's own parser and parameter class, inside its environment
    (one start-up of about 10 s for all): full parameters for each good file, an error message for
    each bad one, including keys AutoTrain would ignore without a word."""
    python = executable(venv).parent / "python"
    result = subprocess.run([str(python), "-c", CHECK_SCRIPT, *map(str, paths)], capture_output=True,
                            text=True, env={**os.environ, **dict.fromkeys(OFFLINE_VARS, "1")})
    if result.returncode != 0:
        raise AutoTrainError(f"AutoTrain's parser did not start:\n{result.stderr.strip()[-1500:]}")
    return dict(zip(map(str, paths), json.loads(result.stdout.strip().splitlines()[-1]), strict=False))


def check_config(path: str | Path, venv: Path = VENV) -> dict:
    """AutoTrain's full parameters for one config file, or an AutoTrainError naming the file and
    the problem."""
    checked = check_configs([path], venv)[str(path)]
    if isinstance(checked, str):
        raise AutoTrainError(f"{path}: AutoTrain rejects this config: {checked}")
    return checked


@dataclass
class Run:
    """What one `autotrain --config` run left behind."""

    project_dir: Path
    log_path: Path
    seconds: float
    steps: int
    log: str

    @property
    def model_dir(self) -> Path:
        """The folder holding the merged model."""
        return self.project_dir


def _env(venv: Path, offline: bool) -> dict:
    """AutoTrain's environment: its venv first on PATH (it calls `accelerate`), all cores, unbuffered."""
    env = {**os.environ, "PATH": f"{Path(venv) / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))  # accelerate --cpu defaults to 1 thread
    env.pop("VIRTUAL_ENV", None)
    if offline:
        env.update(dict.fromkeys(OFFLINE_VARS, "1"))
    return env


def _pieces(stream):
    """Yield the text of a byte stream piece by piece, split at newlines and carriage returns."""
    buffer = ""
    for chunk in iter(lambda: stream.read1(4096), b""):
        buffer += chunk.decode("utf-8", errors="replace")
        *done, buffer = re.split(r"[\r\n]", buffer)
        yield from done
    if buffer:
        yield buffer


def run(config_path: str | Path, workdir: str | Path, venv: Path = VENV, offline: bool = True,
        echo: bool = True) -> Run:
    """Run `autotrain --config` in `workdir`, streaming its messages and a progress bar over the
    training steps; the full output goes to `<project>.log`. Raises AutoTrainError on failure."""
    import yaml

    config_path, workdir = Path(config_path).resolve(), Path(workdir).resolve()
    project = yaml.safe_load(config_path.read_text())["project_name"]
    log_path = workdir / f"{project}.log"
    cmd = [str(executable(venv)), "--config", str(config_path)]
    start, steps, bar, seen = time.perf_counter(), 0, None, set()
    with log_path.open("w") as log, subprocess.Popen(cmd, cwd=workdir, env=_env(venv, offline),
                                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        for piece in map(redact, _pieces(proc.stdout)):
            log.write(piece + "\n")
            match = PROGRESS.match(piece)
            if match:  # a training progress bar, perhaps with a log message glued after it
                done, steps = int(match.group(1)), int(match.group(2))
                bar = bar or tqdm(total=steps, desc="AutoTrain training", unit="step")
                bar.update(done - bar.n)
                piece = piece[match.end():]
            message = LOG_LINE.match(piece)
            if echo and message and piece not in seen:
                seen.add(piece)
                level, text = message.groups()
                print(f"{'' if level == 'INFO' else level + ': '}{text[:200]}", flush=True)
    if bar:
        bar.close()
    _scrub_token(workdir / project / "training_params.json")
    result = Run(workdir / project, log_path, time.perf_counter() - start, steps, log_path.read_text())
    check_run(result, proc.returncode)
    return result


def redact(text: str) -> str:
    """Hide the Hugging Face token, should AutoTrain ever print it."""
    for name in SECRET_VARS:
        secret = os.environ.get(name, "")
        if len(secret) >= 8:
            text = text.replace(secret, "*****")
    return text


def _scrub_token(params_file: Path) -> None:
    """AutoTrain writes the Hub token into training_params.json in clear; remove it."""
    if params_file.exists():
        params = json.loads(params_file.read_text())
        if params.get("token"):
            params["token"] = None
            params_file.write_text(json.dumps(params, indent=4))


def check_run(result: Run, returncode: int) -> None:
    """Raise AutoTrainError when the run failed, even though `autotrain` itself exited with 0."""
    problems = [ln.strip() for ln in result.log.splitlines() if PROBLEM.search(ln)]
    has_model = any((result.project_dir / name).exists() for name in MODEL_FILES)
    if returncode == 0 and not problems and has_model:
        return
    why = problems[-1] if problems else (f"exit status {returncode}" if returncode else
                                         f"no model was saved in {result.project_dir}")
    raise AutoTrainError(f"AutoTrain failed: {why[:400]}\nFull log: {result.log_path}")


def loss_history(log: str) -> pd.DataFrame:
    """Training loss per logged step from AutoTrain's log (it keeps no trainer state), in the
    shape `plots.plot_loss` takes; steps are counted from the logging interval."""
    losses = [entry for entry in _logged(log) if "loss" in entry]
    epochs = [entry["epoch"] for entry in losses]
    per_epoch = _steps_per_epoch(log)
    rows = [{"step": round(epoch * per_epoch) if per_epoch else i + 1, "split": "train", "loss": entry["loss"]}
            for i, (epoch, entry) in enumerate(zip(epochs, losses, strict=False))]
    return pd.DataFrame(rows, columns=["step", "split", "loss"])


def _steps_per_epoch(log: str) -> float:
    """Optimizer steps per epoch: the progress bar's total over the configured epochs."""
    totals = [int(m.group(2)) for m in map(PROGRESS.match, re.split(r"[\r\n]", log)) if m]
    epochs = re.search(r"'epochs': (\d+)", log)
    return totals[-1] / int(epochs.group(1)) if totals and epochs else 0.0


def train_summary(log: str) -> dict:
    """The trainer's closing figures (train_runtime, train_loss, ...) from AutoTrain's log."""
    return next((entry for entry in reversed(_logged(log)) if "train_loss" in entry), {})


def _logged(log: str) -> list[dict]:
    """Every dict the trainer logged (losses, then the closing figures), in order."""
    return [ast.literal_eval(m.group(1)) for m in map(LOSS_LINE.search, log.splitlines()) if m]
