# A pack written the way efficiency-nodes and Easy-Use are, against Hearth's own SD MODEL and CLIP: a tiled
# sampler's re-wrap ModelPatcher(model.model, ...), facts read off model.model (model_type, model_config,
# state_dict), an advanced prompt encoder on ComfyUI's token windows with word ids and cond_stage_model, and
# APPLY_MODEL / DIFFUSION_MODEL wrappers hung on the MODEL with comfy.patcher_extension.
import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.patcher_extension
import comfy.sd1_clip
import comfy.sdxl_clip
import torch
from comfy.model_base import ModelType
from comfy.patcher_extension import WrappersMP
from comfy.sdxl_clip import SDXLClipG, SDXLClipModel, SDXLRefinerClipModel

# What the nodes saw, for the test to read.
RECORDS = {"facts": {}, "latents": {}, "conds": {}, "tokens": {}, "apply_model": [], "diffusion_model": []}


class SurfaceModelFacts:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    RETURN_TYPES = ()
    FUNCTION = "facts"
    OUTPUT_NODE = True
    CATEGORY = "sd_surface"

    def facts(self, model):
        base = model.model
        sampling_kind = {ModelType.EPS: "eps", ModelType.V_PREDICTION: "v"}  # AnimateDiff keys a table by it
        config = base.model_config
        state = base.state_dict()
        RECORDS["facts"] = {
            "is_eps": base.model_type == ModelType.EPS, "kind": sampling_kind.get(base.model_type),
            "type_name": base.model_type.name,
            "latent_scale": config.latent_format.scale_factor,
            "loader_options": [config.custom_operations, config.scaled_fp8, config.optimizations.get("fp8"),
                               config.manual_cast_dtype, base.manual_cast_dtype, config.sampling_settings],
            "model_channels": config.unet_config["model_channels"],
            "state_keys": sorted({k.split(".")[0] for k in state}), "state_count": len(state),
            "current_patcher_is_model": base.current_patcher is model,
        }
        return {"ui": {"facts": [True]}}


class SurfaceTiledRewrap:
    """The tiled sampler's step: a new patcher around the MODEL's network, on ComfyUI's devices."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "rewrap"
    CATEGORY = "sd_surface"

    def rewrap(self, model):
        rewrapped = comfy.model_patcher.ModelPatcher(model.model, load_device=model.load_device,
                                                     offload_device=comfy.model_management.unet_offload_device())
        RECORDS["facts"]["rewrap"] = [rewrapped is not model, isinstance(rewrapped, comfy.model_patcher.ModelPatcher)]
        return (rewrapped,)


def _encode_l(clip, windows):
    # efficiency's encode_token_weights: options reset, the CLIP's clip skip, the encoder loaded, then one encoder.
    clip.cond_stage_model.reset_clip_options()
    if clip.layer_idx is not None:
        clip.cond_stage_model.set_clip_options({"layer": clip.layer_idx})
    comfy.model_management.load_model_gpu(clip.patcher)
    clip.cond_stage_model.set_clip_options({"execution_device": clip.patcher.load_device})
    out, _ = clip.cond_stage_model.clip_l.encode_token_weights(windows)
    return out


def _encode_g(clip, windows):
    clip.cond_stage_model.reset_clip_options()
    if clip.layer_idx is not None:
        clip.cond_stage_model.set_clip_options({"layer": clip.layer_idx})
    return clip.cond_stage_model.clip_g.encode_token_weights(windows)


class SurfaceAdvancedEncode:
    """An advanced encoder: ComfyUI's windows with word ids, each word's weight read back by its id, and (with
    mask_word) one word masked by its id, as the down_weight interpretations do."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip": ("CLIP",), "text": ("STRING", {"multiline": True}),
                             "mask_word": ("INT", {"default": 0, "min": 0})}}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"
    CATEGORY = "sd_surface"

    def encode(self, clip, text, mask_word):
        tokenized = clip.tokenize(text, return_word_ids=True)
        windows = tokenized["l"]
        RECORDS["tokens"] = {
            "names": sorted(tokenized), "lengths": [len(w) for w in windows],
            "word_weights": sorted({(wid, w) for window in windows for _, w, wid in window if wid != 0}),
            "ends": [window[0][2] for window in windows],
            "via_tokenizer": clip.tokenizer.tokenize_with_weights(text, True) == tokenized,
        }

        def pairs(name):
            return [[(266, 1.0) if mask_word and wid == mask_word else (t, w) for t, w, wid in window]
                    for window in tokenized[name]]

        RECORDS["tokens"]["sdxl_branch"] = isinstance(clip.cond_stage_model, (SDXLClipModel, SDXLRefinerClipModel,
                                                                              SDXLClipG))
        if RECORDS["tokens"]["sdxl_branch"]:
            cond_l = _encode_l(clip, pairs("l"))
            cond_g, pooled = _encode_g(clip, pairs("g"))
            cond = torch.cat([cond_l, cond_g], dim=-1)
        else:
            cond, pooled = clip.encode_from_tokens({"l": pairs("l")}, return_pooled=True)
            RECORDS["conds"]["stage"] = _encode_l(clip, pairs("l"))
        return ([[cond, {"pooled_output": pooled}]],)


class SurfaceKeepCond:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning": ("CONDITIONING",), "name": ("STRING", {"default": "cond"})}}

    RETURN_TYPES = ()
    FUNCTION = "keep"
    OUTPUT_NODE = True
    CATEGORY = "sd_surface"

    def keep(self, conditioning, name):
        RECORDS["conds"][name] = [conditioning[0][0].clone(), conditioning[0][1].get("pooled_output")]
        return {"ui": {"kept": [name]}}


class SurfaceWrapModel:
    """APPLY_MODEL and DIFFUSION_MODEL wrappers on a clone of the MODEL, as KJNodes' and AnimateDiff's are hung."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "scale": ("FLOAT", {"default": 1.0})}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "wrap"
    CATEGORY = "sd_surface"

    def wrap(self, model, scale):
        def apply_model_wrapper(executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
            RECORDS["apply_model"].append({
                "sigma": float(t.reshape(-1)[0]), "base_model": isinstance(executor.class_obj, comfy.model_base.BaseModel),
                "context": list(c_crossattn.shape) if c_crossattn is not None else None,
                "cond_or_uncond": list(transformer_options.get("cond_or_uncond", []))})
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)

        def diffusion_model_wrapper(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
            RECORDS["diffusion_model"].append({
                "timestep": float(timesteps.reshape(-1)[0]), "module": isinstance(executor.class_obj, torch.nn.Module),
                "sigmas": "sigmas" in transformer_options})
            return executor(x, timesteps, context, y, control, transformer_options, **kwargs) * scale

        work_model = model.clone()
        work_model.add_wrapper_with_key(WrappersMP.APPLY_MODEL, "sd_surface", apply_model_wrapper)
        work_model.add_wrapper_with_key(WrappersMP.DIFFUSION_MODEL, "sd_surface", diffusion_model_wrapper)
        return (work_model,)


class SurfaceBatchedEncode:
    """VideoHelperSuite's batched VAE encode: each slice cropped by the VAE, then encoded."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"vae": ("VAE",), "pixels": ("IMAGE",), "per_batch": ("INT", {"default": 1, "min": 1})}}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "encode"
    CATEGORY = "sd_surface"

    def encode(self, vae, pixels, per_batch):
        t = []
        RECORDS["facts"]["vae"] = [vae.downscale_ratio, list(pixels.shape)]
        for start in range(0, pixels.shape[0], per_batch):
            sub_pixels = vae.vae_encode_crop_pixels(pixels[start:start + per_batch])
            RECORDS["facts"].setdefault("cropped", []).append(list(sub_pixels.shape))
            t.append(vae.encode(sub_pixels[:, :, :, :3]))
        return ({"samples": torch.cat(t, dim=0)},)


class SurfaceKeepLatent:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "name": ("STRING", {"default": "out"})}}

    RETURN_TYPES = ()
    FUNCTION = "keep"
    OUTPUT_NODE = True
    CATEGORY = "sd_surface"

    def keep(self, samples, name):
        RECORDS["latents"][name] = samples["samples"].clone()
        return {"ui": {"kept": [name]}}


NODE_CLASS_MAPPINGS = {
    "SurfaceModelFacts": SurfaceModelFacts,
    "SurfaceTiledRewrap": SurfaceTiledRewrap,
    "SurfaceAdvancedEncode": SurfaceAdvancedEncode,
    "SurfaceKeepCond": SurfaceKeepCond,
    "SurfaceWrapModel": SurfaceWrapModel,
    "SurfaceKeepLatent": SurfaceKeepLatent,
    "SurfaceBatchedEncode": SurfaceBatchedEncode,
}
