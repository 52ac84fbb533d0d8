"""Where the course runs: offline switches, cache folders, paths."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


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
