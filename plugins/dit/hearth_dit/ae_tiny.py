"""Tiny random files of Flux's shared parts in their published layouts (``comfy models make-tiny``): the 16-channel
autoencoder, T5-XXL v1.1 (with a tokenizer.json trained here on a few sentences) and CLIP-L.

They are for tests and smoke runs: every name and layout is the real one, every width is small.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from .ae_model import AEConfig, FluxAutoencoder
from .clip_model import HEADS_METADATA_KEY, CLIPTextConfig, CLIPTextEncoder
from .t5_model import T5Config, T5Encoder

TINY_AE = AEConfig(ch=32, ch_mult=(1, 1, 2, 2), num_res_blocks=1)
TINY_T5 = T5Config(vocab_size=256, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4)
TINY_CLIP = CLIPTextConfig(hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2)

_CORPUS = ["a photograph of an astronaut riding a horse on the moon", "a cat sitting on a red chair, oil painting",
           "a cozy cabin in snowy mountains at dusk, warm light", "portrait of a woman, studio lighting, 85mm",
           "a bowl of fruit on a wooden table", "the quick brown fox jumps over the lazy dog",
           "cinematic still of a city street in the rain at night", "hello world, tiny models for tests"]


def _random(module: torch.nn.Module, seed: int, std: float = 0.1) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in module.state_dict().items():
        if "norm" in key.rsplit(".", 2)[-2] and key.endswith(".weight"):  # norms scale around 1
            state[key] = (1 + 0.1 * torch.randn(value.shape, generator=generator)).contiguous()
        else:
            state[key] = (std * torch.randn(value.shape, generator=generator)).contiguous()
    return state


def tiny_flux_vae_state(seed: int = 0) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        module = FluxAutoencoder(TINY_AE)
    return _random(module, seed)


def write_tiny_flux_vae(path: str | Path, seed: int = 0) -> None:
    """The autoencoder in the published ``ae.safetensors`` layout: 32 channels wide, 8x down, 16 latent channels."""
    save_file(tiny_flux_vae_state(seed), str(path))


def write_t5_tokenizer(path: str | Path) -> None:
    """A SentencePiece-style (Unigram, metaspace) ``tokenizer.json`` with T5's specials ``<pad>`` 0, ``</s>`` 1,
    ``<unk>`` 2, trained on a few sentences: fewer than :data:`TINY_T5`'s 256 tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=200, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>")
    tokenizer.train_from_iterator(_CORPUS, trainer)
    tokenizer.save(str(path))


def write_tiny_t5xxl(path: str | Path, seed: int = 0) -> None:
    """T5 v1.1 in the published ``t5xxl_fp16.safetensors`` layout, and ``<stem>.tokenizer.json`` beside it."""
    path = Path(path)
    with torch.device("meta"):
        module = T5Encoder(TINY_T5)
    save_file(_random(module, seed, std=0.3), str(path))
    write_t5_tokenizer(path.with_name(path.stem + ".tokenizer.json"))


def write_tiny_clip_l(path: str | Path, seed: int = 0) -> None:
    """CLIP-L's text model in the published ``clip_l.safetensors`` layout (its full 49,408-token vocabulary, 32
    wide); the tokenizer's merges come from the installed open-clip-torch (or a copy beside the file)."""
    with torch.device("meta"):
        module = CLIPTextEncoder(TINY_CLIP)
    save_file(_random(module, seed), str(path), metadata={HEADS_METADATA_KEY: str(TINY_CLIP.num_heads)})


def write_tiny_flux_checkpoint(path: str | Path, seed: int = 0) -> None:
    """An all-in-one Flux.1 schnell checkpoint in Comfy-Org's layout (CheckpointLoaderSimple):
    ``model.diffusion_model.*``, ``text_encoders.t5xxl.transformer.*``, ``text_encoders.clip_l.transformer.*`` and
    ``vae.*``, with the T5 tokenizer beside it as ``<stem>.tokenizer.json``."""
    import json
    import tempfile

    from safetensors.torch import load_file

    from .flux_tiny import TINY_FLUX_SCHNELL, write_tiny_flux

    path = Path(path)
    with tempfile.TemporaryDirectory() as folder:
        parts = Path(folder)
        write_tiny_flux(parts / "dit.safetensors", seed, TINY_FLUX_SCHNELL, prefix="model.diffusion_model.")
        write_tiny_t5xxl(parts / "t5.safetensors", seed + 1)
        write_tiny_clip_l(parts / "clip.safetensors", seed + 2)
        state = load_file(str(parts / "dit.safetensors"))
        with open(parts / "dit.safetensors", "rb") as handle:  # the transformer's metadata: its RoPE split
            header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
        state |= {f"text_encoders.t5xxl.transformer.{k}": v for k, v in load_file(str(parts / "t5.safetensors")).items()}
        state |= {f"text_encoders.clip_l.transformer.{k}": v
                  for k, v in load_file(str(parts / "clip.safetensors")).items()}
        state |= {f"vae.{k}": v for k, v in tiny_flux_vae_state(seed + 3).items()}
        metadata = {**header.get("__metadata__", {}), HEADS_METADATA_KEY: str(TINY_CLIP.num_heads)}
        save_file(state, str(path), metadata=metadata)
        (parts / "t5.tokenizer.json").replace(path.with_name(path.stem + ".tokenizer.json"))
