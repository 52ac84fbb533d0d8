"""What every course notebook must be before it lands, as a list of problems that name the cell:
valid, clean, a Colab badge to itself, the Colab install cell, documented parameters with dry_run,
code that parses, imports that are installed, no absolute paths, no keys."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import nbformat

from helpers import nbclean
from helpers.env import REPO_URL, ROOT

COLAB = 'if "google.colab" in sys.modules'
MAGIC = re.compile(r"^\s*[%!]")
ABSOLUTE = re.compile(r"^(/(home|Users|root|tmp|work|mnt|opt|var)\b|[A-Za-z]:\\\\|~/)")
KEY = re.compile(r"\b(sk-(proj-)?[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{30,}|AKIA[0-9A-Z]{16}|[0-9a-f]{32})\b")


def _code(cell) -> str:
    """A cell's Python with notebook magics and shell escapes commented out."""
    return "\n".join("#" + line if MAGIC.match(line) else line for line in cell.source.splitlines())


def _parameters(path: Path) -> list[str]:
    import papermill

    params = papermill.inspect_notebook(str(path))
    problems = [] if params.get("dry_run", {}).get("default") == "True" else ["parameters: no `dry_run` defaulting to True"]
    return problems + [f"parameters: `{name}` has no help comment" for name, p in params.items() if not p["help"]]


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _cell_problems(cell, colab_cell: bool) -> list[str]:
    where = f"cell {cell.id}"
    try:
        tree = ast.parse(_code(cell))
    except SyntaxError as err:
        return [f"{where}, line {err.lineno}: does not parse: {err.msg}"]
    problems = [f"{where}: imports {name}, which is not installed" for name in sorted(_imports(tree))
                if importlib.util.find_spec(name) is None]
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if ABSOLUTE.match(node.value) and not colab_cell:
                problems.append(f"{where}, line {node.lineno}: absolute path {node.value!r}; use a path relative "
                                "to the notebook or a parameter")
    if KEY.search(cell.source):
        problems.append(f"{where}: looks like a hard-coded key or token; read it from the environment")
    return problems


def problems(path: str | Path, root: Path = ROOT) -> list[str]:
    """Every problem of one notebook, each naming the cell (and line) it is in."""
    path = Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as err:
        return [f"not valid nbformat: {err.message}"]
    found = [f"cell {nb.cells[i].id}: has outputs but nbval does not check it; run make clean-notebooks"
             for i in nbclean.unclean_cells(nb)]
    own = f"colab.research.google.com/github/{REPO_URL.split('github.com/')[1]}/blob/main/{path.relative_to(root).as_posix()}"
    if not nb.cells or own not in nb.cells[0].source:
        found.append(f"first cell: no Colab badge opening {path.relative_to(root).as_posix()}")
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code or COLAB not in code[0].source:
        found.append("first code cell: not the Colab install cell (`if \"google.colab\" in sys.modules: ...`)")
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    found += _parameters(path) if len(tagged) == 1 else [f"{len(tagged)} cells tagged `parameters`; need one"]
    for i, cell in enumerate(code):
        found += _cell_problems(cell, colab_cell=i == 0)
    return [f"{path.name}: {p}" for p in found]
