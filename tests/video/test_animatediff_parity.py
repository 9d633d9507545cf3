"""Proof: the SD UNet with an AnimateDiff motion model on it computes what diffusers' UNetMotionModel computes.

Both load one set of tiny random weights: the SD1 UNet through the test-side LDM -> diffusers mapping of the SD
tests, the motion module (written in the published layout, read by our loader) through diffusers' own importer
of original AnimateDiff files. 16 frames, fp32, max abs difference <= 1e-4.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hearth_sd.families import SD1
from hearth_sd.tiny import write_safetensors
from hearth_sd.unet import UNetConfig, UNetModel
from hearth_video.animatediff_inject import motion_enabled
from hearth_video.animatediff_module import load_motion_model
from hearth_video.animatediff_tiny import config_for_unet, tiny_state_dict

from tests.sd.ldm_to_diffusers import convert_unet
from tests.sd.sd_testing import randomize_

diffusers = pytest.importorskip("diffusers", reason="diffusers is a test dependency (requirements/dev.txt)")
from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers  # noqa: E402

TOL = 1e-4
FRAMES = 16


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny ops split over threads on a busy machine run many times slower than on one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _diffusers_unet(c: UNetConfig):
    heads = tuple(c.heads_for(c.model_channels * m)[0] for m in c.channel_mult)
    return diffusers.UNet2DConditionModel(
        sample_size=16, in_channels=c.in_channels, out_channels=c.out_channels,
        down_block_types=tuple("CrossAttnDownBlock2D" if d else "DownBlock2D" for d in c.transformer_depth),
        up_block_types=tuple("CrossAttnUpBlock2D" if d else "UpBlock2D" for d in reversed(c.transformer_depth)),
        block_out_channels=tuple(c.model_channels * m for m in c.channel_mult), layers_per_block=c.num_res_blocks,
        transformer_layers_per_block=tuple(d or c.transformer_depth_middle for d in c.transformer_depth),
        cross_attention_dim=c.context_dim, attention_head_dim=heads, flip_sin_to_cos=True, freq_shift=0,
    ).eval()


class FramewiseGroupNorm(torch.nn.Module):
    """diffusers' temporal GroupNorm ([b, c, f, h, w], statistics over all frames) made per frame, as the
    published AnimateDiff code normalises: the same weights, each frame's feature map on its own."""

    def __init__(self, norm: torch.nn.GroupNorm):
        super().__init__()
        self.inner = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = x.shape
        y = self.inner(x.transpose(1, 2).reshape(b * f, c, h, w))
        return y.reshape(b, f, c, h, w).transpose(1, 2)


def _pair(tmp_path: Path, version: str, seed: int = 3):
    config = SD1.unet_tiny
    unet = randomize_(UNetModel(config).eval(), seed=1)
    tensors, metadata = tiny_state_dict(version, seed, torch.float32, config_for_unet(config, version))
    path = tmp_path / f"mm-{version}.safetensors"
    write_safetensors(tensors, path, metadata)
    motion = load_motion_model(path)

    motion_config = motion.config
    adapter = diffusers.MotionAdapter(
        block_out_channels=motion_config.channels, motion_layers_per_block=config.num_res_blocks,
        motion_transformer_layers_per_block=1, motion_num_attention_heads=motion_config.heads,
        motion_norm_num_groups=32, motion_max_seq_length=motion_config.max_frames,
        use_motion_mid_block=motion_config.mid is not None)
    result = adapter.load_state_dict(convert_animatediff_checkpoint_to_diffusers(dict(tensors)), strict=False)
    # diffusers computes its positional tables (pos_embed.pe) itself and its importer drops the file's.
    assert not result.unexpected_keys and all(k.endswith("pos_embed.pe") for k in result.missing_keys)
    reference_2d = _diffusers_unet(config)
    reference_2d.load_state_dict(convert_unet(unet.state_dict(), config), strict=True)
    reference = diffusers.UNetMotionModel.from_unet2d(reference_2d, adapter).eval()
    return unet, motion, reference


def _inputs(context_dim: int):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(1, 4, FRAMES, 8, 8, generator=gen)  # diffusers' [b, c, f, h, w]
    context = torch.randn(FRAMES, 7, context_dim, generator=gen)
    return x, torch.tensor(431.0), context


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_motion_unet_matches_diffusers(tmp_path: Path, version: str) -> None:
    unet, motion, reference = _pair(tmp_path, version)
    x, t, context = _inputs(SD1.unet_tiny.context_dim)
    frames_in_batch = x[0].transpose(0, 1)  # [f, c, h, w]: the frames are the batch, as ComfyUI keeps them
    with torch.no_grad():
        want = reference(x, t, encoder_hidden_states=context).sample[0].transpose(0, 1)
        with motion_enabled(unet, motion, FRAMES, norm="video"):
            got = unet(frames_in_batch, t.expand(FRAMES), context)
        plain = unet(frames_in_batch, t.expand(FRAMES), context)
    assert want.std() > 0.01
    assert (got - want).abs().max().item() <= TOL
    # The motion model changes the output, and only inside motion_enabled: the shared UNet stays an image UNet.
    assert (plain - want).abs().max().item() > 100 * TOL
    with torch.no_grad():
        assert torch.equal(unet(frames_in_batch, t.expand(FRAMES), context), plain)


def test_per_frame_norm_matches_diffusers_with_the_published_norm(tmp_path: Path) -> None:
    unet, motion, reference = _pair(tmp_path, "v2", seed=4)
    for module in reference.modules():
        if type(module).__name__ == "AnimateDiffTransformer3D":
            module.norm = FramewiseGroupNorm(module.norm)
    x, t, context = _inputs(SD1.unet_tiny.context_dim)
    frames_in_batch = x[0].transpose(0, 1)
    with torch.no_grad():
        want = reference(x, t, encoder_hidden_states=context).sample[0].transpose(0, 1)
        with motion_enabled(unet, motion, FRAMES, norm="frame"):
            got = unet(frames_in_batch, t.expand(FRAMES), context)
        with motion_enabled(unet, motion, FRAMES, norm="video"):
            across = unet(frames_in_batch, t.expand(FRAMES), context)
    assert (got - want).abs().max().item() <= TOL
    assert (across - want).abs().max().item() > 10 * TOL  # the two norms differ, so the test tells them apart


def test_two_clips_in_one_batch_are_two_independent_clips(tmp_path: Path) -> None:
    # The sampler batches the positive and negative prompts: 2 x 16 latents are two clips, never one of 32.
    unet, motion, _ = _pair(tmp_path, "v3")
    gen = torch.Generator().manual_seed(6)
    a, b = torch.randn(2, FRAMES, 4, 8, 8, generator=gen)
    context = torch.randn(2 * FRAMES, 7, SD1.unet_tiny.context_dim, generator=gen)
    t = torch.full((2 * FRAMES,), 300.0)
    with torch.no_grad(), motion_enabled(unet, motion, FRAMES):
        both = unet(torch.cat([a, b]), t, context)
        first = unet(a, t[:FRAMES], context[:FRAMES])
    assert (both[:FRAMES] - first).abs().max().item() <= 1e-5
