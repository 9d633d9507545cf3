"""Flux's text encoders as one CLIP value: T5-XXL gives the context, CLIP-L the pooled vector (DualCLIPLoader flux).

``encode_from_tokens_scheduled`` gives ComfyUI's CONDITIONING ``[[cond, {"pooled_output": pooled}]]`` with
``cond`` T5's last hidden states ``[1, L >= 256, d_t5]`` and ``pooled`` CLIP-L's pooled output ``[1, d_clip]``
(4096 and 768 full size), float32 on the CPU: what Flux's transformer reads as ``txt`` and ``y``. Both encoders are
:class:`hearth.core.models.PatchedModel`s, so LoRAs patch them and the model manager moves them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from hearth.core.models import (
    Loaded,
    ModelValue,
    PatchedModel,
    compute_dtype,
    default_device,
    load_into,
    load_once,
    load_state_dict,
    read_header,
)

from . import clip_model, t5_model
from .clip_tokenizer import CLIPTokenizer, find_vocab


class FluxClip(ModelValue):
    """CLIP: T5-XXL (``"t5xxl"``) and CLIP-L (``"l"``) with their tokenizers, ComfyUI's Flux text encoder."""

    family = "flux"

    def __init__(self, t5: t5_model.T5Encoder, t5_tokenizer: t5_model.T5Tokenizer, clip_l: clip_model.CLIPTextEncoder,
                 clip_tokenizer: CLIPTokenizer, patchers: Mapping[str, PatchedModel], source: Any = None) -> None:
        super().__init__(source=source, patchers=patchers)
        self.t5, self.t5_tokenizer = t5, t5_tokenizer
        self.clip_l, self.clip_tokenizer = clip_l, clip_tokenizer

    @property
    def patchers(self) -> dict[str, PatchedModel]:
        return self._patchers

    def key_prefix(self, name: str) -> str:
        return "t5xxl.transformer." if name == "t5xxl" else "clip_l.transformer."  # ComfyUI's LoRA names

    @property
    def layer(self) -> None:
        return None

    def set_last_layer(self, layer: int) -> FluxClip:
        raise ValueError("CLIPSetLastLayer: Flux reads T5's last layer and CLIP-L's pooled output; remove the node")

    clip_layer = set_last_layer

    def tokenize(self, text: str) -> dict[str, Any]:
        """Tokens of both encoders for one prompt (CLIPTextEncodeFlux tokenizes each with its own text)."""
        from hearth.core.prompt_weights import parse_prompt_weights

        ids, weights = self.t5_tokenizer.weighted(text)
        # CLIP-L only gives the pooled output, which prompt weights do not change: the text without the syntax.
        plain = " ".join(segment for segment, _ in parse_prompt_weights(text))
        return {"t5xxl": {"ids": ids, "weights": weights}, "l": {"ids": self.clip_tokenizer(plain)}}

    def encode_from_tokens(self, tokens: Mapping[str, Any], return_pooled: bool = False,
                           return_dict: bool = False) -> Any:
        if "t5xxl" not in tokens or "l" not in tokens:
            raise ValueError("these tokens were made by another text encoder's tokenizer; tokenize with this CLIP "
                             "(Flux needs both 't5xxl' and 'l' tokens)")
        self.ensure_loaded()
        t5 = tokens["t5xxl"]
        device = self.patcher.load_device
        cond = t5_model.encode(self.t5, t5["ids"], t5.get("weights") or [1.0] * len(t5["ids"]), device,
                               self.t5_tokenizer.eos, self.t5_tokenizer.pad)
        with torch.no_grad():
            pooled = self.clip_l(torch.tensor([tokens["l"]["ids"]], device=device))[1].float().cpu()
        if return_dict:
            return {"cond": cond, "pooled_output": pooled}
        return (cond, pooled) if return_pooled else cond

    def encode_from_tokens_scheduled(self, tokens: Mapping[str, Any],
                                     add_dict: Mapping[str, Any] | None = None) -> list[list[Any]]:
        """The CONDITIONING of ``tokens``: ``[[cond, {"pooled_output": pooled, **add_dict}]]`` (ComfyUI's form)."""
        cond, pooled = self.encode_from_tokens(tokens, return_pooled=True)
        return [[cond, {"pooled_output": pooled, **(add_dict or {})}]]

    def encode(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_from_tokens(self.tokenize(text), return_pooled=True)

    def __repr__(self) -> str:
        return f"<FluxClip {self.patchers['t5xxl'].name!r} + {self.patchers['l'].name!r}>"


def _sort_files(paths: Sequence[Path]) -> tuple[Path, Path]:
    """``(t5 file, clip-l file)`` of two files in either order, told apart by their keys; a clear error otherwise."""
    kinds = []
    for path in paths:
        shapes = read_header(path).shapes
        kinds.append("t5" if t5_model.is_t5(shapes) else "l" if clip_model.is_clip_text(shapes) else "other")
    if sorted(kinds) != ["l", "t5"]:
        found = ", ".join(f"{p.name} is {dict(t5='T5', l='CLIP-L').get(k, 'neither T5 nor CLIP-L')}"
                          for p, k in zip(paths, kinds, strict=True))
        raise ValueError(f"DualCLIPLoader: type 'flux' needs one T5-XXL file (t5xxl_fp16.safetensors) and one "
                         f"CLIP-L file (clip_l.safetensors); {found}")
    return (paths[0], paths[1]) if kinds[0] == "t5" else (paths[1], paths[0])


# Where Comfy-Org's all-in-one Flux checkpoints keep the text encoders (ComfyUI's "text_encoders." prefix).
CHECKPOINT_T5 = "text_encoders.t5xxl.transformer."
CHECKPOINT_CLIP_L = "text_encoders.clip_l.transformer."


def _under(path: Path, prefix: str) -> tuple[dict[str, tuple[int, ...]], dict[str, torch.Tensor]]:
    """The shapes and (memory-mapped) tensors of ``path`` under ``prefix``, with the prefix taken off."""
    shapes = {k[len(prefix):]: v for k, v in read_header(path).shapes.items() if k.startswith(prefix)}
    state = {k[len(prefix):]: v for k, v in load_state_dict(path, prefix=prefix).items()} if prefix else None
    return shapes, state


def _load_t5(path: Path, device: torch.device, prefix: str = ""
             ) -> tuple[t5_model.T5Encoder, t5_model.T5Tokenizer, PatchedModel]:
    shapes, state = _under(path, prefix)
    config = t5_model.config_from_shapes(shapes, str(path))
    tokenizer = t5_model.T5Tokenizer(t5_model.tokenizer_path_for(path))
    state = t5_model.state_for_encoder(state if prefix else load_state_dict(path))
    with torch.device("meta"):
        encoder = t5_model.T5Encoder(config)
    load_into(encoder, state, source=path)
    encoder.eval().requires_grad_(False)
    # T5 overflows in float16; bfloat16 where the device runs it well, float32 elsewhere.
    encoder.compute_dtype = compute_dtype(device, (torch.bfloat16, torch.float32))
    # Two prompts of 256+ tokens (a weighted prompt encodes the empty one beside it): float32 scores and weights
    # per head, the gated feed-forward and a few states.
    length = 2 * t5_model.MIN_LENGTH
    working = 3 * config.num_heads * length * length * 4 + length * (3 * config.d_ff + 8 * config.d_model) * 4
    return encoder, tokenizer, PatchedModel(encoder, name=path.name, load_device=device, memory_estimate=working)


def _load_clip_l(path: Path, device: torch.device, prefix: str = ""
                 ) -> tuple[clip_model.CLIPTextEncoder, CLIPTokenizer, PatchedModel]:
    heads = read_header(path).metadata.get(clip_model.HEADS_METADATA_KEY)
    shapes, state = _under(path, prefix)
    config = clip_model.config_from_shapes(shapes, int(heads) if heads else None, str(path))
    tokenizer = CLIPTokenizer(find_vocab(path))
    with torch.device("meta"):
        encoder = clip_model.CLIPTextEncoder(config)
    if not prefix:
        state = load_state_dict(path, prefix=clip_model.PREFIX)
    load_into(encoder, clip_model.state_for_encoder(state), source=path)
    encoder.eval().requires_grad_(False)
    encoder.compute_dtype = compute_dtype(device)
    working = 77 * (config.intermediate_size + 8 * config.hidden_size) * 4
    return encoder, tokenizer, PatchedModel(encoder, name=path.name, load_device=device, memory_estimate=working)


def load_flux_text_encoders(paths: Sequence[str | Path], device: str | None = None, **_: Any) -> FluxClip:
    """A T5-XXL file and a CLIP-L file, in either order, as Flux's CLIP (DualCLIPLoader type ``flux``)."""
    if len(paths) != 2:
        raise ValueError(f"DualCLIPLoader: type 'flux' takes two files (T5-XXL and CLIP-L), got {len(paths)}")
    t5_path, l_path = _sort_files([Path(p) for p in paths])
    load_device = torch.device(device) if device is not None else default_device()

    def make() -> Loaded:
        t5, t5_tok, t5_patcher = _load_t5(t5_path, load_device)
        clip_l, clip_tok, l_patcher = _load_clip_l(l_path, load_device)
        return Loaded(t5_path, t5=t5, t5_tokenizer=t5_tok, clip_l=clip_l, clip_tokenizer=clip_tok,
                      t5_patcher=t5_patcher, l_patcher=l_patcher)

    record = load_once("flux_text_encoders", t5_path, make, str(l_path.resolve()), str(load_device))
    return FluxClip(record.t5, record.t5_tokenizer, record.clip_l, record.clip_tokenizer,
                    {"t5xxl": record.t5_patcher.clone(), "l": record.l_patcher.clone()}, record)


def load_flux_checkpoint_encoders(path: str | Path, device: str | None = None) -> FluxClip | None:
    """The CLIP of an all-in-one Flux checkpoint (``text_encoders.t5xxl.transformer.*`` and
    ``text_encoders.clip_l.transformer.*``, CheckpointLoaderSimple), or None when the file holds no text encoders.
    The T5 tokenizer is looked for beside the checkpoint, as beside a T5 file."""
    path = Path(path)
    shapes = read_header(path).shapes
    if not any(k.startswith(CHECKPOINT_T5) for k in shapes) or not any(k.startswith(CHECKPOINT_CLIP_L) for k in shapes):
        return None
    load_device = torch.device(device) if device is not None else default_device()

    def make() -> Loaded:
        t5, t5_tok, t5_patcher = _load_t5(path, load_device, CHECKPOINT_T5)
        clip_l, clip_tok, l_patcher = _load_clip_l(path, load_device, CHECKPOINT_CLIP_L)
        return Loaded(path, t5=t5, t5_tokenizer=t5_tok, clip_l=clip_l, clip_tokenizer=clip_tok,
                      t5_patcher=t5_patcher, l_patcher=l_patcher)

    record = load_once("flux_checkpoint_text_encoders", path, make, str(load_device))
    return FluxClip(record.t5, record.t5_tokenizer, record.clip_l, record.clip_tokenizer,
                    {"t5xxl": record.t5_patcher.clone(), "l": record.l_patcher.clone()}, record)
