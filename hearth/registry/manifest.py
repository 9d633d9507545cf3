"""The node-pack manifest: `pyproject.toml` `[project]` + `[tool.comfy]`, read, validated and normalised."""

from __future__ import annotations

import posixpath
import re
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

# The same shapes ComfyUI's registry enforces, so a pack valid there is valid here and vice versa. \Z, not $: "$"
# also matches before a final newline, and "acme\n" is no publisher id.
PUBLISHER_ID_RE = re.compile(r"^[a-z][a-z0-9-]*\Z")
PACK_ID_RE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9._-]*[a-zA-Z0-9])?\Z")
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?\Z"
)

# Trove classifiers → the values ComfyUI's registry stores in supported_os / supported_accelerators.
OS_CLASSIFIERS = {
    "Operating System :: OS Independent": ["Windows", "macOS", "Linux"],
    "Operating System :: Microsoft :: Windows": ["Windows"],
    "Operating System :: MacOS": ["macOS"],
    "Operating System :: MacOS :: MacOS X": ["macOS"],
    "Operating System :: POSIX :: Linux": ["Linux"],
    "Operating System :: POSIX": ["Linux", "macOS"],
}
ACCELERATOR_CLASSIFIERS = {
    "Environment :: GPU :: NVIDIA CUDA": "CUDA",
    "Environment :: GPU :: AMD ROCm": "ROCm",
    "Environment :: GPU :: Apple Metal": "Metal",
    "Environment :: GPU :: Intel Arc": "Intel Arc",
    "Environment :: GPU :: DirectML": "DirectML",
    "Environment :: CPU": "CPU",
    "Environment :: No GPU": "CPU",
}


# The only entry-point groups a pack may declare: its Hearth plugin, or the ComfyUI package it exports. Any other
# group reaches machinery outside the pack (console_scripts puts a command on the PATH; hearth.default would load
# a stranger's code in the default tier).
ALLOWED_ENTRY_POINT_GROUPS = ("hearth", "comfyui.custom_nodes")
# An entry-point name ends up as a line of entry_points.txt: no whitespace, brackets or "=", which could start a
# new section there ("x\n[console_scripts]\ny" put a command on the user's PATH).
ENTRY_POINT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z", re.ASCII)
# A value is a dotted module path, optionally ":" and a dotted attribute path; no extras, no spaces.
ENTRY_POINT_VALUE_RE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?::[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)?\Z", re.ASCII)
# Files that Python runs by itself at every interpreter start once they sit in site-packages' root.
STARTUP_FILES = ("sitecustomize.py", "usercustomize.py", "sitecustomize", "usercustomize")


class ManifestError(ValueError):
    """A manifest problem, naming the file and the field at fault."""

    def __init__(self, path: str | Path, field_name: str, message: str):
        self.path = str(path)
        self.field = field_name
        self.message = message
        super().__init__(f"{self.path}: {field_name}: {message}")


class ManifestRuleError(ManifestError):
    """A manifest or pack file that is well formed but not allowed (it would reach outside the pack)."""


def is_semver(text: str) -> bool:
    return bool(SEMVER_RE.match(text or ""))


def semver_key(text: str) -> tuple:
    """Sort key by semver precedence: a release sorts after its pre-releases; build metadata is ignored."""
    m = SEMVER_RE.match(text)
    if not m:
        raise ValueError(f"not a semantic version: {text!r}")
    core = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if m.group(4) is None:
        return (*core, 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in m.group(4).split("."))
    return (*core, 0, parts)


def semver_to_pep440(text: str) -> str:
    """The wheel version for a semver: pre-releases map to a/b/rc (or .dev), build metadata to a local version."""
    m = SEMVER_RE.match(text)
    if not m:
        raise ValueError(f"not a semantic version: {text!r}")
    out = f"{m.group(1)}.{m.group(2)}.{m.group(3)}"
    pre = m.group(4)
    if pre:
        head, _, rest = pre.partition(".")
        number = rest if rest.isdigit() else "0"
        kind = {"alpha": "a", "a": "a", "beta": "b", "b": "b", "rc": "rc", "c": "rc"}.get(head.lower())
        if kind and (not rest or rest.isdigit()):
            out += f"{kind}{number}"
        else:
            # Anything else has no PEP 440 spelling; .dev keeps it ordered before the release.
            digits = "".join(ch for ch in pre if ch.isdigit())[:9] or "0"
            out += f".dev{int(digits)}"
    if m.group(5):
        out += "+" + re.sub(r"[^0-9a-zA-Z.]", ".", m.group(5))
    return str(Version(out))


def normalize_name(name: str) -> str:
    """PEP 503 normalisation, also used for case-insensitive pack-id uniqueness."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Manifest:
    """Everything the registry needs from a pack's pyproject.toml."""

    name: str
    version: str
    publisher: str
    description: str = ""
    display_name: str = ""
    license: str = ""
    dependencies: list[str] = field(default_factory=list)
    requires_python: str | None = None
    repository: str = ""
    icon: str = ""
    banner: str = ""
    requires_comfyui: str = ""
    includes: list[str] = field(default_factory=list)
    supported_os: list[str] = field(default_factory=list)
    supported_accelerators: list[str] = field(default_factory=list)
    entry_points: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _str(table: dict, key: str, path: Path, prefix: str, default: str = "") -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ManifestError(path, f"{prefix}.{key}", f"must be a string, got {type(value).__name__}")
    return value


def _str_list(table: dict, key: str, path: Path, prefix: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(path, f"{prefix}.{key}", "must be a list of strings")
    return list(value)


def _license(project: dict, path: Path) -> str:
    value = project.get("license", "")
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if isinstance(value.get("text"), str):
            return value["text"]
        if isinstance(value.get("file"), str):
            return value["file"]
    raise ManifestError(path, "project.license", 'must be a string or a table with "text" or "file"')


def map_classifiers(classifiers: list[str]) -> tuple[list[str], list[str]]:
    """Supported OS and accelerators named by trove classifiers, in a stable order, without repeats."""
    oses: list[str] = []
    accelerators: list[str] = []
    for c in classifiers:
        for os_name in OS_CLASSIFIERS.get(c.strip(), []):
            if os_name not in oses:
                oses.append(os_name)
        acc = ACCELERATOR_CLASSIFIERS.get(c.strip())
        if acc and acc not in accelerators:
            accelerators.append(acc)
    return oses, accelerators


def parse_manifest(data: dict, path: str | Path = "pyproject.toml") -> Manifest:
    """Validate a parsed pyproject.toml; raises ManifestError naming the file and field."""
    path = Path(path)
    project = data.get("project")
    if not isinstance(project, dict):
        raise ManifestError(path, "project", "missing [project] table")
    comfy = data.get("tool", {}).get("comfy") if isinstance(data.get("tool"), dict) else None
    if not isinstance(comfy, dict):
        raise ManifestError(path, "tool.comfy", "missing [tool.comfy] table (it holds PublisherId)")

    name = _str(project, "name", path, "project")
    if not name:
        raise ManifestError(path, "project.name", "missing; the pack id, e.g. name = \"my-nodes\"")
    if len(name) > 100 or not PACK_ID_RE.match(name):
        raise ManifestError(path, "project.name", f"{name!r} is not a valid pack id (1-100 letters, digits, "
                                                  "'-', '_', '.', starting and ending with a letter or digit)")
    version = _str(project, "version", path, "project")
    if not version:
        raise ManifestError(path, "project.version", "missing; use a semantic version like \"1.0.0\"")
    if not is_semver(version):
        raise ManifestError(path, "project.version", f"{version!r} is not a semantic version (MAJOR.MINOR.PATCH)")
    publisher = _str(comfy, "PublisherId", path, "tool.comfy")
    if not publisher:
        raise ManifestError(path, "tool.comfy.PublisherId", "missing; the publisher id you registered")
    if not PUBLISHER_ID_RE.match(publisher):
        raise ManifestError(path, "tool.comfy.PublisherId",
                            f"{publisher!r} is not a valid publisher id (lowercase letter, then a-z, 0-9, '-')")

    dependencies = _str_list(project, "dependencies", path, "project")
    for dep in dependencies:
        try:
            Requirement(dep)
        except InvalidRequirement as exc:
            raise ManifestError(path, "project.dependencies", f"{dep!r}: {exc}") from None
    requires_python = project.get("requires-python")
    if requires_python is not None:
        if not isinstance(requires_python, str):
            raise ManifestError(path, "project.requires-python", "must be a string like \">=3.10\"")
        try:
            SpecifierSet(requires_python)
        except InvalidSpecifier:
            raise ManifestError(path, "project.requires-python",
                                f"{requires_python!r} is not a version specifier") from None
    urls = project.get("urls", {})
    if not isinstance(urls, dict):
        raise ManifestError(path, "project.urls", "must be a table")
    repository = next((v for k, v in urls.items() if k.lower() in ("repository", "source", "homepage")), "")
    oses, accelerators = map_classifiers(_str_list(project, "classifiers", path, "project"))
    entry_points = project.get("entry-points", {})
    if not isinstance(entry_points, dict) or not all(isinstance(v, dict) for v in entry_points.values()):
        raise ManifestError(path, "project.entry-points", "must be a table of tables")
    check_entry_points(entry_points, name, path)
    for key in ("scripts", "gui-scripts"):
        if project.get(key):
            raise ManifestRuleError(path, f"project.{key}", "a pack may not install commands on the user's PATH; "
                                                        "remove the table")
    for key, url in urls.items():
        if not isinstance(url, str) or (url.strip() and not is_web_url(url)):  # empty: no link
            raise ManifestRuleError(path, f"project.urls.{key}", f"{str(url)[:80]!r} is not an http(s) URL")

    return Manifest(
        name=name,
        version=version,
        publisher=publisher,
        description=_str(project, "description", path, "project"),
        display_name=_str(comfy, "DisplayName", path, "tool.comfy") or name,
        license=_license(project, path),
        dependencies=dependencies,
        requires_python=requires_python,
        repository=str(repository),
        icon=_str(comfy, "Icon", path, "tool.comfy"),
        banner=_str(comfy, "Banner", path, "tool.comfy"),
        requires_comfyui=_str(comfy, "requires-comfyui", path, "tool.comfy"),
        includes=_str_list(comfy, "includes", path, "tool.comfy"),
        supported_os=oses,
        supported_accelerators=accelerators,
        entry_points={k: {str(n): str(t) for n, t in v.items()} for k, v in entry_points.items()},
    )


def is_web_url(text: str) -> bool:
    """True for an absolute http:// or https:// URL with a host (what a registry page may render as a link)."""
    from urllib.parse import urlsplit

    if any(ch.isspace() or ord(ch) < 32 for ch in text):
        return False
    parts = urlsplit(text)
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def check_entry_points(entry_points: dict, pack_name: str, path: str | Path = "pyproject.toml") -> None:
    """Refuse entry points outside the allowed groups, names and values that are not identifiers and dotted
    paths, and a `comfyui.custom_nodes` key other than the pack's own name. Each refusal names the field."""
    for group, items in entry_points.items():
        field_name = f"project.entry-points.{group!r}" if not ENTRY_POINT_NAME_RE.match(str(group)) \
            else f"project.entry-points.{group}"
        if group in ("console_scripts", "gui_scripts"):
            raise ManifestRuleError(path, field_name, "a pack may not install commands on the user's PATH; remove it")
        if group not in ALLOWED_ENTRY_POINT_GROUPS:
            raise ManifestRuleError(path, field_name, f"group not allowed; a pack may declare only "
                                                  f"{' and '.join(ALLOWED_ENTRY_POINT_GROUPS)}")
        for key, value in items.items():
            if not isinstance(key, str) or not ENTRY_POINT_NAME_RE.match(key):
                raise ManifestRuleError(path, field_name, f"name {str(key)[:60]!r} is not an identifier (letters, "
                                                      "digits, '_', '-', '.')")
            if not isinstance(value, str) or not ENTRY_POINT_VALUE_RE.match(value):
                raise ManifestRuleError(path, f"{field_name}.{key}", f"{str(value)[:60]!r} is not a dotted path "
                                                                 "(package.module or package.module:attribute)")
            if group == "comfyui.custom_nodes" and normalize_name(key) != normalize_name(pack_name):
                raise ManifestRuleError(path, f"{field_name}.{key}", f"must be the pack's own name {pack_name!r}: a "
                                                                 "pack may not claim another pack's folder")


def check_archive_files(names: list[str], read: Callable[[str], bytes | None],
                        path: str | Path = "archive") -> None:
    """Refuse files that would run outside the pack once installed, and a WEB_DIRECTORY outside the pack.

    `names` are the archive's (or pack folder's) relative POSIX paths; `read(name)` returns a file's bytes. A
    root-level `sitecustomize`/`usercustomize` or `.pth` file lands in site-packages' root, where Python runs it at
    every start of the environment's interpreter, for every program.
    """
    for name in names:
        top = name.split("/", 1)[0]
        root_file = "/" not in name or (name.startswith("src/") and name.count("/") == 1)
        base = name.rsplit("/", 1)[-1]
        if root_file and (base.lower().endswith(".pth") or base in STARTUP_FILES):
            raise ManifestRuleError(path, name, "a root-level .pth, sitecustomize or usercustomize file runs at every "
                                            "Python start; move the code into the pack's package")
        if top in ("sitecustomize", "usercustomize") and "/" in name:
            raise ManifestRuleError(path, name, f"a root-level {top}/ package runs at every Python start; rename it")
    for name in names:
        if name.rsplit("/", 1)[-1] != "__init__.py" or name.count("/") > 2:
            continue
        web = _literal_web_directory(read(name) or b"")
        if web is None:
            continue
        folder = name.rsplit("/", 1)[0] if "/" in name else ""
        target = posixpath.normpath(posixpath.join(folder, web.replace("\\", "/")))
        if web.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", web) or target == ".." or \
                target.startswith("../"):
            raise ManifestRuleError(path, f"{name}: WEB_DIRECTORY", f"{web[:80]!r} resolves outside the pack; "
                                                                "name a folder inside it, e.g. \"./web\"")


def _literal_web_directory(source: bytes) -> str | None:
    """The string a module assigns to WEB_DIRECTORY at its top level (None when it assigns none or no literal)."""
    import ast

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    found = None
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, ast.AnnAssign) and node.value is not None else []
        if any(isinstance(t, ast.Name) and t.id == "WEB_DIRECTORY" for t in targets) and \
                isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            found = node.value.value
    return found


def load_manifest(pack_dir: str | Path) -> Manifest:
    """Read and validate `<pack_dir>/pyproject.toml` (or the file itself when given)."""
    path = Path(pack_dir)
    if path.is_dir():
        path = path / "pyproject.toml"
    if not path.is_file():
        raise ManifestError(path, "file", "not found; a pack needs a pyproject.toml")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(path, "file", f"not valid TOML: {exc}") from None
    return parse_manifest(data, path)


def check_version_text(version: str) -> None:
    """Raise ValueError for a version that is not both semver and expressible in PEP 440."""
    if not is_semver(version):
        raise ValueError(f"{version!r} is not a semantic version (MAJOR.MINOR.PATCH)")
    try:
        semver_to_pep440(version)
    except InvalidVersion as exc:
        raise ValueError(f"{version!r} has no PEP 440 form: {exc}") from None
