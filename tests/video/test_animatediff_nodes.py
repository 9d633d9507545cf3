"""AnimateDiff end to end: make-tiny, the node graph of the example workflow, seeds, windows, scale, coupling."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from hearth.cli.main import cli
from hearth.core.context import Folders
from hearth.core.executor import Executor
from hearth.core.runtime import Runtime

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "workflows" / "txt2video_animatediff_sd1_api.json"


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    # The tiny UNet's ops are too small to split: on a busy machine, threads fight over cores (10x slower).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    for name in ("sd1", "animatediff", "lora"):
        result = CliRunner().invoke(cli, ["models", "make-tiny", name, "--models-dir", str(folder)])
        assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def executor(models_dir: Path, tmp_path: Path) -> Any:
    runtime = Runtime.build(models_dir=models_dir, output=tmp_path / "out", input=tmp_path / "in",
                            temp=tmp_path / "temp", environ={})
    with runtime.activate():
        yield runtime.executor


def workflow(steps: int | None = None) -> dict[str, Any]:
    prompt = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    if steps is not None:  # fewer steps where the test is about something else: this machine's CPUs are shared
        prompt["3"]["inputs"]["steps"] = steps
    return prompt


def saved_node(prompt: dict[str, Any], class_type: str = "SaveAnimatedWEBP") -> str:
    return next(key for key, node in prompt.items() if node["class_type"] == class_type)


def output_file(result: Any, prompt: dict[str, Any], folders: Folders, class_type: str) -> Path:
    assert result.ok, result.error
    (saved,) = result.outputs[saved_node(prompt, class_type)]["images"]
    return folders.output / saved["subfolder"] / saved["filename"]


def frames_of(result: Any, prompt: dict[str, Any], folders: Folders) -> np.ndarray:
    """The frames of the lossless animated WEBP the workflow saved: the decoded pixels exactly."""
    arrays = []
    with Image.open(output_file(result, prompt, folders, "SaveAnimatedWEBP")) as opened:
        for index in range(opened.n_frames):
            opened.seek(index)
            arrays.append(np.asarray(opened.convert("RGB"), dtype=np.int16))
    return np.stack(arrays)


def mp4_frames(path: Path) -> tuple[np.ndarray, float]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return np.stack(frames), float(stream.average_rate)


def test_make_tiny_lists_and_writes_the_motion_model(tmp_path: Path) -> None:
    listed = CliRunner().invoke(cli, ["models", "make-tiny", "--json"])
    assert listed.exit_code == 0, listed.output
    entry = json.loads(listed.stdout)["animatediff"]
    assert (entry["kind"], entry["filename"]) == ("animatediff_models", "tiny-animatediff-sd1.safetensors")
    out = tmp_path / "mm.safetensors"
    written = CliRunner().invoke(cli, ["models", "make-tiny", "animatediff", "--out", str(out)])
    assert written.exit_code == 0, written.output
    again = tmp_path / "again.safetensors"
    CliRunner().invoke(cli, ["models", "make-tiny", "animatediff", "--out", str(again)])
    assert out.read_bytes() == again.read_bytes()  # same seed, same bytes

    from hearth_video.animatediff_module import load_motion_model

    assert load_motion_model(out).config.version == "v2"


def test_the_example_makes_16_frames_and_the_same_seed_makes_them_again(executor: Any) -> None:
    prompt = workflow()
    result = executor.run(prompt)
    first = frames_of(result, prompt, executor.folders)
    assert first.shape == (16, 64, 64, 3)  # 64 px asked: 8x8 latents, which the tiny VAE upsamples by 8
    assert len({frame.tobytes() for frame in first}) == 16  # 16 frames, not one image repeated
    video, fps = mp4_frames(output_file(result, prompt, executor.folders, "SaveVideo"))
    assert video.shape == (16, 64, 64, 3) and fps == 8.0
    assert np.abs(video.astype(np.int16) - first).mean() < 24  # H.264 is lossy; the same clip all the same
    runtime = executor.runtime
    fresh = Executor(runtime.nodes, cache="none", folders=executor.folders, plugins=runtime.plugins)  # runs every node
    second = fresh.run(copy.deepcopy(prompt))
    assert np.array_equal(first, frames_of(second, prompt, executor.folders))
    # The decoded frames are the same bytes; libx264's frame-type choices may differ between two encodes of them
    # on a loaded machine (seen at 64x64, where it runs several frame threads), so the MP4 is checked for closeness.
    again = mp4_frames(output_file(second, prompt, executor.folders, "SaveVideo"))[0]
    assert again.shape == video.shape and np.abs(again.astype(np.int16) - first).mean() < 24


def test_motion_scale_zero_is_the_image_model_and_one_is_not(executor: Any) -> None:
    prompt = workflow(steps=2)
    # One window of all 16 frames: the example's overlapping windows blend each frame's two predictions with
    # weights, which is the same picture only up to float rounding.
    del prompt["12"]["inputs"]["context_options"]
    prompt["12"]["inputs"]["motion_scale"] = 0.0
    still = frames_of(executor.run(prompt), prompt, executor.folders)
    plain = copy.deepcopy(prompt)
    plain["3"]["inputs"]["model"] = ["4", 0]  # KSampler straight on the checkpoint's MODEL
    image_model = frames_of(executor.run(plain), plain, executor.folders)
    moving = frames_of(executor.run(workflow(steps=2)), prompt, executor.folders)
    assert np.array_equal(still, image_model)
    assert np.abs(moving - image_model).max() > 0


def test_24_frames_in_windows_of_8_run_and_40_frames_without_windows_is_a_clear_error(executor: Any) -> None:
    prompt = workflow(steps=1)
    prompt["5"]["inputs"]["batch_size"] = 24
    assert frames_of(executor.run(prompt), prompt, executor.folders).shape[0] == 24

    unwindowed = workflow()
    del unwindowed["12"]["inputs"]["context_options"]
    unwindowed["5"]["inputs"]["batch_size"] = 40
    result = executor.run(unwindowed)
    assert not result.ok
    assert "at most 32 frames at once, got 40: add AnimateDiffContextOptions" in json.dumps(result.error)


def test_a_lora_patches_the_unet_under_the_motion_model_in_either_order(executor: Any) -> None:
    lora = {"class_type": "LoraLoaderModelOnly",
            "inputs": {"model": ["12", 0], "lora_name": "tiny-lora-sd1.safetensors", "strength_model": 1.0}}
    after = workflow(steps=1)
    after["13"] = lora
    after["3"]["inputs"]["model"] = ["13", 0]
    before = workflow(steps=1)
    before["13"] = copy.deepcopy(lora)
    before["13"]["inputs"]["model"] = ["4", 0]
    before["12"]["inputs"]["model"] = ["13", 0]
    without = workflow(steps=1)
    lora_after = frames_of(executor.run(after), after, executor.folders)
    lora_before = frames_of(executor.run(before), before, executor.folders)
    assert np.array_equal(lora_after, lora_before)
    assert np.abs(lora_after - frames_of(executor.run(without), without, executor.folders)).max() > 0


def _models(models_dir: Path, context_options: Any = None) -> tuple[Any, Any]:
    from hearth_sd.loaders import checkpoint
    from hearth_video.animatediff_nodes import load_motion_model_file
    from hearth_video.animatediff_sampling import AnimateDiffModel

    sd, _, _ = checkpoint(models_dir / "checkpoints" / "tiny-sd1.safetensors")
    motion = load_motion_model_file(models_dir / "animatediff_models" / "tiny-animatediff-sd1.safetensors")
    return sd, AnimateDiffModel(sd.clone(), motion, context=context_options)


def test_the_motion_model_couples_the_frames_and_the_image_model_does_not(models_dir: Path) -> None:
    sd, animated = _models(models_dir)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 4, 8, 8, generator=gen) * 5
    cond = torch.randn(1, 77, 32, generator=gen)
    sigma = torch.full((8,), 5.0)
    nudged = x.clone()
    nudged[0] += 1.0
    for model, coupled in ((sd, False), (animated, True)):
        model.prepare(tuple(x.shape))
        before, after = model.denoise(x, sigma, cond), model.denoise(nudged, sigma, cond)
        others = (after[1:] - before[1:]).abs().max().item()
        assert (others > 1e-4) == coupled, (model, others)


def test_windows_matter_only_past_the_context_length(models_dir: Path) -> None:
    from hearth_video.animatediff_context import ContextOptions

    _, whole = _models(models_dir)
    _, windowed = _models(models_dir, ContextOptions(8, 2))
    gen = torch.Generator().manual_seed(1)
    cond = torch.randn(1, 77, 32, generator=gen)
    short = torch.randn(8, 4, 8, 8, generator=gen)
    assert torch.equal(whole.denoise(short, torch.full((8,), 3.0), cond),
                       windowed.denoise(short, torch.full((8,), 3.0), cond))
    longer = torch.randn(16, 4, 8, 8, generator=gen)
    one_pass = whole.denoise(longer, torch.full((16,), 3.0), cond)
    windows = windowed.denoise(longer, torch.full((16,), 3.0), cond)
    assert windows.shape == one_pass.shape and (windows - one_pass).abs().max().item() > 1e-4


def test_the_model_value_is_the_sd_models_but_for_prepare_and_denoise(models_dir: Path) -> None:
    sd, animated = _models(models_dir)
    twin = animated.clone()
    assert twin.patcher is not animated.patcher and twin.patcher.shares_weights(sd.patcher)
    assert (twin.sampling, twin.latent_channels, twin.family) == (sd.sampling, 4, "sd1")
    twin.model_options = {"transformer_options": {"marker": 1}}  # as some custom nodes write it
    assert twin.inner.model_options == {"transformer_options": {"marker": 1}}
    assert "marker" not in animated.inner.model_options.get("transformer_options", {})
    assert twin.memory_bytes() == sd.memory_bytes() + twin.motion.memory_bytes()


def test_the_clip_length_comes_from_the_sampled_latent(models_dir: Path) -> None:
    _, animated = _models(models_dir)
    cond = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(2))
    animated.process_latent_in(torch.zeros(16, 4, 8, 8))  # a sampler starts on a 16-frame clip
    with pytest.raises(ValueError, match="a batch of 24 latents is not a whole number of 16-frame clips"):
        animated.denoise(torch.zeros(24, 4, 8, 8), torch.full((24,), 2.0), cond)
    animated.process_latent_out(torch.zeros(16, 4, 8, 8))  # ...and ends: a direct call is one clip again
    assert animated.denoise(torch.zeros(8, 4, 8, 8), torch.full((8,), 2.0), cond).shape == (8, 4, 8, 8)


def test_apply_refuses_what_is_not_an_sd1_model(models_dir: Path, tmp_path: Path) -> None:
    from hearth_sd.loaders import checkpoint
    from hearth_sd.tiny import make_tiny_checkpoint
    from hearth_video.animatediff_nodes import ApplyAnimateDiffModel, load_motion_model_file

    with pytest.raises(ValueError, match="ApplyAnimateDiffModel needs an SD1.x MODEL"):
        ApplyAnimateDiffModel().apply(object(), None, 1.0)
    motion = load_motion_model_file(models_dir / "animatediff_models" / "tiny-animatediff-sd1.safetensors")
    # The tiny SDXL UNet has the tiny SD1 one's widths, so only the family can tell the motion model it is wrong.
    sdxl, _, _ = checkpoint(make_tiny_checkpoint("sdxl", tmp_path / "tiny-sdxl.safetensors"))
    with pytest.raises(ValueError, match=r"tiny-animatediff-sd1\.safetensors .* is made for SD1\.x models; this "
                                         r"MODEL is sdxl: load an SD1\.x checkpoint"):
        ApplyAnimateDiffModel().apply(sdxl, motion, 1.0)


def test_a_tight_budget_streams_unet_and_motion_model_with_the_same_result(models_dir: Path) -> None:
    from hearth.core.models import ModelManager, default_manager

    _, animated = _models(models_dir)
    gen = torch.Generator().manual_seed(3)
    x, cond, sigma = torch.randn(8, 4, 8, 8, generator=gen), torch.randn(1, 77, 32, generator=gen), torch.full((8,), 3.0)
    animated.prepare(tuple(x.shape))
    want = animated.denoise(x, sigma, cond)
    roomy = default_manager()
    shape = tuple(x.shape)
    working = sum(roomy.memory_estimate(p, shape, torch.float32) for p in animated._patchers())
    tight = ModelManager(budgets={"cpu": working + 2_000_000})  # less than UNet + motion model weigh together
    try:
        with Runtime.build(environ={}, manager=tight).activate():
            animated.prepare(shape)
            records = tight.loaded_models()
            assert {r.name for r in records} == {"tiny-sd1.safetensors", "tiny-animatediff-sd1.safetensors"}
            assert all(r.partial for r in records)  # both loaded together, both partly streamed
            assert torch.equal(animated.denoise(x, sigma, cond), want)
    finally:
        tight.free()  # takes its streaming hooks off the shared modules
