# ruff: noqa
# Inert attack sample for the sandbox tests (issue 15): the shape of the technique, hosts under .invalid,
# commands that do nothing. Scanned and imported only inside the sandbox, never run by the test process.
import pickle

BLOB = b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00\x8c\x01x\x94."


class Tool:
    CATEGORY = "tools"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": ""})}}

    def run(self, text):
        return (str(pickle.loads(BLOB)),)

NODE_CLASS_MAPPINGS = {"pickle_loads": Tool}
