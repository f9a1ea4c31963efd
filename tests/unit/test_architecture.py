"""The layering holds: the pure core imports no I/O, nothing imports in a circle, the HTTP
app is reached only through its server, the public API is exactly ``__all__``, and the
CLI starts light."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path

import breakeven

SRC = Path(breakeven.__file__).parent

# Every module of these packages is pure (objects in, objects out) ...
PURE_PACKAGES = ["planner"]
# ... and so are these single modules.
PURE_MODULES = [
    "breakeven.catalog", "breakeven.catalog.schema", "breakeven.errors",
    "breakeven.report.build", "breakeven.report.observed",
    "breakeven.sim.engine", "breakeven.sim.text", "breakeven.sim.protocol",
    "breakeven.sim.offline", "breakeven.sim.prefix", "breakeven.sim.blocks", "breakeven.sim.holds",
    "breakeven.sim.clock", "breakeven.sim.config", "breakeven.sim.waiting", "breakeven.sim.drive",
    "breakeven.sim.observe", "breakeven.bench.metrics",
    "breakeven.gateway.config", "breakeven.gateway.policy", "breakeven.gateway.boundary",
    "breakeven.gateway.cascade", "breakeven.gateway.pii", "breakeven.gateway.pseudonym",
    "breakeven.gateway.openapi", "breakeven.gateway.identity", "breakeven.gateway.record",
    "breakeven.gateway.batch.admission", "breakeven.gateway.throttle",
    "breakeven.gateway.telemetry_config",
    "breakeven.gateway.responses_wire", "breakeven.gateway.responses_events",
    "breakeven.gateway.responses_native", "breakeven.gateway.responses_config",
    "breakeven.gateway.messages_body", "breakeven.gateway.messages_wire",
    "breakeven.gateway.error_shapes", "breakeven.gateway.stream_wire",
]
# Not "socket": pydantic's model construction imports email.utils, which imports it; the
# core itself opens nothing. These are the adapters the core must never pull in.
IO_MODULES = ["yaml", "sqlite3", "http.client", "urllib.request", "matplotlib", "rich",
              "click", "subprocess", "asyncio", "aiohttp", "psycopg", "breakeven.loaders",
              "breakeven.cli", "breakeven.store", "breakeven.render"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}


def _core() -> list[str]:
    out = list(PURE_MODULES)
    for package in PURE_PACKAGES:
        out += sorted(m for m in MODULES if m.startswith(f"breakeven.{package}."))
    return out


def _imports(name: str) -> set[str]:
    """Every breakeven module ``name`` imports, anywhere in the file (function-local and
    type-checking imports too: a circle dodged by either is still a circle)."""
    tree = ast.parse(MODULES[name].read_text())
    found: set[str] = set()
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES}
    return {m for m in found if m in MODULES and m != name}


def _loaded_after(imports: list[str]) -> set[str]:
    code = ("import sys, json; before = set(sys.modules)\n"
            + "".join(f"import {m}\n" for m in imports)
            + "print(json.dumps(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return set(json.loads(out))


def test_core_imports_no_io_module():
    core = _core()
    assert all(m in MODULES for m in core), [m for m in core if m not in MODULES]
    loaded = _loaded_after(core)
    leaked = [m for m in IO_MODULES if m in loaded]
    assert leaked == []


def test_no_import_circles():
    graph = {m: _imports(m) for m in MODULES}
    # a package's face may import its own modules; the circle that matters is between
    # modules, so a package __init__ importing its children is not an edge back.
    for m in graph:
        if MODULES[m].name == "__init__.py":
            graph[m] = {d for d in graph[m] if not d.startswith(m + ".")}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep):], dep] if dep in path else [node, dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def test_modules_and_functions_stay_small():
    """One concept per module: a module past ~400 lines is two concepts, a function past
    ~80 lines is two steps (ruff's C901 and PLR0915 bound their complexity too)."""
    big = {m: n for m, p in MODULES.items()
           if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    long = []
    for m, p in MODULES.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{m}.{node.name}: {lines}")
    assert (big, long) == ({}, [])


def test_only_the_server_imports_the_gateway_app():
    importers = sorted(m for m in MODULES if "breakeven.gateway.app" in _imports(m))
    assert importers == ["breakeven.gateway.server"]


def test_public_api_is_exactly_all_and_each_name_is_what_it_says():
    assert breakeven.__all__ == sorted(breakeven.__all__)
    public = {n for n in dir(breakeven) if not n.startswith("_")}
    assert public == set(breakeven.__all__)
    for name in breakeven.__all__:
        value = getattr(breakeven, name)
        assert inspect.isclass(value) or inspect.isfunction(value), (name, value)
        assert value.__name__ == name
        assert getattr(breakeven, name) is value  # the same object on every access
    assert issubclass(breakeven.CatalogError, breakeven.InputError)
    for error in ("ApiError", "InputError", "UpstreamError"):
        assert issubclass(getattr(breakeven, error), breakeven.BreakevenError)
    # a submodule imported later does not shadow a public function of the same name
    __import__("breakeven.planner.search")
    assert inspect.isfunction(breakeven.plan)


def test_cli_help_does_not_import_the_heavy_modules():
    code = ("import sys\nfrom breakeven.cli import cli\n"
            "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit: pass\n"
            "print([m for m in ('pydantic', 'rich', 'matplotlib', 'yaml') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
