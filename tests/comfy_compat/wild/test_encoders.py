"""ComfyUI's encoder and loader internals as packs from the wild use them, run through the executor on a tiny SD1
model: comfy.lora key maps and load_lora (KJNodes, Easy-Use), comfy.sd1_clip prompt weighting and tokenizers,
comfy.sd's loaders (WAS' load_checkpoint with a config, state-dict loaders, diffusion models, VAE/CLIP classes),
comfy.controlnet's classes and arithmetic, comfy.clip_vision's preprocessing, and what Hearth lacks failing by name.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from hearth.core.executor import Executor
from hearth.core.model_folders import ModelFolders
from hearth.core.plugins import PluginManager
from tests.comfy_compat.tiny_sd import (
    CHECKPOINT,
    LORA,
    node,
    preview_pixels,
    sampling_inputs,
    txt2img_parts,
)

PACKS = Path(__file__).parent / "packs_encoders"


def pixels(executor: Executor, extra: dict, model: list | None = None, positive: list | None = None,
           vae: list | None = None) -> np.ndarray:
    """txt2img (KSampler as node 5, decoded by 6, previewed by 7) with parts of it replaced."""
    inputs = sampling_inputs(**({"model": model} if model else {}), **({"positive": positive} if positive else {}))
    prompt = {**txt2img_parts(), **extra, "5": node("KSampler", **inputs, denoise=1.0),
              "6": node("VAEDecode", samples=["5", 0], vae=vae or ["1", 2]), "7": node("PreviewImage", images=["6", 0])}
    result = executor.run(prompt)
    assert result.ok, result.error
    return preview_pixels(result, "7", executor.folders).astype(int)


def shown(executor: Executor, extra: dict, source: list) -> str:
    result = executor.run({**extra, "99": node("ShowString", text=source)})
    assert result.ok, result.error
    return result.outputs["99"]["text"][0]


@pytest.fixture(scope="module")
def base_pixels(executor: Executor) -> np.ndarray:
    return pixels(executor, {})


def test_the_pack_loads_with_its_subclasses(pm: PluginManager) -> None:
    record = pm.records["encoders_pack"]
    assert record.error is None, record.traceback
    assert {"KeyMapLoraLoader", "ScaledEmphasisEncode", "ApplyPackControlNet", "ClipPreprocess"} <= set(pm.nodes())
    import comfy.clip_vision
    import comfy.controlnet
    import comfy.sd

    pack = inspect.getmodule(pm.nodes()["ApplyPackControlNet"].cls)
    assert issubclass(pack.PackControlNet, comfy.controlnet.ControlNet)
    assert issubclass(pack.PackControlNet, comfy.controlnet.ControlBase)
    assert issubclass(pack.PackClipVision, comfy.clip_vision.ClipVisionModel)
    assert issubclass(pack.PackVAE, comfy.sd.VAE)


def test_a_lora_put_on_by_key_map_and_load_lora_samples_as_lora_loader(executor: Executor,
                                                                        base_pixels: np.ndarray) -> None:
    by_key_map = pixels(executor, {"10": node("KeyMapLoraLoader", model=["1", 0], lora_name=LORA, strength=0.8)},
                        model=["10", 0])
    by_loader = pixels(executor, {"10": node("LoraLoaderModelOnly", model=["1", 0], lora_name=LORA,
                                             strength_model=0.8)}, model=["10", 0])
    assert np.array_equal(by_key_map, by_loader)
    assert np.abs(by_key_map - base_pixels).max() > 0


def test_a_clip_lora_by_key_map_encodes_as_lora_loader(executor: Executor, base_pixels: np.ndarray) -> None:
    ours = pixels(executor, {"10": node("KeyMapClipLora", clip=["1", 1], lora_name=LORA, strength=0.8),
                             "11": node("CLIPTextEncode", clip=["10", 0], text="a red cat")}, positive=["11", 0])
    theirs = pixels(executor, {"10": node("LoraLoader", model=["1", 0], clip=["1", 1], lora_name=LORA,
                                          strength_model=0.0, strength_clip=0.8),
                               "11": node("CLIPTextEncode", clip=["10", 1], text="a red cat")}, positive=["11", 0])
    assert np.array_equal(ours, theirs)
    assert np.abs(ours - base_pixels).max() > 0


def test_lora_key_maps_use_comfyuis_names(pm: PluginManager) -> None:
    import comfy.lora

    model, clip, _ = pm.nodes()["CheckpointLoaderSimple"].cls().load_checkpoint(CHECKPOINT)
    unet = comfy.lora.model_lora_keys_unet(model.model, {})
    target = "diffusion_model.input_blocks.1.1.proj_in.weight"
    for name in ("lora_unet_input_blocks_1_1_proj_in", "lora_unet_down_blocks_0_attentions_0_proj_in",
                 "unet.down_blocks.0.attentions.0.proj_in", "diffusion_model.input_blocks.1.1.proj_in"):
        assert unet[name] == target, name
    assert unet["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0"] == (
        "diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_out.0.weight")
    assert unet["unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out"].endswith("to_out.0.weight")
    assert unet["lora_unet_down_blocks_0_downsamplers_0_conv"] == "diffusion_model.input_blocks.3.0.op.weight"
    assert unet["lora_unet_up_blocks_0_resnets_0_conv1"] == "diffusion_model.output_blocks.0.0.in_layers.2.weight"
    assert unet["lora_unet_mid_block_resnets_1_time_emb_proj"] == "diffusion_model.middle_block.2.emb_layers.1.weight"
    text = comfy.lora.model_lora_keys_clip(clip, {})
    assert text["lora_te_text_model_encoder_layers_0_self_attn_q_proj"] == (
        "clip_l.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight")
    assert text["text_encoder.text_model.encoder.layers.1.mlp.fc2"].endswith("layers.1.mlp.fc2.weight")


def test_load_lora_and_calculate_weight_do_comfyuis_arithmetic(pm: PluginManager) -> None:
    import comfy.lora

    up, down = torch.randn(6, 2), torch.randn(2, 5)
    lora = {"m.lora_B.weight": up, "m.lora_A.weight": down, "m.alpha": torch.tensor(1.0),
            "n.diff": torch.ones(6, 5), "n.diff_b": torch.ones(6), "o.set_weight": torch.zeros(6, 5)}
    patches = comfy.lora.load_lora(lora, {"m": "a.weight", "n": "b.weight", "o": "c.weight"})
    assert patches["a.weight"][0] == "lora" and patches["a.weight"][1][2] == 1.0
    assert patches["b.weight"][0] == "diff" and patches["b.bias"][0] == "diff" and patches["c.weight"][0] == "set"
    weight = torch.randn(6, 5)
    got = comfy.lora.calculate_weight([(0.5, patches["a.weight"], 1.0, None, None)], weight.clone(), "a.weight")
    assert torch.allclose(got, weight + 0.5 * 0.5 * (up @ down))  # strength 0.5, alpha / rank = 1 / 2
    got = comfy.lora.calculate_weight([(2.0, (torch.ones(6, 5),), 0.5, None, None)], weight.clone(), "b.weight")
    assert torch.allclose(got, weight * 0.5 + 2.0)
    narrowed = comfy.lora.calculate_weight([(1.0, ("diff", (torch.ones(2, 5),)), 1.0, (0, 1, 2), None)],
                                           weight.clone(), "b.weight")
    assert torch.allclose(narrowed[1:3], weight[1:3] + 1) and torch.equal(narrowed[0], weight[0])
    assert torch.equal(comfy.lora.pad_tensor_to_shape(torch.ones(1, 2), [2, 3]),
                       torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    # DoRA: each input column of the result has the norm dora_scale asks for.
    scale = torch.full((1, 5), 3.0)
    dora = comfy.lora.calculate_weight([(1.0, ("lora", (up, down, None, None, scale, None)), 1.0, None, None)],
                                       weight.clone(), "a.weight")
    assert torch.allclose(dora.norm(dim=0), torch.full((5,), 3.0), atol=1e-5)


def test_prompt_weights_parsed_with_sd1_clip_encode_as_clip_text_encode(executor: Executor) -> None:
    text = "a (red:1.5) cat, \\(study\\)"
    same = {"10": node("ScaledEmphasisEncode", clip=["1", 1], text=text, scale=1.0)}
    assert shown(executor, {**txt2img_parts(), **same}, ["10", 1]) == "a (red:1.5) cat, \\(study\\)"
    ours = pixels(executor, same, positive=["10", 0])
    theirs = pixels(executor, {"10": node("CLIPTextEncode", clip=["1", 1], text=text)}, positive=["10", 0])
    assert np.array_equal(ours, theirs)
    flat = {"10": node("ScaledEmphasisEncode", clip=["1", 1], text=text, scale=0.0)}
    assert shown(executor, {**txt2img_parts(), **flat}, ["10", 1]) == "a red cat, \\(study\\)"
    assert not np.array_equal(pixels(executor, flat, positive=["10", 0]), ours)


def test_sd1_tokenizer_on_its_own_gives_comfyuis_windows(executor: Executor) -> None:
    extra = {"10": node("StandaloneTokenizer", text="a (red:1.5) cat")}
    # a=320, red=736, cat=2368; word ids count the weighted segments ("a ", "red", " cat").
    assert shown(executor, extra, ["10", 0]) == "320:1:1,736:1.5:2,2368:1:3"
    import comfy.sd1_clip

    assert comfy.sd1_clip.token_weights("a ((b)) (c:0.5)", 1.0) == [("a ", 1.0), ("b", pytest.approx(1.21)),
                                                                     (" ", 1.0), ("c", 0.5)]
    assert comfy.sd1_clip.parse_parentheses("x (y (z)) w") == ["x ", "(y (z))", " w"]
    windows = comfy.sd1_clip.SDTokenizer().tokenize_with_weights(" ".join(["word"] * 80))
    assert [len(w) for w in windows] == [77, 77] and windows[1][0] == (49406, 1.0)
    import comfy.sd2_clip
    import comfy.sdxl_clip
    from hearth_comfy_compat import hook

    assert comfy.sd2_clip.SD2Tokenizer().tokenize_with_weights("a cat")["h"][0][:5] == [
        (49406, 1.0), (320, 1.0), (2368, 1.0), (49407, 1.0), (0, 1.0)]  # OpenCLIP pads with 0
    with pytest.raises(hook.HearthDoesNotProvide, match=r"comfy\.sd1_clip\.SDClipModel\(\).*comfy\.clip_model"):
        comfy.sdxl_clip.SDXLClipModel()


def test_load_checkpoint_with_a_v_config_loads_v_prediction(executor: Executor, base_pixels: np.ndarray) -> None:
    plain = pixels(executor, {"10": node("LoadCheckpointWithConfig", config_name="v1-inference.yaml",
                                         ckpt_name=CHECKPOINT)}, model=["10", 0])
    assert np.array_equal(plain, base_pixels)
    v = pixels(executor, {"10": node("LoadCheckpointWithConfig", config_name="v2-inference-v.yaml",
                                     ckpt_name=CHECKPOINT)}, model=["10", 0])
    assert not np.array_equal(v, base_pixels)


def test_a_vae_subclass_from_tensors_decodes_as_the_checkpoints(executor: Executor, base_pixels: np.ndarray) -> None:
    extra = {"10": node("VAEFromCheckpointTensors", ckpt_name=CHECKPOINT)}
    assert np.array_equal(pixels(executor, extra, vae=["10", 0]), base_pixels)
    assert shown(executor, extra, ["10", 1]) == "4 channels"


def test_a_pack_controlnet_chain_computes_comfyuis_control(executor: Executor) -> None:
    extra = {"10": node("CLIPTextEncode", clip=["1", 1], text="a red cat"),
             "11": node("EmptyImage", width=32, height=32, batch_size=1, color=0xFF0000),
             "12": node("ApplyPackControlNet", conditioning=["10", 0], image=["11", 0], strength=1.0),
             "13": node("ApplyPackControlNet", conditioning=["12", 0], image=["11", 0], strength=0.5),
             "14": node("ProbeControl", conditioning=["13", 0]), "1": txt2img_parts()["1"]}
    # The hint's mean is 1/3 (pure red); the tiny model gives 1x, 2x and 3x it; strengths 0.5 and 1.0 add up.
    assert shown(executor, extra, ["14", 0]) == (
        "PackControlNet encoders_pack 0.5 middle:1.5000 output:0.5000,1.0000 late:None")


def test_a_pack_loads_a_controlnet_file_and_hearths_nodes_apply_it(executor: Executor, models: ModelFolders,
                                                                    base_pixels: np.ndarray) -> None:
    from hearth_sd.controlnet_tiny import write_tiny

    write_tiny("controlnet", "sd1", models.base / "checkpoints" / "pack-controlnet.safetensors")
    extra = {"10": node("LoadControlNetFile", ckpt_name="pack-controlnet.safetensors"),
             "11": node("EmptyImage", width=64, height=64, batch_size=1, color=0xFF8000),
             "12": node("ControlNetApplyAdvanced", positive=["2", 0], negative=["3", 0], control_net=["10", 0],
                        image=["11", 0], strength=1.0, start_percent=0.0, end_percent=1.0)}
    controlled = pixels(executor, extra, positive=["12", 0])
    assert np.abs(controlled - base_pixels).max() > 0  # the ControlNet's residuals reached the UNet


def test_a_checkpoint_given_to_load_controlnet_fails_naming_the_file(executor: Executor) -> None:
    result = executor.run({"10": node("LoadControlNetFile", ckpt_name=CHECKPOINT)})
    assert not result.ok
    assert CHECKPOINT in str(result.error) and "controlnet" in str(result.error).lower()


def test_a_pack_config_clip_vision_model_is_refused_by_name(pm: PluginManager) -> None:
    from hearth_comfy_compat import hook

    pack = inspect.getmodule(pm.nodes()["ApplyPackControlNet"].cls)
    with pytest.raises(hook.HearthDoesNotProvide, match="comfy.clip_vision.ClipVisionModel"):
        pack.PackClipVision({"model_type": "clip_vision_model", "num_hidden_layers": 24})


def test_comfy_clip_vision_load_gives_hearths_encoder(pm: PluginManager, models: ModelFolders) -> None:
    import comfy.clip_vision
    from hearth_sd.models_clip_vision import write_tiny_clip_vision

    path = models.base / "clip_vision" / "pack-clip-vision.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_tiny_clip_vision(path)
    encoder = comfy.clip_vision.load(str(path))
    output = encoder.encode_image(torch.rand(2, 40, 48, 3), crop=True)
    assert output["image_embeds"].shape[0] == 2 and output.last_hidden_state.shape[0] == 2
    assert comfy.clip_vision.load_clipvision_from_sd({"other.weight": torch.zeros(1)}) is None


def test_clip_preprocess_matches_a_hand_computed_reference(pm: PluginManager) -> None:
    import comfy.clip_vision

    mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    color = (0.2, 0.4, 0.8)
    flat = torch.tensor(color).expand(1, 256, 300, 3).clone()  # resized (shorter side to 224), then cropped
    out = comfy.clip_vision.clip_preprocess(flat)
    assert out.shape == (1, 3, 224, 224)
    for c in range(3):
        expected = (round(255 * color[c]) / 255 - mean[c]) / std[c]
        assert torch.allclose(out[0, c], torch.full((224, 224), expected), atol=1e-5)
    ramp = torch.linspace(0, 1, 224).view(1, 1, 224, 1).expand(1, 224, 224, 4).clone()  # alpha dropped, no resize
    out = comfy.clip_vision.clip_preprocess(ramp)
    row = ramp[0, 0, :, 0].numpy()
    for c in range(3):
        assert np.allclose(out[0, c, 0].numpy(), (np.round(255 * row) / 255 - mean[c]) / std[c], atol=1e-5)
    assert comfy.clip_vision.clip_preprocess(flat, crop=False).shape == (1, 3, 224, 224)
    output = comfy.clip_vision.Output()
    output["image_embeds"] = 1
    assert output.image_embeds == 1


def test_sdxl_clip_classes_and_the_clip_class(executor: Executor) -> None:
    extra = {"1": txt2img_parts()["1"], "10": node("SDXLClipCheck", clip=["1", 1])}
    assert shown(executor, extra, ["10", 0]) == "sdxl=False sd3=False clip=True broadcast=broadcast_image_to"


def test_comfy_sd_loads_diffusion_models_and_state_dicts(pm: PluginManager, models: ModelFolders,
                                                         tmp_path: Path) -> None:
    import comfy.sd
    import comfy.utils

    from hearth.core.model_folders import write_tiny_model

    path = tmp_path / "tiny-wan.safetensors"
    write_tiny_model(pm.resolve_named("register_tiny_models", "tiny model"), "wan-dit", path)
    model = comfy.sd.load_diffusion_model(str(path))
    again = comfy.sd.load_diffusion_model_state_dict(comfy.utils.load_torch_file(str(path)))
    first = sorted(model.model_state_dict())
    assert first == sorted(again.model_state_dict()) and first
    assert all(torch.equal(model.model_state_dict()[k], again.model_state_dict()[k]) for k in first)
    assert comfy.sd.load_unet(str(path)).model_state_dict().keys() == model.model_state_dict().keys()
    class GGMLOps:  # GGUF's quantised layers: Hearth's families build their own, so this is refused by name
        pass

    from hearth_comfy_compat import hook

    with pytest.raises(hook.HearthDoesNotProvide, match=r"custom_operations.*GGMLOps"):
        comfy.sd.load_diffusion_model_state_dict(comfy.utils.load_torch_file(str(path)),
                                                 model_options={"custom_operations": GGMLOps})
    checkpoint = str(models.find("checkpoints", CHECKPOINT))
    assert comfy.sd.load_diffusion_model(checkpoint).family == "sd1"  # a whole checkpoint gives its UNet, as ComfyUI
    state = comfy.utils.load_torch_file(checkpoint)
    m, c, v, vision = comfy.sd.load_state_dict_guess_config(state)
    node_model = pm.nodes()["CheckpointLoaderSimple"].cls().load_checkpoint(CHECKPOINT)[0]
    key = "diffusion_model.out.2.weight"
    assert torch.equal(m.model_state_dict()[key], node_model.model_state_dict()[key]) and vision is None
    text = {k[len("cond_stage_model.transformer."):]: t for k, t in state.items()
            if k.startswith("cond_stage_model.transformer.")}
    clip = comfy.sd.load_text_encoder_state_dicts([text])
    wrapped = comfy.sd.CLIP(state_dict=[text])
    assert torch.equal(clip.encode("a cat")[0], c.encode("a cat")[0])
    assert torch.equal(wrapped.encode("a cat")[0], c.encode("a cat")[0])
    assert isinstance(clip, comfy.sd.CLIP) and isinstance(wrapped, comfy.sd.CLIP)

    class PackClip(comfy.sd.CLIP):
        pass

    empty = PackClip(no_init=True)
    empty.hearth_value = clip
    assert isinstance(empty, PackClip) and empty.tokenize("a cat") is not None
    assert torch.equal(empty.encode_from_tokens_scheduled(empty.tokenize("a cat"))[0][0], c.encode("a cat")[0])
    assert sorted(empty.get_sd()) == sorted(clip.model_state_dict())
    assert empty.clone().hearth_value is not clip


def test_a_clip_of_a_packs_own_parts_encodes_as_comfyui(pm: PluginManager) -> None:
    """CLIP(no_init=True) filled with ComfyUI-style parts (an SD1Tokenizer and an SD1ClipModel around the pack's
    own encoder), as packs bringing their own text encoders build it."""
    import comfy.sd
    import comfy.sd1_clip

    class TinyEncoder(torch.nn.Module, comfy.sd1_clip.ClipTokenWeightEncoder):
        special_tokens = {"start": 49406, "end": 49407, "pad": 49407}

        def __init__(self, device="cpu", dtype=None, model_options=None):
            super().__init__()
            torch.manual_seed(1)
            self.embed = torch.nn.Embedding(49408, 4)

        def set_clip_options(self, options):
            pass

        def reset_clip_options(self):
            pass

        def encode(self, ids):
            hidden = self.embed(torch.tensor(ids))
            return hidden, hidden[:, 0]

    clip = comfy.sd.CLIP(no_init=True)
    clip.tokenizer = comfy.sd1_clip.SD1Tokenizer()
    clip.cond_stage_model = comfy.sd1_clip.SD1ClipModel(clip_model=TinyEncoder)
    tokens = clip.tokenize("a (cat:2)")
    assert tokens["l"][0][:4] == [(49406, 1.0), (320, 1.0), (2368, 2.0), (49407, 1.0)]
    with torch.no_grad():
        cond, pooled = clip.clone().encode_from_tokens(tokens, return_pooled=True)
        encoder = clip.cond_stage_model.clip_l
        z = encoder.embed(torch.tensor([t for t, _ in tokens["l"][0]]))
        empty = encoder.embed(torch.tensor(comfy.sd1_clip.gen_empty_tokens(encoder.special_tokens, 77)))
    # A weighted token moves away from the empty prompt's state by its weight; the others stay as encoded.
    assert torch.allclose(cond[0, 2], empty[2] + 2 * (z[2] - empty[2])) and torch.allclose(cond[0, 1], z[1])
    assert torch.allclose(pooled, z[0:1]) and cond.shape == (1, 77, 4)
    assert isinstance(clip, comfy.sd.CLIP) and "clip_l.embed.weight" in clip.get_sd()


def test_ldm_blocks_compute_as_hearths_sd_unet(pm: PluginManager, executor: Executor) -> None:
    """ComfyUI's block classes take an SD UNet's weights under their own names and compute what Hearth's UNet does
    with them; the pack's AnimateDiff-style module built from them runs in a workflow."""
    import math

    from comfy.ldm.modules.attention import SpatialTransformer, attention_basic, optimized_attention
    from comfy.ldm.modules.diffusionmodules.openaimodel import Downsample, ResBlock
    from comfy.ldm.modules.diffusionmodules.util import timestep_embedding

    unet = pm.nodes()["CheckpointLoaderSimple"].cls().load_checkpoint(CHECKPOINT)[0].model.diffusion_model
    torch.manual_seed(3)
    x, context, emb = torch.randn(1, 32, 8, 8), torch.randn(1, 77, 32), torch.randn(1, 128)
    theirs = unet.input_blocks[1][1]
    ours = SpatialTransformer(32, 4, 8, context_dim=32)
    ours.load_state_dict({k: v.float() for k, v in theirs.state_dict().items()})
    with torch.no_grad():
        assert torch.allclose(ours(x, context), theirs.float()(x, context), atol=1e-4)
        res = ResBlock(32, 128, 0.0, 32)
        res.load_state_dict({k: v.float() for k, v in unet.input_blocks[1][0].state_dict().items()})
        assert torch.allclose(res(x, emb), unet.input_blocks[1][0].float()(x, emb), atol=1e-4)
        down = Downsample(32, True)
        down.load_state_dict({k: v.float() for k, v in unet.input_blocks[3][0].state_dict().items()})
        assert torch.allclose(down(x), unet.input_blocks[3][0].float()(x), atol=1e-5)
    q, k, v = torch.randn(3, 2, 10, 32).unbind(0)
    assert torch.allclose(attention_basic(q, k, v, 4), optimized_attention(q, k, v, 4), atol=1e-5)
    t = torch.tensor([0.0, 10.0])
    expected = [math.cos(10.0 * 10000 ** (-i / 2)) for i in range(2)] + [math.sin(10.0 * 10000 ** (-i / 2))
                                                                          for i in range(2)]
    assert torch.allclose(timestep_embedding(t, 4)[1], torch.tensor(expected), atol=1e-6)
    extra = {"4": node("EmptyLatentImage", width=32, height=32, batch_size=3),
             "10": node("MixLatentFrames", samples=["4", 0])}
    assert shown(executor, extra, ["10", 1]) == "(3, 4, 4, 4) finite=True"


def test_taesd_is_the_tiny_autoencoder_with_its_file_layout(pm: PluginManager) -> None:
    from comfy.taesd.taesd import TAESD, Block, Clamp, conv

    class WiderBlock(Block):  # KJNodes builds its tiny VAEs from these
        pass

    taesd = TAESD()
    keys = set(taesd.state_dict())
    # The released taesd_decoder.pth layout: Clamp, conv, ReLU, then blocks; the last conv is layer 19.
    assert {"taesd_decoder.1.weight", "taesd_decoder.3.conv.0.weight", "taesd_decoder.7.weight",
            "taesd_decoder.19.weight", "taesd_encoder.0.weight", "taesd_encoder.14.weight"} <= keys
    for parameter in taesd.parameters():
        torch.nn.init.normal_(parameter, std=0.02)
    with torch.no_grad():
        assert taesd.decode(torch.randn(1, 4, 4, 4)).shape == (1, 3, 32, 32)
        assert taesd.encode(torch.rand(1, 3, 32, 32)).shape == (1, 4, 4, 4)
    latent = torch.randn(1, 4, 2, 2)
    assert torch.allclose(TAESD.unscale_latents(TAESD.scale_latents(latent.clamp(-3, 3))), latent.clamp(-3, 3),
                          atol=1e-5)
    assert torch.allclose(Clamp()(torch.tensor([300.0])), torch.tensor([3.0]))
    assert WiderBlock(64, 32).skip.weight.shape == (32, 64, 1, 1) and conv(3, 8).padding == (1, 1)


def test_comfyuis_autoencoder_kl_takes_an_sd_vae_and_decodes_as_hearths(pm: PluginManager) -> None:
    from comfy.ldm.models.autoencoder import AutoencoderKL
    from comfy.ldm.modules.diffusionmodules.model import ResnetBlock

    vae = pm.nodes()["CheckpointLoaderSimple"].cls().load_checkpoint(CHECKPOINT)[2]
    theirs = vae.first_stage_model
    config = theirs.config
    ddconfig = {"double_z": True, "z_channels": config.z_channels, "resolution": 256, "in_channels": 3,
                "out_ch": 3, "ch": config.ch, "ch_mult": list(config.ch_mult), "num_res_blocks": config.num_res_blocks,
                "attn_resolutions": [], "dropout": 0.0}
    ours = AutoencoderKL(ddconfig=ddconfig, embed_dim=config.z_channels)
    missing, unexpected = ours.load_state_dict({k: v.float() for k, v in theirs.state_dict().items()}, strict=False)
    assert not missing and not unexpected
    torch.manual_seed(5)
    latent, image = torch.randn(1, 4, 4, 4), torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(ours.decode(latent), theirs.float().decode(latent), atol=1e-4)
        assert torch.allclose(ours.encode(image), theirs.float().encode(image), atol=1e-4)
    assert isinstance(ours.decoder.up[0].block[0], ResnetBlock)


def test_a_t2i_adapter_control_runs_comfyuis_adapter_network(pm: PluginManager) -> None:
    import comfy.controlnet
    from comfy.t2i_adapter.adapter import Adapter, Adapter_light

    torch.manual_seed(2)
    network = Adapter(channels=[32, 64], nums_rb=1, cin=3 * 64, sk=True, xl=False)  # as load_t2i_adapter builds it
    for parameter in network.parameters():
        torch.nn.init.normal_(parameter, std=0.05)
    control = comfy.controlnet.T2IAdapter(network, channels_in=3, compression_ratio=8,
                                          upscale_algorithm="nearest-exact", device="cpu")
    hint = torch.rand(1, 3, 64, 64)
    control.set_cond_hint(hint, strength=0.5)
    out = control.get_control(torch.zeros(1, 4, 8, 8), torch.tensor([1.0]), {}, 1)
    features = network(hint)["input"]
    assert [None if f is None else tuple(f.shape) for f in out["input"]] == [
        (1, 64, 4, 4), None, None, (1, 32, 8, 8), None, None]
    assert torch.allclose(out["input"][0], features[0].detach() * 0.5, atol=1e-4)
    assert out["middle"] == []
    light = Adapter_light(channels=[32, 64], nums_rb=1, cin=3 * 64)
    assert len(light(hint)["input"]) == 6 and {"body.0.in_conv.weight", "body.1.body.0.block1.weight"} <= set(
        light.state_dict())
    assert {"conv_in.weight", "body.0.block1.weight", "body.1.in_conv.weight"} <= set(
        network.state_dict())


def test_clip_vision_files_are_named_and_keys_converted(pm: PluginManager, tmp_path: Path) -> None:
    import comfy.clip_vision

    path = tmp_path / "open-clip-vit-h.safetensors"  # names of an OpenCLIP tower, but no weights to build one
    save_file({f"visual.transformer.resblocks.{i}.ln_1.weight": torch.zeros(2) for i in range(32)}, str(path))
    with pytest.raises(ValueError, match="open-clip-vit-h.safetensors"):
        comfy.clip_vision.load(str(path))
    assert comfy.clip_vision.load_clipvision_from_sd({"not.a.vision.tower": torch.zeros(1)}) is None
    fused = {"visual.transformer.resblocks.0.attn.in_proj_weight": torch.arange(6.0).reshape(6, 1),
             "visual.proj": torch.zeros(2, 3), "visual.ln_pre.weight": torch.ones(1)}
    converted = comfy.clip_vision.convert_to_transformers(fused, "visual.")
    assert converted["vision_model.encoder.layers.0.self_attn.k_proj.weight"].flatten().tolist() == [2.0, 3.0]
    assert converted["visual_projection.weight"].shape == (3, 2) and "vision_model.pre_layrnorm.weight" in converted


def test_a_vae_from_taesd_tensors_decodes_in_a_workflow(executor: Executor, pm: PluginManager) -> None:
    prompt = {"4": node("EmptyLatentImage", width=32, height=24, batch_size=1), "10": node("SeededTAESD"),
              "6": node("VAEDecode", samples=["4", 0], vae=["10", 0]), "7": node("PreviewImage", images=["6", 0]),
              "8": node("VAEEncode", pixels=["6", 0], vae=["10", 0]),
              "9": node("VAEDecode", samples=["8", 0], vae=["10", 0]), "11": node("PreviewImage", images=["9", 0])}
    result = executor.run(prompt)
    assert result.ok, result.error
    assert preview_pixels(result, "7", executor.folders).shape == (24, 32, 3)
    assert preview_pixels(result, "11", executor.folders).shape == (24, 32, 3)
    vae = pm.nodes()["SeededTAESD"].cls().load()[0]
    latent = torch.randn(1, 4, 3, 4)
    with torch.no_grad():
        expected = ((vae.first_stage_model.decode(latent) + 1) / 2).clamp(0, 1).movedim(1, -1)
    assert torch.allclose(vae.decode(latent), expected, atol=1e-6) and vae.latent_channels == 4


def test_sd_tokenizer_puts_textual_inversion_vectors_in_the_windows(pm: PluginManager, tmp_path: Path) -> None:
    import comfy.sd1_clip
    from safetensors.torch import load_file

    from hearth.core.model_folders import write_tiny_model

    folder = tmp_path / "embeddings"
    folder.mkdir()
    write_tiny_model(pm.resolve_named("register_tiny_models", "tiny model"), "embedding",
                     folder / "tiny-embedding.safetensors")
    stored = next(iter(load_file(str(folder / "tiny-embedding.safetensors")).values()))
    vectors = comfy.sd1_clip.load_embed("tiny-embedding", str(folder), stored.shape[-1])
    assert torch.equal(vectors, stored.reshape(-1, stored.shape[-1]))
    tokenizer = comfy.sd1_clip.SDTokenizer(embedding_directory=str(folder), embedding_size=stored.shape[-1])
    window = tokenizer.tokenize_with_weights("a embedding:tiny-embedding, cat")[0]
    assert window[1] == (320, 1.0)
    found = [t for t, _ in window[2:2 + len(vectors)]]
    assert all(isinstance(t, torch.Tensor) for t in found) and torch.equal(found[0], vectors[0])
    assert window[2 + len(vectors)] == (267, 1.0)  # the comma left after the name
    assert comfy.sd1_clip.load_embed("../escape", str(folder), 4) is None
