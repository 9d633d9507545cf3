"""Products laid out as ComfyUI lays them out, so SDXL's floats are its floats (issue 23).

The UNet's spatial transformer hands its tokens on as a contiguous ``[B, H*W, C]`` matrix, as ComfyUI's does.

Before, the tokens were a permuted view (a transposed matrix in memory). The values are the same, but SDXL's linear
``proj_in`` multiplies such a view by another GEMM path, which rounds differently: 2e-7 at the first transformer and
6e-6 at the UNet's output on a full-size SDXL checkpoint, enough to move the parity harness's pictures by up to 15
levels after four steps (issue 23). With the contiguous matrix the full-size UNet call is bit-identical to ComfyUI's.
"""

from __future__ import annotations

import pytest
import torch
from hearth_sd.unet import SpatialTransformer


@pytest.mark.parametrize("linear", [True, False], ids=["linear-proj_in-sdxl", "conv-proj_in-sd1"])
def test_proj_in_and_the_blocks_get_contiguous_tokens(linear: bool) -> None:
    torch.manual_seed(0)
    block = SpatialTransformer(64, 2, 32, 1, 48, linear).eval()
    seen = {}
    block.proj_in.register_forward_hook(lambda m, args, out: seen.setdefault("proj_in", args[0]))
    block.transformer_blocks[0].register_forward_hook(lambda m, args, out: seen.setdefault("block", args[0]))
    x = torch.randn(2, 64, 4, 6)
    context = torch.randn(2, 7, 48)
    with torch.no_grad():
        out = block(x, context)
        # What ComfyUI computes: norm, (conv proj_in,) tokens made contiguous, (linear proj_in,) blocks, back.
        h = block.norm(x)
        if not linear:
            h = block.proj_in(h)
        h = h.movedim(1, 3).flatten(1, 2).contiguous()
        if linear:
            h = block.proj_in(h)
        h = block.transformer_blocks[0](h, context)
        if linear:
            h = block.proj_out(h)
        h = h.reshape(2, 4, 6, -1).movedim(3, 1).contiguous()
        if not linear:
            h = block.proj_out(h)
        want = h + x
    assert seen["block"].is_contiguous()
    if linear:
        assert seen["proj_in"].is_contiguous() and seen["proj_in"].shape == (2, 24, 64)
    assert torch.equal(out, want)


def test_the_open_clip_pooled_projection_is_comfyuis_linear_on_the_contiguous_transpose() -> None:
    # x @ P and a Linear with weight P.T (contiguous, as ComfyUI converts OpenCLIP's text_projection) are the same
    # product, rounded apart (3.8e-6 at SDXL's 1280 width); ComfyUI computes the latter, and so SDXL's pooled text.
    from hearth_sd.clip_text import TextEncoderConfig
    from hearth_sd.open_clip_text import OpenCLIPTextEncoder

    torch.manual_seed(0)
    config = TextEncoderConfig(width=1280, layers=1, heads=20, intermediate=64, activation="gelu", vocab_size=600,
                               max_positions=8, projection_dim=1280)
    encoder = OpenCLIPTextEncoder(config).eval()
    tokens = torch.tensor([[1, 5, 7, 599, 0, 0, 0, 0], [1, 9, 599, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        out = encoder(tokens)
        final = encoder.ln_final(encoder.transformer.resblocks[0](
            encoder.token_embedding(tokens) + encoder.positional_embedding[:8]))
        pooled = final[torch.arange(2), tokens.argmax(dim=-1)]
        weight = encoder.text_projection.t().contiguous()
    assert torch.equal(out.pooled, torch.nn.functional.linear(pooled, weight))
    assert not torch.equal(pooled @ encoder.text_projection, out.pooled)  # the plain matmul rounds apart here
