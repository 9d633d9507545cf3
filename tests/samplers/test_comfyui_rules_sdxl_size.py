"""SDXL's size conditioning inside a sampler is the latent's size, as ComfyUI's ``encode_model_conds`` sets it.

A conditioning from plain CLIPTextEncode names no width or height. ComfyUI's sampler fills both from the whole
latent (``noise.shape[3] * 8`` and ``noise.shape[2] * 8``) before the model's ``encode_adm`` reads them; its 768
default applies only to a call outside a sampler. Hearth used 768 in the sampler too, which moved the parity
harness's SDXL pictures by up to 23 levels at 64x64 (issue 23). These pin the rule.
"""

from __future__ import annotations

import torch
from hearth_samplers.regions import resolve
from hearth_sd.sdxl_conditioning import DEFAULT_SIZE, sdxl_adm


class _Sampling:
    sigma_min, sigma_max = 0.03, 14.6


def test_a_conditioning_without_a_size_gets_the_whole_latents_in_pixels() -> None:
    pooled = torch.ones(1, 8)
    plain = [torch.zeros(1, 77, 16), {"pooled_output": pooled}]
    sized = [torch.zeros(1, 77, 16), {"pooled_output": pooled, "width": 1024, "height": 512}]
    area = [torch.zeros(1, 77, 16), {"pooled_output": pooled, "area": (4, 4, 0, 0), "strength": 1.0}]
    regions = resolve([plain, sized, area], torch.Size([2, 4, 8, 12]), _Sampling())
    assert [(r.model_options["width"], r.model_options["height"]) for r in regions] == [(96, 64), (1024, 512), (96, 64)]
    assert "width" not in plain[1]  # the workflow's conditioning is left as it was


def test_the_size_embedding_differs_from_the_768_default_at_64_pixels() -> None:
    pooled = torch.randn(1, 8, generator=torch.Generator().manual_seed(0))
    at_64, at_768 = sdxl_adm(pooled, 64, 64), sdxl_adm(pooled, DEFAULT_SIZE, DEFAULT_SIZE)
    # The six 256-wide Fourier features: height, width, crop top, crop left, target height, target width.
    assert at_64.shape == (1, 8 + 6 * 256) and torch.equal(at_64[:, :8], pooled)
    changed = [(at_64[:, 8 + 256 * k:8 + 256 * (k + 1)] != at_768[:, 8 + 256 * k:8 + 256 * (k + 1)]).any().item()
               for k in range(6)]
    assert changed == [True, True, False, False, True, True]
