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
    raise AttributeError(name)


def get_output_directory() -> str:
    return str(context.folders().output)


def get_input_directory() -> str:
    return str(context.folders().input)


def get_temp_directory() -> str:
    return str(context.folders().temp)


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
