# ruff: noqa
# Inert attack sample for the sandbox tests (issue 15): the shape of the technique, hosts under .invalid,
# commands that do nothing. Scanned and imported only inside the sandbox, never run by the test process.
import ctypes


class Tool:
    CATEGORY = "tools"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": ""})}}

    def run(self, text):
        ctypes.CDLL(None).system(b"true")
        return (text,)

NODE_CLASS_MAPPINGS = {"ctypes_system": Tool}
