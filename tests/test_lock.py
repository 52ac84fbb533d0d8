"""The lock: requirements.lock is what the suite runs on, pyproject.toml's ranges start where the suite ran,
and Colab's install cell takes the lock's versions of the course's libraries without touching Colab's torch."""

import sys
from pathlib import Path

import nbformat
import pytest

from helpers.env import ROOT
from tools import lock


def test_every_declared_range_starts_at_a_version_the_suite_ran_on():
    assert lock.problems() == []


def test_an_untested_lower_bound_or_a_lock_outside_the_range_is_named(monkeypatch):
    monkeypatch.setattr(lock, "ranges", lambda: [lock.Requirement("peft>=0.17"), lock.Requirement("trl>=1.0,<1.10"),
                                                 lock.Requirement("openai")])
    found = lock.problems({"peft": "0.21.2", "trl": "1.16.0", "openai": "3.60.0"})
    assert found == ["peft>=0.17: its lower bound 0.17 is not 0.21.2, the lowest version the suite ran on",
                     "trl<1.10,>=1.0: the lock has 1.16.0, outside the range",
                     "openai: no lower bound; the suite ran on 3.60.0"]


@pytest.mark.skipif(Path(sys.prefix).name != ".venv", reason="the environment make install builds from the lock")
def test_this_environment_is_the_lock():
    installed, locked = lock.freeze(Path(sys.prefix)), lock.read()
    assert {name: installed.get(name) for name in locked} == locked


def test_colab_gets_the_locks_versions_of_the_courses_libraries_and_keeps_its_torch():
    colab, locked = lock.read(lock.COLAB), lock.read()
    assert colab.keys() >= {"transformers[serving]", "trl", "peft", "accelerate", "datasets", "bitsandbytes"}
    assert not any(name.startswith(("torch", "numpy", "pandas", "nvidia")) for name in colab)
    for name, version in colab.items():
        assert locked.get(name.split("[")[0], lock.TESTED_FLOORS.get(name)) == version, name
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        install = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code").source
        assert "/content/course/requirements-colab.txt" in install and '"--no-deps", "-e", "/content/course"' in install
