# A sampling pack written the way ComfyUI packs are: module-level imports of comfy.samplers, comfy.sample,
# latent_preview and nodes; the sampler and scheduler lists in INPUT_TYPES; common_ksampler in its own node.
import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
import nodes
import torch
from comfy.comfy_types import IO, ComfyNodeABC, InputTypeDict
from comfy.comfy_types.node_typing import IO as NodeTypingIO
from comfy.samplers import SAMPLER_NAMES, SCHEDULER_NAMES
from nodes import CLIPTextEncode, EmptyLatentImage, KSampler, VAEDecode

assert NodeTypingIO is IO
SAMPLERS_AT_IMPORT = list(SAMPLER_NAMES)
SCHEDULERS_AT_IMPORT = list(SCHEDULER_NAMES)


def sampling_inputs():
    return {
        "model": (IO.MODEL,),
        "seed": (IO.INT, {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF}),
        "steps": (IO.INT, {"default": 3, "min": 1, "max": 10000}),
        "cfg": (IO.FLOAT, {"default": 4.0, "min": 0.0, "max": 100.0}),
        "sampler_name": (comfy.samplers.KSampler.SAMPLERS,),
        "scheduler": (comfy.samplers.KSampler.SCHEDULERS,),
        "positive": (IO.CONDITIONING,),
        "negative": (IO.CONDITIONING,),
        "latent_image": (IO.LATENT,),
    }


class PackKSampler(ComfyNodeABC):
    """A custom KSampler that calls nodes.common_ksampler, as many sampler packs do."""

    CATEGORY = "test/sampling"
    RETURN_TYPES = (IO.LATENT,)
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls) -> InputTypeDict:
        return {"required": {**sampling_inputs(), "denoise": (IO.FLOAT, {"default": 1.0, "min": 0.0, "max": 1.0})}}

    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image, denoise=1.0):
        return nodes.common_ksampler(model, seed, steps, cfg, sampler_name, scheduler, positive, negative,
                                     latent_image, denoise=denoise)


class PackSampleDirect:
    """The body of ComfyUI's common_ksampler written out with comfy.sample and latent_preview."""

    CATEGORY = "test/sampling"
    RETURN_TYPES = ("LATENT", "LATENT")
    RETURN_NAMES = ("output", "denoised")
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": sampling_inputs()}

    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image):
        latent = comfy.sample.fix_empty_latent_channels(model, latent_image["samples"])
        noise = comfy.sample.prepare_noise(latent, seed, latent_image.get("batch_index"))
        x0 = {}
        callback = latent_preview.prepare_callback(model, steps, x0)
        samples = comfy.sample.sample(model, noise, steps, cfg, sampler_name, scheduler, positive, negative, latent,
                                      denoise=1.0, noise_mask=latent_image.get("noise_mask"), callback=callback,
                                      disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
        denoised = model.model.process_latent_out(x0["x0"]).cpu()
        return ({**latent_image, "samples": samples}, {**latent_image, "samples": denoised})


class PackGuidedSampler:
    """CFGGuider + sampler_object + calculate_sigmas on the model's model_sampling object."""

    CATEGORY = "test/sampling"
    RETURN_TYPES = ("LATENT", "SIGMAS")
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": sampling_inputs()}

    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image):
        sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), scheduler, steps)
        guider = comfy.samplers.CFGGuider(model)
        guider.set_conds(positive, negative)
        guider.set_cfg(cfg)
        latent = latent_image["samples"]
        noise = comfy.sample.prepare_noise(latent, seed)
        samples = guider.sample(noise, latent, comfy.samplers.sampler_object(sampler_name), sigmas, seed=seed)
        return ({"samples": samples}, sigmas)


def sample_halfway(model, x, sigmas, extra_args=None, callback=None, disable=None, scale=0.5):
    """A pack's own k-diffusion-style sampler: Euler steps that move only `scale` of the way each step."""
    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})
        d = (x - denoised) / sigmas[i]
        x = x + d * (sigmas[i + 1] - sigmas[i]) * scale
    return x


class HalfwaySampler:
    CATEGORY = "test/sampling"
    RETURN_TYPES = ("SAMPLER",)
    FUNCTION = "get_sampler"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"scale": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0})}}

    def get_sampler(self, scale):
        return (comfy.samplers.KSAMPLER(sample_halfway, extra_options={"scale": scale}),)


class SamplerNames:
    CATEGORY = "test/sampling"
    RETURN_TYPES = ("STRING", "STRING")
    FUNCTION = "names"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def names(self):
        return (",".join(comfy.samplers.KSampler.SAMPLERS), ",".join(SCHEDULERS_AT_IMPORT))


class LatentPreviewOf:
    """Uses latent_preview.get_previewer the way preview nodes do."""

    CATEGORY = "test/sampling"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "preview"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "samples": ("LATENT",)}}

    def preview(self, model, samples):
        import numpy as np

        previewer = latent_preview.get_previewer(model.load_device, model.model.latent_format)
        fmt, image, size = previewer.decode_latent_to_preview_image("JPEG", model.model.process_latent_in(
            samples["samples"]))
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
        return (pixels[None],)


class OneNodeTxt2Img:
    """A whole txt2img inside one node, built from ComfyUI's node classes by name (an "efficiency" style pack)."""

    CATEGORY = "test/sampling"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "clip": ("CLIP",), "vae": ("VAE",),
                             "positive": ("STRING", {"default": "a red cat"}),
                             "negative": ("STRING", {"default": "blurry"}),
                             "seed": ("INT", {"default": 7}), "steps": ("INT", {"default": 2}),
                             "size": ("INT", {"default": 64, "min": 16, "max": nodes.MAX_RESOLUTION, "step": 8})}}

    def run(self, model, clip, vae, positive, negative, seed, steps, size):
        (pos,) = CLIPTextEncode().encode(clip, positive)
        (neg,) = CLIPTextEncode().encode(clip, negative)
        (latent,) = EmptyLatentImage().generate(size, size, 1)
        (samples,) = KSampler().sample(model, seed, steps, 4.0, "euler", "normal", pos, neg, latent, denoise=1.0)
        return VAEDecode().decode(vae, samples)


NODE_CLASS_MAPPINGS = {
    "PackKSampler": PackKSampler, "PackSampleDirect": PackSampleDirect, "PackGuidedSampler": PackGuidedSampler,
    "HalfwaySampler": HalfwaySampler, "SamplerNames": SamplerNames, "LatentPreviewOf": LatentPreviewOf,
    "OneNodeTxt2Img": OneNodeTxt2Img,
}
