"""What a running node can ask of the executor: its folders, progress reporting and interruption.

Nodes written against ComfyUI's V1 contract get no context argument, so the executor sets one in a context
variable while a node runs; ``hearth.core.context.current()`` returns it (``None`` outside execution). Outside a
node, :func:`folders` answers from the current :class:`~hearth.core.runtime.Runtime`.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class InterruptProcessing(Exception):
    """Raised inside a node when the user interrupted the prompt; the executor reports it, not as an error."""


@dataclass
class Folders:
    """Where inputs are read from and outputs written to."""

    output: Path = field(default_factory=lambda: Path("output"))
    input: Path = field(default_factory=lambda: Path("input"))
    temp: Path = field(default_factory=lambda: Path("temp"))

    def __post_init__(self) -> None:
        self.output, self.input, self.temp = Path(self.output), Path(self.input), Path(self.temp)

    def for_type(self, kind: str) -> Path:
        """The folder for ComfyUI's ``type`` field (``output``, ``input`` or ``temp``)."""
        try:
            return {"output": self.output, "input": self.input, "temp": self.temp}[kind]
        except KeyError:
            raise ValueError(f"unknown folder type {kind!r}; expected output, input or temp") from None


@dataclass
class ExecutionContext:
    """Per-node view of the running prompt."""

    prompt_id: str
    node_id: str
    display_node_id: str
    class_type: str
    folders: Folders
    emit: Callable[[str, dict[str, Any]], None]
    interrupt: threading.Event

    def check_interrupted(self) -> None:
        if self.interrupt.is_set():
            raise InterruptProcessing(f"interrupted while executing node {self.node_id} ({self.class_type})")

    def progress(self, value: float, total: float, preview: Any = None) -> None:
        """Report progress of this node (emits ComfyUI's ``progress`` event); raises if interrupted."""
        self.check_interrupted()
        data: dict[str, Any] = {"value": value, "max": total, "prompt_id": self.prompt_id, "node": self.node_id}
        if preview is not None:
            data["preview"] = preview
        self.emit("progress", data)


_current: contextvars.ContextVar[ExecutionContext | None] = contextvars.ContextVar("hearth_node", default=None)


def current() -> ExecutionContext | None:
    """The context of the node running now, or ``None`` outside execution."""
    return _current.get()


def progress(value: float, total: float, preview: Any = None) -> None:
    """Report progress from inside a node; a no-op outside execution."""
    ctx = _current.get()
    if ctx is not None:
        ctx.progress(value, total, preview)


def check_interrupted() -> None:
    """Raise :class:`InterruptProcessing` if the running prompt was interrupted."""
    ctx = _current.get()
    if ctx is not None:
        ctx.check_interrupted()


def folders() -> Folders:
    """The folders of the running prompt; outside execution, the current Runtime's.

    Outside every Runtime: ``./output``, ``./input`` and ``./temp`` of the working directory, made fresh on each
    call, so nothing set in one run can leak into another.
    """
    ctx = _current.get()
    if ctx is not None:
        return ctx.folders
    from hearth.core.runtime import current_runtime  # deferred: the runtime module imports this one

    runtime = current_runtime()
    return runtime.folders if runtime is not None else Folders()


def enter(ctx: ExecutionContext) -> contextvars.Token:
    return _current.set(ctx)


def leave(token: contextvars.Token) -> None:
    _current.reset(token)


# -- files in the folders (ComfyUI's conventions, for every node that reads or writes them) ---------------------


def annotated_path(name: str) -> Path:
    """Resolve ``"sub/file.png [output]"`` (ComfyUI's annotated names) inside the input, output or temp folder."""
    folders_ = folders()
    base = folders_.input
    match = re.fullmatch(r"(.*) \[(input|output|temp)\]", name)
    if match:
        name, base = match.group(1), folders_.for_type(match.group(2))
    root = base.resolve()
    path = (root / name).resolve()
    if root != path and root not in path.parents:
        raise ValueError(f"image path {name!r} leaves the {base} folder")
    return path


def save_path(prefix: str, folder: Path, width: int, height: int) -> tuple[Path, str, int]:
    """Where the next files of ``prefix`` go: (directory, base name, first free counter)."""
    stamp = time.localtime()
    replacements = {"%width%": str(width), "%height%": str(height), "%year%": f"{stamp.tm_year}",
                    "%month%": f"{stamp.tm_mon:02}", "%day%": f"{stamp.tm_mday:02}",
                    "%hour%": f"{stamp.tm_hour:02}", "%minute%": f"{stamp.tm_min:02}",
                    "%second%": f"{stamp.tm_sec:02}"}
    for key, value in replacements.items():
        prefix = prefix.replace(key, value)
    subfolder, _, base = prefix.replace("\\", "/").rpartition("/")
    root = folder.resolve()
    directory = (root / subfolder).resolve()
    if directory != root and root not in directory.parents:
        raise ValueError(f"filename_prefix {prefix!r} would save outside the output folder {folder}")
    directory.mkdir(parents=True, exist_ok=True)
    # %batch_num% is filled in per image, so it matches any number here; counting it literally (as ComfyUI
    # does) found no files and overwrote the previous run's images.
    pattern = re.compile(re.escape(base).replace(re.escape("%batch_num%"), r"\d+") + r"_(\d+)_?\.")
    counters = [int(m.group(1)) for name in os.listdir(directory) if (m := pattern.match(name))]
    return directory, base, max(counters, default=0) + 1


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to, renamed onto ``path`` when the block ends without error.

    A crash, a ``kill -9`` or an exception mid-write never leaves a truncated file under the final name (the server
    would list and serve it): only the hidden temporary ``.<stem>.<pid>-<random>.partial<suffix>``, which an
    exception removes and :func:`remove_dead_partials` sweeps once its process is gone. The suffix is kept so
    writers that pick a format from the name still do.
    """
    path = Path(path)
    # The writer creates the temporary itself (usual permissions, not mkstemp's 0600); the random part keeps two
    # writers of one name apart, the pid tells the sweep whether its writer still runs.
    temp = path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial{path.suffix}")
    try:
        yield temp
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


_PARTIAL = re.compile(r"\..*\.(\d+)-[0-9a-f]{8}\.partial(\.[^./]*)?")


def remove_dead_partials(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove what :func:`atomic_path` writers killed mid-write left under ``folder``; returns the removed paths.

    Only temporaries whose process no longer runs: another process (``comfy run`` beside ``comfy serve``) may be
    writing into the same output folder right now.
    """
    removed = []
    for dirpath, _, names in os.walk(folder):
        for name in names:
            found = _PARTIAL.fullmatch(name)
            if found and not _process_runs(int(found.group(1))):
                path = Path(dirpath) / name
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
