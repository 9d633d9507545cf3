"""Inpainting: a 9-channel UNet gets ComfyUI's c_concat (mask first, then the masked image's latent), built from
InpaintModelConditioning, from the sampler's latent and mask, or blank; an 8-channel InstructPix2Pix UNet gets the
source image's latent; the nodes, and outpainting and VAEEncodeForInpaint workflows through the executor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hearth_sd.inpaint import BLANK_LATENT, concat_cond, resize_to_batch_size
from hearth_sd.nodes_inpaint import InpaintModelConditioning, InstructPixToPixConditioning
from hearth_sd.nodes_vae import VAEEncodeForInpaint

from hearth.core.models import load_model_file
from hearth.core.runtime import Runtime
from tests.sd.nodes_testing import image
from tests.sd.workflow_testing import executor_for, node, preview_pixels, tiny_runtime


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    built = tiny_runtime(tmp_path_factory.mktemp("work"), ("sd1", "sd1-inpaint", "sdxl-inpaint", "sd1-ip2p"))
    with built.activate():
        yield built


@pytest.fixture(autouse=True)
def _active(runtime: Runtime) -> Iterator[None]:
    with runtime.activate():
        yield


def _load(runtime: Runtime, name: str) -> tuple[Any, Any, Any]:
    return load_model_file("checkpoints", runtime.model_folders.find("checkpoints", name))


def test_resize_to_batch_size_spreads_items_as_comfyui():
    items = torch.arange(4.0)
    assert resize_to_batch_size(items, 2).tolist() == [0, 3]
    assert resize_to_batch_size(torch.arange(3.0), 5).tolist() == [0, 0, 1, 1, 2]
    assert resize_to_batch_size(torch.arange(2.0), 4).tolist() == [0, 0, 1, 1]


def test_concat_is_mask_then_masked_latent_and_blank_without_a_mask():
    noise = torch.zeros(2, 4, 4, 6)
    blank = concat_cond({}, noise, lambda t: t)
    assert blank.shape == (2, 5, 4, 6) and torch.equal(blank[:, 0], torch.ones(2, 4, 6))
    assert blank[0, 1:, 0, 0].tolist() == pytest.approx(list(BLANK_LATENT))
    # From InpaintModelConditioning: the raw latent scaled in, the pixel mask resized bilinearly then rounded.
    latent = torch.randn(1, 4, 4, 6, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 1, 32, 48)
    mask[..., 10:, 20:] = 1.0
    got = concat_cond({"concat_latent_image": latent, "concat_mask": mask}, noise, lambda t: t * 0.5)
    want_mask = F.interpolate(mask, size=(4, 6), mode="bilinear", align_corners=False).round()
    torch.testing.assert_close(got[:, :1], want_mask.expand(2, 1, 4, 6))
    torch.testing.assert_close(got[:, 1:], (latent * 0.5).expand(2, 4, 4, 6))
    # Without InpaintModelConditioning: the sampler's (already scaled) latent and its noise mask.
    from_sampler = concat_cond({"latent_image": latent, "denoise_mask": want_mask.expand(1, 4, 4, 6)}, noise,
                               lambda t: t * 100)
    torch.testing.assert_close(from_sampler[:, 1:], latent.expand(2, 4, 4, 6))


def test_the_inpainting_checkpoint_takes_nine_channels(runtime, monkeypatch):
    model, clip, vae = _load(runtime, "tiny-sd1-inpaint.safetensors")
    unet = model.diffusion.unet
    assert unet.config.in_channels == 9 and model.latent_channels == 4 == vae.latent_channels
    seen = {}
    forward = unet.forward

    def spy(x, *args, **kwargs):
        seen["x"] = x
        return forward(x, *args, **kwargs)

    monkeypatch.setattr(unet, "forward", spy)
    cond, _ = clip.encode("a wall")
    x, sigma = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1)), torch.tensor([2.0])
    pixels = image(1, 64, 64)  # an 8x8 latent: the tiny VAE downscales by 8
    mask = torch.zeros(1, 64, 64)
    mask[:, :, 32:] = 1.0
    positive, _, latent = InpaintModelConditioning().encode([[cond, {}]], [[cond, {}]], vae, pixels, mask)
    out = model.denoise(x, sigma, cond, positive[0][1])
    assert out.shape == x.shape and seen["x"].shape == (1, 9, 8, 8)
    torch.testing.assert_close(seen["x"][:, :4], model.sampling.calculate_input(sigma, x))
    assert seen["x"][0, 4].tolist() == [[0.0] * 4 + [1.0] * 4] * 8  # the mask at latent size (right half)
    torch.testing.assert_close(seen["x"][:, 5:], model.process_latent_in(positive[0][1]["concat_latent_image"]))
    # A plain SD1 model ignores the inpainting keys.
    plain, _, _ = _load(runtime, "tiny-sd1.safetensors")
    torch.testing.assert_close(plain.denoise(x, sigma, cond, positive[0][1]), plain.denoise(x, sigma, cond, {}))


def test_inpaint_model_conditioning_is_comfyui_s(runtime):
    _, clip, vae = _load(runtime, "tiny-sd1.safetensors")
    cond, _ = clip.encode("a wall")
    pixels = image(1, 20, 19, seed=2)  # off the 8-pixel grid: cropped around the centre to 16 x 16
    mask = torch.zeros(1, 20, 19)
    mask[:, :10] = 1.0
    positive, negative, latent = InpaintModelConditioning().encode([[cond, {"k": 1}]], [[cond, {}]], vae, pixels,
                                                                  mask, True)
    crop_mask = mask[:, None, 2:18, 1:17]
    grey = pixels[:, 2:18, 1:17].clone()
    grey[:, :8] = 0.5  # the masked rows become neutral grey
    torch.testing.assert_close(positive[0][1]["concat_latent_image"], vae.encode(grey))
    torch.testing.assert_close(positive[0][1]["concat_mask"], crop_mask)
    assert negative[0][1]["concat_mask"] is positive[0][1]["concat_mask"] and positive[0][1]["k"] == 1
    torch.testing.assert_close(latent["samples"], vae.encode(pixels))  # the original image, centre-cropped by the VAE
    torch.testing.assert_close(latent["noise_mask"], crop_mask)
    _, _, no_mask = InpaintModelConditioning().encode([[cond, {}]], [[cond, {}]], vae, pixels, mask, False)
    assert "noise_mask" not in no_mask
    with pytest.raises(ValueError, match="InpaintModelConditioning: 3 masks for 2 images"):
        InpaintModelConditioning().encode([[cond, {}]], [[cond, {}]], vae, image(2, 16, 16), torch.zeros(3, 16, 16))
    with pytest.raises(ValueError, match="InpaintModelConditioning: pixels must be an IMAGE"):
        InpaintModelConditioning().encode([[cond, {}]], [[cond, {}]], vae, torch.zeros(16, 16), mask)
    spec = InpaintModelConditioning.INPUT_TYPES()["required"]
    assert list(spec) == ["positive", "negative", "vae", "pixels", "mask", "noise_mask"]
    assert spec["noise_mask"][1]["default"] is True


def test_an_outpainting_workflow_runs_through_the_executor(runtime, tmp_path):
    prompt = {
        "1": node("CheckpointLoaderSimple", ckpt_name="tiny-sd1-inpaint.safetensors"),
        "2": node("CLIPTextEncode", clip=["1", 1], text="a beach"),
        "3": node("CLIPTextEncode", clip=["1", 1], text="blurry"),
        "4": node("EmptyImage", width=32, height=32, batch_size=1, color=0x884422),
        "5": node("ImagePadForOutpaint", image=["4", 0], left=16, top=0, right=16, bottom=0, feathering=8),
        "6": node("InpaintModelConditioning", positive=["2", 0], negative=["3", 0], vae=["1", 2], pixels=["5", 0],
                  mask=["5", 1], noise_mask=True),
        "7": node("KSampler", model=["1", 0], seed=5, steps=2, cfg=3.0, sampler_name="euler", scheduler="normal",
                  positive=["6", 0], negative=["6", 1], latent_image=["6", 2], denoise=1.0),
        "8": node("VAEDecode", samples=["7", 0], vae=["1", 2]),
        "9": node("PreviewImage", images=["8", 0]),
    }
    assert preview_pixels(executor_for(runtime, tmp_path), prompt, "9").shape == (32, 64, 3)


def _spy(monkeypatch: pytest.MonkeyPatch, model: Any) -> dict[str, torch.Tensor]:
    """What the model's UNet is called with (its first argument, the input batch), call by call."""
    unet, seen = model.diffusion.unet, {}
    forward = unet.forward

    def spy(x, *args, **kwargs):
        seen["x"] = x
        return forward(x, *args, **kwargs)

    monkeypatch.setattr(unet, "forward", spy)
    return seen


def test_instruct_pix2pix_gets_the_source_latent_unscaled(runtime, monkeypatch):
    model, clip, vae = _load(runtime, "tiny-sd1-ip2p.safetensors")
    assert model.diffusion.unet.config.in_channels == 8 and model.latent_channels == 4
    cond, _ = clip.encode("make it snow")
    pixels = image(1, 67, 65, seed=4)
    positive, negative, latent = InstructPixToPixConditioning().encode([[cond, {}]], [[cond, {}]], pixels, vae)
    source = positive[0][1]["concat_latent_image"]
    torch.testing.assert_close(source, vae.encode(pixels[:, 1:65, 0:64]))  # centre-cropped to the 8-pixel grid
    assert negative[0][1]["concat_latent_image"] is source and torch.equal(latent["samples"], torch.zeros_like(source))
    seen = _spy(monkeypatch, model)
    x, sigma = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2)), torch.tensor([1.5])
    model.denoise(x, sigma, cond, positive[0][1])
    torch.testing.assert_close(seen["x"][:, 4:], source)  # SD1.5's ip2p image is not scaled (ComfyUI's rule)
    model.denoise(x, sigma, cond, {})
    assert torch.equal(seen["x"][:, 4:], torch.zeros(1, 4, 8, 8))


def test_an_sdxl_inpainting_checkpoint_runs_with_its_concat(runtime, monkeypatch):
    model, clip, _ = _load(runtime, "tiny-sdxl-inpaint.safetensors")
    assert model.family == "sdxl" and model.diffusion.unet.config.in_channels == 9
    seen = _spy(monkeypatch, model)
    cond, pooled = clip.encode("a wall")
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    out = model.denoise(x, torch.tensor([1.0]), cond, {"pooled_output": pooled})
    assert out.shape == x.shape and seen["x"].shape == (1, 9, 8, 8) and torch.equal(seen["x"][:, 4], torch.ones(1, 8, 8))


def test_vae_encode_for_inpaint_feeds_the_model_through_the_sampler(runtime, tmp_path, monkeypatch):
    """The classic workflow (no InpaintModelConditioning): the sampler's latent and noise mask become c_concat."""
    model, _, vae = _load(runtime, "tiny-sd1-inpaint.safetensors")  # the executor's load shares this UNet
    seen = _spy(monkeypatch, model)
    prompt = {
        "1": node("CheckpointLoaderSimple", ckpt_name="tiny-sd1-inpaint.safetensors"),
        "2": node("CLIPTextEncode", clip=["1", 1], text="a beach"),
        "3": node("CLIPTextEncode", clip=["1", 1], text="blurry"),
        "4": node("EmptyImage", width=128, height=128, batch_size=1, color=0x884422),
        "5": node("ImagePadForOutpaint", image=["4", 0], left=64, top=0, right=0, bottom=0, feathering=0),
        "6": node("VAEEncodeForInpaint", pixels=["5", 0], vae=["1", 2], mask=["5", 1], grow_mask_by=0),
        "7": node("KSampler", model=["1", 0], seed=5, steps=1, cfg=3.0, sampler_name="euler", scheduler="normal",
                  positive=["2", 0], negative=["3", 0], latent_image=["6", 0], denoise=1.0),
        "8": node("VAEDecode", samples=["7", 0], vae=["1", 2]),
        "9": node("PreviewImage", images=["8", 0]),
    }
    preview_pixels(executor_for(runtime, tmp_path), prompt, "9")
    padded = torch.full((1, 128, 192, 3), 0.5)
    padded[:, :, 64:] = torch.tensor([0x88, 0x44, 0x22]) / 255.0
    mask = torch.ones(1, 128, 192)
    mask[:, :, 64:] = 0.0
    (latent,) = VAEEncodeForInpaint().encode(vae, padded, mask, 0)
    fed = seen["x"][:1]
    assert fed.shape == (1, 9, 16, 24)
    strip = torch.zeros(1, 1, 16, 24)
    strip[..., :8] = 1.0
    torch.testing.assert_close(fed[:, 4:5], strip)  # the padded left strip to repaint, at latent size
    torch.testing.assert_close(fed[:, 5:], model.process_latent_in(latent["samples"]), rtol=1e-4, atol=1e-4)
