"""What pack-side bridges use inside a pack host (this module is imported in the host, not in Hearth's process).

::

    from hearth.sandbox import host_runtime as rt

    rt.register_proxy("MODEL", ModelProxy)   # ModelProxy(remote) is what the pack sees for a parent MODEL
    remote.call("clone")                     # runs value.clone() in Hearth's process; returns the decoded result
    rt.emit("progress", {"value": 3, "max": 20})
    rt.interrupted()                         # True once Hearth interrupted the running call
    rt.current_node()                        # the node whose method runs now, or None

A method or attribute of a parent value that the parent's export policy does not allow raises
:class:`TrustRequired` here (the parent answers so); raised out of a node, it reaches Hearth as "pack 'x' must be
trusted to run: ...". The host loop itself is :mod:`hearth.sandbox.host_worker`.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any


class TrustRequired(Exception):
    """The pack needs something of Hearth's process that an isolated pack may not use."""

    hearth_trust_required = True

    def __init__(self, message: str = "", uses: str = "") -> None:
        super().__init__(message or (f"it uses {uses}" if uses else "it needs Hearth's process"))
        self.uses = uses


class Interrupted(Exception):
    """Raised by :func:`check_interrupted` once Hearth interrupted the running call."""

    hearth_interrupted = True


class Remote:
    """A value that lives in Hearth's process, lent to this host for as long as this object lives."""

    __slots__ = ("id", "kind", "__weakref__")

    def __init__(self, rid: int, kind: str) -> None:
        self.id = rid
        self.kind = kind

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``value.method(*args, **kwargs)`` in Hearth's process (if its policy allows); the decoded result."""
        return _link().request({"op": "rcall", "obj": self, "method": str(method), "args": args, "kwargs": kwargs})

    def getattr(self, name: str) -> Any:
        """``value.name`` read in Hearth's process (if its policy allows)."""
        return _link().request({"op": "rgetattr", "obj": self, "method": str(name)})

    def __repr__(self) -> str:
        return f"<{self.kind} of Hearth's process #{self.id}>"


class _Method:
    __slots__ = ("remote", "name")

    def __init__(self, remote: Remote, name: str) -> None:
        self.remote, self.name = remote, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.remote.call(self.name, *args, **kwargs)


class RemoteObject:
    """The proxy a pack sees for a parent value of a kind no bridge registered a proxy for: every attribute is a
    method that runs in Hearth's process (allowed or refused there)."""

    def __init__(self, remote: Remote) -> None:
        object.__setattr__(self, "_remote", remote)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Method(self._remote, name)

    def __repr__(self) -> str:
        return repr(self._remote)


_factories: dict[str, Callable[[Remote], Any]] = {}
_proxies: dict[int, tuple[Any, Remote]] = {}  # id(proxy) -> (weakref or the proxy itself, its remote)
_proxies_lock = threading.Lock()
_current: dict[str, Any] = {"node": None, "link": None, "flag": None}


def register_proxy(kind: str, factory: Callable[[Remote], Any]) -> None:
    """``factory(remote)`` makes the object a pack sees for a parent value of ``kind`` ("MODEL", "CLIP", ...)."""
    _factories[str(kind)] = factory


def emit(kind: str, data: dict) -> None:
    """Send an event to the running call's ``on_event`` in Hearth's process ("progress", "preview", "message")."""
    link = _current["link"]
    if link is None or _current["node"] is None:
        return  # no call is running: nobody in Hearth would get it
    link.send({"op": "event", "kind": str(kind), "data": data})


def interrupted() -> bool:
    flag = _current["flag"]
    return bool(flag is not None and flag[0])


def check_interrupted() -> None:
    if interrupted():
        raise Interrupted(f"interrupted while {current_node() or 'a node'} ran")


def current_node() -> str | None:
    return _current["node"]


# -- used by the host loop ------------------------------------------------------------------------------------------


def _link() -> Any:
    link = _current["link"]
    if link is None:
        raise RuntimeError("hearth.sandbox.host_runtime is used outside a pack host")
    return link


def proxy_for(remote: Remote) -> Any:
    factory = _factories.get(remote.kind, RemoteObject)
    proxy = factory(remote)
    key = id(proxy)
    try:
        held: Any = weakref.ref(proxy, lambda _r, key=key: _forget_proxy(key))
    except TypeError:
        held = proxy  # not weak-referenceable: kept (and its parent value lent) for the host's life
    with _proxies_lock:
        _proxies[key] = (held, remote)
    return proxy


def _forget_proxy(key: int) -> None:
    with _proxies_lock:
        _proxies.pop(key, None)


def remote_of(value: Any) -> Remote | None:
    """The parent value behind ``value``, when it is a Remote or a proxy made here."""
    if isinstance(value, Remote):
        return value
    with _proxies_lock:
        entry = _proxies.get(id(value))
    if entry is not None:
        held, remote = entry
        target = held() if isinstance(held, weakref.ref) else held
        if target is value:
            return remote
    for attr in ("_hearth_remote", "_remote"):
        try:
            candidate = object.__getattribute__(value, attr)
        except AttributeError:
            continue
        if isinstance(candidate, Remote):
            return candidate
    return None


# -- the host loop (pid 1 of the host's namespace; started by hearth.sandbox.host_worker) ---------------------------


class RemoteError(Exception):
    """A method of a parent value raised in Hearth's process."""


class _Link:
    """The host's end of the wire: requests to the parent (nested calls are served while waiting), events, and
    the tables of values lent across."""

    def __init__(self, channel: Any, generation: int) -> None:
        from hearth.sandbox import wire

        self.wire = wire
        self.channel = channel
        self.generation = generation
        self.codec = wire.Codec(self._other, self._handle)
        self.next_id = 0
        self.handles: dict[int, list] = {}  # host value id -> [object, times lent]
        self.handle_of: dict[int, int] = {}  # id(object) -> host value id
        self.next_handle = 0
        self.released: list[int] = []  # parent values whose last proxy here died
        self.nodes: dict[str, type] = {}
        self.instances: dict[str, Any] = {}
        self.loop: Any = None
        self.send_lock = threading.RLock()

    # values

    def _other(self, value: Any) -> tuple:
        remote = remote_of(value)
        if remote is not None:
            return ("R", remote.id, remote.kind)
        key = id(value)
        hid = self.handle_of.get(key)
        if hid is None or self.handles.get(hid, [None])[0] is not value:
            self.next_handle += 1
            hid = self.next_handle
            self.handles[hid] = [value, 0]
            self.handle_of[key] = hid
        self.handles[hid][1] += 1
        return ("H", hid, type(value).__qualname__, self.generation)

    def _handle(self, tag: str, fields: tuple) -> Any:
        if tag == "H":
            hid = fields[0]
            if hid not in self.handles:
                raise self.wire.WireError(f"Hearth passed back a value (#{hid}) this host no longer holds")
            return self.handles[hid][0]
        rid, kind = fields
        remote = Remote(rid, kind)
        weakref.finalize(remote, self.released.append, rid)
        return proxy_for(remote)

    def release(self, ids: Any) -> None:
        for hid in ids if isinstance(ids, list) else ():
            entry = self.handles.get(hid)
            if entry is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    del self.handles[hid]
                    self.handle_of.pop(id(entry[0]), None)

    # messages

    def send(self, message: dict) -> None:
        # Events may come from a node's own threads while the main thread answers: one message at a time.
        with self.send_lock:
            if self.released:
                taken, self.released[:] = list(self.released), []
                message["rel"] = taken
            body, fds = self.codec.encode(message)
            try:
                self.channel.send(body, fds)
            finally:
                for fd in fds:
                    os.close(fd)

    def recv(self) -> dict:
        body, fds = self.channel.recv()
        message = self.codec.decode(body, fds)
        if not isinstance(message, dict):
            raise self.wire.WireError("a message that is not a dict")
        if "rel" in message:
            self.release(message.pop("rel"))
        return message

    def request(self, message: dict) -> Any:
        self.next_id += 1
        rid = message["id"] = self.next_id
        self.send(message)
        while True:
            answer = self.recv()
            if answer.get("op") != "reply":
                self.dispatch(answer)
                continue
            if answer.get("id") != rid:
                raise self.wire.WireError(f"a reply to {answer.get('id')} while waiting for {rid}")
            error = answer.get("error")
            if error:
                if error.get("kind") == "trust":
                    raise TrustRequired(str(error.get("message")), str(error.get("uses") or ""))
                raise RemoteError(str(error.get("message")))
            return answer.get("value")

    def serve(self) -> None:
        while True:
            message = self.recv()
            if message.get("op") == "bye":
                return
            self.dispatch(message)

    def dispatch(self, message: dict) -> None:
        op = message.get("op")
        rid = message.get("id")
        try:
            if op == "call":
                value = self.call(str(message["node"]), str(message["method"]), message.get("kwargs") or {})
            elif op == "input_types":
                value = self.nodes[str(message["node"])].INPUT_TYPES()
            elif op == "ping":
                value = "pong"
            else:
                raise ValueError(f"unknown request {op!r}")
        except BaseException as exc:  # noqa: BLE001 - MemoryError, SystemExit of a node: reported, host lives on
            import traceback

            if isinstance(exc, KeyboardInterrupt):
                raise
            info = self.wire.error_info(exc, traceback.format_exc())
            del exc
            self.send({"op": "reply", "id": rid, "error": info})
            return
        self.send({"op": "reply", "id": rid, "value": value})

    def call(self, node: str, method: str, kwargs: dict) -> Any:
        cls = self.nodes.get(node)
        if cls is None:
            raise KeyError(f"this pack has no node {node!r}")
        function = str(getattr(cls, "FUNCTION", "") or "")
        if method not in (function, "IS_CHANGED", "VALIDATE_INPUTS", "check_lazy_status"):
            raise ValueError(f"{method!r} is not a method Hearth calls on a node")
        instance = self.instances.get(node)
        if instance is None:
            instance = self.instances[node] = cls()
        previous = _current["node"]
        _current["node"] = node
        try:
            result = getattr(instance, method)(**kwargs)
            if inspect.isawaitable(result):
                if self.loop is None:
                    self.loop = asyncio.new_event_loop()
                result = self.loop.run_until_complete(_until_interrupted(result))
            return result
        finally:
            _current["node"] = previous


async def _until_interrupted(awaitable: Any) -> Any:
    """Await a node's coroutine, cancelling it when Hearth interrupts: an async node awaiting a remote API or a
    sleep never looks at the flag itself, and would otherwise run into the parent's grace period and be killed."""
    task = asyncio.ensure_future(awaitable)
    while True:
        done, _ = await asyncio.wait({task}, timeout=_INTERRUPT_POLL_S)
        if done:
            return task.result()
        if interrupted():
            task.cancel()
            try:
                await task
            except BaseException:  # noqa: BLE001 - whatever the node raised on its way out, the cause is ours
                pass
            raise Interrupted(f"interrupted while {current_node() or 'a node'} ran")


_INTERRUPT_POLL_S = 0.05
_MIRRORED = ("RETURN_TYPES", "RETURN_NAMES", "FUNCTION", "CATEGORY", "OUTPUT_NODE", "INPUT_IS_LIST", "OUTPUT_IS_LIST",
             "NOT_IDEMPOTENT", "DESCRIPTION", "OUTPUT_TOOLTIPS", "DEPRECATED", "EXPERIMENTAL", "SEARCH_ALIASES",
             "DISPLAY_NAME", "API_NODE")
_OPTIONAL = ("IS_CHANGED", "VALIDATE_INPUTS", "check_lazy_status")


def _describe_node(cls: Any) -> dict:
    info: dict = {"attributes": {}, "methods": {}, "signatures": {}, "is_async": False}
    attributes = info["attributes"]
    try:
        attributes["INPUT_TYPES"] = cls.INPUT_TYPES()
    except Exception as exc:  # noqa: BLE001 - one node's error; the others are still described
        info["error"] = f"INPUT_TYPES raised {type(exc).__name__}: {exc}"[:500]
    for name in _MIRRORED:
        if hasattr(cls, name):
            attributes[name] = getattr(cls, name)
    for name in _OPTIONAL:
        found = callable(getattr(cls, name, None))
        info["methods"][name] = found
        if found:
            info["signatures"][name] = _parameters(getattr(cls, name))
    function = getattr(cls, str(getattr(cls, "FUNCTION", "") or ""), None)
    info["is_async"] = bool(function is not None and inspect.iscoroutinefunction(function))
    attributes["IS_ASYNC"] = info["is_async"]
    return info


def _parameters(method: Any) -> list[str]:
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):
        return ["**"]
    names = []
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_KEYWORD:
            names.append("**")
        elif parameter.kind is not parameter.VAR_POSITIONAL and parameter.name not in ("self", "cls", "s"):
            names.append(parameter.name)
    return names


def _serve(config: dict) -> int:
    """pid 1's life: wire up, load the entry the parent sends, describe it, serve calls until the socket closes."""
    import mmap
    import socket
    import traceback

    from hearth.sandbox import namespaces, wire

    unsafe = namespaces.privileges_left()
    for stream in (sys.stdout, sys.stderr):  # a pipe to Hearth's log: a line as soon as it is written
        stream.reconfigure(line_buffering=True)
    sock = socket.socket(fileno=3)
    channel = wire.Channel(sock)
    link = _Link(channel, int(config["generation"]))
    _current["link"] = link
    _current["flag"] = mmap.mmap(4, mmap.PAGESIZE, mmap.MAP_SHARED, mmap.PROT_READ)
    try:
        init = link.recv()
        if unsafe:
            raise RuntimeError(f"refusing to run pack code: {unsafe}")
        sys.path[0:0] = [str(p) for p in init.get("sys_path") or ()]
        module_name, _, function_name = str(init["entry"]).partition(":")
        target: Any = importlib.import_module(module_name)
        for part in filter(None, function_name.split(".")):
            target = getattr(target, part)
        loaded = target(init.get("args") or {}, sys.modules[__name__]) or {}
        link.nodes = {str(k): v for k, v in dict(loaded.get("nodes") or {}).items()}
        describe = {"nodes": {name: _describe_node(cls) for name, cls in link.nodes.items()},
                    "display": {str(k): str(v) for k, v in dict(loaded.get("display") or {}).items()},
                    "web_directory": loaded.get("web_directory"),
                    "notes": [str(n) for n in loaded.get("notes") or ()]}
    except BaseException as exc:  # noqa: BLE001 - the entry's failure is the parent's to report
        if isinstance(exc, wire.Closed):
            return 0
        link.send({"op": "fatal", "error": wire.error_info(exc, traceback.format_exc())})
        return 1
    link.send({"op": "ready", "describe": describe})
    try:
        link.serve()
    except wire.Closed:
        pass
    return 0
