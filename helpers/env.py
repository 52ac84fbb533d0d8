"""Where the course runs: offline switches, cache folders, paths."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
# transformers (5.x) replaces some layers with kernels fetched from the hub when a model loads on a GPU,
# unless this variable says NO; `hub_kernels` sets it while none can be had.
KERNELS_VAR = "USE_HUB_KERNELS"
_KERNELS_OFF_BY_US = "_FT_COURSE_SET_USE_HUB_KERNELS"  # marks a NO the course set (inherited by subprocesses)
_notified: set[str] = set()


def is_local_model(model_id: str | None) -> bool:
    """True for the embedded model ("" or None) and for a folder on disk."""
    return not model_id or Path(model_id).expanduser().is_dir()


def set_offline(offline: bool = True) -> None:
    """Forbid (or allow) every Hugging Face hub call, before or after the libraries load."""
    for var in OFFLINE_VARS:
        if offline:
            os.environ[var] = "1"
        else:
            os.environ.pop(var, None)
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = offline
    hub_kernels()


def configure(dry_run: bool, model_id: str | None = "") -> bool:
    """Go offline unless a hub model is asked for outside a dry run; return the offline state."""
    if dry_run and not is_local_model(model_id):
        raise ValueError(
            f"model_id={model_id!r} is a hub id, but a dry run never uses the network. "
            "Set dry_run=False to download it, or leave model_id empty for the embedded model."
        )
    offline = is_local_model(model_id)
    set_offline(offline)
    return offline


def cache_dir() -> Path:
    """Folder for converted models; FT_COURSE_CACHE overrides ~/.cache/fine-tuning-course."""
    default = Path.home() / ".cache" / "fine-tuning-course"
    path = Path(os.environ.get("FT_COURSE_CACHE", default)).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline_now() -> bool:
    """Whether the hub is switched off in this process."""
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


def cached_hub_kernels() -> list[str]:
    """Hub kernels downloaded before (the kernels library keeps them as kernels--<org>--<name> folders in the hub
    cache, or under KERNELS_CACHE)."""
    from huggingface_hub import constants

    folder = Path(os.environ.get("KERNELS_CACHE") or constants.HF_HUB_CACHE)
    return sorted(p.name for p in folder.glob("kernels--*")) if folder.is_dir() else []


def hub_kernels() -> bool:
    """Let transformers use hub kernels only where they can be had: the `kernels` package is installed, and the
    hub is reachable or kernels are already cached. Otherwise set USE_HUB_KERNELS=NO (for this process and what
    it starts), so that loading a model on a GPU uses PyTorch's own layers instead of failing offline, and say
    so once where it matters (on a GPU). A value the user set is left alone. Returns whether kernels may be used."""
    if os.environ.get(KERNELS_VAR) is not None and not os.environ.get(_KERNELS_OFF_BY_US):
        return os.environ[KERNELS_VAR].upper() not in ("0", "NO", "OFF", "FALSE")
    if importlib.util.find_spec("kernels") is None:
        why = "the kernels package is not installed"
    elif offline_now() and not cached_hub_kernels():
        why = "the hub is offline and none is cached"
    else:
        why = ""
    if not why:
        if os.environ.pop(_KERNELS_OFF_BY_US, None):
            os.environ.pop(KERNELS_VAR, None)
        return True
    hub_kernels_off(why)
    return False


def hub_kernels_off(why: str) -> None:
    """Switch hub kernels off for this process and what it starts, with a one-line notice on a GPU."""
    os.environ[KERNELS_VAR], os.environ[_KERNELS_OFF_BY_US] = "NO", "1"
    notify(f"hub kernels: {why}, so models use PyTorch's own layers (no download)", gpu_only=True)


def notify(message: str, gpu_only: bool = False) -> None:
    """Print a one-line notice once per process; with gpu_only, only where a CUDA GPU is present."""
    if message in _notified or (gpu_only and not on_gpu()):
        return
    _notified.add(message)
    print(f"Note: {message}.", flush=True)


def on_gpu() -> bool:
    """Whether PyTorch sees a CUDA GPU."""
    import torch

    return torch.cuda.is_available()
