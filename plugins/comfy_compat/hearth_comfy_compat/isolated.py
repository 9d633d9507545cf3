"""ComfyUI packs that run in a pack host: their nodes, mirrored into Hearth's registry, and the calls across.

For each pack the trust policy isolates, :class:`IsolatedPack` starts one pack host (``hearth.sandbox``'s, reached
through :mod:`hearth_comfy_compat.pack_hosts`) whose entry, :func:`hearth_comfy_compat.host_side.entry`, imports the
pack inside it. The host's description of each node class becomes a proxy class here with the same V1 attributes
(``INPUT_TYPES``, ``RETURN_TYPES``, ``FUNCTION``...), so validation, ``/object_info`` and the frontend see the node as
any other. Calling the proxy's function calls the node in the host:

* inputs cross as values (tensors through shared memory), MODEL/CLIP/VAE as handles whose documented methods the
  host may call back into this process (:mod:`hearth_comfy_compat.lent`); a value of a type the pack defines comes
  back as the host's handle and goes in again as the original object; functions the pack sets on a MODEL stay in
  the host and are called there when Hearth samples;
* the host's progress, previews and ``PromptServer`` messages reach the executor's events and the server's clients;
* the executor's interrupt reaches the host; a host that does not stop in its grace time is killed and the node
  fails; so does a host that crashes or runs out of its limits, with one line naming the pack (the next call starts
  a fresh host).

The scratch folder a pack may write besides the output and temp folders is ``<temp>/packs/<pack>``.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearth.core import context
from hearth.core.context import InterruptProcessing
from hearth.core.nodes import NodeDefinition, restored_input_types
from hearth.core.runtime import current_runtime
from hearth.core.types import ExecutionBlocker
from hearth_comfy_compat.host_side import BLOCKER, CALLBACKS, PACK_INFO
from hearth_comfy_compat.lent import (
    EXPORTS,
    HOST_VALUE_TYPES,
    HostCallback,
    device_of,
    is_host_value,
    lend,
    to_device,
    unwrap,
)
from hearth_comfy_compat.pack_hosts import host_api

log = logging.getLogger("hearth.custom_nodes")

ENTRY = "hearth_comfy_compat.host_side:entry"
# The V1 class attributes a proxy node mirrors from the host's description.
MIRRORED = ("RETURN_TYPES", "RETURN_NAMES", "FUNCTION", "CATEGORY", "OUTPUT_NODE", "INPUT_IS_LIST",
            "OUTPUT_IS_LIST", "NOT_IDEMPOTENT", "DESCRIPTION", "OUTPUT_TOOLTIPS", "DEPRECATED", "EXPERIMENTAL",
            "SEARCH_ALIASES", "DISPLAY_NAME")
# How long a node's INPUT_TYPES is trusted before it is read again (only nodes with lists, which files change), and
# how long a re-read may hold up the caller before the cached one is answered.
INPUT_TYPES_TTL_S = 2.0
INPUT_TYPES_WAIT_S = 0.5
INTERRUPT_POLL_S = 0.05


# -- one pack's host -------------------------------------------------------------------------------------------


class _Watch:
    """One call's watch: its identity tells the call apart from the next, which shares the executor's flag."""

    __slots__ = ("interrupt",)

    def __init__(self, interrupt: threading.Event) -> None:
        self.interrupt = interrupt


@dataclass
class PackLayout:
    """Where a pack lives and what its host may see: built by the loader from the Runtime and the environment."""

    name: str
    path: Path
    network: bool = False
    layer: Path | None = None


class IsolatedPack:
    """One ComfyUI pack running in its own pack host; :meth:`definitions` are its nodes as Hearth registers them."""

    def __init__(self, layout: PackLayout, plugins: Any = None) -> None:
        self.layout = layout
        self.name = layout.name
        api = host_api(plugins)
        HOST_VALUE_TYPES.add(api.HostValue)
        self.config = api.HostConfig(name=layout.name, entry=ENTRY, args=self._args(plugins),
                                     readable=self._readable(plugins), writable=self._writable(),
                                     sys_path=(str(layout.layer),) if layout.layer else (), network=layout.network)
        self.host = api.PackHost(self.config, exports=EXPORTS)
        self.description: dict[str, Any] = {}
        self.restarts = 0  # how many times its host was replaced: the pack's handles from before are gone
        self._pid: int | None = None
        self._call_lock = threading.RLock()
        self._watch_cond = threading.Condition()
        self._watched: _Watch | None = None  # the call running now and its interrupt flag
        self._watcher: threading.Thread | None = None
        self._closed = False

    # -- the host's configuration ----------------------------------------------------------------------------

    def _args(self, plugins: Any) -> dict[str, Any]:
        runtime = current_runtime()
        folders = context.folders()
        models = runtime.model_folders if runtime is not None else None
        first_party = sorted(name for name, record in getattr(plugins, "records", {}).items() if _hearths_own(record))
        return {
            "pack": self.name, "path": str(self.layout.path),
            "custom_nodes": [str(self.layout.path.parent)],
            "models_dir": str(models.base) if models is not None else "models",
            "model_folders": {k: [str(p) for p in models.folders(k)] for k in models.kinds()} if models else {},
            "extensions": {k: sorted(models.extensions(k)) for k in models.kinds()} if models else {},
            "output": str(folders.output.resolve()), "input": str(folders.input.resolve()),
            "temp": str(folders.temp.resolve()), "plugins": first_party,
        }

    def _readable(self, plugins: Any) -> tuple[str, ...]:
        runtime = current_runtime()
        paths = [self.layout.path, context.folders().input]
        if self.layout.layer is not None:
            paths.append(self.layout.layer)
        if runtime is not None:  # the models folder itself too: packs add kinds of their own under it
            models = runtime.model_folders
            paths += [models.base, *(p for kind in models.kinds() for p in models.folders(kind))]
        # Hearth's own packages, in case an editable install lives under a hidden folder such as HOME (the package
        # folders only, not the checkout around them).
        for module in ["hearth", "hearth_comfy_compat", *_plugin_packages(plugins)]:
            spec = importlib.util.find_spec(module)
            for location in (spec.submodule_search_locations or []) if spec else []:
                paths.append(Path(location))
        return tuple(dict.fromkeys(str(p.resolve()) for p in paths if p.exists()))

    def _writable(self) -> tuple[str, ...]:
        folders = context.folders()
        scratch = self.scratch_folder()
        for folder in (folders.output, folders.temp, scratch):
            folder.mkdir(parents=True, exist_ok=True)
        return tuple(dict.fromkeys(str(p.resolve()) for p in (scratch, folders.output, folders.temp)))

    def scratch_folder(self) -> Path:
        return context.folders().temp / "packs" / self.name

    # -- nodes -----------------------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Start the host, import the pack in it, and read its nodes' descriptions."""
        self.description = self.host.describe()
        self._pid = self.host.pid
        return self.description

    def definitions(self) -> tuple[list[NodeDefinition], list[str]]:
        """The proxy node definitions, and notes on nodes that could not be mirrored."""
        found, notes = [], []
        display = self.description.get("display") or {}
        for node, info in (self.description.get("nodes") or {}).items():
            if node in (CALLBACKS, PACK_INFO):
                continue
            try:
                if isinstance(info, Mapping) and info.get("error"):
                    # Listed with its error, as an in-process pack's node whose INPUT_TYPES raises is.
                    cls = failed_node_class(self, node, str(info["error"]))
                else:
                    cls = node_class(self, node, info)
                found.append(NodeDefinition(node, cls, display.get(node), plugin=self.name,
                                            python_module=f"custom_nodes.{self.name}"))
            except Exception as exc:
                notes.append(f"node {node!r} skipped: {type(exc).__name__}: {exc}")
        return found, notes

    def input_types(self, node: str) -> dict[str, Any]:
        return self.host.input_types(node)

    def missing_internals(self) -> list[str]:
        """The ComfyUI internals the pack used in its host that Hearth lacks (asked of a running host only)."""
        if not self.host.alive:
            return []
        try:
            info = self._call(PACK_INFO, "info", {}, None, None)
        except Exception:  # noqa: BLE001 - a report, never a failure
            log.debug("pack %s: could not ask its host what it lacks", self.name, exc_info=True)
            return []
        return sorted(set((info.get("missing") or {}).get(self.name) or ()))

    def busy(self) -> bool:
        """Whether a node of this pack is running in its host now."""
        return self._watched is not None

    def call(self, node: str, method: str, kwargs: dict[str, Any]) -> Any:
        """``method`` of ``node`` in the host, with the running node's events and interrupt wired to it."""
        ctx = context.current()
        return self._call(node, method, lend(kwargs, self), ctx, _events_for(ctx))

    def callback(self, value: Any, what: str) -> Any:
        """``value`` as a ModelPatcher setter records it: a function of this pack's becomes a HostCallback."""
        return HostCallback(self, value, what) if is_host_value(value) else unwrap(value)

    def invoke(self, callback: HostCallback, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run a function this pack set on a MODEL (the sampler calls it): in the host, on the caller's tensors."""
        device = device_of((args, kwargs))
        ctx = context.current()
        crossing = {"fn": callback.fn, "args": lend(list(args), self, device, functions=True),
                    "kwargs": lend(kwargs, self, device, functions=True)}
        result = self._call(CALLBACKS, "invoke", crossing, ctx, _events_for(ctx))
        return to_device(result, device)

    def _call(self, node: str, method: str, kwargs: dict[str, Any], ctx: Any, on_event: Any) -> Any:
        # The host runs one call at a time and the watcher watches that one. Re-entrant: while a node of the pack
        # runs, Hearth may call one of the pack's functions back (a sampler step callback), which the host serves
        # while it waits on Hearth; the outer call's watch is restored after.
        with self._call_lock:
            outer = self._watched
            self._watch(_Watch(ctx.interrupt) if ctx is not None else None)
            try:
                result = self.host.call(node, method, kwargs, on_event=on_event)
            except Exception as exc:
                self.note_host()
                if ctx is not None and ctx.interrupt.is_set():
                    raise InterruptProcessing(f"interrupted while pack {self.name!r} ran {node}") from exc
                remote = getattr(exc, "remote_traceback", "")
                if remote:  # shown in the node's traceback; the message stays one line
                    exc.add_note(f"in pack {self.name!r}'s host:\n{remote.rstrip()}")
                if getattr(exc, "remote_type", ""):  # the node's own error: reported as an in-process one would be
                    exc.hearth_exception_type = exc.remote_type
                    exc.hearth_exception_message = exc.remote_message
                raise
            finally:
                self._watch(outer)
            self.note_host()
        if ctx is not None and ctx.interrupt.is_set():
            raise InterruptProcessing(f"interrupted while pack {self.name!r} ran {node}")
        return unwrap(result)

    def note_host(self) -> None:
        """Count a host that went away or was replaced: nodes of this pack then run again instead of being taken
        from the cache, whose handles into the old host are gone."""
        pid = self.host.pid if self.host.alive else None
        if self._pid is not None and pid != self._pid:
            self.restarts += 1
        self._pid = pid

    # -- the executor's interrupt, passed on to the host ------------------------------------------------------

    def _watch(self, watch: _Watch | None) -> None:
        """Watch a call's interrupt flag (``None``: no call runs) from the pack's watcher thread, which lives as
        long as the pack and costs a call nothing."""
        with self._watch_cond:
            self._watched = watch
            self._watch_cond.notify_all()
            if watch is not None and self._watcher is None:
                self._watcher = threading.Thread(target=self._watch_loop, daemon=True,
                                                 name=f"interrupt-watch-{self.name}")
                self._watcher.start()

    def _watch_loop(self) -> None:
        # Calls are told apart by their _Watch, never by the flag: the executor reuses one flag for every prompt
        # (cleared as the next begins), so an ask meant for an interrupted call must not reach the call after it.
        while True:
            with self._watch_cond:
                while self._watched is None and not self._closed:
                    self._watch_cond.wait()
                if self._closed:
                    return
                watch = self._watched
            if not watch.interrupt.wait(INTERRUPT_POLL_S):
                continue
            # Ask until the call ends: an ask that came before the host began the call (the flag may be set before
            # the node starts) does nothing there. Asking again is cheap; the grace period counts from the first.
            while True:
                with self._watch_cond:
                    if self._watched is not watch or self._closed or not watch.interrupt.is_set():
                        break
                    # Read under the lock: while this call is watched, no later call has begun in the host.
                    call = self.host.current_call
                if call is not None:
                    self.host.interrupt(call)
                with self._watch_cond:
                    if self._watched is not watch or self._closed:
                        break
                    self._watch_cond.wait(INTERRUPT_POLL_S)

    def close(self) -> None:
        with self._watch_cond:
            self._closed = True
            self._watch_cond.notify_all()
        self.host.close()


def _hearths_own(record: Any) -> bool:
    """Whether a loaded plugin is Hearth's own code (the core's builtin nodes and loaders, the first-party plugins):
    the host loads those too, so ``nodes.SaveImage`` and ``comfy.samplers`` answer there as here."""
    if record.error or record.kind != "hearth" or record.name == "custom_nodes":
        return False
    return bool(getattr(record, "first_party", False)) or (record.tier in ("essential", "default")
                                                            and record.module.startswith("hearth."))


def _plugin_packages(plugins: Any) -> list[str]:
    names = []
    for record in getattr(plugins, "records", {}).values():
        if getattr(record, "first_party", False) and record.module:
            names.append(record.module.partition(":")[0].partition(".")[0])
    return sorted(set(names))


def _events_for(ctx: Any) -> Callable[[str, dict[str, Any]], None]:
    """What the host's events become: the node's progress and previews, and the packs' server messages."""

    # The submitting client is known in the node's own thread; events may arrive on the host's reader thread.
    client = _client_id() if ctx is not None else None

    def on_event(kind: str, data: dict[str, Any]) -> None:
        try:
            if kind in ("progress", "preview") and ctx is not None:
                payload = {"value": data.get("value", 0), "max": data.get("max", 0), "prompt_id": ctx.prompt_id,
                           "node": ctx.node_id}
                if kind == "preview" and data.get("image"):
                    payload["preview"] = bytes(data["image"])
                ctx.emit("progress", payload)
            elif kind == "message":
                from hearth_comfy_compat.server import PromptServer

                server = PromptServer.instance
                sid = data.get("sid")
                server.send_sync(data.get("event"), data.get("data"), client if sid is None else sid)
        except Exception:  # an event that cannot be delivered must not fail the node that sent it
            log.warning("an event (%s) from an isolated node could not be delivered", kind, exc_info=True)

    return on_event


def _client_id() -> str | None:
    from hearth_comfy_compat.server import PromptServer

    try:
        return PromptServer.instance.client_id
    except Exception:
        return None


# -- proxy node classes ----------------------------------------------------------------------------------------


def _signature(params: Any) -> inspect.Signature:
    """A ``(cls, <params>)`` signature for a forwarded method (validation reads VALIDATE_INPUTS' parameters)."""
    first = inspect.Parameter("cls", inspect.Parameter.POSITIONAL_OR_KEYWORD)  # dropped when bound
    if not isinstance(params, (list, tuple)) or "**" in params:
        return inspect.Signature([first, inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)])
    return inspect.Signature([first, *(inspect.Parameter(str(p), inspect.Parameter.KEYWORD_ONLY, default=None)
                                       for p in params)])


def _has_lists(raw: Any) -> bool:
    """Whether an INPUT_TYPES result holds a combo list (lists of files change; plain widgets do not)."""
    if not isinstance(raw, Mapping):
        return False
    for section in raw.values():
        for value in (section or {}).values() if isinstance(section, Mapping) else ():
            if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple)):
                return True
            if isinstance(value, (list, tuple)) and value and value[0] == "COMBO":
                return True
    return False


class _InputTypes:
    """A node's INPUT_TYPES: the description's, re-read from the host at most every INPUT_TYPES_TTL_S when it has
    lists, without holding up the caller more than INPUT_TYPES_WAIT_S while the host is busy with a node."""

    def __init__(self, pack: IsolatedPack, node: str, raw: dict[str, Any]) -> None:
        # The host sends portable INPUT_TYPES: a section that claims every name becomes one again here.
        self.pack, self.node, self.raw = pack, node, restored_input_types(raw)
        self.read_at = time.monotonic()
        self.dynamic = _has_lists(raw)
        self._refreshing: threading.Thread | None = None
        self._lock = threading.Lock()

    def get(self) -> dict[str, Any]:
        if not self.dynamic or time.monotonic() - self.read_at < INPUT_TYPES_TTL_S:
            return self.raw
        if self.pack.busy():  # the host runs a node: answer what we have rather than queue behind it
            return self.raw
        with self._lock:
            if self._refreshing is not None and self._refreshing.is_alive():
                return self.raw  # a re-read is under way already
            thread = self._refreshing = threading.Thread(target=self._refresh, daemon=True,
                                                         name=f"input-types-{self.pack.name}")
            thread.start()
        thread.join(INPUT_TYPES_WAIT_S)
        return self.raw

    def names(self) -> list[str]:
        """The required, then optional, input names in declared order."""
        raw = self.raw if isinstance(self.raw, Mapping) else {}
        return [name for section in ("required", "optional") for name in (raw.get(section) or {})]

    def hidden_of(self, kind: str) -> list[str]:
        """The names of the hidden inputs of ``kind`` (``DYNPROMPT``...)."""
        hidden = self.raw.get("hidden") if isinstance(self.raw, Mapping) else None
        return [name for name, value in (hidden or {}).items() if value == kind] if isinstance(hidden, Mapping) \
            else []

    def _refresh(self) -> None:
        try:
            raw = self.pack.input_types(self.node)
        except Exception:
            log.debug("INPUT_TYPES of %s (pack %s) could not be re-read", self.node, self.pack.name, exc_info=True)
            self.read_at = time.monotonic()
            return
        if isinstance(raw, dict):
            self.raw = restored_input_types(raw)
        self.read_at = time.monotonic()


def _as_result(value: Any) -> Any:
    """The host's answer in the shape the executor takes: tuples for outputs (the wire may give lists), and
    ExecutionBlockers back from their crossing form."""
    if _is_blocker(value):
        return ExecutionBlocker(value[BLOCKER])
    if isinstance(value, (list, tuple)):
        return tuple(ExecutionBlocker(v[BLOCKER]) if _is_blocker(v) else v for v in value)
    if isinstance(value, dict) and isinstance(value.get("result"), (list, tuple)):
        return {**value, "result": _as_result(value["result"])}
    return value


def _is_blocker(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and BLOCKER in value


def failed_node_class(pack: IsolatedPack, node: str, error: str) -> type:
    """A node whose description failed in the host (its INPUT_TYPES raised there): its INPUT_TYPES and its use
    raise that error, so listings show it and running it names it."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{node} (pack {pack.name}): {error}")

    return type(node, (), {"__module__": f"custom_nodes.{pack.name}", "HEARTH_ISOLATED_PACK": pack.name,
                           "__doc__": f"{node} of pack {pack.name!r}, isolated; its description failed",
                           "RETURN_TYPES": (), "FUNCTION": "run", "CATEGORY": "", "INPUT_TYPES": classmethod(fail),
                           "run": fail})


def node_class(pack: IsolatedPack, node: str, info: Mapping[str, Any]) -> type:
    """A V1 node class whose attributes are the host's and whose methods call the node in the host."""
    attributes = dict(info.get("attributes") or info)
    function = str(attributes.get("FUNCTION") or "")
    if not function:
        raise ValueError("the host describes no FUNCTION")
    inputs = _InputTypes(pack, node, attributes.get("INPUT_TYPES") or {"required": {}})
    namespace: dict[str, Any] = {k: attributes[k] for k in MIRRORED if k in attributes}
    for key in ("RETURN_TYPES", "RETURN_NAMES", "OUTPUT_IS_LIST", "OUTPUT_TOOLTIPS"):
        if isinstance(namespace.get(key), list):
            namespace[key] = tuple(namespace[key])
    namespace.update(__module__=f"custom_nodes.{pack.name}", __doc__=f"{node} of pack {pack.name!r}, isolated",
                     HEARTH_ISOLATED_PACK=pack.name)
    namespace["INPUT_TYPES"] = classmethod(lambda cls: inputs.get())

    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        if args:  # a pack calling another pack's node class directly, positionally: the inputs in declared order
            kwargs.update(zip(inputs.names(), args, strict=False))
        for name in inputs.hidden_of("DYNPROMPT"):
            if name in kwargs:  # the executor's graph object stays here; the pack sees no dynamic prompt
                kwargs[name] = None
        return _as_result(pack.call(node, function, kwargs))

    namespace[function] = run
    methods = info.get("methods") or attributes.get("methods") or {}
    signatures = info.get("signatures") or attributes.get("signatures") or {}

    def has(name: str) -> bool:
        return bool(methods.get(name)) if isinstance(methods, Mapping) else name in (methods or ())

    own_is_changed = has("IS_CHANGED")

    def is_changed(cls: Any, **kwargs: Any) -> Any:
        # A replaced host makes every node of the pack run again: the cache may hold handles into the old one.
        pack.note_host()  # a host that died since the last call counts now, before the cache is consulted
        if not own_is_changed:
            return ("host", pack.restarts)
        answer = pack.call(node, "IS_CHANGED", kwargs)
        return answer if pack.restarts == 0 or answer != answer else ("host", pack.restarts, answer)

    is_changed.__signature__ = _signature(  # type: ignore[attr-defined]
        signatures.get("IS_CHANGED") if own_is_changed else ["**"])
    namespace["IS_CHANGED"] = classmethod(is_changed)
    if has("VALIDATE_INPUTS"):
        def validate_inputs(cls: Any, **kwargs: Any) -> Any:
            return pack.call(node, "VALIDATE_INPUTS", kwargs)
        validate_inputs.__signature__ = _signature(signatures.get("VALIDATE_INPUTS"))  # type: ignore[attr-defined]
        namespace["VALIDATE_INPUTS"] = classmethod(validate_inputs)
    if has("check_lazy_status"):
        def check_lazy_status(self: Any, **kwargs: Any) -> Any:
            return pack.call(node, "check_lazy_status", kwargs)
        namespace["check_lazy_status"] = check_lazy_status
    return type(_class_name(node), (), namespace)


def _class_name(node: str) -> str:
    name = "".join(ch if ch.isalnum() else "_" for ch in node)
    return name if name[:1].isalpha() else f"Node_{name}"
