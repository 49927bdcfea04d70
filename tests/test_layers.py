"""The package graph reads bottom-up, built from the sources themselves (imports inside functions
counted too): datamodules/ -> models/ -> core/ -> sweeps/, reports/ -> bench/ (the command line).

A file imports only files of its own package or of a lower layer; no two files import each other,
directly or round a circle; an import inside a function says why in a comment (start-up time or
an optional dependency); and the command line's parser answers `--help` without torch.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"datamodules": 0, "models": 1, "core": 2, "sweeps": 3, "reports": 3, "bench": 4}


def module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    return {module_of(p): p for package in LAYERS for p in sorted((ROOT / package).rglob("*.py"))}


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module `name` stands for (a module, else its package), or None (not ours)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported project module, line, inside a function) for every import statement of `path`."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{alias.name}" for alias in child.names]
            else:
                visit(child, inner)
                continue
            for target in targets:
                resolved = resolve(target, modules)
                found.append((resolved, child.lineno, in_function))
    visit(tree, False)
    return found


def graph() -> dict[str, set[str]]:
    modules = sources()
    return {m: {t for t, _, _ in imports(m, p, modules) if t is not None and t != m}
            for m, p in modules.items()}


def test_the_graph_sees_imports_inside_functions() -> None:
    # the check below is only as good as the graph: a function-level import must be an edge
    edges = graph()
    assert "core.allocator" in edges["bench.cli"]  # imported inside main()
    assert "bench.train_command" in edges["bench.cli"]  # inside dispatch()


def test_no_file_imports_a_higher_layer_or_a_sibling_package() -> None:
    wrong = []
    for module, targets in graph().items():
        here = module.split(".")[0]
        for target in targets:
            there = target.split(".")[0]
            if there != here and LAYERS[there] >= LAYERS[here]:
                wrong.append(f"{module} -> {target}")
    assert wrong == [], f"imports against the layers ({' -> '.join(LAYERS)}): {wrong}"


def test_models_and_datamodules_import_nothing_above_them() -> None:
    for module, targets in graph().items():
        if module.split(".")[0] in ("models", "datamodules"):
            above = [t for t in targets if t.split(".")[0] in ("core", "bench", "sweeps", "reports")]
            assert above == [], f"{module} imports {above}"


def test_the_file_graph_has_no_cycle() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(edges):
        if node not in state and (cycle := walk(node)):
            pytest.fail(f"import cycle: {' -> '.join(cycle)}")


def test_the_cycle_check_finds_a_cycle(monkeypatch) -> None:
    # the check can fail: a planted circle between two files is found
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    monkeypatch.setattr(sys.modules[__name__], "graph", lambda: planted)
    with pytest.raises(pytest.fail.Exception, match="import cycle: a -> b -> c -> a"):
        test_the_file_graph_has_no_cycle()


def explained(lines: list[str], lineno: int) -> bool:
    """A comment on the import's line, on an import of the block of imports it stands in, or on
    the line just above that block."""
    i = lineno - 1
    while i > 0 and lines[i - 1].strip().startswith(("import ", "from ")):
        i -= 1  # up to the first import of the block
    block = lines[i:lineno]
    return any("#" in line for line in block) or (i > 0 and lines[i - 1].strip().startswith("#"))


def test_every_import_inside_a_function_says_why() -> None:
    modules = sources()
    silent = []
    for module, path in modules.items():
        lines = path.read_text().splitlines()
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)) and not explained(lines, inner.lineno):
                    silent.append(f"{path.relative_to(ROOT)}:{inner.lineno}: "
                                  f"{lines[inner.lineno - 1].strip()}")
    assert sorted(set(silent)) == [], "imports inside functions without a comment saying why"


def test_help_answers_without_importing_torch_pandas_or_lightning() -> None:
    # `ntmbench --help` and each subcommand's: the parser imports nothing heavy (torch alone takes
    # 1-3 s to import on this project's machines)
    script = (
        "import sys, contextlib, io\n"
        "from bench.cli import build_parser\n"
        "parser = build_parser()\n"
        "for argv in [['--help']] + [[c, '--help'] for c in parser.commands]:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        parser.parse_args(argv)\n"
        "print(sorted(m for m in ('torch', 'pandas', 'lightning', 'wandb', 'optuna', 'numpy')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_the_help_names_every_registered_task_and_model() -> None:
    # the --task and --model choices are written out (no torch at --help): they match the registries
    from bench.options import MODEL_NAMES, PRESET_NAMES, TASK_NAMES
    from datamodules.registry import TASKS
    from models.presets import PRESET_NAMES as PRESETS
    from models.registry import MODELS

    assert (list(TASK_NAMES), list(MODEL_NAMES), list(PRESET_NAMES)) == (list(TASKS), list(MODELS),
                                                                         list(PRESETS))
