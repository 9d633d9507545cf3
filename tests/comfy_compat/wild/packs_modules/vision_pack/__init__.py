"""A pack that imports torchvision at module level for one of its nodes, as many wild packs do."""

import torchvision.transforms.v2 as T
from torchvision import transforms
from torchvision.transforms import ToTensor

try:  # a guarded probe takes its fallback where torchvision is absent, as without Hearth
    import torchvision.transforms.functional as probed  # noqa: F401

    GUARDED = "torchvision"
except ImportError:
    GUARDED = "fallback"


def resize(image, mode=transforms.InterpolationMode.BICUBIC):
    """A default read from a missing name while the pack imports, as packs write resize helpers."""
    return image


class PlainNode:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    CATEGORY = "tests"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def run(self):
        return (resize(5),)


class UsesVision(PlainNode):
    def run(self):
        ToTensor()
        return (0,)


USED = (T, transforms)
NODE_CLASS_MAPPINGS = {"VisionPlain": PlainNode, "UsesVision": UsesVision}
