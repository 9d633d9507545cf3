"""Execution: events, lazy inputs, expansion, lists, async concurrency, blockers, failures and interrupts."""

from __future__ import annotations

import time
from typing import Any

import pytest
import toy_nodes
from toy_nodes import CALLS

from hearth.core.executor import Executor


@pytest.fixture(autouse=True)
def reset_calls() -> None:
    CALLS.clear()


@pytest.fixture
def executor() -> Executor:
    return Executor(toy_nodes.registry(), cache="lru:1000")


def show(value: Any, node: str = "out") -> dict[str, Any]:
    return {node: {"class_type": "Show", "inputs": {"value": value}}}


def test_events_have_comfyui_names_and_payloads(executor: Executor) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    prompt = {"1": {"class_type": "Int", "inputs": {"value": 2}}, **show(["1", 0])}
    result = executor.run(prompt, prompt_id="p", emit=lambda e, d: events.append((e, d)))
    names = [e for e, _ in events]
    assert names == ["execution_start", "execution_cached", "executing", "executing", "executed",
                     "execution_success", "executing"]
    data = dict(events)
    assert data["execution_cached"]["nodes"] == [] and data["execution_cached"]["prompt_id"] == "p"
    assert events[2][1] == {"node": "1", "display_node": "1", "prompt_id": "p"}
    assert data["executed"] == {"node": "out", "display_node": "out", "output": {"value": [2]}, "prompt_id": "p"}
    assert events[-1][1] == {"node": None, "display_node": None, "prompt_id": "p"}
    assert isinstance(data["execution_start"]["timestamp"], int)
    assert [m[0] for m in result.messages] == ["execution_start", "execution_cached", "execution_success"]

    events.clear()
    executor.run(prompt, prompt_id="q", emit=lambda e, d: events.append((e, d)))
    assert dict(events)["execution_cached"]["nodes"] == ["out", "1"] or \
        sorted(dict(events)["execution_cached"]["nodes"]) == ["1", "out"]


def test_lazy_inputs_evaluate_only_the_branch_asked_for(executor: Executor) -> None:
    prompt = {"a": {"class_type": "Int", "inputs": {"value": 1}},
              "bad": {"class_type": "Fail", "inputs": {"value": 0}},
              "s": {"class_type": "Switch", "inputs": {"use_a": True, "a": ["a", 0], "b": ["bad", 0]}},
              **show(["s", 0])}
    result = executor.run(prompt)
    assert result.ok and result.outputs["out"] == {"value": [1]}
    assert "Fail" not in CALLS and CALLS.count("Switch") == 1
    prompt["s"]["inputs"]["use_a"] = False
    failed = executor.run(prompt)
    assert failed.status == "error" and failed.error["node_id"] == "bad"


def test_expansion_runs_the_subgraph_and_caches(executor: Executor) -> None:
    events: list[tuple[str, Any]] = []
    prompt = {"m": {"class_type": "AddMany", "inputs": {"value": 5, "times": 3}}, **show(["m", 0])}
    result = executor.run(prompt, emit=lambda e, d: events.append((e, d)))
    assert result.outputs["out"] == {"value": [8]}
    assert CALLS == ["AddMany", "Int", "Add", "Add", "Add", "Show"]
    executing = [d for e, d in events if e == "executing" and d["node"]]
    assert {"node": "m.0.add0", "display_node": "m", "prompt_id": result.prompt_id} in executing
    CALLS.clear()
    assert executor.run(prompt).outputs["out"] == {"value": [8]} and CALLS == []


def test_list_outputs_map_over_nodes_and_input_is_list_gathers(executor: Executor) -> None:
    prompt = {"r": {"class_type": "Range", "inputs": {"count": 3}},
              "add": {"class_type": "Add", "inputs": {"a": ["r", 0], "b": 10}},
              "total": {"class_type": "Total", "inputs": {"values": ["add", 0]}},
              **show(["add", 0], "each"), **show(["total", 0], "sum")}
    result = executor.run(prompt)
    assert result.outputs["each"] == {"value": [10, 11, 12]}
    assert result.outputs["sum"] == {"value": [33]}
    assert CALLS.count("Add") == 3 and CALLS.count("Total") == 1


def test_async_nodes_wait_concurrently(executor: Executor) -> None:
    prompt = {"1": {"class_type": "Int", "inputs": {"value": 1}},
              "w1": {"class_type": "Wait", "inputs": {"value": ["1", 0], "seconds": 0.3}},
              "w2": {"class_type": "Wait", "inputs": {"value": ["1", 0], "seconds": 0.3}},
              **show(["w1", 0], "o1"), **show(["w2", 0], "o2")}
    start = time.perf_counter()
    result = executor.run(prompt)
    elapsed = time.perf_counter() - start
    assert result.ok and result.outputs == {"o1": {"value": [1]}, "o2": {"value": [1]}}
    assert elapsed < 0.5, f"two 0.3 s async nodes took {elapsed:.2f} s: they did not overlap"


def test_blocker_without_message_skips_the_branch_silently(executor: Executor) -> None:
    events: list[str] = []
    prompt = {"1": {"class_type": "Int", "inputs": {"value": -1}},
              "b": {"class_type": "Block", "inputs": {"value": ["1", 0], "message": ""}},
              "add": {"class_type": "Add", "inputs": {"a": ["b", 0], "b": 1}}, **show(["add", 0])}
    result = executor.run(prompt, emit=lambda e, d: events.append(e))
    assert result.ok and "Add" not in CALLS and "Show" not in CALLS
    assert "execution_error" not in events


def test_blocker_with_message_reports_it_once(executor: Executor) -> None:
    errors: list[dict[str, Any]] = []
    prompt = {"1": {"class_type": "Int", "inputs": {"value": -1}},
              "b": {"class_type": "Block", "inputs": {"value": ["1", 0], "message": "no faces found"}},
              "add": {"class_type": "Add", "inputs": {"a": ["b", 0], "b": 1}}, **show(["add", 0])}
    executor.run(prompt, emit=lambda e, d: errors.append(d) if e == "execution_error" else None)
    assert len(errors) == 1
    assert errors[0]["exception_message"] == "Execution Blocked: no faces found"
    assert errors[0]["node_id"] == "add" and errors[0]["exception_type"] == "ExecutionBlocked"


def test_node_error_payload(executor: Executor) -> None:
    prompt = {"1": {"class_type": "Int", "inputs": {"value": 4}},
              "f": {"class_type": "Fail", "inputs": {"value": ["1", 0]}}, **show(["f", 0])}
    result = executor.run(prompt, prompt_id="p")
    assert result.status == "error"
    err = result.error
    assert (err["node_id"], err["node_type"], err["exception_message"]) == ("f", "Fail", "bad value 4")
    assert err["exception_type"] == "builtins.ValueError"
    assert any("bad value" in line for line in err["traceback"])
    assert err["current_inputs"] == {"value": ["4"]} and err["executed"] == ["1"]
    assert result.messages[-1] == ("execution_error", err)


def test_a_node_may_return_more_or_fewer_values_than_it_declares_as_in_comfyui(executor: Executor) -> None:
    # ComfyUI keeps what a node returned: extra values stay (packs' "any number of outputs" nodes), an output node
    # that returns only {"ui": ...} runs; only a node that links to a value never given fails, saying so.
    from hearth.core.node_registry import NodeRegistry

    class TooMany:
        RETURN_TYPES = ("INT",)
        FUNCTION = "run"

        @classmethod
        def INPUT_TYPES(cls) -> dict[str, Any]:
            return {"required": {}}

        def run(self) -> tuple[int, int]:
            return (1, 2)

    class UiOnly:
        RETURN_TYPES = ("INT",)
        FUNCTION = "run"
        OUTPUT_NODE = True

        @classmethod
        def INPUT_TYPES(cls) -> dict[str, Any]:
            return {"required": {}}

        def run(self) -> dict[str, Any]:
            return {"ui": {"text": ["shown"]}}

    class NotATuple(TooMany):
        def run(self) -> int:  # type: ignore[override]
            return 3

    registry = NodeRegistry.from_classes({"TooMany": TooMany, "UiOnly": UiOnly, "NotATuple": NotATuple,
                                          "Show": toy_nodes.Show})
    run = Executor(registry).run
    more = run({"1": {"class_type": "TooMany", "inputs": {}}, **show(["1", 0])})
    assert more.ok, more.error
    fewer = run({"1": {"class_type": "UiOnly", "inputs": {}}})
    assert fewer.ok and fewer.outputs["1"] == {"text": ["shown"]}
    linked = run({"1": {"class_type": "UiOnly", "inputs": {}}, **show(["1", 0])})
    assert linked.status == "error"
    assert "links to output 0 of node 1 (UiOnly), which returned no value for it" in linked.error["exception_message"]
    wrong = run({"1": {"class_type": "NotATuple", "inputs": {}}, **show(["1", 0])})
    assert wrong.error["exception_message"] == "NotATuple returned a int, not a tuple of its 1 outputs (INT)"


def test_a_node_mapped_over_an_empty_list_gives_empty_outputs_not_missing_ones(executor: Executor) -> None:
    from hearth.core.node_registry import NodeRegistry

    class NoInts:
        RETURN_TYPES = ("INT",)
        OUTPUT_IS_LIST = (True,)
        FUNCTION = "run"

        @classmethod
        def INPUT_TYPES(cls) -> dict[str, Any]:
            return {"required": {}}

        def run(self) -> tuple[list[int]]:
            return ([],)

    registry = NodeRegistry.from_classes({"NoInts": NoInts, "Add": toy_nodes.Add, "Show": toy_nodes.Show})
    result = Executor(registry).run({"1": {"class_type": "NoInts", "inputs": {}},
                                     "2": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 1}}, **show(["2", 0])})
    assert result.ok, result.error  # Add ran for no element; Show got an empty list, as before


def test_interrupt_between_nodes(executor: Executor) -> None:
    prompt = {"1": {"class_type": "Int", "inputs": {"value": 1}},
              "2": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 1}}, **show(["2", 0])}

    def on_event(event: str, data: dict[str, Any]) -> None:
        if event == "executing" and data["node"] == "2":
            executor.interrupt()

    events: list[tuple[str, Any]] = []
    result = executor.run(prompt, emit=lambda e, d: (events.append((e, d)), on_event(e, d)))
    assert result.status == "interrupted"
    assert CALLS == ["Int"]
    interrupted = dict(events)["execution_interrupted"]
    assert interrupted["node_id"] == "2" and interrupted["executed"] == ["1"]
    assert executor.run(prompt).ok  # the next prompt is not interrupted


def test_interrupt_at_a_progress_tick(executor: Executor) -> None:
    prompt = {"1": {"class_type": "Int", "inputs": {"value": 1}},
              "slow": {"class_type": "Slow", "inputs": {"value": ["1", 0], "steps": 50}}, **show(["slow", 0])}
    ticks: list[int] = []

    def on_event(event: str, data: dict[str, Any]) -> None:
        if event == "progress":
            ticks.append(data["value"])
            assert data["max"] == 50 and data["node"] == "slow"
            if data["value"] == 3:
                executor.interrupt()

    result = executor.run(prompt, emit=on_event)
    assert result.status == "interrupted"
    assert ticks == [1, 2, 3]
    assert result.messages[-1][1]["node_id"] == "slow"


def test_identical_nodes_run_once_unless_not_idempotent(executor: Executor) -> None:
    toy_nodes.Counter.runs = 0
    prompt = {"i1": {"class_type": "Int", "inputs": {"value": 3}}, "i2": {"class_type": "Int", "inputs": {"value": 3}},
              "c1": {"class_type": "Counter", "inputs": {}}, "c2": {"class_type": "Counter", "inputs": {}},
              **show(["i1", 0], "o1"), **show(["i2", 0], "o2"), **show(["c1", 0], "o3"), **show(["c2", 0], "o4")}
    result = executor.run(prompt)
    assert CALLS.count("Int") == 1, "two identical nodes should share one execution"
    assert sorted([result.outputs["o3"]["value"][0], result.outputs["o4"]["value"][0]]) == [1, 2]


def test_is_changed_controls_reuse() -> None:
    from hearth.core.node_registry import NodeRegistry

    state = {"version": 1, "runs": 0}

    class Source:
        RETURN_TYPES = ("INT",)
        FUNCTION = "run"

        @classmethod
        def INPUT_TYPES(cls) -> dict[str, Any]:
            return {"required": {"name": ("STRING", {"default": "x"})}}

        @classmethod
        def IS_CHANGED(cls, name: str) -> Any:
            return state["version"]

        def run(self, name: str) -> tuple[int]:
            state["runs"] += 1
            return (state["version"],)

    executor = Executor(NodeRegistry.from_classes({"Source": Source, "Show": toy_nodes.Show}))
    prompt = {"s": {"class_type": "Source", "inputs": {"name": "x"}}, **show(["s", 0])}
    executor.run(prompt)
    executor.run(prompt)
    assert state["runs"] == 1
    state["version"] = 2
    assert executor.run(prompt).outputs["out"] == {"value": [2]} and state["runs"] == 2
    state["version"] = float("nan")  # ComfyUI's convention for "always changed"
    executor.run(prompt)
    executor.run(prompt)
    assert state["runs"] == 4


def test_hidden_inputs() -> None:
    from hearth.core.node_registry import NodeRegistry

    class Hidden:
        RETURN_TYPES = ()
        FUNCTION = "run"
        OUTPUT_NODE = True

        @classmethod
        def INPUT_TYPES(cls) -> dict[str, Any]:
            return {"required": {}, "hidden": {"uid": "UNIQUE_ID", "prompt": "PROMPT", "png": "EXTRA_PNGINFO",
                                               "dyn": "DYNPROMPT"}}

        def run(self, uid: str, prompt: Any, png: Any, dyn: Any) -> dict[str, Any]:
            return {"ui": {"seen": [uid, sorted(prompt), png, dyn.get_node(uid)["class_type"]]}}

    executor = Executor(NodeRegistry.from_classes({"Hidden": Hidden}))
    result = executor.run({"7": {"class_type": "Hidden", "inputs": {}}},
                          extra_data={"extra_pnginfo": {"workflow": {"nodes": []}}})
    assert result.outputs["7"]["seen"] == ["7", ["7"], {"workflow": {"nodes": []}}, "Hidden"]
