"""A pack whose prestartup_script.py registers a model-folder kind before any pack loads."""

import folder_paths


class PrestartupStyle:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"style": (folder_paths.get_filename_list("prestartup_styles"),)}}

    RETURN_TYPES = ("STRING",)
    FUNCTION = "read"
    CATEGORY = "prestartup_pack"
    OUTPUT_NODE = True

    def read(self, style):
        with open(folder_paths.get_full_path("prestartup_styles", style), encoding="utf-8") as f:
            text = f.read().strip()
        return {"ui": {"text": [text]}, "result": (text,)}


NODE_CLASS_MAPPINGS = {"PrestartupStyle": PrestartupStyle}
