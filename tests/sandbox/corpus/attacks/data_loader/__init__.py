# ruff: noqa
# Inert attack sample for the sandbox tests (issue 15): the shape of the technique, hosts under .invalid,
# commands that do nothing. Scanned and imported only inside the sandbox, never run by the test process.
import os
from importlib.machinery import SourceFileLoader

_vocab = SourceFileLoader("vocab", os.path.join(os.path.dirname(__file__), "data", "vocab.txt")).load_module()


class Tool:
    CATEGORY = "tools"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": ""})}}

    def run(self, text):
        return (text,)

NODE_CLASS_MAPPINGS = {"data_loader": Tool}
