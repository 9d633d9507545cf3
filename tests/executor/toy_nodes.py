"""Small V1 node classes for executor tests: numbers, lists, lazy switches, expansion, async waits, failures."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hearth.core import context
from hearth.core.node_registry import NodeRegistry
from hearth.core.types import ExecutionBlocker

CALLS: list[str] = []  # node class names in call order, reset by the tests that read it


def _node(name: str, inputs: dict[str, Any], returns: tuple[str, ...], fn: Any, **attrs: Any) -> type:
    def input_types(cls: type) -> dict[str, Any]:
        return inputs

    def run(self: Any, **kwargs: Any) -> Any:
        CALLS.append(name)
        return fn(**kwargs)

    return type(name, (), {"INPUT_TYPES": classmethod(input_types), "RETURN_TYPES": returns, "FUNCTION": "run",
                           "run": run, **attrs})


Int = _node("Int", {"required": {"value": ("INT", {"default": 0, "min": -1000, "max": 1000})}}, ("INT",),
            lambda value: (value,))
Add = _node("Add", {"required": {"a": ("INT",), "b": ("INT", {"default": 1})}}, ("INT",), lambda a, b: (a + b,))
Show = _node("Show", {"required": {"value": ("*",)}}, (), lambda value: {"ui": {"value": [value]}}, OUTPUT_NODE=True)
Text = _node("Text", {"required": {"text": ("STRING", {"default": ""})}}, ("STRING",), lambda text: (text,))
Pick = _node("Pick", {"required": {"mode": (["one", "two"],)}}, ("STRING",), lambda mode: (mode,))
Fail = _node("Fail", {"required": {"value": ("INT",)}}, ("INT",),
             lambda value: (_ for _ in ()).throw(ValueError(f"bad value {value}")))
Range = _node("Range", {"required": {"count": ("INT", {"default": 3})}}, ("INT",),
              lambda count: (list(range(count)),), OUTPUT_IS_LIST=(True,))
Total = _node("Total", {"required": {"values": ("INT",)}}, ("INT",), lambda values: (sum(values),),
              INPUT_IS_LIST=True)
Block = _node("Block", {"required": {"value": ("INT",), "message": ("STRING", {"default": ""})}}, ("INT",),
              lambda value, message: (ExecutionBlocker(message or None) if value < 0 else value,))


class Switch:
    """Evaluates only the branch it picks (lazy inputs)."""

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"use_a": ("BOOLEAN",), "a": ("INT", {"lazy": True}), "b": ("INT", {"lazy": True})}}

    def check_lazy_status(self, use_a: bool, a: Any = None, b: Any = None) -> list[str]:
        return ["a"] if use_a else ["b"]

    def run(self, use_a: bool, a: Any = None, b: Any = None) -> tuple[Any]:
        CALLS.append("Switch")
        return (a if use_a else b,)


class AddMany:
    """Expands into a chain of Add nodes at run time."""

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("INT",), "times": ("INT", {"default": 2, "min": 0})}}

    def run(self, value: int, times: int) -> dict[str, Any]:
        CALLS.append("AddMany")
        graph: dict[str, Any] = {"start": {"class_type": "Int", "inputs": {"value": value}}}
        last = "start"
        for i in range(times):
            graph[f"add{i}"] = {"class_type": "Add", "inputs": {"a": [last, 0], "b": 1}}
            last = f"add{i}"
        return {"result": ([last, 0],), "expand": graph}


class Wait:
    """An async node: sleeps, then passes its value on."""

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("INT",), "seconds": ("FLOAT", {"default": 0.1})}}

    async def run(self, value: int, seconds: float) -> tuple[int]:
        start = time.perf_counter()
        await asyncio.sleep(seconds)
        CALLS.append(f"Wait:{start:.3f}")
        return (value,)


class Slow:
    """Reports progress on every step, so an interrupt lands inside it."""

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("INT",), "steps": ("INT", {"default": 5})}}

    def run(self, value: int, steps: int) -> tuple[int]:
        for step in range(steps):
            context.progress(step + 1, steps)
            time.sleep(0.001)
        return (value,)


class Counter:
    """Not idempotent: must run again on every prompt."""

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    NOT_IDEMPOTENT = True
    runs = 0

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {}}

    def run(self) -> tuple[int]:
        Counter.runs += 1
        return (Counter.runs,)


class Checked:
    """VALIDATE_INPUTS takes over checking of ``value`` (so its own range is not enforced)."""

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("INT", {"min": 0, "max": 10}), "other": ("INT", {"default": 0})}}

    @classmethod
    def VALIDATE_INPUTS(cls, value: int) -> bool | str:
        if value == 99:
            raise RuntimeError("validator crashed")
        return True if value % 2 == 0 else f"value must be even, got {value}"

    def run(self, value: int, other: int) -> tuple[int]:
        return (value,)


NODES = {cls.__name__: cls for cls in (Int, Add, Show, Text, Pick, Fail, Range, Total, Block, Switch, AddMany, Wait,
                                        Slow, Counter, Checked)}


def registry() -> NodeRegistry:
    from hearth.core.executor.essential import register_types

    built = NodeRegistry.from_classes(NODES)
    built.types = {t.name: t for t in register_types()}
    return built
