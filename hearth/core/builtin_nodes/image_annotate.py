"""Drawing detections onto images, with ComfyUI's name and rules: DrawBBoxes.

ComfyUI ships it beside its RT-DETR/RF-DETR detectors; it needs no model: boxes (``{"x", "y", "width", "height",
"label", "score"}`` dicts, per image or shared) are drawn with PIL, a COCO label choosing the colour and adding
"label score" text.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from hearth.core.images import check_image, torch_module

# The 80 object categories of the COCO detection benchmark (Lin et al. 2014), in the detectors' order.
COCO_CLASSES = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant",
    "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
    "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
    "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet",
    "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
]
COLOURS = [(255, 0, 0), (0, 200, 0), (0, 0, 255), (255, 165, 0), (128, 0, 128), (0, 255, 255), (255, 20, 147),
           (100, 149, 237)]
BOX_KEYS = ("x", "y", "width", "height")


def _per_image(bboxes: Any, count: int) -> list[list[dict[str, Any]]]:
    """ComfyUI's reading of the input: one dict, a list of dicts (the same for every image), or a list per image."""
    if isinstance(bboxes, dict):
        return [[bboxes]] * count
    if not isinstance(bboxes, list) or not bboxes:
        return [[]] * count
    if not isinstance(bboxes[0], list):
        return [bboxes] * count
    return bboxes


def _checked(frames: list[list[Any]]) -> None:
    for i, frame in enumerate(frames):
        for j, box in enumerate(frame):
            if not isinstance(box, dict) or any(not isinstance(box.get(k), (int, float)) for k in BOX_KEYS):
                raise ValueError(f"bboxes: item {j} of image {i} is not a box with numeric x, y, width, height "
                                 f"(got {box!r})")


def draw_detections(image: Image.Image, boxes: list[dict[str, Any]]) -> Image.Image:
    """Outline each box (3 px, lowest score first so the best is on top); a COCO label picks the colour and is
    written with its score inside the box's corner."""
    draw = ImageDraw.Draw(image)
    try:
        font: Any = ImageFont.truetype("arial.ttf", 16)
    except OSError:
        font = ImageFont.load_default()
    for box in sorted(boxes, key=lambda b: float(b.get("score", 1.0))):
        label = box.get("label") if box.get("label") in COCO_CLASSES else None
        colour = COLOURS[(COCO_CLASSES.index(label) if label is not None else 0) % len(COLOURS)]
        x1, y1 = float(box["x"]), float(box["y"])
        x2, y2 = x1 + float(box["width"]), y1 + float(box["height"])
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=3)
        if label is not None:
            draw.text((x1 + 2, y1 + 2), f"{label} {float(box.get('score', 1.0)):.2f}", fill=colour, font=font)
    return image


class DrawBBoxes:
    """ComfyUI's Draw BBoxes: the boxes drawn on each image, or on black canvases just large enough for them
    (640 x 640 when there are none) when no image is given."""

    DISPLAY_NAME = "Draw BBoxes"
    CATEGORY = "detection/"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "draw"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"bboxes": ("BOUNDING_BOX", {"forceInput": True})},
                "optional": {"image": ("IMAGE",)}}

    def draw(self, bboxes: Any, image: Any = None) -> tuple[Any]:
        torch = torch_module()
        frames = _per_image(bboxes, check_image(image).shape[0] if image is not None else 1)
        _checked(frames)
        if image is None:
            boxes = [b for frame in frames for b in frame]
            width = max((int(b["x"] + b["width"]) for b in boxes), default=640)
            height = max((int(b["y"] + b["height"]) for b in boxes), default=640)
            image = torch.zeros((len(frames), height, width, 3), dtype=torch.float32)
        elif len(frames) < image.shape[0]:
            raise ValueError(f"bboxes: {len(frames)} lists of boxes for {image.shape[0]} images; give one list per "
                             "image, or one list for all")
        out = []
        for index in range(image.shape[0]):
            # 8 bits truncated, as torchvision's ToPILImage in ComfyUI; RGB only.
            pixels = (image[index, ..., :3].clamp(0, 1) * 255).to(torch.uint8).cpu().numpy()
            drawn = draw_detections(Image.fromarray(pixels), frames[index]) if frames[index] else pixels
            out.append(torch.from_numpy(np.asarray(drawn, dtype=np.float32) / 255.0))
        return (torch.stack(out),)


NODES = {"DrawBBoxes": DrawBBoxes}
