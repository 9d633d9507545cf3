# ruff: noqa
# Inert sample pack for the sandbox tests. It is only ever imported inside the isolated child.
from hearth.core.hookspecs import hookimpl


class Upper:
    CATEGORY = "sample/text"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING",)}}

    def run(self, text):
        return (text.upper(),)


@hookimpl
def register_nodes():
    return {"SampleUpper": Upper}
