"""The nbval_keep plugin saves the notebook nbval executed, with the outputs it saw."""

import subprocess
import sys

import nbformat
from nbformat.v4 import new_code_cell, new_notebook
from test_notebooks import nbval_env


def test_executed_copy_holds_the_fresh_outputs(tmp_path):
    path = tmp_path / "tiny.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("x = 6 * 7"), new_code_cell("print(x)")]), path)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                             "--nbval-current-env", "-p", "nbval_keep", "--rootdir", str(tmp_path), str(path)],
                            capture_output=True, text=True, env=nbval_env())
    assert result.returncode == 0, result.stdout[-2000:]
    executed = nbformat.read(tmp_path / "tiny.executed.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "42\n"
    assert nbformat.read(path, as_version=4).cells[1].outputs == []  # the prepared copy is left as it was
