"""The import hook that serves ComfyUI's module names to custom-node packs, and the report of what Hearth lacks.

Each served name (``comfy.utils``) gets its own module object whose attributes are looked up, live, in the
Hearth module that implements it (``hearth_comfy_compat.comfy_utils``): a pack that edits a mutable value
(``folder_paths.folder_names_and_paths``, ``nodes.NODE_CLASS_MAPPINGS``) edits Hearth's.

A name the Hearth module lacks:

* ``from comfy.utils import tiled_scale`` gets a stand-in, so the pack still loads; calling or using the stand-in
  raises :class:`HearthDoesNotProvide` naming the module, the name and the pack.
* ``comfy.utils.tiled_scale`` inside a function (a node running) raises :class:`HearthDoesNotProvide` (an
  ``AttributeError``, so the ``hasattr(mm, "xformers_enabled")`` feature checks packs make answer ``False``
  instead of lying); read while the pack's module or a class body runs (``TABLE = {"x": comfy.utils.x}``), it
  gives a stand-in, so the pack loads.

Inside the pack's own ``try`` block whose ``except`` may catch it, either raises instead, so the pack takes its
fallback. Either way the name is recorded per pack in :func:`missing_names`; a probe with a way round
(``hasattr``, ``getattr`` with a default) is not a need and is not recorded.

A whole module of ComfyUI's tree that Hearth does not implement (``comfy.ldm.modules.attention``; the table is
:mod:`hearth_comfy_compat.comfyui_tree`) is served as a stand-in: importing it works and is recorded, and every
name taken from it is a stand-in as above. A name outside ComfyUI's tree is left to Python, so
``import comfy.nonsense_xyz`` fails with ``ModuleNotFoundError`` as it does in ComfyUI.

A stand-in can be subclassed (``class MyPatcher(comfy.x.Missing)``, the way packs build on ComfyUI's classes): the
class statement works, and what the subclass takes from the missing base (its constructor, an attribute it does
not define itself) fails naming the base. ``class Foo(comfy.utils.missing_name)`` works too, wherever the class
statement is.

A library packs import at module level that is not installed (torchvision, see ``_OPTIONAL_LIBRARIES``) is served
the same way, but only to a pack's own unguarded import, and its stand-ins leave ``sys.modules`` once that import
is done: other libraries' probes and a pack's ``try: import torchvision / except ImportError`` see it absent.

Every served module and stand-in has a ``__file__`` (and a package its ``__path__``) inside this package's
``comfyui`` folder, laid out as ComfyUI's source tree, so ``os.path.dirname(folder_paths.__file__)`` is a real
folder, and a module implemented by a file there names that file.
"""

from __future__ import annotations

import dis
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import sys
import threading
import types
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hearth_comfy_compat import comfyui_tree

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


# Libraries packs import at module level that may be absent from the environment: while one is not installed,
# its modules (these names only) are stand-ins, so a pack that uses it in a few nodes still loads and those nodes
# fail naming what they used. torchvision's wheels are built against one torch, and often cannot be installed
# beside the torch Hearth runs on. An installed library is never shadowed.
_OPTIONAL_LIBRARIES: dict[str, frozenset[str]] = {
    "torchvision": frozenset({
        "torchvision", "torchvision.transforms", "torchvision.transforms.functional",
        "torchvision.transforms.functional_tensor", "torchvision.transforms.v2", "torchvision.transforms.v2.functional",
        "torchvision.ops", "torchvision.ops.boxes", "torchvision.ops.misc", "torchvision.utils", "torchvision.io",
        "torchvision.models", "torchvision.models.detection", "torchvision.models.feature_extraction",
        "torchvision.datasets", "torchvision.datasets.utils"}),
}
_library_installed: dict[str, bool] = {}


def _absent_library_module(fullname: str) -> bool:
    root = fullname.partition(".")[0]
    names = _OPTIONAL_LIBRARIES.get(root)
    if names is None or fullname not in names:
        return False
    if root not in _library_installed:
        # Asked of the path finder, not importlib.util.find_spec, which would ask this finder again.
        _library_installed[root] = importlib.machinery.PathFinder.find_spec(root) is not None
    return not _library_installed[root]


# Frames of the import system itself, skipped to find the code that asked for a module.
_IMPORT_SYSTEM = frozenset({__file__, importlib.__file__, importlib.util.__file__})


def _importer(frame: types.FrameType | None) -> types.FrameType | None:
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen importlib")
                                 or frame.f_code.co_filename in _IMPORT_SYSTEM):
        frame = frame.f_back
    return frame


def _guarded(frame: types.FrameType, raised: type[BaseException]) -> bool:
    """Whether ``frame`` runs inside a ``try`` block with an ``except`` clause that catches ``raised`` (a pack's
    ``try: from comfy.x import y / except ImportError: fallback``). A ``with`` block, a bare ``finally`` or an
    ``except`` of other types (``except FileNotFoundError``) lets it through; a clause whose types cannot be read
    here counts as not catching, so the pack gets a stand-in rather than an error."""
    code = frame.f_code
    handlers = _handlers.get(code)
    if handlers is None:
        handlers = _handlers[code] = _except_handlers(code)
    for start, end, clauses in handlers:
        if start <= frame.f_lasti < end:
            return any(_catches(frame, clause, raised) for clause in clauses)
    return False


def _except_handlers(code: types.CodeType) -> tuple[tuple[int, int, tuple[Any, ...]], ...]:
    """(start, end, except clauses) of each range whose handler is a try's ``except`` chain. Python 3.11+
    flattens handlers: each instruction has at most one, the innermost. Each clause is None (a bare ``except``) or
    the instructions that load its exception types before CHECK_EXC_MATCH."""
    instructions = list(dis.get_instructions(code))
    at = {instruction.offset: n for n, instruction in enumerate(instructions)}
    found = []
    for entry in dis.Bytecode(code).exception_entries:
        n = at.get(entry.target)
        if n is None or instructions[n].opname != "PUSH_EXC_INFO":
            continue  # cleanup handlers (COPY ... RERAISE)
        clauses: list[Any] = []
        n += 1
        while n < len(instructions) and len(clauses) < 16:
            name = instructions[n].opname
            if name == "POP_TOP":  # a bare except
                clauses.append(None)
                break
            loads = []
            while n < len(instructions) and instructions[n].opname in _TYPE_LOADS:
                loads.append(instructions[n])
                n += 1
            if not loads or n >= len(instructions) or instructions[n].opname != "CHECK_EXC_MATCH":
                break  # a with block's WITH_EXCEPT_START, a finally's body or RERAISE: nothing more is caught
            clauses.append(tuple(loads))
            jump = instructions[n + 1] if n + 1 < len(instructions) else None
            if jump is None or not jump.opname.startswith("POP_JUMP") or jump.argval not in at:
                break
            n = at[jump.argval]  # the next clause of the chain
        if clauses:
            found.append((entry.start, entry.end, tuple(clauses)))
    return tuple(found)


_TYPE_LOADS = frozenset({"LOAD_NAME", "LOAD_GLOBAL", "LOAD_FAST", "LOAD_ATTR", "BUILD_TUPLE"})
_handlers: dict[types.CodeType, tuple[tuple[int, int, tuple[Any, ...]], ...]] = {}


def _catches(frame: types.FrameType, clause: Any, raised: type[BaseException]) -> bool:
    if clause is None:
        return True
    stack: list[Any] = []
    try:
        for instruction in clause:
            if instruction.opname == "LOAD_ATTR":
                stack.append(getattr(stack.pop(), instruction.argval))
            elif instruction.opname == "BUILD_TUPLE":
                count = int(instruction.arg or 0)
                items = stack[len(stack) - count:] if count else []
                del stack[len(stack) - count:]
                stack.append(tuple(items))
            elif instruction.opname == "LOAD_FAST":
                stack.append(frame.f_locals[instruction.argval])
            else:  # LOAD_NAME (locals, then globals, then builtins) or LOAD_GLOBAL (globals, then builtins)
                name = instruction.argval
                if instruction.opname == "LOAD_NAME" and name in frame.f_locals:
                    stack.append(frame.f_locals[name])
                elif name in frame.f_globals:
                    stack.append(frame.f_globals[name])
                else:
                    stack.append(frame.f_builtins[name])
        caught = stack[-1]
        kinds = caught if isinstance(caught, tuple) else (caught,)
        return any(isinstance(kind, type) and issubclass(raised, kind) for kind in kinds)
    except Exception:  # noqa: BLE001 - a clause whose types cannot be read here catches nothing we know of
        return False


def _pack_needs_optional(frame: types.FrameType | None) -> bool:
    """Whether the import being resolved is a pack's own, unguarded one: only then does an absent optional
    library get stand-ins. A library probing for it (transformers' ``find_spec("torchvision")``) and a pack's
    ``try: import torchvision / except ImportError`` see it absent, as without Hearth."""
    importer = _importer(frame)
    return importer is not None and _frame_pack(importer) is not None and not _guarded(importer,
                                                                                         ModuleNotFoundError)


def _forget_optional_stand_ins() -> None:
    """Take optional libraries' stand-ins out of ``sys.modules`` once the pack's import is done (the pack keeps
    its reference), so code that looks there (``importlib.util.find_spec``, a later plain import) sees the
    library absent."""
    served = _served_here()
    while served:
        name = served.pop()
        module = sys.modules.get(name)
        if isinstance(module, _ServedModule) and module.__dict__.get("__hearth_optional__"):
            sys.modules.pop(name, None)


# The names of optional libraries' stand-ins this thread put in sys.modules. Per thread: another thread's import
# may be between its steps (the package served, its submodule next), where taking the package away would break it.
_optional_served = threading.local()


def _served_here() -> set[str]:
    served = getattr(_optional_served, "names", None)
    if served is None:
        served = _optional_served.names = set()
    return served


def _stand_in_module(fullname: str, frame: types.FrameType | None = None) -> bool:
    """Whether ``fullname`` may be served as a stand-in when Hearth does not implement it: a module of ComfyUI's
    tree, or of an absent optional library imported by a pack's own unguarded import (``frame`` asks)."""
    if comfyui_tree.is_comfyui_module(fullname):
        return True
    return _absent_library_module(fullname) and _pack_needs_optional(frame)


def is_stand_in(fullname: str) -> bool:
    """Whether ``fullname`` is a module of ComfyUI's tree that Hearth does not implement (served as a stand-in)."""
    return not target_of(fullname)[0] and comfyui_tree.is_comfyui_module(fullname)


def _is_package(fullname: str) -> bool:
    path = _IMPLEMENTATIONS_DIR.joinpath(*fullname.split("."))
    return SERVED.get(fullname, "") is None or any(name.startswith(fullname + ".") for name in SERVED) or (
        path / "__init__.py").is_file() or comfyui_tree.is_comfyui_package(fullname) or (
        _absent_library_module(fullname) and any(
            name.startswith(fullname + ".") for name in _OPTIONAL_LIBRARIES[fullname.partition(".")[0]]))


def _file_of(fullname: str, package: bool) -> Path:
    """Where ComfyUI's module ``fullname`` lies in the ``comfyui`` folder (the implementation's file, if any)."""
    path = _IMPLEMENTATIONS_DIR.joinpath(*fullname.split("."))
    return path / "__init__.py" if package else path.with_suffix(".py")


_IMPORT_FROM = dis.opmap["IMPORT_FROM"]
_LOAD_BUILD_CLASS = dis.opmap["LOAD_BUILD_CLASS"]
_CALLS = frozenset(dis.opmap[name] for name in ("CALL", "CALL_FUNCTION_EX", "PRECALL") if name in dis.opmap)
_READ_ATTRIBUTE = frozenset(dis.opmap[name] for name in ("LOAD_ATTR", "LOAD_METHOD") if name in dis.opmap)
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
    _forget_optional_stand_ins()


def custom_nodes_folders() -> list[Path]:
    """The folders packs are loaded from (ComfyUI's ``custom_nodes`` folder kind)."""
    with _lock:
        return list(_custom_nodes)


def missing_names() -> dict[str, list[str]]:
    """Pack name -> the ComfyUI internals it used that Hearth lacks, sorted (for ``comfy plugins``)."""
    _forget_optional_stand_ins()
    with _lock:
        return {pack: sorted(names) for pack, names in sorted(_missing.items()) if names}


def _frame_pack(frame: types.FrameType) -> str | None:
    """The registered pack whose file ``frame`` runs, or None."""
    filename = frame.f_code.co_filename
    if filename.startswith("<"):
        return None
    path = Path(filename).resolve()
    for root, name in _packs.items():
        if path == root or root in path.parents:
            return name
    return None


def _pack_of(frame: types.FrameType | None) -> str:
    # The innermost frame whose file lies inside a registered pack is the pack that asked.
    while frame is not None:
        pack = _frame_pack(frame)
        if pack is not None:
            return pack
        frame = frame.f_back
    return "an unknown pack"


def _record(pack: str, full: str) -> str:
    with _lock:
        _missing[pack].add(full)
    return f"Hearth does not provide {full} (used by pack {pack})"


def lacking(full_name: str, detail: str = "") -> HearthDoesNotProvide:
    """The error for a ComfyUI name a served module has but cannot honour (``comfy.controlnet.load_controlnet``
    while Hearth has no ControlNet models), recorded for the pack whose code called: ``raise lacking(name)``.

    :param full_name: the ComfyUI name, as ``comfy plugins`` lists it.
    :param detail: what is missing or what to do, added to the message after a colon.
    """
    message = _record(_pack_of(sys._getframe(1)), full_name)
    return HearthDoesNotProvide(f"{message}: {detail}" if detail else message)


def _class_bases(code: types.CodeType) -> frozenset[int]:
    """Offsets of the instructions of ``code`` that load a class statement's bases: those after a
    ``LOAD_BUILD_CLASS`` and before the statement stores (or discards) the class."""
    found = _bases_cache.get(code)
    if found is None:
        offsets: set[int] = set()
        inside = False
        for instruction in dis.get_instructions(code):
            if instruction.opcode == _LOAD_BUILD_CLASS:
                inside = True
            elif instruction.opname.startswith(("STORE_", "POP_TOP", "RETURN")):
                inside = False
            elif inside:
                offsets.add(instruction.offset)
        found = _bases_cache[code] = frozenset(offsets)
    return found


_bases_cache: dict[types.CodeType, frozenset[int]] = {}


def _probing(frame: types.FrameType) -> bool:
    """Whether ``frame`` asks through ``hasattr(module, name)`` or ``getattr(module, name, default)``: a probe
    with a way round, not a need, so it is answered as for an absent name and not recorded (VideoHelperSuite's
    ``if not hasattr(nodes, "VHSLoadFormats"): nodes.VHSLoadFormats = {}``). The error still names Hearth for a
    ``getattr`` without a default."""
    return frame.f_code.co_code[frame.f_lasti] in _CALLS


def _takes_stand_in(frame: types.FrameType) -> bool:
    """Whether ``frame`` is binding a name (``from x import name``), naming a class's base (``class
    Foo(x.name)``), or reading ``x.name`` while a module or class body runs (a pack importing: ``TABLE = {"lcm":
    x.LCM}``) right now: there a stand-in is given instead of an error, so the pack still loads and only what
    uses the name fails. Inside a function (a node running) ``x.name`` raises at once, and ``hasattr`` and
    ``getattr(x, name, default)`` answer as for an absent name everywhere."""
    code = frame.f_code
    opcode = code.co_code[frame.f_lasti]
    if _guarded(frame, ImportError if opcode == _IMPORT_FROM else AttributeError):
        return False  # the pack's own except clause takes it: it has a way round, so it gets the error
    if opcode == _IMPORT_FROM or frame.f_lasti in _class_bases(code):
        return True
    return opcode in _READ_ATTRIBUTE and not code.co_flags & inspect.CO_OPTIMIZED


class _MissingBase(type):
    """The metaclass of the class a stand-in puts in a subclass's bases: what the subclass does not define
    itself fails naming the missing base (``HearthDoesNotProvide`` is an ``AttributeError``, so ``hasattr`` on
    the subclass answers False)."""

    def __getattr__(cls, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise HearthDoesNotProvide(f"{cls.__hearth_missing__}: {attr!r} would come from it")


def _missing_base(message: str, full: str, bases: tuple[Any, ...] = ()) -> type:
    """The class put in a subclass's bases in place of the missing ``full`` (one per name and metaclass).

    Its metaclass also derives from the other bases' own (``class Node(Missing, ComfyNodeABC)`` needs ABCMeta), so
    the class statement never fails on a metaclass conflict.
    """
    metaclass: type = _MissingBase
    for base in bases:
        kind = type(base)
        if isinstance(base, type) and not issubclass(metaclass, kind):
            metaclass = _missing_metaclass(kind)
    with _lock:
        found = _missing_bases.get((full, metaclass))
        if found is None:
            module, _, name = full.rpartition(".")

            def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
                raise HearthDoesNotProvide(message)

            def __getattr__(self: Any, attr: str) -> Any:
                if attr.startswith("__"):
                    raise AttributeError(attr)
                raise HearthDoesNotProvide(f"{message}: {attr!r} would come from it")

            found = metaclass(name, (), {"__module__": module, "__qualname__": name, "__init__": __init__,
                                         "__getattr__": __getattr__, "__hearth_missing__": message,
                                         "__doc__": f"Stand-in for {full}, which Hearth does not provide."})
            _missing_bases[(full, metaclass)] = found
        return found


def _missing_metaclass(other: type) -> type:
    """:class:`_MissingBase` joined with another base's metaclass (ABCMeta, a pack's own)."""
    with _lock:
        found = _missing_metaclasses.get(other)
        if found is None:
            found = _missing_metaclasses[other] = type(f"_MissingBase_{other.__name__}", (_MissingBase, other), {})
        return found


_missing_metaclasses: dict[type, type] = {}
_missing_bases: dict[tuple[str, type], type] = {}


class _Missing:
    """What ``from comfy.X import name`` binds when Hearth lacks the name: fails when the node uses it."""

    def __init__(self, message: str, full: str = "") -> None:
        object.__setattr__(self, "_message", message)
        object.__setattr__(self, "_full", full)

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise HearthDoesNotProvide(object.__getattribute__(self, "_message"))

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        # `class Foo(stand_in)`: Foo gets a real base class standing in for the missing one.
        message = object.__getattribute__(self, "_message")
        return (_missing_base(message, object.__getattribute__(self, "_full") or message, bases),)

    def __getattr__(self, attr: str) -> Any:
        # A pack importing reads names of the missing thing too (`def resize(mode=InterpolationMode.BICUBIC)`,
        # `class Foo(missing_module.Base)`): there the answer is a stand-in as well, failing where it is used.
        if not attr.startswith("__") and _takes_stand_in(sys._getframe(1)):
            full = object.__getattribute__(self, "_full")
            return _Missing(object.__getattribute__(self, "_message"), f"{full}.{attr}" if full else "")
        return self._fail()

    __call__ = _fail
    __setattr__ = _fail
    __getitem__ = _fail
    __iter__ = _fail
    __bool__ = _fail
    __instancecheck__ = _fail  # isinstance(value, MissingClass) fails naming it, not with a bare TypeError
    __subclasscheck__ = _fail

    def __repr__(self) -> str:
        return f"<missing: {object.__getattribute__(self, '_message')}>"


# What a served module's own import set up, which must not come from its implementation.
_MACHINERY = frozenset({"__path__", "__file__", "__cached__", "__spec__", "__loader__", "__package__", "__name__",
                        "__builtins__", "__getattr__", "__dir__"})


class _ServedModule(types.ModuleType):
    """A ComfyUI module name whose attributes come from a Hearth module (see the module docstring)."""

    def __init__(self, name: str, target: str | None, stand_in: bool = False) -> None:
        super().__init__(name)
        self.__hearth_target__ = target
        self.__hearth_stand_in__ = stand_in

    def __getattr__(self, attr: str) -> Any:
        target = self.__dict__.get("__hearth_target__")
        if attr.startswith("__"):
            # The implementation's own dunders (__version__, __all__), never the import system's.
            if target is not None and attr not in _MACHINERY:
                module = importlib.import_module(target)
                if attr in module.__dict__:
                    return getattr(module, attr)
            raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")
        sub = f"{self.__name__}.{attr}"
        if target_of(sub)[0] or comfyui_tree.is_comfyui_module(sub) or (
                _absent_library_module(sub) and _pack_needs_optional(sys._getframe(1))):
            # `import comfy` then `comfy.model_management.x`: works in ComfyUI because something else imported
            # the submodule first; here nothing may have.
            return importlib.import_module(sub)
        caller = sys._getframe(1)
        if self.__dict__.get("__hearth_stand_in__"):
            if _probing(caller):
                raise HearthDoesNotProvide(f"Hearth does not provide {sub}")
            message = _record(_pack_of(caller), sub)
            if _guarded(caller, ImportError if caller.f_code.co_code[caller.f_lasti] == _IMPORT_FROM
                        else AttributeError):  # try: from comfy.x import y / except ImportError: its fallback runs
                raise HearthDoesNotProvide(message)
            # Every name of a module Hearth lacks is a stand-in: the module is ComfyUI's, so the name may be.
            return _Missing(message, sub)
        if target is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")
        try:
            return getattr(importlib.import_module(target), attr)
        except AttributeError:
            pass
        if _probing(caller):
            raise HearthDoesNotProvide(f"Hearth does not provide {sub}")
        message = _record(_pack_of(caller), sub)
        if _takes_stand_in(caller):
            return _Missing(message, sub)
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
        served, target = target_of(spec.name)
        module = _ServedModule(spec.name, target, stand_in=not served)
        if not served and not comfyui_tree.is_comfyui_module(spec.name):
            module.__dict__["__hearth_optional__"] = True  # an absent library's: see _forget_optional_stand_ins
            _served_here().add(spec.name)
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        if module.__dict__.get("__hearth_stand_in__"):
            _record(_pack_of(sys._getframe(1)), module.__name__)
            return
        # Import the implementation now, so a broken one fails at the pack's import line, not at first use.
        target = target_of(module.__name__)[1]
        if target is not None:
            importlib.import_module(target)


class ComfyModuleFinder(importlib.abc.MetaPathFinder):
    """Finds ComfyUI's module names in :data:`SERVED`; leaves every other import to the next finder."""

    loader = _Loader()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] not in _OPTIONAL_LIBRARIES:
            _forget_optional_stand_ins()  # a pack's import of one is over by the time anything else is imported
        if not target_of(fullname)[0] and not _stand_in_module(fullname, sys._getframe(1)):
            return None
        # A module with served submodules (comfy.comfy_types.node_typing) is a package even when it has a target.
        package = _is_package(fullname)
        file = _file_of(fullname, package)
        spec = importlib.machinery.ModuleSpec(fullname, self.loader, origin=str(file), is_package=package)
        spec.has_location = True  # __file__ is set from the origin
        if package:
            # The folder holds only modules this finder serves, so no other finder finds a name ComfyUI lacks.
            spec.submodule_search_locations = [str(file.parent)]
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
                sys.modules.pop(name, None)
