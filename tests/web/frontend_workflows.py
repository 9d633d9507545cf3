"""Workflows for the browser tests of ComfyUI's frontend, in the UI format the frontend saves and opens.

Built here rather than kept as files so the test reads what it runs: an SD1 text-to-image graph on the tiny
checkpoint (``comfy models make-tiny sd1``), small enough to sample in a second or two on a CPU.
"""

from __future__ import annotations

from typing import Any

SD1_CHECKPOINT = "tiny-sd1.safetensors"
SAVE_PREFIX = "browser/sd1"


def _node(node_id: int, kind: str, x: int, y: int, inputs: list[tuple[str, str, int | None]],
          outputs: list[tuple[str, str, list[int]]], widgets: list[Any]) -> dict[str, Any]:
    return {
        "id": node_id, "type": kind, "pos": [x, y], "size": [300, 120], "flags": {}, "order": node_id - 1, "mode": 0,
        "inputs": [{"name": name, "type": kind_, "link": link} for name, kind_, link in inputs],
        "outputs": [{"name": name, "type": kind_, "links": links, "slot_index": slot}
                    for slot, (name, kind_, links) in enumerate(outputs)],
        "properties": {"Node name for S&R": kind},
        "widgets_values": widgets,
    }


def sd1_txt2img(seed: int = 7, steps: int = 2) -> dict[str, Any]:
    """Checkpoint -> two prompts -> 64x64 empty latent -> KSampler (fixed seed) -> VAE decode -> Save Image."""
    nodes = [
        _node(1, "CheckpointLoaderSimple", 0, 0, [],
              [("MODEL", "MODEL", [1]), ("CLIP", "CLIP", [2, 3]), ("VAE", "VAE", [8])], [SD1_CHECKPOINT]),
        _node(2, "CLIPTextEncode", 360, 0, [("clip", "CLIP", 2)], [("CONDITIONING", "CONDITIONING", [4])],
              ["a red fox in the snow"]),
        _node(3, "CLIPTextEncode", 360, 200, [("clip", "CLIP", 3)], [("CONDITIONING", "CONDITIONING", [5])],
              ["blurry"]),
        _node(4, "EmptyLatentImage", 360, 400, [], [("LATENT", "LATENT", [6])], [64, 64, 1]),
        _node(5, "KSampler", 720, 0,
              [("model", "MODEL", 1), ("positive", "CONDITIONING", 4), ("negative", "CONDITIONING", 5),
               ("latent_image", "LATENT", 6)],
              [("LATENT", "LATENT", [7])], [seed, "fixed", steps, 7.0, "euler", "normal", 1.0]),
        _node(6, "VAEDecode", 1080, 0, [("samples", "LATENT", 7), ("vae", "VAE", 8)], [("IMAGE", "IMAGE", [9])], []),
        _node(7, "SaveImage", 1080, 200, [("images", "IMAGE", 9)], [], [SAVE_PREFIX]),
    ]
    links = [
        [1, 1, 0, 5, 0, "MODEL"], [2, 1, 1, 2, 0, "CLIP"], [3, 1, 1, 3, 0, "CLIP"], [4, 2, 0, 5, 1, "CONDITIONING"],
        [5, 3, 0, 5, 2, "CONDITIONING"], [6, 4, 0, 5, 3, "LATENT"], [7, 5, 0, 6, 0, "LATENT"], [8, 1, 2, 6, 1, "VAE"],
        [9, 6, 0, 7, 0, "IMAGE"],
    ]
    return {"id": "6d1c3f0e-0b7a-4c55-9f1e-5a0d7b2c9e41", "revision": 0, "last_node_id": 7, "last_link_id": 9,
            "nodes": nodes, "links": links, "groups": [], "config": {},
            "extra": {"ds": {"scale": 0.8, "offset": [40, 80]}}, "version": 0.4}


def load_image(image: str) -> dict[str, Any]:
    """One Load Image node showing ``image`` from the input folder (its upload button picks another file)."""
    nodes = [_node(1, "LoadImage", 100, 100, [], [("IMAGE", "IMAGE", []), ("MASK", "MASK", [])], [image, "image"])]
    return {"id": "0f6b1d2e-3c4a-4e5f-8a9b-7c6d5e4f3a21", "revision": 0, "last_node_id": 1, "last_link_id": 0,
            "nodes": nodes, "links": [], "groups": [], "config": {},
            "extra": {"ds": {"scale": 1.0, "offset": [0, 0]}}, "version": 0.4}
