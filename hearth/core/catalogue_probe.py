"""Which parts of a node's definition change with the machine's state: model file lists, and dynamic nodes.

A node's ``INPUT_TYPES`` is read twice when the catalogue is built: once in the real Runtime, once in a *probe*
Runtime that shares its plugins but whose model folders list one sentinel name per kind (``\\x00list:loras\\x00``)
and whose input, output and temp folders are fresh ones holding a sentinel file of every common media type.

* Where the probe's answer has a list holding sentinels, that list is a *template*: the model files of those kinds,
  perhaps with fixed items around them (``["None", *loras]``). If rendering the template with today's lists gives
  exactly the real answer, the catalogue keeps the template and renders it with the lists of the day on every load:
  a new model file refreshes the lists, never the catalogue.
* Any other difference between the two answers (the input folder's images of LoadImage, a list filtered by a
  pattern, a node that looks at the folders itself) makes the node *dynamic*. Probes that change one folder at a
  time (input; output and temp; models) tell which folders it reads; the catalogue keeps its answer with a stat
  fingerprint of those folders (:func:`folder_state`) and reads ``INPUT_TYPES`` again only when they changed.
* A second real read that differs from the first (a clock, a random choice), a class that says so
  (``DYNAMIC_INPUT_TYPES = True``, for state no probe can see: a server, a setting), or a difference no single
  folder explains make it dynamic *always*: its ``INPUT_TYPES`` is read again whenever its definition is shown.

Calling twice alone would miss the commonest dynamic nodes (file lists do not change between two calls); a marker
alone would miss every ComfyUI pack, which has never heard of it. The probe finds what depends on Hearth's folders,
the second call what depends on time, the marker the rest.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hearth.core.catalogue_key import Stamp
from hearth.core.model_folders import ModelFolders

if TYPE_CHECKING:
    from collections.abc import Iterator

    from hearth.core.runtime import Runtime

SENTINEL_PREFIX = "\x00list:"
SENTINEL_SUFFIX = "\x00"
DYNAMIC_MARKER = "DYNAMIC_INPUT_TYPES"
FOLDER_STATES = ("input", "output", "models")  # the state a probe can change; "always": anything else
ALWAYS = "always"
# One file of each kind a loader node commonly lists from the input folder (images, masks, audio, video, text).
PROBE_FILES = ("hearth-probe.png", "hearth-probe.jpg", "hearth-probe.jpeg", "hearth-probe.webp", "hearth-probe.gif",
               "hearth-probe.wav", "hearth-probe.mp3", "hearth-probe.flac", "hearth-probe.ogg", "hearth-probe.mp4",
               "hearth-probe.webm", "hearth-probe.mov", "hearth-probe.txt", "hearth-probe.json",
               "hearth-probe.safetensors", "hearth-probe.ckpt", "hearth-probe.pt", "hearth-probe.bin",
               "hearth-probe.glb", "hearth-probe.obj", "hearth-probe.latent", "hearth-probe.npz")
Template = tuple[list[Any], list[Any]]  # (JSON path to a list, the list with sentinels where model lists go)


def sentinel(kind: str) -> str:
    return f"{SENTINEL_PREFIX}{kind}{SENTINEL_SUFFIX}"


def sentinel_kind(item: Any) -> str | None:
    if isinstance(item, str) and item.startswith(SENTINEL_PREFIX) and item.endswith(SENTINEL_SUFFIX):
        return item[len(SENTINEL_PREFIX):-len(SENTINEL_SUFFIX)]
    return None


class SentinelFolders(ModelFolders):
    """Model folders that list one sentinel name per kind and whose folders are an empty probe folder."""

    def __init__(self, real: ModelFolders, empty: Path) -> None:
        self.base = empty
        self._folders = {kind: [empty / kind] for kind in real._folders}
        self._extensions = dict(real._extensions)

    def list(self, kind: str) -> list[str]:
        return [sentinel(self._kind(kind))]


def jsonable(value: Any) -> Any:
    """``value`` as ``comfy nodes --json`` writes it and the catalogue file keeps it (``default=str``)."""
    return json.loads(json.dumps(value, default=str))


@contextmanager
def probe_folders() -> Iterator[Path]:
    """A temporary folder of probe folders: ``input``, ``output`` and ``temp`` of sentinel files, empty ``models``
    (made once per build: every probe Runtime shares it)."""
    with tempfile.TemporaryDirectory(prefix="hearth-probe-") as folder:
        root = Path(folder)
        for name in ("input", "output", "temp"):
            (root / name).mkdir()
            for file in PROBE_FILES:
                (root / name / file).touch()
        (root / "models").mkdir()
        yield root


def probe_runtime(runtime: Runtime, root: Path, changes: Iterable[str] = FOLDER_STATES) -> Runtime:
    """A Runtime sharing ``runtime``'s plugins in which the ``changes`` differ, using the probe folders under
    ``root`` (:func:`probe_folders`): ``"models"`` lists one sentinel per kind from empty folders, ``"input"`` and
    ``"output"`` (with temp) are folders of sentinel files."""
    from hearth.core.runtime import Runtime

    changes = set(changes)
    options = runtime.options
    if "input" in changes:
        options = replace(options, input=root / "input")
    if "output" in changes:
        options = replace(options, output=root / "output", temp=root / "temp")
    models = runtime.model_folders
    if "models" in changes:
        options = replace(options, models_dir=root / "models")
        models = SentinelFolders(runtime.model_folders, root / "models")
    return Runtime(options, plugins=runtime.plugins, model_folders=models)


def folder_state(runtime: Runtime, depends: Iterable[str]) -> str:
    """A fingerprint of the folders a dynamic node reads (``"input"``, ``"output"``, ``"models"``): while it
    is unchanged, so is what the node's ``INPUT_TYPES`` says."""
    stamp = Stamp()
    parts: dict[str, Any] = {}
    folders = runtime.folders
    for what in sorted(set(depends)):
        if what == "input":
            parts[what] = [str(folders.input.absolute()), stamp.tree(folders.input)]
        elif what == "output":
            parts[what] = [[str(f.absolute()), stamp.tree(f)] for f in (folders.output, folders.temp)]
        elif what == "models":
            parts[what] = {kind: [[str(f), stamp.tree(f)] for f in runtime.model_folders.folders(kind)]
                           for kind in runtime.model_folders.kinds()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def render(template: list[Any], lists: Mapping[str, list[str]]) -> list[Any]:
    """A template list with each sentinel replaced by the files of its kind."""
    out: list[Any] = []
    for item in template:
        kind = sentinel_kind(item)
        if kind is None:
            out.append(item)
        else:
            out.extend(lists.get(kind, []))
    return out


def find_templates(real: Any, probe: Any, lists: Callable[[str], list[str]]) -> list[Template] | None:
    """The model-list templates that explain every difference between the real and the probe answer (JSON values),
    or ``None`` when something else differs (the node is dynamic)."""
    found: list[Template] = []
    work: list[tuple[list[Any], Any, Any]] = [([], real, probe)]
    while work:
        path, a, b = work.pop()
        if isinstance(b, list) and any(sentinel_kind(item) is not None for item in b):
            if not isinstance(a, list):
                return None
            kinds = {sentinel_kind(item) for item in b} - {None}
            if render(b, {k: lists(k) for k in kinds if k is not None}) != a:
                return None
            found.append((path, b))
        elif isinstance(a, dict) and isinstance(b, dict):
            if list(a) != list(b):
                return None
            work.extend(([*path, k], a[k], b[k]) for k in a)
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                return None
            work.extend(([*path, i], x, y) for i, (x, y) in enumerate(zip(a, b, strict=True)))
        elif a != b or type(a) is not type(b):
            return None
    return sorted(found, key=lambda t: [str(p) for p in t[0]])


def apply_templates(info: dict[str, Any], templates: list[Template], lists: Mapping[str, list[str]]) -> None:
    """Put today's model lists into ``info`` (in place) where its templates say."""
    for path, template in templates:
        target: Any = info
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = render(template, lists)


def template_kinds(templates: list[Template]) -> set[str]:
    return {kind for _, template in templates for item in template if (kind := sentinel_kind(item)) is not None}
