"""Wan 2.1 files as node values: the diffusion model as a MODEL, the UMT5 encoder and its tokenizer as a CLIP.

Both implement the protocols of ``docs/data-types.md``, so the samplers plugin's KSampler and the SD plugin's
CLIPTextEncode run them without knowing Wan; both are :class:`hearth.core.models.ModelValue`s (ComfyUI's
ModelPatcher surface). Weights stay memory-mapped in their stored dtype until the process's model manager makes
them resident; files go through the core's load cache, read once while some node output still holds them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from hearth.core.models import (
    Loaded,
    ModelValue,
    PatchedModel,
    compute_dtype,
    default_device,
    default_manager,
    load_once,
    load_state_dict,
    read_header,
)

from .wan_model import (
    CONFIG_METADATA_KEY,
    PREFIXES,
    WanConfig,
    WanModel,
    config_from_shapes,
    dequantize_scaled_fp8,
)
from .wan_sampling import FlowSampling
from .wan_text import UMT5Encoder, UMT5Tokenizer, encode, state_for_encoder, tokenizer_path_for
from .wan_text import config_from_shapes as umt5_config_from_shapes

WEIGHT_DTYPES = {"default": None, "fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e4m3fn_fast": torch.float8_e4m3fn,
                 "fp8_e5m2": torch.float8_e5m2}
LATENT_CHANNELS = 16
TEXT_LENGTH = 512


def _weights_dtype(module: torch.nn.Module) -> torch.dtype:
    return next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)


# -- the diffusion model -----------------------------------------------------------------------------------------


def _latent_stats(like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from .wan_vae import LATENTS_MEAN, LATENTS_STD

    shape = (1, -1) + (1,) * (like.ndim - 2)
    mean = torch.tensor(LATENTS_MEAN, device=like.device, dtype=like.dtype).view(shape)
    std = torch.tensor(LATENTS_STD, device=like.device, dtype=like.dtype).view(shape)
    return mean, std


class _LatentFormat:
    """ComfyUI's ``latent_format`` of Wan 2.1: 16 channels, per-channel statistics, scale factor 1."""

    family = "wan21"  # which family's model classes the view is an instance of (comfy.model_base.WAN21)
    latent_channels = LATENT_CHANNELS
    latent_dimensions = 3
    scale_factor = 1.0

    def __init__(self, owner: WanVideoModel) -> None:
        self._owner = owner

    def process_in(self, latent: torch.Tensor) -> torch.Tensor:
        return self._owner.process_latent_in(latent)

    def process_out(self, latent: torch.Tensor) -> torch.Tensor:
        return self._owner.process_latent_out(latent)


class _ModelView:
    """ComfyUI's BaseModel seen through a Wan MODEL: ``model_sampling``, ``diffusion_model``, ``latent_format``,
    and ``current_patcher`` (the MODEL it views: a pack's ``ModelPatcher(model.model, ...)`` becomes its clone)."""

    def __init__(self, owner: WanVideoModel) -> None:
        self._owner = owner
        self.current_patcher = owner
        self.diffusion_model = owner.module
        self.latent_format = _LatentFormat(owner)

    @property
    def model_sampling(self) -> Any:
        return self._owner.sampling

    def get_dtype(self) -> torch.dtype:
        return self._owner.compute_dtype()

    def process_latent_in(self, latent: torch.Tensor) -> torch.Tensor:
        return self._owner.process_latent_in(latent)

    def process_latent_out(self, latent: torch.Tensor) -> torch.Tensor:
        return self._owner.process_latent_out(latent)

    def memory_required(self, input_shape: tuple[int, ...]) -> int:
        return self._owner.patcher.memory_required(tuple(input_shape), self._owner.compute_dtype())


# Wan's module paths as diffusers' WanTransformer3DModel names them (the names diffusers-trained LoRAs use).
_DIFFUSERS_NAMES = tuple((re.compile(ours), theirs) for ours, theirs in (
    (r"time_embedding\.0", "condition_embedder.time_embedder.linear_1"),
    (r"time_embedding\.2", "condition_embedder.time_embedder.linear_2"),
    (r"text_embedding\.0", "condition_embedder.text_embedder.linear_1"),
    (r"text_embedding\.2", "condition_embedder.text_embedder.linear_2"),
    (r"time_projection\.1", "condition_embedder.time_proj"),
    (r"head\.head", "proj_out"),
    (r"img_emb\.proj\.0", "condition_embedder.image_embedder.norm1"),
    (r"img_emb\.proj\.1", "condition_embedder.image_embedder.ff.net.0.proj"),
    (r"img_emb\.proj\.3", "condition_embedder.image_embedder.ff.net.2"),
    (r"img_emb\.proj\.4", "condition_embedder.image_embedder.norm2"),
    (r"blocks\.(\d+)\.self_attn\.([qkv])", r"blocks.\1.attn1.to_\2"),
    (r"blocks\.(\d+)\.self_attn\.o", r"blocks.\1.attn1.to_out.0"),
    (r"blocks\.(\d+)\.self_attn\.(norm_[qk])", r"blocks.\1.attn1.\2"),
    (r"blocks\.(\d+)\.cross_attn\.([qkv])", r"blocks.\1.attn2.to_\2"),
    (r"blocks\.(\d+)\.cross_attn\.o", r"blocks.\1.attn2.to_out.0"),
    (r"blocks\.(\d+)\.cross_attn\.(norm_[qk])", r"blocks.\1.attn2.\2"),
    (r"blocks\.(\d+)\.cross_attn\.k_img", r"blocks.\1.attn2.add_k_proj"),
    (r"blocks\.(\d+)\.cross_attn\.v_img", r"blocks.\1.attn2.add_v_proj"),
    (r"blocks\.(\d+)\.cross_attn\.norm_k_img", r"blocks.\1.attn2.norm_added_k"),
    (r"blocks\.(\d+)\.norm3", r"blocks.\1.norm2"),  # diffusers swaps the names of the two block norms
    (r"blocks\.(\d+)\.ffn\.0", r"blocks.\1.ffn.net.0.proj"),
    (r"blocks\.(\d+)\.ffn\.2", r"blocks.\1.ffn.net.2"),
    (r"blocks\.(\d+)\.modulation", r"blocks.\1.scale_shift_table"),
    (r"head\.modulation", "scale_shift_table"),
))


def diffusers_module_names(keys: Iterable[str]) -> dict[str, str]:
    """diffusers' name of each module (with a weight or bias) or bare parameter (a modulation table) among Wan
    state-dict ``keys`` -> Wan's own name."""
    aliases: dict[str, str] = {}
    for key in keys:
        path, _, leaf = key.rpartition(".")
        if leaf not in ("weight", "bias"):
            path = key
        for pattern, theirs in _DIFFUSERS_NAMES:
            if pattern.fullmatch(path):
                aliases[pattern.sub(theirs, path)] = path
                break
    return aliases


class WanVideoModel(ModelValue):
    """MODEL: a Wan 2.1 T2V diffusion transformer with flow-matching sampling (shift 8 unless patched).

    Of ``model_options`` it honours the sampler's keys (through the samplers plugin); the transformer runs no
    attention or block patches.
    """

    family = "wan21"
    WEIGHT_PREFIX = "diffusion_model."

    def __init__(self, module: WanModel, patcher: PatchedModel, source: Any = None,
                 model_options: dict[str, Any] | None = None, object_patches: dict[str, Any] | None = None) -> None:
        super().__init__(patcher, source, model_options=model_options, object_patches=object_patches)
        self.module = module
        self._sampling = FlowSampling()

    def lora_key_aliases(self) -> dict[str, str]:
        """diffusers' module names -> this model's (docs/data-types.md): LoRAs trained on diffusers' Wan port."""
        return diffusers_module_names(self.module.state_dict().keys())

    @property
    def sampling(self) -> Any:
        return self.object_patches.get("model_sampling", self._sampling)

    @property
    def model(self) -> _ModelView:
        """ComfyUI's ``model_patcher.model``, as much of it as custom nodes read."""
        return _ModelView(self)

    def model_dtype(self) -> torch.dtype:
        return self.compute_dtype()

    @property
    def latent_channels(self) -> int:
        return self.module.config.in_dim

    def process_latent_in(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw VAE latents to the normalised ones the transformer denoises (Wan 2.1's per-channel statistics)."""
        mean, std = _latent_stats(raw)
        return (raw - mean) / std

    def process_latent_out(self, scaled: torch.Tensor) -> torch.Tensor:
        mean, std = _latent_stats(scaled)
        return scaled * std + mean

    def compute_dtype(self) -> torch.dtype:
        return self.module.compute_dtype or _weights_dtype(self.module)

    def prepare(self, batch_shape: tuple[int, ...]) -> torch.device:
        """Make the transformer resident for a batch of ``batch_shape`` ``[B, C, T, H, W]``; the compute device."""
        default_manager().load(self.patcher, input_shape=tuple(batch_shape), dtype=self.compute_dtype())
        return self.patcher.load_device

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor,
                options: Mapping[str, Any] | None = None) -> torch.Tensor:
        """One evaluation: the denoised prediction for normalised latents ``x`` ``[B, 16, T, H, W]`` at ``sigma``."""
        if x.ndim != 5:
            raise ValueError(f"a Wan model denoises video latents [B, 16, T, H, W], got {list(x.shape)}: start from "
                             f"EmptyHunyuanLatentVideo or a Wan VAE encode")
        if not self.is_ready():
            self.prepare(tuple(x.shape))
        device = self.patcher.load_device
        sampling = self.sampling
        sigma = sigma.reshape(-1).expand(x.shape[0]).to(x.device, torch.float32)
        if cond.shape[0] != x.shape[0]:
            cond = cond.repeat(-(-x.shape[0] // cond.shape[0]), 1, 1)[: x.shape[0]]
        if cond.shape[-1] != self.module.config.text_dim:
            raise ValueError(f"this Wan model reads {self.module.config.text_dim}-wide text, got "
                             f"{cond.shape[-1]}: encode the prompt with a UMT5 text encoder (CLIPLoader type wan)")
        x_in = sampling.calculate_input(sigma, x).to(device)
        t = sampling.timestep(sigma).to(device)
        with torch.no_grad():
            out = self.module(x_in, t, cond.to(device))
        return sampling.calculate_denoised(sigma, out.float().to(x.device), x)

    def __repr__(self) -> str:
        return f"<WanVideoModel {self.patcher.name!r} {self.sampling!r}>"


def _wan_config(path: Path) -> tuple[WanConfig, str]:
    header = read_header(path)
    for prefix in PREFIXES:
        if prefix + "patch_embedding.weight" in header.shapes:
            break
    else:
        raise ValueError(f"{path}: not a Wan 2.1 diffusion model (no patch_embedding.weight)")
    shapes = {k[len(prefix):]: v for k, v in header.shapes.items() if k.startswith(prefix)}
    heads = json.loads(header.metadata.get(CONFIG_METADATA_KEY, "{}")).get("num_heads")
    return config_from_shapes(shapes, heads, str(path)), prefix


def load_diffusion_model(path: str | Path, weight_dtype: str = "default", device: str | None = None
                         ) -> WanVideoModel:
    """A Wan 2.1 T2V file (bare keys, or under ``model.diffusion_model.``) as a MODEL (UNETLoader)."""
    path = Path(path)
    if weight_dtype not in WEIGHT_DTYPES:
        raise ValueError(f"weight_dtype {weight_dtype!r}: choose one of {', '.join(WEIGHT_DTYPES)}")
    load_device = torch.device(device) if device is not None else default_device()

    def make() -> Loaded:
        config, prefix = _wan_config(path)
        state = load_state_dict(path, prefix=prefix)
        if prefix:
            state = {k[len(prefix):]: v for k, v in state.items()}
        state = dequantize_scaled_fp8(state)
        store = WEIGHT_DTYPES[weight_dtype]
        if store is not None:
            # Matrices only, as ComfyUI stores them: norms, biases and modulation vectors keep their precision.
            state = {k: v.to(store) if v.is_floating_point() and v.ndim >= 2 and k.endswith(".weight") else v
                     for k, v in state.items()}
        with torch.device("meta"):
            module = WanModel(config)
        from hearth.core.models import load_into

        load_into(module, state, source=path)
        module.eval().requires_grad_(False)
        dtype = compute_dtype(load_device, (torch.bfloat16, torch.float16, torch.float32))
        stored = _weights_dtype(module)
        if stored != dtype and torch.finfo(stored).bits > torch.finfo(dtype).bits:
            module = module.to(dtype)  # smaller, and no cast per layer
        module.compute_dtype = dtype

        def estimate(input_shape, dtype_):
            if input_shape is None or len(input_shape) != 5:
                return 0
            return module.activation_bytes(tuple(input_shape), dtype_ or dtype, TEXT_LENGTH, load_device)

        patcher = PatchedModel(module, name=path.name, load_device=load_device, memory_estimate=estimate)
        return Loaded(path, module=module, patcher=patcher)

    record = load_once("diffusion_model", path, make, weight_dtype, str(load_device))
    return WanVideoModel(record.module, record.patcher.clone(), record)


# -- the text encoder --------------------------------------------------------------------------------------------


class WanClip(ModelValue):
    """CLIP: UMT5 and its tokenizer. ``encode`` gives Wan's context ``[1, 512, d_model]`` and no pooled output."""

    family = "wan"

    def __init__(self, encoder: UMT5Encoder, tokenizer: UMT5Tokenizer, patcher: PatchedModel,
                 source: Any = None) -> None:
        super().__init__(source=source, patchers={"umt5": patcher})
        self.encoder, self.tokenizer = encoder, tokenizer

    @property
    def patchers(self) -> dict[str, PatchedModel]:
        return self._patchers

    def key_prefix(self, name: str) -> str:
        return "umt5xxl.transformer."  # ComfyUI's name for Wan's text encoder weights

    @property
    def layer(self) -> None:
        return None

    def set_last_layer(self, layer: int) -> WanClip:
        raise ValueError("CLIPSetLastLayer: Wan's UMT5 text encoder always reads its last layer; remove the node")

    clip_layer = set_last_layer

    def tokenize(self, text: str) -> dict[str, Any]:
        ids, mask, weights = self.tokenizer.weighted(text)
        return {"umt5": {"ids": ids, "mask": mask, "weights": weights}}

    def encode_from_tokens(self, tokens: Mapping[str, Any], return_pooled: bool = False,
                           return_dict: bool = False) -> Any:
        if "umt5" not in tokens:
            raise ValueError("these tokens were made by another text encoder's tokenizer; tokenize with this CLIP")
        self.ensure_loaded()
        found = tokens["umt5"]
        cond = encode(self.encoder, found["ids"], found["mask"], self.patcher.load_device, found.get("weights"),
                      self.tokenizer.eos, self.tokenizer.pad)
        if return_dict:
            return {"cond": cond, "pooled_output": None}
        return (cond, None) if return_pooled else cond

    def encode_from_tokens_scheduled(self, tokens: Mapping[str, Any],
                                     add_dict: Mapping[str, Any] | None = None) -> list[list[Any]]:
        """The CONDITIONING of ``tokens``: ``[[cond, {"pooled_output": None, **add_dict}]]`` (ComfyUI's form)."""
        return [[self.encode_from_tokens(tokens), {"pooled_output": None, **(add_dict or {})}]]

    def encode(self, text: str) -> tuple[torch.Tensor, None]:
        return self.encode_from_tokens(self.tokenize(text), return_pooled=True)

    def __repr__(self) -> str:
        return f"<WanClip {self.patcher.name!r}>"


def load_text_encoder(path: str | Path, device: str | None = None) -> WanClip:
    """A UMT5 file and the ``tokenizer.json`` beside it as a CLIP (CLIPLoader type ``wan``)."""
    path = Path(path)
    load_device = torch.device(device) if device is not None else default_device()

    def make() -> Loaded:
        config = umt5_config_from_shapes(read_header(path).shapes, str(path))  # the wrong file named first
        tokenizer = UMT5Tokenizer(tokenizer_path_for(path))
        state = state_for_encoder(load_state_dict(path))
        with torch.device("meta"):
            encoder = UMT5Encoder(config)
        from hearth.core.models import load_into

        load_into(encoder, state, source=path)
        encoder.eval().requires_grad_(False)
        # UMT5 overflows in float16; bfloat16 where the device runs it well, float32 elsewhere.
        encoder.compute_dtype = compute_dtype(load_device, (torch.bfloat16, torch.float32))
        cfg = config
        # Two prompts' worth (a weighted prompt encodes the empty one beside it) of 512 tokens: per layer the
        # position bias and the float32 scores and weights (heads x L x L each), the gated FFN and a few states.
        length = 2 * TEXT_LENGTH
        working = 3 * cfg.num_heads * TEXT_LENGTH * length * 4 + length * (3 * cfg.d_ff + 8 * cfg.d_model) * 4
        patcher = PatchedModel(encoder, name=path.name, load_device=load_device, memory_estimate=working)
        return Loaded(path, encoder=encoder, tokenizer=tokenizer, patcher=patcher)

    record = load_once("text_encoder", path, make, str(load_device))
    return WanClip(record.encoder, record.tokenizer, record.patcher.clone(), record)


def memory_estimate(model: Any, input_shape: tuple[int, ...] | None, dtype: Any) -> int | None:
    """Working memory of a Wan transformer forward on a video latent batch (the memory_estimate_for_model hook)."""
    module = getattr(model, "module", None)
    if not isinstance(module, WanModel) or input_shape is None or len(input_shape) != 5:
        return None
    return module.activation_bytes(tuple(input_shape), dtype or module.compute_dtype or torch.float32, TEXT_LENGTH,
                                   getattr(model, "load_device", "cpu"))



