"""Locks (PEP 751 pylock.toml) and uv's resolver output: data in, data out, no IO beyond the text given."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import sys_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version


class LockError(ValueError):
    """A lock file is unusable; the message names the file and the entry at fault."""


@dataclass(frozen=True)
class Artifact:
    """One file of a locked package: where it comes from and the sha256 it must have."""

    filename: str
    url: str  # an http(s) URL, or file:// for a local one
    sha256: str


@dataclass(frozen=True)
class LockedPackage:
    name: str  # canonical
    version: str
    artifact: Artifact
    index: str = ""
    layer: str = ""  # the layered pack whose own folder holds it (registry/layers.py); "" for the venv


@dataclass
class Lock:
    packages: list[LockedPackage] = field(default_factory=list)

    def by_name(self) -> dict[str, LockedPackage]:
        return {p.name: p for p in self.packages}


def parse_lock(text: str, where: str = "pylock.toml") -> Lock:
    """The packages of a pylock.toml; every package must name exactly one wheel or sdist with a sha256."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LockError(f"{where}: not valid TOML ({exc})") from None
    if str(data.get("lock-version", "")).split(".")[0] != "1":
        raise LockError(f"{where}: lock-version {data.get('lock-version')!r} is not supported (expected 1.x)")
    packages = []
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(data.get("packages", [])):
        name, version = entry.get("name"), entry.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            raise LockError(f"{where}: packages[{i}] needs a name and a version")
        if entry.get("marker") and not _marker_applies(str(entry["marker"])):
            continue  # locked for another platform or Python
        wheels = list(entry.get("wheels", []))
        if not wheels and not entry.get("sdist"):
            raise LockError(f"{where}: {name} {version} has no wheel or sdist; run `comfy lock` again")
        chosen = _best_wheel(wheels) or entry.get("sdist")
        if chosen is None:
            raise LockError(f"{where}: none of the wheels of {name} {version} fits this Python and platform, "
                            "and it has no sdist; run `comfy lock` on this machine")
        url = chosen.get("url") or ""
        if not url and chosen.get("path"):
            url = "file://" + str(chosen["path"])
        sha = (chosen.get("hashes") or {}).get("sha256", "")
        if not url or not re.fullmatch(r"[0-9a-f]{64}", sha or ""):
            raise LockError(f"{where}: {name} {version} lacks a url and a sha256 hash; every artifact must have both")
        filename = chosen.get("name") or url.rsplit("/", 1)[-1].split("#")[0]
        tool = entry.get("tool", {}).get("hearth", {}) if isinstance(entry.get("tool"), dict) else {}
        layer = tool.get("layer", "") if isinstance(tool, dict) else ""
        if not isinstance(layer, str):
            raise LockError(f"{where}: {name} {version}: tool.hearth.layer must be a pack name")
        key = (canonicalize_name(name), canonicalize_name(layer) if layer else "")
        if key in seen:
            raise LockError(f"{where}: {name} appears twice in " + (f"layer {layer!r}" if layer else "the environment")
                            + "; run `comfy lock` again")
        seen.add(key)
        packages.append(LockedPackage(key[0], version, Artifact(filename, url, sha), str(entry.get("index", "")),
                                      key[1]))
    return Lock(packages)


def _marker_applies(text: str) -> bool:
    try:
        return Marker(text).evaluate()
    except InvalidMarker:
        return True


def _best_wheel(wheels: list[dict]) -> dict | None:
    """The wheel this interpreter prefers most (packaging's tag order), or None when none fits."""
    if len(wheels) <= 1:
        return wheels[0] if wheels else None
    rank = _tag_rank()
    best, best_rank = None, None
    for wheel in wheels:
        filename = wheel.get("name") or str(wheel.get("url") or wheel.get("path") or "").rsplit("/", 1)[-1]
        try:
            tags = parse_wheel_filename(filename)[3]
        except InvalidWheelFilename:
            continue
        score = min((rank[t] for t in tags if t in rank), default=None)
        if score is not None and (best_rank is None or score < best_rank):
            best, best_rank = wheel, score
    return best


_RANK: dict = {}


def _tag_rank() -> dict:
    if not _RANK:
        _RANK.update({tag: i for i, tag in enumerate(sys_tags())})
    return _RANK


def _s(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(value)


def lock_text(packages: list[LockedPackage], *, paths: dict[str, str] | None = None,
              header: str = "") -> str:
    """A pylock.toml for `packages`; with `paths`, wheels point at local files (name -> path) instead of URLs."""
    lines = [f"# {h}" for h in header.splitlines()] + ['lock-version = "1.0"', 'created-by = "hearth"', ""]
    if not packages:
        lines.insert(len(lines) - 1, "packages = []")
    for p in sorted(packages, key=lambda p: (p.name, p.layer)):
        where = f"path = {_s(paths[p.name])}" if paths and p.name in paths else f"url = {_s(p.artifact.url)}"
        kind = "wheels" if p.artifact.filename.endswith(".whl") else "sdist"
        art = f"{{ name = {_s(p.artifact.filename)}, {where}, hashes = {{ sha256 = {_s(p.artifact.sha256)} }} }}"
        lines += ["[[packages]]", f"name = {_s(p.name)}", f"version = {_s(p.version)}"]
        if p.index:
            lines.append(f"index = {_s(p.index)}")
        lines.append(f"wheels = [{art}]" if kind == "wheels" else f"sdist = {art}")
        if p.layer:  # PEP 751's table for the installer's own data: which pack's layer holds it
            lines += ["[packages.tool.hearth]", f"layer = {_s(p.layer)}"]
        lines.append("")
    return "\n".join(lines)


def unpin(text: str, names: Iterable[str]) -> tuple[str, set[str]]:
    """`text` (a pylock.toml) less its ``[[packages]]`` entries for `names`, and the names it could not take out.

    uv keeps the versions of an earlier lock given as its output file; a package taken out of it is resolved
    afresh, as with ``--upgrade-package`` (which costs more: uv then treats its whole cache, the interpreter it
    knows included, as stale). A lock written another way (an inline ``packages = [...]``) is left as it is and
    its names are returned, for ``--upgrade-package``.
    """
    drop = {canonicalize_name(n) for n in names}
    parts = re.split(r"(?m)^(?=\[\[packages\]\][ \t]*$)", text)
    kept = [parts[0]]
    for part in parts[1:]:
        m = _PACKAGE_NAME.search(part)
        if not (m and canonicalize_name(m.group(1)) in drop):
            kept.append(part)
    out = "".join(kept)
    try:
        parsed = tomllib.loads(out)
        left = {canonicalize_name(str(p.get("name", ""))) for p in parsed.get("packages", [])} & drop
    except (tomllib.TOMLDecodeError, AttributeError, TypeError):
        return text, drop
    if "packages" not in parsed:
        # Every package taken out: uv refuses a pylock.toml without its required `packages` key ("missing field
        # `packages`"), which made reinstalling the only pack at another version fail. An empty array, placed
        # before any table so it stays a top-level key.
        table = re.search(r"(?m)^\[", out)
        at = table.start() if table else len(out)
        head = out[:at] if out[:at].endswith("\n") or not out[:at] else out[:at] + "\n"
        out = head + "packages = []\n" + out[at:]
    return out, left


_PACKAGE_NAME = re.compile(r"""(?m)^name[ \t]*=[ \t]*["']([^"']+)["']""")


# -- uv's resolver errors -------------------------------------------------------------------------------------------

_DEPENDS = re.compile(
    r"(?:all versions of |all of:\s*)?(?P<pkg>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<ver>(?:==|>=|<=|!=|~=|>|<)[^\s,]+)?"
    r" depends? on (?P<req>[A-Za-z0-9][A-Za-z0-9._\-\[\],]*(?:(?:==|>=|<=|!=|~=|>|<)[^\s]*)?)")
NOT_FOUND = re.compile(r"(?P<pkg>[A-Za-z0-9][A-Za-z0-9._-]*) was not found in the (?:package registry|provided|cache)")
_NO_VERSION = re.compile(r"there is no version of (?P<req>[A-Za-z0-9][A-Za-z0-9._-]*(?:[=<>!~]=?[^\s,]+)?)")
_NO_VERSION_ANY = re.compile(r"there are no versions of (?P<req>[A-Za-z0-9][A-Za-z0-9._-]*(?:[=<>!~]=?[^\s,]+)?)")


@dataclass(frozen=True)
class Need:
    """"`pack` (at `version`, or every version) needs `requirement`"."""

    pack: str
    version: str  # "" when uv spoke of every version
    requirement: str

    @property
    def who(self) -> str:
        """"pack 1.2" for one version, "pack>=2.0" for a range, "pack" for every version."""
        return self.described({})

    def described(self, versions: dict[str, list[str]]) -> str:
        """`who`, naming the versions when uv spoke of "all versions" and `versions` knows them."""
        if not self.version:
            known = versions.get(canonicalize_name(self.pack)) or []
            if len(known) == 1:
                return f"{self.pack} {known[0]}"
            if known:
                return f"every version of {self.pack} ({known[0]} to {known[-1]})"
            return self.pack
        return f"{self.pack}{self.version}" if self.version[0] in "<>=!~" else f"{self.pack} {self.version}"

    @property
    def target(self) -> str:
        try:
            return canonicalize_name(Requirement(self.requirement).name)
        except InvalidRequirement:
            return canonicalize_name(re.split(r"[=<>!~\[ ]", self.requirement)[0])


def needs_in(uv_error: str) -> list[Need]:
    found: list[Need] = []
    for m in _DEPENDS.finditer(uv_error):
        req = m.group("req").rstrip(",.")
        ver = (m.group("ver") or "").removeprefix("==")
        if m.group("ver") and not m.group("ver").startswith("=="):
            ver = m.group("ver")  # a range of versions: keep the operator
        need = Need(m.group("pkg"), ver, req)
        if need not in found:
            found.append(need)
    return found


def _satisfies(version: str, requirement: str) -> bool:
    try:
        return Requirement(requirement).specifier.contains(Version(version), prereleases=True)
    except (InvalidRequirement, InvalidVersion):
        return True


def conflict_message(uv_error: str, base: dict[str, str], versions: dict[str, list[str]] | None = None) -> str:
    """One line naming the packs and requirements that conflict, from uv's resolver explanation.

    "pack-a 1.2 needs torch<2 but the environment's base has torch 2.13.0" when a base package is at fault;
    "pack-a 1.0 needs dep<1 but pack-b 1.0 needs dep>=1.2" for two packs; uv's own cause, on one line, otherwise.
    `versions` (pack -> its versions, oldest first) names versions where uv only says "all versions of".
    """
    needs = needs_in(uv_error)
    versions = versions or {}
    parts: list[str] = []
    for need in needs:
        if need.target in base and not _satisfies(base[need.target], need.requirement):
            via = [n.described(versions) for n in needs if n.target == canonicalize_name(need.pack)]
            parts.append(f"{need.described(versions)} needs {need.requirement} but the environment's base has "
                         f"{need.target} {base[need.target]}" + (f" ({need.pack} is needed by {', '.join(via)})"
                                                                 if via else ""))
    if not parts:
        by_target: dict[str, list[Need]] = {}
        for need in needs:
            by_target.setdefault(need.target, []).append(need)
        for group in by_target.values():
            if len({n.requirement for n in group}) > 1:
                parts.append(" but ".join(f"{n.described(versions)} needs {n.requirement}" for n in group))
    if not parts:
        for m in NOT_FOUND.finditer(uv_error):
            who = [n.who for n in needs if n.target == canonicalize_name(m.group("pkg"))]
            via = f" (needed by {', '.join(who)})" if who else ""
            parts.append(f"{m.group('pkg')} was not found on any configured registry or index{via}")
        for m in list(_NO_VERSION.finditer(uv_error)) + list(_NO_VERSION_ANY.finditer(uv_error)):
            req = m.group("req")
            who = [n.who for n in needs if n.requirement == req]
            via = f" (needed by {', '.join(who)})" if who else ""
            parts.append(f"no version of {req} is available{via}")
    if not parts:
        cause = [ln.strip() for ln in uv_error.splitlines() if ln.strip() and not ln.strip().startswith("hint")]
        text = " ".join(cause).replace("error: ", "").replace("× ", "")
        return f"cannot resolve: {' '.join(text.split())[:600]}"
    unique = list(dict.fromkeys(parts))
    return "conflict: " + "; ".join(unique)
