"""A pack written the way wild packs are: it imports ComfyUI's modules at module level, builds on classes Hearth
may lack, probes for a module ComfyUI does not have, and finds its way around ComfyUI's folder by __file__."""

import contextlib
import os

import comfy
import comfy.cli_args
import comfy.comfy_types
import comfy.comfy_types.node_typing
import comfy.controlnet
import comfy.k_diffusion.sampling
import comfy.latent_formats
import comfy.lora
import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.ops
import comfy.options
import comfy.sample
import comfy.sampler_helpers
import comfy.samplers
import comfy.sd
import comfy.sd1_clip
import comfy.supported_models_base
import comfy.utils
import comfy_api.latest
import comfy_execution.graph
import comfy_execution.graph_utils
import comfy_extras.nodes_mask
import comfyui_version
import execution
import folder_paths
import latent_preview
import node_helpers
import nodes
import server
from app.model_manager import ModelFileManager
from comfy.cli_args import LatentPreviewMethod, args
from comfy.comfy_types.node_typing import (
    IO,
    CheckLazyMixin,
    ComfyNodeABC,
    FileLocator,
    HiddenInputTypeDict,
    InputTypeDict,
    InputTypeOptions,
    MultiSelectOptions,
    RemoteInputOptions,
)
from comfy.ldm.cascade import stage_a
from comfy.ldm.cascade.stage_c import StageC
from server import PromptServer

try:
    import comfy.nonsense_xyz  # noqa: F401 - a feature probe: ComfyUI has no such module
    HAS_NONSENSE = True
except ImportError:
    HAS_NONSENSE = False

# Real packs keep such modules for use inside their nodes; this one only has to get them.
IMPORTED = (comfy.controlnet, comfy.k_diffusion.sampling, comfy.latent_formats, comfy.lora, comfy.model_base,
            comfy.model_management, comfy.model_patcher, comfy.ops, comfy.options, comfy.sample,
            comfy.sampler_helpers, comfy.samplers, comfy.sd, comfy.sd1_clip, comfy.supported_models_base, comfy.utils,
            comfy.comfy_types.node_typing, comfy_api.latest, comfy_execution.graph, comfy_execution.graph_utils,
            comfy_extras.nodes_mask, execution, latent_preview, node_helpers, nodes, IO, CheckLazyMixin, ComfyNodeABC,
            FileLocator, HiddenInputTypeDict, InputTypeDict, InputTypeOptions, MultiSelectOptions, RemoteInputOptions)

# Read while the pack imports (AnimateDiff keeps ComfyUI's classes in a table): a stand-in, so the pack loads.
SAMPLING_TYPES = {"lcm": comfy.utils.a_sampling_type_hearth_lacks}
HAS_FLAG = hasattr(comfy.model_management, "a_flag_hearth_lacks")
try:  # a guarded import takes the pack's own fallback
    from comfy.utils import a_guarded_name_hearth_lacks  # noqa: F401

    GUARDED_FROM = "stand-in"
except ImportError:
    GUARDED_FROM = "fallback"
try:
    GUARDED_ATTR = comfy.utils.another_guarded_name_hearth_lacks
except AttributeError:
    GUARDED_ATTR = "fallback"
try:  # Easy-Use guards so: this except does not catch an ImportError, so the name is a stand-in and the pack loads
    from comfy.utils import a_name_under_another_except_hearth_lacks  # noqa: F401
except FileNotFoundError:
    pass
with contextlib.nullcontext():  # a with block is no guard: still a stand-in, the pack loads
    from comfy.utils import a_name_in_a_with_block_hearth_lacks  # noqa: F401
HAS_USER_MANAGER = hasattr(PromptServer.instance, "user_manager")
HAS_STAGE_D = hasattr(stage_a, "StageD")  # a module Hearth lacks has no names to a probe either
if not hasattr(nodes, "ModulesPackFormats"):  # VideoHelperSuite's probe-then-set: not a missing internal
    nodes.ModulesPackFormats = {}

COMFY_ROOT = os.path.dirname(folder_paths.__file__)
COMFY_PACKAGE = os.path.join(os.path.dirname(comfy.__file__), "k_diffusion")
VERSION = tuple(int(part) for part in comfyui_version.__version__.split(".")[:3])
PREVIEWS = args.preview_method == LatentPreviewMethod.NoPreviews


class PackStageC(StageC):
    """A pack's model class built on a ComfyUI class Hearth lacks: defining it must work, using it fails."""

    DEPTH = 3


class PackStageA(stage_a.StageA):
    def __init__(self, width):
        self.width = width  # the pack's own constructor: ComfyUI's is never called


class PackModelFiles(ModelFileManager):
    pass


class AbstractStage(StageC, ComfyNodeABC):
    """A stand-in base beside an ABC: the class statement must not fail on the metaclasses."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}


if not PromptServer.instance.app.router.frozen:  # KJNodes adds its routes so

    @PromptServer.instance.routes.get("/modules_pack/ping")
    async def ping(request):
        return None


class ListsInput:
    """Lists the input folder in INPUT_TYPES without checking it exists, as VideoHelperSuite's loaders do."""

    RETURN_TYPES = ("STRING",)
    FUNCTION = "pick"
    CATEGORY = "tests"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"file": (sorted(os.listdir(folder_paths.get_input_directory())) or ["none"],)}}

    def pick(self, file):
        return (file,)


class ModulesReport:
    """What the pack saw of ComfyUI's modules while it loaded."""

    RETURN_TYPES = ("STRING",)
    FUNCTION = "report"
    OUTPUT_NODE = True
    CATEGORY = "tests"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def report(self):
        facts = [f"nonsense:{HAS_NONSENSE}", f"root_is_dir:{os.path.isdir(COMFY_ROOT)}",
                 f"k_diffusion_is_dir:{os.path.isdir(COMFY_PACKAGE)}", f"version:{VERSION >= (0, 3, 0)}",
                 f"previews_off:{PREVIEWS}", f"depth:{PackStageC.DEPTH}", f"width:{PackStageA(7).width}",
                 f"server:{PromptServer.instance is server.PromptServer.instance}", f"flag:{HAS_FLAG}", f"stage_d:{HAS_STAGE_D}", f"user_manager:{HAS_USER_MANAGER}",
                 f"guarded:{GUARDED_FROM},{GUARDED_ATTR}",
                 f"abc:{AbstractStage.INPUT_TYPES() == {'required': {}}}"]
        return {"ui": {"text": facts}, "result": (" ".join(facts),)}


class UsesStandIn:
    """Builds the pack's StageC subclass, which takes its constructor from ComfyUI's StageC."""

    RETURN_TYPES = ("INT",)
    FUNCTION = "build"
    CATEGORY = "tests"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def build(self):
        PackStageC()
        return (1,)


NODE_CLASS_MAPPINGS = {"ModulesReport": ModulesReport, "UsesStandIn": UsesStandIn, "ListsInput": ListsInput}
