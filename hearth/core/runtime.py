"""The Runtime: one object that owns what a run needs (folders, plugins, node registry, model manager, executor).

Every ``comfy`` command that runs or lists nodes builds one from :class:`RuntimeOptions` and works inside
:meth:`Runtime.activate`; nodes and the ComfyUI modules reach it through one context variable, through the
accessors they already call (:func:`hearth.core.model_folders.model_folders`,
:func:`hearth.core.plugins.active_plugins`, :func:`hearth.core.context.folders`,
:func:`hearth.core.models.default_manager`). Nothing is process-wide, so two Runtimes with different model folders
can run in one process, each in its own thread::

    runtime = Runtime.build(models_dir="~/models", output="out")
    with runtime.activate():
        result = runtime.executor.run(prompt)

The executor activates its Runtime around validation and execution itself, so a worker thread (which starts with
an empty context) runs nodes in the right one. Plugins load lazily, inside the Runtime's activation: ComfyUI packs
read ``folder_paths`` and ``comfy.samplers`` while they import. The model manager is made on first use, since
making it imports torch and ``comfy nodes`` / ``comfy run --check`` never need it.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hearth.core.context import Folders
from hearth.core.model_folders import ModelFolders
from hearth.core.plugins import PluginManager
from hearth.core.trust import TrustPolicy

if TYPE_CHECKING:
    from hearth.core.executor import Executor
    from hearth.core.models.manager import ModelManager
    from hearth.core.node_registry import NodeRegistry

T = TypeVar("T")
PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class RuntimeOptions:
    """What a Runtime is built from: the options of ``comfy run`` / ``comfy serve``, and the plugin-loading knobs.

    :param models_dir: the base models folder (``--models-dir``), laid out as ComfyUI's ``models/``.
    :param extra_model_paths: ComfyUI ``extra_model_paths.yaml`` files (``--extra-model-paths-config``).
    :param custom_nodes: folders of ComfyUI-format packs (``--custom-nodes``, or an environment's own).
    :param site_packages: an environment's site-packages (what ``--env`` resolves to): the installed tier is
        exactly its distributions' entry points. ``None``: every entry point this Python sees.
    :param cache: the executor's cache strategy (``classic``, ``lru:N``, ``ram:GB``, ``none``).
    :param vram_mb: the model manager's budget on the compute device; ``None``: what the device has free.
    :param output, input, temp: where nodes write outputs, read inputs and put previews.
    :param environ: where ``HEARTH_PLUGINS`` / ``HEARTH_DISABLE_PLUGINS`` are read; ``None``: ``os.environ``.
    :param allow, disable: plugin names to load only / to leave out (override the two variables).
    :param entry_points: load the installed tier at all (tests of the core alone turn it off).
    :param trust: which packs run isolated in a pack host (``--isolation``, ``comfy trust``); the default runs
        every pack in-process, as a library caller that never asked for isolation expects.
    :param pack_hosts: the pack host API that isolated packs run through (an object or module with ``PackHost``,
        ``HostConfig``, ``HostLimits``, ``HostValue``, ``PackHostError``, ``TrustRequired`` and
        ``isolation_available``): the composition root lends it -- the CLI passes ``hearth.sandbox.host`` -- so
        neither the core nor a plugin imports the sandbox. ``None``: this Runtime cannot isolate, and a pack the
        policy would isolate is refused, not run in-process.
    """

    models_dir: Path = Path("models")
    extra_model_paths: tuple[Path, ...] = ()
    custom_nodes: tuple[Path, ...] = ()
    site_packages: tuple[Path, ...] | None = None
    cache: str = "classic"
    vram_mb: int | None = None
    output: Path = Path("output")
    input: Path = Path("input")
    temp: Path = Path("temp")
    environ: Mapping[str, str] | None = field(default=None, compare=False)
    allow: tuple[str, ...] | None = None
    disable: tuple[str, ...] | None = None
    entry_points: bool = True
    trust: TrustPolicy = TrustPolicy()
    pack_hosts: Any = field(default=None, compare=False)

    @classmethod
    def of(cls, *, models_dir: PathLike = "models", extra_model_paths: Sequence[PathLike] = (),
           custom_nodes: Sequence[PathLike] = (), site_packages: Sequence[PathLike] | None = None,
           cache: str = "classic", vram_mb: int | None = None, output: PathLike = "output",
           input: PathLike = "input", temp: PathLike | None = None, environ: Mapping[str, str] | None = None,
           allow: Sequence[str] | None = None, disable: Sequence[str] | None = None,
           entry_points: bool = True, trust: TrustPolicy | None = None,
           pack_hosts: Any = None) -> RuntimeOptions:
        """Options from loose arguments (any path-like, any sequence); ``temp`` defaults to ``OUTPUT/temp``."""
        return cls(
            models_dir=Path(models_dir), extra_model_paths=tuple(Path(p) for p in extra_model_paths),
            custom_nodes=tuple(Path(p) for p in custom_nodes),
            site_packages=None if site_packages is None else tuple(Path(p) for p in site_packages),
            cache=cache, vram_mb=vram_mb, output=Path(output), input=Path(input),
            temp=Path(temp) if temp is not None else Path(output) / "temp",
            environ=None if environ is None else dict(environ),
            allow=None if allow is None else tuple(allow), disable=None if disable is None else tuple(disable),
            entry_points=entry_points, trust=trust if trust is not None else TrustPolicy(), pack_hosts=pack_hosts,
        )


_current: contextvars.ContextVar[Runtime | None] = contextvars.ContextVar("hearth_runtime", default=None)


def current_runtime() -> Runtime | None:
    """The Runtime active in this context (thread, task), or ``None`` outside every Runtime."""
    return _current.get()


class NoRuntimeError(RuntimeError):
    """Something that only a Runtime holds (the model manager) was asked for outside every Runtime."""


@contextmanager
def activated(runtime: Runtime | None) -> Iterator[None]:
    """Run a block inside ``runtime`` (nothing changes when it is ``None`` or already the current one)."""
    if runtime is None or _current.get() is runtime:
        yield
        return
    token = _current.set(runtime)
    try:
        yield
    finally:
        _current.reset(token)


class Runtime:
    """One run's world: model folders, input/output folders, plugins, node registry, model manager, executor.

    :param options: what to build it from.
    :param plugins: an already loaded plugin manager to use instead of loading one from the options (a test that
        registers its own plugins, a server given its plugins).
    :param manager: a model manager to use instead of making one on first use (a test with a budget of its own).
    :param model_folders: model folders to use instead of building them from ``models_dir`` and
        ``extra_model_paths`` (a test that made them already).
    """

    def __init__(self, options: RuntimeOptions | None = None, *, plugins: PluginManager | None = None,
                 manager: ModelManager | None = None, model_folders: ModelFolders | None = None) -> None:
        self.options = options or RuntimeOptions()
        # Raises ValueError naming a bad extra_model_paths.yaml: the caller says which option it came from.
        self.model_folders = model_folders if model_folders is not None else ModelFolders(
            self.options.models_dir, extra_configs=self.options.extra_model_paths)
        self.folders = Folders(output=self.options.output, input=self.options.input, temp=self.options.temp)
        self._plugins = plugins
        self._manager: ModelManager | None = manager
        self._executor: Executor | None = None
        # Re-entrant: a pack importing while plugins load may ask for them (and gets None, see loaded_plugins).
        self._lock = threading.RLock()
        self._loading_thread: int | None = None

    @classmethod
    def build(cls, *, plugins: PluginManager | None = None, manager: ModelManager | None = None,
              model_folders: ModelFolders | None = None, **options: Any) -> Runtime:
        """``Runtime(RuntimeOptions.of(**options))``: the usual way to make one."""
        if model_folders is not None:
            options.setdefault("models_dir", model_folders.base)
        return cls(RuntimeOptions.of(**options), plugins=plugins, manager=manager, model_folders=model_folders)

    def __repr__(self) -> str:
        return f"<Runtime models={self.model_folders.base} output={self.folders.output}>"

    # -- the context variable ----------------------------------------------------------------------------------

    @contextmanager
    def activate(self) -> Iterator[Runtime]:
        """Make this the current Runtime for the block (in this thread or task; new threads start without one)."""
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` inside this Runtime (for a worker thread or a thread pool)."""
        with activated(self):
            return fn(*args, **kwargs)

    # -- what it owns --------------------------------------------------------------------------------------------

    @property
    def plugins(self) -> PluginManager:
        """The plugin manager, loaded on first use inside this Runtime's activation."""
        if self._plugins is None:
            with self._lock:
                if self._plugins is None:
                    if self._loading_thread == threading.get_ident():
                        raise RuntimeError("the plugins of this Runtime are still loading: a plugin asked for "
                                           "them while it imported; ask from a node or hook instead")
                    self._load_plugins()
        assert self._plugins is not None
        return self._plugins

    def _load_plugins(self) -> None:
        options = self.options
        self._loading_thread = threading.get_ident()
        try:
            with activated(self):
                loaded = PluginManager().load(
                    allow=options.allow, disable=options.disable, custom_nodes=options.custom_nodes,
                    entry_points=options.entry_points,
                    environ=None if options.environ is None else dict(options.environ),
                    site_packages=options.site_packages, trust=options.trust,
                    pack_hosts=options.pack_hosts)
        finally:
            self._loading_thread = None
        self._plugins = loaded
        if self._manager is not None:
            self._manager.use_plugins(loaded)

    def has_plugins(self) -> bool:
        """Whether the plugins are loaded (asking for them would load them)."""
        return self._plugins is not None

    def loaded_plugins(self) -> PluginManager | None:
        """The plugin manager, loading it if need be; ``None`` while it loads in this thread (a pack importing)."""
        if self._plugins is None and self._loading_thread == threading.get_ident():
            return None
        return self.plugins

    @property
    def nodes(self) -> NodeRegistry:
        """The node registry the plugins fill through ``register_nodes``."""
        plugins = self.plugins
        with activated(self):
            return plugins.nodes()

    @property
    def manager(self) -> ModelManager:
        """The model manager (``vram_mb`` budget, the plugins' memory estimates), made on first use (imports torch)."""
        if self._manager is None:
            with self._lock:
                if self._manager is None:
                    from hearth.core.models.manager import ModelManager

                    manager = ModelManager(vram_mb=self.options.vram_mb)
                    if self._plugins is not None:
                        manager.use_plugins(self._plugins)
                    self._manager = manager
        return self._manager

    def has_manager(self) -> bool:
        """Whether the model manager was made (asking for it would import torch and make one)."""
        return self._manager is not None

    @property
    def executor(self) -> Executor:
        """The executor over this Runtime's registry, cache strategy and folders; it runs nodes inside this Runtime."""
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    from hearth.core.executor import Executor

                    self._executor = Executor(self.nodes, cache=self.options.cache, folders=self.folders,
                                              plugins=self.plugins, runtime=self)
        return self._executor
