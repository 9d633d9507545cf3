"""Checks on files as files: compiled binaries, bytecode without source, archives inside the pack, URLs in the
web extension and scripts, and the install scripts (install.py, setup.py) that package managers run before
anyone has looked at them.

Binary checks read only a file's first bytes (magic numbers), never trust its extension, and never load it.
"""

from __future__ import annotations

import ast
import bz2
import gzip
import lzma
import re
import struct
import zlib
from pathlib import PurePosixPath

from hearth.sandbox import patterns
from hearth.sandbox.findings import Finding
from hearth.sandbox.rules import finding

HEAD_BYTES = 4096
NATIVE_SUFFIXES = frozenset({".so", ".pyd", ".dll", ".dylib"})

_ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07")
_STREAM_MAGIC = {b"\x1f\x8b": gzip.decompress, b"BZh": bz2.decompress, b"\xfd7zXZ\x00": lzma.decompress}
_MACHO = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")

# Calls a plain setup.py makes: declare the package and read its README. Anything else runs at install.
_SETUP_CALLS = frozenset({
    "setup", "find_packages", "find_namespace_packages", "open", "read", "read_text", "join", "dirname",
    "abspath", "exists", "Path", "strip", "splitlines", "split", "str", "dict", "list", "len", "format",
    "get", "items", "encode", "decode", "resolve", "parent", "readlines", "replace", "Extension",
})


def is_compiled(head: bytes) -> str | None:
    """The executable format of a file from its first bytes (ELF, PE, Mach-O), or None."""
    if head.startswith(b"\x7fELF"):
        return "ELF"
    if head.startswith(_MACHO):
        return "Mach-O"
    if head.startswith(b"MZ") and len(head) >= 0x40:
        offset = struct.unpack_from("<I", head, 0x3C)[0]
        if head[offset:offset + 4] == b"PE\x00\x00":
            return "PE"
    return None


def is_nested_archive(head: bytes) -> bool:
    """True for zip, 7z, rar and tar files, and for compressed streams that unpack to a tar or to binary data.

    A gzip of one text file (a tokenizer vocabulary, say) hides no files, so it is not reported.
    """
    if head.startswith(_ARCHIVE_MAGIC) or head[257:262] == b"ustar":
        return True
    for magic, decompress in _STREAM_MAGIC.items():
        if head.startswith(magic):
            try:
                inner = decompress(head)
            except (EOFError, OSError, lzma.LZMAError, ValueError):
                inner = _partial(head, magic)
            if inner[257:262] == b"ustar":
                return True
            try:
                inner[:1024].decode("utf-8")
            except UnicodeDecodeError:
                return True
            return False
    return False


def _partial(head: bytes, magic: bytes) -> bytes:
    # Only the first few KB were read; decompress what is there.
    if magic == b"\x1f\x8b":
        try:
            return zlib.decompressobj(wbits=31).decompress(head)
        except zlib.error:
            return b"\xff"
    try:
        decompressor = bz2.BZ2Decompressor() if magic == b"BZh" else lzma.LZMADecompressor()
        return decompressor.decompress(head)
    except (OSError, lzma.LZMAError, EOFError):
        return b"\xff"


def check_file(path: str, head: bytes, names: set[str]) -> list[Finding]:
    """Findings for one file from its first bytes; ``names`` holds every file path in the pack."""
    findings = []
    kind = is_compiled(head)
    pure = PurePosixPath(path)
    if not kind and pure.suffix.lower() in NATIVE_SUFFIXES:
        kind = f"{pure.suffix} native extension"  # named as one, even without a known header: still unreviewable
    if kind:
        findings.append(finding("binary.compiled", path, 0, f"{kind} executable", kind))
    elif is_nested_archive(head):
        findings.append(finding("binary.nested-archive", path, 0, path))
    if pure.suffix in (".pyc", ".pyo") and _source_of(pure) not in names:
        findings.append(finding("binary.pyc", path, 0, path))
    return findings


def _source_of(pyc: PurePosixPath) -> str:
    if pyc.parent.name == "__pycache__":  # __pycache__/mod.cpython-311.pyc -> mod.py
        return str(pyc.parent.parent / (pyc.name.split(".")[0] + ".py"))
    return str(pyc.with_suffix(".py"))


# Text files that ship with packs and can carry an exfiltration URL: the web extension (JavaScript runs in
# the user's browser), shell scripts, configuration.
TEXT_SUFFIXES = frozenset({".js", ".mjs", ".cjs", ".ts", ".html", ".htm", ".sh", ".bat", ".cmd", ".ps1",
                           ".json", ".cfg", ".ini", ".toml", ".yaml", ".yml"})
_URL = re.compile(r"""https?://[^\s"'`<>)]+""")


def check_text(path: str, data: bytes) -> list[Finding]:
    """Webhooks and code downloads in a non-Python text file, found line by line."""
    findings = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if patterns.WEBHOOKS.search(line):
            findings.append(finding("network.webhook", path, number, line))
        elif any(patterns.is_download(url) for url in _URL.findall(line)):
            findings.append(finding("network.download", path, number, line))
    return findings


def check_install_script(path: str, source: bytes) -> list[Finding]:
    """install.py at the pack root runs on install; setup.py runs on build. Report code they run."""
    name = PurePosixPath(path)
    if len(name.parts) != 1 or name.name not in ("install.py", "setup.py"):
        return []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []  # reported as code.unparsable by the Python scan
    lines = source.decode("utf-8", "replace").splitlines()
    for call in _top_level_calls(tree):
        snippet = lines[call.lineno - 1] if call.lineno <= len(lines) else ""
        if name.name == "install.py":
            return [finding("install.script", path, call.lineno, snippet)]
        callee = _tail_name(call.func)
        if callee not in _SETUP_CALLS or any(k.arg == "cmdclass" for k in call.keywords):
            return [finding("install.setup-side-effects", path, call.lineno, snippet, callee or "a computed call")]
    return []


def _top_level_calls(tree: ast.Module) -> list[ast.Call]:
    """Calls that run when the file runs as a script: outside function bodies, `__main__` blocks included."""
    calls = []
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Call):
            calls.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return sorted(calls, key=lambda c: (c.lineno, c.col_offset))


def _tail_name(func: ast.AST) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None
