"""Keep source notebooks clean: outputs only in cells nbval checks.

    python -m tools.nbclean notebooks/*.ipynb                 # strip, keep checked outputs
    python -m tools.nbclean notebooks/03-x.ipynb --from runs/03-x.ipynb  # adopt fresh outputs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat

CHECK = "NBVAL_CHECK_OUTPUT"


def is_checked(cell) -> bool:
    """A code cell whose output nbval compares (comment marker or tag)."""
    return cell.cell_type == "code" and (
        CHECK in cell.source or "nbval-check-output" in cell.metadata.get("tags", []))


def unclean_cells(nb) -> list[int]:
    """Indexes of code cells that carry outputs but are not checked by nbval."""
    return [i for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and c.outputs and not is_checked(c)]


def clean(nb, reference=None):
    """Strip outputs and counts of unchecked cells; copy checked outputs from `reference`.

    Cells are matched by their source, which papermill leaves as it was."""
    fresh = {c.source: c for c in reference.cells} if reference is not None else {}
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if is_checked(cell):
            if cell.source in fresh:
                cell.outputs = fresh[cell.source].outputs
            count += 1
            cell.execution_count = count  # nbval skips cells with a null count
        else:
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    return nb


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Clean course notebooks for committing.")
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--from", dest="reference", type=Path,
                        help="executed copy to take the checked cells' outputs from")
    args = parser.parse_args(argv)
    reference = nbformat.read(args.reference, as_version=4) if args.reference else None
    for path in args.notebooks:
        nb = clean(nbformat.read(path, as_version=4), reference)
        nbformat.write(nb, path)
        print(f"cleaned {path}")


if __name__ == "__main__":
    main()
