# A sampling pack written the way ComfyUI packs are: module-level imports of comfy.k_diffusion.sampling, its
# utils, comfy.sampler_helpers, comfy.model_management names, comfy_extras modules; its own k-diffusion samplers
# wrapped in comfy.samplers.KSAMPLER; a node subclassing nodes.ImageScale.
import comfy.k_diffusion.sampling
import comfy.model_management
import comfy.patcher_extension
import comfy.sample
import comfy.sampler_helpers
import comfy.samplers
import comfy.utils
import nodes
import torch
from comfy.k_diffusion import sampling as k_diffusion_sampling
from comfy.k_diffusion.sampling import default_noise_sampler, get_ancestral_step, to_d
from comfy.k_diffusion.utils import FolderOfImages, append_dims
from comfy.model_management import VRAMState, vram_state, xformers_enabled
from comfy.samplers import KSAMPLER
from comfy_extras import nodes_custom_sampler, nodes_differential_diffusion
from comfy_extras.nodes_compositing import JoinImageWithAlpha
from comfy_extras.nodes_custom_sampler import Noise_RandomNoise
from comfy_extras.nodes_flux import FluxGuidance
from comfy_extras.nodes_latent import LatentBatch
from comfy_extras.nodes_mask import GrowMask, composite
from nodes import MAX_RESOLUTION

# Feature probes packs make at import.
ATTENTION = "xformers" if xformers_enabled() else "pytorch"
LOW_VRAM = vram_state in (VRAMState.LOW_VRAM, VRAMState.NO_VRAM)


def kdiffusion_euler(model, x, sigmas, extra_args=None, callback=None, disable=None):
    # Delegates to ComfyUI's own sampler, arguments by position as packs pass them.
    return k_diffusion_sampling.sample_euler(model, x, sigmas, extra_args, callback, disable)


@torch.no_grad()
def handwritten_euler(model, x, sigmas, extra_args=None, callback=None, disable=None, eta=0.0, noise_sampler=None):
    # Euler ancestral written against k-diffusion's helpers; eta = 0 makes it plain Euler.
    extra_args = {} if extra_args is None else extra_args
    seed = extra_args.get("seed", None)
    noise_sampler = default_noise_sampler(x, seed=seed) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        sigma_down, sigma_up = get_ancestral_step(sigmas[i], sigmas[i + 1], eta=eta)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})
        d = to_d(x, append_dims(sigmas[i] * s_in, x.ndim)[:, 0, 0, 0], denoised)
        x = x + d * (sigma_down - sigmas[i])
        if sigmas[i + 1] > 0 and eta > 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * sigma_up
    return x


class KDiffusionSamplerSelect:
    CATEGORY = "test/sampling"
    RETURN_TYPES = ("SAMPLER",)
    FUNCTION = "get_sampler"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"which": (["kdiffusion_euler", "handwritten_euler", "euler_by_name"],)}}

    def get_sampler(self, which):
        if which == "euler_by_name":
            return (KSAMPLER(comfy.k_diffusion.sampling.sample_euler),)
        return (KSAMPLER(kdiffusion_euler if which == "kdiffusion_euler" else handwritten_euler),)


class AdvancedSampleWithExtras:
    """SamplerCustomAdvanced driven from code, as Impact Pack does: Noise_RandomNoise, CFGGuider, BasicScheduler."""

    CATEGORY = "test/sampling"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "seed": ("INT", {"default": 0}), "steps": ("INT", {"default": 2}),
                             "cfg": ("FLOAT", {"default": 4.0}), "positive": ("CONDITIONING",),
                             "negative": ("CONDITIONING",), "latent_image": ("LATENT",)}}

    def sample(self, model, seed, steps, cfg, positive, negative, latent_image):
        guider = comfy.samplers.CFGGuider(model)
        guider.set_conds(positive, negative)
        guider.set_cfg(cfg)
        sigmas = nodes_custom_sampler.BasicScheduler().get_sigmas(model, "normal", steps, 1.0)[0]
        sampler = comfy.samplers.sampler_object("euler")
        out, _ = nodes_custom_sampler.SamplerCustomAdvanced().sample(Noise_RandomNoise(seed), guider, sampler, sigmas,
                                                                     latent_image)
        return (out,)


class HelperSample:
    """A pack's own loop around comfy.sample.sample with sampler_helpers, as tiled-sampler packs do."""

    CATEGORY = "test/sampling"
    RETURN_TYPES = ("LATENT", "STRING")
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "seed": ("INT", {"default": 0}), "steps": ("INT", {"default": 2}),
                             "cfg": ("FLOAT", {"default": 4.0}), "positive": ("CONDITIONING",),
                             "negative": ("CONDITIONING",), "latent_image": ("LATENT",)}}

    def sample(self, model, seed, steps, cfg, positive, negative, latent_image):
        latent = latent_image["samples"]
        noise = comfy.sample.prepare_noise(latent, seed)
        conds = {"positive": comfy.sampler_helpers.convert_cond(positive),
                 "negative": comfy.sampler_helpers.convert_cond(negative)}
        models, memory = comfy.sampler_helpers.get_additional_models(conds, torch.float32)
        real_model, conds, models = comfy.sampler_helpers.prepare_sampling(model, noise.shape, conds)
        mask = comfy.sampler_helpers.prepare_mask(torch.ones(1, 64, 64), noise.shape, "cpu")
        samples = comfy.sample.sample(model, noise, steps, cfg, "euler", "normal", positive, negative, latent,
                                      seed=seed)
        comfy.sampler_helpers.cleanup_models(conds, models)
        facts = [f"cross_attn:{conds['positive'][0]['cross_attn'].shape[-1]}", f"models:{len(models)}",
                 f"memory:{memory}", f"real_model:{real_model.diffusion_model is model.model.diffusion_model}", f"mask:{list(mask.shape)}",
                 f"loaded:{any(m is not None for m in comfy.model_management.loaded_models())}"]
        return ({**latent_image, "samples": samples}, "\n".join(facts))


class HalfSizeImage(nodes.ImageScale):
    """Subclasses ComfyUI's ImageScale: fewer inputs, the parent's upscale does the work."""

    CATEGORY = "test/image"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)}}

    def upscale(self, image):
        return super().upscale(image, "nearest-exact", image.shape[2] // 2, image.shape[1] // 2, "disabled")


class GrowAndPaste:
    """GrowMask and composite from comfy_extras.nodes_mask: a grown dot, then a white square pasted through it."""

    CATEGORY = "test/mask"
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "grow": ("INT", {"default": 2, "min": -MAX_RESOLUTION})}}

    def run(self, image, grow):
        height, width = image.shape[1:3]
        dot = torch.zeros(1, height, width)
        dot[0, height // 2, width // 2] = 1.0
        (mask,) = GrowMask().expand_mask(dot, grow, False)
        white = torch.ones(1, 3, height, width)
        pasted = composite(image.movedim(-1, 1), white, 0, 0, mask, multiplier=1).movedim(1, -1)
        return (pasted, mask)


class WeightProbe:
    """comfy.utils.get_attr / set_attr_param / set_attr on the MODEL's diffusion model."""

    CATEGORY = "test/model"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "probe"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "key": ("STRING", {"default": "out.2.weight"})}}

    def probe(self, model, key):
        unet = model.model.diffusion_model
        weight = comfy.utils.get_attr(unet, key)
        previous = comfy.utils.set_attr_param(unet, key, weight * 2)
        doubled = comfy.utils.get_attr(unet, key)
        restored = comfy.utils.set_attr(unet, key, previous)
        facts = [f"same:{previous is weight}", f"doubled:{torch.equal(doubled, weight * 2)}",
                 f"param:{isinstance(doubled, torch.nn.Parameter) and not doubled.requires_grad}",
                 f"restored:{comfy.utils.get_attr(unet, key) is weight and restored is doubled}",
                 f"shape:{list(weight.shape)}"]
        return ("\n".join(facts),)


class PackSolidMask:
    CATEGORY = "test/mask"
    RETURN_TYPES = ("MASK",)
    FUNCTION = "solid"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 1.0}), "size": ("INT", {"default": 64})}}

    def solid(self, value, size):
        return (torch.full((1, size, size), value),)


class SoftInpaintModel:
    """Impact Pack's way: comfy_extras.nodes_differential_diffusion applied from code."""

    CATEGORY = "test/model"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    def apply(self, model):
        return nodes_differential_diffusion.DifferentialDiffusion().apply(model)


class ExtrasFromCode:
    """LatentBatch, JoinImageWithAlpha and FluxGuidance called from code; reports what came back."""

    CATEGORY = "test"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning": ("CONDITIONING",), "latent": ("LATENT",), "image": ("IMAGE",)}}

    def run(self, conditioning, latent, image):
        small = {"samples": torch.ones(1, 4, 4, 4)}
        (batched,) = LatentBatch().batch(latent, small)
        mask = torch.zeros(1, 8, 8)
        mask[:, :4] = 1.0
        (rgba,) = JoinImageWithAlpha().join_image_with_alpha(image, mask)
        (guided,) = FluxGuidance().append(conditioning, 2.5)
        facts = [f"batch:{list(batched['samples'].shape)}", f"index:{batched['batch_index']}",
                 f"rgba:{list(rgba.shape)}", f"alpha:{rgba[0, 0, 0, 3].item()},{rgba[0, -1, -1, 3].item()}",
                 f"guidance:{guided[0][1]['guidance']}", f"untouched:{'guidance' not in conditioning[0][1]}",
                 f"png:{'.png' in FolderOfImages.IMG_EXTENSIONS}"]
        return ("\n".join(facts),)


class ScheduledGuider(comfy.samplers.CFGGuider):
    """Full CFG only between two points of the schedule, plain prediction (one model call) elsewhere, as KJNodes'
    scheduled-CFG guider does."""

    def set_cfg(self, cfg, start_percent=0.0, end_percent=1.0):
        self.cfg, self.start_percent, self.end_percent = cfg, start_percent, end_percent

    def predict_noise(self, x, timestep, model_options={}, seed=None):  # noqa: B006 - ComfyUI's signature
        sigmas = model_options["transformer_options"]["sample_sigmas"]
        index = int((sigmas - timestep.reshape(-1)[0].to(sigmas)).abs().argmin())
        percent = index / (len(sigmas) - 1)
        if self.start_percent <= percent <= self.end_percent:
            cfg, uncond = self.cfg, self.conds.get("negative")
        else:
            cfg, uncond = 1.0, None
        return comfy.samplers.sampling_function(self.inner_model, x, timestep, uncond, self.conds.get("positive"), cfg,
                                                model_options=model_options, seed=seed)


class ScheduledCFG:
    CATEGORY = "test/sampling"
    RETURN_TYPES = ("GUIDER",)
    FUNCTION = "get_guider"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
                             "cfg": ("FLOAT", {"default": 4.0}), "start_percent": ("FLOAT", {"default": 0.0}),
                             "end_percent": ("FLOAT", {"default": 1.0})}}

    def get_guider(self, model, positive, negative, cfg, start_percent, end_percent):
        guider = ScheduledGuider(model)
        guider.set_conds(positive, negative)
        guider.set_cfg(cfg, start_percent, end_percent)
        return (guider,)


class ResizeByMethod:
    """Builds its inputs from ComfyUI's class-level lists, as rgthree's image resize node does."""

    CATEGORY = "test/image"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "resize"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "method": (nodes.ImageScale.upscale_methods,),
                             "crop": (nodes.ImageScale.crop_methods,), "latent_method": (nodes.LatentUpscale.upscale_methods,)}}

    def resize(self, image, method, crop, latent_method):
        return nodes.ImageScale().upscale(image, method, 8, 8, crop)


class DualCLIPLoaderPack(nodes.DualCLIPLoader):
    """A loader of its own files built on ComfyUI's DualCLIPLoader inputs, as GGUF's is."""

    @classmethod
    def INPUT_TYPES(cls):
        base = nodes.DualCLIPLoader.INPUT_TYPES()
        files = (["a.gguf", "b.gguf"],)
        return {"required": {"clip_name1": files, "clip_name2": files, "type": base["required"]["type"]}}


class CountingGuider(comfy.samplers.CFGGuider):
    """Overrides outer_sample and inner_sample, each calling super(), as guider packs do."""

    def outer_sample(self, *args, **kwargs):
        self.calls.append("outer")
        return super().outer_sample(*args, **kwargs)

    def inner_sample(self, noise, latent_image, device, *args, **kwargs):
        self.calls.append(f"inner:{device.type}")
        return super().inner_sample(noise, latent_image, device, *args, **kwargs)


class WrappedSampling:
    """An OUTER_SAMPLE wrapper put on a MODEL clone's model_options, around a guider subclass's sampling."""

    CATEGORY = "test/sampling"
    RETURN_TYPES = ("LATENT", "STRING")
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
                             "latent_image": ("LATENT",)}}

    def sample(self, model, positive, negative, latent_image):
        calls = []

        def around(executor, noise, latent, sampler, sigmas, *args, **kwargs):
            calls.append(f"wrapper:{type(executor.class_obj).__name__}")
            return executor(noise, latent, sampler, sigmas, *args, **kwargs)

        model = model.clone()
        comfy.patcher_extension.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, "pack", around,
                                                     model.model_options, is_model_options=True)
        guider = CountingGuider(model)
        guider.calls = calls
        guider.set_conds(positive, negative)
        guider.set_cfg(4.0)
        sigmas = nodes_custom_sampler.BasicScheduler().get_sigmas(model, "normal", 2, 1.0)[0]
        latent = latent_image["samples"]
        samples = guider.sample(comfy.sample.prepare_noise(latent, 7), latent, comfy.samplers.sampler_object("euler"),
                                sigmas, seed=7)
        return ({**latent_image, "samples": samples}, "\n".join(calls))


class PredictionWrapped:
    """CALC_COND_BATCH and PREDICT_NOISE wrappers on a MODEL clone (AnimateDiff's context windows wrap the
    former), sampled by a plain comfy.samplers.CFGGuider."""

    CATEGORY = "test/sampling"
    RETURN_TYPES = ("LATENT", "STRING")
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
                             "latent_image": ("LATENT",)}}

    def sample(self, model, positive, negative, latent_image):
        calls = []

        def around_batch(executor, model_, conds, x, timestep, model_options):
            calls.append(f"batch:{len(conds)}")
            return executor(model_, conds, x, timestep, model_options)

        def around_predict(executor, x, timestep, model_options, seed):
            calls.append(f"predict:{type(executor.class_obj).__name__}")
            return executor(x, timestep, model_options, seed)

        model = model.clone()
        extension = comfy.patcher_extension
        extension.add_wrapper_with_key(extension.WrappersMP.CALC_COND_BATCH, "pack", around_batch, model.model_options,
                                       is_model_options=True)
        extension.add_wrapper_with_key(extension.WrappersMP.PREDICT_NOISE, "pack", around_predict, model.model_options,
                                       is_model_options=True)
        guider = comfy.samplers.CFGGuider(model)
        guider.set_conds(positive, negative)
        guider.set_cfg(4.0)
        sigmas = nodes_custom_sampler.BasicScheduler().get_sigmas(model, "normal", 2, 1.0)[0]
        latent = latent_image["samples"]
        samples = guider.sample(comfy.sample.prepare_noise(latent, 7), latent, comfy.samplers.sampler_object("euler"),
                                sigmas, seed=7)
        return ({**latent_image, "samples": samples}, "\n".join(calls))


class ShowFacts:
    CATEGORY = "test"
    RETURN_TYPES = ()
    FUNCTION = "show"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"forceInput": True})}}

    def show(self, text):
        return {"ui": {"text": text.split("\n")}}


NODE_CLASS_MAPPINGS = {
    "PredictionWrapped": PredictionWrapped,
    "WrappedSampling": WrappedSampling,
    "ResizeByMethod": ResizeByMethod,
    "DualCLIPLoaderPack": DualCLIPLoaderPack,
    "ScheduledCFG": ScheduledCFG,
    "PackSolidMask": PackSolidMask,
    "SoftInpaintModel": SoftInpaintModel,
    "ExtrasFromCode": ExtrasFromCode,
    "ShowFacts": ShowFacts,
    "KDiffusionSamplerSelect": KDiffusionSamplerSelect,
    "AdvancedSampleWithExtras": AdvancedSampleWithExtras,
    "HelperSample": HelperSample,
    "HalfSizeImage": HalfSizeImage,
    "GrowAndPaste": GrowAndPaste,
    "WeightProbe": WeightProbe,
}
