"""The static scan of one Python file: walks its syntax tree (never runs it) and reports risky code shapes.

Names are resolved through the file's imports (``from subprocess import Popen as P`` makes ``P(...)`` a
``subprocess.Popen`` call, ``__import__("os").system`` is ``os.system``), through assignments (``_r =
subprocess.run``, ``self.run = subprocess.run``) and through ``getattr`` with a literal name (``getattr(builtins,
"exec")`` is ``builtins.exec``), so renaming does not hide a call; string constants are folded (``"." + "ssh"``)
before they are matched (:mod:`hearth.sandbox.names`). The checks are deliberately shape-based and local: no cross-file data flow, one light pass of taint
tracking for "decoded, then executed".
"""

from __future__ import annotations

import ast
import math
import re
from collections import Counter
from collections.abc import Iterator

from hearth.sandbox import names, patterns
from hearth.sandbox.findings import Finding
from hearth.sandbox.rules import finding
from hearth.sandbox.wider import WiderChecks

LONG_LINE = 1000
ENTROPY_MIN_LENGTH = 200


class _Imports:
    """Local name -> dotted module path, from every import statement in the file."""

    def __init__(self, nodes: list[ast.AST]) -> None:
        self.aliases: dict[str, str] = {}
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:
                        root = alias.name.split(".")[0]
                        self.aliases[root] = root
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"


class Scanner(WiderChecks):
    """Walks one module; ``findings`` holds what it saw.

    The walk is iterative, not :class:`ast.NodeVisitor`: a recursive walk would let a deeply nested expression
    crash the scanner and slip past it.
    """

    def __init__(self, path: str, source: str, tree: ast.Module) -> None:
        self.path = path
        self.lines = source.splitlines()
        # One walk, shared by every collection below: on big files the walk is most of the cost.
        self.walk = _walk_with_depth(tree)
        nodes = [node for node, _, _ in self.walk]
        self.imports = _Imports(nodes)
        self.defined = {n.name for n in nodes if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        self.assigned: dict[str, str] = {}
        self._roots = {v.split(".")[0] for v in self.imports.aliases.values()} | {"builtins"}
        self.assigned = names.assigned_aliases(nodes, self.qualname, self._followed)
        self.constants = names.string_constants(nodes)
        self._folded: set[int] = set()  # inner nodes of a string expression already folded as a whole
        self.docstrings = _docstrings(nodes)
        self.literal_names = _names_over_literals(nodes)
        self.int_lists = _int_list_names(nodes)
        self.scope = 0  # id() of the function being walked; 0 for module level
        self.tainted: set[tuple[int, str]] = set()
        self.tainted = _decoded_names(self.walk, self)
        self.findings: list[Finding] = []
        self.depth = 0  # > 0 inside a function or lambda: code there does not run at import
        self._reported: set[tuple[str, int]] = set()
        self._covered: set[int] = set()  # inner nodes of a chain already reported as a whole

    def run(self) -> list[Finding]:
        for node, depth, scope in self.walk:
            self.depth, self.scope = depth, scope
            check = getattr(self, f"visit_{type(node).__name__}", None)
            if check is not None:
                check(node)
        return self.findings

    # -- helpers ------------------------------------------------------------------------------------------------

    def qualname(self, node: ast.AST) -> str | None:
        """The dotted name an expression refers to, resolved through imports; None when it is not a name."""
        text = names.dotted(node)
        if text and self.assigned:  # `self._r = subprocess.run`: the longest assigned prefix wins
            parts = text.split(".")
            for end in range(len(parts), 0, -1):
                head = ".".join(parts[:end])
                if head in self.assigned and not (end == 1 and head in self.imports.aliases):
                    return ".".join([self.assigned[head], *parts[end:]])
        attrs = []
        while isinstance(node, ast.Attribute):
            attrs.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name):
            if node.id in self.defined and node.id not in self.imports.aliases:
                base = f"<local>.{node.id}"
            else:
                base = self.imports.aliases.get(node.id, node.id)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__" \
                and node.args and _is_str(node.args[0]):
            base = node.args[0].value
        elif isinstance(node, ast.Call) and node.args and _is_str(node.args[0]) \
                and self.qualname(node.func) in ("importlib.import_module", "importlib.__import__"):
            base = node.args[0].value  # importlib.import_module("subprocess") is the subprocess module
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" \
                and len(node.args) >= 2 and _is_str(node.args[1]):
            inner = self.qualname(node.args[0])  # getattr(builtins, "exec") is builtins.exec
            if inner is None:
                return None
            base = f"{inner}.{node.args[1].value}"
        else:
            return None
        if base == "__builtins__" or base.startswith("__builtins__."):
            base = "builtins" + base[len("__builtins__"):]
        return ".".join([base, *reversed(attrs)])

    def _followed(self, name: str) -> bool:
        """Whether an assignment of ``name`` makes an alias worth following (a module's callable, a builtin)."""
        root = name.split(".")[0]
        return root in names.FOLLOWED_BUILTINS or root in self._roots or root in patterns.SENSITIVE_MODULES

    def report(self, rule: str, node: ast.AST, detail: str = "") -> None:
        line = getattr(node, "lineno", 0)
        key = (rule, line)
        if key in self._reported:
            return
        self._reported.add(key)
        snippet = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        self.findings.append(finding(rule, self.path, line, snippet, detail))

    # -- calls ------------------------------------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        name = self.qualname(node.func) or ""
        args = [*node.args, *(k.value for k in node.keywords)]
        if name in patterns.EXECUTORS:
            if args and any(self._is_decoded(a) for a in args[:1]):
                self.report("exec.decoded", node)
            elif args and not _is_literal(args[0]):
                self.report("exec.dynamic", node, name)
        if name == "types.FunctionType" and any(self._is_decoded(a) for a in args):
            self.report("exec.decoded", node)
        if name in patterns.PROCESS or name.startswith("pip."):
            words = " ".join(_strings(node)).lower()
            if "pip" in words and "install" in words or name.startswith("pip.") and "install" in words:
                self.report("process.pip-install", node)
            elif name in patterns.PROCESS:
                self.report("process.spawn", node, name)
        if any(name == p or name.startswith(p + ".") for p in patterns.NETWORK):
            if self.depth == 0:
                self.report("network.import-time", node, name)
            else:
                self.report("network.call", node, name)
            if any(patterns.names_code(text) for text in _strings(node)):  # the URL may be computed
                self.report("network.download", node)
        self._check_wider(node, name)
        self._check_env(node, name)
        self._check_dynamic_name(node, name)
        self._check_chr(node, name)
        self._check_write(node, name)

    def _is_decoded(self, node: ast.AST) -> bool:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and ((self.scope, sub.id) in self.tainted or (0, sub.id) in self.tainted):
                return True
            if isinstance(sub, ast.Call) and _is_decoder(self.qualname(sub.func) or "", sub):
                return True
        return False

    def _check_env(self, node: ast.Call, name: str) -> None:
        if name in ("os.getenv", "os.environ.get", "os.environ.pop", "os.environ.setdefault") and node.args:
            key = node.args[0]
            if isinstance(key, ast.Constant) and isinstance(key.value, str) and patterns.SECRET_ENV.search(key.value):
                self.report("credentials.env", node, key.value)
        elif name in ("os.environ.items", "os.environ.keys", "os.environ.values"):
            self.report("credentials.env-dump", node)
        elif name in patterns.SERIALIZERS and any(self.qualname(sub) == "os.environ" for sub in _walk_args(node)):
            self.report("credentials.env-dump", node)  # dict(os.environ) alone is how a child gets its env

    def _check_dynamic_name(self, node: ast.Call, name: str) -> None:
        if not node.args:
            return
        if name in ("__import__", "builtins.__import__") and not self._is_known(node.args[0]):
            self.report("obfuscation.dynamic-name", node)
        elif name in ("importlib.import_module", "importlib.__import__") and not _is_literal(node.args[0]):
            self.report("obfuscation.computed-import", node)
        elif name == "getattr" and len(node.args) >= 2 and not self._is_known(node.args[1]):
            target = node.args[0]
            base = self.qualname(target) or ""
            if base.split(".")[0] in patterns.SENSITIVE_MODULES or (isinstance(target, ast.Call) and self.qualname(target.func) in patterns.NAMESPACE_CALLS):
                self.report("obfuscation.dynamic-name", node)

    def _is_known(self, node: ast.AST) -> bool:
        """A literal, or a loop variable that only takes values from a literal list written in the file."""
        return _is_literal(node) or isinstance(node, ast.Name) and node.id in self.literal_names

    def _check_chr(self, node: ast.Call, name: str) -> None:
        # chr() over literal codes spells a hidden string; over a range or decoded bytes it is a table or a codec.
        if name == "map" and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id == "chr":
            if self._over_codes(node):
                self.report("obfuscation.chr-build", node)
        elif isinstance(node.func, ast.Attribute) and node.func.attr == "join" and node.args:
            if any(_is_chr_call(sub) for sub in ast.walk(node.args[0])) and self._over_codes(node):
                self.report("obfuscation.chr-build", node)
            elif isinstance(node.args[0], ast.Call) and self.qualname(node.args[0].func) == "reversed" \
                    and node.args[0].args and _is_str(node.args[0].args[0]):
                self.report("obfuscation.reversed", node)

    def _over_codes(self, node: ast.AST) -> bool:
        """True when the expression reads literal character codes (written inline or in a named list)."""
        return any(_is_code_list(sub) or isinstance(sub, ast.Name) and sub.id in self.int_lists for sub in ast.walk(node))

    def _check_write(self, node: ast.Call, name: str) -> None:
        target: ast.AST | None = None
        if name in ("open", "io.open", "builtins.open") and node.args:
            mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
            if isinstance(mode, ast.Constant) and isinstance(mode.value, str) and set(mode.value) & set("wax+"):
                target = node.args[0]
        elif name in patterns.COPY_CALLS and len(node.args) >= 2:
            target = node.args[1]
        elif isinstance(node.func, ast.Attribute) and node.func.attr in ("write_text", "write_bytes"):
            target = node.func.value
        if target is not None and self._outside_pack(target):
            self.report("fs.write-outside", node)

    def _outside_pack(self, node: ast.AST) -> bool:
        lead = self._leading_string(node)
        if lead is not None and patterns.ABSOLUTE_PATH.match(lead) and not patterns.HARMLESS_PATH.match(lead):
            return True
        for sub in ast.walk(node):
            if _is_str(sub) and patterns.SENSITIVE_TARGETS.search(sub.value):
                return True
            if isinstance(sub, (ast.Call, ast.Attribute)):
                qual = self.qualname(sub.func if isinstance(sub, ast.Call) else sub) or ""
                if qual in patterns.HOME_LOOKUPS:
                    return True
        return False

    def _leading_string(self, node: ast.AST) -> str | None:
        """The literal a path expression starts with: only a leading "/" or "~" makes a path absolute."""
        while True:
            if _is_str(node):
                return node.value
            if isinstance(node, ast.JoinedStr) and node.values:
                node = node.values[0]
            elif isinstance(node, ast.BinOp):
                node = node.left
            elif isinstance(node, ast.Call) and node.args and self.qualname(node.func) in patterns.PATH_BUILDERS:
                node = node.args[0]
            else:
                return None

    # -- other shapes ---------------------------------------------------------------------------------------------

    def visit_Subscript(self, node: ast.Subscript) -> None:
        base = self.qualname(node.value)
        key = node.slice
        if base == "os.environ" and _is_str(key) and patterns.SECRET_ENV.search(key.value):
            self.report("credentials.env", node, key.value)
        if base == "os.environ" and _is_str(key) and patterns.SANDBOX_ENV.search(key.value):
            self.report("evasion.sandbox-probe", node, key.value)
        if _is_str(node.value) and isinstance(key, ast.Slice) and _is_minus_one(key.step):
            self.report("obfuscation.reversed", node)
        # Reading globals()[name] or builtins by a computed name hides what is called; storing does not.
        namespace = base in ("__builtins__", "builtins.__dict__") or (
            isinstance(node.value, ast.Call) and self.qualname(node.value.func) in patterns.NAMESPACE_CALLS)
        if namespace and isinstance(node.ctx, ast.Load) and not self._is_known(key):
            self.report("obfuscation.dynamic-name", node)

    def visit_For(self, node: ast.For) -> None:
        if self.qualname(node.iter) == "os.environ":
            self.report("credentials.env-dump", node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, (ast.Add, ast.Div, ast.Mod)):
            self._check_folded(node)
        if id(node) in self._covered or not isinstance(node.op, ast.Add):
            return
        chain = list(_add_chain(node))
        self._covered |= {id(n) for n in chain}  # the inner additions are the same string
        if sum(_is_chr_call(n) for n in chain) >= 3:
            self.report("obfuscation.chr-build", node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not isinstance(value, str) or id(node) in self.docstrings:
            return
        for rule, pattern in patterns.STRING_RULES:
            if pattern.search(value):
                self.report(rule, node)
        if patterns.is_download(value):
            self.report("network.download", node)
        if _looks_encoded(value, isinstance(node.value, bytes)):
            self.report("obfuscation.entropy", node, f"{len(value)} characters")


# -- small predicates -----------------------------------------------------------------------------------------


def _is_str(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _is_literal(node: ast.AST) -> bool:
    """A constant, or a container of constants: code in it is visible to the reviewer."""
    return isinstance(node, (ast.Constant, ast.Tuple, ast.List, ast.Set)) and all(
        isinstance(n, (ast.Constant, ast.Tuple, ast.List, ast.Set, ast.expr_context)) for n in ast.walk(node))


def _is_minus_one(node: ast.AST | None) -> bool:
    return isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
        and node.operand.value == 1


def _is_chr_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "chr"


def _add_chain(node: ast.AST) -> Iterator[ast.AST]:
    """Every node of a chain of additions: the inner BinOps and the operands."""
    stack = [node]
    while stack:
        item = stack.pop()
        yield item
        if isinstance(item, ast.BinOp) and isinstance(item.op, ast.Add):
            stack += [item.left, item.right]


def _is_decoder(name: str, call: ast.Call) -> bool:
    if name in patterns.DECODERS or any(name.startswith(p) for p in ("base64.", "zlib.decompress", "marshal.loads")):
        return True
    # bytes.fromhex("..") and "..".decode("hex")-style calls on literals
    func = call.func
    return isinstance(func, ast.Attribute) and func.attr in ("fromhex", "unhexlify", "decompress")


def _is_main_guard(test: ast.AST) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and any(_is_str(c) and c.value == "__main__" for c in test.comparators))


def _walk_args(call: ast.Call) -> Iterator[ast.AST]:
    for arg in [*call.args, *(k.value for k in call.keywords)]:
        yield from ast.walk(arg)


def _strings(node: ast.AST) -> Iterator[str]:
    for sub in ast.walk(node):
        if _is_str(sub):
            yield sub.value


def _walk_with_depth(tree: ast.Module) -> list[tuple[ast.AST, int, int]]:
    """Every node with its import-time depth and its scope, iteratively (no recursion limit to hit).

    Depth grows inside a function body, a lambda or an `if __name__ == "__main__":` block: code there does not
    run when the module is imported. The scope is the id() of the innermost function (0 at module level).
    """
    out: list[tuple[ast.AST, int, int]] = []
    stack: list[tuple[ast.AST, int, int]] = [(tree, 0, 0)]
    while stack:
        node, depth, scope = stack.pop()
        out.append((node, depth, scope))
        function = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        inner = function or (isinstance(node, ast.If) and _is_main_guard(node.test))
        child_scope = id(node) if function else scope
        for child in ast.iter_child_nodes(node):
            if isinstance(child, _LEAVES):  # nothing below them: skip the costly child lookup
                out.append((child, depth + inner, child_scope))
            elif not isinstance(child, _IGNORED):
                stack.append((child, depth + inner, child_scope))
    return out


_LEAVES = (ast.Constant, ast.Name)
_IGNORED = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)


def _docstrings(nodes: list[ast.AST]) -> set[int]:
    ids = set()
    for node in nodes:
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and _is_str(first.value):
                ids.add(id(first.value))
    return ids


def _names_over_literals(nodes: list[ast.AST]) -> set[str]:
    """Loop variables (for statements and comprehensions) that iterate over a literal tuple, list or set."""
    names: dict[str, bool] = {}
    for node in nodes:
        if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)) and isinstance(node.target, ast.Name):
            literal = _is_literal(node.iter)
            names[node.target.id] = names.get(node.target.id, True) and literal
    return {name for name, literal in names.items() if literal}


def _decoded_names(walk: list[tuple[ast.AST, int, int]], scanner: Scanner) -> set[tuple[int, str]]:
    """(scope, name) pairs that hold decoded data: `a = b64decode(..); exec(a)` in one function or at module level.

    Flow-insensitive within a scope, so the order of statements does not matter; scoped, so a short name
    decoded in one function does not taint the same name elsewhere.
    """
    tainted: set[tuple[int, str]] = set()
    if not any(isinstance(n, ast.Call) and _is_decoder(scanner.qualname(n.func) or "", n) for n, _, _ in walk):
        return tainted
    assigns = [(n, scope) for n, _, scope in walk if isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None]
    for _ in range(3):  # a few rounds follow chains such as `a = decode(x); b = a.decode()`
        scanner.tainted = tainted
        before = len(tainted)
        for node, scope in assigns:
            scanner.scope = scope
            if scanner._is_decoded(node.value):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                tainted |= {(scope, t.id) for target in targets for t in ast.walk(target) if isinstance(t, ast.Name)}
        if len(tainted) == before:
            break
    scanner.scope = 0
    return tainted


def _int_list_names(nodes: list[ast.AST]) -> set[str]:
    """Names assigned a literal list of character codes, which chr() can turn into a hidden string."""
    return {target.id for node in nodes if isinstance(node, ast.Assign) and _is_code_list(node.value)
            for target in node.targets if isinstance(target, ast.Name)}


def _is_code_list(node: ast.AST) -> bool:
    return isinstance(node, (ast.List, ast.Tuple)) and len(node.elts) >= 4 and all(
        isinstance(e, ast.Constant) and isinstance(e.value, int) for e in node.elts)


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(text)
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


_ENCODED_ALPHABET = re.compile(r"^[A-Za-z0-9+/=_\-]+$")


def _looks_encoded(value: str, raw_bytes: bool = False) -> bool:
    # Prose has spaces and sits near 4 bits per character; base64 and hex blobs have neither spaces nor words.
    # Text in other scripts (CJK, Braille spinners) is dense too, so a str must be ASCII to count.
    if len(value) < ENTROPY_MIN_LENGTH or any(c.isspace() for c in value):
        return False
    if not raw_bytes and not value.isascii():
        return False
    bits = entropy(value)
    return bits >= 5.0 or (bits >= 3.5 and bool(_ENCODED_ALPHABET.match(value)))


def scan_python(path: str, source: bytes) -> list[Finding]:
    """Findings for one Python file; a file that does not parse gets ``code.unparsable`` and nothing else."""
    text = source.decode("utf-8", "replace")
    long_lines = [n for n, line in enumerate(text.splitlines(), 1) if len(line) > LONG_LINE]
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError) as exc:
        problem = finding("code.unparsable", path, getattr(exc, "lineno", 0) or 0, str(exc))
    except (RecursionError, MemoryError) as exc:
        problem = finding("obfuscation.deep-nesting", path, 0, str(exc))
    else:
        scanner = Scanner(path, text, tree)
        data = _data_lines([node for node, _, _ in scanner.walk], text) if long_lines else set()
        return _long_line(path, text, long_lines, data) + scanner.run()
    return _long_line(path, text, long_lines, set()) + [problem]


def _long_line(path: str, text: str, numbers: list[int], data: set[int]) -> list[Finding]:
    """The first long line that is code; one is enough to make the point."""
    lines = text.splitlines()
    for number in numbers:
        if number not in data:
            line = lines[number - 1]
            return [finding("obfuscation.long-line", path, number, line, f"{len(line)} characters")]
    return []


def _data_lines(nodes: list[ast.AST], text: str) -> set[int]:
    """Lines that hold data rather than code: a statement assigning only literals (a table of numbers), or a
    line that is mostly one string (a long prompt). Long, but not packed code.

    Encoded blobs in such literals are still caught by the entropy rule.
    """
    lines: set[int] = set()
    literal_bytes: Counter[int] = Counter()
    for node in nodes:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None and _is_data(node.value):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        elif isinstance(node, ast.Constant) and node.end_lineno is not None and node.end_col_offset is not None:
            if node.lineno == node.end_lineno:
                literal_bytes[node.lineno] += node.end_col_offset - node.col_offset
            else:  # a string over several lines: every line of it is text
                lines.update(range(node.lineno, node.end_lineno + 1))
    for number, line in enumerate(text.splitlines(), 1):
        if literal_bytes[number] >= 0.8 * len(line.encode("utf-8", "surrogateescape")):
            lines.add(number)
    return lines


def _is_data(node: ast.AST) -> bool:
    return all(isinstance(n, (ast.Constant, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.expr_context, ast.UnaryOp,
                              ast.USub, ast.UAdd)) for n in ast.walk(node))
