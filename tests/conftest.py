"""Shared fixtures: the embedded model is loaded once per session, offline. The session runs with
fake keys in its environment (and in the notebooks' kernels), so a leak of any of them is caught.
Under pytest-xdist (`make test` runs two workers) each worker gets its share of the cores, and the
slowest tests are handed out first (tests/scheduling.py)."""

import datetime
import os
from pathlib import Path

import pytest

if "PYTEST_XDIST_WORKER_COUNT" in os.environ:  # a worker: its share of the cores, for it and its kernels
    THREADS = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(THREADS)
    import torch

    torch.set_num_threads(THREADS)

from scheduling import pytest_collection_modifyitems, pytest_xdist_make_scheduler  # noqa: E402, F401  (hooks)

from helpers import env  # noqa: E402

env.set_offline(True)
# The day that picks the translated notebook the suite runs (tests/test_notebooks.py), fixed when the
# session starts, so that every xdist worker (they inherit this environment) agrees, even past midnight.
os.environ.setdefault("COURSE_SESSION_DAY", str(datetime.date.today().toordinal()))
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


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A 2-layer Llama with SmolLM2's tokenizer, saved as transformers 5 saves it: seconds to convert,
    train or launch where the real model's size does not matter."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from helpers import models

    folder = tmp_path_factory.mktemp("tiny")
    tokenizer = AutoTokenizer.from_pretrained(models.embedded_model_dir())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def company_db():
    from helpers.eval.sql import DB_DIR

    return DB_DIR / "company.sqlite"


def pytest_sessionstart(session):
    """Convert the embedded model once, before the workers start (else each converts it at once)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        from helpers import models

        models.embedded_model_dir()
