from .utils import ByPassTypeTuple, ContainsAll, TautologyStr, floatOrInt, imageOrLatent


class RulesEmptyLatent:
    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"frames": ("INT", {"default": 2, "min": 1})}}

    RETURN_TYPES = ("LATENT", "INT")
    FUNCTION = "make"
    CATEGORY = "rules/video"

    def make(self, frames):
        return ({"samples": [0] * frames}, frames)


class RulesVideoCombine:
    @classmethod
    def INPUT_TYPES(s):
        return {
            "required": {
                "images": (imageOrLatent,),
                "frame_rate": (floatOrInt, {"default": 8, "min": 1, "step": 1}),
                "format": (["image/gif", "video/h264-mp4"],),
            },
            "hidden": ContainsAll({"prompt": "PROMPT", "unique_id": "UNIQUE_ID"}),
        }

    RETURN_TYPES = ("VHS_FILENAMES",)
    OUTPUT_NODE = True
    FUNCTION = "combine"
    CATEGORY = "rules/video"

    def combine(self, images, frame_rate, format, prompt=None, unique_id=None, **kwargs):
        frames = len(images["samples"]) if isinstance(images, dict) else len(images)
        return {"ui": {"text": [f"{frames} frames at {frame_rate} as {format}", f"extra widgets {sorted(kwargs)}"]},
                "result": ((False, []),)}


class RulesInversedSwitch:
    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"select": ("INT", {"default": 1, "min": 1}), "input": (TautologyStr("*"),)}}

    RETURN_TYPES = ByPassTypeTuple((TautologyStr("*"),))
    FUNCTION = "doit"
    CATEGORY = "rules/video"

    def doit(self, select, input):
        return tuple(input if i + 1 == select else None for i in range(3))


NODE_CLASS_MAPPINGS = {"Rules Empty Latent": RulesEmptyLatent, "Rules Video Combine": RulesVideoCombine,
                       "Rules Inversed Switch": RulesInversedSwitch}
