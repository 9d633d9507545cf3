# ruff: noqa
# Inert sample pack for the sandbox tests. It is only ever imported inside the isolated child.
from .nodes import Blend, Caption

NODE_CLASS_MAPPINGS = {"SampleBlend": Blend, "SampleCaption": Caption}
NODE_DISPLAY_NAME_MAPPINGS = {"SampleBlend": "Blend (sample)"}
