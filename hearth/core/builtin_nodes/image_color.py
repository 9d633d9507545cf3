"""Colour spaces, statistics and matching with ComfyUI's names: ImageRGBToYUV, ImageYUVToRGB, ImageHistogram and
ColorTransfer.

ColorTransfer works in CIE Lab as ComfyUI's does through kornia (sRGB, D65 white, kornia's constants and its
clipping on the way back); kornia cannot be a dependency here, so the conversions are written out below.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hearth.core.builtin_nodes.dynamic_inputs import DynamicSection, dynamic_combo
from hearth.core.builtin_nodes.image_dynamic import selected_option
from hearth.core.images import check_image, torch_module

_D65 = (0.95047, 1.0, 1.08883)
_RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
_XYZ_TO_RGB = ((3.2404813432005266, -1.5371515162713185, -0.498536326168888),
               (-0.9692549499965682, 1.8759900014898907, 0.0415559265582928),
               (0.0556466391351772, -0.2040413383665112, 1.0573110696453443))


def _mix(matrix: tuple[tuple[float, ...], ...], chw: Any) -> Any:
    torch = torch_module()
    rows = [row[0] * chw[..., 0, :, :] + row[1] * chw[..., 1, :, :] + row[2] * chw[..., 2, :, :] for row in matrix]
    return torch.stack(rows, dim=-3)


def rgb_to_lab(rgb: Any) -> Any:
    """sRGB ``[..., 3, H, W]`` in 0..1 -> CIE Lab (L 0..100), D65, as kornia.color.rgb_to_lab."""
    torch = torch_module()
    linear = torch.where(rgb > 0.04045, torch.pow((rgb + 0.055) / 1.055, 2.4), rgb / 12.92)
    xyz = _mix(_RGB_TO_XYZ, linear) / torch.tensor(_D65, dtype=rgb.dtype)[:, None, None]
    f = torch.where(xyz > 0.008856, torch.pow(xyz.clamp(min=0.008856), 1 / 3.0), 7.787 * xyz + 4.0 / 29.0)
    fx, fy, fz = f[..., 0, :, :], f[..., 1, :, :], f[..., 2, :, :]
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


def lab_to_rgb(lab: Any) -> Any:
    """CIE Lab -> sRGB clipped to 0..1, as kornia.color.lab_to_rgb."""
    torch = torch_module()
    fy = (lab[..., 0, :, :] + 16.0) / 116.0
    fx = lab[..., 1, :, :] / 500.0 + fy
    fz = (fy - lab[..., 2, :, :] / 200.0).clamp(min=0.0)
    f = torch.stack([fx, fy, fz], dim=-3)
    xyz = torch.where(f > 0.2068966, torch.pow(f, 3.0), (f - 4.0 / 29.0) / 7.787)
    linear = _mix(_XYZ_TO_RGB, xyz * torch.tensor(_D65, dtype=lab.dtype)[:, None, None])
    rgb = torch.where(linear > 0.0031308, 1.055 * torch.pow(linear.clamp(min=0.0031308), 1 / 2.4) - 0.055,
                      12.92 * linear)
    return rgb.clamp(0.0, 1.0)


def rgb_to_ycbcr(rgb: Any) -> Any:
    """kornia's YCbCr (JPEG-style constants, chroma centred on 0.5) of ``[..., 3, H, W]``."""
    torch = torch_module()
    r, g, b = rgb[..., 0, :, :], rgb[..., 1, :, :], rgb[..., 2, :, :]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return torch.stack([y, (b - y) * 0.564 + 0.5, (r - y) * 0.713 + 0.5], dim=-3)


def ycbcr_to_rgb(ycbcr: Any) -> Any:
    """The inverse of :func:`rgb_to_ycbcr` with kornia's constants, clamped to 0..1 as kornia does."""
    torch = torch_module()
    y, cb, cr = ycbcr[..., 0, :, :], ycbcr[..., 1, :, :] - 0.5, ycbcr[..., 2, :, :] - 0.5
    return torch.stack([y + 1.403 * cr, y - 0.714 * cr - 0.344 * cb, y + 1.773 * cb], dim=-3).clamp(0, 1)


class ImageRGBToYUV:
    """ComfyUI's Image RGB to YUV: the Y, U (Cb) and V (Cr) planes, each as a grey RGB image."""

    DISPLAY_NAME = "Image RGB to YUV"
    CATEGORY = "image/color"
    RETURN_TYPES = ("IMAGE", "IMAGE", "IMAGE")
    RETURN_NAMES = ("Y", "U", "V")
    FUNCTION = "split"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",)}}

    def split(self, image: Any) -> tuple[Any, Any, Any]:
        if check_image(image).shape[-1] < 3:
            raise ValueError("image: needs RGB channels to convert to YUV")
        rgb = image[..., :3]
        planes = rgb_to_ycbcr(rgb.movedim(-1, 1)).movedim(1, -1)
        return tuple(planes[..., c:c + 1].expand_as(rgb) for c in range(3))


class ImageYUVToRGB:
    """ComfyUI's Image YUV to RGB: each input's first three channels averaged into its plane, then YCbCr to RGB,
    clamped to 0..1."""

    DISPLAY_NAME = "Image YUV to RGB"
    CATEGORY = "image/color"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "join"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"Y": ("IMAGE",), "U": ("IMAGE",), "V": ("IMAGE",)}}

    def join(self, Y: Any, U: Any, V: Any) -> tuple[Any]:  # noqa: N803 - ComfyUI's input names
        torch = torch_module()
        planes = [check_image(plane, name) for plane, name in ((Y, "Y"), (U, "U"), (V, "V"))]
        if len({plane.shape[:3] for plane in planes}) != 1:
            raise ValueError(f"U, V: the three planes must have one size and batch; got "
                             f"{', '.join(str(tuple(p.shape[:3])) for p in planes)}")
        ycbcr = torch.cat([plane[..., :3].mean(dim=-1, keepdim=True) for plane in planes], dim=-1)
        return (ycbcr_to_rgb(ycbcr.movedim(-1, 1)).movedim(1, -1),)


class ImageHistogram:
    """ComfyUI's Image Histogram: 256-bin counts of the first image's 8-bit (truncated) values -- the RGB average,
    BT.709 luminance, red, green and blue -- as HISTOGRAM values (lists of ints) for the curve editor."""

    DISPLAY_NAME = "Image Histogram"
    CATEGORY = "utils"
    RETURN_TYPES = ("HISTOGRAM", "HISTOGRAM", "HISTOGRAM", "HISTOGRAM", "HISTOGRAM")
    RETURN_NAMES = ("rgb", "luminance", "red", "green", "blue")
    FUNCTION = "histogram"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",)}}

    def histogram(self, image: Any) -> tuple[list[int], ...]:
        if check_image(image).shape[-1] < 3:
            raise ValueError("image: a histogram needs RGB channels")
        pixels = image[0].detach().cpu().float().numpy()
        as_bytes = np.clip(pixels * 255, 0, 255).astype(np.uint8)

        def counts(values: np.ndarray) -> np.ndarray:
            return np.bincount(values.ravel(), minlength=256)[:256]

        red, green, blue = (counts(as_bytes[..., c]) for c in range(3))
        luminance = 0.2126 * pixels[..., 0] + 0.7152 * pixels[..., 1] + 0.0722 * pixels[..., 2]
        lum = counts(np.clip(luminance * 255, 0, 255).astype(np.uint8))
        return (((red + green + blue) // 3).tolist(), lum.tolist(), red.tolist(), green.tolist(), blue.tolist())


COLOR_METHODS = ["reinhard_lab", "mkl_lab", "histogram"]
SOURCE_STATS, SOURCE_STATS_MEMBERS = dynamic_combo("source_stats", {
    "per_frame": {}, "uniform": {},
    "target_frame": {"target_index": ("INT", {"default": 0, "min": 0, "max": 10000, "tooltip": (
        "Frame index used as the source baseline for computing the transform to image_ref")})},
}, tooltip="per_frame: each frame matched to image_ref individually. uniform: pool stats across all source frames "
           "as baseline, match to image_ref. target_frame: use one chosen frame as the baseline for the transform "
           "to image_ref, applied uniformly to all frames (preserves relative differences)")
EPS = 1e-6


def _cdf(frames: Any) -> Any:
    """Per-channel cumulative histogram (256 bins of ``int(x * 255)``) pooled over ``[N, C, H*W]`` values."""
    torch = torch_module()
    bins = (frames * 255).long().clamp(0, 255)
    hist = torch.zeros(frames.shape[1], 256, dtype=torch.float32)
    for frame in bins:
        hist.scatter_add_(1, frame, torch.ones_like(frame, dtype=torch.float32))
    total = hist.cumsum(1)
    return total / total[:, -1:]


def _lut(source_cdf: Any, reference_cdf: Any) -> Any:
    """For each source level, the first reference level whose cumulative share reaches the source's."""
    torch = torch_module()
    return torch.searchsorted(reference_cdf.contiguous(), source_cdf.contiguous()).clamp_max(255).float() / 255.0


def _stats(labs: list[Any], reinhard: bool) -> tuple[Any, Any]:
    """Mean ``[C, 1]`` and per-channel std (Reinhard) or covariance (MKL) of ``[C, H*W]`` frames, each frame
    weighing the same."""
    torch = torch_module()
    mean = torch.stack([lab.mean(dim=-1, keepdim=True) for lab in labs]).mean(dim=0)
    centred = [lab - mean for lab in labs]
    if reinhard:
        spread = torch.stack([(c * c).mean(dim=-1, keepdim=True) for c in centred]).mean(dim=0)
        return mean, torch.sqrt(spread).clamp_min(EPS)
    return mean, torch.stack([c @ c.T / c.shape[-1] for c in centred]).mean(dim=0)


def mkl_matrix(cov_source: Any, cov_reference: Any) -> Any:
    """Pitie and Kokaram's linear Monge-Kantorovich map (2007): ``T`` with ``T Cs T^T = Cr``, i.e.
    ``Cs^-1/2 (Cs^1/2 Cr Cs^1/2)^1/2 Cs^-1/2`` through eigen-decompositions."""
    torch = torch_module()
    values, vectors = torch.linalg.eigh(cov_source)
    roots = torch.sqrt(values.clamp_min(0)).clamp_min(EPS)
    half = vectors * roots[None]
    mid_values, mid_vectors = torch.linalg.eigh(half.T @ cov_reference @ half)
    mid_root = (mid_vectors * torch.sqrt(mid_values.clamp_min(0))[None]) @ mid_vectors.T
    inverse_half = vectors * (1.0 / roots)[None]
    return inverse_half @ mid_root @ inverse_half.T


class ColorTransfer:
    """ComfyUI's ColorTransfer: match ``image_target``'s colours to ``image_ref``'s -- Reinhard's mean/std match
    or the MKL covariance match in Lab, or per-channel histogram matching -- per frame, pooled over all frames
    (``uniform``), or from one chosen frame (``target_frame``); ``strength`` interpolates from the original."""

    CATEGORY = "image/postprocessing"
    DESCRIPTION = "Match the colors of one image to another using various algorithms."
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    FUNCTION = "transfer"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "image_target": ("IMAGE", {"tooltip": "Image(s) to apply the color transform to."}),
            "method": (COLOR_METHODS,),
            "source_stats": SOURCE_STATS,
            "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}),
        }, "optional": DynamicSection({"image_ref": ("IMAGE", {"tooltip": (
            "Reference image(s) to match colors to. If not provided, processing is skipped")})}, SOURCE_STATS_MEMBERS)}

    def transfer(self, image_target: Any, method: str, source_stats: str, strength: float = 1.0,
                 image_ref: Any = None, **members: Any) -> tuple[Any]:
        chosen = selected_option("source_stats", SOURCE_STATS, source_stats, members)
        if method not in COLOR_METHODS:
            raise ValueError(f"method: {method!r} is not one of {COLOR_METHODS}")
        if strength == 0 or image_ref is None:
            return (image_target,)
        target, ref = check_image(image_target, "image_target").float(), check_image(image_ref, "image_ref").float()
        if target.shape[-1] != ref.shape[-1] or (method != "histogram" and target.shape[-1] != 3):
            need = "the same channels" if method == "histogram" else "RGB images"
            raise ValueError(f"image_ref: {method} needs {need} on both sides; got {target.shape[-1]} and "
                             f"{ref.shape[-1]} channels")
        first = min(chosen.get("target_index", 0), target.shape[0] - 1)
        if method == "histogram":
            return (self._histogram(target, ref, source_stats, first, strength),)
        return (self._lab(target, ref, source_stats, first, method == "reinhard_lab", strength),)

    @staticmethod
    def _histogram(target: Any, ref: Any, mode: str, first: int, strength: float) -> Any:
        torch = torch_module()
        src = target.movedim(-1, 1).flatten(2)  # [B, C, H*W]
        reference = ref.movedim(-1, 1).flatten(2)
        shared = None
        if mode != "per_frame":
            baseline = src[first:first + 1] if mode == "target_frame" else src
            shared = _lut(_cdf(baseline), _cdf(reference))
        out = []
        for index, frame in enumerate(src):
            lut = shared if shared is not None else _lut(_cdf(frame[None]),
                                                         _cdf(reference[min(index, len(reference) - 1)][None]))
            out.append(lut.gather(1, (frame * 255).long().clamp(0, 255)))
        matched = torch.stack(out)
        if strength != 1.0:
            matched = torch.lerp(src, matched, strength)
        return matched.clamp(0, 1).view(target.shape[0], target.shape[-1], *target.shape[1:3]).movedim(1, -1)

    @staticmethod
    def _lab(target: Any, ref: Any, mode: str, first: int, reinhard: bool, strength: float) -> Any:
        torch = torch_module()
        labs = [rgb_to_lab(frame.movedim(-1, 0)).flatten(1) for frame in target]
        ref_labs = [rgb_to_lab(frame.movedim(-1, 0)).flatten(1) for frame in ref]
        ref_mean, ref_spread = _stats(ref_labs, reinhard) if (len(ref_labs) == 1 or mode != "per_frame") else (
            None, None)
        transform = None
        if mode != "per_frame":
            src_mean, src_spread = _stats(labs[first:first + 1] if mode == "target_frame" else labs, reinhard)
            transform = (src_mean, src_spread)
        out = []
        for index, lab in enumerate(labs):
            if transform is not None:
                src_mean, src_spread = transform
            else:
                src_mean, src_spread = _stats([lab], reinhard)
            if ref_mean is not None:
                r_mean, r_spread = ref_mean, ref_spread
            else:
                r_mean, r_spread = _stats([ref_labs[min(index, len(ref_labs) - 1)]], reinhard)
            if reinhard:
                corrected = (lab - src_mean) * (r_spread / src_spread) + r_mean
            else:
                corrected = mkl_matrix(src_spread, r_spread) @ (lab - src_mean) + r_mean
            if strength != 1.0:
                corrected = torch.lerp(lab, corrected, strength)
            rgb = lab_to_rgb(corrected.view(3, *target.shape[1:3]))
            out.append(rgb.movedim(0, -1).clamp(0, 1))
        return torch.stack(out)


NODES = {cls.__name__: cls for cls in (ImageRGBToYUV, ImageYUVToRGB, ImageHistogram, ColorTransfer)}
