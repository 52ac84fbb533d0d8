"""llama.cpp for laptops: llama.cpp's own converter turns a merged Hugging Face folder into a GGUF
file, and llama-cpp-python's OpenAI-compatible server serves it. Both come from one environment,
`make llamacpp` (.venv-llamacpp): the server compiles from source, and the converter is taken from
the same source package, so the two always match."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers.env import ROOT
from helpers.errors import CourseError

VENV = ROOT / ".venv-llamacpp"
VERSION = "0.3.36"  # llama-cpp-python; it vendors the llama.cpp it is built with
SOURCE = "src/llama.cpp"  # inside the environment: the converter and its gguf-py, unpacked by `make llamacpp`


class LlamaCppError(CourseError):
    """llama.cpp is missing or a conversion failed; the message says what to do."""


def _missing(what: str, venv: Path) -> LlamaCppError:
    return LlamaCppError(f"{what} is not installed in {venv}. Create the llama.cpp environment with `make llamacpp` "
                         f"(llama-cpp-python=={VERSION} compiles from source: a few minutes on 2 cores, needs cmake "
                         "and a C++ compiler); `make run` and `make test` build it too.")


def python(venv: str | Path = VENV) -> Path:
    """The Python of the llama.cpp environment, which runs `-m llama_cpp.server`."""
    path = Path(venv) / "bin" / "python"
    if not path.exists() or subprocess.run([str(path), "-c", "import llama_cpp.server"], capture_output=True).returncode:
        raise _missing("llama-cpp-python's server", Path(venv))
    return path


def why_not(venv: str | Path = VENV) -> str | None:
    """None when the server and the converter are both there; else what is missing and what to run."""
    try:
        python(venv), converter(venv)
    except LlamaCppError as err:
        return str(err)
    return None


def converter(venv: str | Path = VENV) -> Path:
    """llama.cpp's convert_hf_to_gguf.py, unpacked from the llama-cpp-python source package."""
    path = Path(venv) / SOURCE / "convert_hf_to_gguf.py"
    if not path.exists():
        raise _missing("llama.cpp's converter (convert_hf_to_gguf.py)", Path(venv))
    return path


def convert(model_dir: str | Path, out_file: str | Path, outtype: str = "f16", venv: str | Path = VENV) -> Path:
    """Convert a merged model folder to one GGUF file of `outtype` (f32, f16, bf16, q8_0, ...) with
    llama.cpp's converter, run by this Python (it needs torch and transformers, which the course has)
    with the converter's own gguf-py first on the path. Its log goes next to the file."""
    script, out_file = converter(venv), Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    log = out_file.with_suffix(".log")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(script.parent / "gguf-py"), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, str(script), str(model_dir), "--outtype", outtype, "--outfile", str(out_file)]
    with log.open("w") as handle:
        done = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=script.parent)
    if done.returncode or not out_file.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise LlamaCppError(f"llama.cpp's converter failed on {model_dir} (exit {done.returncode}). The end of its log "
                            f"({log}):\n{tail}")
    return out_file
