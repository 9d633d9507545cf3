"""ComfyUI's sampling internals as packs from the wild use them, run through the executor on a tiny SD1 model:
comfy.k_diffusion.sampling and utils (k-diffusion signatures over Hearth's samplers), comfy.sampler_helpers, the
rest of comfy.model_management and comfy.utils, comfy_extras.nodes_* modules and subclassing a builtin node
from ``nodes``."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

from hearth.core.executor import Executor
from hearth.core.plugins import PluginManager
from tests.comfy_compat.tiny_sd import (
    node,
    preview_pixels,
    sampling_inputs,
    txt2img_parts,
)

PACKS = Path(__file__).parent / "packs_sampling"


def decoded(sampler_node: dict, extra: dict | None = None) -> dict:
    """txt2img with ``sampler_node`` as node 5, decoded (6) and previewed (7)."""
    return {**txt2img_parts(), **(extra or {}), "5": sampler_node,
            "6": node("VAEDecode", samples=["5", 0], vae=["1", 2]), "7": node("PreviewImage", images=["6", 0])}


@pytest.fixture(scope="module")
def euler_pixels(executor: Executor) -> np.ndarray:
    result = executor.run(decoded(node("KSampler", **sampling_inputs(), denoise=1.0)))
    assert result.ok, result.error
    return preview_pixels(result, "7", executor.folders).astype(int)


def custom_sampled(executor: Executor, which: str) -> np.ndarray:
    prompt = decoded(
        node("SamplerCustom", model=["1", 0], add_noise=True, noise_seed=7, cfg=4.0, positive=["2", 0],
             negative=["3", 0], sampler=["8", 0], sigmas=["9", 0], latent_image=["4", 0]),
        {"8": node("KDiffusionSamplerSelect", which=which),
         "9": node("BasicScheduler", model=["1", 0], scheduler="normal", steps=2, denoise=1.0)})
    result = executor.run(prompt)
    assert result.ok, (which, result.error)
    return preview_pixels(result, "7", executor.folders).astype(int)


def test_the_pack_loads(pm: PluginManager) -> None:
    record = pm.records["kdiffusion_pack"]
    assert record.error is None, record.traceback
    assert {"KDiffusionSamplerSelect", "HalfSizeImage", "GrowAndPaste", "WeightProbe"} <= set(pm.nodes())
    import hearth_comfy_compat

    # Everything it imports is real: nothing recorded as a name Hearth lacks.
    assert "kdiffusion_pack" not in hearth_comfy_compat.missing_names()


def test_k_diffusion_samplers_give_hearths_ksampler_result(executor: Executor, euler_pixels: np.ndarray) -> None:
    # sample_euler called with k-diffusion's positional arguments, and itself as a KSAMPLER: KSampler's euler.
    assert np.array_equal(custom_sampled(executor, "kdiffusion_euler"), euler_pixels)
    assert np.array_equal(custom_sampled(executor, "euler_by_name"), euler_pixels)
    # The pack's own Euler written with to_d, get_ancestral_step and append_dims: the same math, rounding aside.
    handwritten = custom_sampled(executor, "handwritten_euler")
    assert np.abs(handwritten - euler_pixels).max() <= 2
    other = executor.run(decoded(node("KSampler", **sampling_inputs(sampler_name="heun"), denoise=1.0)))
    assert not np.array_equal(preview_pixels(other, "7", executor.folders).astype(int), euler_pixels)


def test_k_diffusion_names_and_signatures(pm: PluginManager) -> None:
    import comfy.k_diffusion.sampling as kds
    import comfy.k_diffusion.utils as kdu
    import comfy.samplers

    for name in pm.samplers():
        if name not in ("ddim", "uni_pc", "uni_pc_bh2"):  # not k-diffusion samplers in ComfyUI either
            parameters = list(inspect.signature(getattr(kds, f"sample_{name}")).parameters)
            assert parameters[:6] == ["model", "x", "sigmas", "extra_args", "callback", "disable"], name
    # The same solver; the _gpu variant's Brownian tree draws on the latent's device, as ComfyUI's cpu=False.
    assert (kds.sample_dpmpp_2m_sde.noise, kds.sample_dpmpp_2m_sde_gpu.noise) == ("brownian", "brownian_device")
    assert comfy.samplers.k_diffusion_sampling.sample_euler is kds.sample_euler
    with pytest.raises(AttributeError):
        kds.sample_no_such_sampler  # noqa: B018
    karras = kds.get_sigmas_karras(4, 0.1, 10.0, 7.0, "cpu")  # k-diffusion's order: rho before device
    assert karras.shape == (5,) and float(karras[0]) == pytest.approx(10.0) and float(karras[-1]) == 0
    assert float(kds.get_sigmas_karras(4, 0.1, 10.0, rho=1.0)[1]) == pytest.approx(10 - 9.9 / 3, rel=1e-5)
    exponential = kds.get_sigmas_exponential(3, 1.0, 100.0)
    assert torch.allclose(exponential, torch.tensor([100.0, 10.0, 1.0, 0.0]))
    assert torch.allclose(kds.get_sigmas_polyexponential(3, 1.0, 100.0, rho=1.0), exponential)
    vp = kds.get_sigmas_vp(3)
    assert vp.shape == (4,) and bool((vp[:-1].diff() < 0).all())
    assert kds.get_ancestral_step(2.0, 1.0, eta=0.0) == (1.0, 0.0)
    down, up = kds.get_ancestral_step(torch.tensor(2.0), torch.tensor(1.0))
    assert float(down ** 2 + up ** 2) == pytest.approx(1.0)
    x = torch.ones(2, 4, 3, 3)
    assert torch.equal(kds.to_d(x * 3, torch.tensor([2.0, 2.0]), x), torch.ones_like(x))
    assert kdu.append_dims(torch.ones(2), 4).shape == (2, 1, 1, 1)
    a = kds.default_noise_sampler(x, seed=3)(1.0, 0.5)
    assert torch.equal(a, kds.default_noise_sampler(x, seed=3)(1.0, 0.5)) and a.shape == x.shape
    tree = kds.BrownianTreeNoiseSampler(x, 0.1, 10.0, seed=5)
    whole = tree(10.0, 0.1) * (9.9 ** 0.5)
    again = kds.BrownianTreeNoiseSampler(x, 0.1, 10.0, seed=5)
    halves = again(10.0, 1.0) * (9.0 ** 0.5) + again(1.0, 0.1) * (0.9 ** 0.5)
    assert torch.allclose(whole, halves, atol=1e-5)  # one path: increments add up


def test_a_packs_own_noise_samplers_draw_comfyuis_numbers(pm: PluginManager) -> None:
    """A pack calling k-diffusion's noise samplers itself gets ComfyUI's noise for a seed: the first call of
    default_noise_sampler is randn from a generator seeded with it plus one (on the CPU, as ComfyUI since PR #11528), and the Brownian tree is the sampling plugin's
    torchsde-equal one (tests/samplers/test_brownian.py pins that against torchsde)."""
    import comfy.k_diffusion.sampling as kds

    engine = pm.hook.resolve_sampling_engine()
    x = torch.zeros(2, 4, 8, 8)
    draw = kds.default_noise_sampler(x, seed=42)
    generator = torch.Generator().manual_seed(43)
    assert torch.equal(draw(1.0, 0.5), torch.randn(x.shape, generator=generator))
    assert torch.equal(draw(0.5, 0.2), torch.randn(x.shape, generator=generator))  # the next draw, not a reseed
    ours = kds.BrownianTreeNoiseSampler(x, 0.03, 14.6, seed=9, cpu=True)
    reference = engine.BrownianTreeNoiseSampler(x, 0.03, 14.6, seed=9, cpu=True)
    for sigma, sigma_next in ((14.6, 6.2), (6.2, 0.8), (0.8, 0.03)):
        assert torch.equal(ours(torch.tensor(sigma), torch.tensor(sigma_next)),
                           reference(torch.tensor(sigma), torch.tensor(sigma_next)))


def test_advanced_sampling_from_code_with_comfy_extras(executor: Executor, euler_pixels: np.ndarray) -> None:
    inputs = {k: v for k, v in sampling_inputs().items() if k not in ("sampler_name", "scheduler")}
    result = executor.run(decoded(node("AdvancedSampleWithExtras", **inputs)))
    assert result.ok, result.error
    assert np.array_equal(preview_pixels(result, "7", executor.folders).astype(int), euler_pixels)


def test_a_packs_sampling_loop_with_sampler_helpers(executor: Executor, euler_pixels: np.ndarray) -> None:
    inputs = {k: v for k, v in sampling_inputs().items() if k not in ("sampler_name", "scheduler")}
    result = executor.run(decoded(node("HelperSample", **inputs), {"8": node("ShowFacts", text=["5", 1])}))
    assert result.ok, result.error
    assert np.array_equal(preview_pixels(result, "7", executor.folders).astype(int), euler_pixels)
    facts = dict(fact.split(":", 1) for fact in result.outputs["8"]["text"])
    assert facts["models"] == "0" and facts["memory"] == "0" and facts["real_model"] == "True"
    assert facts["mask"] == "[1, 4, 8, 8]" and facts["loaded"] == "True" and int(facts["cross_attn"]) > 0


def test_a_pack_subclassing_nodes_image_scale_runs(executor: Executor) -> None:
    result = executor.run({"1": node("EmptyImage", width=64, height=48, batch_size=1, color=0),
                           "2": node("HalfSizeImage", image=["1", 0]), "3": node("PreviewImage", images=["2", 0])})
    assert result.ok, result.error
    assert preview_pixels(result, "3", executor.folders).shape == (24, 32, 3)


def test_comfy_extras_nodes_mask_grow_and_composite(executor: Executor) -> None:
    result = executor.run({"1": node("EmptyImage", width=16, height=16, batch_size=1, color=0),
                           "2": node("GrowAndPaste", image=["1", 0], grow=2),
                           "3": node("PreviewImage", images=["2", 0])})
    assert result.ok, result.error
    pixels = preview_pixels(result, "3", executor.folders)
    expected = np.zeros((16, 16, 3), dtype=np.uint8)
    expected[6:11, 6:11] = 255  # the centre dot grown by 2 with square corners: a 5x5 square pasted white
    assert np.array_equal(pixels, expected)


def test_comfy_extras_modules_export_hearths_nodes(pm: PluginManager) -> None:
    import comfy_extras.nodes_clip_sdxl
    import comfy_extras.nodes_custom_sampler as custom
    import comfy_extras.nodes_model_advanced as advanced
    import nodes

    assert custom.SamplerCustomAdvanced is pm.nodes()["SamplerCustomAdvanced"].cls
    assert custom.BasicScheduler is nodes.BasicScheduler
    assert comfy_extras.nodes_clip_sdxl.CLIPTextEncodeSDXL is pm.nodes()["CLIPTextEncodeSDXL"].cls
    assert advanced.ModelSamplingSD3 is pm.nodes()["ModelSamplingSD3"].cls
    noise = custom.Noise_RandomNoise(7).generate_noise({"samples": torch.zeros(1, 4, 8, 8)})
    assert torch.equal(noise, __import__("comfy.sample").sample.prepare_noise(torch.zeros(1, 4, 8, 8), 7))
    import comfy.model_sampling

    assert advanced.LCM is comfy.model_sampling.LCM and advanced.X0 is comfy.model_sampling.X0
    assert issubclass(advanced.ModelSamplingDiscreteDistilled, comfy.model_sampling.ModelSamplingDiscrete)
    sigmas = advanced.rescale_zero_terminal_snr_sigmas(torch.linspace(0.03, 14.6, 1000))
    assert float(sigmas[-1]) == pytest.approx(4518.76, rel=1e-3) and float(sigmas[0]) == pytest.approx(0.03, rel=1e-3)


def test_model_management_names_answer_sanely(pm: PluginManager) -> None:
    import comfy.model_management as mm

    assert mm.vram_state is mm.VRAMState.DISABLED and mm.cpu_state is mm.CPUState.CPU  # the test machine has no GPU
    assert not mm.xformers_enabled() and not mm.xformers_enabled_vae() and mm.pytorch_attention_enabled()
    assert mm.get_torch_device().type == "cpu" and mm.is_device_cpu(mm.get_torch_device())
    assert mm.intermediate_dtype() is torch.float32
    assert mm.unet_manual_cast(torch.float32, "cpu") is None
    assert mm.unet_manual_cast(torch.float16, "cpu") is torch.float32  # a CPU computes fp16 weights in fp32
    assert mm.dtype_size(torch.float16) == 2 and mm.dtype_size(torch.float32) == 4
    assert mm.module_size(torch.nn.Linear(4, 4)) == (16 + 4) * 4
    assert mm.cast_to(torch.ones(2), dtype=torch.float16).dtype is torch.float16
    assert mm.get_total_memory() > mm.maximum_vram_for_weights() >= 0 and mm.total_ram > 0
    assert mm.minimum_inference_memory() >= mm.extra_reserved_memory() >= 0
    assert not mm.is_intel_xpu() and not mm.directml_enabled and mm.lowvram_available
    assert not mm.device_supports_non_blocking("cpu") and mm.supports_cast("cpu", torch.bfloat16)
    assert isinstance(mm.current_loaded_models, list) and isinstance(mm.loaded_models(), list)
    assert not mm.processing_interrupted() and mm.interrupt_processing is False
    assert mm.cpu_mode() and not mm.mps_mode() and mm.get_offload_stream(mm.get_torch_device()) is None
    assert mm.unet_manual_cast(torch.float64, "cpu") is None and torch.float8_e4m3fn in mm.FLOAT8_TYPES
    mm.soft_empty_cache()
    mm.cleanup_models_gc()


def test_model_management_sees_the_models_hearth_loaded(executor: Executor) -> None:
    import comfy.model_management as mm

    result = executor.run(decoded(node("KSampler", **sampling_inputs(), denoise=1.0)))
    assert result.ok, result.error
    loaded = mm.current_loaded_models
    assert loaded and all(record.model_memory() >= record.model_loaded_memory() > 0 for record in loaded)
    assert [record.model for record in loaded] == mm.loaded_models()


def test_comfy_utils_attributes_on_a_real_model(executor: Executor) -> None:
    result = executor.run({"1": txt2img_parts()["1"], "2": node("WeightProbe", model=["1", 0], key="out.2.weight"),
                           "3": node("ShowFacts", text=["2", 0])})
    assert result.ok, result.error
    facts = dict(fact.split(":", 1) for fact in result.outputs["3"]["text"])
    assert facts.pop("shape").startswith("[4, ")
    assert facts == {"same": "True", "doubled": "True", "param": "True", "restored": "True"}


def test_comfy_utils_helpers(pm: PluginManager, tmp_path: Path) -> None:
    import comfy.utils

    torch.save({"state_dict": {"a": torch.ones(2)}, "global_step": 5}, tmp_path / "model.ckpt")
    torch.save({"b": torch.zeros(3)}, tmp_path / "embedding.pt")
    assert list(comfy.utils.load_torch_file(str(tmp_path / "model.ckpt"), safe_load=True)) == ["a"]
    assert comfy.utils.load_torch_file(str(tmp_path / "embedding.pt"))["b"].shape == (3,)
    batch = torch.arange(4.0).reshape(4, 1)
    assert comfy.utils.resize_to_batch_size(batch, 2).flatten().tolist() == [0.0, 3.0]
    assert comfy.utils.resize_to_batch_size(batch, 8).flatten().tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    mask = comfy.utils.reshape_mask(torch.ones(16, 16), (2, 4, 8, 8))
    assert mask.shape == (2, 4, 8, 8) and bool((mask == 1).all())
    assert comfy.utils.calculate_parameters({"a.w": torch.ones(2, 3), "b.w": torch.ones(5)}, "a.") == 6
    assert comfy.utils.string_to_seed("hearth") == __import__("zlib").crc32(b"hearth")
    latents = torch.randn(1, 4, 4, 4)
    same = comfy.utils.bislerp(latents, 4, 4)
    assert torch.allclose(same, latents, atol=1e-5)
    grown = comfy.utils.common_upscale(latents, 8, 8, "bislerp", "disabled")
    # Spherical interpolation keeps each pixel's channel-vector length between its neighbours'.
    assert grown.shape == (1, 4, 8, 8) and float(grown.norm(dim=1).min()) >= float(latents.norm(dim=1).min()) - 1e-4
    doubled = comfy.utils.tiled_scale_multidim(torch.ones(1, 3, 20, 20), lambda t: t.repeat_interleave(2, -1)
                                               .repeat_interleave(2, -2), tile=(8, 8), overlap=2, upscale_amount=2)
    assert doubled.shape == (1, 3, 40, 40) and torch.allclose(doubled, torch.ones_like(doubled))
    seen = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview: seen.append((value, total)))
    try:
        comfy.utils.ProgressBar(2).update(1)
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
    assert seen == [(1, 2)]
    sd1 = {"num_res_blocks": [2] * 4, "channel_mult": [1, 2, 4, 4], "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
           "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], "transformer_depth_middle": 1}
    keys = comfy.utils.unet_to_diffusers(sd1)
    assert keys["down_blocks.0.resnets.0.conv1.weight"] == "input_blocks.1.0.in_layers.2.weight"
    assert keys["down_blocks.1.downsamplers.0.conv.bias"] == "input_blocks.6.0.op.bias"
    assert keys["mid_block.resnets.1.norm1.weight"] == "middle_block.2.in_layers.0.weight"
    assert keys["up_blocks.0.upsamplers.0.conv.weight"] == "output_blocks.2.1.conv.weight"
    assert keys["up_blocks.1.upsamplers.0.conv.weight"] == "output_blocks.5.2.conv.weight"
    assert keys["up_blocks.3.attentions.2.transformer_blocks.0.attn1.to_q.weight"] == (
        "output_blocks.11.1.transformer_blocks.0.attn1.to_q.weight")
    assert keys["conv_in.weight"] == "input_blocks.0.0.weight" and comfy.utils.unet_to_diffusers({}) == {}


def test_comfy_extras_latent_compositing_and_flux_from_code(executor: Executor) -> None:
    result = executor.run({"2": txt2img_parts()["2"], "1": txt2img_parts()["1"],
                           "4": node("EmptyLatentImage", width=64, height=64, batch_size=2),
                           "9": node("EmptyImage", width=8, height=8, batch_size=1, color=0),
                           "5": node("ExtrasFromCode", conditioning=["2", 0], latent=["4", 0], image=["9", 0]),
                           "8": node("ShowFacts", text=["5", 0])})
    assert result.ok, result.error
    facts = dict(fact.split(":", 1) for fact in result.outputs["8"]["text"])
    assert facts == {"batch": "[3, 4, 8, 8]", "index": "[0, 1, 0]", "rgba": "[1, 8, 8, 4]", "alpha": "0.0,1.0",
                     "guidance": "2.5", "untouched": "True", "png": "True"}


def test_differential_diffusion_from_comfy_extras(executor: Executor) -> None:
    def inpainted(value: float, soft: bool) -> np.ndarray:
        model = ["10", 0] if soft else ["1", 0]
        prompt = decoded(node("KSampler", **sampling_inputs(model=model, latent_image=["12", 0]), denoise=1.0),
                         {"10": node("SoftInpaintModel", model=["1", 0]), "11": node("PackSolidMask", value=value, size=64),
                          "12": node("SetLatentNoiseMask", samples=["4", 0], mask=["11", 0])})
        result = executor.run(prompt)
        assert result.ok, result.error
        return preview_pixels(result, "7", executor.folders).astype(int)

    # A mask of ones passes every threshold: the same as plain inpainting. A soft mask is thresholded per step.
    assert np.array_equal(inpainted(1.0, soft=True), inpainted(1.0, soft=False))
    assert not np.array_equal(inpainted(0.6, soft=True), inpainted(0.6, soft=False))


def test_folder_of_images(pm: PluginManager, tmp_path: Path) -> None:
    from comfy.k_diffusion.utils import FolderOfImages
    from PIL import Image

    (tmp_path / "sub").mkdir()
    Image.new("RGB", (4, 3), (255, 0, 0)).save(tmp_path / "b.png")
    Image.new("L", (2, 2)).save(tmp_path / "sub" / "a.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    images = FolderOfImages(tmp_path)
    assert len(images) == 2 and images[0][0].size == (4, 3) and images[1][0].mode == "RGB"


def test_differential_diffusion_thresholds_by_progress(pm: PluginManager) -> None:
    from types import SimpleNamespace

    from comfy_extras.nodes_differential_diffusion import DifferentialDiffusion

    sampling = SimpleNamespace(sigma_min=0.0, timestep=lambda sigma: sigma * 100)  # any increasing map
    options = {"model": SimpleNamespace(inner_model=SimpleNamespace(model_sampling=sampling)),
               "sigmas": torch.tensor([10.0, 5.0, 0.0])}
    mask = torch.tensor([0.3, 0.6, 1.0])
    node_ = DifferentialDiffusion()
    assert node_.forward(torch.tensor([10.0]), mask, options).tolist() == [0.0, 0.0, 1.0]
    assert node_.forward(torch.tensor([5.0]), mask, options).tolist() == [0.0, 1.0, 1.0]
    assert node_.forward(torch.tensor([5.0]), mask, options, strength=0.5).tolist() == pytest.approx([0.15, 0.8, 1.0])


def test_a_guider_with_its_own_predict_noise(executor: Executor, euler_pixels: np.ndarray) -> None:
    def guided(start: float, end: float, cfg: float = 4.0, mask: bool = False) -> np.ndarray:
        latent = ["12", 0] if mask else ["4", 0]
        prompt = decoded(
            node("SamplerCustomAdvanced", noise=["8", 0], guider=["9", 0], sampler=["10", 0], sigmas=["11", 0],
                 latent_image=latent),
            {"8": node("RandomNoise", noise_seed=7), "10": node("KSamplerSelect", sampler_name="euler"),
             "9": node("ScheduledCFG", model=["1", 0], positive=["2", 0], negative=["3", 0], cfg=cfg,
                       start_percent=start, end_percent=end),
             "11": node("BasicScheduler", model=["1", 0], scheduler="normal", steps=2, denoise=1.0),
             "13": node("PackSolidMask", value=1.0, size=64),
             "12": node("SetLatentNoiseMask", samples=["4", 0], mask=["13", 0])})
        result = executor.run(prompt)
        assert result.ok, result.error
        return preview_pixels(result, "7", executor.folders).astype(int)

    def ksampler(cfg: float) -> np.ndarray:
        result = executor.run(decoded(node("KSampler", **sampling_inputs(cfg=cfg), denoise=1.0)))
        assert result.ok, result.error
        return preview_pixels(result, "7", executor.folders).astype(int)

    # CFG over the whole schedule: KSampler's result (positive and negative are predicted in two calls here, in
    # one batch there, so rounding may differ). Outside the range: cfg 1, the positive prediction alone.
    assert np.abs(guided(0.0, 1.0) - euler_pixels).max() <= 2
    assert np.abs(guided(0.0, 1.0, mask=True) - euler_pixels).max() <= 2  # through the engine's inpainting
    strong, plain = ksampler(40.0), ksampler(1.0)
    assert np.abs(strong - plain).max() > 10  # the tiny model does tell the two apart at this scale
    assert np.abs(guided(0.0, 1.0, cfg=40.0) - strong).max() <= 2
    assert np.abs(guided(0.9, 1.0, cfg=40.0) - plain).max() <= 2


def test_calc_cond_batch_outside_a_guider_names_what_is_missing(pm: PluginManager) -> None:
    import comfy.samplers

    with pytest.raises(AttributeError, match="comfy.samplers.calc_cond_batch.*predict_noise"):
        comfy.samplers.calc_cond_batch(None, [None], torch.zeros(1), torch.ones(1), {})


def test_builtin_node_classes_carry_comfyuis_class_lists_and_loaders(pm: PluginManager, executor: Executor) -> None:
    import nodes

    info = pm.nodes().object_info()
    assert info["ResizeByMethod"]["input"]["required"]["method"][0] == nodes.ImageScale.upscale_methods
    assert "lanczos" in nodes.ImageScale.upscale_methods and nodes.ImageScale.crop_methods == ["disabled", "center"]
    assert "bislerp" in nodes.LatentUpscale.upscale_methods
    assert issubclass(nodes.ImageScale, pm.nodes()["ImageScale"].cls)  # Hearth's node, ComfyUI's lists added
    assert nodes.NODE_CLASS_MAPPINGS["ImageScale"] is nodes.ImageScale
    assert "DualCLIPLoader" in nodes.NODE_CLASS_MAPPINGS  # a node of the SD plugin now (issue 19)
    result = executor.run({"1": node("EmptyImage", width=16, height=16, batch_size=1, color=0),
                           "2": node("ResizeByMethod", image=["1", 0], method="bilinear", crop="center",
                                     latent_method="bislerp"), "3": node("PreviewImage", images=["2", 0])})
    assert result.ok, result.error
    assert preview_pixels(result, "3", executor.folders).shape == (8, 8, 3)
    dual = info["DualCLIPLoaderPack"]["input"]["required"]
    assert dual["clip_name1"][0] == ["a.gguf", "b.gguf"] and "flux" in dual["type"][0]
    assert list(nodes.TripleCLIPLoader.INPUT_TYPES()["required"]) == ["clip_name1", "clip_name2", "clip_name3"]


def test_outer_sample_wrappers_and_guider_overrides_run(executor: Executor, euler_pixels: np.ndarray) -> None:
    inputs = {"model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0]}
    result = executor.run(decoded(node("WrappedSampling", **inputs), {"8": node("ShowFacts", text=["5", 1])}))
    assert result.ok, result.error
    assert result.outputs["8"]["text"] == ["wrapper:CountingGuider", "outer", "inner:cpu"]
    assert np.array_equal(preview_pixels(result, "7", executor.folders).astype(int), euler_pixels)


def test_prediction_wrappers_run_around_each_step(executor: Executor, euler_pixels: np.ndarray) -> None:
    inputs = {"model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0]}
    result = executor.run(decoded(node("PredictionWrapped", **inputs), {"8": node("ShowFacts", text=["5", 1])}))
    assert result.ok, result.error
    assert result.outputs["8"]["text"] == ["predict:CFGGuider", "batch:2"] * 2  # two steps, positive and negative
    assert np.abs(preview_pixels(result, "7", executor.folders).astype(int) - euler_pixels).max() <= 2


def test_align_your_steps_scheduler(pm: PluginManager) -> None:
    from comfy_extras.nodes_align_your_steps import AlignYourStepsScheduler

    (ten,) = AlignYourStepsScheduler().get_sigmas("SD1", 10, denoise=1.0)
    assert ten.tolist() == pytest.approx([14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.0])
    (twenty,) = AlignYourStepsScheduler().get_sigmas("SDXL", 20, denoise=1.0)
    assert len(twenty) == 21 and float(twenty[0]) == pytest.approx(14.615) and float(twenty[-1]) == 0
    assert float(twenty[2]) == pytest.approx(6.315, rel=1e-4)  # every other step is the ten-step table's
    assert bool((twenty[:-1].diff() < 0).all())
    (half,) = AlignYourStepsScheduler().get_sigmas("SD1", 10, denoise=0.5)
    assert half.tolist() == pytest.approx([1.396, 0.963, 0.652, 0.399, 0.152, 0.0], rel=1e-5)


def test_composite_masked_classes(pm: PluginManager) -> None:
    from comfy_extras.nodes_mask import ImageCompositeMasked, LatentCompositeMasked

    (latent,) = LatentCompositeMasked().composite({"samples": torch.zeros(1, 4, 8, 8), "batch_index": [3]},
                                                  {"samples": torch.ones(1, 4, 2, 2)}, 16, 8, False)
    assert latent["batch_index"] == [3] and float(latent["samples"].sum()) == 16.0
    assert float(latent["samples"][0, 0, 1, 2]) == 1.0 and float(latent["samples"][0, 0, 0, 0]) == 0.0
    mask = torch.zeros(4, 4)
    mask[:, :2] = 1.0
    (image,) = ImageCompositeMasked().composite(torch.zeros(1, 6, 6, 3), torch.ones(1, 4, 4, 3), 4, 0, False, mask)
    # Pasted at x=4: two columns fit, and the mask keeps exactly those.
    assert float(image.sum()) == 4 * 2 * 3 and float(image[0, 0, 4, 0]) == 1.0 and float(image[0, 0, 3, 0]) == 0.0


def test_a_pack_may_widen_the_scheduler_names_and_put_them_back(pm: PluginManager) -> None:
    # efficiency-nodes: `original = KSampler.SCHEDULERS; KSampler.SCHEDULERS = SCHEDULERS + ["AYS SD1"]; ...;
    # KSampler.SCHEDULERS = original` (a read-only property refused the assignment and the node failed).
    import comfy.samplers

    registered = list(comfy.samplers.KSampler.SCHEDULERS)
    original = comfy.samplers.KSampler.SCHEDULERS
    try:
        comfy.samplers.KSampler.SCHEDULERS = registered + ["AYS SD1"]
        assert comfy.samplers.KSampler.SCHEDULERS == registered + ["AYS SD1"]
    finally:
        comfy.samplers.KSampler.SCHEDULERS = original
    assert comfy.samplers.KSampler.SCHEDULERS == registered
    assert "SCHEDULERS" not in type(comfy.samplers.KSampler)._assigned  # fresh again, not a frozen copy
