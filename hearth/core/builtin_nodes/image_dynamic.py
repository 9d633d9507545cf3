"""Checking the members of ComfyUI V3's dynamic inputs (DynamicCombo, Autogrow) as ComfyUI's validation would.

:mod:`hearth.core.builtin_nodes.dynamic_inputs` declares these inputs and claims their dotted members
(``"resize_type.width"``, ``"images.image0"``), which the executor then hands to the node as keyword arguments
without checking them (it validates declared inputs only). :func:`selected_option` and :func:`grown_inputs`
re-nest them as ComfyUI does and make the range and choice checks ComfyUI's validation makes, with errors that
name the dotted input. Also :func:`match_type`, the spec of a V3 ``io.MatchType`` input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

MATCH_TYPE = "COMFY_MATCHTYPE_V3"


def match_type(template_id: str, allowed: list[str]) -> tuple[str, dict[str, Any]]:
    """A MatchType input spec: one of ``allowed``, the node's output taking the same type."""
    return MATCH_TYPE, {"template": {"template_id": template_id, "allowed_types": ",".join(allowed)}}


def _checked(dotted: str, spec: tuple[Any, ...], value: Any) -> Any:
    kind = spec[0]
    options = spec[1] if len(spec) > 1 else {}
    if isinstance(kind, (list, tuple)) or kind == "COMBO":
        choices = list(kind) if isinstance(kind, (list, tuple)) else list(options.get("options", ()))
        if value not in choices:
            raise ValueError(f"{dotted}: {value!r} is not one of {choices}")
        return value
    if kind not in ("INT", "FLOAT"):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{dotted}: expected a number, got {value!r}")
    number = int(value) if kind == "INT" else float(value)
    if kind == "INT" and number != value:
        raise ValueError(f"{dotted}: expected a whole number, got {value!r}")
    if kind == "FLOAT" and not math.isfinite(number):
        raise ValueError(f"{dotted}: expected a finite number, got {value!r}")
    low, high = options.get("min"), options.get("max")
    if low is not None and number < low:
        raise ValueError(f"{dotted}: {value} is smaller than the minimum {low}")
    if high is not None and number > high:
        raise ValueError(f"{dotted}: {value} is bigger than the maximum {high}")
    return number


def selected_option(name: str, spec: tuple[Any, ...], choice: Any, given: Mapping[str, Any]) -> dict[str, Any]:
    """ComfyUI's re-nested DynamicCombo value: ``{name: choice, child: value...}`` for the chosen option's widgets,
    each taken from ``given[f"{name}.{child}"]`` and checked against its spec."""
    options = {option["key"]: option for option in spec[1]["options"]}
    if choice not in options:
        raise ValueError(f"{name}: {choice!r} is not one of {list(options)}")
    value: dict[str, Any] = {name: choice}
    for section in ("required", "optional"):
        for child, child_spec in options[choice].get("inputs", {}).get(section, {}).items():
            dotted = f"{name}.{child}"
            if dotted not in given:
                if section == "optional":
                    continue
                raise ValueError(f"{dotted}: missing; {name} {choice!r} needs {child} (send it as {dotted!r})")
            value[child] = _checked(dotted, child_spec, given[dotted])
    return value


def grown_inputs(name: str, spec: tuple[Any, ...], given: Mapping[str, Any]) -> list[Any]:
    """The values linked to an Autogrow input, in socket order, at least the template's ``min`` of them."""
    template = spec[1]["template"]
    names = template.get("names") or [f"{template['prefix']}{i}" for i in range(template["max"])]
    values = [given[f"{name}.{child}"] for child in names if given.get(f"{name}.{child}") is not None]
    if len(values) < template.get("min", 0):
        raise ValueError(f"{name}: needs at least {template['min']} inputs linked ({name}.{names[0]}, "
                         f"{name}.{names[1] if len(names) > 1 else names[0]}...), got {len(values)}")
    return values
