"""describe() and call() across a real pack host: every value type round-trips, the V1 attributes are mirrored,
optional methods and async functions work, events arrive while the call runs, node errors are one line."""

from __future__ import annotations

import logging
import math
import threading

import pytest

from hearth.sandbox.host import NodeError, PackHostError, TrustRequired


def test_describe_mirrors_the_v1_attributes_and_methods(shared_host):
    description = shared_host.describe()
    assert description["display"] == {"echo": "Echo"} and description["notes"] == ["loaded"]
    node = description["nodes"]["WithMethods"]
    attrs = node["attributes"]
    assert attrs["INPUT_TYPES"] == {"required": {"n": ("INT", {"default": 1, "min": 0})}}
    assert attrs["RETURN_TYPES"] == ("INT",) and attrs["RETURN_NAMES"] == ("n",)
    assert attrs["FUNCTION"] == "run" and attrs["OUTPUT_NODE"] is True
    assert node["methods"] == {"IS_CHANGED": True, "VALIDATE_INPUTS": True, "check_lazy_status": False}
    assert node["signatures"]["VALIDATE_INPUTS"] == ["n"]
    assert node["is_async"] is True
    assert description["nodes"]["echo"]["is_async"] is False
    assert shared_host.input_types("echo") == {"required": {}, "optional": {"x": ("*",)}}


def test_the_optional_methods_and_an_async_function_run_in_the_host(shared_host):
    assert shared_host.call("WithMethods", "IS_CHANGED", {"n": 4}) == 40
    assert shared_host.call("WithMethods", "VALIDATE_INPUTS", {"n": -1}) == "n must not be negative"
    assert shared_host.call("WithMethods", "run", {"n": 4}) == (5,)
    assert shared_host.call("async_echo", "run", {"x": [1, 2]}) == ([1, 2],)
    with pytest.raises(PackHostError, match="not a method Hearth calls"):
        shared_host.call("echo", "__init__", {})


VALUES = [
    None, True, False, 0, -1, 2**63 - 1, -(2**63), 2**200, -(3**150), 0.5, -0.0, float("inf"), 1e-308,
    "", "text", "ünïcödé \u2603 \U0001f600", "\ud800 lone surrogate", b"", b"\x00\xffbytes", [], (), {},
    [1, [2, [3, (4, 5)]]], (None, "a", 1.5), {"a": 1, 2: "b", (1, 2): [3], None: {}, 1.5: b"x", True: False},
    {"nested": {"deep": [{"x": (1, (2, (3,)))}]}},
]


@pytest.mark.parametrize("value", VALUES, ids=[repr(v)[:30] for v in VALUES])
def test_every_plain_value_round_trips_with_its_type(shared_host, value):
    (back,) = shared_host.call("echo", "run", {"x": value})
    assert back == value and _types(back) == _types(value)


def test_nan_round_trips(shared_host):
    (back,) = shared_host.call("echo", "run", {"x": float("nan")})
    assert math.isnan(back)
    (back,) = shared_host.call("echo", "run", {"x": bytearray(b"ab")})
    assert back == b"ab" and type(back) is bytes


def _types(value):
    if isinstance(value, (list, tuple)):
        return (type(value), [_types(v) for v in value])
    if isinstance(value, dict):
        return (dict, [(_types(k), _types(v)) for k, v in value.items()])
    return type(value)


def test_a_value_of_no_crossing_type_is_refused_naming_the_pack_and_node(shared_host):
    with pytest.raises(PackHostError) as caught:
        shared_host.call("echo", "run", {"x": {"s": {1, 2}}})
    assert str(caught.value).startswith("pack 'shared': echo cannot be given that input: a set cannot cross")
    assert shared_host.call("echo", "run", {"x": 1}) == (1,)  # the host is fine


def test_a_node_error_is_one_line_with_the_remote_traceback_kept(shared_host):
    with pytest.raises(NodeError) as caught:
        shared_host.call("raise_error", "run", {"x": "bad input\nsecond line"})
    assert str(caught.value) == "pack 'shared': raise_error raised ValueError: bad input"
    assert caught.value.type_name == "ValueError"
    assert "raise ValueError(x)" in caught.value.remote_traceback


def test_trust_required_raised_by_a_bridge_reaches_the_parent(shared_host):
    with pytest.raises(TrustRequired) as caught:
        shared_host.call("trusted_only", "run", {"x": 1})
    assert str(caught.value) == "pack 'shared' must be trusted to run: it uses MODEL.model.diffusion_model"


def test_events_reach_on_event_while_the_call_runs_and_stdout_is_logged_with_the_pack_name(shared_host, caplog,
                                                                                          capsys):
    events = []
    with caplog.at_level(logging.DEBUG, logger="hearth.packhost"):
        result = shared_host.call("progress", "run", {"x": 3}, on_event=lambda kind, data: events.append((kind, data)))
        shared_host.call("echo", "run", {"x": 1})  # the log line may come a moment later
        for _ in range(100):
            if any("hello from the pack" in r.getMessage() for r in caplog.records):
                break
            threading.Event().wait(0.02)
    assert result == ("progress",)
    assert events == [("progress", {"value": i, "max": 3}) for i in (1, 2, 3)]
    assert any(r.getMessage() == "pack shared: hello from the pack on stdout" for r in caplog.records)
    assert "[pack shared] hello from the pack on stdout\n" in capsys.readouterr().err


def test_calls_from_many_threads_each_get_their_own_answer(shared_host):
    results: dict[int, object] = {}

    def worker(i: int) -> None:
        for j in range(10):
            results[i * 100 + j] = shared_host.call("slow_echo", "run", {"x": i * 100 + j})[0]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {k: k for k in results} and len(results) == 40


def test_pack_output_reaches_stderr_without_terminal_escapes_and_in_bounded_lines(shared_host, capsys):
    shared_host.call("noisy", "run", {"x": 20000})
    shared_host.call("echo", "run", {"x": 1})
    err = ""
    for _ in range(100):
        err += capsys.readouterr().err
        if err.count("y") >= 20000:
            break
        threading.Event().wait(0.02)
    lines = [line for line in err.splitlines() if line.startswith("[pack shared] ")]
    assert lines and "cleared" in lines[0] and "\x1b" not in err and "\x07" not in err
    assert sum(line.count("y") for line in lines) == 20000
    assert all(len(line.encode()) <= 8192 + 64 for line in lines)  # cut into bounded lines, nothing lost
