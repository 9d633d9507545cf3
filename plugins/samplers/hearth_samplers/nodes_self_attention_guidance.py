"""SelfAttentionGuidance (ComfyUI's ``comfy_extras/nodes_sag.py``): Self-Attention Guidance (Hong et al. 2023).

The middle block's first self-attention records the negative prediction's attention map; after CFG, the regions
that map attends to most are blurred in the negative's clean estimate, that degraded image is noised back and
predicted again, and the guided result moves away from that prediction by ``scale``. It needs the SD UNet's
attention hooks (``patches_replace["attn1"]``) and evaluates the negative at every step, cfg 1 included.
"""

from __future__ import annotations

import math
from typing import Any


def attention_with_scores(q, k, v, heads: int):
    """Multi-head attention on ``[B, N, heads * dim]`` projections, and its softmax scores ``[B * heads, N, N]``
    (batch-major, as ComfyUI lays them out)."""
    import torch

    b, n, width = q.shape
    dim = width // heads

    def split(t):
        return t.reshape(b, -1, heads, dim).permute(0, 2, 1, 3).reshape(b * heads, -1, dim)

    q, k, v = split(q), split(k), split(v)
    scores = (torch.bmm(q.float(), k.float().transpose(1, 2)) * dim**-0.5).softmax(dim=-1)
    out = torch.bmm(scores.to(v.dtype), v)
    return out.reshape(b, heads, -1, dim).permute(0, 2, 1, 3).reshape(b, -1, heads * dim), scores


def gaussian_blur(image, kernel_size: int, sigma: float):
    """A separable Gaussian blur (pixel-unit sigma) with reflect padding, per channel."""
    import torch
    import torch.nn.functional as F

    half = (kernel_size - 1) * 0.5
    pdf = torch.exp(-0.5 * (torch.linspace(-half, half, steps=kernel_size) / sigma).pow(2))
    line = (pdf / pdf.sum()).to(device=image.device, dtype=image.dtype)
    kernel = torch.mm(line[:, None], line[None, :]).expand(image.shape[-3], 1, kernel_size, kernel_size)
    pad = kernel_size // 2
    return F.conv2d(F.pad(image, [pad, pad, pad, pad], mode="reflect"), kernel, groups=image.shape[-3])


def blurred_where_attended(x0, scores, sigma: float, threshold: float = 1.0):
    """``x0`` blurred where the tokens are attended to more than ``threshold`` in total (averaged over heads)."""
    import torch.nn.functional as F

    _, queries, keys = scores.shape
    b, _, height, width = x0.shape
    attended = scores.reshape(b, -1, queries, keys).mean(1).sum(1) > threshold
    # The middle block's size: the latent halved until its area matches the token count.
    ratio = 2 ** (math.ceil(math.sqrt(height * width / queries)) - 1).bit_length()
    mask = attended.reshape(b, math.ceil(height / ratio), math.ceil(width / ratio)).unsqueeze(1).to(scores.dtype)
    mask = F.interpolate(mask, (height, width)).to(x0.dtype)
    return gaussian_blur(x0, kernel_size=9, sigma=sigma) * mask + x0 * (1 - mask)


class SelfAttentionGuidance:
    CATEGORY = "_for_testing"
    DISPLAY_NAME = "Self-Attention Guidance"
    DESCRIPTION = ("Self-Attention Guidance: guides away from the negative prediction of an image blurred where the "
                   "model's self-attention looks, by scale (one more model call per step).")
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",),
                             "scale": ("FLOAT", {"default": 0.5, "min": -2.0, "max": 5.0, "step": 0.01}),
                             "blur_sigma": ("FLOAT", {"default": 2.0, "min": 0.0, "max": 10.0, "step": 0.1})}}

    def patch(self, model, scale, blur_sigma):
        import torch.nn.functional as F

        from .guidance import predict
        from .nodes_guidance_patches import clone_for_patch

        patched = clone_for_patch("SelfAttentionGuidance", model)
        if not callable(getattr(patched, "set_model_attn1_replace", None)):
            raise ValueError(f"SelfAttentionGuidance: this MODEL ({type(model).__name__}) has no attention hooks; "
                             f"it works on SD1.x, SD2 and SDXL models")
        recorded: dict[str, Any] = {}

        def attend_and_record(q, k, v, extra_options):
            heads = extra_options["n_heads"]
            chunks = list(extra_options.get("cond_or_uncond", [0]))
            if 1 not in chunks:
                b, n, width = q.shape
                dim = width // heads

                def split(t):
                    return t.reshape(b, -1, heads, dim).transpose(1, 2)

                out = F.scaled_dot_product_attention(split(q), split(k), split(v))
                return out.transpose(1, 2).reshape(b, n, width)
            out, scores = attention_with_scores(q, k, v, heads)
            per_chunk = heads * (q.shape[0] // len(chunks))
            where = chunks.index(1)
            recorded["scores"] = scores[per_chunk * where:per_chunk * (where + 1)]
            return out

        def sag(args):
            guided, uncond_pred, x = args["denoised"], args["uncond_denoised"], args["input"]
            scores = recorded.get("scores")
            if min(guided.shape[2:]) <= 4 or scores is None or args["uncond"] is None:
                return guided  # too small to pad for the blur, or no negative this step
            degraded = blurred_where_attended(uncond_pred, scores, blur_sigma)
            target = getattr(args["model"], "current_patcher", None) or patched
            (prediction,) = predict(target, [args["uncond"]], degraded + x - uncond_pred, args["sigma"])
            return guided + (degraded - prediction) * scale

        patched.set_model_sampler_post_cfg_function(sag, disable_cfg1_optimization=True)
        patched.set_model_attn1_replace(attend_and_record, "middle", 0, 0)
        return (patched,)


NODES = {"SelfAttentionGuidance": SelfAttentionGuidance}
