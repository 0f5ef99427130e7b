"""The engine's import graph has no cycle: every import counts, at module level or inside a function.

A function-local import may defer loading torch, but it must not hide a cycle; so the graph is read from the source
with ast (every `import` and `from ... import` anywhere in a module, and importlib.import_module of a literal name),
leaving out only the imports under `if TYPE_CHECKING:`, which never run. Importing a name from a package counts as an
edge to the module that defines it: the submodule when the name is one, the module named in UMedProtectLib's lazy
export table (`_EXPORTS`) for the public names, else the package's own `__init__`.
"""

import ast
from pathlib import Path
from typing import Dict, List, Optional, Set

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "UMedProtectLib"


def module_names(root: Path) -> Dict[str, Path]:
    """Dotted module name -> file, for every module of the package under `root`."""
    names = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def lazy_exports(root: Path) -> Dict[str, str]:
    """UMedProtectLib's public names -> the dotted module that defines each (its `_EXPORTS` table)."""
    tree = ast.parse((root / PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_EXPORTS" for t in node.targets):
            return {name: f"{PACKAGE}.{module}" for name, module in ast.literal_eval(node.value).items()}
    return {}


def _type_checking_only(tree: ast.AST) -> Set[ast.AST]:
    """The import nodes inside `if TYPE_CHECKING:` blocks."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            skipped |= {inner for statement in node.body for inner in ast.walk(statement)}
    return skipped


def _literal_import_module(node: ast.AST) -> Optional[str]:
    """The name in `importlib.import_module("...")` when it is a literal absolute name."""
    if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module" and node.args:
        argument = node.args[0]
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            return None if argument.value.startswith(".") else argument.value
    return None


def import_graph(root: Path) -> Dict[str, Set[str]]:
    """Module -> the package's modules it imports (anywhere in its source)."""
    modules = module_names(root)
    exports = lazy_exports(root)
    graph: Dict[str, Set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_only(tree)
        targets: Set[str] = set()
        for node in ast.walk(tree):
            if node in skipped:
                continue
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    if f"{source}.{alias.name}" in modules:
                        targets.add(f"{source}.{alias.name}")
                    elif source == PACKAGE and alias.name in exports:
                        targets.add(exports[alias.name])
                    else:
                        targets.add(source)
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif _literal_import_module(node):
                targets.add(_literal_import_module(node))
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_engine_has_no_import_cycle():
    graph = import_graph(ROOT)
    assert len(graph) > 80 and graph["UMedProtectLib.method.protection"]  # the whole package was read
    assert cycles(graph) == []


def _write(root: Path, files: Dict[str, str]) -> Path:
    for name, text in files.items():
        (root / PACKAGE / name).parent.mkdir(parents=True, exist_ok=True)
        (root / PACKAGE / name).write_text(text)
    return root


def test_a_cycle_hidden_in_a_function_or_behind_a_re_export_is_found(tmp_path):
    root = _write(tmp_path, {
        "__init__.py": '_EXPORTS = {"run": "tasks.runner"}\n',
        "settings.py": "from .designs import DESIGNS\n",
        "designs/__init__.py": "DESIGNS = {}\n\ndef build():\n    from ..tasks import perturbation\n",
        "tasks/__init__.py": "",
        "tasks/perturbation.py": "from ..settings import Settings\n",
        "tasks/runner.py": "import importlib\nimportlib.import_module('UMedProtectLib.cli')\n",
        "cli.py": "from . import run\n",
    })
    graph = import_graph(root)
    assert graph["UMedProtectLib.designs"] == {"UMedProtectLib.tasks.perturbation"}
    assert cycles(graph) == [["UMedProtectLib.cli", "UMedProtectLib.tasks.runner"],
                             ["UMedProtectLib.designs", "UMedProtectLib.settings", "UMedProtectLib.tasks.perturbation"]]


def test_imports_only_for_type_checking_are_no_edges(tmp_path):
    root = _write(tmp_path, {
        "__init__.py": "",
        "settings.py": "from .design import Design\n",
        "design.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from .settings import Settings\n",
    })
    assert cycles(import_graph(root)) == []
