"""A pack in the manner of ComfyUI-VideoHelperSuite (MultiInput types, a ContainsAll hidden section for the widgets
its frontend adds) and of Impact's switches (a ByPassTypeTuple RETURN_TYPES)."""

from .nodes import NODE_CLASS_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS"]
