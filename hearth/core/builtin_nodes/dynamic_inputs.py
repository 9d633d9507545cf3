"""ComfyUI V3's dynamic inputs (``io.Autogrow``, ``io.DynamicCombo``) for Hearth's builtin V1-shaped nodes.

ComfyUI describes such an input once in ``/object_info`` (``"values": ["COMFY_AUTOGROW_V3", {"template": ...}]``)
and the browser adds its sockets and widgets under dotted names: ``values.a``, ``values.b`` for an Autogrow,
``format.bit_depth`` for the option a DynamicCombo ``format`` shows. A prompt carries only the dotted names.
:class:`DynamicSection` lists the parent input as ComfyUI does and *claims* the dotted names (the executor hands
every name a section claims to the node, as it does for rgthree's open sections), so the node receives them as
keyword arguments; :func:`gather` turns them back into the dict ComfyUI's V3 nodes receive.

An Autogrow parent is listed in ``required``, as ComfyUI lists it; the validator takes it as given by its
members (a prompt never names the parent itself).
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

AUTOGROW = "COMFY_AUTOGROW_V3"
DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"
LETTERS = list(string.ascii_lowercase)


class DynamicSection(dict):
    """An ``INPUT_TYPES`` section that lists its declared inputs and also claims ``claims`` (dotted name ->
    spec), or every name when ``claim_all`` (ComfyUI's ``accept_all_inputs``: the node takes whatever widgets
    its frontend adds). Iteration, and so ``/object_info``, sees the declared inputs only."""

    def __init__(self, declared: Mapping[str, Any], claims: Mapping[str, Any] | None = None,
                 claim_all: bool = False) -> None:
        super().__init__(declared)
        self.claims = dict(claims or {})
        self.claim_all = claim_all

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or name in self.claims or (self.claim_all and isinstance(name, str))

    def __missing__(self, name: str) -> Any:
        if name in self.claims:
            return self.claims[name]
        if self.claim_all:
            return ("*",)
        raise KeyError(name)


def autogrow_names(name: str, template: tuple[str, tuple[Any, ...]], names: Sequence[str], minimum: int = 1,
                   optional: bool = True) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """ComfyUI's ``io.Autogrow.Input(name, template=TemplateNames(input, names, min))``: its ``/object_info``
    spec and the dotted names it claims. ``template`` is the template input as ``(id, spec)``."""
    info = {"input": {"optional" if optional else "required": {template[0]: list(template[1])}},
            "names": list(names), "min": minimum}
    return (AUTOGROW, {"template": info}), {f"{name}.{item}": template[1] for item in names}


def autogrow_prefix(name: str, template: tuple[str, tuple[Any, ...]], prefix: str, minimum: int = 1,
                    maximum: int = 10, optional: bool = True) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """ComfyUI's ``io.Autogrow.Input(name, template=TemplatePrefix(input, prefix, min, max))``: sockets
    ``{name}.{prefix}0`` .. ``{name}.{prefix}{max - 1}``."""
    info = {"input": {"optional" if optional else "required": {template[0]: list(template[1])}},
            "prefix": prefix, "min": minimum, "max": maximum}
    names = [f"{prefix}{index}" for index in range(maximum)]
    return (AUTOGROW, {"template": info}), {f"{name}.{item}": template[1] for item in names}


def dynamic_combo(name: str, options: Mapping[str, Mapping[str, tuple[Any, ...]]],
                  **extra: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """ComfyUI's ``io.DynamicCombo.Input(name, options=[Option(key, inputs)...])``: ``options`` maps each key to
    its (required) inputs; the claimed names are ``{name}.{input}`` for every option's inputs."""
    listed = [{"key": key, "inputs": {"required": {k: list(v) for k, v in inputs.items()}}}
              for key, inputs in options.items()]
    claims = {f"{name}.{k}": v for inputs in options.values() for k, v in inputs.items()}
    return (DYNAMIC_COMBO, {"options": listed, **extra}), claims


def gather(name: str, values: Mapping[str, Any], order: Sequence[str] | None = None) -> dict[str, Any]:
    """The members of dynamic input ``name`` among a node's keyword arguments, keyed without the prefix
    (``{"values.a": 1}`` -> ``{"a": 1}``), in ``order`` where given (the template's names), else as received."""
    prefix = name + "."
    found = {key[len(prefix):]: value for key, value in values.items() if key.startswith(prefix)}
    if order is None:
        return found
    rank = {item: index for index, item in enumerate(order)}
    return dict(sorted(found.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))
