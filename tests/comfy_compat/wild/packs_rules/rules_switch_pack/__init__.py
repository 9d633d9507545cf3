"""A pack in the manner of rgthree-comfy: its node classes in a py/ package, the "any type" and the flexible
optional section in py/utils.py."""

from .py.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

print("[rules_switch_pack] Loaded 4 nodes")

WEB_DIRECTORY = None
__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
