"""Every test runs inside a Runtime on its own temporary folders, as every ``comfy`` command runs inside one.

Nodes, the model manager and the ComfyUI modules reach the Runtime through a context variable; a test that needs
another Runtime builds it (``make_runtime``) and activates it, and one that checks behaviour outside every Runtime
runs its code in a fresh ``contextvars.Context()``.

Isolation: the CLI's default is ``--isolation untrusted``, which would start a pack host for every custom-node pack
a CLI test loads. The suite runs with ``HEARTH_ISOLATION=off`` (set here, before any fixture starts a server or a
subprocess, so they all inherit it) and keeps testing what each test tests; the isolation tests opt back in with
the ``isolation`` marker (``@pytest.mark.isolation``, or ``pytestmark`` for a module) or the ``isolation``
fixture, which set ``HEARTH_ISOLATION=untrusted`` for the test (``@pytest.mark.isolation("all")`` for another
mode). A subprocess a test starts inherits it; a session-scoped server started before does not.
"""

from __future__ import annotations

import os

import pytest

ENV_ISOLATION = "HEARTH_ISOLATION"
# Also where the user set another mode: the suite's results must not depend on the shell it runs from.
os.environ[ENV_ISOLATION] = "off"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "isolation(mode='untrusted'): run the test with HEARTH_ISOLATION=mode "
                                       "(the suite's default is off)")


@pytest.fixture(autouse=True)
def _runtime(hearth_runtime):
    return hearth_runtime


@pytest.fixture(autouse=True)
def _isolation_marker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = request.node.get_closest_marker("isolation")
    if marker is not None:
        monkeypatch.setenv(ENV_ISOLATION, marker.args[0] if marker.args else marker.kwargs.get("mode", "untrusted"))


@pytest.fixture
def isolation(monkeypatch: pytest.MonkeyPatch) -> str:
    """``HEARTH_ISOLATION=untrusted`` for the test (the CLI's own default); returns the mode."""
    monkeypatch.setenv(ENV_ISOLATION, "untrusted")
    return "untrusted"
