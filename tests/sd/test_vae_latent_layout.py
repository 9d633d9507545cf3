"""VAEEncode gives a contiguous latent, as ComfyUI's (which copies the encoder's output into a fresh tensor).

The image goes in as a ``movedim`` view, so the encoder's convolutions keep a channels-last layout; a latent left
so makes the UNet's first convolution round differently, which moved ComfyUI's img2img parity workflow by a pixel
level (issue 23). The values are the same either way; the layout is what this pins.
"""

from __future__ import annotations

import pytest
import torch
from hearth_sd.checkpoint import load_checkpoint
from hearth_sd.tiny import tiny_state_dict

from hearth.core.models import write_safetensors


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    tensors, metadata = tiny_state_dict("sd1")
    path = write_safetensors(tensors, tmp_path_factory.mktemp("vae") / "tiny.safetensors", metadata)
    return load_checkpoint(path, load_device="cpu").vae


@pytest.mark.parametrize("tiled", [False, True], ids=["encode", "encode_tiled"])
def test_the_encoded_latent_is_contiguous_with_the_encoders_values(vae, tiled: bool) -> None:
    pixels = torch.rand(2, 64, 64, 3, generator=torch.Generator().manual_seed(0))
    latent = vae.encode_tiled(pixels, tile=64, overlap=16) if tiled else vae.encode(pixels)
    assert latent.is_contiguous()
    with torch.no_grad():
        direct = vae.model.encode(pixels.permute(0, 3, 1, 2).contiguous() * 2 - 1)
    if not tiled:
        torch.testing.assert_close(latent, direct, rtol=1e-5, atol=1e-5)  # layouts round apart
