"""SaveLatent and LoadLatent: ComfyUI's latent files, so a workflow that stores a latent and resumes from it runs.

A ``.latent`` file is a safetensors file holding ``latent_tensor`` (the raw LATENT samples) and an empty
``latent_format_version_0`` marker; SaveLatent writes ``{prefix}_{counter:05}_.latent`` into the output folder (by
default under ``latents/``) with the prompt and workflow as metadata, as ComfyUI does. LoadLatent lists the
``.latent`` files of the input folder and reads one back; a file without the marker is from before ComfyUI scaled
latents on load, and is divided by SD's 0.18215 as ComfyUI divides it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from hearth.core import context
from hearth.core.context import atomic_path, save_path

SUFFIX = ".latent"
FORMAT_MARKER = "latent_format_version_0"
LEGACY_SCALE = 0.18215  # what latents were stored multiplied by before the marker existed


def latent_files() -> list[str]:
    """The ``.latent`` files directly in the input folder, sorted (LoadLatent's choices)."""
    folder = context.folders().input
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.name.endswith(SUFFIX))


class SaveLatent:
    DISPLAY_NAME = "Save Latent"
    CATEGORY = "_for_testing"
    DESCRIPTION = "Saves a LATENT as a .latent file in the output folder (with the prompt and workflow)."
    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"samples": ("LATENT",), "filename_prefix": ("STRING", {"default": "latents/ComfyUI"})},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def save(self, samples: dict[str, Any], filename_prefix: str = "ComfyUI", prompt: Any = None,
             extra_pnginfo: Any = None) -> dict[str, Any]:
        import torch

        from hearth.core.models import write_safetensors

        metadata = {"prompt": json.dumps(prompt) if prompt is not None else ""}
        for key, value in (extra_pnginfo or {}).items():
            metadata[key] = json.dumps(value)
        folder = context.folders().for_type("output")
        directory, base, counter = save_path(filename_prefix, folder, 0, 0)
        name = f"{base}_{counter:05}_{SUFFIX}"
        tensors = {"latent_tensor": samples["samples"].contiguous(), FORMAT_MARKER: torch.tensor([])}
        with atomic_path(directory / name) as temp:
            write_safetensors(tensors, Path(temp), metadata)
        subfolder = directory.relative_to(folder.resolve()).as_posix()
        return {"ui": {"latents": [{"filename": name, "subfolder": "" if subfolder == "." else subfolder,
                                    "type": "output"}]}}


class LoadLatent:
    DISPLAY_NAME = "Load Latent"
    CATEGORY = "_for_testing"
    DESCRIPTION = "Loads a .latent file from the input folder as a LATENT."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"latent": (latent_files(),)}}

    def load(self, latent: str) -> tuple[dict[str, Any]]:
        from hearth.core.models import load_state_dict

        path = context.annotated_path(latent)
        if not path.is_file():
            raise ValueError(f"LoadLatent: no latent file {latent!r} in the input folder; put a .latent file "
                             "(written by Save Latent) there")
        stored = load_state_dict(path)
        if "latent_tensor" not in stored:
            raise ValueError(f"LoadLatent: {latent} holds no 'latent_tensor'; it is not a latent file written by "
                             f"Save Latent (keys: {', '.join(sorted(stored)[:5])})")
        multiplier = 1.0 if FORMAT_MARKER in stored else 1.0 / LEGACY_SCALE
        return ({"samples": stored["latent_tensor"].float() * multiplier},)

    @classmethod
    def IS_CHANGED(cls, latent: str) -> str:
        return hashlib.sha256(context.annotated_path(latent).read_bytes()).hexdigest()

    @classmethod
    def VALIDATE_INPUTS(cls, latent: str) -> bool | str:
        if not context.annotated_path(latent).is_file():
            return f"Invalid latent file: {latent}"
        return True


NODES: dict[str, type] = {cls.__name__: cls for cls in (SaveLatent, LoadLatent)}
