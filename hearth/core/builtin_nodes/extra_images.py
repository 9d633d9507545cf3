"""Model-free image nodes of model families' modules, with ComfyUI's names and results: FluxKontextImageScale
(comfy_extras/nodes_flux.py) and LTXVPreprocess (comfy_extras/nodes_lt.py).

Both only prepare an image for a family's model and need none: FluxKontextImageScale resizes to the Kontext
training resolution nearest in aspect ratio (lanczos after a centre crop, ComfyUI's ``common_upscale``), and
LTXVPreprocess passes each frame through one H.264 encode and decode (libx264 at the given CRF, as ComfyUI does,
so the model sees the compression artefacts it was trained on). LTXVPreprocess needs PyAV, which Hearth's video
plugin brings; without it the node says so.
"""

from __future__ import annotations

import io
from typing import Any

from hearth.core.images import check_image, torch_module, upscale

# (width, height) pairs Flux Kontext was trained at, as ComfyUI lists them.
KONTEXT_RESOLUTIONS = [
    (672, 1568), (688, 1504), (720, 1456), (752, 1392), (800, 1328), (832, 1248), (880, 1184), (944, 1104),
    (1024, 1024), (1104, 944), (1184, 880), (1248, 832), (1328, 800), (1392, 752), (1456, 720), (1504, 688),
    (1568, 672),
]


def kontext_size(width: int, height: int) -> tuple[int, int]:
    """The listed resolution whose aspect ratio is nearest; on a tie the smaller width, as ComfyUI's ``min`` over
    (distance, width, height) tuples picks."""
    ratio = width / height
    _, best_w, best_h = min((abs(ratio - w / h), w, h) for w, h in KONTEXT_RESOLUTIONS)
    return best_w, best_h


class FluxKontextImageScale:
    CATEGORY = "advanced/conditioning/flux"
    DESCRIPTION = "This node resizes the image to one that is more optimal for flux kontext."
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",)}}

    def execute(self, image: Any) -> tuple[Any]:
        check_image(image, "FluxKontextImageScale: image")
        width, height = kontext_size(image.shape[2], image.shape[1])
        return (upscale(image, width, height, "lanczos", "center"),)


def h264_round_trip(frame: Any, crf: int) -> Any:
    """One ``[H, W, 3]`` frame through libx264 (CRF ``crf``, preset veryfast, yuv420p) and back, as ComfyUI's
    LTXV preprocessing does: odd sides lose their last row/column (4:2:0 needs even sizes), values go to bytes by
    truncation (``* 255`` then ``byte()``), and come back divided by 255."""
    try:
        import av
    except ImportError:
        raise RuntimeError("LTXVPreprocess needs PyAV (the av package, which hearth-video brings); install it "
                           "or set img_compression to 0") from None
    torch = torch_module()
    height, width = (frame.shape[0] // 2) * 2, (frame.shape[1] // 2) * 2
    if height == 0 or width == 0:
        raise ValueError(f"LTXVPreprocess: image of {frame.shape[1]}x{frame.shape[0]} pixels is too small to "
                         "encode; it needs at least 2x2")
    pixels = (frame[:height, :width] * 255.0).byte().cpu().numpy()
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=1, options={"crf": str(crf), "preset": "veryfast"})
        stream.height, stream.width = height, width
        picture = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")
        container.mux(stream.encode(picture))
        container.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer) as container:
        video = next(s for s in container.streams if s.type == "video")
        decoded = next(container.decode(video)).to_ndarray(format="rgb24")
    return torch.tensor(decoded, dtype=frame.dtype, device=frame.device) / 255.0


class LTXVPreprocess:
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("output_image",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "image": ("IMAGE",),
            "img_compression": ("INT", {"default": 35, "min": 0, "max": 100,
                                        "tooltip": "Amount of compression to apply on image."}),
        }}

    def execute(self, image: Any, img_compression: int) -> tuple[Any]:
        check_image(image, "LTXVPreprocess: image")
        if img_compression == 0:
            return (image,)  # ComfyUI returns the frames untouched, odd sizes included
        torch = torch_module()
        return (torch.stack([h264_round_trip(frame, img_compression) for frame in image]),)


NODES = {cls.__name__: cls for cls in (FluxKontextImageScale, LTXVPreprocess)}
