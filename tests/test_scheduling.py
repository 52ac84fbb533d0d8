"""How `make test` shares the suite between its two workers (tests/conftest.py)."""

from conftest import SLOWEST, work_unit
from test_notebooks import NOTEBOOKS

RUN = "tests/test_notebooks.py::test_notebook_runs_and_meets_its_figures"


def test_every_notebook_run_is_handed_out_on_its_own_and_early():
    assert {f"test_notebook_runs_and_meets_its_figures[{nb.stem}]" for nb in NOTEBOOKS} <= set(SLOWEST)
    units = {work_unit(f"{RUN}[{nb.stem}]") for nb in NOTEBOOKS}
    assert len(units) == len(NOTEBOOKS) - 1  # all apart, but 04 shares 03's unit


def test_notebook_04_follows_03_on_the_same_worker():
    assert work_unit(f"{RUN}[04-autotrain]") == work_unit(f"{RUN}[03-huggingface-trl]")
    assert SLOWEST.index("test_notebook_runs_and_meets_its_figures[04-autotrain]") == 1 + SLOWEST.index(
        "test_notebook_runs_and_meets_its_figures[03-huggingface-trl]")


def test_other_tests_stay_with_their_module():
    assert work_unit("tests/test_emulator.py::test_the_job_really_trains") == "tests/test_emulator.py"
    assert work_unit("tests/test_notebooks.py::test_every_notebook_is_covered") == "tests/test_notebooks.py"
    assert work_unit("tests/test_tokens.py::test_each_model_gets_its_encoding[gpt-4o]") == "tests/test_tokens.py"
