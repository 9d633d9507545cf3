"""Where packs and their Python packages come from: the registries by priority, then PyPI, and which registry
owns each pack a user names (asked of the registries' simple indexes, the pages uv resolves from)."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from hearth.registry.config import Index, PackNotFound, source_for_pack
from hearth.registry.envs import EnvironmentError_

ENV_PYPI = "COMFY_PYPI_URL"  # the index after the registries; "none" for none
ENV_FIND_LINKS = "COMFY_FIND_LINKS"  # extra folders or pages of wheels, os.pathsep-separated
DEFAULT_PYPI = "https://pypi.org/simple"
_HEARTH_FILE = re.compile(r"^(https?://.+?)/files/[0-9a-f]{64}/[^/]+\.whl$")


class InstallError(EnvironmentError_):
    """An install, lock or sync could not be done; the environment is unchanged. One line."""

    def __init__(self, message: str, uv_error: str = ""):
        super().__init__(message)
        self.uv_error = uv_error  # uv's own explanation, when the resolver refused


@dataclass(frozen=True)
class Sources:
    """Where packages come from, in priority order: the registries, then PyPI (or none), plus find-links."""

    indexes: tuple[Index, ...] = ()
    pypi: str | None = DEFAULT_PYPI
    find_links: tuple[str, ...] = ()
    offline: bool = False

    @classmethod
    def from_environment(cls, indexes: Iterable[Index] = (), offline: bool = False) -> Sources:
        pypi = os.environ.get(ENV_PYPI, DEFAULT_PYPI).strip()
        links = tuple(p for p in os.environ.get(ENV_FIND_LINKS, "").split(os.pathsep) if p)
        return cls(tuple(indexes), None if pypi.lower() in ("", "none", "off") else pypi, links, offline)

    def registry_for_url(self, url: str) -> str:
        """The registry an artifact URL belongs to ("" for PyPI and local files)."""
        for r in self.indexes:
            if url.startswith(r.url + "/"):
                return r.url
        found = _HEARTH_FILE.match(url)  # a Hearth registry's layout, for a lock from a registry not configured here
        return found.group(1) if found else ""

    def token_for_url(self, url: str) -> str | None:
        return next((r.token for r in self.indexes if r.token and url.startswith(r.url + "/")), None)


def parse_spec(text: str) -> Requirement:
    """`PACK`, `PACK==VERSION` or `PACK<SPEC>` as a requirement; a bad one is named."""
    try:
        req = Requirement(text.strip())
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0].strip()  # packaging adds the spec and a caret on further lines
        raise InstallError(f"pack spec {text!r} is not valid ({reason}); write PACK, PACK==1.2.0 or 'PACK>=1.2'") \
            from None
    if req.url:
        raise InstallError(f"pack spec {text!r}: direct URLs are not installed; publish the pack to a registry")
    return req


def find_sources(specs: Iterable[str], indexes: list[Index], pages: dict[str, dict] | None = None
                 ) -> dict[str, str]:
    """pack -> the registry it comes from (the highest-priority one that has it); every missing pack is named.

    Asks each registry's simple index, the very pages uv resolves from, by priority (`source_for_pack`): a
    registry that cannot answer (offline, refusing the token) is an error, never a reason to try the next.
    `pages`, when given, receives each pack's page as its registry gave it (pack -> PEP 691 data).
    """
    return _find_sources(specs, indexes, simple_index_lookup, pages)


def simple_index_lookup(index: Index, name: str) -> dict | None:
    """The registry's PEP 691 page for `name`, or None when it has no such project (stdlib only: it is quick)."""
    import urllib.error
    import urllib.request

    headers = {"Accept": "application/vnd.pypi.simple.v1+json"}
    if index.token:
        headers["Authorization"] = f"Bearer {index.token}"
    url = f"{index.url}/simple/{canonicalize_name(name)}/"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=15) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        said = _error_text(exc.read())
        hint = f" (run `comfy login --registry {index.url}`)" if exc.code in (401, 403) else ""
        raise InstallError(f"registry {index.url} answered {exc.code}: {said}{hint}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InstallError(f"registry {index.url} is not reachable ({reason}); check the URL and that the "
                           "server is running") from None


def _error_text(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:200] or "no detail"
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        return str(data.get("message") or data.get("detail") or data)[:200]
    return str(data)[:200]


def _find_sources(specs: Iterable[str], indexes: list[Index],
                  lookup: Callable[[Index, str], dict | None], pages: dict[str, dict] | None = None
                  ) -> dict[str, str]:
    found, missing = {}, []
    for spec in specs:
        name = parse_spec(spec).name
        got = source_for_pack(name, indexes, lookup)
        if isinstance(got, PackNotFound):
            missing.append(got)
        else:
            found[canonicalize_name(name)] = got[0].url
            if pages is not None and isinstance(got[1], dict):
                pages[canonicalize_name(name)] = got[1]
    if missing:
        names = ", ".join(repr(m.name) for m in missing)
        raise InstallError(f"pack{'s' if len(missing) > 1 else ''} {names} not found on "
                           f"{', '.join(missing[0].searched)}; check the name with `comfy search`")
    return found


def newer_on_registry(specs: Iterable[str], chosen: dict[str, str], pages: dict[str, dict]) -> list[str]:
    """The packs of `specs` whose registry page (`pages`, read just now) offers a version their spec allows that is
    newer than the one `chosen` (pack -> version): a resolve that worked from a stale cached page."""
    stale = []
    for spec in specs:
        req = parse_spec(spec)
        name = canonicalize_name(req.name)
        if name not in chosen or name not in pages:
            continue
        try:
            have = Version(chosen[name])
        except InvalidVersion:
            continue
        # Pre-releases count only where uv would take them: asked for by the spec, or already chosen.
        pre = bool(have.is_prerelease or req.specifier.prereleases)
        if any(v > have and req.specifier.contains(v, prereleases=pre) for v in _offered(pages[name])):
            stale.append(req.name)
    return stale


def _offered(page: dict) -> set:
    """The versions a PEP 691 page offers files of, yanked ones left out (as uv leaves them out)."""
    files = page.get("files")
    if not isinstance(files, list):  # no file list: the page's version list, as it is
        out = set()
        for v in page.get("versions") or ():
            with contextlib.suppress(InvalidVersion, TypeError):
                out.add(Version(str(v)))
        return out
    out = set()
    for f in files:
        if not isinstance(f, dict) or f.get("yanked") not in (None, False):
            continue
        filename = str(f.get("filename", ""))
        with contextlib.suppress(InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            out.add(parse_wheel_filename(filename)[1] if filename.endswith(".whl")
                    else parse_sdist_filename(filename)[1])
    return out


def index_versions(names: Iterable[str], sources: Sources) -> dict[str, list[str]]:
    """pack -> its versions on the first registry whose simple index has it (best effort: {} when offline)."""
    found: dict[str, list[str]] = {}
    if sources.offline:
        return found
    for name in names:
        with contextlib.suppress(InstallError):
            got = source_for_pack(name, list(sources.indexes), simple_index_lookup)
            if not isinstance(got, PackNotFound):
                versions = got[1].get("versions")
                if isinstance(versions, list):
                    found[canonicalize_name(name)] = [str(v) for v in versions]
    return found


# -- Python projects come from the Python package index ----------------------------------------------------------

PYTHON_INDEX = "python-index"  # the name the pinned copy of the Python package index has in a resolution's input


def registry_stand_ins(packages: Iterable, requested: Iterable[str], sources: Sources) -> set[str]:
    """The locked packages a registry supplied under a reserved name (a Python package index project, a base
    package, Hearth's own) that the user did not ask for as a pack: another pack's dependency on `requests` means
    the Python project, never a registry's pack of that name. `packages` are the lock's (name, artifact.url)."""
    from hearth.registry.names import reserved_rule

    asked = {canonicalize_name(n) for n in requested}
    return {p.name for p in packages
            if p.name not in asked and reserved_rule(p.name) and sources.registry_for_url(p.artifact.url)}


def resolution_input(specs: Iterable[str], pypi_only: Iterable[str], pypi: str) -> str:
    """A pyproject.toml for `uv pip compile`: the specs, plus each name of `pypi_only` pinned (uv's
    ``[tool.uv.sources]``) to an explicit copy of the Python package index, so no registry can supply it.

    uv applies sources to the root's own dependencies only, hence each pinned name is also listed as one: it is
    in the lock anyway (a pack needs it), and the packs' own version constraints still apply to it.
    """
    pinned = sorted({canonicalize_name(n) for n in pypi_only})
    deps = [*specs, *pinned]
    lines = ['[project]', 'name = "hearth-resolution"', 'version = "0"',
             "dependencies = [" + ", ".join(json.dumps(d) for d in deps) + "]", "",
             "[[tool.uv.index]]", f'name = "{PYTHON_INDEX}"', f"url = {json.dumps(pypi)}", "explicit = true", "",
             "[tool.uv.sources]"]
    lines += [f'{json.dumps(n)} = {{ index = "{PYTHON_INDEX}" }}' for n in pinned]
    return "\n".join(lines) + "\n"
