"""A ComfyUI-format pack for the server tests: a slow node that reports progress, a previewing node, a web folder."""

import time

from PIL import Image

from hearth.core import context


class SlowNode:
    """Sleeps ``seconds`` in ``steps`` ticks, reporting progress (and so honouring interrupts) at each one."""

    CATEGORY = "testing"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"label": ("STRING", {"default": "slow"}),
                             "seconds": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 60.0}),
                             "steps": ("INT", {"default": 4, "min": 1, "max": 1000})}}

    def run(self, label, seconds, steps):
        for step in range(steps):
            time.sleep(seconds / steps)
            context.progress(step + 1, steps)
        return {"ui": {"text": [label]}, "result": (label,)}


class PreviewNode:
    """Sends one live preview (a red square) with its progress, as a sampler would."""

    CATEGORY = "testing"
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"label": ("STRING", {"default": "preview"})}}

    def run(self, label):
        context.progress(1, 2, ("JPEG", Image.new("RGB", (16, 16), (255, 0, 0)), 512))
        context.progress(2, 2)
        return {"ui": {"text": [label]}}


class FailNode:
    """Raises, as a node with a bug would."""

    CATEGORY = "testing"
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"message": ("STRING", {"default": "boom"})}}

    def run(self, message):
        raise ValueError(message)


NODE_CLASS_MAPPINGS = {"HearthTestSlow": SlowNode, "HearthTestPreview": PreviewNode, "HearthTestFail": FailNode}
WEB_DIRECTORY = "./web"
