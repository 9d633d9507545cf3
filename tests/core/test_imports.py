"""The core stays light: the executor, the plugin manager and node listing never import torch."""

from __future__ import annotations

import subprocess
import sys


def test_executor_and_registry_do_not_import_torch() -> None:
    code = ("import sys; import hearth.core.executor, hearth.core.executor.queue, hearth.core.plugins; "
            "pm = hearth.core.plugins.load_plugins(entry_points=False); pm.nodes().object_info(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
