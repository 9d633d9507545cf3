from .utils import FlexibleOptionalInputType, any_type

CATEGORY = "rules"


class RulesConstant:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0, "min": -100, "max": 100})}}

    RETURN_TYPES = ("INT", "FLOAT")
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, value):
        return (value, value / 2)


class RulesAnySwitch:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}, "optional": FlexibleOptionalInputType(any_type)}

    RETURN_TYPES = (any_type,)
    RETURN_NAMES = ("*",)
    FUNCTION = "switch"
    CATEGORY = CATEGORY

    def switch(self, **kwargs):
        for key, value in sorted(kwargs.items()):
            if key.startswith("any_") and value is not None:
                return (value,)
        return (None,)


class RulesAddInts:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("INT", {"forceInput": True}), "b": ("INT", {"default": 1})}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "add"
    CATEGORY = CATEGORY

    def add(self, a, b):
        return (a + b,)


class RulesNumberToText:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"number": ("INT,FLOAT", {})}}

    RETURN_TYPES = ("STRING",)
    FUNCTION = "show"
    OUTPUT_NODE = True
    CATEGORY = CATEGORY

    def show(self, number):
        return {"ui": {"text": [repr(number)]}, "result": (repr(number),)}


NODE_CLASS_MAPPINGS = {"Rules Constant": RulesConstant, "Rules Any Switch": RulesAnySwitch,
                       "Rules Add Ints": RulesAddInts, "Rules Number To Text": RulesNumberToText}
NODE_DISPLAY_NAME_MAPPINGS = {"Rules Any Switch": "Any Switch (rules)"}
