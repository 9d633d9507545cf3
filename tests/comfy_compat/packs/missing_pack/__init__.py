# A pack that imports ComfyUI internals Hearth lacks next to ones it has: it must load, its other nodes must work,
# and only the nodes that touch a missing name fail, naming it and this pack.
import comfy.samplers
import comfy.sd
from comfy.samplers import (  # the second one does not exist in Hearth
    KSampler,
    sampler_with_a_name_hearth_lacks,
)
from comfy.sd import load_diffusion_model_from_a_place_hearth_lacks  # noqa: F401 - imported, never used
from nodes import KSampler as NodesKSampler  # noqa: F401 - Hearth has it
from nodes import NodeHearthLacks  # noqa: F401


class CountSamplers:
    CATEGORY = "test/missing"
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def run(self):
        return (len(KSampler.SAMPLERS),)


class UsesMissingSampler:
    CATEGORY = "test/missing"
    OUTPUT_NODE = True
    RETURN_TYPES = ("SAMPLER",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def run(self):
        return (sampler_with_a_name_hearth_lacks("euler"),)


class UsesMissingAttribute:
    CATEGORY = "test/missing"
    OUTPUT_NODE = True
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def run(self):
        return (comfy.sd.load_unet_the_old_way("unet.safetensors"),)


NODE_CLASS_MAPPINGS = {"CountSamplers": CountSamplers, "UsesMissingSampler": UsesMissingSampler,
                       "UsesMissingAttribute": UsesMissingAttribute}
