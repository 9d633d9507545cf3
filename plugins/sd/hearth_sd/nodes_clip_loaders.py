"""ComfyUI's multi-file CLIP loaders: DualCLIPLoader, TripleCLIPLoader and QuadrupleCLIPLoader.

DualCLIPLoader type ``sdxl`` loads a CLIP-L file and a CLIP-G file (in either order, told apart by their contents
as ComfyUI does) into the same SDXL CLIP a checkpoint gives. Every other type -- and the triple and quadruple
loaders, whose recipes are SD3 (CLIP-L, CLIP-G, T5) and HiDream (two long CLIPs, T5, Llama) -- needs a model
family Hearth does not have yet: the nodes exist with ComfyUI's inputs, so workflows validate and show where they
stop, and loading fails naming the type and that it is not supported. The files are checked to exist first, so a
missing file is reported as such rather than as an unsupported family.
"""

from __future__ import annotations

from typing import Any

from hearth.core.model_folders import model_folders

# ComfyUI's DualCLIPLoader types, in its order; only "sdxl" is a family Hearth has.
DUAL_CLIP_TYPES = ["sdxl", "sd3", "flux", "hunyuan_video", "hidream", "hunyuan_image", "hunyuan_video_15",
                   "kandinsky5", "kandinsky5_image", "ltxv", "newbie", "ace"]
SUPPORTED_DUAL_TYPES = {"sdxl"}
DEVICES = ["default", "cpu"]


class UnsupportedCLIPType(ValueError):
    """A CLIP loader was asked for a model family Hearth does not load yet."""


def _files() -> list[str]:
    return model_folders().list("text_encoders")


def _find(names: list[str]) -> list[Any]:
    folders = model_folders()
    return [folders.find("text_encoders", name) for name in names]


def _unsupported(node: str, what: str, hint: str) -> UnsupportedCLIPType:
    return UnsupportedCLIPType(f"{node}: {what} is not supported by Hearth yet (it needs {hint}, a model family "
                               f"Hearth does not load); DualCLIPLoader type 'sdxl' (CLIP-L + CLIP-G) is the "
                               f"multi-file CLIP Hearth loads")


def _embeddings() -> list[Any]:
    return list(model_folders().folders("embeddings"))


class DualCLIPLoader:
    DISPLAY_NAME = "DualCLIPLoader"
    CATEGORY = "advanced/loaders"
    DESCRIPTION = ("[Recipes]\n\nsdxl: clip-l, clip-g\nsd3: clip-l, clip-g / clip-l, t5 / clip-g, t5\n"
                   "flux: clip-l, t5\nhidream: at least one of t5 or llama, recommended t5 and llama\n"
                   "hunyuan_image: qwen2.5vl 7b and byt5 small\nnewbie: gemma-3-4b-it, jina clip v2\n\n"
                   "Hearth loads sdxl, and flux where the DiT plugin is installed; the other types need model "
                   "families it does not have yet.")
    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load_clip"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "clip_name1": (_files(),),
            "clip_name2": (_files(),),
            "type": (DUAL_CLIP_TYPES,),
        }, "optional": {
            "device": (DEVICES, {"advanced": True}),
        }}

    def load_clip(self, clip_name1: str, clip_name2: str, type: str, device: str = "default") -> tuple[Any]:
        paths = _find([clip_name1, clip_name2])
        if type not in DUAL_CLIP_TYPES:
            raise ValueError(f"DualCLIPLoader: type must be one of {', '.join(DUAL_CLIP_TYPES)}, got {type!r}")
        if type not in SUPPORTED_DUAL_TYPES:
            # Another family plugin may load this pair (kind "dual_text_encoders", named by the type: Flux's).
            from hearth.core.models.loaders import model_loaders

            load = model_loaders("dual_text_encoders").get(type)
            if load is None:
                raise _unsupported("DualCLIPLoader", f"type {type!r}", f"the {type} text encoders")
            return (load(paths, device="cpu" if device == "cpu" else None),)
        from .loaders import sdxl_text_encoders, text_encoder_kind

        kinds = [text_encoder_kind(path) for path in paths]
        if sorted(kinds) != ["g", "l"]:
            found = ", ".join(f"{name} is {_KIND_NAMES.get(kind, kind)}"
                              for name, kind in zip((clip_name1, clip_name2), kinds, strict=True))
            raise ValueError(f"DualCLIPLoader: type 'sdxl' needs one CLIP-L and one CLIP-G file; {found}")
        path_l, path_g = paths if kinds[0] == "l" else paths[::-1]
        return (sdxl_text_encoders(path_l, path_g, _embeddings(), device="cpu" if device == "cpu" else None),)


_KIND_NAMES = {"l": "CLIP-L", "g": "CLIP-G (OpenCLIP bigG)", "h": "OpenCLIP ViT-H"}


class TripleCLIPLoader:
    DISPLAY_NAME = "TripleCLIPLoader"
    CATEGORY = "advanced/loaders"
    DESCRIPTION = "[Recipes]\n\nsd3: clip-l, clip-g, t5\n\nHearth does not load SD3's text encoders yet."
    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load_clip"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {f"clip_name{i}": (_files(),) for i in (1, 2, 3)}}

    def load_clip(self, clip_name1: str, clip_name2: str, clip_name3: str) -> tuple[Any]:
        _find([clip_name1, clip_name2, clip_name3])
        raise _unsupported("TripleCLIPLoader", "SD3's three text encoders (CLIP-L, CLIP-G, T5-XXL)",
                           "the SD3 family and its T5-XXL encoder")


class QuadrupleCLIPLoader:
    DISPLAY_NAME = "QuadrupleCLIPLoader"
    CATEGORY = "advanced/loaders"
    DESCRIPTION = ("[Recipes]\n\nhidream: long clip-l, long clip-g, t5xxl, llama_8b_3.1_instruct\n\n"
                   "Hearth does not load HiDream's text encoders yet.")
    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load_clip"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {f"clip_name{i}": (_files(),) for i in (1, 2, 3, 4)}}

    def load_clip(self, clip_name1: str, clip_name2: str, clip_name3: str, clip_name4: str) -> tuple[Any]:
        _find([clip_name1, clip_name2, clip_name3, clip_name4])
        raise _unsupported("QuadrupleCLIPLoader", "HiDream's four text encoders (long CLIP-L, long CLIP-G, T5-XXL, "
                           "Llama 3.1 8B)", "the HiDream family")


NODES = {cls.__name__: cls for cls in (DualCLIPLoader, TripleCLIPLoader, QuadrupleCLIPLoader)}
