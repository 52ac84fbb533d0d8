"""ruff over helpers/, tests/, benchmarks/ and the notebooks, with the configuration in pyproject.toml."""

import subprocess
import sys

import nbformat

from helpers.env import ROOT


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", *args],
                          cwd=ROOT, capture_output=True, text=True)


def test_the_course_is_lint_clean():
    result = ruff()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-1000:]


def test_lint_names_the_cell_of_a_broken_notebook(tmp_path):
    nb = nbformat.read(ROOT / "notebooks" / "00-should-you-fine-tune.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    line = len(code[4].source.splitlines()) + 1  # the two lines added below
    code[4].source += "\nimport csv\nprint(undefined_name)"
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    result = ruff("--config", str(ROOT / "pyproject.toml"), str(path))
    assert result.returncode == 1
    where = f"broken.ipynb:cell {nb.cells.index(code[4]) + 1}:"  # ruff counts every cell from 1
    assert f"{where}{line}:8: F401" in result.stdout and f"{where}{line + 1}:7: F821" in result.stdout, result.stdout
