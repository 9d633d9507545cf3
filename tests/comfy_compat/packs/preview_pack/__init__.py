# A pack that subclasses ComfyUI's PreviewImage and imports its helpers lazily, inside the node.
import random

import torch
from nodes import MAX_RESOLUTION, PreviewImage


class NoisePreview(PreviewImage):
    CATEGORY = "test"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"size": ("INT", {"default": 8, "max": MAX_RESOLUTION})}}

    FUNCTION = "show"

    def show(self, size):
        import comfy.utils
        import node_helpers  # noqa: F401 - imported lazily, as packs do

        image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(random.randint(0, 9)))
        image = comfy.utils.common_upscale(image, size * 2, size * 2, "bilinear", "disabled").movedim(1, -1)
        return self.save_images(image, filename_prefix="noise")


NODE_CLASS_MAPPINGS = {"NoisePreview": NoisePreview}
