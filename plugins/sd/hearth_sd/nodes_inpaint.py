"""InpaintModelConditioning and InstructPixToPixConditioning, as ComfyUI defines them: the image (and mask) an
inpainting or InstructPix2Pix model takes besides the noisy latent.

The node encodes the image twice: as it is (the LATENT to sample from) and with the masked pixels set to neutral
grey (``concat_latent_image``), and records that latent and the mask (``concat_mask``) in both conditionings.
An inpainting UNet (9 input channels) takes them as its extra channels (:mod:`hearth_sd.inpaint`); other models
ignore them. With ``noise_mask`` the LATENT also gets the mask, so the sampler only repaints there. VAEEncodeForInpaint
and SetLatentNoiseMask (the other inpainting nodes) live with the VAE and latent nodes. InstructPixToPixConditioning
records the source image's latent alone and starts from an empty latent of its size.
"""

from __future__ import annotations

from typing import Any

_CELL = 8  # ComfyUI crops to multiples of 8 pixels here, whatever the VAE


class InpaintModelConditioning:
    DISPLAY_NAME = "InpaintModelConditioning"
    CATEGORY = "conditioning/inpaint"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "LATENT")
    RETURN_NAMES = ("positive", "negative", "latent")
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "positive": ("CONDITIONING",),
            "negative": ("CONDITIONING",),
            "vae": ("VAE",),
            "pixels": ("IMAGE",),
            "mask": ("MASK",),
            "noise_mask": ("BOOLEAN", {"default": True, "tooltip": (
                "Add a noise mask to the latent so sampling will only happen within the mask. Might improve "
                "results or completely break things depending on the model.")}),
        }}

    def encode(self, positive: list, negative: list, vae: Any, pixels: Any, mask: Any,
               noise_mask: bool = True) -> tuple[list, list, dict[str, Any]]:
        import torch.nn.functional as F

        _check_pixels(pixels, "InpaintModelConditioning")
        if getattr(mask, "ndim", 0) < 2:
            raise ValueError("InpaintModelConditioning: mask must be a MASK [B, H, W] (or [H, W])")
        mask = F.interpolate(mask.reshape(-1, 1, mask.shape[-2], mask.shape[-1]).float(),
                             size=(pixels.shape[1], pixels.shape[2]), mode="bilinear")
        if mask.shape[0] not in (1, pixels.shape[0]):
            raise ValueError(f"InpaintModelConditioning: {mask.shape[0]} masks for {pixels.shape[0]} images; give one "
                             f"mask, or one per image")
        orig_pixels = pixels
        rows, cols = _cell_window(pixels)
        pixels = pixels[:, rows, cols, :3]
        mask = mask[:, :, rows, cols]
        keep = (1.0 - mask.round()).squeeze(1)[..., None]
        # The masked pixels become neutral grey, so the model sees nothing of what is to be replaced.
        grey = (pixels - 0.5) * keep + 0.5
        concat_latent = vae.encode(grey)
        latent: dict[str, Any] = {"samples": vae.encode(orig_pixels[..., :3])}
        if noise_mask:
            latent["noise_mask"] = mask
        out = []
        for conditioning in (positive, negative):
            out.append([[cond, {**options, "concat_latent_image": concat_latent, "concat_mask": mask}]
                        for cond, options in conditioning])
        return out[0], out[1], latent


def _cell_window(pixels: Any) -> tuple[slice, slice]:
    """The rows and columns of ``pixels`` ``[B, H, W, C]`` that remain when the image is cut, centred, to whole
    8-pixel cells (ComfyUI's crop for these nodes)."""
    height, width = pixels.shape[1] // _CELL * _CELL, pixels.shape[2] // _CELL * _CELL
    top, left = (pixels.shape[1] % _CELL) // 2, (pixels.shape[2] % _CELL) // 2
    return slice(top, top + height), slice(left, left + width)


def _check_pixels(pixels: Any, node: str) -> None:
    if getattr(pixels, "ndim", None) != 4:
        raise ValueError(f"{node}: pixels must be an IMAGE [B, H, W, C], got "
                         f"{list(getattr(pixels, 'shape', [])) or type(pixels).__name__}")
    if pixels.shape[1] < _CELL or pixels.shape[2] < _CELL:
        raise ValueError(f"{node}: pixels of {pixels.shape[2]}x{pixels.shape[1]} are smaller than one {_CELL}-pixel "
                         f"latent cell")


class InstructPixToPixConditioning:
    DISPLAY_NAME = "InstructPixToPixConditioning"
    CATEGORY = "conditioning/instructpix2pix"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "LATENT")
    RETURN_NAMES = ("positive", "negative", "latent")
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"positive": ("CONDITIONING",), "negative": ("CONDITIONING",), "vae": ("VAE",),
                             "pixels": ("IMAGE",)}}

    def encode(self, positive: list, negative: list, pixels: Any, vae: Any) -> tuple[list, list, dict[str, Any]]:
        import torch

        _check_pixels(pixels, "InstructPixToPixConditioning")
        rows, cols = _cell_window(pixels)
        concat_latent = vae.encode(pixels[:, rows, cols, :3])
        out = [[[cond, {**options, "concat_latent_image": concat_latent}] for cond, options in conditioning]
               for conditioning in (positive, negative)]
        return out[0], out[1], {"samples": torch.zeros_like(concat_latent)}


NODES = {cls.__name__: cls for cls in (InpaintModelConditioning, InstructPixToPixConditioning)}
