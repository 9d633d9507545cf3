"""ComfyUI's ``folder_paths`` module over Hearth's model folders (``hearth.core.model_folders``) and prompt folders.

Packs register their own model kinds at import time, either with :func:`add_model_folder_path` or by editing
``folder_names_and_paths`` directly (assigning a ``(paths, extensions)`` pair, or appending to a kind's path list);
every such edit lands in the process's :class:`~hearth.core.model_folders.ModelFolders`, so Hearth's loaders and the
server's model listings see the pack's folders too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

from hearth.core import context
from hearth.core.model_folders import (
    ALIASES,
    MODEL_EXTENSIONS,
    ModelFileNotFound,
    UnknownFolderKind,
    model_folders,
)
from hearth_comfy_compat.hook import custom_nodes_folders

# ComfyUI's set, as a mutable set: packs union it with their own extensions.
supported_pt_extensions: set[str] = set(MODEL_EXTENSIONS)


def map_legacy(folder_name: str) -> str:
    return ALIASES.get(folder_name, folder_name)


class _Paths(list):
    """A kind's folder list; appending or inserting adds the folder to Hearth's model folders."""

    def __init__(self, kind: str, paths: Iterable[str]) -> None:
        super().__init__(paths)
        self._kind = kind

    def append(self, path: Any) -> None:
        self.insert(len(self), path)

    def insert(self, index: Any, path: Any) -> None:
        super().insert(index, str(path))
        declared = folder_names_and_paths._empty.pop(self._kind, None)  # a kind declared with no folder till now
        model_folders().add(self._kind, path, first=index == 0 and len(self) > 1, extensions=declared or None)

    def extend(self, paths: Iterable[Any]) -> None:
        for path in paths:
            self.append(path)


class _Extensions(set):
    """A kind's extensions; adding one widens what Hearth lists for the kind."""

    def __init__(self, kind: str, extensions: Iterable[str]) -> None:
        super().__init__(extensions)
        self._kind = kind

    def _apply(self) -> None:
        if self._kind not in model_folders().kinds():
            folder_names_and_paths[self._kind] = ([], set(self))
            return
        folders = model_folders().folders(self._kind)
        if folders:  # ModelFolders takes extensions with a folder; re-adding the first keeps the order
            model_folders().add(self._kind, folders[0], first=True, extensions=set(self))

    def add(self, extension: str) -> None:
        super().add(extension)
        self._apply()

    def update(self, *others: Iterable[str]) -> None:
        super().update(*others)
        self._apply()


class FolderNamesAndPaths(MutableMapping):
    """ComfyUI's ``folder_names_and_paths``: kind -> (folder list, extension set), read from and written to
    Hearth's model folders rather than kept as a second copy that could disagree with them.

    Two kinds are kept here instead: ``custom_nodes`` (the folders packs load from, which are not model folders)
    and a kind a pack declares with no folder yet (``folder_names_and_paths["prompts"] = ([], {".txt"})``), which
    Hearth's model folders only learn of when the pack adds a folder to it.
    """

    def __init__(self) -> None:
        self._empty: dict[str, set[str]] = {}

    def __getitem__(self, kind: str) -> tuple[list[str], set[str]]:
        kind = map_legacy(kind)
        if kind == "custom_nodes":
            return [str(p) for p in custom_nodes_folders()], set()
        folders = model_folders()
        try:
            paths, extensions = folders.folders(kind), folders.extensions(kind)
        except UnknownFolderKind:
            if kind not in self._empty:
                raise KeyError(kind) from None
            paths, extensions = [], self._empty[kind]
        return _Paths(kind, (str(p) for p in paths)), _Extensions(kind, extensions)

    def __setitem__(self, kind: str, value: Any) -> None:
        paths, extensions = value
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        kind = map_legacy(kind)
        if not paths and kind not in model_folders().kinds():
            self._empty[kind] = set(extensions)
        for path in paths:
            model_folders().add(kind, path, extensions=set(extensions) or self._empty.pop(kind, None) or None)

    def setdefault(self, kind: str, default: Any = None) -> tuple[list[str], set[str]]:
        # MutableMapping's would hand back the default itself, whose edits would reach nothing.
        if kind not in self:
            self[kind] = default
        return self[kind]

    def __delitem__(self, kind: str) -> None:
        raise TypeError(f"cannot remove the model folder kind {kind!r}: Hearth's loaders may depend on it")

    def _kinds(self) -> list[str]:
        return sorted({*model_folders().kinds(), *self._empty, "custom_nodes"})

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds())

    def __len__(self) -> int:
        return len(self._kinds())

    def __contains__(self, kind: object) -> bool:
        return isinstance(kind, str) and map_legacy(kind) in self._kinds()


folder_names_and_paths = FolderNamesAndPaths()


def __getattr__(name: str) -> Any:
    # Computed on each access: the CLI sets the model and prompt folders after packs have imported this module.
    if name == "models_dir":
        return str(model_folders().base)
    if name == "base_path":
        return str(model_folders().base.resolve().parent)
    if name in ("output_directory", "input_directory", "temp_directory"):
        return str(getattr(context.folders(), name.removesuffix("_directory")))
    if name == "user_directory":
        return get_user_directory()
    raise AttributeError(name)


def set_output_directory(output_dir: str) -> None:
    """Change where outputs go for the current Runtime (ComfyUI's ``--output-directory``)."""
    context.folders().output = Path(output_dir)


def set_input_directory(input_dir: str) -> None:
    context.folders().input = Path(input_dir)


def set_temp_directory(temp_dir: str) -> None:
    context.folders().temp = Path(temp_dir)


_user_directory: Path | None = None

# ComfyUI's prefix of system user names (``__manager``): their folders are never reachable through /userdata.
SYSTEM_USER_PREFIX = "__"


def get_user_directory() -> str:
    """The users' folder (``<data>/user``, beside the output folder, where ``comfy serve`` keeps each user's
    settings and workflows), unless a pack set another with :func:`set_user_directory`."""
    if _user_directory is not None:
        return str(_user_directory)
    return str(context.folders().output.resolve().parent / "user")


def set_user_directory(user_dir: str) -> None:
    global _user_directory
    _user_directory = Path(user_dir)


def get_system_user_directory(name: str = "system") -> str:
    """The folder of a system user (``__<name>``), for a pack's own private state; ``name`` is a plain word."""
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"invalid system user name {name!r}: use letters, digits, '-' and '_'")
    return os.path.join(get_user_directory(), SYSTEM_USER_PREFIX + name)


def get_public_user_directory(user_id: str) -> str | None:
    """A user's folder, or None for a system user (or a name that is not a plain user name)."""
    if not user_id or user_id.startswith(SYSTEM_USER_PREFIX) or "/" in user_id or "\\" in user_id or ".." in user_id:
        return None
    return os.path.join(get_user_directory(), user_id)


def get_input_subfolders() -> list[str]:
    """Every folder inside the input folder, as ``a/b`` paths relative to it, sorted."""
    root = Path(get_input_directory())
    if not root.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir())


# Extension -> content type ("image", "video", "audio"), as ComfyUI caches it; packs may add their own.
extension_mimetypes_cache: dict[str, str] = {"webp": "image"}


def filter_files_content_types(files: list[str], content_types: Iterable[str]) -> list[str]:
    """The files whose MIME type (guessed from the extension) is one of ``content_types`` ("image"...)."""
    import mimetypes

    wanted = set(content_types) if not isinstance(content_types, str) else {content_types}
    found = []
    for file in files:
        extension = file.rsplit(".", 1)[-1]
        kind = extension_mimetypes_cache.get(extension)
        if kind is None:
            mime, _ = mimetypes.guess_type(file, strict=False)
            if not mime:
                continue
            kind = extension_mimetypes_cache[extension] = mime.split("/")[0]
        if kind in wanted:
            found.append(file)
    return found


def filter_files_extensions(files: Iterable[str], extensions: Iterable[str]) -> list[str]:
    """The files with one of ``extensions`` (``".safetensors"``; an empty collection keeps every file), sorted."""
    extensions = {e.lower() for e in extensions}
    return sorted(f for f in files if not extensions or os.path.splitext(f)[-1].lower() in extensions)


def recursive_search(directory: str, excluded_dir_names: list[str] | None = None) -> tuple[list[str], dict[str, float]]:
    """(every file under ``directory`` relative to it, {each folder searched: its mtime}); a folder that does not
    exist gives nothing. Folders named in ``excluded_dir_names`` are skipped."""
    if not os.path.isdir(directory):
        return [], {}
    excluded = set(excluded_dir_names or ())
    files: list[str] = []
    folders: dict[str, float] = {}
    for root, dirs, names in os.walk(directory, followlinks=True):
        dirs[:] = [d for d in dirs if d not in excluded]
        try:
            folders[root] = os.path.getmtime(root)
        except OSError:
            continue
        files.extend(os.path.relpath(os.path.join(root, name), directory) for name in names)
    return files, folders


def get_filename_list_(folder_name: str) -> tuple[list[str], dict[str, float], float]:
    """(the kind's files, {folder: mtime}, when listed): ComfyUI's uncached listing."""
    import time

    folders: dict[str, float] = {}
    for path in get_folder_paths(folder_name):
        folders.update(recursive_search(path, excluded_dir_names=[".git"])[1])
    return get_filename_list(folder_name), folders, time.perf_counter()


def cached_filename_list_(folder_name: str) -> tuple[list[str], dict[str, float], float] | None:
    """Hearth lists a kind's folders afresh each time, so there is never a cached listing: always None."""
    return None


# ComfyUI's listing cache, read by some packs to invalidate it; Hearth keeps none, so clearing it is harmless.
filename_list_cache: dict[str, tuple[list[str], dict[str, float], float]] = {}


class CacheHelper:
    """ComfyUI's ``with folder_paths.cache_helper:`` block that holds listings steady; Hearth lists afresh each
    time, so the block only tracks whether it is active."""

    def __init__(self) -> None:
        self.cache: dict[str, tuple[list[str], dict[str, float], float]] = {}
        self.active = False

    def get(self, key: str, default: Any = None) -> Any:
        return self.cache.get(key, default) if self.active else default

    def set(self, key: str, value: tuple[list[str], dict[str, float], float]) -> None:
        if self.active:
            self.cache[key] = value

    def clear(self) -> None:
        self.cache.clear()

    def __enter__(self) -> CacheHelper:
        self.active = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.active = False
        self.clear()


cache_helper = CacheHelper()


def _made(folder: Path) -> str:
    """``folder`` as an absolute path, made if it is not there yet: ComfyUI makes its input, output and temp
    folders at start, and packs list them in ``INPUT_TYPES`` without checking (VideoHelperSuite's loaders)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only place: the pack's own use of it reports the problem
        pass
    return str(folder.absolute())


def get_output_directory() -> str:
    return _made(context.folders().output)


def get_input_directory() -> str:
    return _made(context.folders().input)


def get_temp_directory() -> str:
    return _made(context.folders().temp)


def get_directory_by_type(type_name: str) -> str | None:
    try:
        return str(context.folders().for_type(type_name))
    except ValueError:
        return None


def add_model_folder_path(folder_name: str, full_folder_path: str, is_default: bool = False) -> None:
    model_folders().add(folder_name, full_folder_path, first=is_default)


def get_folder_paths(folder_name: str) -> list[str]:
    return [str(p) for p in folder_names_and_paths[folder_name][0]]


def get_filename_list(folder_name: str) -> list[str]:
    if folder_name not in model_folders().kinds() and folder_name in folder_names_and_paths:
        return []  # a kind declared with no folder yet
    return model_folders().list(folder_name)


def get_full_path(folder_name: str, filename: str) -> str | None:
    """The file's path, or None when no folder of the kind has it (or the kind is unknown), as in ComfyUI."""
    try:
        return str(model_folders().find(folder_name, filename))
    except (ModelFileNotFound, UnknownFolderKind):
        return None


def get_full_path_or_raise(folder_name: str, filename: str) -> str:
    try:
        return str(model_folders().find(folder_name, filename))
    except UnknownFolderKind as exc:
        raise FileNotFoundError(str(exc)) from None


def annotated_filepath(name: str) -> tuple[str, str | None]:
    """Split ComfyUI's ``"name.png [output]"`` annotation: (name, folder) where folder may be None."""
    for kind in ("output", "input", "temp"):
        if name.endswith(f" [{kind}]"):
            return name[: -len(kind) - 3], str(context.folders().for_type(kind))
    return name, None


def get_annotated_filepath(name: str, default_dir: str | None = None) -> str:
    name, directory = annotated_filepath(name)
    if directory is None:
        directory = default_dir if default_dir is not None else get_input_directory()
    return os.path.join(directory, name)


def exists_annotated_filepath(name: str) -> bool:
    return os.path.exists(get_annotated_filepath(name))


def get_save_image_path(filename_prefix: str, output_dir: str, image_width: int = 0,
                        image_height: int = 0) -> tuple[str, str, int, str, str]:
    """(folder, file name base, next counter, subfolder, prefix): where the next ``<base>_<counter>_.png`` goes,
    with the same rules as Hearth's SaveImage (so a pack's files and SaveImage's never collide)."""
    from hearth.core.context import save_path

    directory, base, counter = save_path(filename_prefix, Path(output_dir), image_width, image_height)
    subfolder = directory.relative_to(Path(output_dir).resolve()).as_posix()
    return str(directory), base, counter, "" if subfolder == "." else subfolder, filename_prefix
