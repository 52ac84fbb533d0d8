"""Shared fixtures: the embedded model is loaded once per session, offline. The session runs with
fake keys in its environment (and in the notebooks' kernels), so a leak of any of them is caught."""

import os
from pathlib import Path

import pytest

from helpers import env

env.set_offline(True)
FAKE_SECRETS = {"OPENAI_API_KEY": "sk-fake-course-secret-4f2a9c7e1b",
                "AZURE_OPENAI_API_KEY": "fakeazurecoursesecret7d3e91b0c2",
                "HF_TOKEN": "hf_fakeCourseSecret8e1d2c3b4a5f",
                "WANDB_API_KEY": "fake-wandb-course-secret-6c5b4a"}
os.environ.update(FAKE_SECRETS)  # real keys are never used by the tests


def files_holding(folder: Path, secrets) -> list[str]:
    """Files under folder whose bytes contain any of the secrets, with the names of those found."""
    found = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        data = path.read_bytes()
        names = [name for name, value in secrets.items() if value.encode() in data]
        if names:
            found.append(f"{path}: {', '.join(names)}")
    return found


@pytest.fixture(scope="session")
def embedded():
    """(model, tokenizer) of the embedded SmolLM2-135M-Instruct, from the conversion cache."""
    from helpers import models

    return models.load_model("")


@pytest.fixture
def company_db():
    from helpers.evaluation import DB_DIR

    return DB_DIR / "company.sqlite"


def pytest_collection_modifyitems(items):
    """Tests marked `last` run after all others (the secret scan reads what they wrote)."""
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)
