"""Tiny Z-Image models with random weights in the published file layouts, for tests, demos and benchmarks.

The DiT keeps every structural feature (caption and noise refiners, pad tokens, 3-axis rotary embedding, tanh-gated
modulation) at width 64; the Qwen3 encoder has grouped-query attention and q/k norms at width 32. Its tokenizer is
a byte-level BPE ``tokenizer.json`` with Qwen's pre-tokenizer pattern and chat special tokens, trained here by the
``tokenizers`` library on a small English corpus and written beside the encoder (nothing is downloaded).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from .qwen3_text import SPECIAL_TOKENS, Qwen3Config, Qwen3Encoder
from .zimage_model import CONFIG_METADATA_KEY, ZImageConfig, ZImageModel

# Qwen2's pre-tokenizer split (contractions, letters, single digits, punctuation runs, newlines, spaces).
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                 r"\s*[\r\n]+|\s+(?!\S)|\s+")
CORPUS = ("a photo of a cat sitting on a red chair in the morning light. a painting of a dog running through a green "
          "field under a blue sky! the fox jumps over the lazy dog; a cinematic view of a city street at night, "
          "with rain and bright lights. an old castle on a hill above the sea at sunset. a small bird flies over "
          "the river near the forest. a robot dances in a room with a large window. portrait of a woman with "
          "long hair, detailed, sharp focus, 4k, 1024x1024. user assistant system: describe the image.")

# Z-Image's DiT: 4 heads of 16 channels split (4, 6, 6) over caption-position / height / width; the timestep MLP
# keeps the published hidden width 1024 (diffusers' port fixes it).
TINY_DIT = ZImageConfig(dim=64, n_layers=2, n_refiner_layers=1, n_heads=4, n_kv_heads=4, ffn_dim=170,
                        cap_feat_dim=32, time_mid_dim=1024, adaln_dim=64, axes_dims=(4, 6, 6))


def tiny_qwen3_config(vocab_size: int) -> Qwen3Config:
    return Qwen3Config(vocab_size=vocab_size, hidden_size=TINY_DIT.cap_feat_dim, intermediate_size=64, num_layers=3,
                       num_heads=4, num_kv_heads=2, head_dim=16)


def _is_norm(key: str) -> bool:
    module = key.rsplit(".", 1)[0]
    return "norm" in module.rsplit(".", 1)[-1] or module == "cap_embedder.0"


def _randomize(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in module.state_dict().items():
        if _is_norm(key):
            state[key] = 1.0 + 0.1 * torch.randn(value.shape, generator=generator)
        elif value.ndim > 1:
            state[key] = (torch.randn(value.shape, generator=generator) / value.shape[-1] ** 0.5).contiguous()
        else:
            state[key] = 0.02 * torch.randn(value.shape, generator=generator)
    return state


def write_tiny_zimage(path: str | Path, seed: int = 0) -> None:
    """A Z-Image DiT in ComfyUI's layout (bare keys, as ``diffusion_models/`` files are), ~3 MB."""
    with torch.device("meta"):
        model = ZImageModel(TINY_DIT)
    state = _randomize(model, seed)
    save_file(state, str(path), metadata={CONFIG_METADATA_KEY: json.dumps({"axes_dims": list(TINY_DIT.axes_dims)})})


def tokenizer_json(vocab_size: int = 400) -> str:
    """A byte-level BPE ``tokenizer.json`` shaped like Qwen's: NFC, Qwen2's split, byte-level, chat tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([CORPUS], trainer=trainer)
    return tokenizer.to_str()


def tokenizer_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".tokenizer.json")


def write_tiny_qwen3(path: str | Path, seed: int = 0) -> None:
    """A Qwen3 encoder in the published ``qwen_3_4b`` layout, with its ``<name>.tokenizer.json`` beside it."""
    text = tokenizer_json()
    vocab_size = len(json.loads(text)["model"]["vocab"])
    with torch.device("meta"):
        encoder = Qwen3Encoder(tiny_qwen3_config(vocab_size))
    state = _randomize(encoder, seed + 1)
    state["embed_tokens.weight"] = state["embed_tokens.weight"] * 4.0  # embeddings are not scaled by width
    save_file({f"model.{k}": v for k, v in state.items()}, str(path))
    tokenizer_path(path).write_text(text, encoding="utf-8")
