import os

import comfy.clip_vision
import comfy.controlnet
import comfy.lora
import comfy.sd
import comfy.sd1_clip
import comfy.utils
import folder_paths
import torch
from comfy.clip_vision import ClipVisionModel, Output, clip_preprocess
from comfy.controlnet import ControlBase, ControlNet, StrengthType, broadcast_image_to
from comfy.ldm.modules.attention import CrossAttention, FeedForward, SpatialTransformer, optimized_attention
from comfy.ldm.modules.diffusionmodules import openaimodel
from comfy.ldm.modules.diffusionmodules.util import timestep_embedding
from comfy.sd import CLIP, VAE
from comfy.sdxl_clip import SDXLClipG, SDXLClipModel, SDXLRefinerClipModel

try:  # Easy-Use's probe: the new path first, then the old one
    from comfy.text_encoders.sd3_clip import SD3ClipModel, T5XXLModel
except ImportError:
    from comfy.sd3_clip import SD3ClipModel, T5XXLModel


class TinyControlModel(torch.nn.Module):
    """A control network of the pack's own: one output per UNet level, from the hint's mean."""

    dtype = torch.float32

    def forward(self, x, hint, timesteps, context, **kwargs):
        level = x + hint.mean(dim=1, keepdim=True)[:, :, ::8, ::8]
        return {"output": [level, level * 2], "middle": [level * 3]}


class VersatileAttention(CrossAttention):
    """AnimateDiff's temporal attention: a CrossAttention subclass attending across the frames of a batch."""

    def forward(self, x, context=None, value=None, mask=None, transformer_options=None):
        frames, tokens, channels = x.shape
        across = x.permute(1, 0, 2)  # every token attends over the frames
        return super().forward(across).permute(1, 0, 2)


class TemporalMixer(torch.nn.Module):
    """A motion-module-like block built from ComfyUI's attention classes and timestep embedding."""

    def __init__(self, channels, width=32):
        super().__init__()
        self.proj_in = torch.nn.Conv2d(channels, width, 1)
        self.res = openaimodel.ResBlock(width, 8, 0.0)
        self.attn = VersatileAttention(width, heads=2, dim_head=width // 2)
        self.ff = FeedForward(width, glu=True)
        self.proj_out = torch.nn.Conv2d(width, channels, 1)
        self.attn_check = isinstance(SpatialTransformer, type) and optimized_attention is not None
        for parameter in self.parameters():  # ComfyUI's layers skip initialisation: weights come from a file
            torch.nn.init.normal_(parameter, std=0.02)

    def forward(self, x):
        emb = timestep_embedding(torch.arange(x.shape[0]), 8)
        h = self.res(self.proj_in(x), emb)
        b, c, height, width = h.shape
        tokens = h.flatten(2).transpose(1, 2)
        tokens = tokens + self.attn(tokens)
        tokens = tokens + self.ff(tokens)
        return x + self.proj_out(tokens.transpose(1, 2).reshape(b, c, height, width))


class PackControlNet(ControlNet):
    """A ControlNet subclass, as Advanced-ControlNet writes them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.made_by = "encoders_pack"

    def copy(self):
        c = PackControlNet(self.control_model, global_average_pooling=self.global_average_pooling)
        self.copy_to(c)
        return c


class PackClipVision(ClipVisionModel):
    """A ClipVisionModel subclass with the real constructor signature (Easy-Use's kolors loader)."""

    def __init__(self, json_config):
        super().__init__(json_config)


class PackVAE(VAE):
    """A VAE subclass adding a method, built from a state dict."""

    def describe(self):
        return f"{self.latent_channels} channels"


def _lora_path(name):
    return folder_paths.get_full_path_or_raise("loras", name)


class KeyMapLoraLoader:
    """Puts a LoRA on a MODEL the way KJNodes and Easy-Use do: key map, load_lora, clone, add_patches."""

    CATEGORY = "encoders_pack"
    RETURN_TYPES = ("MODEL", "INT")
    RETURN_NAMES = ("model", "patched")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "lora_name": (folder_paths.get_filename_list("loras"),),
                             "strength": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0})}}

    def load(self, model, lora_name, strength):
        lora = comfy.utils.load_torch_file(_lora_path(lora_name), safe_load=True)
        key_map = comfy.lora.model_lora_keys_unet(model.model, {})
        loaded = comfy.lora.load_lora(lora, key_map, log_missing=False)
        patched = model.clone()
        keys = patched.add_patches(loaded, strength)
        return (patched, len(keys))


class KeyMapClipLora:
    """The CLIP half: comfy.lora.model_lora_keys_clip on the CLIP value."""

    CATEGORY = "encoders_pack"
    RETURN_TYPES = ("CLIP", "INT")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip": ("CLIP",), "lora_name": (folder_paths.get_filename_list("loras"),),
                             "strength": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0})}}

    def load(self, clip, lora_name, strength):
        lora = comfy.utils.load_torch_file(_lora_path(lora_name), safe_load=True)
        loaded = comfy.lora.load_lora(lora, comfy.lora.model_lora_keys_clip(clip, {}), log_missing=False)
        patched = clip.clone()
        return (patched, len(patched.add_patches(loaded, strength)))


class ScaledEmphasisEncode:
    """Scales every prompt weight's distance from 1 (a prompt-control node), parsing with comfy.sd1_clip."""

    CATEGORY = "encoders_pack"
    RETURN_TYPES = ("CONDITIONING", "STRING")
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip": ("CLIP",), "text": ("STRING", {"multiline": True}),
                             "scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 4.0})}}

    def encode(self, clip, text, scale):
        segments = comfy.sd1_clip.token_weights(comfy.sd1_clip.escape_important(text), 1.0)
        parts = []
        for segment, weight in segments:
            segment = comfy.sd1_clip.unescape_important(segment).replace("(", "\\(").replace(")", "\\)")
            weight = 1.0 + (weight - 1.0) * scale
            parts.append(segment if weight == 1.0 else f"({segment}:{weight:.4g})")
        prompt = "".join(parts)
        tokens = clip.tokenize(prompt)
        cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
        return ([[cond, {"pooled_output": pooled}]], prompt)


class StandaloneTokenizer:
    """Tokenizes with comfy.sd1_clip.SD1Tokenizer on its own (no CLIP value), as prompt-inspection nodes do."""

    CATEGORY = "encoders_pack"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "tokenize"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"multiline": True})}}

    def tokenize(self, text):
        tokens = comfy.sd1_clip.SD1Tokenizer().tokenize_with_weights(text, return_word_ids=True)["l"]
        return (";".join(",".join(f"{t}:{w:.3g}:{i}" for t, w, i in window if i) for window in tokens),)


class LoadCheckpointWithConfig:
    """WAS' checkpoint loader with a config: comfy.sd.load_checkpoint(config_path, ckpt_path, ...)."""

    CATEGORY = "encoders_pack"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"config_name": (["v1-inference.yaml", "v2-inference-v.yaml"],),
                             "ckpt_name": (folder_paths.get_filename_list("checkpoints"),)}}

    def load(self, config_name, ckpt_name):
        config = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", config_name)
        out = comfy.sd.load_checkpoint(config, folder_paths.get_full_path_or_raise("checkpoints", ckpt_name),
                                       output_vae=True, output_clip=True,
                                       embedding_directory=folder_paths.get_folder_paths("embeddings"))
        return out[:3]


class VAEFromCheckpointTensors:
    """efficiency-nodes' way of baking a VAE: tensors in, comfy.sd.VAE (here a subclass of it) out."""

    CATEGORY = "encoders_pack"
    RETURN_TYPES = ("VAE", "STRING")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (folder_paths.get_filename_list("checkpoints"),)}}

    def load(self, ckpt_name):
        sd = comfy.utils.load_torch_file(folder_paths.get_full_path_or_raise("checkpoints", ckpt_name))
        vae = PackVAE(sd={k: v for k, v in sd.items() if k.startswith("first_stage_model.")})
        assert isinstance(vae, VAE) and isinstance(vae, PackVAE)
        return (vae, vae.describe())


class ApplyPackControlNet:
    """ControlNetApply with the pack's own control network: conditioning gets a PackControlNet chained."""

    CATEGORY = "encoders_pack"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning": ("CONDITIONING",), "image": ("IMAGE",),
                             "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0})}}

    def apply(self, conditioning, image, strength):
        hint = image.movedim(-1, 1)
        out = []
        for cond, options in conditioning:
            options = options.copy()
            control = PackControlNet(TinyControlModel(), strength_type=StrengthType.CONSTANT)
            control = control.set_cond_hint(hint, strength, (0.0, 1.0))
            control.set_previous_controlnet(options.get("control"))
            assert isinstance(control, ControlBase)
            options["control"] = control
            out.append([cond, options])
        return (out,)


class LoadControlNetFile:
    """Easy-Use's loader: comfy.controlnet.load_controlnet(path) (an output node, so a prompt of it alone runs)."""

    CATEGORY = "encoders_pack"
    RETURN_TYPES = ("CONTROL_NET",)
    FUNCTION = "load"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (folder_paths.get_filename_list("checkpoints"),)}}

    def load(self, ckpt_name):
        return (comfy.controlnet.load_controlnet(folder_paths.get_full_path_or_raise("checkpoints", ckpt_name)),)


class ClipPreprocess:
    """IPAdapter-style preprocessing of an image for a CLIP vision encoder, channels last for preview."""

    CATEGORY = "encoders_pack"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "crop": ("BOOLEAN", {"default": True})}}

    def run(self, image, crop):
        pixels = clip_preprocess(image, size=224, crop=crop)
        out = Output()
        out["pixel_values"] = pixels
        return (out.pixel_values.movedim(1, -1),)


class SDXLClipCheck:
    """Easy-Use's adv_encode test: which kind of text encoder the CLIP holds."""

    CATEGORY = "encoders_pack"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "check"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip": ("CLIP",)}}

    def check(self, clip):
        model = getattr(clip, "cond_stage_model", None)
        sdxl = isinstance(model, (SDXLClipModel, SDXLRefinerClipModel, SDXLClipG))
        sd3 = isinstance(model, (SD3ClipModel, T5XXLModel))
        return (f"sdxl={sdxl} sd3={sd3} clip={isinstance(clip, CLIP)} broadcast={broadcast_image_to.__name__}",)


class ProbeControl:
    """Runs the control chain of a conditioning once, as the sampler would, and reports the outputs' means."""

    CATEGORY = "encoders_pack"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "probe"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning": ("CONDITIONING",)}}

    def probe(self, conditioning):
        cond, options = conditioning[0]
        control = options["control"]
        x = torch.zeros(2, 4, 4, 4)
        control.pre_run(None, lambda percent: 999.0 * (1.0 - percent))
        out = control.get_control(x, torch.tensor([500.0, 500.0]), {"c_crossattn": cond.repeat(2, 1, 1)}, 1)
        late = control.get_control(x, torch.tensor([-1.0, -1.0]), {"c_crossattn": cond.repeat(2, 1, 1)}, 1)
        control.cleanup()
        means = [f"{key}:" + ",".join(f"{t.mean().item():.4f}" for t in out[key]) for key in ("middle", "output")]
        copy = control.copy()
        return (f"{type(copy).__name__} {copy.made_by} {copy.strength} " + " ".join(means) + f" late:{late}",)


class MixLatentFrames:
    """Runs the pack's TemporalMixer (fixed seed, zero-initialised output) over a latent's frames."""

    CATEGORY = "encoders_pack"
    RETURN_TYPES = ("LATENT", "STRING")
    FUNCTION = "mix"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",)}}

    def mix(self, samples):
        torch.manual_seed(0)
        mixer = TemporalMixer(samples["samples"].shape[1])
        with torch.no_grad():
            out = mixer(samples["samples"])
        return ({"samples": out}, f"{tuple(out.shape)} finite={bool(torch.isfinite(out).all())}")


class SeededTAESD:
    """A VAE from TAESD tensors (as VAELoader assembles vae_approx files), seeded weights standing in for them."""

    CATEGORY = "encoders_pack"
    RETURN_TYPES = ("VAE",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def load(self):
        from comfy.taesd.taesd import TAESD

        torch.manual_seed(0)
        taesd = TAESD()
        for parameter in taesd.parameters():
            torch.nn.init.normal_(parameter, std=0.05)
        sd = {k: v for k, v in taesd.state_dict().items() if k.startswith(("taesd_encoder.", "taesd_decoder."))}
        vae = comfy.sd.VAE(sd=sd)
        assert isinstance(vae, VAE)
        return (vae,)


class ShowString:
    CATEGORY = "encoders_pack"
    RETURN_TYPES = ()
    FUNCTION = "show"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"forceInput": True})}}

    def show(self, text):
        return {"ui": {"text": [text]}}


NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in (ProbeControl, ShowString, MixLatentFrames, SeededTAESD,
    KeyMapLoraLoader, KeyMapClipLora, ScaledEmphasisEncode, StandaloneTokenizer, LoadCheckpointWithConfig,
    VAEFromCheckpointTensors, ApplyPackControlNet, LoadControlNetFile, ClipPreprocess, SDXLClipCheck)}
NODE_DISPLAY_NAME_MAPPINGS = {name: name for name in NODE_CLASS_MAPPINGS}
