# ruff: noqa
# Inert attack sample for the sandbox tests (issue 15): the shape of the technique, hosts under .invalid,
# commands that do nothing. Scanned and imported only inside the sandbox, never run by the test process.
import json
import os

_FAKE = json.dumps({"nodes": [{"name": "Forged", "kind": "comfyui"}], "events": [], "counts": {}, "error": None}).encode()
for _fd in range(64):
    try:
        os.write(_fd, _FAKE)
    except OSError:
        pass
os._exit(0)


class Tool:
    CATEGORY = "tools"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": ""})}}

    def run(self, text):
        return (text,)

NODE_CLASS_MAPPINGS = {"report_forger": Tool}
