# A pack that changes guidance the way ComfyUI packs do: clone the MODEL and store functions with
# set_model_sampler_cfg_function / set_model_sampler_post_cfg_function / set_model_sampler_pre_cfg_function,
# set_model_denoise_mask_function, and transformer patches (middle_patch, an attention output patch that reads
# cond_or_uncond). Everything works on ComfyUI's args dicts; nothing imports Hearth.
import torch


class CfgPackRescale:
    """Rescaled CFG (Lin et al. 2023) after the guidance: the guided noise gets the positive prediction's spread,
    blended by `multiplier`."""

    CATEGORY = "test/guidance"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",),
                             "multiplier": ("FLOAT", {"default": 0.7, "min": 0.0, "max": 1.0, "step": 0.01})}}

    def patch(self, model, multiplier):
        def rescale(args):
            x = args["input"]
            guided = x - args["denoised"]
            positive = x - args["cond_denoised"]
            dims = tuple(range(1, guided.ndim))
            ratio = positive.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True)
            return x - (multiplier * guided * ratio + (1.0 - multiplier) * guided)

        m = model.clone()
        m.set_model_sampler_post_cfg_function(rescale)
        return (m,)


class CfgPackFixedScale:
    """Guides with its own scale whatever the sampler's cfg (a sampler_cfg_function, in noise space)."""

    CATEGORY = "test/guidance"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",),
                             "scale": ("FLOAT", {"default": 2.5, "min": 0.0, "max": 100.0, "step": 0.1})}}

    def patch(self, model, scale):
        def fixed(args):
            cond, uncond = args["cond"], args["uncond"]
            return uncond + (cond - uncond) * scale

        m = model.clone()
        m.set_model_sampler_cfg_function(fixed)
        return (m,)


class CfgPackSwapPrompts:
    """Swaps the positive and negative predictions before the guidance (a sampler_pre_cfg_function)."""

    CATEGORY = "test/guidance"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    def patch(self, model):
        def swap(args):
            conds_out = args["conds_out"]
            if len(conds_out) < 2:
                return conds_out
            return [conds_out[1], conds_out[0]] + list(conds_out[2:])

        m = model.clone()
        m.set_model_sampler_pre_cfg_function(swap)
        return (m,)


class CfgPackScaleMiddle:
    """Scales every transformer block's features between self- and cross-attention (a middle_patch)."""

    CATEGORY = "test/guidance"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 4.0})}}

    def patch(self, model, scale):
        m = model.clone()
        m.set_model_patch(lambda x, extra_options: x * scale, "middle_patch")
        return (m,)


class CfgPackMuteNegativeText:
    """Drops the cross-attention output of the negative prompt's chunks only, found by cond_or_uncond."""

    CATEGORY = "test/guidance"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    def patch(self, model):
        def mute(n, extra_options):
            chunks = extra_options["cond_or_uncond"]
            parts = list(n.chunk(len(chunks)))
            return torch.cat([part * 0.0 if which == 1 else part for which, part in zip(chunks, parts, strict=True)])

        m = model.clone()
        m.set_model_attn2_output_patch(mute)
        return (m,)


class CfgPackHardMask:
    """A denoise_mask_function in DifferentialDiffusion's manner: regenerate where the soft mask reaches the
    fraction of the schedule still to go, read through extra_options["model"].inner_model.model_sampling."""

    CATEGORY = "test/guidance"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    def patch(self, model):
        def threshold(sigma, denoise_mask, extra_options):
            sampling = extra_options["model"].inner_model.model_sampling
            sigmas = extra_options["sigmas"]
            last = max(float(sigmas[-1]), sampling.sigma_min)
            t_from = sampling.timestep(sigmas[0])
            t_to = sampling.timestep(torch.tensor(last))
            now = sampling.timestep(sigma[0])
            return (denoise_mask >= (now - t_to) / (t_from - t_to)).to(denoise_mask.dtype)

        m = model.clone()
        m.set_model_denoise_mask_function(threshold)
        return (m,)


NODE_CLASS_MAPPINGS = {
    "CfgPackRescale": CfgPackRescale, "CfgPackFixedScale": CfgPackFixedScale, "CfgPackSwapPrompts": CfgPackSwapPrompts,
    "CfgPackScaleMiddle": CfgPackScaleMiddle, "CfgPackMuteNegativeText": CfgPackMuteNegativeText,
    "CfgPackHardMask": CfgPackHardMask,
}
