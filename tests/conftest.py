"""Every test runs inside a Runtime on its own temporary folders, as every ``comfy`` command runs inside one.

Nodes, the model manager and the ComfyUI modules reach the Runtime through a context variable; a test that needs
another Runtime builds it (``make_runtime``) and activates it, and one that checks behaviour outside every Runtime
runs its code in a fresh ``contextvars.Context()``.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _runtime(hearth_runtime):
    return hearth_runtime
