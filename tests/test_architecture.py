"""docs/architecture.md is the contract: its layer order holds in the imports, and it names
every module under pytcp/.

A module may import only from its own layer or the layers above it in the list at the top of
docs/architecture.md. Imports inside functions count too (they are dependencies all the same).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "pytcp"
DOC = ROOT / "docs" / "architecture.md"

# The numbered list of docs/architecture.md, top first; a name is the first part under pytcp/.
LAYERS: list[set[str]] = [
    {"drops"},
    {"native", "_pyfallback", "_native"},
    {"wire"},
    {"tcp"},
    {"stack", "stack_frag", "stack_icmp", "stack_history", "ip", "udp"},  # the sans-I/O host
    {"link"},
    {"pcap"},
    {"runtime"},
    {"api"},
    {"apps"},
    {"script"},
    {"cli", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if p.name != "__init__.py" or p.parent != PKG)


def _part(path: Path) -> tuple[str, list[str]]:
    """(the first name under pytcp/, the package the file's relative imports start from)."""
    rel = list(path.relative_to(ROOT).with_suffix("").parts)
    package = rel[:-1]
    return rel[1], package


def _imported(tree: ast.AST, package: list[str]) -> list[tuple[int, str]]:
    """Every pytcp module a file imports (absolute name), with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "pytcp" or not node.module:
                # `from pytcp import native` / `from . import x`: the names are modules
                found += [(node.lineno, f"{module}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, module))
    return [(line, m) for line, m in found if m.startswith("pytcp.")]


def test_every_module_has_a_layer() -> None:
    assert not [str(p) for p in _modules() if _part(p)[0] not in RANK]


def test_no_module_imports_from_a_layer_below_it() -> None:
    upward = []
    for path in _modules():
        part, package = _part(path)
        for line, module in _imported(ast.parse(path.read_text()), package):
            target = module.split(".")[1]
            if target == "__version__":
                continue  # the package root holds only the version
            assert target in RANK, f"{path}:{line}: {module} has no layer"
            if RANK[target] > RANK[part]:
                upward.append(f"{path.relative_to(ROOT)}:{line}: {part} (layer "
                              f"{RANK[part] + 1}) imports {module} (layer {RANK[target] + 1})")
    assert upward == []


def test_the_checker_sees_an_upward_import() -> None:
    # A test that cannot fail is a defect: an engine module importing the runtime is caught.
    tree = ast.parse("def f():\n    from pytcp.runtime import Runtime\n"
                     "from ...stack import Stack\n")
    found = _imported(tree, ["pytcp", "tcp", "congestion"])
    assert sorted(found) == [(2, "pytcp.runtime"), (3, "pytcp.stack")]
    assert all(RANK[m.split(".")[1]] > RANK["tcp"] for _, m in found)


def test_the_ip_layer_names_the_stack_only_for_type_checking() -> None:
    # Inside the host layer, ip/ and udp.py are mixins of Stack: they may name pytcp.stack in
    # annotations (under TYPE_CHECKING), never import it when they run.
    bad = []
    typed = 0
    for path in [*sorted((PKG / "ip").glob("*.py")), PKG / "udp.py"]:
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for top in tree.body if isinstance(top, ast.If)
                       and ast.unparse(top.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                       for n in ast.walk(top)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in ("pytcp.stack",
                                                                   "pytcp.stack_history"):
                typed += id(node) in typing_only
                if id(node) not in typing_only:
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bad == []
    assert typed > 0  # the annotations are seen (the check is not looking at nothing)


def test_architecture_names_every_module() -> None:
    doc = DOC.read_text()
    missing = []
    for path in _modules():
        if path.suffix != ".py" or path.name == "__init__.py":
            continue
        rel = path.relative_to(PKG).as_posix()
        dotted = "pytcp." + rel[:-3].replace("/", ".")
        # by path, dotted name, or file name / `stem` in its package's section
        if not any(name in doc for name in (rel, dotted, path.name, f"`{path.stem}`")):
            missing.append(rel)
    assert missing == []
