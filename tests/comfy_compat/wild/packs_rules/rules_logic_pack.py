"""A single-file pack in the manner of ComfyUI-Logic: an always-equal proxy for "any" (its __eq__ is true as well,
which also makes it unhashable)."""


class AlwaysEqualProxy(str):
    def __eq__(self, _):
        return True

    def __ne__(self, _):
        return False


class Compare:
    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"a": (AlwaysEqualProxy("*"), {"default": 0}), "b": (AlwaysEqualProxy("*"), {"default": 0}),
                             "comparison": (["a == b", "a != b", "a < b", "a > b"], {"default": "a == b"})}}

    RETURN_TYPES = ("BOOLEAN",)
    RETURN_NAMES = ("result",)
    FUNCTION = "compare"
    CATEGORY = "Logic"

    def compare(self, a, b, comparison):
        return (eval(comparison, {}, {"a": a, "b": b}),)


class DebugPrint:
    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"ANY": (AlwaysEqualProxy("*"), {})}}

    RETURN_TYPES = ()
    FUNCTION = "log_input"
    OUTPUT_NODE = True
    CATEGORY = "Logic"

    def log_input(self, ANY):
        print("DebugPrint:", ANY)
        return {"ui": {"value": [repr(ANY)]}}


class IntPass:
    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"value": (AlwaysEqualProxy("any"), {})}}

    RETURN_TYPES = (AlwaysEqualProxy("any"),)
    FUNCTION = "run"
    CATEGORY = "Logic"

    def run(self, value):
        return (value,)


NODE_CLASS_MAPPINGS = {"Compare": Compare, "DebugPrint": DebugPrint, "Rules IntPass": IntPass}
