"""The running server's state: its Runtime (plugins, node registry, executor), persisted queue, worker and event hub.

Route modules get this object from ``request.app.state.hearth``; nothing here knows about HTTP. Requests and the
worker thread run inside the server's Runtime (the app activates it per request, the executor around each prompt).
"""

from __future__ import annotations

import gc
import importlib
import logging
import threading
import time
from collections import deque
from typing import Any

from hearth.core.context import remove_dead_partials
from hearth.core.executor.execution import ExecutionResult
from hearth.core.executor.queue import QueueItem, Worker
from hearth.core.plugins import PluginManager
from hearth.core.runtime import Runtime, RuntimeOptions
from hearth.web.config import ServerConfig
from hearth.web.events import EventHub, ExecutionEvents
from hearth.web.store import Database, PersistentHistory, PersistentQueue, lock_data_folder

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


class ServerState:
    """Everything one ``comfy serve`` process holds, built from a :class:`ServerConfig`.

    :param runtime: the Runtime to serve (``comfy serve`` builds it from its options); by default one built from
        ``config`` (its folders, models folder, custom nodes and cache), with ``plugins`` when given.
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
        self.plugins = runtime.plugins
        self.registry = runtime.nodes
        self.executor = runtime.executor
        self.db = Database(config.database)
        self.history = PersistentHistory(self.db, config.history_max_items)
        self.queue = PersistentQueue(self.db, self.history)
        self.hub = EventHub()
        self.events = ExecutionEvents(self.hub, self.client_of)
        self.worker = ServerWorker(self.queue, self.executor, emit=self.events.emit, on_done=self._done)
        self.settings_lock = threading.Lock()
        self.frontend = "hearth"  # or "comfyui": which UI the app serves at /
        self.logs = LogBuffer.install()
        self.job_summaries: dict[int, dict[str, Any]] = {}  # /jobs items of stored history rows, by row

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self, loop: Any) -> None:
        self.hub.bind(loop)
        if self.queue.recovered:
            log.warning("marked %d prompt(s) failed that were running when the server last stopped: %s",
                        len(self.queue.recovered), ", ".join(self.queue.recovered))
        self.worker.start()

    def stop(self) -> None:
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
