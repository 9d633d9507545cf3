"""Reading a LoRA file's tensors into one adapter per module: suffixes and algorithm detection as data.

Every trainer spells a module's tensors as ``<module name><suffix>``; :data:`SUFFIXES` maps each suffix to a role
(``lora_up``, ``alpha``, ``hada_w1_a``...), whatever the spelling (kohya, PEFT, diffusers). :data:`ALGORITHMS` then
picks the algorithm from the roles a module has, first match wins. A module whose tensors fit no algorithm, and a
tensor with no known suffix, are returned by name with the reason: the caller reports them, nothing is dropped
silently. Which weight of which model a module name means is :mod:`hearth_lora.names`' business, not this one's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from .base import Adapter, Chain, Rows, Transposed
from .dora import Decomposed, with_magnitude
from .full import Full, convert_full
from .loha import ROLES as LOHA_ROLES
from .loha import Hadamard, convert_loha
from .lokr import Kronecker, convert_lokr, is_lokr
from .lora import ROLES as LORA_ROLES
from .lora import LowRank, convert_lora

__all__ = ["ALGORITHMS", "SUFFIXES", "Adapter", "Chain", "Decomposed", "Hadamard", "Kronecker", "LowRank",
           "Full", "ParsedLora", "Rows", "Transposed", "parse_lora"]

_UP = ("lora_up.weight", "lora_B.weight", "lora_B.default.weight", "lora.up.weight", "lora_linear_layer.up.weight")
_DOWN = ("lora_down.weight", "lora_A.weight", "lora_A.default.weight", "lora.down.weight",
         "lora_linear_layer.down.weight")

SUFFIXES: dict[str, str] = {
    **{"." + s: "lora_up" for s in _UP},
    **{"." + s: "lora_down" for s in _DOWN},
    # Old diffusers attention processors: "attn1.processor.to_q_lora.up.weight" is module "...attn1.processor.to_q".
    "_lora.up.weight": "lora_up",
    "_lora.down.weight": "lora_down",
    ".lora_mid.weight": "lora_mid",
    ".alpha": "alpha",
    ".diff": "diff",
    ".diff_b": "diff_b",
    ".dora_scale": "dora_scale",
    ".lora_magnitude_vector": "dora_scale",
    ".lora_magnitude_vector.weight": "dora_scale",
    **{f".hada_{n}": f"hada_{n}" for n in ("w1_a", "w1_b", "w2_a", "w2_b", "t1", "t2")},
    **{f".lokr_{n}": f"lokr_{n}" for n in ("w1", "w1_a", "w1_b", "w2", "w2_a", "w2_b", "t2")},
}
# Longest first, so "_lora.up.weight" never shadows ".lora_linear_layer.up.weight" and the like.
_BY_LENGTH = sorted(SUFFIXES.items(), key=lambda item: -len(item[0]))


@dataclass(frozen=True)
class Algorithm:
    name: str
    matches: Callable[[Mapping[str, torch.Tensor]], bool]
    convert: Callable[[Mapping[str, torch.Tensor]], Adapter]


ALGORITHMS: tuple[Algorithm, ...] = (
    Algorithm("loha", lambda roles: LOHA_ROLES <= roles.keys(), convert_loha),
    Algorithm("lokr", is_lokr, convert_lokr),
    Algorithm("lora", lambda roles: LORA_ROLES <= roles.keys(), convert_lora),
    Algorithm("diff", lambda roles: "diff" in roles, convert_full),
)


@dataclass
class ParsedLora:
    """``adapters``: module name (as the file spells it) -> adapter of its weight; ``biases``: module name ->
    adapter of its bias (``.diff_b``); ``algorithms``: module name -> algorithm name; ``problems``: tensor or
    module name -> why it could not be used."""

    adapters: dict[str, Adapter] = field(default_factory=dict)
    biases: dict[str, Adapter] = field(default_factory=dict)
    algorithms: dict[str, str] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


def split_key(key: str) -> tuple[str, str] | None:
    """``(module name, role)`` of a tensor key, or None when its suffix belongs to no known format."""
    for suffix, role in _BY_LENGTH:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)], role
    return None


def parse_lora(state_dict: Mapping[str, torch.Tensor]) -> ParsedLora:
    """Group a LoRA file's tensors by module and build each module's adapter (DoRA-wrapped when it has a magnitude)."""
    modules: dict[str, dict[str, torch.Tensor]] = {}
    parsed = ParsedLora()
    for key, tensor in state_dict.items():
        split = split_key(key)
        if split is None:
            parsed.problems[key] = "not a tensor of any LoRA format Hearth reads"
            continue
        modules.setdefault(split[0], {})[split[1]] = tensor
    for name, roles in modules.items():
        if "diff_b" in roles:  # a bias update, beside the weight's adapter or alone
            parsed.biases[name] = Full(roles.pop("diff_b"))
            if not roles:
                continue
        algorithm = next((a for a in ALGORITHMS if a.matches(roles)), None)
        if algorithm is None:
            parsed.problems[name] = f"incomplete: has only {', '.join(sorted(roles))}"
            continue
        try:
            adapter = algorithm.convert(roles)
        except (KeyError, ValueError, IndexError) as exc:
            parsed.problems[name] = f"malformed {algorithm.name}: {exc}"
            continue
        if "dora_scale" in roles:
            adapter = with_magnitude(adapter, roles["dora_scale"])
        parsed.adapters[name] = adapter
        parsed.algorithms[name] = algorithm.name + ("+dora" if "dora_scale" in roles else "")
    return parsed
