"""Textual-inversion embeddings: find ``embedding:name`` in the embeddings folders and read its vectors.

Layouts read: A1111 ``.pt`` (``string_to_param['*']``), A1111 ``.safetensors`` (``emb_params``), SDXL
(``clip_l`` and ``clip_g``), and a file holding one tensor under any name (diffusers' ``learned_embeds``).
Each text encoder takes the vectors meant for it: SDXL files by key, single-tensor files by width.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

log = logging.getLogger(__name__)

EXTENSIONS = (".safetensors", ".pt", ".bin", ".pth")


@dataclass(frozen=True)
class Embedding:
    """Vectors of one embedding: ``by_encoder`` maps an encoder name (``"l"``, ``"g"``) to ``[n, width]``;
    ``generic`` holds vectors not tied to an encoder (used by whichever encoder has their width)."""

    name: str
    by_encoder: Mapping[str, torch.Tensor]
    generic: torch.Tensor | None = None

    def vectors_for(self, encoder: str, width: int) -> torch.Tensor | None:
        vectors = self.by_encoder.get(encoder)
        if vectors is None and self.generic is not None and self.generic.shape[-1] == width:
            vectors = self.generic
        if vectors is not None and vectors.shape[-1] != width:
            return None
        return vectors


def _read(path: Path) -> Mapping[str, object]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    # weights_only refuses pickled code: an embedding downloaded from anywhere cannot run anything on load.
    return torch.load(str(path), map_location="cpu", weights_only=True)


def parse_embedding(name: str, data: Mapping[str, object]) -> Embedding:
    """The vectors in a loaded embedding file, whatever its layout.

    :raises ValueError: naming the keys found, when the layout is not one of the known ones.
    """

    def as_matrix(t: object) -> torch.Tensor:
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"embedding {name!r}: expected a tensor, found {type(t).__name__}")
        t = t.detach().float()
        return t[None] if t.ndim == 1 else t.reshape(-1, t.shape[-1])

    if "clip_l" in data or "clip_g" in data:
        return Embedding(name, {k[len("clip_") :]: as_matrix(v) for k, v in data.items() if k.startswith("clip_")})
    if "string_to_param" in data:
        params = data["string_to_param"]
        if isinstance(params, Mapping) and params:
            return Embedding(name, {}, as_matrix(next(iter(params.values()))))
    if "emb_params" in data:
        return Embedding(name, {}, as_matrix(data["emb_params"]))
    tensors = [v for v in data.values() if isinstance(v, torch.Tensor)]
    if len(tensors) == 1:
        return Embedding(name, {}, as_matrix(tensors[0]))
    raise ValueError(
        f"embedding {name!r}: unknown layout (keys: {', '.join(map(str, data))}); expected string_to_param, "
        "emb_params, clip_l/clip_g or a single tensor"
    )


class EmbeddingLibrary:
    """Embeddings found by name in one or more folders, loaded once and kept."""

    def __init__(self, folders: Iterable[str | Path] = ()):
        self.folders = [Path(f) for f in folders]
        self._loaded: dict[str, Embedding | None] = {}

    def find(self, name: str) -> Path | None:
        for folder in self.folders:
            root = folder.resolve()
            for candidate in [folder / name, *(folder / (name + ext) for ext in EXTENSIONS)]:
                # A name like "../x" must not reach outside the embeddings folders.
                if candidate.is_file() and candidate.resolve().is_relative_to(root):
                    return candidate
        return None

    def get(self, name: str) -> Embedding | None:
        """The embedding called ``name`` (with or without extension), or None with a warning when missing."""
        if name not in self._loaded:
            path = self.find(name)
            if path is None:
                log.warning("embedding %r not found in %s; the word is used as plain text", name,
                            ", ".join(map(str, self.folders)) or "(no embeddings folder)")
                self._loaded[name] = None
            else:
                self._loaded[name] = parse_embedding(name, _read(path))
        return self._loaded[name]
