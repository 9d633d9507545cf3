"""The SD UNet's feature maps keep the standard memory layout, so CPU kernels round as they do in ComfyUI."""

from __future__ import annotations

import pytest
import torch
from hearth_sd.unet import SpatialTransformer


@pytest.mark.parametrize("linear", [False, True], ids=["conv projections (SD1)", "linear projections (SD2/SDXL)"])
@pytest.mark.parametrize("size", [1, 4])
def test_a_spatial_transformer_hands_on_a_standard_layout(linear, size):
    torch.manual_seed(0)
    block = SpatialTransformer(64, 2, 32, 1, 16, linear).eval()
    x = torch.randn(2, 64, size, size)
    with torch.no_grad():
        out = block(x, torch.randn(2, 7, 16))
    # A 1x1 map came out channels-last (strides (64, 1, 64, 64)); the next ResBlock's GroupNorm then took the
    # CPU's channels-last kernel and the middle block of a 512px SD1.5 image differed from ComfyUI's by 4.8e-7.
    assert out.stride() == x.stride()
    norm = torch.nn.GroupNorm(32, 64)
    with torch.no_grad():
        assert torch.equal(norm(out), norm(out.contiguous(memory_format=torch.contiguous_format).clone()))
