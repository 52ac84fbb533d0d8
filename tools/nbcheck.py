"""What every course notebook must be before it lands, as a list of problems that name the cell:
valid, clean, a Colab badge to itself, the Colab install cell, documented parameters with dry_run,
code that parses, imports that are installed, no absolute paths, no keys; no cell that reads a
name two other cells set afresh; and no number in the prose that is neither a parameter nor a
fact declared as fixed (a figure a run measures is printed by a cell, never written down)."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import nbformat

from helpers.env import ROOT
from tools import nbclean

REPO_URL = "https://github.com/genai-course/fine-tuning-course"
COLAB = 'if "google.colab" in sys.modules'
MAGIC = re.compile(r"^\s*[%!]")
ABSOLUTE = re.compile(r"^(/(home|Users|root|tmp|work|mnt|opt|var)\b|[A-Za-z]:\\\\|~/)")
# A number in prose: not part of a word, a name or a version-like token (gpt-4o, 4-bit, SmolLM2-135M).
NUMBER = re.compile(r"(?<![\w.\-/])\d+(?:[.,]\d+)*(?![\w\-/]|\.\d)")
ENUMERATION = re.compile(r"^\s*(?:#+\s*)?\d+\.\s", re.M)  # "1. Look at the data", "## 1. ..."
CODE_OR_LINK = re.compile(r"```.*?```|`[^`]*`|\]\([^)]*\)|<[^>]*>", re.S)
FIXED = "fixed_figures"  # cell metadata: numbers in its prose that are facts no run changes
KEY = re.compile(r"\b(sk-(proj-)?[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{30,}|AKIA[0-9A-Z]{16}|[0-9a-f]{32})\b")


def _code(cell) -> str:
    """A cell's Python with notebook magics and shell escapes commented out."""
    return "\n".join("#" + line if MAGIC.match(line) else line for line in cell.source.splitlines())


def _parameters(path: Path) -> list[str]:
    import papermill

    params = papermill.inspect_notebook(str(path))
    problems = [] if params.get("dry_run", {}).get("default") == "True" else ["parameters: no `dry_run` defaulting to True"]
    return problems + [f"parameters: `{name}` has no help comment" for name, p in params.items() if not p["help"]]


CAP = re.compile(r"a dry run caps this at ([\d.e+-]+)")
USES = re.compile(r"a dry run uses ([\d.e+-]+)")


def dry_run_values(path: str | Path) -> dict:
    """The value each parameter takes in a dry run: its default, the cap its help comment states
    ("a dry run caps this at N") when that is lower, or the value it names ("a dry run uses N")."""
    import papermill

    values = {}
    for name, param in papermill.inspect_notebook(str(path)).items():
        value = ast.literal_eval(param["default"])
        cap, uses = CAP.search(param["help"]), USES.search(param["help"])
        values[name] = (ast.literal_eval(uses.group(1)) if uses
                        else min(value, ast.literal_eval(cap.group(1))) if cap else value)
    return values


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


class _Names(ast.NodeVisitor):
    """Names a cell binds, and the names it reads before binding them (comprehension variables aside)."""

    def __init__(self):
        self.bound: set[str] = set()
        self.read_first: set[str] = set()
        self.local: list[set[str]] = []

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load):
            if node.id not in self.bound and not any(node.id in scope for scope in self.local):
                self.read_first.add(node.id)
        elif not self.local:
            self.bound.add(node.id)

    def visit_Assign(self, node):  # the value is read before the targets are bound
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)

    def visit_AnnAssign(self, node):
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.target)

    def visit_AugAssign(self, node):  # x += 1 reads x before it binds it
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            self.visit(ast.Name(id=node.target.id, ctx=ast.Load()))
        self.visit(node.target)

    def _comprehension(self, node):
        names = {n.id for gen in node.generators for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
        self.local.append(names)
        self.generic_visit(node)
        self.local.pop()

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def _definition(self, node):
        if not self.local:
            self.bound.add(node.name)

    visit_FunctionDef = visit_ClassDef = _definition

    def visit_Import(self, node):
        self.bound |= {(a.asname or a.name).split(".")[0] for a in node.names}

    visit_ImportFrom = visit_Import


def reused_names(nb) -> list[str]:
    """Cells that read a name which two other cells each set afresh (without reading it first): run
    out of order, such a cell silently reads the wrong value."""
    cells = []
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        names = _Names()
        try:
            names.visit(ast.parse(_code(cell)))
        except SyntaxError:
            continue
        cells.append((cell.id, names.bound - names.read_first, names.read_first))
    problems = []
    for cell_id, _, reads in cells:
        for name in sorted(reads):
            setters = [other for other, fresh, _ in cells if name in fresh and other != cell_id]
            if len(setters) > 1:
                problems.append(f"cell {cell_id}: reads `{name}`, which cells {', '.join(setters)} each set afresh; "
                                "run out of order it reads the wrong one: give each value its own name")
    return problems


def unexplained_numbers(nb) -> list[str]:
    """Numbers in markdown that are neither parameter values (the parameters cell, help comments
    included) nor notebook numbers (00, 03, ...), nor declared in the cell's metadata as fixed facts."""
    params = next((c.source for c in nb.cells if "parameters" in c.metadata.get("tags", [])), "")
    allowed = set(NUMBER.findall(params)) | {f"{n:02d}" for n in range(10)}
    problems = []
    for cell in (c for c in nb.cells if c.cell_type == "markdown"):
        prose = ENUMERATION.sub(" ", CODE_OR_LINK.sub(" ", cell.source))
        fixed = set(cell.metadata.get(FIXED, []))
        for number in dict.fromkeys(NUMBER.findall(prose)):
            if number not in allowed and number not in fixed:
                problems.append(f"cell {cell.id}: the prose says {number}, which is no parameter: print it from a "
                                f"cell instead, or, if no run can change it, list it in the cell's metadata {FIXED!r}")
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
    found += reused_names(nb)
    if "translations" not in path.relative_to(root).parts:  # a translation's numbers are its source's
        found += unexplained_numbers(nb)
    return [f"{path.name}: {p}" for p in found]


def main(argv: list[str] | None = None) -> int:
    """`python -m tools.nbcheck NOTEBOOK...`: print every problem; exit 1 if there is any."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    found = [p for path in parser.parse_args(argv).notebooks for p in problems(path)]
    print("\n".join(found) or "no problems")
    return 1 if found else 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
