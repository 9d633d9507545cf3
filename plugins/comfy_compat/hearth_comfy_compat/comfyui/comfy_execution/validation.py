"""ComfyUI's ``comfy_execution.validation``: whether a link's type may feed an input, by ComfyUI's rules."""

from __future__ import annotations

from typing import Any


def validate_node_input(received_type: Any, input_type: Any, strict: bool = False) -> bool:
    """Whether an output of ``received_type`` may feed an input of ``input_type``.

    Types are names or comma-separated unions (``"INT,FLOAT"``); ``"*"`` takes anything. A pack's own type object
    decides for itself through ``!=`` (the "any type" trick: a ``str`` whose ``__ne__`` is always False), so
    that is asked first, as ComfyUI does. Otherwise the unions must share a type, or with ``strict`` every
    received type must be accepted.
    """
    if not received_type != input_type:
        return True
    if not isinstance(received_type, str) or not isinstance(input_type, str):
        return False
    if "*" in (received_type, input_type):
        return True
    received = {part.strip() for part in received_type.split(",")}
    accepted = {part.strip() for part in input_type.split(",")}
    return received <= accepted if strict else bool(received & accepted)
