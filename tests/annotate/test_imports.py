"""The annotation package's imports run one way: every `interrvos.annotate.*` import of every module,
at module level or inside a function, is an edge of a graph that has no cycle, and each module
imports on its own in a fresh interpreter (nothing depends on what was imported before it)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import interrvos.annotate

PACKAGE = "interrvos.annotate"
ROOT = Path(interrvos.annotate.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parents[1]).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (ROOT.parent / rel).with_suffix(".py").exists() or (ROOT.parent / rel / "__init__.py").exists()


def annotate_imports(path: Path) -> set[str]:
    """The interrvos.annotate modules `path` imports anywhere in its code, and its parent packages
    (which Python imports first)."""
    name, found = module_name(path), set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(PACKAGE))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE) and not node.level:
            for alias in node.names:  # `from interrvos.annotate import stages` imports a module
                sub = f"{node.module}.{alias.name}"
                found.add(sub if is_module(sub) else node.module)
    parents = {".".join(name.split(".")[:i]) for i in range(2, name.count(".") + 1)}
    found |= {p for p in parents if is_module(p)}
    return {m for m in found if is_module(m) and m != name}


def import_graph() -> dict[str, set[str]]:
    return {module_name(p): annotate_imports(p) for p in sorted(ROOT.rglob("*.py"))}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_function_level_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    source = ROOT / "finalize.py"
    assert f"{PACKAGE}.rows" in annotate_imports(source) and f"{PACKAGE}.samples" in annotate_imports(source)


def test_annotate_imports_run_one_way():
    graph = import_graph()
    assert {f"{PACKAGE}.pipeline", f"{PACKAGE}.vllm_stage", f"{PACKAGE}.backends.factory"} <= set(graph)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
    # The backends sit below everything else: they import each other and the leaves only (the factory
    # that builds them lives beside them; the vLLM stage is a stage, not a backend).
    leaves = {PACKAGE} | {f"{PACKAGE}.{m}" for m in ("config", "schemas", "templates", "prompts")}
    for module, deps in graph.items():
        if module.startswith(f"{PACKAGE}.backends."):
            assert all(d.startswith(f"{PACKAGE}.backends.") or d in leaves for d in deps), (module, deps)


def test_every_annotate_module_imports_first_in_a_fresh_interpreter():
    """One interpreter; before each module, every interrvos.annotate module is forgotten (~3 s)."""
    names = sorted(import_graph())
    code = (f"import importlib, sys\nfor name in {names!r}:\n"
            f"    for loaded in [m for m in sys.modules if m.startswith({PACKAGE!r})]:\n"
            "        del sys.modules[loaded]\n"
            "    importlib.import_module(name)\nprint('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("ok"), done.stderr[-2000:]
