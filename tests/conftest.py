"""Shared fixtures: the embedded model is loaded once per session, offline. The session runs with
fake keys in its environment (and in the notebooks' kernels), so a leak of any of them is caught.
Under pytest-xdist (`make test` runs two workers) each worker gets its share of the cores, and the
slowest tests are handed out first."""

import os
from pathlib import Path

import pytest

if "PYTEST_XDIST_WORKER_COUNT" in os.environ:  # a worker: its share of the cores, for it and its kernels
    THREADS = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(THREADS)
    import torch

    torch.set_num_threads(THREADS)

from helpers import env  # noqa: E402

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


# Slowest first, so the two workers finish together. A unit of work goes to one worker: each slow test
# alone, notebook 04 after 03 (it compares itself with 03's figures), every other module whole (its
# module-scoped fixtures, such as a trained emulator job, are then built once).
SLOWEST = ["test_notebook_runs_and_meets_its_figures[03-huggingface-trl]",
           "test_notebook_runs_and_meets_its_figures[04-autotrain]",
           "test_notebook_runs_and_meets_its_figures[00-should-you-fine-tune]",
           "test_notebook_runs_and_meets_its_figures[01-openai]",
           "test_a_learner_runs_a_notebook_in_jupyterlab",
           "test_notebook_runs_and_meets_its_figures[02-azure-openai]"]
TOGETHER = {SLOWEST[1]: SLOWEST[0]}


def work_unit(nodeid: str) -> str:
    """The share of the suite one worker runs as a whole: a slow test, or a test module."""
    module, _, name = nodeid.partition("::")
    return TOGETHER.get(name, name) if name in SLOWEST else module


def pytest_xdist_make_scheduler(config, log):
    """Hand out work units in collection order (slowest first), never splitting one, one at a time."""
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

        def _reschedule(self, node) -> None:
            """The next unit only once a worker is on its last test (xdist's default takes a third
            unit while two tests wait, which queued three notebooks on one worker)."""
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
            elif self._pending_of(self.assigned_work[node]) <= 1:
                self._assign_work_unit(node)

    config.option.loadscopereorder = False  # keep the order below, not largest-module-first
    return WorkUnits(config, log)


def rank(item) -> int:
    """Where a test is handed out: the slowest in their order, then all others as collected."""
    return SLOWEST.index(item.name) if item.name in SLOWEST else len(SLOWEST)


def pytest_sessionstart(session):
    """Convert the embedded model once, before the workers start (else each converts it at once)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        from helpers import models

        models.embedded_model_dir()


def pytest_collection_modifyitems(items):
    """Tests marked `last` run after all others (the secret scan reads what they wrote); under xdist
    `make test` runs them in a second pytest call, once every worker has finished."""
    items.sort(key=lambda item: (item.get_closest_marker("last") is not None, rank(item)))
