from nbformat.v4 import new_code_cell, new_notebook, new_output

from tools import nbclean


def notebook():
    checked = new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)", outputs=[new_output("stream", text="1\n")],
                            execution_count=7)
    plain = new_code_cell("print(2)", outputs=[new_output("stream", text="2\n")], execution_count=8)
    return new_notebook(cells=[checked, plain])


def test_clean_keeps_only_checked_outputs():
    nb = nbclean.clean(notebook())
    assert nb.cells[0].outputs[0]["text"] == "1\n" and nb.cells[0].execution_count == 1
    assert nb.cells[1].outputs == [] and nb.cells[1].execution_count is None
    assert nbclean.unclean_cells(nb) == []
    assert nbclean.unclean_cells(notebook()) == [1]


def test_clean_adopts_fresh_outputs_by_source():
    source, executed = notebook(), notebook()
    executed.cells.insert(0, new_code_cell("# Parameters\ndry_run = True"))  # papermill's injected cell
    executed.cells[1].outputs = [new_output("stream", text="fresh\n")]
    nb = nbclean.clean(source, reference=executed)
    assert nb.cells[0].outputs[0]["text"] == "fresh\n"
