"""The executor's own plugin (essential tier, cannot be disabled): the data types every graph relies on."""

from __future__ import annotations

from hearth.core.hookspecs import hookimpl
from hearth.core.types import DataType


@hookimpl
def register_types() -> list[DataType]:
    return [
        DataType("INT", "A whole number."),
        DataType("FLOAT", "A number; accepts INT links.", accepts={"INT"}),
        DataType("STRING", "Text."),
        DataType("BOOLEAN", "True or false."),
        DataType("COMBO", "One choice from a list."),
        DataType("IMAGE", "A batch of images: float tensor [batch, height, width, channels] in 0..1."),
        DataType("MASK", "A batch of masks: float tensor [batch, height, width] in 0..1."),
        DataType("*", "Any type."),
    ]
