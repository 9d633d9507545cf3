"""VAE nodes with ComfyUI's names, inputs and outputs: VAEDecode, VAEEncode, their tiled forms, VAEEncodeForInpaint.

IMAGE is ``[B, H, W, C]`` in 0..1 and LATENT ``{"samples": raw latents}`` (``docs/data-types.md``); the VAE value
does the conversion on the device the model manager gives it. Tile sizes are in image pixels, as in ComfyUI.
"""

from __future__ import annotations

from typing import Any

TILE = {"default": 512, "min": 64, "max": 4096}
TEMPORAL = (("INT", {"default": 64, "min": 8, "max": 4096, "step": 4,
                     "tooltip": "Only used for video VAEs: Amount of frames to decode at a time."}),
            ("INT", {"default": 8, "min": 4, "max": 4096, "step": 4,
                     "tooltip": "Only used for video VAEs: Amount of frames to overlap."}))


class VAEDecode:
    DISPLAY_NAME = "VAE Decode"
    CATEGORY = "latent"
    DESCRIPTION = "Decodes latent images back into pixel space images."
    RETURN_TYPES = ("IMAGE",)
    OUTPUT_TOOLTIPS = ("The decoded image.",)
    FUNCTION = "decode"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"samples": ("LATENT", {"tooltip": "The latent to be decoded."}),
                             "vae": ("VAE", {"tooltip": "The VAE model used for decoding the latent."})}}

    def decode(self, vae: Any, samples: dict[str, Any]) -> tuple[Any]:
        return (vae.decode(samples["samples"]),)


class VAEDecodeTiled:
    DISPLAY_NAME = "VAE Decode (Tiled)"
    CATEGORY = "_for_testing"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "decode"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"samples": ("LATENT",), "vae": ("VAE",),
                             "tile_size": ("INT", {**TILE, "step": 32}),
                             "overlap": ("INT", {"default": 64, "min": 0, "max": 4096, "step": 32}),
                             "temporal_size": TEMPORAL[0], "temporal_overlap": TEMPORAL[1]}}

    def decode(self, vae: Any, samples: dict[str, Any], tile_size: int, overlap: int = 64, temporal_size: int = 64,
               temporal_overlap: int = 8) -> tuple[Any]:
        if tile_size < overlap * 4:  # as ComfyUI: a quarter tile at most, so tiles always advance
            overlap = tile_size // 4
        f = vae.downscale_ratio
        return (vae.decode_tiled(samples["samples"], tile_size // f, overlap // f),)


class VAEEncode:
    DISPLAY_NAME = "VAE Encode"
    CATEGORY = "latent"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"pixels": ("IMAGE",), "vae": ("VAE",)}}

    def encode(self, vae: Any, pixels: Any) -> tuple[dict[str, Any]]:
        return ({"samples": vae.encode(pixels[:, :, :, :3])},)


class VAEEncodeTiled:
    DISPLAY_NAME = "VAE Encode (Tiled)"
    CATEGORY = "_for_testing"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"pixels": ("IMAGE",), "vae": ("VAE",),
                             "tile_size": ("INT", {**TILE, "step": 64}),
                             "overlap": ("INT", {"default": 64, "min": 0, "max": 4096, "step": 32}),
                             "temporal_size": TEMPORAL[0], "temporal_overlap": TEMPORAL[1]}}

    def encode(self, vae: Any, pixels: Any, tile_size: int, overlap: int, temporal_size: int = 64,
               temporal_overlap: int = 8) -> tuple[dict[str, Any]]:
        if overlap >= tile_size:
            raise ValueError(f"VAEEncodeTiled: overlap ({overlap}) must be smaller than tile_size ({tile_size})")
        return ({"samples": vae.encode_tiled(pixels[:, :, :, :3], tile_size, overlap)},)


class VAEEncodeForInpaint:
    DISPLAY_NAME = "VAE Encode (for Inpainting)"
    CATEGORY = "latent/inpaint"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"pixels": ("IMAGE",), "vae": ("VAE",), "mask": ("MASK",),
                             "grow_mask_by": ("INT", {"default": 6, "min": 0, "max": 64, "step": 1})}}

    def encode(self, vae: Any, pixels: Any, mask: Any, grow_mask_by: int = 6) -> tuple[dict[str, Any]]:
        import torch
        import torch.nn.functional as F

        f = vae.downscale_ratio
        h, w = pixels.shape[1] // f * f, pixels.shape[2] // f * f
        mask = F.interpolate(mask.reshape(-1, 1, mask.shape[-2], mask.shape[-1]).float(),
                             size=(pixels.shape[1], pixels.shape[2]), mode="bilinear")
        # Sizes off the VAE's grid are cropped around the centre, the image and its mask alike.
        top, left = (pixels.shape[1] % f) // 2, (pixels.shape[2] % f) // 2
        pixels = pixels[:, top:top + h, left:left + w, :3].clone()
        mask = mask[:, :, top:top + h, left:left + w]
        noise_mask = mask
        if grow_mask_by > 0:
            # Grow the mask so the sampler also repaints a seam around it (a box dilation, as ComfyUI does).
            kernel = torch.ones((1, 1, grow_mask_by, grow_mask_by))
            padding = -(-(grow_mask_by - 1) // 2)
            noise_mask = F.conv2d(mask.round(), kernel, padding=padding).clamp(0, 1)
        # The masked pixels become neutral grey, so the encoder sees nothing of what is to be replaced.
        keep = (1.0 - mask.round()).squeeze(1)[..., None]
        pixels = (pixels - 0.5) * keep + 0.5
        return ({"samples": vae.encode(pixels), "noise_mask": noise_mask[:, :, :h, :w].round()},)


NODES = {cls.__name__: cls for cls in (VAEDecode, VAEDecodeTiled, VAEEncode, VAEEncodeTiled, VAEEncodeForInpaint)}
