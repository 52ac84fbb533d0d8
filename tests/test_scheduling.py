"""How `make test` shares the suite between its two workers (tests/scheduling.py), checked on a
stand-in suite with the same test names, run by pytest-xdist with the course's scheduler."""

import os
import subprocess
import sys
from collections import defaultdict

from scheduling import SLOWEST
from test_notebooks import NOTEBOOKS

from helpers.env import ROOT

RUN = "test_notebook_runs_and_meets_its_figures"
RECORD = '''import os, pathlib

def record(request):
    with open(pathlib.Path(__file__).parent / "order.log", "a") as log:
        log.write(f"{os.environ['PYTEST_XDIST_WORKER']} {request.node.nodeid}\\n")
'''
STAND_IN = {
    "conftest.py": "from scheduling import pytest_collection_modifyitems, pytest_xdist_make_scheduler  # noqa: F401\n",
    "record.py": RECORD,
    "test_notebooks.py": ("import pytest\nfrom record import record\n\n\n"
                          f"@pytest.mark.parametrize('stem', {[nb.stem for nb in NOTEBOOKS]!r})\n"
                          f"def {RUN}(request, stem):\n    record(request)\n\n\n"
                          "def test_every_notebook_is_covered(request):\n    record(request)\n"),
    "test_browser.py": ("from record import record\n\n\n"
                        "def test_a_learner_runs_a_notebook_in_jupyterlab(request):\n    record(request)\n"),
    "test_alpha.py": "".join(f"from record import record\n\n\ndef test_a{i}(request):\n    record(request)\n" if i == 0 else
                             f"\n\ndef test_a{i}(request):\n    record(request)\n" for i in range(4)),
    "test_beta.py": "".join(f"from record import record\n\n\ndef test_b{i}(request):\n    record(request)\n" if i == 0 else
                            f"\n\ndef test_b{i}(request):\n    record(request)\n" for i in range(4)),
}


def test_every_notebook_run_is_listed_among_the_slowest():
    assert {f"{RUN}[{nb.stem}]" for nb in NOTEBOOKS} <= set(SLOWEST)


def test_two_workers_run_the_slowest_first_04_05_07_and_08_after_03_and_each_module_whole(tmp_path):
    for name, text in STAND_IN.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(tmp_path)])}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider", str(tmp_path)],
                            cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    ran = defaultdict(list)
    for line in (tmp_path / "order.log").read_text().splitlines():
        worker, nodeid = line.split(" ", 1)
        ran[worker].append(nodeid.split("::", 1)[1] if "test_notebooks.py" in nodeid or "browser" in nodeid else nodeid)
    assert sorted(sum(ran.values(), [])) == sorted(
        [f"{RUN}[{nb.stem}]" for nb in NOTEBOOKS]
        + ["test_every_notebook_is_covered", "test_a_learner_runs_a_notebook_in_jupyterlab"]
        + [f"test_alpha.py::test_a{i}" for i in range(4)] + [f"test_beta.py::test_b{i}" for i in range(4)])  # each once
    assert {order[0] for order in ran.values()} == {f"{RUN}[03-huggingface-trl]", f"{RUN}[00-should-you-fine-tune]"}
    [with_03] = [order for order in ran.values() if f"{RUN}[03-huggingface-trl]" in order]
    at = with_03.index(f"{RUN}[03-huggingface-trl]")
    assert with_03[at + 1:at + 5] == [f"{RUN}[04-autotrain]", f"{RUN}[05-serve-your-model]", f"{RUN}[07-preference-tuning]",
                                      f"{RUN}[08-reinforcement-fine-tuning]"]
    for module in ("test_alpha.py", "test_beta.py"):
        assert len([w for w, order in ran.items() if any(t.startswith(module) for t in order)]) == 1, module
