"""The layers import downwards only: schemas ← odia_stream (domain) ← kafka_runtime ← workers
(agents, trainer, serving) ← odia (applications). Checked on the source, imports inside functions
included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Package → the project packages it must never import.
FORBIDDEN: dict[str, set[str]] = {
    "schemas": {"odia_stream", "kafka_runtime", "agents", "trainer", "serving", "odia"},
    "odia_stream": {"kafka_runtime", "agents", "trainer", "serving", "odia", "confluent_kafka", "faust", "aiokafka"},
    "kafka_runtime": {"agents", "trainer", "serving", "odia"},
    "agents": {"trainer", "serving", "odia"},
    "trainer": {"agents", "serving", "odia"},
    "serving": {"agents", "trainer", "odia"},
}


#: Entry points run as programs (``python -m …``), allowed to reach the application layer from
#: their ``__main__`` block only; nothing may import them.
ENTRY_POINTS = {ROOT / "odia_stream" / "cli.py": {"odia"}}


def imported_roots(path: Path) -> set[str]:
    """The top-level names of every module ``path`` imports (absolute imports)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_imported_roots_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("import os\n\ndef f():\n    from agents.app import create_app\n    import faust.types\n")
    assert imported_roots(source) == {"os", "agents", "faust"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_the_layers_below_it(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no source in {package}/"
    offences = [
        f"{f.relative_to(ROOT)} imports {name}"
        for f in files
        for name in sorted(imported_roots(f) & (FORBIDDEN[package] - ENTRY_POINTS.get(f, set())))
    ]
    assert not offences, "\n".join(offences)


def test_entry_points_import_upwards_only_when_run_and_nobody_imports_them() -> None:
    for path in ENTRY_POINTS:
        module = "odia_stream." + path.stem
        tree = ast.parse(path.read_text(), str(path))
        assert all(not isinstance(node, ast.Import | ast.ImportFrom) for node in tree.body), path
        importers = [
            str(f.relative_to(ROOT))
            for package in FORBIDDEN
            for f in sorted((ROOT / package).rglob("*.py"))
            if module in f.read_text() and f != path
        ]
        assert not importers, importers


def domain_imports() -> dict[str, set[str]]:
    """``odia_stream``'s top-level modules and subpackages → the others of them they import."""
    domain = ROOT / "odia_stream"
    edges: dict[str, set[str]] = {}
    for path in domain.rglob("*.py"):
        parts = path.relative_to(domain).parts
        source = parts[0] if len(parts) > 1 else path.stem
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                target = name.split(".")
                if target[0] == "odia_stream" and len(target) > 1 and target[1] != source:
                    edges.setdefault(source, set()).add(target[1])
    return edges


def test_domain_subpackages_import_each_other_without_cycles() -> None:
    edges = domain_imports()
    assert edges["generation"] and edges["adapters"]  # the scan sees the package's imports
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        if node in done:
            return
        assert node not in visiting, "import cycle: " + " → ".join([*visiting[visiting.index(node):], node])
        visiting.append(node)
        for target in sorted(edges.get(node, ())):
            visit(target)
        visiting.pop()
        done.add(node)

    for node in sorted(edges):
        visit(node)
