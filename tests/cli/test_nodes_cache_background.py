"""`comfy run --check` with a stale node catalogue: it checks exactly as without the catalogue (no rebuild that
imports torch while the user waits), a detached process rebuilds the catalogue for the next command, and only one
such build runs at a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hearth.cli import catalogue_background
from hearth.cli.catalogue_background import ENV_BACKGROUND, LOCK_STALE_S, lock_path, start_build
from hearth.core.catalogue_key import Fingerprint
from tests.cli.test_lazy_imports import PROBE
from tests.cli.test_nodes_cache import settle, write_pack

REAL_POPEN = subprocess.Popen
WORKFLOW = {"1": {"class_type": "EchoA", "inputs": {"text": "hi"}},
            "2": {"class_type": "PrimitiveInt", "inputs": {"value": 3}},
            "3": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}
BUILD_WAIT_S = 90.0  # a build loads every first-party plugin at low priority on a busy 2-core machine


def check(folder: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """`comfy run --check workflow.json` in a fresh process: its result and the heavy modules it imported."""
    environ = {**os.environ, "HEARTH_CACHE_DIR": str(folder / "cache"), "HEARTH_HOME": str(folder / "home"),
               "HEARTH_ISOLATION": "off", **env}
    for name in ("HEARTH_PLUGINS", "HEARTH_DISABLE_PLUGINS", "HEARTH_CUSTOM_NODES", "COMFY_ENV"):
        environ.pop(name, None)
    if "HEARTH_CATALOGUE" not in env:
        environ.pop("HEARTH_CATALOGUE", None)
    report = folder / "imported.json"
    report.unlink(missing_ok=True)
    result = subprocess.run([sys.executable, "-c", PROBE, "run", "--check", "workflow.json"], cwd=folder,
                            env={**environ, "REPORT": str(report)}, capture_output=True, text=True, timeout=180)
    assert report.exists(), result.stderr
    return result, json.loads(report.read_text())


def wait_for_build(folder: Path, after_ns: int) -> dict:
    """The catalogue file once a build that started after ``after_ns`` has written it and released its lock."""
    deadline = time.monotonic() + BUILD_WAIT_S
    while time.monotonic() < deadline:
        files = list((folder / "cache" / "catalogue").glob("*.json"))
        locks = list((folder / "cache" / "catalogue").glob("*.building"))
        if files and not locks:
            data = json.loads(files[0].read_text())
            if data["built_ns"] > after_ns:
                return data
        time.sleep(0.25)
    raise AssertionError(f"no catalogue built within {BUILD_WAIT_S} s")


def test_a_stale_catalogue_checks_as_without_one_and_is_rebuilt_in_the_background(tmp_path: Path) -> None:
    # Every first-party plugin is installed, but this workflow's nodes need no torch to be checked.
    (tmp_path / "workflow.json").write_text(json.dumps(WORKFLOW))
    write_pack(tmp_path, "pack_a", "EchoA")
    settle(tmp_path)
    background = {ENV_BACKGROUND: "on"}  # this test asks for the build in its own temporary folder
    first, _ = check(tmp_path, **background)  # no catalogue yet: one is built in the background
    assert first.returncode == 0, first.stderr
    wait_for_build(tmp_path, 0)

    write_pack(tmp_path, "pack_a", "EchoA", default="yo")  # the pack is edited: the catalogue is stale
    settle(tmp_path)
    edited_ns = time.time_ns()
    off, off_heavy = check(tmp_path, HEARTH_CATALOGUE="off")
    stale, stale_heavy = check(tmp_path, **background)
    assert (stale.returncode, stale.stdout) == (off.returncode, off.stdout) == (0, "ok: 3 nodes, outputs 3\n")
    assert stale.stderr == off.stderr
    assert "torch" not in off_heavy, off_heavy
    assert "torch" not in stale_heavy, "a stale catalogue is not rebuilt while the user waits (that imports torch)"

    built = wait_for_build(tmp_path, edited_ns)
    assert built["nodes"]["EchoA"]["info"]["input"]["required"]["text"] == ["STRING", {"default": "yo"}]
    fresh, fresh_heavy = check(tmp_path, **background)
    assert (fresh.returncode, fresh.stdout) == (0, off.stdout)
    assert fresh_heavy == [] and "pack pack_a imported" not in fresh.stderr, "the next check uses the new catalogue"


@pytest.fixture
def spawned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The commands start_build starts (none really runs), with the cache in ``tmp_path``."""
    monkeypatch.setenv("HEARTH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(ENV_BACKGROUND, "on")
    started: list[list[str]] = []

    class Popen:
        def __init__(self, command: list[str], **kwargs: object) -> None:
            assert kwargs["start_new_session"] is True and kwargs["stdout"] == subprocess.DEVNULL
            started.append(command)
            self.pid = os.getpid()  # a process that is alive while the test runs

    monkeypatch.setattr(catalogue_background.subprocess, "Popen", Popen)
    return started


KEY = Fingerprint("k", 0, "settings")


def test_one_build_at_a_time_and_an_abandoned_lock_does_not_block(spawned: list[list[str]]) -> None:
    assert start_build(KEY, ["--isolation", "off"]) is True
    assert spawned[0][1:] == ["-m", "hearth.cli.main", "nodes", "--build-catalogue", str(lock_path(KEY)),
                              "--isolation", "off"]
    assert lock_path(KEY).read_text() == str(os.getpid())
    assert start_build(KEY, []) is False and len(spawned) == 1, "a build under way is not started again"

    gone = REAL_POPEN([sys.executable, "-c", "pass"])
    gone.wait()
    lock_path(KEY).write_text(str(gone.pid))  # its build died without removing the lock
    assert start_build(KEY, []) is True and len(spawned) == 2

    lock_path(KEY).write_text("")  # claimed, never started: counts until it is old
    assert start_build(KEY, []) is False
    old = time.time() - LOCK_STALE_S - 60
    os.utime(lock_path(KEY), (old, old))
    assert start_build(KEY, []) is True and len(spawned) == 3


def test_no_build_is_started_inside_a_test_unasked_or_when_turned_off(spawned: list[list[str]],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_BACKGROUND)  # pytest sets PYTEST_CURRENT_TEST: a test's folders outlive no build
    assert start_build(KEY, []) is False
    monkeypatch.setenv(ENV_BACKGROUND, "off")
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    assert start_build(KEY, []) is False
    assert spawned == [] and not lock_path(KEY).exists()
