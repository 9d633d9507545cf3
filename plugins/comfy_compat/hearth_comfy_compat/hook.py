"""The import hook that serves ComfyUI's module names to custom-node packs, and the report of what Hearth lacks.

Each served name (``comfy.utils``) gets its own module object whose attributes are looked up, live, in the
Hearth module that implements it (``hearth_comfy_compat.comfy_utils``): a pack that edits a mutable value
(``folder_paths.folder_names_and_paths``, ``nodes.NODE_CLASS_MAPPINGS``) edits Hearth's.

A name the Hearth module lacks:

* ``from comfy.utils import tiled_scale`` gets a stand-in, so the pack still loads; calling or using the stand-in
  raises :class:`HearthDoesNotProvide` naming the module, the name and the pack.
* ``comfy.utils.tiled_scale`` raises :class:`HearthDoesNotProvide` (an ``AttributeError``, so the
  ``hasattr(mm, "xformers_enabled")`` feature checks packs make answer ``False`` instead of lying).

Either way the name is recorded per pack in :func:`missing_names`.
"""

from __future__ import annotations

import dis
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import types
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# ComfyUI module name -> the Hearth module that implements it (None: a package that only holds submodules).
SERVED: dict[str, str | None] = {
    "folder_paths": "hearth_comfy_compat.folder_paths",
    "nodes": "hearth_comfy_compat.comfy_nodes",
    "node_helpers": "hearth_comfy_compat.node_helpers",
    "comfy": None,
    "comfy.utils": "hearth_comfy_compat.comfy_utils",
    "comfy.model_management": "hearth_comfy_compat.model_management",
    "comfy.cli_args": "hearth_comfy_compat.cli_args",
    "comfy_execution": None,
    "comfy_execution.graph": "hearth_comfy_compat.execution_graph",
    "comfy_execution.graph_utils": "hearth_comfy_compat.execution_graph",
    "server": "hearth_comfy_compat.server",
    "comfy_api": None,
    "comfy_api.latest": "hearth_comfy_compat.comfy_api",
    "comfy_api.v0_0_2": "hearth_comfy_compat.comfy_api",
    "comfy_api.input": "hearth_comfy_compat.comfy_api.media",
    "comfy_api.input_impl": "hearth_comfy_compat.comfy_api.media",
    "comfy_api.util": "hearth_comfy_compat.comfy_api.media",
    "comfy.samplers": "hearth_comfy_compat.comfy_samplers",
    "comfy.sample": "hearth_comfy_compat.comfy_sample",
    "comfy.sd": "hearth_comfy_compat.comfy_sd",
    "comfy.comfy_types": "hearth_comfy_compat.comfy_types",
    "comfy.comfy_types.node_typing": "hearth_comfy_compat.comfy_types",
    "latent_preview": "hearth_comfy_compat.latent_preview",
    "execution": "hearth_comfy_compat.execution",
}
# Packs add routes with `from aiohttp import web`; without aiohttp installed they get the part of aiohttp.web
# they use. An installed aiohttp is never shadowed: packs also use its client.
if importlib.util.find_spec("aiohttp") is None:
    SERVED.update({"aiohttp": "hearth_comfy_compat.aiohttp_root", "aiohttp.web": "hearth_comfy_compat.aiohttp_web"})

# Beside SERVED, a ComfyUI module may be implemented by a file at its own path under this package's ``comfyui``
# folder: ``comfy.model_patcher`` by ``hearth_comfy_compat/comfyui/comfy/model_patcher.py``.
IMPLEMENTATIONS = "hearth_comfy_compat.comfyui"
_IMPLEMENTATIONS_DIR = Path(__file__).resolve().parent / "comfyui"


def target_of(fullname: str) -> tuple[bool, str | None]:
    """Whether Hearth serves the ComfyUI module ``fullname``, and the Hearth module that implements it (``None``: a
    package that only holds submodules)."""
    if fullname in SERVED:
        return True, SERVED[fullname]
    path = _IMPLEMENTATIONS_DIR.joinpath(*fullname.split("."))
    if all(part.isidentifier() for part in fullname.split(".")) and (
            path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()):
        return True, f"{IMPLEMENTATIONS}.{fullname}"
    return False, None


def _is_package(fullname: str) -> bool:
    path = _IMPLEMENTATIONS_DIR.joinpath(*fullname.split("."))
    return SERVED.get(fullname, "") is None or any(name.startswith(fullname + ".") for name in SERVED) or (
        path / "__init__.py").is_file()


_IMPORT_FROM = dis.opmap["IMPORT_FROM"]
_lock = threading.Lock()
_packs: dict[Path, str] = {}  # a pack's folder (or single file) -> its name
_custom_nodes: list[Path] = []  # the folders the latest loader reads packs from
_missing: dict[str, set[str]] = defaultdict(set)  # pack name -> "comfy.utils.tiled_scale"...


class HearthDoesNotProvide(AttributeError):
    """A pack used a ComfyUI internal that Hearth has not implemented; the message names it and the pack."""


def register_pack(name: str, path: str | Path) -> None:
    """Remember where a pack lives, so a missing name can be blamed on the pack that used it."""
    with _lock:
        _packs[Path(path).resolve()] = name


def custom_nodes_folders() -> list[Path]:
    """The folders packs are loaded from (ComfyUI's ``custom_nodes`` folder kind)."""
    with _lock:
        return list(_custom_nodes)


def missing_names() -> dict[str, list[str]]:
    """Pack name -> the ComfyUI internals it used that Hearth lacks, sorted (for ``comfy plugins``)."""
    with _lock:
        return {pack: sorted(names) for pack, names in sorted(_missing.items()) if names}


def _pack_of(frame: types.FrameType | None) -> str:
    # The innermost frame whose file lies inside a registered pack is the pack that asked.
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith("<"):
            path = Path(filename).resolve()
            for root, name in _packs.items():
                if path == root or root in path.parents:
                    return name
        frame = frame.f_back
    return "an unknown pack"


class _Missing:
    """What ``from comfy.X import name`` binds when Hearth lacks the name: fails when the node uses it."""

    def __init__(self, message: str) -> None:
        object.__setattr__(self, "_message", message)

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise HearthDoesNotProvide(object.__getattribute__(self, "_message"))

    __call__ = _fail
    __getattr__ = _fail
    __setattr__ = _fail
    __getitem__ = _fail
    __iter__ = _fail
    __bool__ = _fail
    __instancecheck__ = _fail  # isinstance(value, MissingClass) fails naming it, not with a bare TypeError
    __subclasscheck__ = _fail

    def __repr__(self) -> str:
        return f"<missing: {object.__getattribute__(self, '_message')}>"


class _ServedModule(types.ModuleType):
    """A ComfyUI module name whose attributes come from a Hearth module (see the module docstring)."""

    def __init__(self, name: str, target: str | None) -> None:
        super().__init__(name)
        self.__hearth_target__ = target

    def __getattr__(self, attr: str) -> Any:
        target = self.__dict__.get("__hearth_target__")
        if attr.startswith("__"):
            raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")
        if target_of(f"{self.__name__}.{attr}")[0]:
            # `import comfy` then `comfy.model_management.x`: works in ComfyUI because something else imported
            # the submodule first; here nothing may have.
            return importlib.import_module(f"{self.__name__}.{attr}")
        if target is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")
        try:
            return getattr(importlib.import_module(target), attr)
        except AttributeError:
            pass
        caller = sys._getframe(1)
        pack = _pack_of(caller)
        full = f"{self.__name__}.{attr}"
        with _lock:
            _missing[pack].add(full)
        message = f"Hearth does not provide {full} (used by pack {pack})"
        if caller.f_code.co_code[caller.f_lasti] == _IMPORT_FROM:
            return _Missing(message)
        raise HearthDoesNotProvide(message)

    def __setattr__(self, attr: str, value: Any) -> None:
        # A pack switching a flag (comfy.utils.PROGRESS_BAR_ENABLED = False) must change what Hearth's code reads.
        target = self.__dict__.get("__hearth_target__")
        if target is not None and not attr.startswith("__"):
            module = importlib.import_module(target)
            if attr in vars(module):
                setattr(module, attr, value)
                return
        super().__setattr__(attr, value)

    def __dir__(self) -> list[str]:
        target = self.__dict__.get("__hearth_target__")
        names = set(super().__dir__())
        if target is not None:
            names.update(n for n in dir(importlib.import_module(target)) if not n.startswith("_"))
        return sorted(names)


class _Loader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _ServedModule(spec.name, target_of(spec.name)[1])

    def exec_module(self, module: types.ModuleType) -> None:
        # Import the implementation now, so a broken one fails at the pack's import line, not at first use.
        target = target_of(module.__name__)[1]
        if target is not None:
            importlib.import_module(target)


class ComfyModuleFinder(importlib.abc.MetaPathFinder):
    """Finds ComfyUI's module names in :data:`SERVED`; leaves every other import to the next finder."""

    loader = _Loader()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if not target_of(fullname)[0]:
            return None
        # A module with served submodules (comfy.comfy_types.node_typing) is a package even when it has a target.
        package = _is_package(fullname)
        spec = importlib.machinery.ModuleSpec(fullname, self.loader, is_package=package)
        if spec.submodule_search_locations is not None:
            spec.submodule_search_locations = []  # submodules come from this finder only
        return spec


_finder = ComfyModuleFinder()


def installed() -> bool:
    return _finder in sys.meta_path


def install(custom_nodes: Sequence[str | Path] = ()) -> None:
    """Serve ComfyUI's module names from here on; first in ``sys.meta_path``, so Hearth's always win.

    :param custom_nodes: the folders packs load from, which ``folder_paths`` reports as the ``custom_nodes`` kind.
    """
    with _lock:
        if custom_nodes:
            _custom_nodes[:] = [Path(p) for p in custom_nodes]
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Stop serving, and forget the modules already served (tests; a process that unloads every pack)."""
    with _lock:
        if _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
        for name, module in list(sys.modules.items()):
            if isinstance(module, _ServedModule):
                del sys.modules[name]
