# A single-file pack that tests the MODEL it gets the way real packs pick their code path: isinstance with
# comfy.model_patcher.ModelPatcher, comfy.model_base classes and comfy.supported_models configs. Run isolated
# (the MODEL is a proxy of Hearth's process there) and in-process.
import comfy.model_base
import comfy.supported_models
from comfy.model_patcher import ModelPatcher


class ModelIsoFacts:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    RETURN_TYPES = ()
    FUNCTION = "facts"
    OUTPUT_NODE = True
    CATEGORY = "model_iso_pack"

    def facts(self, model):
        config = model.model.model_config
        return {"ui": {"facts": [{
            "is_patcher": isinstance(model, ModelPatcher),
            "is_base_model": isinstance(model.model, comfy.model_base.BaseModel),
            "is_sdxl": isinstance(model.model, comfy.model_base.SDXL),
            "config_is_sd15": isinstance(config, comfy.supported_models.SD15),
            "config_is_sdxl": isinstance(config, comfy.supported_models.SDXL),
        }]}}


NODE_CLASS_MAPPINGS = {"ModelIsoFacts": ModelIsoFacts}
