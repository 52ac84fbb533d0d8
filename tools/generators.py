"""What the data generators share (data/<name>/generate.py): writing their splits, their command
line, and loading a generator as a module for the tests."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from helpers.data.datasets import write_jsonl
from helpers.env import DATA_DIR


def write_splits(splits: dict[str, list[dict]], out: Path) -> list[Path]:
    """Each split as <out>/<split>.jsonl (UTF-8, one example per line); the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    return [write_jsonl(rows, out / f"{split}.jsonl") for split, rows in splits.items()]


def main(doc: str, write_all: Callable[[Path, int], list[Path]], default_out: Path, seed: int) -> None:
    """The generators' command line: --out (default: the committed folder) and --seed."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=default_out, help="output folder")
    parser.add_argument("--seed", type=int, default=seed, help="random seed")
    args = parser.parse_args()
    for path in write_all(args.out, args.seed):
        print(f"{path}: {sum(1 for _ in path.open('rb'))} lines" if path.suffix == ".jsonl" else path)


def load(name: str) -> ModuleType:
    """data/<name>/generate.py as a module (the tests compare what it writes with the committed files)."""
    spec = importlib.util.spec_from_file_location(f"generate_{name}", DATA_DIR / name / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module
