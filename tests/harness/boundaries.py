"""The import-boundary checker: reads the rooms table of docs/architecture.md and reports every import across it.

A room is a folder of the table (`hearth/core/executor/`, `plugins/<name>/` ...); its "may import" cell says which
other rooms and which third-party packages its code may import. `check_tree` walks every .py file under hearth/ and
plugins/ (module level and inside functions, `importlib.import_module("...")` and `__import__("...")` with a
literal included) and returns one `Violation` per import that the table does not allow. docs/architecture.md
("How the test reads the table") is the reference for how a cell is read; this module only implements it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Rooms whose files are not checked: they mirror or measure the others.
UNCHECKED = {"tests", "bench"}


@dataclass(frozen=True)
class Rule:
    """One "may import" cell, read."""

    rooms: frozenset[str] = frozenset()  # Hearth rooms named in backticks
    third_party: frozenset[str] = frozenset()  # canonical distribution names
    deferred_only: frozenset[str] = frozenset()  # "no torch at import time": only inside a function
    everything: bool = False
    public_api_only: bool = False  # "`core` public API only"
    stdlib_only: bool = False  # "stdlib only": no third-party package at all
    plugins_through_hooks: bool = False  # "another plugin only through hooks ..."
    nothing_imports: frozenset[str] = frozenset()  # "nothing imports `cli`"


@dataclass(frozen=True)
class Extras:
    """The "third-party it also uses" cell, read."""

    anywhere: frozenset[str] = frozenset()
    deferred: frozenset[str] = frozenset()
    own_pyproject: bool = False  # "what its own `pyproject.toml` declares"


@dataclass(frozen=True)
class Room:
    name: str  # "core", "core/executor", "plugins/<name>" ...
    folder: str  # as the table writes it
    rule: Rule
    extras: Extras
    cell: str  # the "may import" text, quoted in reports


@dataclass(frozen=True)
class Violation:
    path: str  # relative to the checked root
    line: int
    room: str
    target: str  # the imported module (and name, for a private one)
    rule: str  # the rule broken, in the table's words

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: `{self.room}` imports `{self.target}`: {self.rule}"


class TableError(ValueError):
    """The rooms table cannot be read: names the row and cell at fault."""


# ---------------------------------------------------------------------------------------------------------------
# Reading the table


def room_name(folder: str) -> str:
    """`hearth/core/executor/` and the map's `core/executor/` both name room `core/executor`."""
    name = folder.strip().strip("`").rstrip("/")
    return name.removeprefix("hearth/")


def table_rows(text: str, source: str) -> list[list[str]]:
    """The rows of the first table under "## The rooms", each a list of cell texts."""
    match = re.search(r"^## The rooms\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not match:
        raise TableError(f"{source}: no '## The rooms' section; the import test reads its table")
    rows = []
    for line in match.group(1).splitlines():
        line = line.strip()
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [cell.strip() for cell in _split_cells(line)]
        if cells[0] == "folder" or set(cells[0]) <= {"-", ":", " "}:
            continue  # the header and the separator row
        rows.append(cells)
    if not rows:
        raise TableError(f"{source}: the '## The rooms' section has no table")
    return rows


def _split_cells(line: str) -> list[str]:
    # A pipe inside backticks is text, not a column border.
    cells, current, in_code = [], "", False
    for char in line.strip().strip("|"):
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            cells.append(current)
            current = ""
        else:
            current += char
    cells.append(current)
    return cells


def parse_rule(cell: str, where: str = "") -> Rule:
    """Read one "may import" cell (see docs/architecture.md, "How the test reads the table")."""
    rooms, third, deferred, nothing = set(), set(), set(), set()
    everything = public = stdlib_only = hooks = False
    for clause in re.split(r";|\s—\s", cell):
        clause = clause.strip()
        if not clause:
            continue
        if clause == "everything":
            everything = True
        elif m := re.fullmatch(r"nothing imports `([^`]+)`", clause):
            nothing.add(m.group(1))
        elif m := re.fullmatch(r"no (\S+) at import time", clause):
            deferred.add(canonicalize_name(m.group(1)))
        elif clause.startswith("another plugin only through hooks"):
            hooks = True
        else:
            for item in _split_outside_parentheses(clause, ","):
                item = re.sub(r"\([^)]*\)", "", item).strip()
                if re.search(r"\bpublic API\b", item):
                    public = True
                    item = re.sub(r"\bpublic API\b", "", item)
                if re.search(r"\bonly\b", item):
                    item = re.sub(r"\bonly\b|\bat its boundary\b", "", item)
                    if item.strip() == "stdlib":
                        stdlib_only = True
                item = item.strip()
                if m := re.fullmatch(r"`([^`]+)`", item):
                    rooms.add(room_name(m.group(1)))
                elif item == "stdlib":
                    pass  # every room may use the standard library
                elif re.fullmatch(r"[A-Za-z0-9_.-]+", item):
                    third.add(canonicalize_name(item))
                else:
                    raise TableError(f"{where}cannot read {item!r} in the 'may import' cell {cell!r}")
    return Rule(
        rooms=frozenset(rooms),
        third_party=frozenset(third),
        deferred_only=frozenset(deferred),
        everything=everything,
        public_api_only=public,
        stdlib_only=stdlib_only,
        plugins_through_hooks=hooks,
        nothing_imports=frozenset(nothing),
    )


def parse_extras(cell: str, where: str = "") -> Extras:
    anywhere, deferred, own = set(), set(), False
    for item in _split_outside_parentheses(cell, ";,"):
        item = item.strip()
        if not item:
            continue
        if "pyproject.toml" in item:
            own = True
            continue
        lazy = bool(re.search(r"\(deferred\b", item))
        name = re.sub(r"\([^)]*\)", "", item).strip()
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise TableError(f"{where}cannot read {item!r} in the 'third-party it also uses' cell {cell!r}")
        (deferred if lazy else anywhere).add(canonicalize_name(name))
    return Extras(frozenset(anywhere), frozenset(deferred), own)


def _split_outside_parentheses(text: str, separators: str) -> list[str]:
    items, current, depth = [], "", 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char in separators and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return items


def read_rooms(text: str, source: str = "docs/architecture.md") -> dict[str, Room]:
    """Every room of the table, by name."""
    rooms = {}
    for cells in table_rows(text, source):
        if len(cells) < 3:
            raise TableError(f"{source}: row {cells!r} has fewer than 3 columns (folder, what, may import)")
        name = room_name(cells[0])
        where = f"{source}, room `{name}`: "
        extras = parse_extras(cells[3], where) if len(cells) > 3 else Extras()
        rooms[name] = Room(name, cells[0], parse_rule(cells[2], where), extras, cells[2])
    return rooms


def compare_tables(ours: str, theirs: str) -> list[str]:
    """Where the repository's table and the shared map disagree on the rooms or their "may import" rules."""
    mine = read_rooms(ours, "docs/architecture.md")
    shared = read_rooms(theirs, "ARCHITECTURE.md")
    problems = [
        f"room `{name}` is in ARCHITECTURE.md but not in docs/architecture.md"
        for name in shared.keys() - mine.keys()
    ]
    problems += [
        f"room `{name}` is in docs/architecture.md but not in ARCHITECTURE.md"
        for name in mine.keys() - shared.keys()
    ]
    for name in sorted(mine.keys() & shared.keys()):
        if mine[name].rule != shared[name].rule:
            problems.append(
                f"room `{name}` may import {mine[name].cell!r} in docs/architecture.md "
                f"but {shared[name].cell!r} in ARCHITECTURE.md"
            )
    return problems


# ---------------------------------------------------------------------------------------------------------------
# Reading the code


@dataclass(frozen=True)
class Import:
    line: int
    module: str  # absolute dotted name
    names: tuple[str, ...] = ()  # for `from module import a, b`
    deferred: bool = False  # inside a function or under `if TYPE_CHECKING:`
    by_name: bool = (
        False  # a string naming a module ("hearth_sd.loaders", "hearth.cli.run:run"): a lazy import
    )


def module_name(relative: Path) -> str:
    """`hearth/core/plugins.py` -> `hearth.core.plugins`; `plugins/sd/hearth_sd/x.py` -> `hearth_sd.x`."""
    parts = list(relative.with_suffix("").parts)
    if parts[0] == "plugins":
        parts = parts[2:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


# A whole string that is a dotted module name, optionally with an entry point's ":attribute".
MODULE_STRING = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?::[A-Za-z_][\w.]*)?")


def imports_of(
    source: str,
    module: str,
    is_package: bool,
    filename: str = "<source>",
    names_module: Callable[[str], bool] | None = None,
) -> list[Import]:
    """Every import in a module's source: statements at any depth, import_module / __import__ with a literal, and
    (given ``names_module``, which says whether a dotted name is a module of the checked tree) every string that
    names such a module, as lazy-import tables and entry points do."""
    tree = ast.parse(source, filename)
    found: list[Import] = []
    import_call_args: set[int] = set()
    package = module if is_package else module.rpartition(".")[0]

    def resolve(level: int, name: str | None) -> str:
        if not level:
            return name or ""
        base = package.split(".")
        base = base[: len(base) - (level - 1)] if level > 1 else base
        return ".".join([*base, name] if name else base)

    def visit(node: ast.AST, deferred: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(node.lineno, alias.name, (), deferred) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append(
                Import(
                    node.lineno, resolve(node.level, node.module), tuple(a.name for a in node.names), deferred
                )
            )
        elif isinstance(node, ast.Call) and _is_import_call(node) and node.args:
            first = node.args[0]
            import_call_args.add(id(first))
            if (
                isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and not first.value.startswith(".")
            ):
                found.append(Import(node.lineno, first.value, (), deferred))
        elif (
            names_module is not None
            and isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in import_call_args
            and MODULE_STRING.fullmatch(node.value)
            and names_module(node.value.partition(":")[0])
        ):
            found.append(Import(node.lineno, node.value.partition(":")[0], (), True, by_name=True))
        inner = deferred or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, inner)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return found


def _is_import_call(node: ast.Call) -> bool:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in {"__import__", "import_module"}
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


# ---------------------------------------------------------------------------------------------------------------
# Checking


@dataclass
class Tree:
    """A checked tree: its rooms, the plugins' packages and each plugin's declared requirements."""

    root: Path
    rooms: dict[str, Room]
    plugin_packages: dict[str, str] = field(default_factory=dict)  # top-level import name -> plugins/<name>
    plugin_requirements: dict[str, frozenset[str]] = field(default_factory=dict)
    _distributions: dict[str, list[str]] = field(default_factory=importlib.metadata.packages_distributions)

    @classmethod
    def load(cls, root: Path, table: str) -> Tree:
        tree = cls(root, read_rooms(table))
        for folder in sorted((root / "plugins").glob("*/")):
            room = f"plugins/{folder.name}"
            for child in folder.iterdir():
                if child.is_dir() and (child / "__init__.py").exists():
                    tree.plugin_packages[child.name] = room
                elif child.suffix == ".py" and child.name != "setup.py":
                    tree.plugin_packages[child.stem] = room
            pyproject = folder / "pyproject.toml"
            requirements = set()
            if pyproject.exists():
                project = tomllib.loads(pyproject.read_text()).get("project", {})
                requirements = {
                    canonicalize_name(Requirement(r).name) for r in project.get("dependencies", [])
                }
            tree.plugin_requirements[room] = frozenset(requirements)
        return tree

    def room_of_file(self, relative: Path) -> str | None:
        parts = relative.parts
        if parts[0] == "plugins":
            return f"plugins/{parts[1]}"
        best = None
        for name in self.rooms:
            if name in UNCHECKED or name.startswith("plugins/"):
                continue
            prefix = ("hearth", *name.split("/"))
            if parts[: len(prefix)] == prefix and (best is None or len(name) > len(best)):
                best = name
        return best

    def room_of_module(self, module: str) -> str | None:
        """The room an imported module lives in; None for the bare `hearth` namespace and non-Hearth modules."""
        top = module.split(".")[0]
        if top in self.plugin_packages:
            return self.plugin_packages[top]
        if top != "hearth" or module == "hearth":
            return None
        parts = module.split(".")[1:]
        best = None
        for name in self.rooms:
            if name in UNCHECKED or name.startswith("plugins/"):
                continue
            prefix = name.split("/")
            if parts[: len(prefix)] == prefix and (best is None or len(name) > len(best)):
                best = name
        return best or "?"

    def distribution(self, module: str) -> str:
        top = module.split(".")[0]
        names = self._distributions.get(top)
        return canonicalize_name(names[0] if names else top)

    def rule_for(self, room: str) -> Room:
        return self.rooms["plugins/<name>"] if room.startswith("plugins/") else self.rooms[room]

    def check_import(self, path: str, room: str, imp: Import) -> list[Violation]:
        found = self._check_import(path, room, imp)
        if imp.by_name:
            found = [
                replace(v, rule=f"{v.rule} (named in a string: a lazy import counts as one)") for v in found
            ]
        return found

    def names_module(self, dotted: str) -> bool:
        """Whether ``dotted`` is a module or package of the checked tree (hearth/ or a plugin's package)."""
        parts = dotted.split(".")
        if parts[0] == "hearth":
            base = self.root
        elif parts[0] in self.plugin_packages:
            base = self.root / self.plugin_packages[parts[0]]
        else:
            return False
        path = base.joinpath(*parts)
        return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()

    def _check_import(self, path: str, room: str, imp: Import) -> list[Violation]:
        spec = self.rule_for(room)
        rule = spec.rule
        if rule.everything:
            return []
        module_room = self.room_of_module(imp.module)
        if module_room == "?":
            return [Violation(path, imp.line, room, imp.module, "not a module of any room in the table")]
        # `from hearth import cli` imports hearth.cli; `from hearth.core import executor` a sub-room of core.
        deeper = {self.room_of_module(f"{imp.module}.{name}") for name in imp.names if name != "*"}
        deeper -= {None, "?", module_room}
        shown = imp.module if not imp.names else f"{imp.module}: {', '.join(imp.names)}"
        if not deeper and module_room is None:
            if imp.module.split(".")[0] in {"hearth", *sys.stdlib_module_names}:
                return []
            return self._check_third_party(path, room, spec, imp)
        found = []
        for target_room in sorted(deeper | ({module_room} - {None})):
            found += self._check_room(path, room, spec, imp, shown, target_room)
        return found

    def _check_room(
        self, path: str, room: str, spec: Room, imp: Import, shown: str, target_room: str
    ) -> list[Violation]:
        rule = spec.rule
        if target_room == room:
            return []
        if target_room in self._nothing_imports():
            return [Violation(path, imp.line, room, shown, f"nothing imports `{target_room}`")]
        if room == "core" and target_room.startswith("core/"):
            return []  # core composes its own sub-rooms
        if target_room.startswith("plugins/"):
            why = (
                f"a plugin may not import another plugin (`{target_room}`): reach it through hooks"
                if room.startswith("plugins/")
                else f"`{room}` may import {spec.cell}, never a plugin (`{target_room}`)"
            )
            return [Violation(path, imp.line, room, shown, why)]
        if not self._room_allowed(room, target_room, rule):
            return [Violation(path, imp.line, room, shown, f"`{room}` may import {spec.cell}")]
        if rule.public_api_only and target_room.split("/")[0] == "core":
            private = [p for p in imp.module.split(".") if p.startswith("_")]
            private += [n for n in imp.names if n.startswith("_")]
            if private:
                return [
                    Violation(
                        path,
                        imp.line,
                        room,
                        shown,
                        f"`{', '.join(private)}` is not `core` public API (`{room}` may import {spec.cell})",
                    )
                ]
        return []

    def _nothing_imports(self) -> set[str]:
        names = set()
        for spec in self.rooms.values():
            names |= {room_name(n) for n in spec.rule.nothing_imports}
        return names

    @staticmethod
    def _room_allowed(room: str, target: str, rule: Rule) -> bool:
        for allowed in rule.rooms:
            if allowed == "core" and room.startswith("core/"):
                if target == "core":
                    return True  # a sub-room of core sees only core's own modules
            elif target == allowed or target.startswith(allowed + "/"):
                return True
        return False

    def _check_third_party(self, path: str, room: str, spec: Room, imp: Import) -> list[Violation]:
        rule, extras = spec.rule, spec.extras
        dist = self.distribution(imp.module)
        if dist in rule.third_party or dist in extras.anywhere:
            return []
        if (
            room.startswith("plugins/")
            and extras.own_pyproject
            and dist in self.plugin_requirements.get(room, ())
        ):
            return []
        if dist in rule.deferred_only or dist in extras.deferred:
            if imp.deferred:
                return []
            if dist in rule.deferred_only:
                return [
                    Violation(
                        path,
                        imp.line,
                        room,
                        imp.module,
                        f"no {dist} at import time: import it inside a function",
                    )
                ]
            return [
                Violation(
                    path,
                    imp.line,
                    room,
                    imp.module,
                    f"`{room}` uses {dist} only inside a function (deferred)",
                )
            ]
        if rule.stdlib_only:
            return [Violation(path, imp.line, room, imp.module, f"`{room}` may import {spec.cell}")]
        also = ", ".join(sorted(extras.anywhere | extras.deferred)) or "nothing else"
        if room.startswith("plugins/") and extras.own_pyproject:
            return [
                Violation(
                    path,
                    imp.line,
                    room,
                    imp.module,
                    f"{dist} is not declared: add it to {room}/pyproject.toml's dependencies "
                    f"(a plugin may use {also} and what its own pyproject.toml declares)",
                )
            ]
        return [
            Violation(
                path,
                imp.line,
                room,
                imp.module,
                f"`{room}` may import {spec.cell} (third-party also used: {also}); "
                f"add {dist} to its row of docs/architecture.md if it belongs there",
            )
        ]


# Folders of build outputs (.gitignore lists them): a plugin's build/lib holds a copy of its package.
BUILD_OUTPUTS = {"__pycache__", "build", "dist"}


def check_tree(root: Path, table: str) -> list[Violation]:
    """Every import across the table under root/hearth and root/plugins, in file and line order."""
    tree = Tree.load(root, table)
    violations: list[Violation] = []
    files = sorted([*(root / "hearth").rglob("*.py"), *(root / "plugins").rglob("*.py")])
    for file in files:
        relative = file.relative_to(root)
        if any(part.endswith(".egg-info") or part in BUILD_OUTPUTS for part in relative.parts):
            continue  # what setuptools and pip leave beside the sources (copies of them), not the sources
        room = tree.room_of_file(relative)
        if room is None or room in UNCHECKED:
            continue
        module = module_name(relative)
        for imp in imports_of(
            file.read_text(), module, file.name == "__init__.py", str(relative), tree.names_module
        ):
            violations.extend(tree.check_import(str(relative), room, imp))
    return violations
