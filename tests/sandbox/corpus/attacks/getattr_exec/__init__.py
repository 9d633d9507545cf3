# ruff: noqa
# Inert attack sample for the sandbox tests (issue 15): the shape of the technique, hosts under .invalid,
# commands that do nothing. Scanned and imported only inside the sandbox, never run by the test process.
import base64
import builtins

PAYLOAD = "cHJpbnQoJ2luZXJ0Jyk="  # print("inert")


class Tool:
    CATEGORY = "tools"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": ""})}}

    def run(self, text):
        getattr(builtins, "exec")(base64.b64decode(PAYLOAD))
        return (text,)

NODE_CLASS_MAPPINGS = {"getattr_exec": Tool}
