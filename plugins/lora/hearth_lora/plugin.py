"""The ``hearth`` entry point of the LoRA plugin: the LoraLoader nodes and tiny LoRAs for ``make-tiny``."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from hearth.core.hookspecs import hookimpl
from hearth.core.model_folders import TinyModel

from .nodes import NODES

# make-tiny name -> (the tiny SD checkpoint family the LoRA is made for, its file name under loras/).
TINY_LORAS = {"lora": ("sd1", "tiny-lora-sd1.safetensors"), "lora-sdxl": ("sdxl", "tiny-lora-sdxl.safetensors")}


@hookimpl
def register_nodes():
    return dict(NODES)


@hookimpl
def lora_for_models(model, clip, lora, strength_model, strength_clip):
    from .apply import load_lora_for_models, warn
    from .formats import parse_lora

    parsed = parse_lora(lora)
    if not parsed.adapters:
        raise ValueError(f"no tensor of a LoRA format Hearth reads (kohya, diffusers/PEFT, LyCORIS); first keys: "
                         f"{', '.join(list(lora)[:3])}")
    new_model, new_clip, report = load_lora_for_models(model, clip, parsed, strength_model, strength_clip,
                                                       "a LoRA state dict")
    warn(report)  # keys that fit neither model: logged and shown on the running node, as LoraLoader does
    return new_model, new_clip


def _base_checkpoint(family: str) -> TinyModel:
    """The tiny checkpoint the SD plugin registers for ``family`` (through the hook: no import of that plugin)."""
    from hearth.core.plugins import active_plugins

    plugins = active_plugins()
    found = plugins.resolve_named("register_tiny_models", "tiny model").get(family) if plugins is not None else None
    if found is None or found.kind != "checkpoints":
        raise ValueError(f"the tiny LoRA for {family} fits the SD plugin's tiny {family} checkpoint, which no loaded "
                         f"plugin provides: install hearth-sd and write both (make-tiny all), or make the LoRA for "
                         f"a file with --base FILE")
    return found


def _tiny_lora_writer(family: str):
    def write(path: Path, seed: int) -> None:
        import tempfile

        from .tiny import make_tiny_lora

        base = _base_checkpoint(family)
        # Only the base's key names and shapes matter (make_tiny_lora reads its header); its file name goes into
        # the LoRA's metadata, so it is written under the name make-tiny all gives it.
        with tempfile.TemporaryDirectory() as folder:
            base_path = Path(folder) / base.filename
            base.write(base_path, seed)
            make_tiny_lora(base_path, path, seed)

    return write


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@hookimpl
def register_tiny_models():
    # The LoRAs fit the SD plugin's tiny checkpoints; without that distribution there is nothing for them to fit.
    if not _installed("hearth-sd"):
        return None
    return {name: TinyModel("loras", filename, _tiny_lora_writer(family),
                            f"kohya LoRA for the tiny {family} checkpoint (LoraLoader)", write_for=_write_for,
                            base=family)
            for name, (family, filename) in TINY_LORAS.items()}


def _write_for(base: Path, path: Path, seed: int) -> None:
    from .tiny import make_tiny_lora

    make_tiny_lora(base, path, seed)
