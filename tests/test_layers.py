"""Each module imports only modules below it: a command's path (CLI, pipelines, Reranker, prompt and engine, and
back) runs straight down and up, and the core never reaches up into a front end."""

from __future__ import annotations

import ast
from pathlib import Path

import qrr

ROOT = Path(qrr.__file__).parent

# lower layers first; a module may import only from layers before its own
LAYERS = [
    {"errors", "_version"},
    {"family", "device", "attention", "batching", "compiling", "formats.lines"},
    {"prompt", "models", "loading", "formats.records"},
    {"engine"},
    {"formats.trec", "formats.rows"},
    {"formats"},
    {"metrics"},
    {"reranker"},
    {"pipelines.files", "pipelines.streams"},
    {"pipelines.scores", "pipelines.runs"},
    {"pipelines", "bench", "testing"},
    {""},  # the package: `from qrr import Reranker`
    {"server"},  # the HTTP front end: its constants and printable(), below the modules that use them
    {"server.api", "server.metrics", "server.openapi"},
    {"server.batcher", "server.client"},
    {"server.app", "raydata"},
    {"cli.signals"},
    {"cli.base"},
    {"cli.render", "cli.onray"},
    {"cli.runs"},
    {"cli.rank", "cli.score", "cli.rerank", "cli.evaluate", "cli.serve", "cli.download", "cli.bench"},
    {"cli"},
    {"__main__"},
]
LAYER = {name: n for n, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path) -> set[str]:
    """The qrr modules a file imports, at the top or inside functions; not those a type checker alone sees (``if
    TYPE_CHECKING:``, as a package names the modules its ``__getattr__`` imports when first used)."""
    names = set()
    tree = ast.parse(path.read_text())
    unrun = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If) and ast.unparse(node.test) ==
             "TYPE_CHECKING" for part in node.body for inner in ast.walk(part)}  # fmt: skip
    for node in ast.walk(tree):
        if id(node) in unrun:
            continue
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("qrr")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qrr"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                is_module = (ROOT / Path(*sub.split(".")[1:])).with_suffix(".py").exists() or (
                    ROOT / Path(*sub.split(".")[1:])
                ).is_dir()
                names.add(sub if is_module else node.module)
    return {n.removeprefix("qrr").removeprefix(".") for n in names}


def test_every_module_has_a_layer():
    assert {module_name(p) for p in ROOT.rglob("*.py")} == set(LAYER)


def test_imports_only_go_down():
    upward = []
    for path in ROOT.rglob("*.py"):
        name = module_name(path)
        for target in imported(path):
            if target != "__main__" and LAYER[target] >= LAYER[name] and not (name == "" or target == name):
                upward.append(f"{name or 'qrr'} imports {target or 'qrr'}")
    assert not upward, upward


def test_the_core_imports_no_front_end_packages():
    for path in ROOT.rglob("*.py"):
        if module_name(path).startswith(("cli", "server", "raydata")):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                front = ("typer", "rich", "click", "starlette", "uvicorn", "httpx")
                assert not any(n.split(".")[0] in front for n in names), (path, names)
