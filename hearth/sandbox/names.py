"""Following names for the static scan: aliases made by assignment, attributes fetched by literal name, and string
constants folded together, so that ``_r = subprocess.run; _r(...)``, ``getattr(builtins, "exec")`` and
``"." + "ssh"`` read as what they are.

All of it is flow-insensitive and per file: a triage aid that sees through the cheap tricks, not a data-flow
analysis. Nothing here recurses on the syntax tree (deep expressions must not crash the scanner).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable

# Builtins worth following when assigned to another name (e = exec; e(payload)).
FOLLOWED_BUILTINS = frozenset({"exec", "eval", "compile", "getattr", "setattr", "__import__", "open", "builtins",
                               "__builtins__", "globals", "vars"})
UNKNOWN = "/"  # what an unknown piece of a folded path reads as: a separator keeps the known parts apart
PATH_JOINS = frozenset({"os.path.join", "posixpath.join", "ntpath.join", "pathlib.Path", "Path", "pathlib.PurePath",
                         "pathlib.PurePosixPath", "os.path.expanduser"})


def is_str(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def dotted(node: ast.AST) -> str | None:
    """The source text of a plain name or attribute chain (``self.run``), else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def assigned_aliases(nodes: Iterable[ast.AST], resolve: Callable[[ast.AST], str | None],
                     followed: Callable[[str], bool]) -> dict[str, str]:
    """Names and attribute chains assigned a followed callable or module: ``{"_r": "subprocess.run"}``.

    ``resolve`` gives an expression's qualified name with the aliases known so far; two rounds follow chains such
    as ``m = subprocess; r = m.run``. A name assigned several followed things keeps the last one seen.
    """
    assigns = [n for n in nodes if isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None]
    aliases: dict[str, str] = {}
    for _ in range(2):
        before = dict(aliases)
        for node in assigns:
            target_nodes = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = resolve(node.value)
            if not value or not followed(value):
                continue
            for target in target_nodes:
                key = dotted(target)
                if key and key != value:
                    aliases[key] = value
        if aliases == before:
            break
    return aliases


def string_constants(nodes: Iterable[ast.AST]) -> dict[str, str]:
    """Names assigned exactly one string constant in the file (``SEP = "ssh"``), for folding."""
    seen: dict[str, str | None] = {}
    for node in nodes:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
            text = value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else None
            seen[name] = text if name not in seen or seen[name] == text else None
    return {name: text for name, text in seen.items() if text is not None}


def fold(node: ast.AST, constants: dict[str, str], resolve: Callable[[ast.AST], str | None],
         covered: set[int]) -> str | None:
    """The string an expression builds from constants (``"." + "ssh"``, ``os.path.join(home, ".s" "sh")``,
    ``f"{a}/id_" "rsa"``, ``"".join([".", "ssh"])``), unknown pieces read as ``/``; None when no constant is in it.

    Inner nodes folded as part of this one go into ``covered`` so the scanner does not fold them again.
    """
    pieces: list[str] = []
    known = False
    stack: list[ast.AST | str] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            pieces.append(item)
            continue
        covered.add(id(item))
        if isinstance(item, ast.Constant) and isinstance(item.value, str):
            pieces.append(item.value)
            known = True
        elif isinstance(item, ast.Name) and item.id in constants:
            pieces.append(constants[item.id])
            known = True
        elif isinstance(item, ast.BinOp) and isinstance(item.op, (ast.Add, ast.Div, ast.Mod)):
            middle = "/" if isinstance(item.op, ast.Div) else ""
            stack += [item.right, middle, item.left]  # popped left first
        elif isinstance(item, ast.JoinedStr):
            stack += list(reversed(item.values))
        elif isinstance(item, ast.FormattedValue):
            stack.append(item.value)
        elif isinstance(item, ast.Call) and _is_join(item, resolve):
            sep, parts = _join_parts(item)
            spread: list[ast.AST | str] = []
            for i, part in enumerate(parts):
                spread += [sep, part] if i else [part]
            stack += list(reversed(spread))
        else:
            pieces.append(UNKNOWN)
    return "".join(pieces) if known else None


def _is_join(call: ast.Call, resolve: Callable[[ast.AST], str | None]) -> bool:
    if resolve(call.func) in PATH_JOINS:
        return True
    func = call.func
    return (isinstance(func, ast.Attribute) and func.attr == "join" and isinstance(func.value, ast.Constant)
            and isinstance(func.value.value, str) and len(call.args) == 1
            and isinstance(call.args[0], (ast.List, ast.Tuple)))


def _join_parts(call: ast.Call) -> tuple[str, list[ast.AST]]:
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Constant) and isinstance(func.value.value, str) \
            and func.attr == "join":
        return func.value.value, list(call.args[0].elts)
    return "/", list(call.args)
