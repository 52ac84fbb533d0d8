from nbformat.v4 import new_code_cell, new_notebook, new_output

from helpers import nbclean


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


def test_clean_adopts_fresh_outputs_by_cell_id():
    source, executed = notebook(), notebook()
    executed.cells[0].outputs = [new_output("stream", text="fresh\n")]
    for a, b in zip(source.cells, executed.cells):
        b.id = a.id
    nb = nbclean.clean(source, reference=executed)
    assert nb.cells[0].outputs[0]["text"] == "fresh\n"
