# A pack written the way ComfyUI packs are: internals imported at module level, its own model kind registered.
import os

import comfy.model_management as mm
import comfy.utils
import folder_paths
from comfy.utils import tiled_scale_with_magic  # Hearth lacks it: the pack must still load
from comfy_execution.graph import ExecutionBlocker
from comfy_execution.graph_utils import GraphBuilder

HERE = os.path.dirname(__file__)
folder_paths.folder_names_and_paths["pack_models"] = ([os.path.join(HERE, "models")], {".bin"})
folder_paths.folder_names_and_paths["loras"][0].append(os.path.join(HERE, "extra_loras"))


class ListPackModels:
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    CATEGORY = "test"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"name": (folder_paths.get_filename_list("pack_models"),)}}

    def run(self, name):
        return (folder_paths.get_full_path("pack_models", name),)


class CountTo:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    CATEGORY = "test"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"steps": ("INT", {"default": 3})}}

    def run(self, steps):
        bar = comfy.utils.ProgressBar(steps)
        for _ in range(steps):
            mm.throw_exception_if_processing_interrupted()
            bar.update(1)
        return (steps,)


class Gate:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    CATEGORY = "test"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0}), "open": ("BOOLEAN", {"default": True})}}

    def run(self, value, open):
        return (value if open else ExecutionBlocker(None),)


class AddOne:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    CATEGORY = "test"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0})}}

    def run(self, value):
        return (value + 1,)


class AddThree:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    CATEGORY = "test"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0})}}

    def run(self, value):
        graph = GraphBuilder()
        node = graph.node("AddOne", value=value)
        for _ in range(2):
            node = graph.node("AddOne", value=node.out(0))
        return {"result": (node.out(0),), "expand": graph.finalize()}


class UsesMissing:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    CATEGORY = "test"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def run(self):
        return (tiled_scale_with_magic(1),)


class Device:
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    CATEGORY = "test"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def run(self):
        return (f"{mm.get_torch_device().type} {mm.intermediate_device()}",)


NODE_CLASS_MAPPINGS = {"ListPackModels": ListPackModels, "CountTo": CountTo, "Gate": Gate, "AddOne": AddOne,
                       "AddThree": AddThree, "UsesMissing": UsesMissing, "PackDevice": Device}
