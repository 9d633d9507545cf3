"""UNet patches with ComfyUI's names: FreeU and FreeU_V2 (``comfy_extras/nodes_freelunch.py``) and
PerturbedAttentionGuidance (``nodes_pag.py``), through the ``transformer_options`` hooks the SD UNet honours
(``output_block_patch``, ``patches_replace["attn1"]``) and a post-CFG function.

FreeU (Si et al. 2024) scales the backbone features of the two deepest decoder stages and damps the low
frequencies of their skip connections. PAG (Ahn et al. 2024) evaluates the positive once more with the middle
block's self-attention replaced by identity (each token attends only to itself) and guides away from that.
"""

from __future__ import annotations

from typing import Any

CATEGORY = "model_patches/unet"


def fourier_filter(x, threshold: int, scale: float):
    """``x`` with the centred ``2 * threshold`` square of its 2-D spectrum (the lowest frequencies) times ``scale``."""
    import torch

    spectrum = torch.fft.fftshift(torch.fft.fftn(x.float(), dim=(-2, -1)), dim=(-2, -1))
    mask = torch.ones(spectrum.shape, device=x.device)
    row, col = spectrum.shape[-2] // 2, spectrum.shape[-1] // 2
    mask[..., row - threshold:row + threshold, col - threshold:col + threshold] = scale
    filtered = torch.fft.ifftn(torch.fft.ifftshift(spectrum * mask, dim=(-2, -1)), dim=(-2, -1)).real
    return filtered.to(x.dtype)


def _model_channels(node: str, model: Any) -> int:
    config = getattr(getattr(getattr(model, "model", None), "model_config", None), "unet_config", None)
    if not isinstance(config, dict) or "model_channels" not in config:
        raise ValueError(f"{node}: this MODEL ({type(model).__name__}) is not a UNet model (it has no "
                         f"model_channels); FreeU works on SD1.x, SD2 and SDXL models")
    return int(config["model_channels"])


def _freeu_input(b1: float, b2: float) -> dict[str, Any]:
    def number(default: float) -> tuple[str, dict[str, Any]]:
        return ("FLOAT", {"default": default, "min": 0.0, "max": 10.0, "step": 0.01, "advanced": True})

    return {"required": {"model": ("MODEL",), "b1": number(b1), "b2": number(b2), "s1": number(0.9),
                         "s2": number(0.2)}}


def _freeu(node: str, model: Any, b1: float, b2: float, s1: float, s2: float, adaptive: bool) -> tuple[Any]:
    import torch

    from .nodes_guidance_patches import clone_for_patch

    channels = _model_channels(node, model)
    scales = {channels * 4: (b1, s1), channels * 2: (b2, s2)}

    def output_block_patch(h, skip, transformer_options):
        found = scales.get(int(h.shape[1]))
        if found is None:
            return h, skip
        backbone, skip_scale = found
        half = h.shape[1] // 2
        factor: Any = backbone
        if adaptive:
            # FreeU v2: the backbone factor follows the channel-mean feature map, normalised to 0..1 per item.
            mean = h.mean(1, keepdim=True)
            flat = mean.reshape(mean.shape[0], -1)
            low = flat.min(dim=-1).values.reshape(-1, 1, 1, 1)
            high = flat.max(dim=-1).values.reshape(-1, 1, 1, 1)
            factor = (backbone - 1) * ((mean - low) / (high - low)) + 1
        h = torch.cat([h[:, :half] * factor, h[:, half:]], dim=1)
        return h, fourier_filter(skip, threshold=1, scale=skip_scale)

    patched = clone_for_patch(node, model)
    patched.set_model_output_block_patch(output_block_patch)
    return (patched,)


class FreeU:
    CATEGORY = CATEGORY
    DESCRIPTION = ("FreeU: the deepest decoder stages' backbone features times b1 / b2 (half their channels), the "
                   "lowest frequencies of their skip connections times s1 / s2.")
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return _freeu_input(1.1, 1.2)

    def patch(self, model, b1, b2, s1, s2):
        return _freeu("FreeU", model, b1, b2, s1, s2, adaptive=False)


class FreeU_V2:  # noqa: N801 (ComfyUI's node name)
    CATEGORY = CATEGORY
    DESCRIPTION = "FreeU v2: like FreeU, with the backbone scaling following each item's normalised mean feature map."
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return _freeu_input(1.3, 1.4)

    def patch(self, model, b1, b2, s1, s2):
        return _freeu("FreeU_V2", model, b1, b2, s1, s2, adaptive=True)


def _with_identity_middle_attention(options: dict[str, Any], replacement: Any) -> dict[str, Any]:
    # Copies down to the attn1 table, so the MODEL's own options stay as they are.
    transformer = dict(options.get("transformer_options", {}))
    replace = dict(transformer.get("patches_replace", {}))
    attn1 = dict(replace.get("attn1", {}))
    attn1[("middle", 0)] = replacement
    replace["attn1"] = attn1
    transformer["patches_replace"] = replace
    return {**options, "transformer_options": transformer}


class PerturbedAttentionGuidance:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Perturbed-Attention Guidance: guides away from the positive prediction made with the middle "
                   "block's self-attention replaced by identity, by scale (one more model call per step).")
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",),
                             "scale": ("FLOAT", {"default": 3.0, "min": 0.0, "max": 100.0, "step": 0.01,
                                                 "round": 0.01})}}

    def execute(self, model, scale):
        from .guidance import predict
        from .nodes_guidance_patches import add_sampler_function, clone_for_patch

        patched = clone_for_patch("PerturbedAttentionGuidance", model)

        def identity_attention(q, k, v, extra_options, mask=None):
            return v

        def pag(args):
            guided = args["denoised"]
            if scale == 0 or args["cond"] is None:
                return guided
            target = getattr(args["model"], "current_patcher", None) or patched
            saved = target.model_options
            target.model_options = _with_identity_middle_attention(saved, identity_attention)
            try:
                (perturbed,) = predict(target, [args["cond"]], args["input"], args["sigma"])
            finally:
                target.model_options = saved
            return guided + (args["cond_denoised"] - perturbed) * scale

        add_sampler_function(patched, "sampler_post_cfg_function", pag)
        return (patched,)


NODES = {"FreeU": FreeU, "FreeU_V2": FreeU_V2, "PerturbedAttentionGuidance": PerturbedAttentionGuidance}
