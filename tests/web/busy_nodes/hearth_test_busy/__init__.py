"""A ComfyUI-format pack for the responsiveness tests: nodes that keep the worker busy in different ways.

HearthTestBusy spins the CPU in pure Python (holding the GIL except at the interpreter's switches) without ever
reporting progress; HearthTestAsyncWait is an async node that awaits for a long time, as a node calling a remote
API would.
"""

import asyncio
import time

from hearth.core.builtin_nodes import strings

# The server test measures answers over 2 s while RegexReplace backtracks; under the real 1 s limit a slow answer on
# a loaded machine could not be told from one that waited for the regex to give up. The limit itself is tested in
# tests/builtin_nodes/test_regex_limits.py.
strings.REGEX_TIME_LIMIT = 4.0


class BusyNode:
    """Spins for ``seconds`` doing arithmetic; never reports progress or looks at the interrupt flag."""

    CATEGORY = "testing"
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seconds": ("FLOAT", {"default": 3.0, "min": 0.0, "max": 60.0})}}

    def run(self, seconds):
        end, total = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            for i in range(10_000):
                total = (total + i * i) % 1_000_003
        return {"ui": {"text": [str(total)]}, "result": (total,)}


class AsyncWaitNode:
    """Awaits ``seconds`` without a progress tick."""

    CATEGORY = "testing"
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seconds": ("FLOAT", {"default": 30.0, "min": 0.0, "max": 600.0})}}

    async def run(self, seconds):
        await asyncio.sleep(seconds)
        return {"ui": {"text": ["waited"]}}


NODE_CLASS_MAPPINGS = {"HearthTestBusy": BusyNode, "HearthTestAsyncWait": AsyncWaitNode}
