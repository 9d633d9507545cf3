"""Upscale models: parity with float64 references of each architecture, both ESRGAN key layouts, detection errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hearth_upscale import tiny
from hearth_upscale.compact import CompactConfig, SRVGGNetCompact
from hearth_upscale.esrgan import ESRGANConfig, RRDBNet
from hearth_upscale.model import UnsupportedUpscaleModel, load_upscale_model

from hearth.core.models import CheckpointError, write_safetensors

# -- independent references: plain functional calls in float64, reading the published key names ----------------


def _conv(x: torch.Tensor, state: dict, name: str) -> torch.Tensor:
    return F.conv2d(x, state[f"{name}.weight"].double(), state[f"{name}.bias"].double(), padding=1)


def _rrdb_trunk(state: dict, feat: torch.Tensor, blocks: int, key) -> torch.Tensor:
    """ESRGAN's trunk of residual-in-residual dense blocks; ``key(block, rdb, conv)`` names a conv in the layout."""
    trunk = feat
    for b in range(blocks):
        block_in = trunk
        for r in (1, 2, 3):
            dense = [trunk]
            for j in range(1, 5):
                dense.append(F.leaky_relu(_conv(torch.cat(dense, 1), state, key(b, r, j)), 0.2))
            trunk = _conv(torch.cat(dense, 1), state, key(b, r, 5)) * 0.2 + trunk
        trunk = trunk * 0.2 + block_in
    return trunk


def reference_esrgan_new(state: dict, x: torch.Tensor, unshuffle: int, upsamples: int) -> torch.Tensor:
    """RRDBNet (BasicSR key names) in float64, from the paper's definition."""
    x = x.double()
    if unshuffle > 1:
        x = F.pixel_unshuffle(x, unshuffle)
    lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    feat = _conv(x, state, "conv_first")
    blocks = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("body."))
    trunk = _rrdb_trunk(state, feat, blocks, lambda b, r, j: f"body.{b}.rdb{r}.conv{j}")
    feat = feat + _conv(trunk, state, "conv_body")
    for n in range(1, upsamples + 1):
        feat = lrelu(_conv(F.interpolate(feat, scale_factor=2, mode="nearest"), state, f"conv_up{n}"))
    return _conv(lrelu(_conv(feat, state, "conv_hr")), state, "conv_last")


def reference_esrgan_old(state: dict, x: torch.Tensor) -> torch.Tensor:
    """The original ESRGAN Sequential (model.0 ... model.10 for 4x) in float64, indices as the 2018 code numbers them."""
    x = x.double()
    lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    feat = _conv(x, state, "model.0")
    blocks = max(int(k.split(".")[3]) for k in state if k.startswith("model.1.sub.") and "RDB" in k) + 1
    trunk = _rrdb_trunk(state, feat, blocks, lambda b, r, j: f"model.1.sub.{b}.RDB{r}.conv{j}.0")
    feat = feat + _conv(trunk, state, f"model.1.sub.{blocks}")
    feat = lrelu(_conv(F.interpolate(feat, scale_factor=2, mode="nearest"), state, "model.3"))
    feat = lrelu(_conv(F.interpolate(feat, scale_factor=2, mode="nearest"), state, "model.6"))
    return _conv(lrelu(_conv(feat, state, "model.8")), state, "model.10")


def reference_compact(state: dict, x: torch.Tensor, scale: int) -> torch.Tensor:
    x = x.double()
    last = max(int(k.split(".")[1]) for k in state)
    h = x
    for i in range(0, last, 2):
        h = _conv(h, state, f"body.{i}")
        h = F.prelu(h, state[f"body.{i + 1}.weight"].double())
    h = _conv(h, state, f"body.{last}")
    return F.pixel_shuffle(h, scale) + F.interpolate(x, scale_factor=scale, mode="nearest")


def random_state(module_type: type, config: object, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {k: v.detach().clone() for k, v in module_type(config).state_dict().items()}


def write(state: dict, path: Path) -> Path:
    write_safetensors({k: v.contiguous() for k, v in state.items()}, path)
    return path


def image(height: int = 12, width: int = 10, seed: int = 1) -> torch.Tensor:
    return torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))


# -- parity ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("unshuffle", "upsamples", "scale"), [(1, 2, 4), (2, 2, 2), (4, 2, 1), (1, 1, 2)])
def test_rrdbnet_new_layout_matches_the_reference_at_each_scale(tmp_path, unshuffle, upsamples, scale):
    config = ESRGANConfig(3, 3, features=8, growth=4, blocks=2, upsamples=upsamples, unshuffle=unshuffle)
    state = random_state(RRDBNet, config, seed=unshuffle + upsamples)
    model = load_upscale_model(write(state, tmp_path / "net.safetensors"))
    assert (model.architecture, model.scale) == ("RealESRGAN", scale)
    x = image(12, 16)
    out = model(x)
    assert out.shape == (1, 3, 12 * scale, 16 * scale) and out.dtype == torch.float32
    expected = reference_esrgan_new(state, x, unshuffle, upsamples)
    assert (out.double() - expected).abs().max() <= 1e-5


def test_rrdbnet_original_layout_matches_the_reference(tmp_path):
    path = tmp_path / "tiny-esrgan.safetensors"
    tiny.write_esrgan(path, seed=3)
    from safetensors.torch import load_file

    state = load_file(path)
    assert "model.1.sub.0.RDB1.conv1.0.weight" in state and "model.10.weight" in state
    model = load_upscale_model(path)
    assert (model.architecture, model.scale) == ("ESRGAN", 4)
    x = image()
    assert (model(x).double() - reference_esrgan_old(state, x)).abs().max() <= 1e-5


@pytest.mark.parametrize("upsamples", [0, 1, 2, 3])
def test_both_key_layouts_of_the_same_weights_give_the_same_image(tmp_path, upsamples):
    config = ESRGANConfig(3, 3, features=8, growth=4, blocks=2, upsamples=upsamples, unshuffle=1)
    state = random_state(RRDBNet, config, seed=7)
    new = load_upscale_model(write(state, tmp_path / "new.safetensors"))
    # The original layout numbers the Sequential: 1x ends model.2 / model.4, 2x model.3 ... model.7, 4x model.10.
    old_state = tiny.esrgan_old_keys(state, upsamples)
    assert f"model.{3 * upsamples + 4}.weight" in old_state
    old = load_upscale_model(write(old_state, tmp_path / "old.safetensors"))
    assert (new.architecture, old.architecture) == ("RealESRGAN", "ESRGAN")
    assert new.scale == old.scale == 2 ** upsamples
    x = image(9, 7)
    assert torch.equal(new(x), old(x))


def test_srvgg_compact_matches_the_reference(tmp_path):
    for scale in (4, 2):
        config = CompactConfig(3, 3, features=8, convs=3, scale=scale)
        state = random_state(SRVGGNetCompact, config, seed=scale)
        model = load_upscale_model(write(state, tmp_path / f"compact{scale}.safetensors"))
        assert (model.architecture, model.scale) == ("SRVGGNetCompact", scale)
        x = image(7, 9)
        assert (model(x).double() - reference_compact(state, x, scale)).abs().max() <= 1e-5


def test_realesrgan_pth_with_params_ema_and_fp16_weights_loads(tmp_path):
    state = random_state(RRDBNet, tiny.REALESRGAN_X2, seed=2)
    path = tmp_path / "RealESRGAN_x2plus.pth"
    torch.save({"params_ema": {k: v.half() for k, v in state.items()}}, path)
    model = load_upscale_model(path)
    assert model.scale == 2 and next(model.model.parameters()).dtype == torch.float32
    x = image(8, 8)
    halved = {k: v.half().double() for k, v in state.items()}
    assert (model(x).double() - reference_esrgan_new(halved, x, 2, 2)).abs().max() <= 1e-5


def test_odd_sizes_are_padded_for_pixel_unshuffle_and_cropped_back(tmp_path):
    state = random_state(RRDBNet, tiny.REALESRGAN_X2, seed=4)
    model = load_upscale_model(write(state, tmp_path / "x2.safetensors"))
    x = image(7, 9)
    out = model(x)
    assert out.shape == (1, 3, 14, 18)
    padded = F.pad(x, (0, 1, 0, 1), mode="reflect")
    assert torch.allclose(out.double(), reference_esrgan_new(state, padded, 2, 2)[..., :14, :18], atol=1e-5)


# -- files that are not upscale models ------------------------------------------------------------------------


def test_a_stable_diffusion_checkpoint_is_refused_with_where_it_belongs(tmp_path):
    sd = {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3),
          "first_stage_model.decoder.conv_in.weight": torch.zeros(4, 4, 3, 3)}
    with pytest.raises(UnsupportedUpscaleModel, match=r"sd\.safetensors is not an upscale model.*models/checkpoints"):
        load_upscale_model(write(sd, tmp_path / "sd.safetensors"))


def test_unknown_and_missing_keys_are_named(tmp_path):
    state = random_state(SRVGGNetCompact, tiny.COMPACT_X4, seed=0)
    with pytest.raises(UnsupportedUpscaleModel, match=r"extra_head\.weight"):
        load_upscale_model(write({**state, "extra_head.weight": torch.zeros(2)}, tmp_path / "extra.safetensors"))
    swinir = {"layers.0.residual_group.blocks.0.norm1.weight": torch.zeros(4), "conv_first.weight": torch.zeros(4)}
    with pytest.raises(UnsupportedUpscaleModel, match="Supported: ESRGAN"):
        load_upscale_model(write(swinir, tmp_path / "swinir.safetensors"))
    config = ESRGANConfig(3, 3, features=8, growth=4, blocks=1, upsamples=2, unshuffle=1)
    broken = random_state(RRDBNet, config, seed=0)
    del broken["body.0.rdb2.conv3.weight"]
    with pytest.raises(UnsupportedUpscaleModel, match=r"body\.0\.rdb2\.conv3\.weight"):
        load_upscale_model(write(broken, tmp_path / "broken.safetensors"))


def test_a_file_that_is_not_a_model_is_a_checkpoint_error_naming_it(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("not a model")
    with pytest.raises(CheckpointError, match="notes.pth"):
        load_upscale_model(path)
