"""Hearth turns on PyTorch's transparent huge pages for large CPU tensors before torch is imported (hearth/__init__)."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = ("import os, sys; import hearth; import torch; "
         "print(os.environ.get('THP_MEM_ALLOC_ENABLE'))")


def _run(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if env_value is not None:
        env["THP_MEM_ALLOC_ENABLE"] = env_value
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120,
                          check=True)
    return done.stdout.strip()


def test_importing_hearth_turns_huge_pages_on() -> None:
    assert _run(None) == "1"


def test_a_users_own_setting_wins() -> None:
    assert _run("0") == "0"
