"""Measure how ComfyUI custom-node packs from the wild load, and run, in Hearth. Prints figures; not a test.

    /tmp/compat/venv/bin/python bench/compat_packs.py FOLDER [--json] [--workflows DIR] [--comfy PATH]

FOLDER holds packs as ComfyUI's ``custom_nodes`` does (a folder with ``__init__.py``, or a single ``.py``
file). Each pack is loaded alone, in its own process, through Hearth's real loader: the ``comfy`` CLI of the
environment being measured (default: the one beside this Python; ``--comfy`` names another) runs
``comfy plugins --json --custom-nodes <a folder holding only that pack> --isolation off``, so one pack cannot
spoil another and what is measured is what a user gets. Per pack it reports:

* loads: the pack imported without error (else the error's last line, and whether torchvision caused it);
* registered / declared: the node classes Hearth registered for the pack, against the node classes the pack
  declares. Real ComfyUI is not available to count the declared ones, so they are counted statically: every
  ``.py`` file of the pack that its ``__init__.py`` reaches through imports (relative, absolute names that
  resolve to a pack file, and ``importlib.import_module`` with a literal or a literal prefix such as
  ``".py.nodes.{}".format(name)``, which takes every module under that prefix) is parsed, and the keys of the
  mappings it builds are counted: dict literals assigned to a name ending in ``CLASS_MAPPINGS`` (or KJNodes'
  ``NODE_CONFIG``), ``NAME.update({...})`` and ``NAME[key] = ...`` on such names -- in ``__init__.py``, and in
  another module only when some module takes that mapping by name (``from .image import IMAGE_CLASS_MAPPINGS``,
  ``module.NODE_CLASS_MAPPINGS``), as a helper's own mapping that nothing merges is not registered by ComfyUI
  either. ``NODE_CLASS_MAPPINGS`` imported from ComfyUI's ``nodes`` (the global registry packs read) is not the
  pack's. A key that is not a string literal is resolved when it is a class attribute whose string is plain
  from the source (a literal, a module constant, an f-string or a call of a pack function returning one:
  rgthree's ``RgthreeSeed.NAME = get_name("Seed")``), else counted once by its source text. Keys declared under
  a condition (a config flag, an optional dependency) count as declared: the figure is what the pack can
  register, so registered/declared may sit a little under 100% where a pack's own switch is off;
* torchvision: declared nodes whose class lives in a file that imports torchvision at module level, directly,
  through another pack file, or through an installed distribution that requires torchvision (timm,
  open_clip...) -- torchvision cannot import beside the CPU torch wheel on these machines, so those nodes cannot
  work whatever Hearth does and are counted apart: ``% ok`` is the share of the other declared nodes that
  ``comfy nodes`` lists without an error (matched by name; keys known only by their source text are matched by
  count);
* missing internals: ComfyUI names the pack touched that Hearth lacks (``comfy plugins``' record of them);
* node errors: nodes whose ``INPUT_TYPES`` raised, and nodes the loader skipped (its notes say why);
* load s: the time the loader took to import the pack (its ``__init__`` and all it imports), timed around the
  loader's import step in that same ``comfy plugins`` process; where that step cannot be found, the call's wall
  time less the same call on an empty folder (Hearth's start);
* installed at load: distributions present after loading that were not before (packs that ``pip install``);
* clean stdout: whether ``--json`` printed exactly one JSON document.

With ``--workflows DIR``, ``DIR/<pack>.json`` (an API-format workflow of the pack's model-free nodes) is run with
``comfy run`` in the same way, and passes when it exits 0. With ``--models-dir`` too, ``DIR/<pack>.models.json`` (a
workflow of the pack's main nodes on tiny models, made as docs/compat-packs.md shows) runs with that models folder.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

MAPPING_NAME = re.compile(r"(CLASS_MAPPINGS|^NODE_CONFIG)$")
SKIP_DIRS = {"__pycache__", ".git", "node_modules", "web", "js"}

# Runs the comfy CLI with the custom-nodes loader's import of each pack timed (written to $HEARTH_BENCH_TIMES);
# where the loader has no such step, load s falls back to the call's wall time less Hearth's start.
TIMED_CLI = """
import os, sys, time
try:
    from hearth_comfy_compat.loader import CustomNodesLoader
    untimed = CustomNodesLoader._import
    def timed(name, path):
        begin = time.perf_counter()
        try:
            return untimed(name, path)
        finally:
            with open(os.environ["HEARTH_BENCH_TIMES"], "a") as out:
                out.write(f"{time.perf_counter() - begin}\\n")
    CustomNodesLoader._import = staticmethod(timed)
except (ImportError, AttributeError):
    pass
from hearth.cli.main import main
sys.argv[0] = "comfy"
sys.exit(main())
"""

LIST_DISTRIBUTIONS = """
import importlib.metadata as m, json, re
dists, tv = set(), set()
for d in m.distributions():
    name = (d.metadata["Name"] or "").lower()
    dists.add(name)
    needs = any(re.match(r"torchvision\\b", r) and "extra ==" not in r for r in (d.requires or []))
    if needs:
        top = (d.read_text("top_level.txt") or "").split()
        tv.update(top or [name.replace("-", "_")])
print(json.dumps({"dists": sorted(dists), "torchvision_modules": sorted(tv | {"torchvision"})}))
"""


# ---------------------------------------------------------------------------------------------- static count


@dataclass
class Declared:
    """What the pack's code declares: node keys, and which of them live in torchvision-bound files."""

    keys: dict[str, str] = field(default_factory=dict)  # key -> pack file defining its class
    torchvision_keys: list[str] = field(default_factory=list)
    torchvision_files: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)  # keys counted by their source text


def _module_level(body: list[ast.stmt], guarded: bool = False):
    """Statements that run when the module is imported, with whether an ``except`` guards them."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        yield node, guarded
        if isinstance(node, ast.Try):
            catches = bool(node.handlers)
            yield from _module_level(node.body, guarded or catches)
            for part in (node.orelse, node.finalbody, *[h.body for h in node.handlers]):
                yield from _module_level(part, guarded)
        elif isinstance(node, ast.If | ast.For | ast.While | ast.With | ast.ClassDef):
            yield from _module_level(node.body, guarded)
            yield from _module_level(getattr(node, "orelse", []), guarded)


class PackSource:
    """The parsed ``.py`` files of one pack, by dotted module name relative to the pack's folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.trees: dict[str, ast.Module] = {}
        self.files: dict[str, Path] = {}
        paths = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for path in paths:
            rel = path.relative_to(root.parent if root.is_file() else root)
            if any(part in SKIP_DIRS for part in rel.parts):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join(parts) if parts else ""
            try:
                self.trees[name] = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
            except (SyntaxError, ValueError):
                continue
            self.files[name] = path
        self.entry = "" if root.is_dir() else root.stem
        self.unresolved: set[str] = set()
        self.classes: dict[str, list[str]] = {}
        for name, tree in self.trees.items():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    self.classes.setdefault(node.name, []).append(name)

    def _package(self, module: str) -> str:
        is_package = self.files[module].name == "__init__.py"
        return module if is_package else module.rpartition(".")[0]

    def _resolve(self, module: str, target: str, level: int) -> list[str]:
        """Pack modules a name imported from ``module`` can be (relative, or an absolute name ending like one)."""
        if level:
            base = self._package(module)
            for _ in range(level - 1):
                base = base.rpartition(".")[0]
            full = f"{base}.{target}".strip(".") if target else base
            return [full] if full in self.trees else []
        return [m for m in self.trees if m and (m == target or m.endswith("." + target))]

    def imports(self, module: str, everywhere: bool = False):
        """(pack modules, third-party top names, guarded) for each import ``module`` runs at import time."""
        tree = self.trees[module]
        nodes = ((n, False) for n in ast.walk(tree)) if everywhere else _module_level(tree.body)
        for node, guarded in nodes:
            found: list[str] = []
            tops: list[str] = []
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found += self._resolve(module, alias.name, 0)
                    tops.append(alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom):
                hits = self._resolve(module, node.module or "", node.level)
                found += hits
                for alias in node.names:  # `from . import image` imports a submodule
                    prefix = hits[0] + "." if hits and hits[0] else ""
                    if prefix + alias.name in self.trees:
                        found.append(prefix + alias.name)
                if not node.level and node.module:
                    tops.append(node.module.split(".")[0])
            elif isinstance(node, ast.Expr | ast.Assign) and isinstance(node.value, ast.Call):
                found += self._dynamic_import(module, node.value)
            if found or tops:
                yield found, tops, guarded
        if not everywhere:  # import_module calls inside loops and assignments at module level
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    hits = self._dynamic_import(module, node)
                    if hits:
                        yield hits, [], True

    def _dynamic_import(self, module: str, call: ast.Call) -> list[str]:
        func = call.func
        named = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if named != "import_module" or not call.args:
            return []
        arg = call.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            text, exact = arg.value, True
        elif (isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute)
              and isinstance(arg.func.value, ast.Constant) and isinstance(arg.func.value.value, str)):
            text, exact = arg.func.value.value.split("{")[0], False
        elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
            text, exact = str(arg.values[0].value), False
        else:
            return []
        level = len(text) - len(text.lstrip("."))
        text = text.lstrip(".")
        if exact:
            return self._resolve(module, text, level)
        base = self._resolve(module, text.rstrip("."), level) if level else []
        prefix = (base[0] + ".") if base and base[0] else text
        return [m for m in self.trees if m.startswith(prefix)]

    def reachable(self) -> set[str]:
        seen, todo = set(), [self.entry]
        while todo:
            module = todo.pop()
            if module in seen or module not in self.trees:
                continue
            seen.add(module)
            for found, _, _ in self.imports(module):
                todo.extend(found)
        return seen

    def torchvision_bound(self, torchvision_modules: set[str]) -> set[str]:
        """Modules that cannot import without torchvision: an unguarded module-level import of it (or of a
        distribution that requires it), directly or through another pack module."""
        direct: dict[str, set[str]] = {}
        bound: set[str] = set()
        for module in self.trees:
            direct[module] = set()
            for found, tops, guarded in self.imports(module):
                if guarded:
                    continue
                if any(top in torchvision_modules for top in tops):
                    bound.add(module)
                direct[module].update(found)
        changed = True
        while changed:
            changed = False
            for module, deps in direct.items():
                if module not in bound and deps & bound:
                    bound.add(module)
                    changed = True
        return bound

    def _class_name_attr(self, cls: str, attr: str) -> str | None:
        for module in self.classes.get(cls, []):
            for node in ast.walk(self.trees[module]):
                if isinstance(node, ast.ClassDef) and node.name == cls:
                    for item in node.body:
                        if (isinstance(item, ast.Assign)
                                and any(getattr(t, "id", None) == attr for t in item.targets)):
                            return self._string(module, item.value, {}, 0)
        return None

    def _bound(self, module: str, name: str) -> tuple[str, ast.AST] | None:
        """Where ``name`` is bound at module level in ``module`` (a string assignment or a function), following
        ``from .x import name`` to another pack module."""
        for node in self.trees[module].body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                return module, node
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and getattr(node.targets[0], "id", None) == name):
                return module, node.value
            if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
                original = next(a.name for a in node.names if (a.asname or a.name) == name)
                for hit in self._resolve(module, node.module or "", node.level):
                    if hit != module:
                        found = self._bound(hit, original)
                        if found:
                            return found
        return None

    def _string(self, module: str, node: ast.AST, env: dict[str, str], depth: int) -> str | None:
        """The string ``node`` evaluates to, where that is plain from the source: literals, module constants,
        f-strings, ``+``, ``"...".format(...)`` and calls of a pack function that returns such an expression
        (rgthree's ``NAME = get_name("Seed")``, which gives "Seed (rgthree)"); None otherwise."""
        if depth > 8:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            found = self._bound(module, node.id)
            if found and not isinstance(found[1], ast.FunctionDef):
                return self._string(found[0], found[1], {}, depth + 1)
            return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = (self._string(module, n, env, depth + 1) for n in (node.left, node.right))
            return left + right if left is not None and right is not None else None
        if isinstance(node, ast.JoinedStr):
            parts = [self._string(module, v.value if isinstance(v, ast.FormattedValue) else v, env, depth + 1)
                     for v in node.values]
            return "".join(parts) if all(p is not None for p in parts) else None  # type: ignore[arg-type]
        if not isinstance(node, ast.Call) or node.keywords:
            return None
        args = [self._string(module, a, env, depth + 1) for a in node.args]
        if any(a is None for a in args):
            return None
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "format":
            template = self._string(module, func.value, env, depth + 1)
            return template.format(*args) if template is not None else None
        found = self._bound(module, func.id) if isinstance(func, ast.Name) else None
        if found and isinstance(found[1], ast.FunctionDef):
            body = [b for b in found[1].body if not (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))]
            params = [a.arg for a in found[1].args.args]
            if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value and len(args) <= len(params):
                return self._string(found[0], body[0].value, dict(zip(params, args, strict=False)), depth + 1)
        return None

    def _key(self, node: ast.expr) -> str:
        if isinstance(node, ast.Constant):
            return str(node.value)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            found = self._class_name_attr(node.value.id, node.attr)
            if found is not None:
                return found
        self.unresolved.add(ast.unparse(node))
        return ast.unparse(node)

    def _home(self, module: str, value: ast.expr | None) -> str:
        """The pack module that defines the class a mapping entry names (else the mapping's own module)."""
        if isinstance(value, ast.Dict):  # KJNodes: {"class": X, "name": ...}
            for k, v in zip(value.keys, value.values, strict=True):
                if isinstance(k, ast.Constant) and k.value == "class":
                    value = v
        name = value.id if isinstance(value, ast.Name) else getattr(value, "attr", None)
        homes = self.classes.get(name or "", [])
        if module in homes or not homes:
            return module
        return homes[0]

    def declared(self, modules: set[str]) -> dict[str, str]:
        # A module's mapping counts when it is the entry's, or when another module takes it by name (`from .image
        # import IMAGE_CLASS_MAPPINGS`, `imported_module.NODE_CLASS_MAPPINGS`): a helper module's own mapping that
        # nothing merges (efficiency's py/city96_latent_upscaler.py) is not registered by ComfyUI either.
        taken: set[tuple[str | None, str]] = set()  # (module, mapping name); None: a module not known statically
        for module in modules:
            for node in ast.walk(self.trees[module]):
                if isinstance(node, ast.ImportFrom):
                    for hit in self._resolve(module, node.module or "", node.level):
                        taken.update((hit, a.name) for a in node.names)
                elif isinstance(node, ast.Attribute):
                    taken.add((None, node.attr))
        keys: dict[str, str] = {}
        for module in sorted(modules):
            tree = self.trees[module]
            comfy_globals = {a.asname or a.name for n in ast.walk(tree)
                             if isinstance(n, ast.ImportFrom) and n.module == "nodes" and not n.level
                             for a in n.names}

            def ours(target: ast.expr) -> bool:
                return (isinstance(target, ast.Name) and bool(MAPPING_NAME.search(target.id))
                        and target.id not in comfy_globals  # noqa: B023
                        and (module == self.entry or (module, target.id) in taken  # noqa: B023
                             or (None, target.id) in taken))  # noqa: B023

            for node in ast.walk(tree):
                entries: list[tuple[ast.expr | None, ast.expr | None]] = []
                if isinstance(node, ast.Assign | ast.AnnAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        if ours(target) and isinstance(node.value, ast.Dict):
                            entries += zip(node.value.keys, node.value.values, strict=True)
                        if isinstance(target, ast.Subscript) and ours(target.value):
                            entries.append((target.slice, node.value))
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                      and node.func.attr == "update" and ours(node.func.value)):
                    for arg in node.args:
                        if isinstance(arg, ast.Dict):
                            entries += zip(arg.keys, arg.values, strict=True)
                    entries += [(ast.Constant(kw.arg), kw.value) for kw in node.keywords if kw.arg]
                for key, value in entries:
                    if key is not None:  # `**other` merges a mapping counted where it is built
                        keys.setdefault(self._key(key), self._home(module, value))
        return keys


def scan(root: Path, torchvision_modules: set[str]) -> Declared:
    source = PackSource(root)
    reach = source.reachable()
    keys = source.declared(reach)
    bound = source.torchvision_bound(torchvision_modules)
    return Declared(keys=keys, torchvision_keys=sorted(k for k, m in keys.items() if m in bound),
                    unresolved=sorted(source.unresolved),
                    torchvision_files=sorted(str(source.files[m].relative_to(root)) for m in bound & reach
                                             if root.is_dir()))


# ---------------------------------------------------------------------------------------------- loading


@dataclass
class PackResult:
    pack: str
    loads: bool = False
    error: str = ""
    error_tail: list[str] = field(default_factory=list)
    torchvision_error: bool = False
    registered: int = 0
    declared: int = 0
    torchvision_nodes: int = 0
    ok_percent: float = 0.0
    unregistered: list[str] = field(default_factory=list)  # declared (string keys, not torchvision), not listed
    undeclared: list[str] = field(default_factory=list)  # listed, but no declared key: a miss of the static count
    missing_internals: list[str] = field(default_factory=list)
    node_errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # the loader's notes: nodes it skipped, and why
    load_s: float = 0.0
    installed_at_load: list[str] = field(default_factory=list)
    clean_stdout: bool = True
    workflow: str = ""  # "", "pass" or "fail: <last line>"
    workflow_tail: list[str] = field(default_factory=list)
    model_workflow: str = ""  # the same for <pack>.models.json, run with --models-dir
    model_workflow_tail: list[str] = field(default_factory=list)


def _json_document(stdout: str) -> tuple[dict | None, bool]:
    """The JSON document in ``stdout``, and whether stdout was exactly that document."""
    text = stdout.strip()
    try:
        return json.loads(text), True
    except ValueError:
        pass
    start = text.find('{\n  "plugins"')
    if start < 0:
        return None, False
    try:
        document, _ = json.JSONDecoder().raw_decode(text[start:])
    except ValueError:
        return None, False
    return document, False


def _distributions(python: Path) -> dict:
    out = subprocess.run([str(python), "-c", LIST_DISTRIBUTIONS], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _isolated_folder(pack: Path, scratch: Path) -> Path:
    folder = scratch / "custom_nodes"
    folder.mkdir()
    (folder / pack.name).symlink_to(pack.resolve())
    return folder


def _plugins(comfy: str, folder: Path, cwd: Path,
             timeout: float) -> tuple[subprocess.CompletedProcess, float, float | None]:
    """``comfy plugins --json`` on ``folder``: the process, its wall time, and the time the loader took to import
    the pack (None where it could not be timed)."""
    times = cwd / "load-times.txt"
    python = str(Path(comfy).parent / "python")
    begin = time.perf_counter()
    try:
        done = subprocess.run([python, "-c", TIMED_CLI, "plugins", "--json", "--custom-nodes", str(folder),
                               "--isolation", "off"], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                              env=dict(_env(), HEARTH_BENCH_TIMES=str(times)))
    except subprocess.TimeoutExpired as gone:
        done = subprocess.CompletedProcess(gone.cmd, 124, gone.stdout or "", f"timed out after {timeout}s")
    took = time.perf_counter() - begin
    imported = [float(line) for line in times.read_text().split()] if times.is_file() else []
    return done, took, (sum(imported) if imported else None)


def _env() -> dict[str, str]:
    import os
    env = dict(os.environ, HEARTH_ISOLATION="off", PYTHONUNBUFFERED="1")
    env.pop("HEARTH_CUSTOM_NODES", None)
    return env


def startup_time(comfy: str, timeout: float) -> float:
    """Hearth's own start: ``comfy plugins --json`` over an empty folder (the best of two)."""
    times = []
    for _ in range(2):
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch) / "custom_nodes"
            folder.mkdir()
            times.append(_plugins(comfy, folder, Path(scratch), timeout)[1])
    return min(times)


def node_names(comfy: str, folder: Path, cwd: Path, timeout: float) -> set[str]:
    """The node types ``comfy nodes --json`` lists with the packs of ``folder`` loaded."""
    try:
        done = subprocess.run([comfy, "nodes", "--json", "--custom-nodes", str(folder), "--isolation", "off"],
                              capture_output=True, text=True, cwd=cwd, timeout=timeout, env=_env())
    except subprocess.TimeoutExpired:
        return set()
    text = done.stdout.strip()
    try:
        document = json.loads(text[text.find("{"):]) if "{" in text else {}
    except ValueError:
        return set()
    return set(document) if isinstance(document, dict) else set()


def measure(pack: Path, comfy: str, python: Path, startup: float, tv_modules: set[str], timeout: float,
            workflows: Path | None, builtin: set[str], models: Path | None = None) -> PackResult:
    result = PackResult(pack=pack.stem if pack.is_file() else pack.name)
    declared = scan(pack, tv_modules)
    result.declared, result.torchvision_nodes = len(declared.keys), len(declared.torchvision_keys)
    before = set(_distributions(python)["dists"])
    with tempfile.TemporaryDirectory() as scratch:
        folder = _isolated_folder(pack, Path(scratch))
        done, took, imported = _plugins(comfy, folder, Path(scratch), timeout)
        result.load_s = round(imported if imported is not None else max(0.0, took - startup), 2)
        document, result.clean_stdout = _json_document(done.stdout)
        record = None
        for plugin in (document or {}).get("plugins", []):
            if plugin.get("kind") == "comfyui" and Path(plugin.get("module", "")).name == pack.name:
                record = plugin
        if record is None:
            result.error = f"no record (exit {done.returncode}): " + (done.stderr.strip().splitlines() or [""])[-1]
            result.error_tail = done.stderr.strip().splitlines()[-6:]
        else:
            result.loads = not record.get("error")
            result.error = record.get("error") or ""
            result.error_tail = (record.get("traceback") or "").strip().splitlines()[-6:]
            result.registered = int(record.get("node_count") or 0)
            result.missing_internals = list(record.get("missing_internals") or [])
            result.node_errors = dict(record.get("node_errors") or {})
            result.notes = list(record.get("notes") or [])
        result.torchvision_error = "torchvision" in result.error + "\n".join(result.error_tail)
        expected = result.declared - result.torchvision_nodes
        ok = 0
        if result.loads:
            # Matched by name where the key is known; registered nodes no key matched are taken to be the keys
            # counted by their source text (rgthree's NAME = get_name(...)).
            # A node listed with an error (its INPUT_TYPES or define_schema raised) is not a working node.
            everything = node_names(comfy, folder, Path(scratch), timeout) - builtin
            listed = everything - set(result.node_errors)
            torchvision, unresolved = set(declared.torchvision_keys), set(declared.unresolved)
            result.unregistered = sorted(k for k in declared.keys if k not in listed | torchvision | unresolved)
            matched = listed & set(declared.keys)
            if not declared.unresolved:
                result.undeclared = sorted(everything - set(declared.keys))
            ok = len(matched - torchvision) + min(len(unresolved - torchvision), max(0, len(listed - matched)))
        result.ok_percent = round(100.0 * ok / expected, 1) if expected else 100.0
        if workflows is not None and (workflows / f"{result.pack}.json").is_file():
            result.workflow, result.workflow_tail = run_workflow(comfy, workflows / f"{result.pack}.json",
                                                                 folder, Path(scratch), timeout)
        if workflows is not None and models is not None and (workflows / f"{result.pack}.models.json").is_file():
            result.model_workflow, result.model_workflow_tail = run_workflow(
                comfy, workflows / f"{result.pack}.models.json", folder, Path(scratch), timeout, models)
    result.installed_at_load = sorted(set(_distributions(python)["dists"]) - before)
    return result


def run_workflow(comfy: str, workflow: Path, folder: Path, cwd: Path, timeout: float,
                 models: Path | None = None) -> tuple[str, list[str]]:
    models = models.resolve() if models is not None else cwd / "models"
    command = [comfy, "run", str(workflow.resolve()), "--custom-nodes", str(folder), "--isolation", "off",
               "--out", str(cwd / "output"), "--input-dir", str(cwd / "input"), "--models-dir", str(models)]
    (cwd / "input").mkdir(exist_ok=True)
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=timeout, env=_env())
    except subprocess.TimeoutExpired:
        return f"fail: timed out after {timeout}s", []
    tail = (done.stdout + done.stderr).strip().splitlines()[-8:]
    if done.returncode == 0:
        return "pass", tail
    return "fail: " + (tail[-1] if tail else f"exit {done.returncode}"), tail


def packs_in(folder: Path) -> list[Path]:
    found = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name.lower()):
        if entry.name.startswith((".", "__")) or entry.name.endswith(".disabled"):
            continue
        if (entry.is_dir() and (entry / "__init__.py").is_file()) or entry.suffix == ".py":
            found.append(entry)
    return found


def table(results: list[PackResult], with_workflows: bool, with_models: bool = False) -> str:
    head = ["pack", "loads", "registered/declared", "torchvision", "% ok", "missing", "node err", "load s",
            "stdout"]
    if with_workflows:
        head.append("workflow")
    if with_workflows and with_models:
        head.append("model workflow")
    rows = [head]
    for r in results:
        loads = "yes" if r.loads else ("no (torchvision)" if r.torchvision_error else "no")
        row = [r.pack, loads, f"{r.registered}/{r.declared}", str(r.torchvision_nodes), f"{r.ok_percent:.0f}",
               str(len(r.missing_internals)), str(len(r.node_errors) + len(r.notes)), f"{r.load_s:.2f}",
               "clean" if r.clean_stdout else "NOT clean"]
        if with_workflows:
            row.append(r.workflow.split(":")[0] or "-")
        if with_workflows and with_models:
            row.append(r.model_workflow.split(":")[0] or "-")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def summary(results: list[PackResult]) -> str:
    loading = [r for r in results if r.loads]
    good = [r for r in loading if r.ok_percent >= 80.0]
    registered = sum(r.registered for r in results)
    declared = sum(r.declared for r in results)
    tv = sum(r.torchvision_nodes for r in results)
    ran = [r for r in results if r.workflow == "pass"]
    written = [r for r in results if r.workflow]
    text = (f"{len(loading)} of {len(results)} packs load ({len(good)} with >= 80% of their non-torchvision nodes); "
            f"{registered} of {declared} declared nodes registered ({tv} need torchvision); "
            f"{len(ran)} of {len(written)} model-free workflows pass")
    with_models = [r for r in results if r.model_workflow]
    if with_models:
        passed = sum(r.model_workflow == "pass" for r in with_models)
        text += f"; {passed} of {len(with_models)} model workflows pass"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--workflows", type=Path, help="folder of <pack>.json API workflows to run")
    parser.add_argument("--models-dir", type=Path, help="models folder for the <pack>.models.json workflows")
    parser.add_argument("--comfy", help="the comfy CLI of the environment measured (default: beside this Python)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per pack load or workflow")
    parser.add_argument("--pack", action="append", help="measure only this pack (repeatable)")
    args = parser.parse_args(argv)
    comfy = args.comfy or str(Path(sys.executable).parent / "comfy")
    python = Path(comfy).parent / "python"
    tv_modules = set(_distributions(python)["torchvision_modules"])
    startup = startup_time(comfy, args.timeout)
    with tempfile.TemporaryDirectory() as scratch:
        empty = Path(scratch) / "custom_nodes"
        empty.mkdir()
        builtin = node_names(comfy, empty, Path(scratch), args.timeout)
    packs = [p for p in packs_in(args.folder) if not args.pack or p.name in args.pack or p.stem in args.pack]
    results = []
    for pack in packs:
        result = measure(pack, comfy, python, startup, tv_modules, args.timeout, args.workflows, builtin,
                         args.models_dir)
        results.append(result)
        if not args.json:
            print(f"{result.pack}: {'loads' if result.loads else result.error}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({"startup_s": round(startup, 2), "summary": summary(results),
                          "packs": [asdict(r) for r in results]}, indent=2))
        return 0
    print(table(results, args.workflows is not None, args.models_dir is not None))
    print(f"\n{summary(results)}; Hearth's start: {startup:.2f}s (not in load s)")
    for r in results:
        if (r.missing_internals or not r.loads or r.node_errors or r.notes or r.unregistered or r.undeclared
                or r.workflow.startswith("fail") or r.model_workflow.startswith("fail")):
            print(f"\n{r.pack}:")
            if not r.loads:
                print("  error: " + r.error)
                for line in r.error_tail[-3:]:
                    print("    " + line)
            if r.unregistered:
                print("  declared, not registered: " + ", ".join(r.unregistered))
            if r.undeclared:
                print("  registered, not found by the static count: " + ", ".join(r.undeclared))
            if r.missing_internals:
                print("  missing internals: " + ", ".join(r.missing_internals))
            for node, error in r.node_errors.items():
                print(f"  node error: {node}: {error}")
            for note in r.notes:
                print(f"  loader: {note}")
            if r.installed_at_load:
                print("  installed while loading: " + ", ".join(r.installed_at_load))
            if r.workflow.startswith("fail"):
                print("  workflow " + r.workflow)
            if r.model_workflow.startswith("fail"):
                print("  model workflow " + r.model_workflow)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
