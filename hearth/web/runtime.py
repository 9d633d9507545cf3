"""The running server's state: its Runtime (plugins, node registry, executor), persisted queue, worker and event hub.

Route modules get this object from ``request.app.state.hearth``; nothing here knows about HTTP. Requests and the
worker thread run inside the server's Runtime (the app activates it per request, the executor around each prompt).

The state is ready to answer before its plugins are: the store, the folders and (when fresh) the node catalogue
need no plugin. :meth:`ServerState.load_plugins` loads them (seconds: torch and every pack import) in a thread of
its own; the worker starts once they are in, and :meth:`ServerState.wait_loaded` lets a request that needs them
wait, bounded by ``ServerConfig.load_timeout``.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from hearth.core.catalogue import Catalogue, build_catalogue, load_catalogue, save_catalogue
from hearth.core.context import remove_dead_partials
from hearth.core.executor.execution import ExecutionResult
from hearth.core.executor.queue import QueueItem, Worker
from hearth.core.plugins import PluginManager
from hearth.core.runtime import Runtime, RuntimeOptions
from hearth.web.config import ServerConfig
from hearth.web.events import EventHub, ExecutionEvents
from hearth.web.store import Database, PersistentHistory, PersistentQueue, lock_data_folder

if TYPE_CHECKING:
    from hearth.core.executor import Executor
    from hearth.core.node_registry import NodeRegistry

log = logging.getLogger("hearth.web")
LOG_LINES = 300  # what /internal/logs keeps for the frontend's logs panel


def memory_manager(runtime: Runtime) -> Any | None:
    """The Runtime's model manager when ``hearth.core.models`` imports (it brings torch), else ``None``."""
    try:
        importlib.import_module("hearth.core.models.manager")
    except Exception:  # no torch, or hearth.core.models unfinished: the server runs without model memory figures
        log.debug("hearth.core.models.manager is not importable", exc_info=True)
        return None
    return runtime.manager


def fresh_catalogue(runtime: Runtime) -> Catalogue | None:
    """The node catalogue a run with ``runtime``'s settings cached, with today's model lists, when its key still
    matches (missing, stale, corrupt, or ``HEARTH_CATALOGUE=off``: ``None``, and the server waits for the plugins)."""
    try:
        return load_catalogue(runtime.options, runtime.model_folders)
    except Exception:  # noqa: BLE001 - a catalogue that cannot be read is one the server does without
        log.warning("cannot read the node catalogue; /object_info waits for the plugins", exc_info=True)
        return None


def cache_catalogue(runtime: Runtime) -> None:
    """Cache the loaded ``runtime``'s node catalogue for the next start (a failure is logged, never raised)."""
    try:
        save_catalogue(build_catalogue(runtime), runtime.options)
    except Exception:  # noqa: BLE001 - the server runs on; the next start loads the plugins before answering
        log.warning("cannot cache the node catalogue for the next start", exc_info=True)


class LogBuffer(logging.Handler):
    """The last :data:`LOG_LINES` log records, as the frontend's logs panel reads them."""

    _installed: LogBuffer | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.entries: deque[dict[str, str]] = deque(maxlen=LOG_LINES)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
            self.entries.append({"t": f"{stamp}.{int(record.msecs):03d}",
                                 "m": f"{record.levelname} {record.name}: {record.getMessage()}\n"})
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is left out, never raised
            pass

    @classmethod
    def install(cls) -> LogBuffer:
        """The one buffer of this process, on the root logger (installed on first use)."""
        with cls._lock:
            if cls._installed is None:
                cls._installed = cls()
                logging.getLogger().addHandler(cls._installed)
            return cls._installed


class ServerWorker(Worker):
    """The executor's worker, plus ComfyUI's ``/free`` semantics: memory is freed between prompts, never mid-run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._free_lock = threading.Lock()
        self._free_request: dict[str, bool] | None = None
        self.last_free: dict[str, Any] | None = None

    def request_free(self, unload_models: bool, free_memory: bool) -> None:
        with self._free_lock:
            current = self._free_request or {"unload_models": False, "free_memory": False}
            self._free_request = {"unload_models": current["unload_models"] or unload_models,
                                  "free_memory": current["free_memory"] or free_memory}

    def process_one(self, timeout: float | None = None) -> ExecutionResult | None:
        with self._free_lock:
            request, self._free_request = self._free_request, None
        if request is not None:
            self._free(request)
        return super().process_one(timeout)

    def _free(self, request: dict[str, bool]) -> None:
        if request["free_memory"]:
            # Cached outputs hold tensors and model objects; dropping them is what lets that memory go.
            self.executor.cache.clear()
        manager = memory_manager(self.executor.runtime) if self.executor.runtime is not None else None
        try:
            if manager is not None:
                self.last_free = manager.free(**request)
            else:
                gc.collect()
                self.last_free = {"unloaded": [], "free": {}}
        except Exception:
            log.warning("freeing memory failed", exc_info=True)


class PluginsNotLoaded(Exception):
    """A request needed the plugins, and they failed to load or were still loading when its wait ran out."""


class ServerState:
    """Everything one ``comfy serve`` process holds, built from a :class:`ServerConfig`.

    :param runtime: the Runtime to serve (``comfy serve`` builds it from its options); by default one built from
        ``config`` (its folders, models folder, custom nodes and cache), with ``plugins`` when given.

    Building it loads no plugin: :meth:`load_plugins` does (the app calls it in a thread when it starts), then
    :meth:`start_worker` and :meth:`mark_loaded`. Until then :attr:`catalogue` (the node catalogue cached by the
    last run, when still fresh) answers for the node definitions.
    """

    def __init__(self, config: ServerConfig, runtime: Runtime | None = None, *,
                 plugins: PluginManager | None = None) -> None:
        self.config = config
        self.lock = lock_data_folder(config.data)  # first: nothing may touch the data of a running server
        self.token = config.require_token()
        self.started_at = time.time()
        folders = config.folders
        assert folders is not None
        for folder in (folders.output, folders.input, folders.temp, config.user_dir / "workflows",
                       config.user_dir / "subgraphs", config.models_dir):
            folder.mkdir(parents=True, exist_ok=True)
        for folder in (folders.output, folders.temp):  # what savers killed mid-write left (issue 24)
            for path in remove_dead_partials(folder):
                log.warning("removed %s, left by a save that was killed mid-write", path)
        if runtime is None:
            runtime = Runtime(RuntimeOptions(
                models_dir=config.models_dir, custom_nodes=tuple(config.custom_nodes), cache=config.cache,
                output=folders.output, input=folders.input, temp=folders.temp), plugins=plugins)
        self.runtime = runtime
        # Plugins handed over loaded (a test's, a caller's): nothing loads later, and no catalogue is read or cached.
        self.plugins_given = plugins is not None or runtime.has_plugins()
        self.catalogue = None if self.plugins_given else fresh_catalogue(runtime)
        self.db = Database(config.database)
        self.history = PersistentHistory(self.db, config.history_max_items)
        self.queue = PersistentQueue(self.db, self.history)
        self.hub = EventHub()
        self.events = ExecutionEvents(self.hub, self.client_of)
        self.worker: ServerWorker | None = None  # made once the plugins are loaded: it runs their nodes
        # Done when the plugins are in and the worker runs; holds the exception when loading them failed.
        self.loaded: Future[None] = Future()
        self.load_seconds: float | None = None
        # Called (on the event loop) once loading ends, either way: `comfy serve` reports the packs that failed.
        self.on_loaded: list[Callable[[ServerState], None]] = []
        self.settings_lock = threading.Lock()
        self.frontend = "hearth"  # or "comfyui": which UI the app serves at /
        self.logs = LogBuffer.install()
        self.job_summaries: dict[int, dict[str, Any]] = {}  # /jobs items of stored history rows, by row

    # -- what the plugins make (each loads them if nothing has yet: requests wait for `loaded` first) ------------

    @property
    def plugins(self) -> PluginManager:
        return self.runtime.plugins

    @property
    def registry(self) -> NodeRegistry:
        return self.runtime.nodes

    @property
    def executor(self) -> Executor:
        return self.runtime.executor

    def is_loaded(self) -> bool:
        return self.loaded.done() and self.loaded.exception() is None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self, loop: Any) -> None:
        self.hub.bind(loop)
        if self.queue.recovered:
            log.warning("marked %d prompt(s) failed that were running when the server last stopped: %s",
                        len(self.queue.recovered), ", ".join(self.queue.recovered))

    def load_plugins(self) -> None:
        """Load the plugins, then the node registry and the executor over them (seconds; blocks its thread)."""
        began = time.monotonic()
        with self.runtime.activate():
            self.runtime.executor  # noqa: B018 - asking for it builds plugins, registry and executor, in order
        self.load_seconds = time.monotonic() - began

    def start_worker(self) -> None:
        """Start running queued prompts (those a previous run left pending too), now that their nodes are known."""
        self.worker = ServerWorker(self.queue, self.executor, emit=self.events.emit, on_done=self._done)
        self.worker.start()

    def mark_loaded(self, error: BaseException | None = None) -> None:
        """Let the requests waiting for the plugins through (or fail them with ``error``)."""
        if error is None:
            self.loaded.set_result(None)
        else:
            self.loaded.set_exception(error)

    async def wait_loaded(self) -> None:
        """Return once the plugins are loaded; :class:`PluginsNotLoaded` when they failed or took too long."""
        if not self.loaded.done():
            timeout = self.config.load_timeout
            try:
                # shield: a request that stops waiting must not cancel the load for everyone else.
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self.loaded)), timeout)
            except TimeoutError:
                raise PluginsNotLoaded(f"the plugins are still loading after {timeout:g} s; try again once "
                                       f"`comfy serve` reports them loaded") from None
            except Exception:  # noqa: BLE001 - the exception is the future's own, read just below
                pass
        error = self.loaded.exception()
        if error is not None:
            raise PluginsNotLoaded(f"the plugins failed to load ({type(error).__name__}: {error}); see the "
                                   f"server's log, fix or remove the pack, and restart `comfy serve`")

    def save_catalogue(self) -> None:
        """Cache the loaded node catalogue for the next start, unless the one read at this start was fresh."""
        if self.catalogue is None and not self.plugins_given:
            cache_catalogue(self.runtime)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.db.close()
        self.lock.close()

    # -- queue helpers ---------------------------------------------------------------------------------------

    def client_of(self, prompt_id: str | None) -> str | None:
        for item in self.queue.running():
            if item.prompt_id == prompt_id:
                client_id = item.extra_data.get("client_id")
                return str(client_id) if client_id else None
        return None

    def queue_remaining(self) -> int:
        return self.queue.remaining()

    def status(self) -> dict[str, Any]:
        return {"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}}

    def broadcast_status(self) -> None:
        self.hub.publish("status", self.status())

    def _done(self, item: QueueItem, result: ExecutionResult) -> None:
        self.broadcast_status()

    def web_directories(self) -> dict[str, Any]:
        accessor = getattr(self.plugins, "web_directories", None)
        return dict(accessor()) if accessor is not None else {}
