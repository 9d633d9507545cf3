"""CONDITIONING nodes of the SD plugin with ComfyUI's names, inputs and outputs (combine, average, area, mask, ...).

A CONDITIONING value is a list of ``[cond, options]`` entries (``docs/data-types.md``). These nodes build new
lists with copied options dicts and never change an entry they were given: one cached conditioning may feed
several nodes, and writing into its options would change what the others see. Where an entry applies (area,
mask, strength, timestep range) is only recorded here; the samplers apply it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import nodes_conditioning_advanced, nodes_conditioning_area

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

Conditioning = list[list[Any]]


def first_entry(conditioning: Sequence[Sequence[Any]], node: str, name: str) -> tuple[torch.Tensor, dict[str, Any]]:
    """The entry of ``conditioning_from`` that ComfyUI uses: the first; more are ignored with a warning."""
    if not conditioning:
        raise ValueError(f"{node}: {name} is empty; connect a text encoder's output")
    if len(conditioning) > 1:
        log.warning("%s: %s has %d entries; only the first is used", node, name, len(conditioning))
    cond, options = conditioning[0]
    return cond, options


class ConditioningCombine:
    DISPLAY_NAME = "Conditioning (Combine)"
    CATEGORY = "conditioning"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "combine"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"conditioning_1": ("CONDITIONING",), "conditioning_2": ("CONDITIONING",)}}

    def combine(self, conditioning_1: Conditioning, conditioning_2: Conditioning) -> tuple[Conditioning]:
        # Both sets of entries take part; the sampler sums their predictions, each where it applies.
        return (list(conditioning_1) + list(conditioning_2),)


class ConditioningAverage:
    DISPLAY_NAME = "Conditioning (Average)"
    CATEGORY = "conditioning"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "addWeighted"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "conditioning_to": ("CONDITIONING",),
            "conditioning_from": ("CONDITIONING",),
            "conditioning_to_strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
        }}

    def addWeighted(self, conditioning_to: Conditioning, conditioning_from: Conditioning,
                    conditioning_to_strength: float) -> tuple[Conditioning]:
        import torch

        cond_from, options_from = first_entry(conditioning_from, "ConditioningAverage", "conditioning_from")
        pooled_from = options_from.get("pooled_output")
        weight = conditioning_to_strength
        out = []
        for cond_to, options_to in conditioning_to:
            source = cond_from[:, :cond_to.shape[1]].to(device=cond_to.device, dtype=cond_to.dtype)
            if source.shape[1] < cond_to.shape[1]:
                # A shorter prompt counts as zeros over the missing tokens, as in ComfyUI.
                missing = cond_to.shape[1] - source.shape[1]
                source = torch.cat([source, source.new_zeros(source.shape[0], missing, source.shape[2])], dim=1)
            _check_batches(cond_to, source, "ConditioningAverage")
            options = dict(options_to)
            if pooled_from is not None:
                # An entry without a pooled output takes the source's whole (ComfyUI's rule).
                pooled_to = options_to.get("pooled_output")
                if pooled_to is None:
                    pooled_to = pooled_from
                options["pooled_output"] = pooled_to * weight + pooled_from.to(pooled_to) * (1.0 - weight)
            out.append([cond_to * weight + source * (1.0 - weight), options])
        return (out,)


class ConditioningConcat:
    DISPLAY_NAME = "Conditioning (Concat)"
    CATEGORY = "conditioning"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "concat"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"conditioning_to": ("CONDITIONING",), "conditioning_from": ("CONDITIONING",)}}

    def concat(self, conditioning_to: Conditioning, conditioning_from: Conditioning) -> tuple[Conditioning]:
        import torch

        cond_from, _ = first_entry(conditioning_from, "ConditioningConcat", "conditioning_from")
        out = []
        for cond_to, options in conditioning_to:
            if cond_from.shape[0] != cond_to.shape[0] or cond_from.shape[2] != cond_to.shape[2]:
                raise ValueError(f"ConditioningConcat: conditioning_to is {list(cond_to.shape)} and "
                                 f"conditioning_from is {list(cond_from.shape)}; the batch and embedding sizes "
                                 "must match (encode both with the same CLIP)")
            # More tokens for the model to attend to; the options (pooled output, area...) stay conditioning_to's.
            joined = torch.cat([cond_to, cond_from.to(device=cond_to.device, dtype=cond_to.dtype)], dim=1)
            out.append([joined, dict(options)])
        return (out,)


def _check_batches(cond_to: torch.Tensor, cond_from: torch.Tensor, node: str) -> None:
    # Equal batches pair item by item; a batch of one applies to every item (broadcasting, as in ComfyUI).
    if cond_to.shape[0] != cond_from.shape[0] and 1 not in (cond_to.shape[0], cond_from.shape[0]):
        raise ValueError(f"{node}: conditioning_to has a batch of {cond_to.shape[0]} and conditioning_from "
                         f"{cond_from.shape[0]}; use equal batches or a batch of one")
    if cond_to.shape[2] != cond_from.shape[2]:
        raise ValueError(f"{node}: conditioning_to has embeddings of {cond_to.shape[2]} values and "
                         f"conditioning_from {cond_from.shape[2]}; encode both with the same CLIP")


NODES: dict[str, type] = {
    cls.__name__: cls for cls in (ConditioningCombine, ConditioningAverage, ConditioningConcat)
} | nodes_conditioning_area.NODES | nodes_conditioning_advanced.NODES
