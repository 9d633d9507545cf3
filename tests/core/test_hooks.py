"""One test per hook: a plugin implementing it changes what a user sees."""

from __future__ import annotations

from typing import Any

from hearth.core.executor import Executor
from hearth.core.hookspecs import hookimpl
from hearth.core.models.formats import ModelFormat
from hearth.core.plugins import PluginManager
from hearth.core.types import DataType, Route


class Number:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("INT", {"default": 1})}}

    def run(self, value: int) -> tuple[int]:
        return (value,)


class Show:
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    KIND = "INT"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": (cls.KIND,)}}

    def run(self, value: Any) -> dict[str, Any]:
        if value == 13:
            raise ValueError("unlucky number")
        return {"ui": {"value": [value]}}


class ShowNumberish(Show):
    KIND = "NUMBERISH"


def manager(*plugins: tuple[Any, str]) -> PluginManager:
    pm = PluginManager().load(environ={}, entry_points=False)
    for plugin, name in plugins:
        pm.register(plugin, name)
    return pm


PROMPT = {"1": {"class_type": "Number", "inputs": {"value": 5}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}


class NodesPlugin:
    @hookimpl
    def register_nodes(self) -> dict[str, type]:
        return {"Number": Number, "Show": Show, "ShowNumberish": ShowNumberish}


def test_hook_register_nodes() -> None:
    pm = manager((NodesPlugin(), "numbers"))
    registry = pm.nodes()
    assert registry["Number"].plugin == "numbers"
    assert pm.records["numbers"].node_count == 3
    result = Executor(registry).run(PROMPT)
    assert result.ok and result.outputs == {"2": {"value": [5]}}


def test_hook_register_types() -> None:
    prompt = {"1": {"class_type": "Number", "inputs": {"value": 5}},
              "2": {"class_type": "ShowNumberish", "inputs": {"value": ["1", 0]}}}
    without = Executor(manager((NodesPlugin(), "numbers")).nodes()).run(prompt)
    assert without.validation.node_errors["2"]["errors"][0]["type"] == "return_type_mismatch"

    class Types:
        @hookimpl
        def register_types(self) -> list[DataType]:
            return [DataType("NUMBERISH", "an INT or a FLOAT", accepts={"INT", "FLOAT"})]

    pm = manager((NodesPlugin(), "numbers"), (Types(), "types"))
    assert pm.nodes().types["NUMBERISH"].accepts == {"INT", "FLOAT"}
    assert Executor(pm.nodes()).run(prompt).outputs == {"2": {"value": [5]}}


def test_hook_register_model_formats() -> None:
    fmt = ModelFormat("toy", {"toy.weight": (4, 4)}, prefixes=("toy.",))

    class Formats:
        @hookimpl
        def register_model_formats(self) -> list[ModelFormat]:
            return [fmt]

    assert fmt in manager((Formats(), "toy")).model_formats()


def test_hook_register_samplers() -> None:
    def mine(model: Any, x: Any, sigmas: Any, **kw: Any) -> Any:
        return x

    def theirs(model: Any, x: Any, sigmas: Any, **kw: Any) -> Any:
        return x

    class A:
        @hookimpl
        def register_samplers(self) -> dict[str, Any]:
            return {"toy": mine, "only_a": mine}

    class B:
        @hookimpl
        def register_samplers(self) -> dict[str, Any]:
            return {"toy": theirs}

    pm = manager((B(), "b_plugin"), (A(), "a_plugin"))
    samplers = pm.samplers()
    assert samplers["toy"] is mine  # same tier: the plugin name that sorts first wins, whatever the order
    assert samplers["only_a"] is mine
    assert any("sampler 'toy' from plugin 'b_plugin' is shadowed by plugin 'a_plugin'" in w for w in pm.warnings)


def test_hook_register_schedulers() -> None:
    def linear(n: int, sigma_min: float, sigma_max: float, device: Any = None) -> list[float]:
        return [sigma_max - i * (sigma_max - sigma_min) / (n - 1) for i in range(n)] + [0.0]

    class Schedules:
        @hookimpl
        def register_schedulers(self) -> dict[str, Any]:
            return {"toy_linear": linear}

    pm = manager((Schedules(), "sched"))
    assert pm.schedulers()["toy_linear"](3, 1.0, 3.0) == [3.0, 2.0, 1.0, 0.0]


def test_hook_register_routes() -> None:
    async def status(request: Any) -> dict[str, str]:
        return {"ok": "yes"}

    class Routes:
        @hookimpl
        def register_routes(self) -> list[Route]:
            return [Route("GET", "/toy/status", status)]

    routes = manager((Routes(), "routes")).routes()
    assert [(r.method, r.path) for r in routes] == [("GET", "/toy/status")]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @hookimpl
    def on_prompt_start(self, prompt_id: str, prompt: Any) -> None:
        self.calls.append(("start", prompt_id, sorted(prompt)))

    @hookimpl
    def on_prompt_end(self, prompt_id: str, status: str, outputs: Any) -> None:
        self.calls.append(("end", prompt_id, status, dict(outputs)))

    @hookimpl
    def on_node_error(self, prompt_id: str, node_id: str, class_type: str, error: BaseException,
                      traceback: list[str]) -> None:
        self.calls.append(("error", prompt_id, node_id, class_type, str(error), any("unlucky" in t for t in traceback)))


def _run(value: int) -> Recorder:
    recorder = Recorder()
    pm = manager((NodesPlugin(), "numbers"), (recorder, "recorder"))
    prompt = {"1": {"class_type": "Number", "inputs": {"value": value}},
              "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}
    Executor(pm.nodes(), plugins=pm).run(prompt, prompt_id="p1")
    return recorder


def test_hook_on_prompt_start() -> None:
    assert _run(5).calls[0] == ("start", "p1", ["1", "2"])


def test_hook_on_prompt_end() -> None:
    assert _run(5).calls[-1] == ("end", "p1", "success", {"2": {"value": [5]}})
    assert _run(13).calls[-1] == ("end", "p1", "error", {})


def test_hook_on_node_error() -> None:
    calls = _run(13).calls
    assert ("error", "p1", "2", "Show", "unlucky number", True) in calls
    assert not any(c[0] == "error" for c in _run(5).calls)


def test_a_failing_notification_does_not_stop_the_prompt() -> None:
    class Broken:
        @hookimpl
        def on_prompt_start(self, prompt_id: str) -> None:
            raise RuntimeError("listener bug")

    pm = manager((NodesPlugin(), "numbers"), (Broken(), "broken"))
    result = Executor(pm.nodes(), plugins=pm).run(PROMPT)
    assert result.ok
    assert any("broken" in w and "listener bug" in w for w in pm.warnings)
