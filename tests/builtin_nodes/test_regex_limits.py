"""The regex nodes cannot freeze the server: a time limit, interrupts honoured, the GIL released while they match."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from hearth.core import context
from hearth.core.builtin_nodes import strings
from hearth.core.context import ExecutionContext, Folders, InterruptProcessing
from tests.builtin_nodes.conftest import call

# Exponential for every backtracking engine, the `regex` one included (each extra "a" doubles the time).
EVIL = r"(a|aa)+$"
EVIL_TEXT = "a" * 60 + "b"


@pytest.fixture
def interrupt() -> Iterator[threading.Event]:
    """A node context, as the executor sets one, whose interrupt flag the test controls."""
    event = threading.Event()
    token = context.enter(ExecutionContext("p", "7", "7", "RegexReplace", Folders(), lambda *_: None, event))
    yield event
    context.leave(token)


def test_issue_pattern_finishes_with_comfyui_semantics() -> None:
    # The issue's report: `(a+)+$` on 27 "a"s blocked the server for 10 s under `re`.
    start = time.monotonic()
    assert call("RegexReplace", string="a" * 27 + "b", regex_pattern=r"(a+)+$", replace="x") == ("a" * 27 + "b",)
    assert call("RegexReplace", string="a" * 27, regex_pattern=r"(a+)+$", replace="x") == ("x",)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize(("name", "extra"), [
    ("RegexReplace", {"replace": "x"}),
    ("RegexMatch", {"case_insensitive": False, "multiline": False, "dotall": False}),
    ("RegexExtract", {"mode": "All Matches", "case_insensitive": False, "multiline": False, "dotall": False,
                      "group_index": 1}),
])
def test_backtracking_pattern_fails_at_the_limit_naming_pattern_and_limit(name: str, extra: dict) -> None:
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"regular expression '\(a\|aa\)\+\$' ran past the 1 s limit") as info:
        call(name, string=EVIL_TEXT, regex_pattern=EVIL, **extra)
    assert "\n" not in str(info.value)
    assert time.monotonic() - start < 10  # unbounded, 60 characters would take years


def test_interrupt_stops_a_running_regex_within_a_second(interrupt: threading.Event,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(strings, "REGEX_TIME_LIMIT", 30.0)  # so only the interrupt can end it early
    threading.Timer(0.3, interrupt.set).start()
    start = time.monotonic()
    with pytest.raises(InterruptProcessing):
        call("RegexReplace", string=EVIL_TEXT, regex_pattern=EVIL, replace="x")
    assert time.monotonic() - start < 1.3


def test_other_threads_run_while_a_regex_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    # Under `re` the matching thread holds the GIL: the event loop's thread would not run at all until it ends.
    monkeypatch.setattr(strings, "REGEX_TIME_LIMIT", 3.0)
    failures: list[BaseException] = []

    def node() -> None:
        try:
            call("RegexReplace", string=EVIL_TEXT, regex_pattern=EVIL, replace="x")
        except ValueError as exc:
            failures.append(exc)

    worker = threading.Thread(target=node)
    worker.start()
    time.sleep(0.2)
    start = time.monotonic()
    ticks = 0
    while worker.is_alive() and ticks < 50:
        time.sleep(0.005)
        ticks += 1
    elapsed = time.monotonic() - start
    worker.join()
    assert ticks == 50 and elapsed < 2.0, f"{ticks} ticks in {elapsed:.2f}s while the regex ran"
    assert failures and "ran past the 3 s limit" in str(failures[0])


def test_bad_replacement_template_is_a_user_error() -> None:
    with pytest.raises(ValueError, match=r"invalid replacement '\\\\d'"):
        call("RegexReplace", string="abc", regex_pattern="b", replace=r"\d")
