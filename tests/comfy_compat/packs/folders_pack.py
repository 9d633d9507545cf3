# A single-file pack registering model kinds in the ways real packs do.
import os

import folder_paths

HERE = os.path.dirname(os.path.abspath(__file__))

# Declared with no folder, then given one.
if "saved_prompts" not in folder_paths.folder_names_and_paths:
    folder_paths.folder_names_and_paths["saved_prompts"] = ([], {".txt"})
folder_paths.folder_names_and_paths["saved_prompts"][0].append(os.path.join(HERE, "model_pack", "prompts"))

# setdefault, then widen the extensions in place.
_, extensions = folder_paths.folder_names_and_paths.setdefault(
    "inpaint", ([os.path.join(HERE, "model_pack", "inpaint")], set()))
extensions.update([".patch"])

# get with a default, append, assign back.
folders, exts = folder_paths.folder_names_and_paths.get("pack_upscalers", ([], set()))
folders.append(os.path.join(HERE, "model_pack", "upscalers"))
folder_paths.folder_names_and_paths["pack_upscalers"] = (folders, exts | {".pth"})

CUSTOM_NODES = folder_paths.get_folder_paths("custom_nodes")
NODE_CLASS_MAPPINGS = {}
