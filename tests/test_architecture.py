"""The shape of the code: imports run one way (no cycle, even through an import inside a function),
no module uses another's private names, and only the provider table tells OpenAI from Azure."""

import ast
from pathlib import Path

import pytest

from helpers.env import ROOT
from helpers.providers.conventions import PROVIDERS

PACKAGES = ("helpers", "emulator", "tools")
TABLE = "helpers.providers.conventions"
# Private names of other libraries the course relies on knowingly, each for a reason.
THIRD_PARTY_PRIVATE = {
    "_is_mkldnn_bf16_supported",  # torch: whether this CPU has native bf16
    "_attn_implementation",  # transformers: the attention a model runs (documented, no public getter)
    "_generate",  # TRL: GRPOTrainer's generation, wrapped to time it; without it only a step's total is known
}


def course_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the course's packages, by dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The course modules a file imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                     for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in modules}
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each import cycle once, as the list of modules around it."""
    found, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def private_uses(path: Path, modules: dict[str, Path]) -> list[str]:
    """`from x import _name`, and `thing._name` on anything but self or cls, with their lines."""
    tree, found = ast.parse(path.read_text()), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in modules:
            found += [f"{path.name}:{node.lineno}: imports {node.module}.{a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if owner not in ("self", "cls") and node.attr not in THIRD_PARTY_PRIVATE:
                found.append(f"{path.name}:{node.lineno}: uses {ast.unparse(node)}")
    return found


def provider_tests(path: Path) -> list[str]:
    """Comparisons with a provider's name: a difference the table should hold."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            constants = {c.value for side in [node.left, *node.comparators] for c in ast.walk(side)
                         if isinstance(c, ast.Constant)}
            if constants & set(PROVIDERS):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


MODULES = course_modules()


def test_no_module_imports_itself_round_a_cycle():
    graph = {name: imports(path, MODULES) - {name} for name, path in MODULES.items()}
    assert cycles(graph) == []
    into_emulator = [name for name, deps in graph.items()
                     if name.startswith("helpers") and any(d.split(".")[0] == "emulator" for d in deps)]
    assert into_emulator == ["helpers.providers.api"]  # the one way in: a dry run loads the emulator
    into_tools = [name for name, deps in graph.items()
                  if not name.startswith("tools") and any(d.split(".")[0] == "tools" for d in deps)]
    assert into_tools == []  # maintainer tooling uses the course; the course never imports it


def test_the_cycle_finder_finds_one_hidden_inside_a_function(tmp_path):
    for name, text in {"a.py": "import tools.b\n", "b.py": "def f():\n    from tools import a\n"}.items():
        (tmp_path / "tools").mkdir(exist_ok=True)
        (tmp_path / "tools" / name).write_text(text)
    modules = course_modules(tmp_path)
    assert cycles({n: imports(p, modules) for n, p in modules.items()}) == [["tools.a", "tools.b", "tools.a"]]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_uses_another_modules_private_names(name):
    assert private_uses(MODULES[name], MODULES) == []


@pytest.mark.parametrize("name", sorted(set(MODULES) - {TABLE}))
def test_only_the_provider_table_tells_the_providers_apart(name):
    assert provider_tests(MODULES[name]) == []


def test_the_checks_catch_a_reach_in_and_a_provider_test(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("from helpers.env import _x\n\ndef f(em, spec):\n    em._event(1)\n"
                    "    return spec.name == 'azure'\n")
    assert private_uses(path, {**MODULES, "helpers.env": ROOT}) == ["bad.py:1: imports helpers.env._x",
                                                                   "bad.py:4: uses em._event"]
    assert provider_tests(path) == ["bad.py:5: spec.name == 'azure'"]


def test_the_package_map_lists_every_subpackage_and_module():
    """helpers/__init__.py's docstring is where a learner looks first: every module is on its map, under the
    import line of its own subpackage, and nothing on the map is missing."""
    import re

    import helpers

    mapped = {}
    for package, names in re.findall(r"from (helpers(?:\.\w+)?) import ([\w, ]+)", helpers.__doc__):
        mapped.setdefault(package, set()).update(n.strip() for n in names.split(","))
    root = Path(helpers.__file__).parent
    present = {}
    for path in root.rglob("*.py"):
        if path.name == "__init__.py":
            continue
        package = ".".join(("helpers", *path.relative_to(root).parent.parts))
        present.setdefault(package, set()).add(path.stem)
    assert mapped == present
