"""The files a lock names: fetched into a content-addressed cache, each checked against its sha256, and the
ComfyUI-format packs among them unpacked into an environment's custom_nodes/.

A download is written to ``.<file>.<pid>-<random>.part`` beside its place and renamed in once its hash matches. A
process killed mid-download leaves that file behind; the next fetch from the same cache removes every ``.part``
whose process is gone (a live one may still be writing it). Parts are never resumed or reused: each download
starts a file of its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from hearth.registry.envs import hearth_home
from hearth.registry.lock import Lock, LockedPackage
from hearth.registry.pids import pid_alive
from hearth.registry.sources import InstallError, Sources

if TYPE_CHECKING:
    import httpx

CUSTOM_NODES_GROUP = "comfyui.custom_nodes"


class Progress:
    """What an install reports as it goes; the CLI shows it with rich, the library default says nothing."""

    def step(self, text: str) -> None:
        pass

    def download(self, name: str, total: int | None) -> Callable[[int], None]:
        """Called when a download starts; returns the callable that is given each chunk's size."""
        return lambda n: None


def artifacts_dir() -> Path:
    return hearth_home() / "cache" / "artifacts"


# -- fetching ------------------------------------------------------------------------------------------------------

def _cached_path(p: LockedPackage) -> Path:
    return artifacts_dir() / p.artifact.sha256 / p.artifact.filename


def fetch(lock: Lock, sources: Sources, progress: Progress | None = None) -> dict[str, Path]:
    """Every artifact of the lock in the local cache, each checked against its sha256; name -> path.

    A file whose hash differs is refused (and not kept): "tampered or corrupt" names the package and URL.
    """
    progress = progress or Progress()
    remove_dead_parts()
    wanted = [p for p in lock.packages if not _cached_path(p).is_file()]
    if wanted and sources.offline:
        names = ", ".join(f"{p.name} {p.version}" for p in wanted)
        raise InstallError(f"offline and not in the cache: {names}; run it once online")
    if wanted:
        import httpx  # deferred: a no-op `comfy sync` never needs the network stack

        progress.step(f"downloading {len(wanted)} file{'s' if len(wanted) != 1 else ''}")
        with httpx.Client(timeout=60, follow_redirects=True) as client, ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda p: _download(client, p, sources, progress), wanted))
    return {p.name: _cached_path(p) for p in lock.packages}


def _part_owner(part: Path) -> int | None:
    """The pid in ``.<file>.<pid>-<random>.part`` (or the older ``.<file>.<pid>.part``); None if there is none."""
    owner = part.name[:-len(".part")].rsplit(".", 1)[-1].split("-", 1)[0]
    return int(owner) if owner.isdigit() else None


def remove_dead_parts(root: Path | None = None) -> list[Path]:
    """Remove the partial downloads in the cache whose process is no longer running; returns what was removed."""
    root = root if root is not None else artifacts_dir()
    removed = []
    for part in root.glob("*/.*.part"):
        owner = _part_owner(part)
        if owner is None or not pid_alive(owner):
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
                removed.append(part)
    return removed


def _download(client: httpx.Client, p: LockedPackage, sources: Sources, progress: Progress) -> None:
    import httpx

    dest = _cached_path(p)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # pid: whose it is, for the sweep; random: a reused pid or a second thread never writes into an old part.
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")
    digest = hashlib.sha256()
    url = p.artifact.url
    try:
        with open(tmp, "xb") as out:
            if url.startswith("file://"):
                src = Path(unquote(urlparse(url).path))
                advance = progress.download(p.artifact.filename, src.stat().st_size if src.exists() else None)
                try:
                    with open(src, "rb") as f:
                        while block := f.read(1 << 20):
                            digest.update(block)
                            out.write(block)
                            advance(len(block))
                except OSError as exc:
                    raise InstallError(f"{p.name} {p.version}: cannot read {src}: {exc.strerror}") from None
            else:
                token = sources.token_for_url(url)
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                try:
                    with client.stream("GET", url, headers=headers) as response:
                        if response.status_code >= 400:
                            raise InstallError(f"{p.name} {p.version}: {url} answered {response.status_code}; "
                                               "run `comfy lock` again if the registry has changed")
                        size = response.headers.get("content-length")
                        advance = progress.download(p.artifact.filename, int(size) if size else None)
                        for block in response.iter_bytes(1 << 20):
                            digest.update(block)
                            out.write(block)
                            advance(len(block))
                except httpx.TransportError as exc:
                    raise InstallError(f"{p.name} {p.version}: download from {url} failed "
                                       f"({type(exc).__name__}: {exc or 'no answer'})") from None
        if digest.hexdigest() != p.artifact.sha256:
            raise InstallError(f"{p.name} {p.version}: hash mismatch for {url} (expected sha256 "
                               f"{p.artifact.sha256[:16]}…, got {digest.hexdigest()[:16]}…); the file is tampered "
                               "or corrupt and was refused, nothing was installed")
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


# -- ComfyUI-format packs ------------------------------------------------------------------------------------------

def comfyui_entry(wheel: Path) -> tuple[str, str] | None:
    """(pack id, package folder) when the wheel is a ComfyUI-format pack (a `comfyui.custom_nodes` entry point)."""
    with zipfile.ZipFile(wheel) as zf:
        eps = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt") and n.count("/") == 1]
        if not eps:
            return None
        group = None
        for line in zf.read(eps[0]).decode("utf-8", "replace").splitlines():
            line = line.strip()
            if line.startswith("["):
                group = line.strip("[]").strip()
            elif group == CUSTOM_NODES_GROUP and "=" in line:
                key, value = (s.strip() for s in line.split("=", 1))
                return key, value.split(":")[0]
    return None


def extract_custom_node(wheel: Path, pack_id: str, package: str, custom_nodes: Path) -> Path:
    """The wheel's `package/` folder as custom_nodes/<pack_id>/, refusing any member that escapes it."""
    if not pack_id or "/" in pack_id or pack_id in (".", "..") or pack_id.startswith("."):
        raise InstallError(f"{wheel.name}: custom-node name {pack_id!r} is not a safe folder name")
    target = custom_nodes / pack_id
    target.mkdir(parents=True)
    root = target.resolve()
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if not info.filename.startswith(package + "/") or info.is_dir():
                continue
            rel = PurePosixPath(info.filename[len(package) + 1:])
            mode = info.external_attr >> 16
            if rel.is_absolute() or ".." in rel.parts or "\\" in info.filename or (mode & 0o170000) == 0o120000:
                raise InstallError(f"{wheel.name}: member {info.filename!r} would escape custom_nodes/{pack_id} "
                                   "(absolute path, '..' or a link); refused")
            dest = (target / rel).resolve()
            if not dest.is_relative_to(root):
                raise InstallError(f"{wheel.name}: member {info.filename!r} escapes custom_nodes/{pack_id}; refused")
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
    return target
