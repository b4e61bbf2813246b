"""The shape of the package: no import cycles, no reaching into another module's private names, no range
bound of the spec restated outside the spec package (``milvus_lab/spec/``), and the arrows of the house pointing
one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import milvus_lab
from milvus_lab import spec

PACKAGE = Path(milvus_lab.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import of a milvus_lab module."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, None, node.lineno) for alias in node.names if alias.name.startswith("milvus_lab")]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node, is_package)
            if not target.startswith("milvus_lab"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:  # `from . import spec`: an import of the module itself
                    out.append((sub, None, node.lineno))
                else:
                    out.append((target, alias.name, node.lineno))
    return out


def _graph(module_level_only: bool = False) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        nodes = tree.body if module_level_only else list(ast.walk(tree))
        is_package = path.name == "__init__.py"
        for node in nodes:
            if isinstance(node, ast.If):  # `if TYPE_CHECKING:` imports do not run
                continue
            if isinstance(node, ast.ImportFrom):
                target = _resolve(module, node, is_package)
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    name = sub if sub in MODULES else target
                    if name in MODULES and name != module:
                        graph[module].add(name)
            elif isinstance(node, ast.Import):
                graph[module].update(a.name for a in node.names if a.name in MODULES and a.name != module)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle among modules, ignoring a package's edge to its own submodules (re-exports)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt.startswith(node + "."):  # a package importing its own submodule
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle_even_through_function_level_imports():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_a_private_name_of_another_module():
    offences = []
    for module, path in MODULES.items():
        for target, name, line in _imports(module, path):
            if name is not None and name.startswith("_") and not name.startswith("__") and target != module:
                offences.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name} from {target}")
            if name is None and target.rsplit(".", 1)[-1].startswith("_") and target.rsplit(".", 1)[0] != \
                    module.rsplit(".", 1)[0] and not target.startswith(module.rsplit(".", 1)[0]):
                offences.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports private module {target}")
    assert not offences, "\n".join(offences)


# --------------------------------------------------------------------------------------------------
# No reaching into a private attribute of another module's object, class or module
# --------------------------------------------------------------------------------------------------
#: private attributes of other libraries' objects that a module may read, and why it cannot do without
ALLOWED_PRIVATE_ATTRIBUTES = {
    ("milvus_lab.lab.timing", "_asdict"): "psutil's cpu_times() is a namedtuple: _asdict is its public API",
    ("milvus_lab.server.target", "_fetch_handler"): "pymilvus's ORM has no call for an index's state with the "
                                                   "failure reason; its connection handler does",
}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _own_private_names(tree: ast.AST) -> set[str]:
    """Private names a module defines itself: functions, classes, assigned names and attributes, arguments."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
            out.add(node.attr)
        elif isinstance(node, ast.arg):
            out.add(node.arg)
    return {name for name in out if _is_private(name)}


def _module_aliases(module: str, tree: ast.AST, is_package: bool) -> set[str]:
    """Local names bound to a milvus_lab module (``from . import spec``, ``import milvus_lab.units as u``)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(module, node, is_package)
            out.update(a.asname or a.name for a in node.names if f"{target}.{a.name}" in MODULES)
        elif isinstance(node, ast.Import):
            out.update(a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("milvus_lab"))
    return out


def _private_attribute_hits(modules: dict[str, Path] = MODULES) -> list[str]:
    """``x._name`` where ``_name`` is private and not this module's own: another module's private attribute.

    Reads through ``self`` / ``cls`` / ``super()`` are a class using what it or its bases define (the
    underscore's "for subclasses" meaning), and are not counted; a read through a name bound to one of our
    modules always is, even when this module happens to define a name of the same spelling."""
    out = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        own = _own_private_names(tree)
        aliases = _module_aliases(module, tree, path.name == "__init__.py")
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not _is_private(node.attr):
                continue
            receiver = node.value
            if isinstance(receiver, ast.Name) and receiver.id in ("self", "cls"):
                continue
            if isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Name) and receiver.func.id == "super":
                continue
            via_module = isinstance(receiver, ast.Name) and receiver.id in aliases
            if (via_module or node.attr not in own) and (module, node.attr) not in ALLOWED_PRIVATE_ATTRIBUTES:
                out.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return out


def test_no_module_reads_a_private_attribute_of_another_modules_object():
    hits = _private_attribute_hits()
    assert not hits, "private attributes of another module's objects:\n" + "\n".join(hits)


def test_the_private_attribute_scan_would_catch_a_planted_reach(tmp_path):
    fake = tmp_path / "fake.py"
    fake.write_text("from milvus_lab import spec\n\n"
                    "class Own:\n    def __init__(self):\n        self._mine = 1\n\n"
                    "def f(dataset, other):\n"
                    "    dataset._check_k(3)\n"          # another module's method
                    "    spec._plain_str('x')\n"         # another module's function, through the module
                    "    other._mine\n"                  # this module's own attribute: allowed
                    "    other.__class__\n"              # a dunder: public\n
                    "    return self._guard\n")          # through self: allowed
    hits = _private_attribute_hits({"milvus_lab.fake": fake})
    assert hits == ["fake.py:8: dataset._check_k", "fake.py:9: spec._plain_str"]
    for (module, name), why in ALLOWED_PRIVATE_ATTRIBUTES.items():
        assert module in MODULES and why, f"allow-list entry {module}.{name} names no module or gives no reason"


#: modules that may not be imported by the named rooms (the house's arrows point one way)
FORBIDDEN = {
    "milvus_lab.spec": ("milvus_lab.engine", "milvus_lab.backends", "milvus_lab.lab", "milvus_lab.widgets",
                        "milvus_lab.views", "milvus_lab.client", "milvus_lab.server"),
    "milvus_lab.backends": ("milvus_lab.engine", "milvus_lab.lab", "milvus_lab.widgets", "milvus_lab.views",
                            "milvus_lab.client", "milvus_lab.server"),
    "milvus_lab.engine": ("milvus_lab.lab", "milvus_lab.widgets", "milvus_lab.views", "milvus_lab.client",
                          "milvus_lab.server"),
    "milvus_lab.lab": ("milvus_lab.widgets", "milvus_lab.client"),
}


def test_arrows_point_one_way_and_nothing_imports_widgets():
    graph = _graph()
    offences = []
    for module, targets in graph.items():
        for room, forbidden in FORBIDDEN.items():
            if module == room or module.startswith(room + "."):
                offences += [f"{module} imports {t}" for t in targets if t.startswith(forbidden)]
        if not module.startswith(("milvus_lab.widgets", "milvus_lab.cli")) and module != "milvus_lab":
            offences += [f"{module} imports {t}" for t in targets if t.startswith("milvus_lab.widgets")]
    assert not offences, "\n".join(offences)


def test_the_server_room_never_imports_the_lab():
    """The lab measures on a server through server/; server/ itself never reaches up into the lab."""
    offences = [f"{module} imports {t}" for module, targets in _graph().items()
                if module.startswith("milvus_lab.server") for t in targets if t.startswith("milvus_lab.lab")]
    assert not offences, "\n".join(offences)
    assert any(t.startswith("milvus_lab.server") for t in _graph()["milvus_lab.lab.cli"])  # the scan sees lab -> server


# --------------------------------------------------------------------------------------------------
# README's "How the code is organised" lists the rooms in the order of the arrows
# --------------------------------------------------------------------------------------------------
README = PACKAGE.parent / "README.md"


def _room(module: str) -> str:
    """The room of a module: the top-level module or package under milvus_lab (the package itself: ``__init__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _readme_rooms(text: str) -> list[set[str]]:
    """The rooms each bullet of README's "How the code is organised" names at its start (`` `lab/` ``,
    `` `cli.py` `` or `` `widgets/` and `views/` ``), in order."""
    section = text.split("## How the code is organised", 1)[1].split("\n## ", 1)[0]
    rooms = []
    for line in section.splitlines():
        if line.startswith("- `"):
            head = line[2:].split(":", 1)[0]
            rooms.append({name.strip("`").removesuffix(".py").rstrip("/") for name in head.split(" and ")})
    return rooms


def _order_offences(listed: list[set[str]], graph: dict[str, set[str]]) -> list[str]:
    position = {room: i for i, rooms in enumerate(listed) for room in rooms}
    offences = [f"{_room(m)} is not in the list" for m in sorted(graph) if _room(m) not in position]
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            mine, theirs = _room(module), _room(target)
            if mine in position and theirs in position and position[theirs] < position[mine]:
                offences.append(f"{mine} ({module}) uses {theirs} ({target}), listed before it")
    return sorted(set(offences))


def test_readme_lists_every_room_so_that_each_uses_only_rooms_after_it():
    listed = _readme_rooms(README.read_text())
    assert len(listed) > 10, listed
    offences = _order_offences(listed, _graph())
    assert not offences, "\n".join(offences)


def test_the_room_order_check_would_catch_a_room_listed_too_late_or_missing():
    graph = {"milvus_lab.lab.tuning": {"milvus_lab.spec.model"}, "milvus_lab.spec.model": set(),
             "milvus_lab.units": set()}
    assert not _order_offences([{"lab"}, {"spec"}, {"units"}], graph)
    assert _order_offences([{"spec"}, {"lab"}, {"units"}], graph) == [
        "lab (milvus_lab.lab.tuning) uses spec (milvus_lab.spec.model), listed before it"]
    assert _order_offences([{"lab"}, {"spec"}], graph) == ["units is not in the list"]


# --------------------------------------------------------------------------------------------------
# No range bound of the spec restated outside the spec package (milvus_lab/spec/, every file of it)
# --------------------------------------------------------------------------------------------------
SPEC_PACKAGE = "milvus_lab.spec"


def _in_spec(module: str) -> bool:
    """Whether ``module`` is the spec package or one of its files (``milvus_lab.spec.indexes``)."""
    return module == SPEC_PACKAGE or module.startswith(SPEC_PACKAGE + ".")


def _spec_bounds() -> set[int]:
    """Every numeric range bound the spec declares (build, search and collection-level parameters)."""
    out: set[int] = set()

    def add(bound: object) -> None:
        for item in bound if isinstance(bound, tuple) else (bound,):
            if isinstance(item, int) and not isinstance(item, bool):
                out.add(item)

    params = [spec.TOP_K_PARAM]
    params += [getattr(spec, n) for n in ("DIMENSION_PARAM", "INDEX_FILE_SIZE_PARAM") if hasattr(spec, n)]
    profiles = getattr(spec, "PROFILES", None)
    index_sets = [p.indexes for p in profiles.values()] if profiles else [spec.INDEXES]
    for indexes in index_sets:
        for index_spec in indexes.values():
            params += list(index_spec.build.values()) + list(index_spec.search.values())
    for param in params:
        add(param.low)
        add(param.high)
    return out


#: small or common numbers that are bounds in the spec but mean other things elsewhere, and why they may appear
ALLOWED_LITERALS = {
    -1: "padding id / 'all' / the last element",
    0: "zero, first index",
    1: "one, a step, a count",
    2: "a pair, a half, squaring",
    3: "three-point things (repeats, triples)",
    4: "bytes per float32",
    5: "a handful (rows shown, decimals)",
    8: "bits per byte, the binary dimension multiple",
    10: "default top_k of examples, decimal base",
    16: "hex / a common small size",
    20: "a figure width, a count of rows shown",
    32: "bits, a small size",
    50: "percentiles (p50), GloVe's 50-d",
    64: "a common small size, bits",
    100: "percent",
    255: "a byte's largest value",
    256: "values of a byte",
    300: "a plot's dpi / figure size",
    512: "a small buffer size",
    1000: "milliseconds per second",
    1024: "bytes per KiB",
    4096: "page size / rows of a small test",
}


#: a bound's value used in one module for an unrelated reason: value -> (module name part, why)
ALLOWED_IN_MODULE = {
    65536: ("hnsw", "hnswlib's fixed label-operation lock table (MAX_LABEL_OPERATION_LOCKS), counted in memory"),
    96: ("sizing", "a memory band (GB) of the Milvus sizing tool's query-node table"),
    2048: ("sizing", "a memory band (GB) of the Milvus sizing tool's query-node table"),
}


def _allowed(value: int, module: str) -> bool:
    if value in ALLOWED_LITERALS:
        return True
    part = ALLOWED_IN_MODULE.get(value, (None,))[0]
    return part is not None and part in module.rsplit(".", 1)[-1]


def _literal_hits(bounds: set[int], modules: dict[str, Path] = MODULES) -> list[str]:
    out = []
    for module, path in modules.items():
        if _in_spec(module):
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and type(node.value) is int and node.value in bounds \
                    and not _allowed(node.value, module):
                out.append(f"{path.name}:{node.lineno}: {node.value}")
            if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and \
                    isinstance(node.operand, ast.Constant) and type(node.operand.value) is int and \
                    -node.operand.value in bounds and not _allowed(-node.operand.value, module):
                out.append(f"{path.name}:{node.lineno}: {-node.operand.value}")
    return out


def test_no_module_outside_spec_restates_a_range_bound():
    bounds = _spec_bounds()
    assert {65536, 16384}.issubset(bounds)  # the scan reads the real spec
    hits = _literal_hits(bounds)
    assert not hits, "range bounds of the spec restated outside milvus_lab/spec/:\n" + "\n".join(hits)


@pytest.mark.parametrize("literal", [65536, 16384, 32768])
def test_the_literal_scan_would_catch_a_restated_bound(literal, tmp_path):
    fake = tmp_path / "fake.py"
    fake.write_text(f"LIMIT = {literal}\nLOW = -{literal}\nOK = 1024\n")
    hits = _literal_hits(_spec_bounds() | {literal}, {"milvus_lab.fake": fake})
    assert hits == [f"fake.py:1: {literal}", f"fake.py:2: {literal}"]


def test_the_literal_scan_skips_the_whole_spec_package_and_nothing_else(tmp_path):
    """Every file of milvus_lab/spec/ may state a bound; a module merely named like it may not."""
    fake = tmp_path / "fake.py"
    fake.write_text("LIMIT = 65536\n")
    assert {m for m in MODULES if _in_spec(m)} >= {SPEC_PACKAGE, f"{SPEC_PACKAGE}.indexes"}  # the real package
    planted = {"milvus_lab.spec": fake, "milvus_lab.spec.fake": fake, "milvus_lab.spectrum": fake,
               "milvus_lab.lab.spec": fake}
    assert _literal_hits(_spec_bounds(), planted) == ["fake.py:1: 65536"] * 2
