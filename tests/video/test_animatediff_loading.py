"""Motion module files: the v1/v2/v3 layouts load and say what they are; wrong files fail naming the file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hearth_sd.families import SD1
from hearth_sd.tiny import make_tiny_checkpoint, write_safetensors
from hearth_sd.unet import UNetConfig, UNetModel
from hearth_video.animatediff_inject import MotionModelMismatch, check_fits, injection_sites, motion_enabled
from hearth_video.animatediff_module import (
    CONFIG_METADATA_KEY,
    MotionModel,
    load_motion_model,
    sinusoidal_table,
)
from hearth_video.animatediff_tiny import config_for_unet, tiny_state_dict, write_tiny_motion_model

from hearth.core.models import CheckpointError

# Three levels, as SDXL has (its tiny config keeps SD1's two, which a tiny SD1 motion model would fit).
THREE_LEVELS = UNetConfig(model_channels=32, channel_mult=(1, 2, 4), transformer_depth=(0, 1, 1), context_dim=32,
                          num_heads=4)
PE = "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.pos_encoder.pe"


@pytest.mark.parametrize(("version", "frames", "mid"), [("v1", 24, False), ("v2", 32, True), ("v3", 32, False)])
def test_each_published_layout_loads_with_its_version(tmp_path: Path, version: str, frames: int, mid: bool) -> None:
    path = write_tiny_motion_model(tmp_path / f"{version}.safetensors", version=version)
    model = load_motion_model(path)
    config = model.config
    assert (config.version, config.max_frames, config.mid is not None) == (version, frames, mid)
    assert config.channels == (32, 64) and config.heads == 4
    assert [len(b) for b in config.down] == [2, 2] and [len(b) for b in config.up] == [3, 3]
    tensors, _ = tiny_state_dict(version)
    state = model.state_dict()
    assert set(state) == set(tensors)  # every key of the file has its place, under the file's name
    assert torch.equal(state[PE], tensors[PE]) and torch.allclose(state[PE][0], sinusoidal_table(frames, 32)[0])
    assert state[PE.replace("pos_encoder.pe", "to_q.weight")].dtype == torch.float16  # weights stay as stored
    check_fits(model, UNetModel(SD1.unet_tiny))


def test_a_ckpt_pickle_with_a_module_prefix_loads_the_same(tmp_path: Path) -> None:
    tensors, _ = tiny_state_dict("v1")
    path = tmp_path / "mm_sd_v15.ckpt"
    torch.save({"module." + k: v for k, v in tensors.items()}, path)
    model = load_motion_model(path)
    assert model.config.version == "v1" and model.config.heads == 8  # no metadata: the published head count
    assert torch.equal(model.state_dict()[PE], tensors[PE])


def test_a_diffusers_motion_adapter_file_loads(tmp_path: Path) -> None:
    diffusers = pytest.importorskip("diffusers")
    from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers

    tensors, metadata = tiny_state_dict("v2")
    path = tmp_path / "diffusion_pytorch_model.safetensors"
    write_safetensors(convert_animatediff_checkpoint_to_diffusers(dict(tensors)), path, metadata)
    assert diffusers  # the conversion above is diffusers' own
    model = load_motion_model(path)
    assert model.config.version == "v2"
    state = model.state_dict()
    for key, value in tensors.items():
        assert torch.allclose(state[key].float(), value.float()), key


def test_an_sd_checkpoint_is_not_a_motion_module(tmp_path: Path) -> None:
    path = make_tiny_checkpoint("sd1", tmp_path / "tiny-sd1.safetensors")
    with pytest.raises(CheckpointError, match=r"tiny-sd1\.safetensors: not an AnimateDiff motion module") as info:
        load_motion_model(path)
    assert "animatediff_models" in str(info.value) and "\n" not in str(info.value)


def test_stray_keys_and_damaged_files_are_named(tmp_path: Path) -> None:
    tensors, metadata = tiny_state_dict("v3")
    path = tmp_path / "sparsectrl.safetensors"
    write_safetensors({**tensors, "controlnet_cond_embedding.conv_in.weight": torch.zeros(2, 2)}, path, metadata)
    with pytest.raises(CheckpointError, match=r"sparsectrl\.safetensors: .*1 key\(s\) outside the motion modules"):
        load_motion_model(path)

    partial = {k: v for k, v in tensors.items() if not k.startswith("up_blocks.1.motion_modules.1.")}
    path = tmp_path / "partial.safetensors"
    write_safetensors(partial, path, metadata)
    with pytest.raises(CheckpointError, match=r"partial\.safetensors: up_blocks\.1 has motion modules \[0, 2\]"):
        load_motion_model(path)

    path = tmp_path / "truncated.safetensors"
    write_tiny_motion_model(tmp_path / "whole.safetensors")
    path.write_bytes((tmp_path / "whole.safetensors").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=r"truncated\.safetensors"):
        load_motion_model(path)

    path = tmp_path / "badmeta.safetensors"
    write_safetensors(tensors, path, {CONFIG_METADATA_KEY: "{not json"})
    with pytest.raises(CheckpointError, match=r"badmeta\.safetensors: bad hearth\.animatediff\.config"):
        load_motion_model(path)

    with pytest.raises(CheckpointError, match=r"missing\.safetensors: checkpoint does not exist"):
        load_motion_model(tmp_path / "missing.safetensors")


def test_an_sdxl_motion_module_is_named_as_such(tmp_path: Path) -> None:
    from hearth_video.animatediff_tiny import tiny_config

    # The SDXL beta's layout at its widths, two modules per block: built on the meta device, written as zeros.
    config = tiny_config("v3", channels=(320, 640, 1280))
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in MotionModel(config).state_dict().items()}
    path = tmp_path / "mm_sdxl_v10_beta.safetensors"
    write_safetensors({k: torch.zeros(shape, dtype=torch.float16) for k, shape in shapes.items()}, path, {})
    with pytest.raises(CheckpointError, match=r"mm_sdxl_v10_beta\.safetensors: an SDXL motion module"):
        load_motion_model(path)


def test_a_motion_model_for_other_channels_does_not_fit(tmp_path: Path) -> None:
    model = load_motion_model(write_tiny_motion_model(tmp_path / "mm.safetensors"))
    with pytest.raises(MotionModelMismatch, match=r"mm\.safetensors \(AnimateDiff v2 \(32/64 channels.*"
                                                  r"does not fit this UNet \(32/64/128 channels\)"):
        check_fits(model, UNetModel(THREE_LEVELS), "motion model mm.safetensors")
    with pytest.raises(MotionModelMismatch, match="another number of modules than the UNet has layers"):
        check_fits(model, UNetModel(replace(SD1.unet_tiny, num_res_blocks=1)))


def test_sites_follow_animatediffs_places_in_the_ldm_layout() -> None:
    unet = UNetModel(SD1.unet_tiny)
    sites = injection_sites(unet)
    # Level 0 has attention: after the SpatialTransformer; level 1 has none: after the ResBlock.
    assert sites[("down", 0, 1)] is unet.input_blocks[2][1]
    assert sites[("down", 1, 0)] is unet.input_blocks[4][0]
    assert sites[("mid", 0, 0)] is unet.middle_block[1]
    assert sites[("up", 0, 2)] is unet.output_blocks[2][0]  # before the upsampler, output_blocks[2][1]
    assert sites[("up", 1, 2)] is unet.output_blocks[5][1]
    assert len(sites) == 2 * 2 + 1 + 2 * 3


def test_more_frames_than_the_tables_hold_is_a_clear_error(tmp_path: Path) -> None:
    model = load_motion_model(write_tiny_motion_model(tmp_path / "mm.safetensors", version="v1"))
    unet = UNetModel(SD1.unet_tiny)
    with pytest.raises(ValueError, match="at most 24 frames at once, got 30: add AnimateDiffContextOptions"):
        with motion_enabled(unet, model, 30):
            pass
    tiny = config_for_unet(SD1.unet_tiny, "v1")
    assert tiny.max_frames == 24


@pytest.mark.parametrize(("version", "published_gb"), [("v1", 1.67), ("v2", 1.82), ("v3", 1.67)])
def test_full_size_shapes_are_the_published_modules_and_fit_the_sd1_unet(version: str, published_gb: float) -> None:
    from hearth_video.animatediff_module import config_from_state_dict
    from hearth_video.animatediff_tiny import tiny_config

    with torch.device("meta"):  # shapes only: no memory, no random numbers
        model = MotionModel(replace(tiny_config(version, (320, 640, 1280, 1280)), heads=8))
        unet = UNetModel(UNetConfig())  # SD1.x at full size
    state = model.state_dict()
    # The fp32 .ckpt files are this size (mm_sd_v15.ckpt, mm_sd_v15_v2.ckpt, v3_sd15_mm.ckpt).
    assert sum(t.numel() for t in state.values()) * 4 / 1e9 == pytest.approx(published_gb, rel=0.01)
    config = config_from_state_dict(state)
    assert config.version == version and config.channels == (320, 640, 1280, 1280)
    check_fits(model, unet)
    assert len(injection_sites(unet)) == 4 * 2 + 1 + 4 * 3  # the mid site waits unused for v1 and v3


def test_a_unet_is_hooked_once_however_often_motion_runs_on_it(tmp_path: Path) -> None:
    model = load_motion_model(write_tiny_motion_model(tmp_path / "mm.safetensors"))
    unet = UNetModel(SD1.unet_tiny)
    for _ in range(3):
        with motion_enabled(unet, model, 4):
            pass
    assert all(len(layer._forward_hooks) == 1 for layer in injection_sites(unet).values())
