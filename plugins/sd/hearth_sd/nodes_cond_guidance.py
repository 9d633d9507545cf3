"""Conditioning nodes that only record values for a model to read, with ComfyUI's names and inputs: FluxGuidance
(``guidance``, comfy_extras/nodes_flux.py), FluxKontextMultiReferenceLatentMethod (``reference_latents_method``,
the same file) and ReferenceLatent (``reference_latents``, nodes_edit_model.py).

They need no model: each entry of the CONDITIONING gets a copy of its options with the key set (or, for lists,
extended), exactly as ComfyUI's ``node_helpers.conditioning_set_values`` does; the family that reads the key
(Flux's distilled guidance, an edit model's reference images) decides what it means. Hearth's SD models ignore
both keys, as ComfyUI's SD models do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def conditioning_set_values(conditioning: Iterable[Sequence[Any]], values: Mapping[str, Any],
                            append: bool = False) -> list[list[Any]]:
    """New entries with copied options updated by ``values``; with ``append``, a value is added to the one the
    entry already has (lists are concatenated), as ComfyUI's helper of the same name does."""
    out = []
    for cond, options in conditioning:
        options = dict(options)
        for key, value in values.items():
            if append and options.get(key) is not None:
                value = options[key] + value
            options[key] = value
        out.append([cond, options])
    return out


class FluxGuidance:
    CATEGORY = "advanced/conditioning/flux"
    DESCRIPTION = "Sets the distilled guidance scale a guidance-distilled model (Flux) is conditioned on."
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "append"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "conditioning": ("CONDITIONING",),
            "guidance": ("FLOAT", {"default": 3.5, "min": 0.0, "max": 100.0, "step": 0.1}),
        }}

    def append(self, conditioning: list[list[Any]], guidance: float) -> tuple[list[list[Any]]]:
        return (conditioning_set_values(conditioning, {"guidance": guidance}),)


class ReferenceLatent:
    CATEGORY = "advanced/conditioning/edit_models"
    DESCRIPTION = ("This node sets the guiding latent for an edit model. If the model supports it you can chain "
                   "multiple to set multiple reference images.")
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "append"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"conditioning": ("CONDITIONING",)}, "optional": {"latent": ("LATENT",)}}

    def append(self, conditioning: list[list[Any]], latent: dict[str, Any] | None = None) -> tuple[list[list[Any]]]:
        if latent is None:
            return (conditioning,)
        if not isinstance(latent, Mapping) or "samples" not in latent:
            raise ValueError("ReferenceLatent: latent must be a LATENT (a dict with 'samples'); connect a "
                             "VAEEncode or an empty-latent node")
        # Chained nodes add references in order: the first node's latent comes first.
        return (conditioning_set_values(conditioning, {"reference_latents": [latent["samples"]]}, append=True),)


REFERENCE_METHODS = ["offset", "index", "uxo/uno", "index_timestep_zero"]


class FluxKontextMultiReferenceLatentMethod:
    DISPLAY_NAME = "Edit Model Reference Method"
    CATEGORY = "advanced/conditioning/flux"
    EXPERIMENTAL = True
    DESCRIPTION = "How an edit model places several reference latents (offset, index, uxo/uno, index_timestep_zero)."
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "append"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"conditioning": ("CONDITIONING",),
                             "reference_latents_method": (REFERENCE_METHODS, {"advanced": True})}}

    def append(self, conditioning: list[list[Any]], reference_latents_method: str) -> tuple[list[list[Any]]]:
        if reference_latents_method not in REFERENCE_METHODS:
            raise ValueError(f"FluxKontextMultiReferenceLatentMethod: reference_latents_method must be one of "
                             f"{REFERENCE_METHODS}, got {reference_latents_method!r}")
        # The models know the UXO/UNO method as "uxo" (ComfyUI stores it so).
        method = "uxo" if "uxo" in reference_latents_method or "uso" in reference_latents_method \
            else reference_latents_method
        return (conditioning_set_values(conditioning, {"reference_latents_method": method}),)


NODES = {cls.__name__: cls for cls in (FluxGuidance, ReferenceLatent, FluxKontextMultiReferenceLatentMethod)}
