"""Tiny Wan 2.1 models with random weights in the real file layouts, for tests, demos and benchmarks.

The diffusion model keeps every structural feature (3D patches, rotary split over time/height/width, modulation,
cross-attention) at width 32; the UMT5 encoder has its per-layer relative position bias at width 32; the
tokenizer is a word-level ``tokenizer.json`` over a small English vocabulary, written beside the encoder.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from .wan_model import CONFIG_METADATA_KEY, WanConfig, WanModel
from .wan_text import UMT5Config, UMT5Encoder

WORDS = ("a an the of and in on with at by to from under over through into near beside above below "
         "cat dog fox bird fish horse cow owl bear wolf rabbit deer duck frog bee butterfly dragon robot person "
         "man woman child girl boy car train boat plane bicycle tree flower forest river lake sea ocean sky cloud "
         "rain snow sun moon star mountain hill field road city street house castle bridge window door room "
         "red orange yellow green blue purple pink white black brown grey gold silver bright dark "
         "big small tall little old young happy sad fast slow quiet loud cold warm hot soft "
         "runs walks flies swims jumps sits sleeps dances plays eats looks falls rises glows moves turns "
         "running walking flying swimming jumping sitting dancing playing "
         "photo painting video cinematic realistic detailed sharp blurry style scene view close shot wide "
         "morning evening night day sunset sunrise light shadow fire water ice wind grass leaves stone "
         "is are very beautiful , . !").split()

TINY_DIT = WanConfig(dim=32, ffn_dim=64, num_heads=2, num_layers=2, in_dim=16, out_dim=16, text_dim=32, freq_dim=32)
TINY_UMT5_LAYERS = 2


def tiny_umt5_config(vocab_size: int) -> UMT5Config:
    return UMT5Config(vocab_size=vocab_size, d_model=TINY_DIT.text_dim, d_kv=8, d_ff=64,
                      num_layers=TINY_UMT5_LAYERS, num_heads=4, relative_attention_num_buckets=32)


def _randomize(module: torch.nn.Module, seed: int, scale: float) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in module.state_dict().items():
        if key.endswith("norm_q.weight") or key.endswith("norm_k.weight") or key.endswith("layer_norm.weight") \
                or key.endswith("final_layer_norm.weight"):
            state[key] = 1.0 + 0.1 * torch.randn(value.shape, generator=generator)
        else:
            fan_in = value.shape[-1] if value.ndim > 1 else 1
            std = scale / max(fan_in, 1) ** 0.5 if value.ndim > 1 else 0.02
            state[key] = (torch.randn(value.shape, generator=generator) * std).contiguous()
    return state


def write_tiny_wan_diffusion_model(path: str | Path, seed: int = 0) -> None:
    """A Wan 2.1 T2V diffusion model (bare keys, as ``diffusion_models/`` files are), ~60 KB."""
    with torch.device("meta"):
        model = WanModel(TINY_DIT)
    state = _randomize(model, seed, 1.0)
    save_file(state, str(path), metadata={CONFIG_METADATA_KEY: json.dumps({"num_heads": TINY_DIT.num_heads})})


def tokenizer_json() -> str:
    """A word-level ``tokenizer.json`` with UMT5's special ids: ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer.to_str()


def tokenizer_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".tokenizer.json")


def write_tiny_umt5(path: str | Path, seed: int = 0) -> None:
    """A UMT5 text encoder in the umt5_xxl layout, with its ``<name>.tokenizer.json`` beside it."""
    text = tokenizer_json()
    vocab_size = len(json.loads(text)["model"]["vocab"])
    with torch.device("meta"):
        encoder = UMT5Encoder(tiny_umt5_config(vocab_size))
    state = _randomize(encoder, seed + 1, 1.0)
    state["shared.weight"] = state["shared.weight"] * 8.0  # T5 embeddings are not scaled down by width
    save_file(state, str(path))
    tokenizer_path(path).write_text(text, encoding="utf-8")
