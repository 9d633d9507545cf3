"""ComfyUI's ``comfy_execution.validation``: whether a link's type may feed an input, by ComfyUI's rules."""

from __future__ import annotations

from typing import Any

from hearth.core.nodes import types_match


def validate_node_input(received_type: Any, input_type: Any, strict: bool = False) -> bool:
    """Whether an output of ``received_type`` may feed an input of ``input_type``: the rule Hearth's own validator
    applies (:func:`hearth.core.nodes.types_match`), so a pack's check and Hearth's never disagree.

    Types are names or comma-separated unions (``"INT,FLOAT"``); ``"*"`` takes anything. A pack's own type object
    decides for itself through ``!=`` (the "any type" trick: a ``str`` whose ``__ne__`` is always False), so
    that is asked first, as ComfyUI does. Otherwise the unions must share a type, or with ``strict`` every
    received type must be accepted.
    """
    return types_match(received_type, input_type, strict)
