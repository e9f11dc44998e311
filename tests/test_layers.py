"""The package's import layers: each module imports only from layers below its own (or its own package),
so there is no import circle. Function-level imports count too; imports under TYPE_CHECKING do not run."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "regbench"

# Lowest first. A module may import its own package's modules and anything of a lower layer.
LAYERS = [
    ["regbench", "regbench.config", "regbench.results"],        # validation helpers, file writing
    ["regbench.data", "regbench.models"],                       # datasets and networks
    ["regbench.trainer"],                                       # population training and its hook points
    ["regbench.regularizers"],                                  # techniques implement the hooks
    ["regbench.plugins"],                                       # other packages' datasets, models, techniques
    ["regbench.settings"],                                      # a config resolved into the parts above
    ["regbench.identity"],                                      # what identifies a result of those parts
    ["regbench.tuning", "regbench.jobs"],
    ["regbench.experiment", "regbench.progress"],
    ["regbench.report"],                                        # reads results files
    ["regbench.wiring"],                                        # Hydra's resolvers and ConfigStore node
    ["regbench.app", "regbench.bench"],                         # the commands
    ["regbench.__main__"],
]


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def runtime_imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The regbench modules `path` imports when it runs (module level or inside functions)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(block.test) for stmt in block.body for node in ast.walk(stmt)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("regbench"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("regbench"))
    return found & set(known)


def layer(module: str) -> tuple[int, str]:
    """(the layer's index, the entry of LAYERS the module belongs to: the longest matching prefix)."""
    matches = [(len(entry), i, entry) for i, entries in enumerate(LAYERS) for entry in entries
               if module == entry or module.startswith(entry + ".")]
    assert matches, f"{module} is in no layer: add it to LAYERS"
    _, index, entry = max(matches)
    return index, entry


def test_every_import_goes_down_a_layer_or_stays_in_its_package():
    known = modules()
    upward = []
    for module, path in known.items():
        index, entry = layer(module)
        for imported in runtime_imports(path, known) - {module}:
            other_index, other_entry = layer(imported)
            if other_entry == entry and entry != "regbench":
                continue   # within one package (regbench.data's modules import regbench.data.base)
            if other_index >= index:
                upward.append(f"{module} (layer {index}) imports {imported} (layer {other_index})")
    assert not upward, "\n".join(upward)


def test_there_is_no_import_circle():
    known = modules()
    graph = {module: runtime_imports(path, known) - {module} for module, path in known.items()}
    state: dict[str, int] = {}   # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                pytest.fail("import circle: " + " -> ".join(path[path.index(imported):] + [module, imported]))
            if imported not in state:
                visit(imported, path + [module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
