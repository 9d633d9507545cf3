"""The ``hearth`` entry point of the SD plugin: checkpoint formats, SD2 prediction, the nodes and the tiny models.

Imported when plugins load, so it must not import torch: node modules defer it to their functions, and the tiny
model writers import their module when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hearth.core.hookspecs import hookimpl
from hearth.core.model_folders import TinyModel
from hearth.core.models.formats import ModelFormat
from hearth.core.nodes import collect_nodes

from .formats import UNET_PREFIX, resolve_sd2_prediction, sd_formats

CHECKPOINT_FORMATS = ("sd1", "sd2", "sdxl", "sdxl_refiner")  # sd_formats()' names of whole checkpoints

TINY_FAMILIES = {
    "sd1": "SD1.x checkpoint (CLIP-L, eps)",
    "sd2": "SD2.x checkpoint (OpenCLIP-H, v prediction)",
    "sdxl": "SDXL base checkpoint (CLIP-L + bigG)",
    "sdxl_refiner": "SDXL refiner checkpoint (bigG, aesthetic score)",
}


# A UNet on its own (ComfyUI's UNETLoader, models/diffusion_models): bare keys, or under a checkpoint's prefix.
# Two sentinels, fewer than any whole-checkpoint format, so a whole checkpoint is still detected as one; the
# family (SD1, SD2, SDXL, refiner) is read from the shapes when it loads.
UNET_FORMATS = {"sd_unet": "", "sd_unet_checkpoint": UNET_PREFIX}


def unet_formats() -> list[ModelFormat]:
    """The formats of a Stable Diffusion UNet file alone (SD1/SD2/SDXL/refiner), for ``diffusion_models``."""
    return [ModelFormat(name, {prefix + "input_blocks.0.0.weight": None, prefix + "out.2.weight": None},
                        "Stable Diffusion UNet alone (SD1, SD2, SDXL), as UNETLoader reads from diffusion_models",
                        prefixes=(prefix,), extra={"part": "unet"})
            for name, prefix in UNET_FORMATS.items()]


def model_kinds() -> list[Any]:
    """The plugin's ``models_*.py`` modules: each adds a kind of model file (ControlNet, CLIP vision...) through
    optional ``MODEL_FORMATS`` (a list of ModelFormat), ``MODEL_LOADERS`` (``{(folder, format): load}``) and
    ``TINY_MODELS`` (``{name: TinyModel}``). Like the node modules, they must not import torch when imported."""
    import importlib
    import pkgutil

    package = importlib.import_module(__package__)
    return [importlib.import_module(f"{__package__}.{info.name}")
            for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda info: info.name)
            if info.name.startswith("models_")]


@hookimpl
def register_model_formats():
    return [*sd_formats(), *unet_formats(), *(f for kind in model_kinds() for f in getattr(kind, "MODEL_FORMATS", ()))]


@hookimpl
def resolve_model_format(shapes, metadata, formats):
    # SD2 v-prediction and eps files have identical keys; only metadata (when present) tells them apart.
    return resolve_sd2_prediction(shapes, metadata, formats)


@hookimpl
def register_nodes():
    return collect_nodes(__package__)  # every nodes_*.py module


def _embeddings(embeddings: Any) -> Any:
    if embeddings is not None:
        return embeddings
    from hearth.core.model_folders import model_folders

    return model_folders().folders("embeddings")


def load_checkpoint_file(path: Path, embeddings: Any = None, prediction: str | None = None, **_: Any) -> Any:
    """``(MODEL, CLIP, VAE)`` of an SD checkpoint; textual inversions from the embeddings folders by default."""
    from .loaders import checkpoint

    return checkpoint(path, embeddings=_embeddings(embeddings), prediction=prediction)


def load_unet_file(path: Path, weight_dtype: str = "default", device: str | None = None, **_: Any) -> Any:
    """MODEL of an SD UNet file alone, or of a whole checkpoint's UNet (UNETLoader on a checkpoint, as ComfyUI)."""
    from .loaders import unet

    return unet(path, weight_dtype=weight_dtype, device=device)


def load_vae_file(path: Path, **_: Any) -> Any:
    """The VAE of a standalone VAE file, or of a whole checkpoint (its ``first_stage_model.`` part)."""
    from .loaders import vae

    return vae(path)


def load_text_encoder_file(path: Path, device: str | None = None, embeddings: Any = None, **_: Any) -> Any:
    """CLIP-L (SD1) or OpenCLIP ViT-H (SD2) text encoder file (CLIPLoader type ``stable_diffusion``)."""
    from .loaders import text_encoder

    return text_encoder(path, _embeddings(embeddings), device=device)


@hookimpl
def register_model_loaders():
    loaders: dict[tuple[str, str], Any] = {("checkpoints", name): load_checkpoint_file for name in CHECKPOINT_FORMATS}
    loaders.update({("vae", name): load_vae_file for name in (*CHECKPOINT_FORMATS, "sd_vae")})
    loaders[("text_encoders", "stable_diffusion")] = load_text_encoder_file
    loaders.update({("diffusion_models", name): load_unet_file for name in (*UNET_FORMATS, *CHECKPOINT_FORMATS)})
    for kind in model_kinds():
        loaders.update(getattr(kind, "MODEL_LOADERS", {}))
    return loaders


def _checkpoint_writer(family: str):
    def write(path: Path, seed: int) -> None:
        from .tiny import make_tiny_checkpoint

        make_tiny_checkpoint(family, path, seed)

    return write


def _part_writer(name: str):
    def write(path: Path, seed: int) -> None:
        from . import tiny_parts

        getattr(tiny_parts, name)(path, seed)

    return write


@hookimpl
def register_tiny_models():
    # File names are the ones examples/workflows/ load (tiny.tiny_checkpoint_name's rule for checkpoints).
    models = {family: TinyModel("checkpoints", f"tiny-{family.replace('_', '-')}.safetensors",
                                _checkpoint_writer(family), description)
              for family, description in TINY_FAMILIES.items()}
    models["sd-vae"] = TinyModel("vae", "tiny-vae.safetensors", _part_writer("write_tiny_vae"),
                                 "standalone SD VAE (VAELoader)")
    models["clip-l"] = TinyModel("text_encoders", "tiny-clip-l.safetensors", _part_writer("write_tiny_text_encoder"),
                                 "standalone CLIP-L text encoder (CLIPLoader, SD1)")
    models["embedding"] = TinyModel("embeddings", "tiny-embedding.safetensors", _part_writer("write_tiny_embedding"),
                                    "textual inversion, 2 vectors (embedding:tiny-embedding)")
    for kind in model_kinds():
        models.update(getattr(kind, "TINY_MODELS", {}))
    return models
