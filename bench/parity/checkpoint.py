"""Full-size random-weight SD1.5 and SDXL checkpoints in the published layout, a kohya LoRA and an input image.

The parity harness needs the same file on both sides, of the real size (speed and memory are part of the
comparison) and without a download. The key set and shapes come from Hearth's own SD modules built on the meta
device (they use the published names), plus the buffers the published files carry (``position_ids``). Every
tensor is drawn from its own generator, seeded from the harness seed and the key, so a file's bytes depend on
``(family, seed)`` only and no tensor is zero: weights ~ N(0, 1/fan_in), norm scales ~ 1 + N(0, 0.1^2), biases
~ N(0, 0.02^2). Tensors are written one at a time (an SDXL file is 6.9 GB in fp16; it never sits in memory whole).
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import torch

FAMILIES = {"sd15": "sd1", "sdxl": "sdxl"}
CHECKPOINT_NAMES = {"sd15": "parity-sd15.safetensors", "sdxl": "parity-sdxl.safetensors"}
LORA_RANK = 8
LORA_ALPHA = 4.0
_DTYPE_NAMES = {torch.float16: "F16", torch.float32: "F32", torch.int64: "I64"}
_ATTENTION = (".attn1.to_q", ".attn1.to_k", ".attn1.to_v", ".attn1.to_out.0",
              ".attn2.to_q", ".attn2.to_k", ".attn2.to_v", ".attn2.to_out.0")


def checkpoint_shapes(family: str) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Key -> (shape, dtype) of the published ``family`` (``sd15`` or ``sdxl``) checkpoint, sorted by key."""
    from hearth_sd.clip_text import CLIPTextEncoder
    from hearth_sd.families import get_family
    from hearth_sd.formats import UNET_PREFIX, VAE_PREFIX
    from hearth_sd.open_clip_text import OpenCLIPTextEncoder
    from hearth_sd.unet import UNetModel
    from hearth_sd.vae import AutoencoderKL

    spec = get_family(FAMILIES[family])
    parts: list[tuple[str, torch.nn.Module]] = []
    with torch.device("meta"):
        parts.append((UNET_PREFIX, UNetModel(spec.unet)))
        parts.append((VAE_PREFIX, AutoencoderKL(spec.vae)))
        for encoder in spec.text_encoders:
            module_type = CLIPTextEncoder if encoder.layout == "hf" else OpenCLIPTextEncoder
            parts.append((encoder.prefix, module_type(encoder.config)))
    shapes: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}
    for prefix, module in parts:
        for key, value in module.state_dict().items():
            shapes[prefix + key] = (tuple(value.shape), torch.float16)
    for encoder in spec.text_encoders:
        if encoder.layout == "hf":  # the published files keep the HF CLIP's position_ids buffer (int64)
            shapes[encoder.prefix + "text_model.embeddings.position_ids"] = ((1, 77), torch.int64)
    return dict(sorted(shapes.items()))


def _generator(seed: int, key: str) -> torch.Generator:
    # torch's CPU generator keeps 32 bits of its seed, so seed and key are hashed together into 32 bits.
    return torch.Generator().manual_seed(zlib.crc32(f"{seed}:{key}".encode()))


def random_tensor(key: str, shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    """The seeded, non-zero value of ``key``: see the module docstring for the distributions."""
    if dtype == torch.int64:
        return torch.arange(shape[-1], dtype=torch.int64).reshape(shape)
    if key.endswith("logit_scale"):
        return torch.full(shape, math.log(100.0), dtype=dtype)
    gen = _generator(seed, key)
    values = torch.randn(shape, generator=gen, dtype=torch.float32)
    if len(shape) >= 2:
        values *= 1.0 / math.sqrt(math.prod(shape[1:]))
    elif key.endswith(".weight") or key.endswith(".scale"):
        values = 1.0 + 0.1 * values
    else:
        values *= 0.02
    # A draw of exactly zero is vanishingly rare but would break "every tensor non-zero" for a 1-element bias.
    values[values == 0] = 1e-3
    return values.to(dtype)


def _write_streaming(path: Path, shapes: Mapping[str, tuple[tuple[int, ...], torch.dtype]],
                     tensors: Iterator[tuple[str, torch.Tensor]], metadata: Mapping[str, str]) -> None:
    """A .safetensors file written tensor by tensor: the header is known from the shapes alone."""
    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))}
    offset = 0
    for key, (shape, dtype) in shapes.items():
        size = math.prod(shape) * torch.finfo(dtype).bits // 8 if dtype.is_floating_point else math.prod(shape) * 8
        header[key] = {"dtype": _DTYPE_NAMES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as out:
        out.write(struct.pack("<Q", len(blob)))
        out.write(blob)
        for _key, tensor in tensors:
            # reshape(-1): a 0-dim tensor (SDXL's OpenCLIP logit_scale) cannot be viewed as bytes.
            flat = tensor.contiguous().reshape(-1)
            out.write(flat.view(torch.uint8).numpy().tobytes() if tensor.dtype != torch.int64 else flat.numpy().tobytes())
    partial.rename(path)


def make_checkpoint(family: str, path: str | Path, seed: int = 0) -> Path:
    """Write the ``family`` checkpoint to ``path`` (skipped when a file of the right header is already there)."""
    path = Path(path)
    shapes = checkpoint_shapes(family)
    metadata = {"hearth.parity": f"random weights v2, family {family}, seed {seed}",
                "modelspec.prediction_type": "epsilon"}
    if path.exists() and _header_matches(path, shapes, metadata):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = ((key, random_tensor(key, shape, dtype, seed)) for key, (shape, dtype) in shapes.items())
    _write_streaming(path, shapes, tensors, metadata)
    return path


def _header_matches(path: Path, shapes: Mapping[str, tuple[tuple[int, ...], torch.dtype]],
                    metadata: Mapping[str, str]) -> bool:
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    found = {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    return header.get("__metadata__") == dict(metadata) and found == {k: s for k, (s, _) in shapes.items()}


def lora_modules(family: str) -> dict[str, tuple[int, int]]:
    """kohya module name -> (out, in) for every UNet attention projection of ``family`` (128 for SD1.5) and each
    text encoder's first layer's attention: names as kohya's sd-scripts writes them (diffusers paths for an SD1
    UNet, LDM paths for SDXL's, Hugging Face paths for text encoders)."""
    from hearth_lora.names import (
        TE,
        TE1,
        TE2,
        res_blocks_per_level,
        text_encoder_hf_names,
        unet_diffusers_path,
    )
    from hearth_sd.families import get_family
    from hearth_sd.formats import UNET_PREFIX

    shapes = {k: s for k, (s, _) in checkpoint_shapes(family).items()}
    unet = {k[len(UNET_PREFIX):]: s for k, s in shapes.items() if k.startswith(UNET_PREFIX)}
    sdxl = family == "sdxl"
    per_level = res_blocks_per_level(unet)
    modules: dict[str, tuple[int, int]] = {}
    for key, shape in unet.items():
        if key.endswith(".weight") and any(key[:-7].endswith(a) for a in _ATTENTION):
            path = key[:-7] if sdxl else unet_diffusers_path(key[:-7], per_level)
            modules["lora_unet_" + path.replace(".", "_")] = (shape[0], shape[1])
    encoders = get_family(FAMILIES[family]).text_encoders
    parts = (TE1, TE2) if len(encoders) == 2 else (TE,)
    for encoder, part in zip(encoders, parts, strict=True):
        sub = {k[len(encoder.prefix):]: s for k, s in shapes.items() if k.startswith(encoder.prefix)}
        for hf, (key, rows, _) in text_encoder_hf_names(sub).items():
            if hf.startswith("text_model.encoder.layers.0.self_attn.") and hf.endswith("_proj"):
                out = rows[1] - rows[0] if rows else sub[key][0]
                modules[f"lora_{part}_" + hf.replace(".", "_")] = (out, sub[key][1])
    return dict(sorted(modules.items()))


def make_lora(family: str, path: str | Path, seed: int = 0) -> Path:
    """A rank-8 kohya LoRA (fp16, alpha 4) for the ``family`` checkpoint; each module's update is about 5% of the
    weight it adapts, enough to move every pixel."""
    from hearth.core.models import read_header, write_safetensors

    path = Path(path)
    metadata = {"ss_network_dim": str(LORA_RANK), "ss_network_alpha": str(LORA_ALPHA),
                "hearth.parity": f"random LoRA v2, family {family}, seed {seed}"}
    if path.exists() and dict(read_header(path).metadata) == metadata:
        return path
    tensors = {}
    for name, (out, inp) in lora_modules(family).items():
        gen = _generator(seed + 1, name)
        tensors[f"{name}.lora_down.weight"] = (torch.randn(LORA_RANK, inp, generator=gen) / math.sqrt(inp)).half()
        tensors[f"{name}.lora_up.weight"] = (torch.randn(out, LORA_RANK, generator=gen)
                                             * 0.1 / math.sqrt(LORA_RANK)).half()
        tensors[f"{name}.alpha"] = torch.tensor(LORA_ALPHA, dtype=torch.float16)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(tensors, path, metadata)
    return path


def make_input_image(path: str | Path, size: int, seed: int = 0) -> Path:
    """A smooth seeded RGB picture (gradients plus low-frequency noise) for img2img, ``size`` x ``size``."""
    from PIL import Image

    path = Path(path)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    coarse = rng.random((4, 4, 3))
    blur = np.kron(coarse, np.ones((size // 4 + 1, size // 4 + 1, 1)))[:size, :size]
    pixels = np.stack([x, y, 1 - x * y], axis=-1) * 0.6 + blur * 0.4
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((pixels * 255).round().astype(np.uint8)).save(path)
    return path
