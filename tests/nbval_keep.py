"""pytest plugin for the nbval run of a notebook: save what it executed, outputs included, as
<notebook>.executed.ipynb beside the prepared copy, so the suite can inspect (and scan) it."""

import nbformat


def pytest_sessionfinish(session):
    notebooks = {}
    for item in session.items:
        if getattr(item, "test_outputs", None) is not None:
            item.cell.outputs = item.test_outputs
            notebooks[item.parent] = item.parent.nb
    for file, nb in notebooks.items():
        nbformat.write(nb, str(file.path.with_suffix(".executed.ipynb")))
