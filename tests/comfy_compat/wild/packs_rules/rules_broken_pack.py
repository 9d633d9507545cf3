"""A pack of nodes with something wrong, each as real packs have it: INPUT_TYPES listing a folder that is not there
(as packs list their model folders), a display-only node without FUNCTION, a V3 node in the V1 mapping whose schema
fails, a class without RETURN_TYPES, and a class built on a ComfyUI class Hearth lacks."""

import os

from comfy_api.latest import io

# A ComfyUI class Hearth lacks (there is no such name anywhere):
from comfy_extras.nodes_lt import LTXVAddGuideRulesProbe

HERE = os.path.dirname(os.path.abspath(__file__))


class RulesListPresets:
    @classmethod
    def INPUT_TYPES(cls):
        presets = sorted(os.listdir(os.path.join(HERE, "rules_presets_not_installed")))
        return {"required": {"preset": (presets,)}}

    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    CATEGORY = "rules"

    def run(self, preset):
        return (preset,)


class RulesFine:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "fine"})}}

    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    CATEGORY = "rules"

    def run(self, text):
        return (text,)


class RulesSyntaxHelp:
    """A display-only node, as efficiency-nodes ships: help text in a widget, no outputs, no FUNCTION."""

    syntax = "a;b;c"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"notes": ("STRING", {"default": cls.syntax, "multiline": True})}}

    RETURN_TYPES = ()
    CATEGORY = "rules"


class RulesPresetPicker(io.ComfyNode):
    """A V3 node listed in the V1 mapping (as KJNodes lists its V3 nodes), whose schema lists a missing folder."""

    @classmethod
    def define_schema(cls):
        presets = sorted(os.listdir(os.path.join(HERE, "rules_presets_not_installed")))
        return io.Schema(node_id="Rules Preset Picker", category="rules",
                         inputs=[io.Combo.Input("preset", options=presets)], outputs=[io.String.Output()])

    @classmethod
    def execute(cls, preset):
        return io.NodeOutput(preset)


class RulesNoReturnTypes:
    """A V1 class that forgot RETURN_TYPES."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    FUNCTION = "run"

    def run(self):
        return ()


class RulesGuideMulti(LTXVAddGuideRulesProbe):
    """Built on a ComfyUI node class, as KJNodes builds LTXVAddGuideMulti on nodes_lt.LTXVAddGuide: the inputs,
    outputs and function all come from the base."""

    DESCRIPTION = "several guides at once"


NODE_CLASS_MAPPINGS = {"Rules List Presets": RulesListPresets, "Rules Fine": RulesFine,
                       "Rules Syntax Help": RulesSyntaxHelp, "Rules Preset Picker": RulesPresetPicker,
                       "Rules No Return Types": RulesNoReturnTypes, "Rules Guide Multi": RulesGuideMulti}
