"""ComfyUI's comfy_extras/nodes_cond.py: conditioning as a file, and the T5 tokenizer options.

SaveConditioning writes one CONDITIONING entry to the output folder, ConditioningLoader reads one from the
embeddings folder, so a prompt's text encoding can be computed once and the text encoder skipped afterwards.
T5TokenizerOptions sets the minimum padding and length of a CLIP's T5-family tokenizers; the text encoders Hearth
has now (CLIP-L, OpenCLIP, Wan's UMT5 without these options) take none, so it hands back a clone unchanged unless the
CLIP offers ComfyUI's ``set_tokenizer_option``.

The file is safetensors: the embedding as ``conditioning``; each tensor option under its name; a list of tensors
(``reference_latents``) as ``name.0``, ``name.1``...; plain values (numbers, strings, booleans) as JSON in the
``conditioning_options`` metadata. Other options (an area tuple, a ControlNet) cannot be stored and are refused by
name, as ComfyUI refuses them.
"""

from __future__ import annotations

import json
from typing import Any

from hearth.core.model_folders import model_folders

from .nodes_save import write_file


class SaveConditioning:
    DISPLAY_NAME = "Save Conditioning"
    CATEGORY = "model/conditioning"
    DESCRIPTION = ("Saves a conditioning to the output folder as safetensors; move the file to models/embeddings to "
                   "load it with Load Conditioning, e.g. to skip the text encoder.")
    OUTPUT_NODE = True
    RETURN_TYPES = ("CONDITIONING",)
    RETURN_NAMES = ("conditioning",)
    FUNCTION = "save"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"conditioning": ("CONDITIONING",),
                             "filename_prefix": ("STRING", {"default": "conditioning/ComfyUI"})}}

    def save(self, conditioning: list[list[Any]], filename_prefix: str) -> tuple[list[list[Any]]]:
        import torch

        if len(conditioning) != 1:
            raise ValueError(f"SaveConditioning: conditioning has {len(conditioning)} entries; it saves a single "
                             "one, so save it before combining")
        cond, options = conditioning[0]
        tensors = {"conditioning": cond}
        values: dict[str, Any] = {}
        for key, value in options.items():
            if isinstance(value, torch.Tensor):
                tensors[key] = value
            elif isinstance(value, (list, tuple)) and all(isinstance(t, torch.Tensor) for t in value):
                tensors.update({f"{key}.{i}": t for i, t in enumerate(value)})
            elif isinstance(value, (bool, int, float, str)):
                values[key] = value
            elif value is not None:
                raise ValueError(f"SaveConditioning: conditioning option {key!r} ({type(value).__name__}) can't be "
                                 "saved; only tensors, lists of tensors, numbers, strings and booleans can")
        tensors = {key: value.detach().to("cpu", copy=True) for key, value in tensors.items()}
        write_file(filename_prefix, tensors, {"conditioning_options": json.dumps(values)})
        return (conditioning,)


class ConditioningLoader:
    DISPLAY_NAME = "Load Conditioning"
    CATEGORY = "model/loaders"
    DESCRIPTION = ("Loads a conditioning saved with Save Conditioning, or any safetensors file with a 'conditioning' "
                   "tensor, from the embeddings folder.")
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"conditioning_name": (model_folders().list("embeddings"),)}}

    def load(self, conditioning_name: str) -> tuple[list[list[Any]]]:
        from hearth.core.models import load_state_dict, read_header

        path = model_folders().find("embeddings", conditioning_name)
        if path.suffix != ".safetensors":
            raise ValueError(f"ConditioningLoader: {conditioning_name} is not a safetensors file; Save Conditioning "
                             "writes .safetensors")
        tensors = dict(load_state_dict(path))
        if "conditioning" not in tensors:
            raise ValueError(f"ConditioningLoader: {conditioning_name} holds no 'conditioning' tensor (a textual "
                             "inversion is used in prompts as embedding:name, not loaded here)")
        cond = tensors.pop("conditioning")
        options = json.loads(read_header(path).metadata.get("conditioning_options") or "{}")
        lists: dict[str, dict[int, Any]] = {}
        for key, value in tensors.items():
            name, _, index = key.rpartition(".")
            if index.isdigit():
                lists.setdefault(name, {})[int(index)] = value
            else:
                options[key] = value
        options.update({name: [items[i] for i in sorted(items)] for name, items in lists.items()})
        return ([[cond, options]],)


T5_TOKENIZERS = ("t5xxl", "pile_t5xl", "t5base", "mt5xl", "umt5xxl")


class T5TokenizerOptions:
    DISPLAY_NAME = "T5 Tokenizer Options"
    CATEGORY = "model/conditioning"
    EXPERIMENTAL = True
    RETURN_TYPES = ("CLIP",)
    FUNCTION = "set_options"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "clip": ("CLIP",),
            "min_padding": ("INT", {"default": 0, "min": 0, "max": 10000, "step": 1}),
            "min_length": ("INT", {"default": 0, "min": 0, "max": 10000, "step": 1}),
        }}

    def set_options(self, clip: Any, min_padding: int, min_length: int) -> tuple[Any]:
        clip = clip.clone()
        setter = getattr(clip, "set_tokenizer_option", None)
        if setter is not None:
            for name in T5_TOKENIZERS:
                setter(f"{name}_min_padding", min_padding)
                setter(f"{name}_min_length", min_length)
        return (clip,)


NODES = {cls.__name__: cls for cls in (SaveConditioning, ConditioningLoader, T5TokenizerOptions)}
