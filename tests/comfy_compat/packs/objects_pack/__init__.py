# A pack that works on MODEL, CLIP and VAE objects the way ComfyUI packs do: clone + add_patches, set_model_*
# patches, a unet wrapper, tokenize/encode_from_tokens, vae.decode_tiled, comfy.sd loaders, and a PreviewImage
# subclass. Everything is imported at module level.
import comfy.sd
import comfy.utils
import folder_paths
import torch
from comfy.comfy_types import IO
from nodes import MAX_RESOLUTION, PreviewImage


class NudgeOutputWeights:
    """Adds `amount` to every weight of the UNet's last conv (a ComfyUI weight patch)."""

    CATEGORY = "test/model"
    RETURN_TYPES = ("MODEL", "INT")
    RETURN_NAMES = ("model", "patched")
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "amount": ("FLOAT", {"default": 0.05, "min": -1.0, "max": 1.0})}}

    def patch(self, model, amount):
        m = model.clone()
        weights = m.model_state_dict("diffusion_model.out.2.")
        patches = {key: (torch.full_like(w, amount),) for key, w in weights.items()}
        patched = m.add_patches(patches, 1.0)
        return (m, len(patched))


class MergeModels:
    """ModelMergeSimple's way: model1 * ratio + model2 * (1 - ratio) through get_key_patches."""

    CATEGORY = "test/model"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "merge"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model1": ("MODEL",), "model2": ("MODEL",),
                             "ratio": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0})}}

    def merge(self, model1, model2, ratio):
        m = model1.clone()
        for key, patch in model2.get_key_patches("diffusion_model.").items():
            m.add_patches({key: patch}, 1.0 - ratio, ratio)
        return (m,)


class MuteCrossAttention:
    """An attn2 patch that blanks the text context: the prompt stops mattering."""

    CATEGORY = "test/model"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    def patch(self, model):
        m = model.clone()

        def attn2(n, context, value, extra_options):
            assert extra_options["n_heads"] > 0 and extra_options["block"][0] in ("input", "middle", "output")
            return n, torch.zeros_like(context), torch.zeros_like(value)

        m.set_model_attn2_patch(attn2)
        return (m,)


class ScaleUnetOutput:
    """A model_function_wrapper that scales the denoised prediction."""

    CATEGORY = "test/model"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "scale": ("FLOAT", {"default": 0.5})}}

    def patch(self, model, scale):
        m = model.clone()

        def wrapper(apply_model, args):
            return apply_model(args["input"], args["timestep"], **args["c"]) * scale

        m.set_model_unet_function_wrapper(wrapper)
        return (m,)


class ScaleBackbone:
    """FreeU's way: an output_block_patch scaling half the backbone features at the widest level."""

    CATEGORY = "test/model"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "scale": ("FLOAT", {"default": 1.1})}}

    def patch(self, model, scale):
        channels = model.model.model_config.unet_config["model_channels"]
        seen = []

        def output_block_patch(h, hsp, transformer_options):
            seen.append(transformer_options["block"])
            if h.shape[1] == channels * 2:
                h = h.clone()
                h[:, : h.shape[1] // 2] *= scale
            return h, hsp

        m = model.clone()
        m.set_model_output_block_patch(output_block_patch)
        m.seen_blocks = seen
        return (m,)


class EncodeTokens:
    CATEGORY = "test/clip"
    RETURN_TYPES = (IO.CONDITIONING,)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip": ("CLIP",), "text": ("STRING", {"multiline": True})}}

    def encode(self, clip, text):
        tokens = clip.tokenize(text)
        cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
        return ([[cond, {"pooled_output": pooled}]],)


class DecodeTiledPreview(PreviewImage):
    """A PreviewImage subclass that decodes a latent in tiles and previews it."""

    CATEGORY = "test/vae"
    FUNCTION = "decode_and_preview"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"vae": ("VAE",), "samples": ("LATENT",),
                             "tile": ("INT", {"default": 64, "min": 8, "max": MAX_RESOLUTION})}}

    def decode_and_preview(self, vae, samples, tile):
        images = vae.decode_tiled(samples["samples"], tile_x=tile // 8, tile_y=tile // 8, overlap=2)
        return self.save_images(images, filename_prefix="tiled")


class RoundTrip:
    CATEGORY = "test/vae"
    RETURN_TYPES = ("IMAGE", "LATENT")
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"vae": ("VAE",), "image": ("IMAGE",)}}

    def run(self, vae, image):
        latent = vae.encode(image[:, :, :, :3])
        return (vae.decode(latent), {"samples": latent})


class LoadCheckpointByPath:
    """Loads a checkpoint the way many loader packs do, through comfy.sd."""

    CATEGORY = "test/loaders"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (folder_paths.get_filename_list("checkpoints"),)}}

    def load(self, ckpt_name):
        path = folder_paths.get_full_path_or_raise("checkpoints", ckpt_name)
        out = comfy.sd.load_checkpoint_guess_config(path, output_vae=True, output_clip=True,
                                                    embedding_directory=folder_paths.get_folder_paths("embeddings"))
        return out[:3]


class LoraFromStateDict:
    CATEGORY = "test/loaders"
    RETURN_TYPES = ("MODEL", "CLIP")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "clip": ("CLIP",), "lora_name": (folder_paths.get_filename_list(
            "loras"),), "strength": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0})}}

    def load(self, model, clip, lora_name, strength):
        lora = comfy.utils.load_torch_file(folder_paths.get_full_path_or_raise("loras", lora_name), safe_load=True)
        return comfy.sd.load_lora_for_models(model, clip, lora, strength, strength)


NODE_CLASS_MAPPINGS = {
    "NudgeOutputWeights": NudgeOutputWeights, "MergeModels": MergeModels, "MuteCrossAttention": MuteCrossAttention,
    "ScaleUnetOutput": ScaleUnetOutput, "ScaleBackbone": ScaleBackbone, "EncodeTokens": EncodeTokens, "DecodeTiledPreview": DecodeTiledPreview,
    "RoundTrip": RoundTrip, "LoadCheckpointByPath": LoadCheckpointByPath, "LoraFromStateDict": LoraFromStateDict,
}
