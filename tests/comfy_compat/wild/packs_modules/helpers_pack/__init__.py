"""A pack using ComfyUI's non-model helper modules inside its nodes, as wild packs do: the running node's context
and progress registry, the type check, execution's helpers, folder_paths' listings, node_helpers, latent_preview's
previewers and the server's queue info."""

import os

import execution
import folder_paths
import latent_preview
import node_helpers
import torch
from comfy.cli_args import PerformanceFeature, args, parser
from comfy_api.latest import Types
from comfy_execution.graph import DynamicPrompt, get_input_info
from comfy_execution.progress import ProgressHandler, add_progress_handler, get_progress_state
from comfy_execution.utils import CurrentNodeContext, get_executing_context
from comfy_execution.validation import validate_node_input
from server import PromptServer

SEEN = []
# Impact Pack wraps the executor's error report at import time.
ORIGINAL_HANDLE_EXECUTION_ERROR = execution.PromptExecutor.handle_execution_error


class Recorder(ProgressHandler):
    def __init__(self):
        super().__init__("helpers_pack.recorder")

    def update_handler(self, node_id, value, max_value, state, prompt_id, image=None):
        SEEN.append((node_id, value, max_value, state["state"].value))


add_progress_handler(Recorder())


class AnyType(str):
    def __ne__(self, other):
        return False


class HelperFacts:
    RETURN_TYPES = ()
    FUNCTION = "facts"
    OUTPUT_NODE = True
    CATEGORY = "tests"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}, "hidden": {"unique_id": "UNIQUE_ID", "dynprompt": "DYNPROMPT"}}

    def facts(self, unique_id, dynprompt):
        ctx = get_executing_context()
        get_progress_state().update_progress(ctx.node_id, 1, 4, None)
        with CurrentNodeContext("elsewhere", "99"):
            inner = get_executing_context()
        os.makedirs(os.path.join(folder_paths.get_input_directory(), "masks", "soft"), exist_ok=True)
        cond = [[torch.zeros(1), {"strength": 1.0}]]
        ranged = node_helpers.conditioning_set_values_with_timestep_range(cond, {"strength": 0.5}, 0.25, 0.75)
        preview = latent_preview.Latent2RGBPreviewer([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]])
        image = preview.decode_latent_to_preview_image("JPEG", torch.zeros(1, 4, 8, 6))
        facts = {
            "context": ctx.node_id == unique_id and ctx.prompt_id != "",
            "inner": (inner.prompt_id, inner.node_id) == ("elsewhere", "99"),
            "after": get_executing_context().node_id == unique_id,
            "types": (validate_node_input("INT", "INT,FLOAT"), validate_node_input("INT,STRING", "INT", strict=True),
                      validate_node_input("IMAGE", AnyType("*")), validate_node_input("IMAGE", "MASK")),
            "full_type_name": execution.full_type_name(ValueError),
            "subfolders": folder_paths.get_input_subfolders(),
            "content": folder_paths.filter_files_content_types(["a.png", "b.mp3", "c.txt"], ["image", "audio"]),
            "user_dir": os.path.basename(folder_paths.get_user_directory()),
            "ranges": [(o.get("start_percent"), o.get("end_percent"), o["strength"]) for _, o in ranged],
            "hasher": node_helpers.hasher()().name,
            "preview": image[1].size if image else None,
            "args": (args.fast == set(), parser.parse_args(["--fast"]).fast is not None, len(PerformanceFeature) > 0,
                     args.port),
            "queue": PromptServer.instance.get_queue_info(),
            "dynprompt": isinstance(dynprompt, DynamicPrompt),
            "input_info": (get_input_info(HelperFacts, "unique_id"), get_input_info(HelperFacts, "nothing")),
            "video_options": (Types.VideoContainer.as_input(), Types.VideoCodec.as_input()),
        }
        return {"ui": {"facts": [facts]}}


NODE_CLASS_MAPPINGS = {"HelperFacts": HelperFacts}
