"""Validation stays linear in the prompt's size: large cyclic graphs, many outputs, many back links.

Each graph here took minutes to hours with the old walk (a cycle excerpt per back link and per node, every output
listed on every failing node: quadratic work and a quadratic answer). The time bounds are generous on purpose;
bench/validation.py prints the real figures.
"""

from __future__ import annotations

import json
import time
from typing import Any

import toy_nodes

from hearth.core.executor import Executor
from hearth.core.executor.validation import MAX_DEPENDENT_OUTPUTS


def validate(prompt: dict[str, Any]) -> tuple[Any, str, float]:
    start = time.perf_counter()
    result = Executor(toy_nodes.registry()).validate(prompt)
    answer = json.dumps(result.response())
    return result, answer, time.perf_counter() - start


def ring(n: int, *, sinks: str = "one") -> dict[str, Any]:
    """``n`` Add nodes each fed by the one before, the first by the last; a Show on one node or on every node."""
    prompt: dict[str, Any] = {str(i): {"class_type": "Add", "inputs": {"a": [str((i - 1) % n), 0], "b": 1}}
                              for i in range(n)}
    for i in range(n if sinks == "every" else 1):
        prompt[f"show{i}"] = {"class_type": "Show", "inputs": {"value": [str(i), 0]}}
    return prompt


def test_a_20000_node_ring_with_an_output_on_every_node_is_refused_quickly() -> None:
    n = 20_000
    result, answer, seconds = validate(ring(n, sinks="every"))
    assert seconds < 60, f"{seconds:.1f}s"  # the old walk: about 15 s at 4,000 nodes, growing as n squared
    assert len(answer) < 2_000 * n  # linear: the old answer held n lists of n outputs
    assert result.error["type"] == "prompt_outputs_failed_validation"
    assert len(result.node_errors) == n
    first = result.node_errors["0"]
    assert first["dependent_outputs"] == [f"show{i}" for i in range(MAX_DEPENDENT_OUTPUTS)]
    (cycle_error,) = first["errors"]
    assert cycle_error["type"] == "dependency_cycle"
    assert cycle_error["extra_info"]["cycle_length"] == n
    assert f"... {n - 19} more ..." in cycle_error["details"]  # 20 of its n + 1 entries shown
    assert len(result.error["details"].splitlines()) == 101  # a summary, not 20,000 lines


def test_a_long_ring_names_its_head_and_tail_in_link_order() -> None:
    result, _, _ = validate(ring(100))
    details = result.node_errors["0"]["errors"][0]["details"]
    # From the output's node along input links: 0 is fed by 99, 99 by 98, ...
    assert details.startswith("0 -> 99 -> 98 -> ") and details.endswith(" -> 2 -> 1 -> 0")
    assert "... 81 more ..." in details


def test_many_back_links_into_one_long_path() -> None:
    # Node i takes one input from i-1 and one from i+1: every link back is its own small cycle, on a path of n
    # nodes. The old walk searched the path for each one (quadratic) before reporting it.
    n = 20_000
    prompt: dict[str, Any] = {"0": {"class_type": "Int", "inputs": {"value": 1}}}
    for i in range(1, n):
        prompt[str(i)] = {"class_type": "Add", "inputs": {"a": [str(i - 1), 0], "b": [str(min(i + 1, n - 1)), 0]}}
    prompt["show"] = {"class_type": "Show", "inputs": {"value": [str(n - 1), 0]}}
    result, answer, seconds = validate(prompt)
    assert seconds < 60, f"{seconds:.1f}s"
    assert len(answer) < 2_000 * n
    assert result.node_errors[str(n - 1)]["errors"][0]["type"] == "dependency_cycle"
    assert "0" not in result.node_errors  # the Int feeding the cycle is fine


def test_a_cycle_off_to_one_side_does_not_stop_the_valid_output() -> None:
    prompt = {**ring(3), "int": {"class_type": "Int", "inputs": {"value": 1}},
              "ok": {"class_type": "Show", "inputs": {"value": ["int", 0]}}}
    result, _, _ = validate(prompt)
    assert result.ok and result.outputs == ["ok"]
    assert set(result.node_errors) == {"0", "1", "2"}
    assert result.node_errors["1"]["dependent_outputs"] == ["show0"]


def test_a_node_linked_to_itself_is_a_cycle() -> None:
    result, _, _ = validate({"1": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 1}},
                             "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}})
    assert result.node_errors["1"]["errors"][0]["details"] == "1 -> 1"
    assert result.node_errors["1"]["dependent_outputs"] == ["2"]
