"""Z-Image files as node values: the DiT as a MODEL (UNETLoader), the Qwen3 encoder and its tokenizer as a CLIP
(CLIPLoader type ``lumina2``).

Both implement the protocols of ``docs/data-types.md``, so the samplers plugin's KSampler and the SD plugin's
CLIPTextEncode run them without knowing Z-Image; both are :class:`hearth.core.models.ModelValue`s (ComfyUI's
ModelPatcher surface) whose weights the process's model manager makes resident, partly when memory is short.
Weights stay memory-mapped in their stored dtype until then; files go through the core's load cache.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    load_into,
    load_once,
    load_state_dict,
    read_header,
)

from . import dit_common
from .qwen3_text import Qwen3Encoder, Qwen3Tokenizer, encode, state_for_encoder, tokenizer_path_for
from .qwen3_text import config_from_shapes as qwen3_config_from_shapes
from .zimage_model import (
    PREFIXES,
    ZImageModel,
    config_from_shapes,
    convert_zimage_diffusers,
    diffusers_module_names,
)

WEIGHT_DTYPES = {"default": None, "fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e4m3fn_fast": torch.float8_e4m3fn,
                 "fp8_e5m2": torch.float8_e5m2}
DEFAULT_SHIFT = 3.0  # ComfyUI's Z-Image sampling settings: shift 3, timestep = sigma
TEXT_LENGTH = 512  # the caption length the memory estimate assumes (a long prompt in the chat template)


def _weights_dtype(module: torch.nn.Module) -> torch.dtype:
    return next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)


class _LatentFormat:
    """ComfyUI's ``latent_formats.Flux``, which Z-Image uses: 16 channels, shift 0.1159, scale 0.3611."""

    family = "z-image"
    latent_channels = dit_common.LATENT_CHANNELS
    latent_dimensions = 2
    scale_factor = dit_common.LATENT_SCALE
    shift_factor = dit_common.LATENT_SHIFT

    def process_in(self, latent: torch.Tensor) -> torch.Tensor:
        return dit_common.process_latent_in(latent)

    def process_out(self, latent: torch.Tensor) -> torch.Tensor:
        return dit_common.process_latent_out(latent)


class _ModelView:
    """ComfyUI's BaseModel seen through a Z-Image MODEL: ``model_sampling``, ``diffusion_model``,
    ``latent_format`` and ``current_patcher``, as much as custom nodes read."""

    def __init__(self, owner: ZImageDiffusionModel) -> None:
        self._owner = owner
        self.current_patcher = owner
        self.diffusion_model = owner.module
        self.latent_format = _LatentFormat()

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


class ZImageDiffusionModel(ModelValue):
    """MODEL: Z-Image's DiT with rectified-flow sampling (shift 3, timestep = sigma, unless patched, e.g. by
    ModelSamplingAuraFlow). Of ``model_options`` it honours the sampler's keys; the DiT runs no block patches."""

    family = "z-image"
    WEIGHT_PREFIX = "diffusion_model."

    def __init__(self, module: ZImageModel, patcher: PatchedModel, source: Any = None,
                 model_options: dict[str, Any] | None = None, object_patches: dict[str, Any] | None = None) -> None:
        super().__init__(patcher, source, model_options=model_options, object_patches=object_patches)
        self.module = module
        self._sampling = dit_common.DiscreteFlowSampling(shift=DEFAULT_SHIFT, multiplier=1.0)

    def lora_key_aliases(self) -> dict[str, Any]:
        """diffusers' module names -> this model's (docs/data-types.md): LoRAs trained on diffusers' Z-Image port
        (``layers.N.attention.to_q``...) patch their rows of the fused ``qkv``."""
        return diffusers_module_names(self.module.config)

    @property
    def sampling(self) -> Any:
        return self.object_patches.get("model_sampling", self._sampling)

    @property
    def model(self) -> _ModelView:
        return _ModelView(self)

    def model_dtype(self) -> torch.dtype:
        return self.compute_dtype()

    @property
    def latent_channels(self) -> int:
        return self.module.config.in_channels

    def process_latent_in(self, raw: torch.Tensor) -> torch.Tensor:
        return dit_common.process_latent_in(raw)

    def process_latent_out(self, scaled: torch.Tensor) -> torch.Tensor:
        return dit_common.process_latent_out(scaled)

    def compute_dtype(self) -> torch.dtype:
        return self.module.compute_dtype or _weights_dtype(self.module)

    def prepare(self, batch_shape: tuple[int, ...]) -> torch.device:
        """Make the DiT resident for a batch of ``batch_shape`` ``[B, 16, H, W]``; the compute device."""
        default_manager().load(self.patcher, input_shape=tuple(batch_shape), dtype=self.compute_dtype())
        return self.patcher.load_device

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor,
                options: Mapping[str, Any] | None = None) -> torch.Tensor:
        """One evaluation: the denoised prediction for scaled latents ``x`` ``[B, 16, H, W]`` at ``sigma``."""
        if x.ndim != 4 or x.shape[1] != self.latent_channels:
            raise ValueError(f"a Z-Image model denoises 16-channel image latents [B, 16, H, W], got "
                             f"{list(x.shape)}: start from EmptySD3LatentImage or a VAE encode with ae.safetensors")
        width = self.module.config.cap_feat_dim
        if cond.ndim != 3 or cond.shape[-1] != width:
            raise ValueError(f"this Z-Image model reads {width}-wide caption features, got a conditioning of shape "
                             f"{list(cond.shape)}: encode the prompt with a Qwen3 text encoder (CLIPLoader type "
                             f"lumina2, e.g. qwen_3_4b.safetensors)")
        if not self.is_ready():
            self.prepare(tuple(x.shape))
        device = self.patcher.load_device
        sampling = self.sampling
        sigma = sigma.reshape(-1).expand(x.shape[0]).to(x.device, torch.float32)
        if cond.shape[0] != x.shape[0]:
            cond = cond.repeat(-(-x.shape[0] // cond.shape[0]), 1, 1)[: x.shape[0]]
        x_in = sampling.calculate_input(sigma, x).to(device)
        # The network's time runs the other way (1 at the clean end) and it predicts the negated velocity.
        t = (1.0 - sampling.timestep(sigma) / sampling.multiplier).to(device)
        with torch.no_grad():
            out = self.module(x_in, t, cond.to(device))
        return sampling.calculate_denoised(sigma, -out.float().to(x.device), x)

    def __repr__(self) -> str:
        return f"<ZImageDiffusionModel {self.patcher.name!r} {self.sampling!r}>"


def _zimage_state(path: Path) -> tuple[Any, dict[str, torch.Tensor]]:
    header = read_header(path)
    prefix = next((p for p in PREFIXES if p + "x_embedder.weight" in header.shapes), None)
    if prefix is None and "all_x_embedder.2-1.weight" in header.shapes:
        state = convert_zimage_diffusers(load_state_dict(path))
    elif prefix is None:
        raise ValueError(f"{path}: not a Z-Image diffusion model (no x_embedder.weight or all_x_embedder.2-1.weight;"
                         f" expected z_image_turbo_bf16.safetensors or a file with its keys)")
    else:
        state = load_state_dict(path, prefix=prefix)
        if prefix:
            state = {k[len(prefix):]: v for k, v in state.items()}
    state = dit_common.dequantize_scaled_fp8(state)
    state.pop("norm_final.weight", None)  # Lumina 2's unused norm, present in some conversions
    config = config_from_shapes({k: tuple(v.shape) for k, v in state.items()}, header.metadata, str(path))
    return config, state


def load_diffusion_model(path: str | Path, weight_dtype: str = "default", device: str | None = None
                         ) -> ZImageDiffusionModel:
    """A Z-Image file (ComfyUI's layout bare or under ``model.diffusion_model.``, or diffusers') as a MODEL."""
    path = Path(path)
    if weight_dtype not in WEIGHT_DTYPES:
        raise ValueError(f"weight_dtype {weight_dtype!r}: choose one of {', '.join(WEIGHT_DTYPES)}")
    load_device = torch.device(device) if device is not None else default_device()

    def make() -> Loaded:
        config, state = _zimage_state(path)
        store = WEIGHT_DTYPES[weight_dtype]
        if store is not None:
            # Matrices only, as ComfyUI stores them: norms, biases and pad tokens keep their precision.
            state = {k: v.to(store) if v.is_floating_point() and v.ndim >= 2 and k.endswith(".weight") else v
                     for k, v in state.items()}
        with torch.device("meta"):
            module = ZImageModel(config)
        load_into(module, state, source=path)
        module.eval().requires_grad_(False)
        dtype = compute_dtype(load_device, (torch.bfloat16, torch.float16, torch.float32))
        stored = _weights_dtype(module)
        if stored != dtype and torch.finfo(stored).bits > torch.finfo(dtype).bits:
            module = module.to(dtype)  # smaller, and no cast per layer
        module.compute_dtype = dtype

        def estimate(input_shape, dtype_):
            if input_shape is None or len(input_shape) != 4:
                return 0
            return module.activation_bytes(tuple(input_shape), dtype_ or dtype, TEXT_LENGTH, load_device)

        patcher = PatchedModel(module, name=path.name, load_device=load_device, memory_estimate=estimate)
        return Loaded(path, module=module, patcher=patcher)

    record = load_once("diffusion_model", path, make, weight_dtype, str(load_device))
    return ZImageDiffusionModel(record.module, record.patcher.clone(), record)


# -- the text encoder --------------------------------------------------------------------------------------------


class ZImageClip(ModelValue):
    """CLIP: Qwen3 and its tokenizer. ``encode`` gives Z-Image's caption features ``[1, L, hidden]`` (the hidden
    state before the last layer, of the prompt in Qwen's chat template) and no pooled output."""

    family = "z-image"

    def __init__(self, encoder: Qwen3Encoder, tokenizer: Qwen3Tokenizer, patcher: PatchedModel,
                 source: Any = None) -> None:
        super().__init__(source=source, patchers={"qwen3_4b": patcher})
        self.encoder, self.tokenizer = encoder, tokenizer

    def key_prefix(self, name: str) -> str:
        return "qwen3_4b.transformer.model."  # ComfyUI's name for Z-Image's text encoder weights

    @property
    def layer(self) -> None:
        return None

    def set_last_layer(self, layer: int) -> ZImageClip:
        raise ValueError("CLIPSetLastLayer: Z-Image's Qwen3 text encoder always gives the layer Z-Image was trained "
                         "on (the one before last); remove the node")

    clip_layer = set_last_layer

    def tokenize(self, text: str) -> dict[str, Any]:
        # ComfyUI tokenizes Z-Image prompts with weights disabled: "(word:1.3)" is plain text here too.
        return {"qwen3_4b": {"ids": self.tokenizer(text)}}

    def encode_from_tokens(self, tokens: Mapping[str, Any], return_pooled: bool = False,
                           return_dict: bool = False) -> Any:
        if "qwen3_4b" not in tokens:
            raise ValueError("these tokens were made by another text encoder's tokenizer; tokenize with this CLIP")
        self.ensure_loaded()
        cond = encode(self.encoder, tokens["qwen3_4b"]["ids"], self.patcher.load_device)
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
        return f"<ZImageClip {self.patcher.name!r}>"


def load_text_encoder(path: str | Path, device: str | None = None) -> ZImageClip:
    """A Qwen3 file and the ``tokenizer.json`` that belongs to it as a CLIP (CLIPLoader type ``lumina2``)."""
    path = Path(path)
    load_device = torch.device(device) if device is not None else default_device()

    def make() -> Loaded:
        config = qwen3_config_from_shapes(read_header(path).shapes, str(path))  # the wrong file named first
        tokenizer = Qwen3Tokenizer(tokenizer_path_for(path))
        state = state_for_encoder(load_state_dict(path))
        with torch.device("meta"):
            encoder = Qwen3Encoder(config)
        load_into(encoder, state, source=path)
        encoder.eval().requires_grad_(False)
        encoder.compute_dtype = compute_dtype(load_device, (torch.bfloat16, torch.float32))
        # One prompt of up to TEXT_LENGTH tokens: per layer the attention scores (heads x L x L, float32), the
        # SwiGLU's two intermediate vectors and a few hidden states per token.
        cfg, length = config, TEXT_LENGTH
        working = cfg.num_heads * length * length * 4 + length * (3 * cfg.intermediate_size + 8 * cfg.hidden_size) * 4
        patcher = PatchedModel(encoder, name=path.name, load_device=load_device, memory_estimate=working)
        return Loaded(path, encoder=encoder, tokenizer=tokenizer, patcher=patcher)

    record = load_once("text_encoder", path, make, str(load_device))
    return ZImageClip(record.encoder, record.tokenizer, record.patcher.clone(), record)


def memory_estimate(model: Any, input_shape: tuple[int, ...] | None, dtype: Any) -> int | None:
    """Working memory of a Z-Image DiT forward on a latent batch (the memory_estimate_for_model hook)."""
    module = getattr(model, "module", None)
    if not isinstance(module, ZImageModel) or input_shape is None or len(input_shape) != 4:
        return None
    device = getattr(model, "load_device", None) or torch.device("cpu")  # where the forward will run
    return module.activation_bytes(tuple(input_shape), dtype or module.compute_dtype or torch.float32, TEXT_LENGTH,
                                   device)

