"""Style model files as a model kind: their formats, the loader for models/style_models, the tiny file.

The T2I-Adapter style adapter (``style_embedding`` ...) loads and runs (:mod:`hearth_sd.style_model`); a Flux Redux
file is recognised so the load fails naming its family instead of "unknown file". Imported when plugins load: no
torch here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hearth.core.model_folders import TinyModel
from hearth.core.models.formats import ModelFormat

FOLDER = "style_models"

MODEL_FORMATS = [
    ModelFormat("t2i_style", {"style_embedding": None, "ln_pre.weight": None, "ln_post.weight": None, "proj": None},
                "T2I-Adapter style model (StyleModelLoader, SD1.x with a ViT-L/14 CLIP vision encoder)",
                extra={"part": "style_model"}),
    ModelFormat("flux_redux", {"redux_down.weight": None, "redux_up.weight": None},
                "Flux Redux image-prompt model (needs Flux, which Hearth does not have)",
                extra={"part": "style_model"}),
]


def load_style_model_file(path: Path, **_: Any) -> Any:
    """A STYLE_MODEL, loaded once per process (the load cache shares it while some node output holds it)."""
    from hearth.core.models import Loaded, load_once, load_state_dict, read_header

    from .checkpoint import build
    from .style_model import StyleAdapter, StyleModel, config_from_state, kind_of

    def make() -> Loaded:
        header = read_header(path)
        kind_of(header.tensors, str(path))
        state = load_state_dict(path)
        adapter = build(StyleAdapter, config_from_state(state, header.metadata, str(path)),
                        {k: v.float() for k, v in state.items()}, f"{path} (style model)")
        return Loaded(path, model=StyleModel(adapter, path.name))

    return load_once("style_model", path, make).model


MODEL_LOADERS = {(FOLDER, fmt.name): load_style_model_file for fmt in MODEL_FORMATS}


def write_tiny_style_model(path: Path, seed: int = 0) -> None:
    """A tiny T2I style adapter: 32 wide (the tiny CLIP vision encoder's), 4 tokens, out to the tiny SD1's 32."""
    import json

    import torch

    from hearth.core.models import write_safetensors

    from .style_model import CONFIG_METADATA_KEY, StyleAdapter, StyleAdapterConfig

    config = StyleAdapterConfig(width=32, context_dim=32, heads=4, layers=2, tokens=4)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 505)
        module = StyleAdapter(config)
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in module.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(tensors, path, {CONFIG_METADATA_KEY: json.dumps({"heads": config.heads}),
                                      "hearth.sd.tiny": "random weights, for tests and demos only"})


TINY_MODELS = {"style-model-tiny": TinyModel(FOLDER, "tiny-style-model.safetensors", write_tiny_style_model,
                                             "T2I-Adapter style model, 32 wide (StyleModelLoader)")}
