# A model pack written the way ComfyUI packs are: module-level imports of comfy.model_patcher, model_base,
# model_sampling, latent_formats, supported_models(_base), ops and patcher_extension; a ModelPatcher subclass;
# its own network built from comfy.ops layers inside a BaseModel; wrappers and callbacks hung on the patcher; the
# MODEL's model_sampling replaced by an object patch of ComfyUI's classes.
import comfy.conds
import comfy.float
import comfy.hooks
import comfy.latent_formats
import comfy.model_base
import comfy.model_detection
import comfy.model_management
import comfy.model_patcher
import comfy.model_sampling
import comfy.ops
import comfy.patcher_extension
import comfy.supported_models
import comfy.supported_models_base
import comfy.utils
import folder_paths
import torch
from comfy.hooks import HookGroup, HookKeyframe, HookKeyframeGroup
from comfy.model_base import BaseModel, ModelType
from comfy.model_patcher import ModelPatcher, PatcherInjection
from comfy.patcher_extension import CallbacksMP, WrapperExecutor, WrappersMP

# What the wrappers and callbacks saw, for the test to read.
RECORDS = {"apply_model": [], "diffusion_model": [], "pre_run": [], "clones": 0, "denoised": 0, "latents": {},
           "injected": [], "inpaint_channels": []}


class PackPatcher(ModelPatcher):
    """The pack's own patcher class (as GGUF's and AnimateDiff's are)."""


class PackNet(torch.nn.Module):
    """eps = 0.5 * input, from a 1x1 convolution whose weights are stored in bfloat16 (comfy.ops casts them)."""

    def __init__(self, in_channels=4, device=None, operations=None, **kwargs):
        super().__init__()
        self.proj = operations.Conv2d(in_channels, in_channels, 1, dtype=torch.bfloat16, device=device)
        with torch.no_grad():
            self.proj.weight.copy_(0.5 * torch.eye(in_channels).view(in_channels, in_channels, 1, 1))
            self.proj.bias.zero_()

    def forward(self, x, timesteps, context=None, control=None, transformer_options=None, **kwargs):
        RECORDS["injected"].append(getattr(self, "motion", None) is not None)
        return self.proj(x)


class PackConfig(comfy.supported_models_base.BASE):
    unet_config = {"in_channels": 4}
    unet_extra_config = {}
    latent_format = comfy.latent_formats.SD15
    memory_usage_factor = 1.0


def record_apply_model(executor, *args, **kwargs):
    # args as BaseModel._apply_model takes them: x, t, c_concat, c_crossattn, control, transformer_options
    model = executor.class_obj
    RECORDS["apply_model"].append({"timestep": int(model.model_sampling.timestep(args[1])[0]),
                                   "cond_or_uncond": list(args[5]["cond_or_uncond"])})
    return executor(*args, **kwargs)


def record_diffusion_model(executor, *args, **kwargs):
    network = executor.class_obj
    RECORDS["diffusion_model"].append({"input_dtype": str(args[0].dtype),
                                       "weight_dtype": str(network.proj.weight.dtype)})
    return executor(*args, **kwargs)


def inject_motion(patcher):
    # What AnimateDiff does to the network while its patcher is loaded: a module of its own goes in.
    patcher.model.diffusion_model.motion = torch.nn.Identity()


def eject_motion(patcher):
    del patcher.model.diffusion_model.motion


def count_pre_run(patcher):
    RECORDS["pre_run"].append(patcher)


def count_clone(original, clone):
    RECORDS["clones"] += 1


class PackTinyModel:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "build"
    CATEGORY = "model_pack"

    def build(self):
        config = PackConfig({"in_channels": 4})
        config.set_inference_dtype(torch.bfloat16, torch.float32)
        network = BaseModel(config, ModelType.EPS, device=comfy.model_management.unet_offload_device(),
                            unet_model=PackNet)
        patcher = PackPatcher(network, comfy.model_management.get_torch_device(),
                              comfy.model_management.unet_offload_device())
        patcher.add_wrapper_with_key(WrappersMP.APPLY_MODEL, "model_pack", record_apply_model)
        comfy.patcher_extension.add_wrapper_with_key(WrappersMP.DIFFUSION_MODEL, "model_pack",
                                                     record_diffusion_model, patcher.model_options,
                                                     is_model_options=True)
        patcher.add_callback(CallbacksMP.ON_PRE_RUN, count_pre_run)
        patcher.set_injections("model_pack", [PatcherInjection(inject=inject_motion, eject=eject_motion)])
        patcher.add_callback_with_key(CallbacksMP.ON_CLONE, "model_pack", count_clone)
        return (patcher,)


class PackInpaintNet(torch.nn.Module):
    """An inpainting network: the latent's 4 channels plus a mask channel in, eps out."""

    def __init__(self, device=None, operations=None, **kwargs):
        super().__init__()
        self.proj = operations.Conv2d(5, 4, 1, device=device)

    def forward(self, x, timesteps, context=None, control=None, transformer_options=None, **kwargs):
        RECORDS["inpaint_channels"].append(x.shape[1])
        return self.proj(x)


class PackInpaintModel(BaseModel):
    """Builds its mask channel itself, as ComfyUI's inpainting models do from the sampler's arguments."""

    def concat_cond(self, **kwargs):
        return torch.ones_like(kwargs["noise"])[:, :1]


class PackTinyInpaintModel:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "build"
    CATEGORY = "model_pack"

    def build(self):
        network = PackInpaintModel(PackConfig({"in_channels": 5}), ModelType.EPS, unet_model=PackInpaintNet)
        network.set_inpaint()
        return (ModelPatcher(network, comfy.model_management.get_torch_device(),
                             comfy.model_management.unet_offload_device()),)


class PackNudgeBias:
    """Clones the MODEL and adds a ComfyUI 'diff' patch to the network's bias."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "amount": ("FLOAT", {"default": 0.1})}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "nudge"
    CATEGORY = "model_pack"

    def nudge(self, model, amount):
        patched = model.clone()
        key = "diffusion_model.proj.bias"
        added = patched.add_patches({key: (torch.full((4,), amount),)}, 1.0)
        assert added == [key], added
        assert type(patched) is PackPatcher, type(patched)
        return (patched,)


class PackModelAfter:
    """Passes the MODEL on once a LATENT exists: orders samplings in one prompt."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "after": ("LATENT",)}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "after"
    CATEGORY = "model_pack"

    def after(self, model, after):
        return (model,)


class CountingSampling(comfy.model_sampling.ModelSamplingDiscrete, comfy.model_sampling.V_PREDICTION):
    """ComfyUI's discrete schedule read as v-prediction, counting its evaluations."""

    def calculate_denoised(self, sigma, model_output, model_input):
        RECORDS["denoised"] += 1
        return super().calculate_denoised(sigma, model_output, model_input)


class PackVPrediction:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"
    CATEGORY = "model_pack"

    def patch(self, model):
        patched = model.clone()
        patched.add_object_patch("model_sampling", CountingSampling(model.model.model_config))
        return (patched,)


class PackModelFacts:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    RETURN_TYPES = ()
    FUNCTION = "facts"
    OUTPUT_NODE = True
    CATEGORY = "model_pack"

    def facts(self, model):
        sampling = model.get_model_object("model_sampling")
        reference = comfy.model_sampling.ModelSamplingDiscrete()
        sdxl = comfy.supported_models.SDXL({"disable_unet_model_creation": True}).get_model({})
        adm = sdxl.encode_adm(pooled_output=torch.zeros(1, 1280), width=1024, height=1024)
        class LCMSampling(comfy.model_sampling.ModelSamplingDiscreteDistilled, comfy.model_sampling.LCM):
            pass

        lcm = LCMSampling(model.model.model_config)
        cascade = comfy.model_sampling.StableCascadeSampling()
        own = BaseModel(PackConfig({"in_channels": 4}), unet_model=PackNet)
        short, long = (own.extra_conds(cross_attn=torch.ones(1, n, 8))["c_crossattn"] for n in (77, 154))
        batched = short.concat([long]) if short.can_concat(long) else None
        facts = {
            "lcm_schedule": [len(lcm.sigmas), int(lcm.timestep(lcm.sigma_min.reshape(1))[0]),
                             float(lcm.sigma_max), float(sampling.sigma_max)],
            "is_patcher": isinstance(model, ModelPatcher),
            "is_pack_patcher": isinstance(model, PackPatcher),
            "is_base_model": isinstance(model.model, BaseModel),
            "is_sdxl": isinstance(model.model, comfy.model_base.SDXL),
            "config_is_sd15": isinstance(model.model.model_config, comfy.supported_models.SD15),
            "config_is_sdxl": isinstance(model.model.model_config, comfy.supported_models.SDXL),
            # Easy-Use walks a chain of family tests; families Hearth has no model for answer too (no).
            "other_families": [isinstance(model.model.model_config, family) for family in (
                comfy.supported_models.HunyuanDiT, comfy.supported_models.Flux, comfy.supported_models.GenmoMochi)]
            + [isinstance(model.model, comfy.model_base.LTXV)],
            "scale_factor": model.model.latent_format.scale_factor,
            "sd15_scale_factor": comfy.latent_formats.SD15().scale_factor,
            "sigma_difference": float((sampling.sigmas.float() - reference.sigmas).abs().max()),
            "half_way": [float(sampling.percent_to_sigma(0.5)), float(reference.percent_to_sigma(0.5))],
            "cascade": [float(cascade.timestep(cascade.sigma(torch.tensor(0.5)))), float(cascade.sigma_max)],
            "crossattn_batch": [type(short).__name__, list(batched.shape)],
            "sdxl_context_dim": comfy.supported_models.SDXL.unet_config["context_dim"],
            "sdxl_is_sdxl": isinstance(sdxl, comfy.model_base.SDXL),
            "sdxl_adm_shape": list(adm.shape),
            "executor_is_comfy": WrapperExecutor.__name__,
        }
        return {"ui": {"facts": [facts]}}


class PackKeepLatent:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "name": ("STRING", {"default": "out"})}}

    RETURN_TYPES = ()
    FUNCTION = "keep"
    OUTPUT_NODE = True
    CATEGORY = "model_pack"

    def keep(self, samples, name):
        RECORDS["latents"][name] = samples["samples"].clone()
        return {"ui": {"kept": [name]}}


class PackRewrapModel:
    """Wraps the MODEL's network in a new patcher, as efficiency's tiled sampler does."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "rewrap"
    CATEGORY = "model_pack"

    def rewrap(self, model):
        return (comfy.model_patcher.ModelPatcher(model.model, load_device=model.load_device,
                                                 offload_device=comfy.model_management.unet_offload_device()),)


class PackPatcherSurface:
    """ComfyUI's ModelPatcher calls on the pack's own patcher, reported."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    RETURN_TYPES = ()
    FUNCTION = "surface"
    OUTPUT_NODE = True
    CATEGORY = "model_pack"

    def surface(self, model):
        clone = model.clone()
        clone.add_patches({"diffusion_model.proj.bias": (torch.ones(4),)}, 0.5)
        key_patches = clone.get_key_patches("diffusion_model.proj.")
        network = clone.patch_model()
        patched = network.diffusion_model.proj.bias.float().tolist()
        loaded = clone.loaded_size() == clone.model_size() > 0
        clone.unpatch_model()
        restored = network.diffusion_model.proj.bias.float().tolist()
        clone.set_model_compute_dtype(torch.float16)
        facts = {
            "key_patches": {key: len(value) for key, value in key_patches.items()},
            "patched": patched, "loaded": loaded, "restored": restored,
            "model_dtype": str(model.model_dtype()),
            "compute_dtype": str(clone.get_model_object("manual_cast_dtype")),
            "original_compute_dtype": str(model.get_model_object("manual_cast_dtype")),
            "memory_required": model.memory_required([2, 4, 8, 8]) > 0,
            "devices": [str(model.load_device), str(model.offload_device)],
        }
        return {"ui": {"facts": [facts]}}


class SwappingPatcher(ModelPatcher):
    """GGUF's way of cloning any MODEL into its own patcher class: assign __class__, reuse ModelPatcher.clone."""

    def clone(self, *args, **kwargs):
        original = self.__class__
        self.__class__ = SwappingPatcher
        try:
            twin = super().clone(*args, **kwargs)
        finally:
            self.__class__ = original
        twin.__class__ = SwappingPatcher
        return twin


class PackSwapClone:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "swap"
    CATEGORY = "model_pack"

    def swap(self, model):
        return (SwappingPatcher.clone(model),)


class PackFp8Rounding:
    """A weight patched in float32 stored back in fp8 the way GGUF's and ComfyUI's patchers do it."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 0.3})}}

    RETURN_TYPES = ()
    FUNCTION = "round"
    OUTPUT_NODE = True
    CATEGORY = "model_pack"

    def round(self, value):
        weight = torch.full((100000,), value)
        once = comfy.float.stochastic_rounding(weight, torch.float8_e4m3fn, seed=7).float()
        again = comfy.float.stochastic_rounding(weight, torch.float8_e4m3fn, seed=7).float()
        return {"ui": {"rounding": [{"mean": float(once.mean()), "values": sorted(set(once.tolist())),
                                     "repeatable": bool(torch.equal(once, again))}]}}


class PackCheckpointFacts:
    """What comfy.model_detection says of a checkpoint file, read as packs read one."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (folder_paths.get_filename_list("checkpoints"),)}}

    RETURN_TYPES = ()
    FUNCTION = "facts"
    OUTPUT_NODE = True
    CATEGORY = "model_pack"

    def facts(self, ckpt_name):
        sd = comfy.utils.load_torch_file(folder_paths.get_full_path("checkpoints", ckpt_name))
        prefix = comfy.model_detection.unet_prefix_from_state_dict(sd)
        blocks = comfy.model_detection.count_blocks(sd.keys(), prefix + "input_blocks.{}.")
        return {"ui": {"facts": [{"prefix": prefix, "input_blocks": blocks}]}}


class PackRegionalConditioning:
    """The negative prompt added to the positive in a masked region for part of the schedule (comfy.hooks)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"positive": ("CONDITIONING",), "extra": ("CONDITIONING",),
                             "with_hook": ("BOOLEAN", {"default": False})}}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "combine"
    CATEGORY = "model_pack"

    def combine(self, positive, extra, with_hook):
        hooks = None
        if with_hook:
            keyframes = HookKeyframeGroup()
            keyframes.add(HookKeyframe(strength=0.5, start_percent=0.5))
            hooks = HookGroup()
            hooks.add(comfy.hooks.WeightHook())
            hooks.set_keyframes_on_hooks(keyframes)
        mask = torch.zeros(8, 8)
        mask[:, :4] = 1.0
        (combined,) = comfy.hooks.set_conds_props_and_combine(
            conds=[positive], new_conds=[extra], strength=0.5, set_cond_area="mask bounds", mask=mask,
            hooks=hooks, timesteps_range=(0.25, 0.75))
        return (combined,)


class PackConditioningFacts:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning": ("CONDITIONING",)}}

    RETURN_TYPES = ()
    FUNCTION = "facts"
    OUTPUT_NODE = True
    CATEGORY = "model_pack"

    def facts(self, conditioning):
        entries = [{k: (list(v.shape) if isinstance(v, torch.Tensor) else v) for k, v in options.items()
                    if k != "pooled_output"} for _, options in conditioning]
        return {"ui": {"entries": entries}}


NODE_CLASS_MAPPINGS = {
    "PackCheckpointFacts": PackCheckpointFacts,
    "PackRewrapModel": PackRewrapModel,
    "PackPatcherSurface": PackPatcherSurface,
    "PackSwapClone": PackSwapClone,
    "PackFp8Rounding": PackFp8Rounding,
    "PackTinyInpaintModel": PackTinyInpaintModel,
    "PackRegionalConditioning": PackRegionalConditioning,
    "PackConditioningFacts": PackConditioningFacts,
    "PackTinyModel": PackTinyModel,
    "PackNudgeBias": PackNudgeBias,
    "PackVPrediction": PackVPrediction,
    "PackModelFacts": PackModelFacts,
    "PackKeepLatent": PackKeepLatent,
    "PackModelAfter": PackModelAfter,
}
