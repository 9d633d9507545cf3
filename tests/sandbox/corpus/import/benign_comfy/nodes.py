# ruff: noqa
# Inert sample pack for the sandbox tests. It is only ever imported inside the isolated child.
class Blend:
    CATEGORY = "sample/image"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "blend"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"a": ("IMAGE",), "b": ("IMAGE",), "mode": (["normal", "multiply"],)},
            "optional": {"factor": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0})},
        }

    def blend(self, a, b, mode, factor=0.5):
        return (a,)


class Caption:
    CATEGORY = "sample/text"
    RETURN_TYPES = ("STRING", "INT")
    RETURN_NAMES = ("text", "length")
    FUNCTION = "caption"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"multiline": True})}, "hidden": {"id": "UNIQUE_ID"}}

    def caption(self, text, id=None):
        return (text, len(text))
