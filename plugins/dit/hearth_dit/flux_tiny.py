"""Tiny Flux.1 transformers with random weights in the real file layouts, for tests, demos and benchmarks.

Every structural feature is kept (2x2 patches, double- and single-stream blocks, per-head q/k norm, the 3-axis
RoPE, guidance embedding for dev) at width 32 with heads of 16, so a file is ~200 KB and a forward takes
milliseconds. The text and pooled widths (32) are those of the hearth-dit tiny T5-XXL and CLIP-L encoders.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from .flux_convert import to_diffusers
from .flux_model import CONFIG_METADATA_KEY, FluxConfig, FluxTransformer

TINY_FLUX = FluxConfig(vec_in_dim=32, context_in_dim=32, hidden_size=32, num_heads=2, depth=2, depth_single_blocks=2,
                       axes_dim=(4, 6, 6), guidance_embed=True)
TINY_FLUX_SCHNELL = FluxConfig(**{**TINY_FLUX.__dict__, "guidance_embed": False})


def tiny_state(config: FluxConfig = TINY_FLUX, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights of ``config`` in the published layout: matrices ~ N(0, 1/fan_in), RMS scales near 1."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in FluxTransformer(config).state_dict().items()}
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith(".scale"):
            state[key] = 1.0 + 0.1 * torch.randn(shape, generator=generator)
        elif len(shape) > 1:
            state[key] = torch.randn(shape, generator=generator) / shape[-1] ** 0.5
        else:
            state[key] = 0.05 * torch.randn(shape, generator=generator)
    return state


def _metadata(config: FluxConfig) -> dict[str, str]:
    return {CONFIG_METADATA_KEY: json.dumps({"axes_dim": list(config.axes_dim)})}


def write_tiny_flux(path: str | Path, seed: int = 0, config: FluxConfig = TINY_FLUX, prefix: str = "") -> None:
    """A Flux.1 transformer in black-forest-labs' published layout (bare keys, as diffusion_models files are)."""
    state = {prefix + k: v for k, v in tiny_state(config, seed).items()}
    save_file(state, str(path), metadata=_metadata(config))


def write_tiny_flux_schnell(path: str | Path, seed: int = 0) -> None:
    """Flux.1 schnell's shape: no guidance embedding."""
    write_tiny_flux(path, seed, TINY_FLUX_SCHNELL)


def write_tiny_flux_diffusers(path: str | Path, seed: int = 0, config: FluxConfig = TINY_FLUX) -> None:
    """The same transformer as :func:`write_tiny_flux` in diffusers' ``FluxTransformer2DModel`` layout."""
    state = to_diffusers(tiny_state(config, seed), config.hidden_size)
    save_file(state, str(path), metadata=_metadata(config))


def write_tiny_flux_scaled_fp8(path: str | Path, seed: int = 0, config: FluxConfig = TINY_FLUX) -> None:
    """ComfyUI's scaled-fp8 layout: every block matrix float8_e4m3fn with a per-tensor ``scale_weight`` (and an
    unused ``scale_input``), the ``scaled_fp8`` marker, the rest as it is."""
    state = {}
    for key, value in tiny_state(config, seed).items():
        if value.ndim == 2 and key.startswith(("double_blocks.", "single_blocks.")):
            scale = value.abs().max() / 448.0  # float8_e4m3fn's largest value
            state[key] = (value / scale).to(torch.float8_e4m3fn)
            state[key[: -len("weight")] + "scale_weight"] = scale.reshape(1).float()
            state[key[: -len("weight")] + "scale_input"] = torch.ones(1)
        else:
            state[key] = value
    state["scaled_fp8"] = torch.zeros(0, dtype=torch.float8_e4m3fn)
    save_file(state, str(path), metadata=_metadata(config))


def write_tiny_flux_lora(path: str | Path, seed: int = 0, config: FluxConfig = TINY_FLUX) -> None:
    """A rank-4 LoRA in kohya's naming (``lora_unet_double_blocks_0_img_attn_qkv``...) on every block matrix."""
    with torch.device("meta"):
        shapes = {k[: -len(".weight")]: v.shape for k, v in FluxTransformer(config).state_dict().items()
                  if k.endswith(".weight") and v.ndim == 2 and k.startswith(("double_blocks.", "single_blocks."))}
    generator = torch.Generator().manual_seed(seed)
    rank, tensors = 4, {}
    for module, (out, inner) in shapes.items():
        name = "lora_unet_" + module.replace(".", "_")
        tensors[f"{name}.lora_down.weight"] = torch.randn(rank, inner, generator=generator) / inner ** 0.5
        tensors[f"{name}.lora_up.weight"] = torch.randn(out, rank, generator=generator) * 0.1
        tensors[f"{name}.alpha"] = torch.tensor(float(rank))
    save_file(tensors, str(path), metadata={"ss_base_model_version": "flux1_tiny"})
