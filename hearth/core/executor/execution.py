"""The execution engine: runs a validated prompt node by node, with caching, lazy inputs, expansion and lists.

Scheduling is driven from the outputs: a node is requested, its cached result used if its signature is known,
otherwise its (non-lazy) inputs are requested in turn, and it becomes ready when they resolve. Async nodes run as
tasks, so several can wait at once; sync nodes run inline. Every walk is iterative.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hearth.core import context as node_context
from hearth.core.context import Folders, InterruptProcessing
from hearth.core.executor.cache import Cache, CacheEntry, Signature, canonical, make_cache, signature
from hearth.core.executor.graph import DynamicPrompt, Link, PromptNode, is_link, parse_prompt
from hearth.core.executor.validation import ValidationResult, Validator
from hearth.core.node_registry import NodeRegistry
from hearth.core.nodes import NodeDefinition, NodeInputs
from hearth.core.runtime import Runtime, activated, current_runtime
from hearth.core.types import ExecutionBlocker

Emit = Callable[[str, dict[str, Any]], None]
# Events recorded in a prompt's history status, as ComfyUI records them.
HISTORY_EVENTS = frozenset({"execution_start", "execution_cached", "execution_success", "execution_error",
                            "execution_interrupted"})
# How often the executor looks at the interrupt flag while async nodes wait; sync nodes see it between nodes and
# at each progress tick (hearth.core.context.progress / check_interrupted).
INTERRUPT_POLL_S = 0.1


class DependencyCycleError(Exception):
    """Expansion created a cycle; the message lists the nodes on it."""


class NodeFailed(Exception):
    """A node raised; carries the ``execution_error`` payload."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload["exception_message"])
        self.payload = payload


@dataclass
class ExecutionResult:
    prompt_id: str
    status: str  # "success", "error" or "interrupted"
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # node id -> UI data
    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None  # the execution_error payload
    validation: ValidationResult | None = None

    @property
    def ok(self) -> bool:
        return self.status == "success"


def _now_ms() -> int:
    return int(time.time() * 1000)


class Executor:
    """Runs prompts against one node registry; keeps the output cache and node instances between prompts.

    Validation and execution happen inside ``runtime`` (by default the Runtime current when the executor is made),
    whichever thread calls: nodes see its model folders, plugins and model manager. Without any Runtime, nodes see
    what the accessors give outside one.
    """

    def __init__(self, registry: NodeRegistry, *, cache: Cache | str = "classic", folders: Folders | None = None,
                 plugins: Any = None, runtime: Runtime | None = None) -> None:
        self.registry = registry
        self.runtime = runtime if runtime is not None else current_runtime()
        self.cache = make_cache(cache) if isinstance(cache, str) else cache
        self.folders = folders or (self.runtime.folders if self.runtime is not None else node_context.folders())
        self.plugins = plugins
        self.interrupt_event = threading.Event()
        self.validator = Validator(registry, self.runtime)
        self._instances: dict[tuple[str, str], Any] = {}

    def interrupt(self) -> None:
        """Stop the running prompt: between nodes, at the next progress tick inside a node, and within
        ``INTERRUPT_POLL_S`` for async nodes that are waiting."""
        self.interrupt_event.set()

    def validate(self, prompt: Mapping[str, Any], targets: list[str] | None = None) -> ValidationResult:
        return self.validator.validate(parse_prompt(prompt), targets)

    def run(self, prompt: Mapping[str, Any], *, prompt_id: str | None = None, extra_data: Mapping[str, Any] | None = None,
            targets: list[str] | None = None, emit: Emit | None = None) -> ExecutionResult:
        """Validate, then execute the valid outputs. Safe to call from any thread without a running event loop."""
        nodes = parse_prompt(prompt)
        validation = self.validator.validate(nodes, targets)
        prompt_id = prompt_id or str(uuid.uuid4())
        if not validation.ok:
            return ExecutionResult(prompt_id, "error", validation=validation)
        result = self.execute(nodes, validation.outputs, prompt_id=prompt_id, extra_data=extra_data, emit=emit,
                              original=prompt)
        result.validation = validation
        return result

    def execute(self, nodes: Mapping[str, PromptNode], outputs: list[str], *, prompt_id: str,
                extra_data: Mapping[str, Any] | None = None, emit: Emit | None = None,
                original: Mapping[str, Any] | None = None) -> ExecutionResult:
        """Execute already-validated nodes toward ``outputs``."""
        return asyncio.run(self.execute_async(nodes, outputs, prompt_id=prompt_id, extra_data=extra_data,
                                              emit=emit, original=original))

    async def execute_async(self, nodes: Mapping[str, PromptNode], outputs: list[str], *, prompt_id: str,
                            extra_data: Mapping[str, Any] | None = None, emit: Emit | None = None,
                            original: Mapping[str, Any] | None = None) -> ExecutionResult:
        self.interrupt_event.clear()
        run = _Run(self, DynamicPrompt(nodes, original), prompt_id, dict(extra_data or {}), emit)
        # Set in this task's context: the tasks of async nodes copy it, and a worker thread's empty one is left alone.
        with activated(self.runtime):
            return await run.execute(outputs)


class _Run:
    """The state of one prompt's execution."""

    def __init__(self, executor: Executor, dyn: DynamicPrompt, prompt_id: str, extra_data: dict[str, Any],
                 emit: Emit | None) -> None:
        self.ex = executor
        self.registry = executor.registry
        self.cache = executor.cache
        self.dyn = dyn
        self.prompt_id = prompt_id
        self.extra_data = extra_data
        self._emit_to = emit
        self.result = ExecutionResult(prompt_id, "success")
        self.entries: dict[str, CacheEntry] = {}
        self.sigs: dict[str, Signature] = {}
        self.scheduled: set[str] = set()
        self.waiting: dict[str, int] = {}
        self.dependents: dict[str, list[str]] = {}
        self.ready: list[str] = []
        self.expansions: dict[str, list[tuple[Any, ...]]] = {}
        self.specs: dict[str, NodeInputs] = {}
        self.instances: dict[tuple[str, str], Any] = {}
        self.current: str | None = None  # the node running (or last run), for interrupt reports

    # -- events ----------------------------------------------------------------------------------------------

    def emit(self, event: str, data: dict[str, Any]) -> None:
        if event in HISTORY_EVENTS:
            self.result.messages.append((event, data))
        if self._emit_to is not None:
            self._emit_to(event, data)

    def notify(self, hook: str, **kwargs: Any) -> None:
        if self.ex.plugins is not None:
            self.ex.plugins.notify(hook, **kwargs)

    # -- top level -------------------------------------------------------------------------------------------

    async def execute(self, outputs: list[str]) -> ExecutionResult:
        self.cache.begin()
        self.emit("execution_start", {"prompt_id": self.prompt_id, "timestamp": _now_ms()})
        self.notify("on_prompt_start", prompt_id=self.prompt_id, prompt=self.dyn.get_original_prompt(),
                    extra_data=self.extra_data)
        tasks: dict[asyncio.Task[None], str] = {}
        try:
            for output in outputs:
                self.signature(output)
            self.result.cached = [n for n, sig in self.sigs.items() if self.cache.get(sig) is not None]
            self.emit("execution_cached", {"nodes": list(self.result.cached), "prompt_id": self.prompt_id,
                                           "timestamp": _now_ms()})
            for output in outputs:
                self.schedule(output)
            while True:
                while self.ready:
                    node_id = self.ready.pop()
                    if self.ex.interrupt_event.is_set():
                        raise InterruptProcessing(f"interrupted before node {node_id}")
                    definition = self.registry[self.dyn.node(node_id).class_type]
                    if definition.is_async:
                        tasks[asyncio.ensure_future(self.run_node(node_id))] = node_id
                    else:
                        await self.run_node(node_id)
                if not tasks:
                    break
                # In short steps, so an interrupt ends async nodes that are waiting (the finally cancels them).
                done, _ = await asyncio.wait(tasks, timeout=INTERRUPT_POLL_S, return_when=asyncio.FIRST_COMPLETED)
                if self.ex.interrupt_event.is_set():
                    self.current = self.current or next(iter(tasks.values()))
                    raise InterruptProcessing(f"interrupted while async nodes ran: {', '.join(tasks.values())}")
                for task in done:
                    del tasks[task]
                    task.result()
            unresolved = [o for o in outputs if o not in self.entries]
            if unresolved:
                raise DependencyCycleError(f"outputs {', '.join(unresolved)} never became ready (dependency cycle)")
            self.emit("execution_success", {"prompt_id": self.prompt_id, "timestamp": _now_ms()})
        except InterruptProcessing:
            node_id = self.current
            self.result.status = "interrupted"
            self.emit("execution_interrupted", {
                "prompt_id": self.prompt_id, "node_id": node_id,
                "node_type": self.dyn.node(node_id).class_type if node_id else None,
                "executed": list(self.result.executed), "timestamp": _now_ms()})
        except NodeFailed as exc:
            self.result.status = "error"
            self.result.error = exc.payload
            self.emit("execution_error", exc.payload)
        except DependencyCycleError as exc:
            self.result.status = "error"
            self.result.error = self.failure_payload(None, exc, [])
            self.emit("execution_error", self.result.error)
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            self.cache.end(set(self.sigs.values()))
            self.ex._instances = self.instances
        self.emit("executing", {"node": None, "display_node": None, "prompt_id": self.prompt_id})
        self.notify("on_prompt_end", prompt_id=self.prompt_id, status=self.result.status, outputs=self.result.outputs)
        return self.result

    # -- signatures ------------------------------------------------------------------------------------------

    def node_inputs(self, class_type: str) -> NodeInputs:
        found = self.specs.get(class_type)
        if found is None:
            found = self.specs[class_type] = self.registry[class_type].inputs()
        return found

    def signature(self, root: str) -> Signature:
        """The cache key of ``root``, computing its ancestors' keys first (iteratively)."""
        sigs = self.sigs
        if root in sigs:
            return sigs[root]
        visiting: set[str] = set()
        stack = [root]
        while stack:
            node_id = stack[-1]
            if node_id in sigs:
                stack.pop()
                continue
            node = self.dyn.node(node_id)
            missing = [v.node for v in node.inputs.values() if isinstance(v, Link) and v.node not in sigs]
            if missing:
                if node_id in visiting:
                    raise DependencyCycleError(f"dependency cycle through node {node_id} ({node.class_type})")
                visiting.add(node_id)
                stack.extend(missing)
                continue
            stack.pop()
            sigs[node_id] = self.own_signature(node)
        return sigs[root]

    def own_signature(self, node: PromptNode) -> Signature:
        definition = self.registry[node.class_type]
        parts = [(name, ("link", self.sigs[v.node], v.slot) if isinstance(v, Link) else canonical(v))
                 for name, v in sorted(node.inputs.items())]
        extra: Any = None
        hidden = [spec.type for spec in self.node_inputs(node.class_type).section("hidden")]
        if definition.not_idempotent or "UNIQUE_ID" in hidden:
            extra = ("id", node.id)
        is_changed = getattr(definition.cls, "IS_CHANGED", None)
        if is_changed is not None:
            extra = (extra, "changed", self.is_changed(node, is_changed))
        return signature(node.class_type, parts, extra)

    def is_changed(self, node: PromptNode, fn: Callable[..., Any]) -> Any:
        literals = {k: v for k, v in node.inputs.items() if not isinstance(v, Link)}
        try:
            params = inspect.signature(fn).parameters
            if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
                literals = {k: v for k, v in literals.items() if k in params}
            value = fn(**literals)
        except Exception:  # a failing IS_CHANGED means "re-run"; the node itself will report real errors
            return uuid.uuid4().hex
        if isinstance(value, float) and value != value:  # ComfyUI: NaN means "always changed"
            return uuid.uuid4().hex
        return canonical(value)

    # -- scheduling ------------------------------------------------------------------------------------------

    def needed_links(self, node: PromptNode, names: Any = None) -> set[str]:
        specs = self.node_inputs(node.class_type).specs
        deps = set()
        for name, value in node.inputs.items():
            if not isinstance(value, Link) or value.node in self.entries:
                continue
            if names is None:
                spec = specs.get(name)
                if spec is not None and spec.lazy:
                    continue
            elif name not in names:
                continue
            deps.add(value.node)
        return deps

    def wait_for(self, node_id: str, deps: set[str]) -> None:
        self.waiting[node_id] = len(deps)
        for dep in deps:
            self.dependents.setdefault(dep, []).append(node_id)
        if not deps:
            self.ready.append(node_id)
        for dep in deps:
            self.schedule(dep)

    def schedule(self, root: str) -> None:
        stack = [root]
        while stack:
            node_id = stack.pop()
            if node_id in self.entries or node_id in self.scheduled:
                continue
            entry = self.cache.get(self.signature(node_id))
            if entry is not None:
                self.resolve(node_id, entry, cached=True)
                continue
            self.scheduled.add(node_id)
            deps = self.needed_links(self.dyn.node(node_id))
            self.waiting[node_id] = len(deps)
            for dep in deps:
                self.dependents.setdefault(dep, []).append(node_id)
                stack.append(dep)
            if not deps:
                self.ready.append(node_id)

    def resolve(self, node_id: str, entry: CacheEntry, cached: bool = False) -> None:
        self.entries[node_id] = entry
        if entry.ui is not None:
            display = self.dyn.get_display_node_id(node_id)
            self.result.outputs[display] = entry.ui
            if cached:
                self.emit("executed", {"node": node_id, "display_node": display, "output": entry.ui,
                                       "prompt_id": self.prompt_id})
        for dependent in self.dependents.pop(node_id, ()):
            self.waiting[dependent] -= 1
            if self.waiting[dependent] == 0:
                self.ready.append(dependent)

    # -- running one node ------------------------------------------------------------------------------------

    async def run_node(self, node_id: str) -> None:
        node = self.dyn.node(node_id)
        definition = self.registry[node.class_type]
        if node_id in self.expansions:
            self.finish(node_id, definition, self.expansions.pop(node_id))
            return
        entry = self.cache.get(self.sigs[node_id]) if node_id in self.sigs else None
        if entry is not None:  # an identical node earlier in this prompt already produced it
            self.resolve(node_id, entry, cached=True)
            return
        self.current = node_id
        display = self.dyn.get_display_node_id(node_id)
        ctx = node_context.ExecutionContext(self.prompt_id, node_id, display, node.class_type, self.ex.folders,
                                            self.emit, self.ex.interrupt_event)
        token = node_context.enter(ctx)
        inputs: dict[str, list[Any]] = {}
        try:
            self.emit("executing", {"node": node_id, "display_node": display, "prompt_id": self.prompt_id})
            inputs = self.gather_inputs(node, definition)
            instance = self.instance(node_id, definition)
            if hasattr(instance, "check_lazy_status"):
                more = self.lazy_requests(node, instance, inputs)
                if more:
                    self.wait_for(node_id, more)
                    return
            results = await self.call(definition, getattr(instance, definition.cls.FUNCTION), inputs)
            if any(isinstance(r, dict) and r.get("expand") is not None for r in results):
                self.expand(node_id, results)
                return
            self.finish(node_id, definition, results)
        except (InterruptProcessing, NodeFailed, DependencyCycleError):
            raise
        except Exception as exc:
            payload = self.failure_payload(node_id, exc, traceback.format_exception(exc), inputs)
            self.notify("on_node_error", prompt_id=self.prompt_id, node_id=node_id, class_type=node.class_type,
                        error=exc, traceback=payload["traceback"])
            raise NodeFailed(payload) from exc
        finally:
            node_context.leave(token)

    def gather_inputs(self, node: PromptNode, definition: NodeDefinition) -> dict[str, list[Any]]:
        specs = self.node_inputs(node.class_type).specs
        inputs: dict[str, list[Any]] = {}
        for name, value in node.inputs.items():
            if name not in specs:
                continue
            if isinstance(value, Link):
                entry = self.entries.get(value.node)
                if entry is not None and entry.given is not None and value.slot >= entry.given:
                    source = self.dyn.node(value.node).class_type
                    raise ValueError(f"input {name!r} links to output {value.slot} of node {value.node} ({source}), "
                                     f"which returned no value for it (it returned {entry.given} of "
                                     f"{len(entry.outputs)} outputs); link another output or fix that node")
                inputs[name] = entry.outputs[value.slot] if entry is not None else [None]
            else:
                inputs[name] = [value]
        for spec in specs.values():
            if spec.section != "hidden":
                continue
            kind = spec.type
            if kind == "PROMPT":
                inputs[spec.name] = [self.dyn.get_original_prompt()]
            elif kind == "DYNPROMPT":
                inputs[spec.name] = [self.dyn]
            elif kind == "EXTRA_PNGINFO":
                inputs[spec.name] = [self.extra_data.get("extra_pnginfo")]
            elif kind == "UNIQUE_ID":
                inputs[spec.name] = [node.id]
        return inputs

    def instance(self, node_id: str, definition: NodeDefinition) -> Any:
        key = (node_id, definition.name)
        found = self.instances.get(key) or self.ex._instances.get(key)
        if found is None:
            found = definition.cls()
        self.instances[key] = found
        return found

    def lazy_requests(self, node: PromptNode, instance: Any, inputs: dict[str, list[Any]]) -> set[str]:
        if self.registry[node.class_type].input_is_list:
            kwargs: dict[str, Any] = dict(inputs)
        else:
            kwargs = {k: _first(v) for k, v in inputs.items()}
        wanted = instance.check_lazy_status(**kwargs) or []
        return self.needed_links(node, set(wanted))

    async def call(self, definition: NodeDefinition, fn: Callable[..., Any],
                   inputs: dict[str, list[Any]]) -> list[Any]:
        if definition.input_is_list:
            batches = [inputs]
        else:
            count = max((len(v) for v in inputs.values()), default=1)
            if any(len(v) == 0 for v in inputs.values()):
                count = 0
            batches = [{k: v[i] if i < len(v) else v[-1] for k, v in inputs.items()} for i in range(count)]
        results: list[Any] = []
        pending: list[tuple[int, Any]] = []
        for index, kwargs in enumerate(batches):
            blocker = _blocker_in(kwargs)
            if blocker is not None:
                results.append(self.blocked(definition, blocker))
                continue
            node_context.check_interrupted()
            value = fn(**kwargs)
            if inspect.isawaitable(value):
                pending.append((index, value))
            results.append(value)
        if pending:
            awaited = await asyncio.gather(*(aw for _, aw in pending))
            for (index, _), value in zip(pending, awaited, strict=True):
                results[index] = value
        return results

    def blocked(self, definition: NodeDefinition, blocker: ExecutionBlocker) -> tuple[Any, ...]:
        if blocker.message is not None:
            ctx = node_context.current()
            node_id = ctx.node_id if ctx else None
            self.emit("execution_error", {
                "prompt_id": self.prompt_id, "node_id": node_id, "node_type": definition.name,
                "executed": list(self.result.executed), "exception_message": f"Execution Blocked: {blocker.message}",
                "exception_type": "ExecutionBlocked", "traceback": [], "current_inputs": [], "current_outputs": [],
                "timestamp": _now_ms()})
            blocker = ExecutionBlocker(None)
        return (blocker,) * len(definition.return_types)

    def expand(self, node_id: str, results: list[Any]) -> None:
        """Add the subgraphs a node returned; the node resolves when the links in its results do."""
        display = self.dyn.get_display_node_id(node_id)
        templates: list[tuple[Any, ...]] = []
        deps: set[str] = set()
        for call_index, result in enumerate(results):
            if not (isinstance(result, dict) and result.get("expand") is not None):
                templates.append(result)
                continue
            graph = result["expand"]
            renamed = {str(child): f"{node_id}.{call_index}.{child}" for child in graph}

            def remap(value: Any, renamed: dict[str, str] = renamed) -> Any:
                if is_link(value) or isinstance(value, Link):
                    return Link(renamed.get(str(value[0]), str(value[0])), int(value[1]))
                return value

            for child, data in graph.items():
                child_node = PromptNode(renamed[str(child)], data["class_type"],
                                        {k: remap(v) for k, v in data.get("inputs", {}).items()})
                if child_node.class_type not in self.registry:
                    raise ValueError(f"node {node_id} expanded into unknown node type {child_node.class_type!r}")
                self.dyn.add_ephemeral_node(child_node, node_id, data.get("override_display_id", display))
            values = tuple(remap(v) for v in result.get("result", ()))
            templates.append({"result": values, "ui": result.get("ui")})
            deps.update(v.node for v in values if isinstance(v, Link) and v.node not in self.entries)
        self.expansions[node_id] = templates
        self.wait_for(node_id, deps)

    def finish(self, node_id: str, definition: NodeDefinition, results: list[Any]) -> None:
        # As ComfyUI: a node's outputs are the values it returned, however many RETURN_TYPES declares. More are
        # kept (a pack's "any number of outputs" node links past its declared slots); fewer (an output node that
        # returns only {"ui": ...}) leave the rest without a value, which fails only a node that links to one.
        n = len(definition.return_types)
        ui: dict[str, Any] | None = None
        returned: list[Any] = []
        for result in results:
            values: Any = result
            if isinstance(result, dict):
                if result.get("ui"):
                    ui = ui or {}
                    for key, value in result["ui"].items():
                        # Tuples too, as ComfyUI merges them: SaveAnimatedWEBP's {"animated": (True,)} -> [True].
                        ui.setdefault(key, []).extend(value if isinstance(value, (list, tuple)) else [value])
                values = result.get("result", ())
            if isinstance(values, ExecutionBlocker):
                values = (values,) * n
            if values is None:
                values = ()
            if not isinstance(values, (tuple, list)):
                raise TypeError(f"{definition.name} returned a {type(values).__name__}, not a tuple of its "
                                f"{n} outputs ({', '.join(definition.return_types) or 'none'})")
            returned.append(values)
        # No call at all (mapped over an empty list) gives every output as an empty list, none missing.
        given = min((len(values) for values in returned), default=n)
        outputs: tuple[list[Any], ...] = tuple([] for _ in range(max(n, *(len(v) for v in returned), 0)))
        for values in returned:
            for slot, value in enumerate(values):
                if isinstance(value, Link):
                    outputs[slot].extend(self.entries[value.node].outputs[value.slot])
                elif (slot < n and definition.output_is_list[slot]) and isinstance(value, (list, tuple)):
                    outputs[slot].extend(value)
                else:
                    outputs[slot].append(value)
        entry = CacheEntry(outputs, ui, given=None if given >= len(outputs) else given)
        self.cache.put(self.sigs[node_id] if node_id in self.sigs else self.signature(node_id), entry)
        self.result.executed.append(node_id)
        self.resolve(node_id, entry)
        if ui is not None:
            display = self.dyn.get_display_node_id(node_id)
            self.emit("executed", {"node": node_id, "display_node": display, "output": ui,
                                   "prompt_id": self.prompt_id})

    def failure_payload(self, node_id: str | None, exc: BaseException, tb: list[str],
                        inputs: dict[str, list[Any]] | None = None) -> dict[str, Any]:
        return {
            "prompt_id": self.prompt_id,
            "node_id": node_id,
            "node_type": self.dyn.node(node_id).class_type if node_id else None,
            "executed": list(self.result.executed),
            # An error standing for one raised in another process (a pack host) carries that one's message and type.
            "exception_message": getattr(exc, "hearth_exception_message", None) or str(exc),
            "exception_type": getattr(exc, "hearth_exception_type", None)
            or f"{type(exc).__module__}.{type(exc).__qualname__}",
            "traceback": tb,
            "current_inputs": {k: [_short(v) for v in vs] for k, vs in (inputs or {}).items()},
            "current_outputs": list(self.entries),
            "timestamp": _now_ms(),
        }


def _first(values: list[Any]) -> Any:
    return values[0] if values else None


def _blocker_in(kwargs: Mapping[str, Any]) -> ExecutionBlocker | None:
    for value in kwargs.values():
        if isinstance(value, ExecutionBlocker):
            return value
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."
