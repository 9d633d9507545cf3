"""The wider static scan (issue 15): shapes common in malware and rare in node packs — deserialisers, native
calls, loaders that run files by path, threads started at import, hard exits, raw descriptors, sandbox probes,
the builtins namespace, monkeypatching, and strings folded from pieces. A mixin of :class:`pycode.Scanner`, which
provides ``qualname``, ``report``, ``imports``, ``assigned``, ``constants`` and the walk state.

A triage aid for reviewers: each rule is a reason to read the code, not a proof of intent.
"""

from __future__ import annotations

import ast

from hearth.sandbox import names, patterns


class WiderChecks:
    """Visitors and call checks of the wider scan; mixed into the Scanner."""

    def _check_wider(self, node: ast.Call, name: str) -> None:
        """The wider scan's call shapes: deserialisers, native calls, loaders, threads, hard exits, probes."""
        if name in patterns.UNPICKLERS:
            self.report("code.pickle", node, name)
        elif name.startswith(patterns.NATIVE_PREFIXES):
            self.report("code.native", node, name)
        method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
        if name in patterns.LOADERS or method in patterns.LOADER_METHODS:
            targets = [t for t in self._folded_strings(node) if "." in t.rsplit("/", 1)[-1]]
            hidden = any(part in patterns.UNREVIEWED_DIRS for t in targets for part in t.split("/"))
            if name in patterns.BYTECODE_LOADERS or hidden or any(
                    not t.lower().endswith(patterns.SOURCE_SUFFIXES) for t in targets):
                self.report("code.loader-data", node, name or method)
            else:
                self.report("code.loader", node, name or method)
        if self.depth == 0 and name in patterns.THREAD_STARTERS:
            self.report("process.import-thread", node, name)
        if name in patterns.HARD_EXITS:
            self.report("process.exit", node, name)
        if name in patterns.RAW_DESCRIPTOR_CALLS or name in ("open", "io.open", "builtins.open") and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, int):
            self.report("evasion.raw-descriptor", node, name)
        if name in patterns.SANDBOX_PROBE_CALLS:
            self.report("evasion.sandbox-probe", node, name)
        if name in ("getattr", "builtins.getattr") and node.args and self.qualname(node.args[0]) == "builtins":
            self.report("code.builtins", node)
        if name in ("setattr", "builtins.setattr") and node.args:
            target = self.qualname(node.args[0]) or ""
            if target.split(".")[0] in patterns.PATCHED_MODULES:
                self.report("code.monkeypatch", node, target)
        if name in ("os.getenv", "os.environ.get", "os.environ.__contains__") and node.args:
            key = names.fold(node.args[0], self.constants, self.qualname, set())
            if key and patterns.SANDBOX_ENV.search(key):
                self.report("evasion.sandbox-probe", node, key)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "join" or name in names.PATH_JOINS:
            self._check_folded(node)

    def _folded_strings(self, node: ast.Call) -> list[str]:
        return [text for arg in [*node.args, *(k.value for k in node.keywords)]
                if (text := names.fold(arg, self.constants, self.qualname, set()))]

    def _check_folded(self, node: ast.AST) -> None:
        """Match the string an expression builds (``"." + "ssh"``) as if it were one literal."""
        if id(node) in self._folded:
            return
        text = names.fold(node, self.constants, self.qualname, self._folded)
        if not text:
            return
        if patterns.CREDENTIAL_PATHS.search(text):
            self.report("credentials.path", node, "built from pieces")
        if patterns.WEBHOOKS.search(text):
            self.report("network.webhook", node)
        if patterns.SANDBOX_PROBE_STRINGS.search(text):
            self.report("evasion.sandbox-probe", node, text[:60])

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "__builtins__":
            self.report("code.builtins", node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if not isinstance(node.ctx, ast.Load) or not (self.qualname(node) or "").startswith("builtins."):
            return
        root = node
        while isinstance(root, ast.Attribute):
            root = root.value
        # A local variable that happens to be called `builtins` (a dict, say) is not the module.
        if not isinstance(root, ast.Name) or root.id in self.imports.aliases or root.id in self.assigned:
            self.report("code.builtins", node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Attribute):
                owner = self.qualname(target.value) or ""
                if owner.split(".")[0] in patterns.PATCHED_MODULES and owner.split(".")[0] in self._imported_roots():
                    self.report("code.monkeypatch", node, f"{owner}.{target.attr}")

    def visit_Compare(self, node: ast.Compare) -> None:
        # "CI" in os.environ / os.environ.keys(): asking whether this is a build or a sandbox
        if any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) and names.is_str(node.left) \
                and patterns.SANDBOX_ENV.search(node.left.value) \
                and any((self.qualname(c) or "").startswith("os.environ") or isinstance(c, ast.Call)
                        and (self.qualname(c.func) or "").startswith("os.environ") for c in node.comparators):
            self.report("evasion.sandbox-probe", node, node.left.value)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        self._check_folded(node)

    def _imported_roots(self) -> set[str]:
        return self._roots

