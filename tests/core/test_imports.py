"""The core stays light: the executor, the plugin manager and node listing never import torch."""

from __future__ import annotations

import subprocess
import sys


def test_executor_and_registry_do_not_import_torch() -> None:
    code = ("import sys; import hearth.core.executor, hearth.core.executor.queue, hearth.core.runtime; "
            "rt = hearth.core.runtime.Runtime.build(entry_points=False); rt.call(rt.nodes.object_info); "
            "rt.executor; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
