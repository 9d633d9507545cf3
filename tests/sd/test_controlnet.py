"""ControlNet / T2I-Adapter nodes on the tiny SD models: through the executor, strength, start/end percent as
ComfyUI maps them to sigmas, chains, hint resizing and batches, memory through the manager, and bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hearth_sd.controlnet import broadcast_hint, resize_hint
from hearth_sd.controlnet_tiny import tiny_controlnet, write_tiny
from hearth_sd.nodes_controlnet import (
    ControlNetApply,
    ControlNetApplyAdvanced,
    ControlNetInpaintingAliMamaApply,
    ControlNetLoader,
    DiffControlNetLoader,
    SetUnionControlNetType,
)
from hearth_sd.nodes_text import CLIPTextEncode
from hearth_sd.tiny import make_tiny_checkpoint

from hearth.core.images import tensor_to_pil
from hearth.core.models import default_manager, write_safetensors
from hearth.core.models.loader_nodes import CheckpointLoaderSimple
from hearth.core.runtime import Runtime
from tests.sd.nodes_testing import image

CN_SD1 = "tiny-controlnet-sd1.safetensors"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """The tiny SD1 and SDXL checkpoints and the tiny ControlNets / T2I-Adapter, as make-tiny writes them."""
    folder = tmp_path_factory.mktemp("models")
    for family in ("sd1", "sdxl"):
        make_tiny_checkpoint(family, folder / "checkpoints" / f"tiny-{family}.safetensors")
        write_tiny("controlnet", family, folder / "controlnet" / f"tiny-controlnet-{family}.safetensors")
    write_tiny("t2i_adapter", "sd1", folder / "controlnet" / "tiny-t2i-adapter-sd1.safetensors")
    return folder


@pytest.fixture(scope="module")
def runtime(models) -> Runtime:
    """One Runtime on ``models`` for the module: plugins load once."""
    return Runtime.build(models_dir=models, environ={})


@pytest.fixture
def folders(runtime):
    """``runtime`` active for the test (over the suite's own per-test Runtime)."""
    with runtime.activate():
        yield runtime.model_folders


@pytest.fixture(scope="module")
def sd1_loaded(runtime):
    with runtime.activate():
        model, clip, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sd1.safetensors")
        (positive,) = CLIPTextEncode().encode(clip, "a lighthouse at dusk")
        (negative,) = CLIPTextEncode().encode(clip, "blurry")
    return model, positive, negative


@pytest.fixture
def sd1(folders, sd1_loaded):
    """The tiny SD1 MODEL and two prompts, loaded once for the module (nodes copy what they change)."""
    return sd1_loaded


def _denoise(model, conditioning, sigma: float = 2.0, seed: int = 0) -> torch.Tensor:
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(seed))
    cond, options = conditioning[0]
    return model.denoise(x, torch.full((2,), sigma), cond.repeat(2, 1, 1), options)


def _apply(positive, negative, control_net, hint, strength=1.0, start=0.0, end=1.0):
    return ControlNetApplyAdvanced().apply_controlnet(positive, negative, control_net, hint, strength, start, end)


def _pixels(result, folders) -> list[list[int]]:
    from PIL import Image

    assert result.ok, result.error
    return [np.asarray(Image.open(folders.output / i["subfolder"] / i["filename"])).tolist()
            for i in result.outputs["9"]["images"]]


def test_workflow_with_a_controlnet_differs_from_one_without(hearth_runtime, run_prompt, hearth_folders):
    from hearth_sd.controlnet_tiny import write_tiny
    folders = hearth_runtime.model_folders
    make_tiny_checkpoint("sd1", folders.folders("checkpoints")[0] / "tiny-sd1.safetensors")
    write_tiny("controlnet", "sd1", folders.folders("controlnet")[0] / CN_SD1)
    tensor_to_pil(image(1, 48, 80, seed=3)[0]).save(hearth_folders.input / "hint.png")  # resized to 64x64

    def prompt(strength: float | None) -> dict:
        nodes = {
            "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-sd1.safetensors"}},
            "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["1", 1]}},
            "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
            "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
            "5": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": CN_SD1}},
            "6": {"class_type": "LoadImage", "inputs": {"image": "hint.png"}},
            "7": {"class_type": "ControlNetApplyAdvanced", "inputs": {
                "positive": ["2", 0], "negative": ["3", 0], "control_net": ["5", 0], "image": ["6", 0],
                "strength": strength, "start_percent": 0.0, "end_percent": 1.0}},
            "8": {"class_type": "KSampler", "inputs": {
                "model": ["1", 0], "seed": 7, "steps": 2, "cfg": 5.0, "sampler_name": "euler",
                "scheduler": "normal", "positive": ["7", 0], "negative": ["7", 1], "latent_image": ["4", 0],
                "denoise": 1.0}},
            "10": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["1", 2]}},
            "9": {"class_type": "SaveImage", "inputs": {"images": ["10", 0], "filename_prefix": "cn"}},
        }
        if strength is None:  # the same graph without the ControlNet
            for node in ("5", "6", "7"):
                del nodes[node]
            nodes["8"]["inputs"].update(positive=["2", 0], negative=["3", 0])
        return nodes

    without, controlled = (_pixels(run_prompt(prompt(s), cache="none"), hearth_folders) for s in (None, 1.0))
    assert controlled != without


def test_strength_zero_is_no_controlnet(sd1):
    model, positive, negative = sd1
    (cn,) = ControlNetLoader().load_controlnet(CN_SD1)
    pos, neg = _apply(positive, negative, cn, image(1, 64, 64), strength=0.0)
    assert pos is positive and neg is negative  # ComfyUI returns its inputs untouched
    tiny, _ = _apply(positive, negative, cn, image(1, 64, 64), strength=1e-6)
    assert (_denoise(model, tiny) - _denoise(model, positive)).abs().max() < 1e-4


def _controls(conditioning, sigma: float, model=None, x=None):
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1)) if x is None else x
    cond, options = conditioning[0]
    sigma_t = torch.full((x.shape[0],), sigma)
    context = cond.repeat(x.shape[0], 1, 1)
    return options["control"].get_control(x, sigma_t, sigma_t * 100, context, None, model=model)


def test_percent_range_switches_at_the_models_sigmas(sd1):
    model, positive, negative = sd1
    (cn,) = ControlNetLoader().load_controlnet(CN_SD1)
    hint = image(1, 64, 64)
    pos, neg = _apply(positive, negative, cn, hint, start=0.25, end=0.6)
    assert pos[0][1]["control"] is neg[0][1]["control"]  # one object: positive and negative batch together
    high, low = model.sampling.percent_to_sigma(0.25), model.sampling.percent_to_sigma(0.6)
    assert 0 < low < high < model.sampling.sigma_max
    assert _controls(pos, high * 1.01, model) is None and _controls(pos, low * 0.99, model) is None
    assert _controls(pos, high * 0.99, model) is not None and _controls(pos, low * 1.01, model) is not None
    # Through the MODEL: off at sigma above the range it predicts as without the ControlNet.
    assert torch.equal(_denoise(model, pos, sigma=high * 1.01), _denoise(model, positive, sigma=high * 1.01))
    assert (_denoise(model, pos, sigma=high * 0.99) - _denoise(model, positive, sigma=high * 0.99)).abs().max() > 1e-3
    assert default_manager().is_loaded(cn.patcher) and default_manager().is_loaded(model.patcher)


def test_strength_scales_and_chains_sum(sd1):
    model, positive, negative = sd1
    (cn,) = ControlNetLoader().load_controlnet(CN_SD1)
    (adapter,) = ControlNetLoader().load_controlnet("tiny-t2i-adapter-sd1.safetensors")
    hint = image(1, 64, 64)
    full = _controls(_apply(positive, negative, cn, hint)[0], 2.0, model)
    pos, neg = _apply(positive, negative, cn, hint, strength=0.7)
    pos, neg = _apply(pos, neg, cn, hint, strength=0.3)
    pos, neg = _apply(pos, neg, adapter, hint, strength=0.5)
    assert pos[0][1]["control"].previous_controlnet.previous_controlnet is not None
    assert pos[0][1]["control"] is neg[0][1]["control"]
    # The executor's ram cache weighs the chain by its weights, each file once.
    assert pos[0][1]["control"].memory_bytes() == cn.patcher.nbytes + adapter.patcher.nbytes > 0
    chained = _controls(pos, 2.0, model)
    for key in ("output", "middle"):
        assert len(chained[key]) == len(full[key])
        for got, want in zip(chained[key], full[key], strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    alone = _controls(_apply(positive, negative, adapter, hint, strength=1.0)[0], 2.0, model)
    for got, want in zip(chained["input"], alone["input"], strict=True):
        assert (got is None) == (want is None) and (got is None or torch.allclose(got, 0.5 * want, atol=1e-6))
    assert (_denoise(model, pos) - _denoise(model, positive)).abs().max() > 1e-3


def test_separate_controlnets_never_batch_as_one(sd1):
    from hearth_samplers.guidance import predict
    from hearth_samplers.regions import resolve

    model, positive, negative = sd1
    (cn,) = ControlNetLoader().load_controlnet(CN_SD1)
    # The same ControlNet and settings, but another hint for the negative: two objects that must stay apart.
    (pos,) = ControlNetApply().apply_controlnet(positive, cn, torch.zeros(1, 64, 64, 3), 1.0)
    (neg,) = ControlNetApply().apply_controlnet(negative, cn, torch.ones(1, 64, 64, 3), 1.0)
    x, sigma = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5)), torch.tensor([2.0])
    together = predict(model, [resolve(pos, x.shape, model.sampling), resolve(neg, x.shape, model.sampling)], x, sigma)
    alone = predict(model, [resolve(neg, x.shape, model.sampling)], x, sigma)
    torch.testing.assert_close(together[1], alone[0], rtol=1e-6, atol=1e-6)


def test_old_apply_node_marks_the_positive_for_the_negative(sd1):
    _, positive, _ = sd1
    (cn,) = ControlNetLoader().load_controlnet(CN_SD1)
    (once,) = ControlNetApply().apply_controlnet(positive, cn, image(1, 64, 64), 0.8)
    (twice,) = ControlNetApply().apply_controlnet(once, cn, image(1, 64, 64), 0.5)
    options = twice[0][1]
    assert options["control_apply_to_uncond"] is True and options["control"].strength == 0.5
    assert options["control"].previous_controlnet is once[0][1]["control"]
    # ComfyUI's ControlBase surface that custom nodes read.
    assert options["control"].control_model is cn.patcher.module and options["control"].control_model_wrapped is cn.patcher
    assert [m.name for m in options["control"].get_models()] == [CN_SD1, CN_SD1]
    assert "control" not in positive[0][1]  # the input conditioning is left as it was


def test_hint_is_centre_cropped_resized_and_broadcast_as_comfyui_does():
    hint = image(2, 48, 80, seed=4).movedim(-1, 1)
    # ComfyUI's common_upscale(..., "nearest-exact", "center"): 80x48 to 64x64 keeps columns 16..63.
    torch.testing.assert_close(resize_hint(hint, 64, 64),
                               F.interpolate(hint[..., 16:64], size=(64, 64), mode="nearest-exact"))
    b = broadcast_hint(hint, batch=6, batched_number=2)  # two images over 3 latents, for positive and negative
    assert [torch.equal(b[i], hint[j]) for i, j in enumerate([0, 1, 0, 0, 1, 0])] == [True] * 6
    assert broadcast_hint(hint[:1], 6, 2).shape[0] == 1


def test_a_controlnet_for_sdxl_on_sd1_names_both(sd1):
    model, positive, negative = sd1
    (cn,) = ControlNetLoader().load_controlnet("tiny-controlnet-sdxl.safetensors")
    pos, _ = _apply(positive, negative, cn, image(1, 64, 64))
    with pytest.raises(ValueError, match=r"tiny-controlnet-sdxl.safetensors.*for sdxl models but the MODEL is sd1"):
        _controls(pos, 2.0, model)
    with pytest.raises(ValueError, match="for sdxl models"):
        _denoise(model, pos)


def test_bad_files_and_hints_are_named(folders, models, sd1):
    model, positive, negative = sd1
    broken = models / "controlnet" / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file at all")
    with pytest.raises(Exception, match="broken.safetensors"):
        ControlNetLoader().load_controlnet("broken.safetensors")
    union = models / "controlnet" / "union.safetensors"
    write_safetensors({k: torch.zeros(1) for k in ("controlnet_cond_embedding.conv_in.weight",
                                                   "controlnet_down_blocks.0.weight",
                                                   "control_add_embedding.linear_1.weight")}, union)
    with pytest.raises(ValueError, match="union.safetensors: a diffusers ControlNet without down_blocks"):
        ControlNetLoader().load_controlnet("union.safetensors")
    other = models / "controlnet" / "a-checkpoint.safetensors"
    other.write_bytes((models / "checkpoints" / "tiny-sd1.safetensors").read_bytes())
    with pytest.raises(Exception, match="ControlNetLoader: a-checkpoint.safetensors"):
        ControlNetLoader().load_controlnet("a-checkpoint.safetensors")
    (cn,) = ControlNetLoader().load_controlnet(CN_SD1)
    with pytest.raises(ValueError, match="ControlNetApplyAdvanced: image has 4 channels"):
        _apply(positive, negative, cn, torch.rand(1, 64, 64, 4))
    with pytest.raises(TypeError, match="control_net is a str"):
        _apply(positive, negative, "tiny.safetensors", image(1, 64, 64))


def test_diff_controlnet_adds_the_models_unet(folders, models, sd1):
    model, positive, negative = sd1
    tensors, metadata = tiny_controlnet("sd1")
    base = model.patcher.module.state_dict()
    diff = {f"control_model.{k}": (v.float() - base[k].float()) if k in base else v.float() for k, v in tensors.items()}
    diff["difference"] = torch.zeros(1)
    write_safetensors(diff, models / "controlnet" / "diff.safetensors", metadata)
    (plain,) = ControlNetLoader().load_controlnet(CN_SD1)
    (restored,) = DiffControlNetLoader().load_controlnet(model, "diff.safetensors")
    want = plain.patcher.module.state_dict()
    got = restored.patcher.module.state_dict()
    assert "input_blocks.1.0.in_layers.2.weight" in base and want.keys() == got.keys()
    for key in want:
        torch.testing.assert_close(got[key].float(), want[key].float(), atol=2e-3, rtol=0)


def test_union_type_reaches_a_union_controlnet(folders, models):
    from hearth_sd.controlnet_model import ControlNetConfig, ControlNetModel
    from hearth_sd.controlnet_tiny import TINY_HINT_WIDTHS
    from hearth_sd.families import SDXL

    from .sd_testing import randomize_

    union = randomize_(ControlNetModel(ControlNetConfig(SDXL.unet_tiny, 3, TINY_HINT_WIDTHS, union_types=8)), seed=3)
    _, metadata = tiny_controlnet("sdxl")
    write_safetensors(union.state_dict(), models / "controlnet" / "tiny-union.safetensors", metadata)
    (cn,) = ControlNetLoader().load_controlnet("tiny-union.safetensors")
    (typed,) = SetUnionControlNetType().set_controlnet_type(cn, "depth")
    (auto,) = SetUnionControlNetType().set_controlnet_type(typed, "auto")
    assert typed.extra_args["control_type"] == [1] and auto.extra_args["control_type"] == []
    assert "control_type" not in cn.extra_args and typed is not cn
    x, sigma = torch.randn(1, 4, 8, 8), torch.tensor([2.0])
    context, y = torch.randn(1, 7, SDXL.unet_tiny.context_dim), torch.randn(1, SDXL.unet_tiny.adm_in_channels)

    def middle(control):
        control = control.copy().set_cond_hint(image(1, 64, 64).movedim(-1, 1))
        return control.get_control(x, sigma, sigma * 100, context, y)["middle"][0]

    assert (middle(typed) - middle(auto)).abs().max() > 1e-4


def test_inpainting_apply_on_an_sd1_controlnet_is_the_plain_apply(sd1):
    model, positive, negative = sd1
    (cn,) = ControlNetLoader().load_controlnet(CN_SD1)
    hint, mask = image(1, 64, 64), torch.ones(1, 64, 64)
    pos, _ = ControlNetInpaintingAliMamaApply().apply_inpaint_controlnet(positive, negative, cn, None, hint, mask,
                                                                        1.0, 0.0, 1.0)
    want = _controls(_apply(positive, negative, cn, hint)[0], 2.0, model)
    got = _controls(pos, 2.0, model)  # an SD1 ControlNet takes no mask channel: the image as it is, as in ComfyUI
    for a, b in zip(got["output"], want["output"], strict=True):
        assert torch.equal(a, b)


def test_control_lora_is_built_on_the_models_unet(folders, models, sd1):
    from hearth_sd.controlnet_model import ControlNetConfig, ControlNetModel
    from hearth_sd.controlnet_tiny import TINY_HINT_WIDTHS

    model, positive, negative = sd1
    unet = {k: v.float() for k, v in model.diffusion.unet.state_dict().items()}
    tensors, _ = tiny_controlnet("sd1", seed=9)
    own = {k: v.float() for k, v in tensors.items()
           if k.startswith(("input_hint_block.", "zero_convs.", "middle_block_out.")) or k.endswith(".bias")}
    gen = torch.Generator().manual_seed(4)
    lora, want = {"lora_controlnet": torch.zeros(1), **own}, {}
    for key in ("input_blocks.1.0.in_layers.2.weight", "input_blocks.1.1.proj_in.weight", "time_embed.0.weight"):
        layer, shape = key[:-len(".weight")], unet[key].shape
        up, down = torch.randn(shape[0], 2, generator=gen), torch.randn(2, int(unet[key][0].numel()), generator=gen)
        lora[f"{layer}.up"], lora[f"{layer}.down"] = up, down
        want[key] = unet[key] + (up @ down).reshape(shape)
    write_safetensors(lora, models / "controlnet" / "control-lora-tiny.safetensors")
    (cn,) = ControlNetLoader().load_controlnet("control-lora-tiny.safetensors")
    assert cn.hint_channels == 3 and cn.family == "sd1"
    pos, _ = _apply(positive, negative, cn, image(1, 64, 64))
    got = _controls(pos, 2.0, model)
    # The reference: the UNet's encoder, the file's full layers over it, each LoRA layer's weight plus up @ down.
    reference = ControlNetModel(ControlNetConfig(model.diffusion.unet.config, 3, TINY_HINT_WIDTHS)).eval()
    state = {k: want.get(k, own.get(k, unet.get(k))) for k in reference.state_dict()}
    reference.load_state_dict(state, strict=True)
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    cond = pos[0][0].repeat(2, 1, 1)
    with torch.no_grad():
        expected = reference(x, image(1, 64, 64).movedim(-1, 1), torch.full((2,), 200.0), cond)
    for a, b in zip(got["output"], expected["output"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    (again,) = ControlNetLoader().load_controlnet("control-lora-tiny.safetensors")
    assert again.built is cn.built and len(cn.built) == 1  # one network per MODEL, shared by loads
    lora["label_emb.0.0.up"], lora["label_emb.0.0.down"] = torch.zeros(128, 2), torch.zeros(2, 1568)
    write_safetensors(lora, models / "controlnet" / "control-lora-xl.safetensors")
    (xl,) = ControlNetLoader().load_controlnet("control-lora-xl.safetensors")
    with pytest.raises(ValueError, match="Control-LoRA 'control-lora-xl.safetensors' is for sdxl models but the MODEL"):
        _controls(_apply(positive, negative, xl, image(1, 64, 64))[0], 2.0, model)


def test_block_patches_and_control_together_as_without_patches(sd1):
    model, positive, negative = sd1
    (cn,) = ControlNetLoader().load_controlnet(CN_SD1)
    (adapter,) = ControlNetLoader().load_controlnet("tiny-t2i-adapter-sd1.safetensors")
    pos, neg = _apply(positive, negative, cn, image(1, 64, 64))
    pos, _ = _apply(pos, neg, adapter, image(1, 64, 64))
    patched = model.clone()
    seen = []
    patched.set_model_input_block_patch(lambda h, options: seen.append(options["block"]) or h)
    patched.set_model_output_block_patch(lambda h, skip, options: (h, skip))
    # run_unet (the path with ComfyUI's block hooks) adds the residuals where UNetModel.forward does.
    torch.testing.assert_close(_denoise(patched, pos), _denoise(model, pos), rtol=1e-5, atol=1e-5)
    assert ("input", 5) in seen
    assert (_denoise(patched, pos) - _denoise(patched, positive)).abs().max() > 1e-3


def test_sdxl_controlnet_on_sdxl_gets_the_adm_vector(folders):
    model, clip, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sdxl.safetensors")
    (positive,) = CLIPTextEncode().encode(clip, "a lighthouse")
    (cn,) = ControlNetLoader().load_controlnet("tiny-controlnet-sdxl.safetensors")
    (adapter,) = ControlNetLoader().load_controlnet("tiny-t2i-adapter-sd1.safetensors")
    pos, _ = _apply(positive, positive, cn, image(1, 64, 64))
    assert (_denoise(model, pos) - _denoise(model, positive)).abs().max() > 1e-3
    with pytest.raises(ValueError, match="T2I-Adapter 'tiny-t2i-adapter-sd1.safetensors' is for sd1 models but the "
                                         "MODEL is sdxl"):
        _denoise(model, _apply(positive, positive, adapter, image(1, 64, 64))[0])
