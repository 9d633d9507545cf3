"""Flux.1 transformer files as a MODEL: the published layout (bare or under ``model.diffusion_model.``), diffusers'
layout (converted on load), bf16 files and ComfyUI's scaled-fp8 files.

Scaled fp8 is dequantized on the fly: each fp8 matrix stays fp8 with its per-tensor ``scale_weight`` and a
:class:`ScaledLinear` multiplies the scale in as the layer runs. The 12B transformer is 12 GB that way instead of
24 GB in bf16, which is the reason people download the fp8 file at all. A LoRA on such a layer is computed on the
dequantized weight and divided by the scale again before it is stored (:func:`_rescale_patches`).

The MODEL implements docs/data-types.md's protocol, so the samplers plugin's KSampler / SamplerCustomAdvanced run
it; its default model sampling is ComfyUI's for the variant: Flux's resolution shift (mu 1.15) for dev, plain
rectified flow (timestep = sigma) for schnell.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

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
from .dit_common import DiscreteFlowSampling, FluxShiftSampling, Linear, is_scaled_fp8
from .flux_convert import convert_flux_diffusers, diffusers_lora_aliases, is_diffusers_layout
from .flux_model import PREFIXES, FluxConfig, FluxTransformer, config_from_shapes

WEIGHT_DTYPES = {"default": None, "fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e4m3fn_fast": torch.float8_e4m3fn,
                 "fp8_e5m2": torch.float8_e5m2}
DEFAULT_GUIDANCE = 3.5  # ComfyUI's Flux.extra_conds when the conditioning has no "guidance"
TEXT_LENGTH = 512  # ComfyUI pads Flux dev's T5 prompt to 512 tokens (schnell: 256); the estimate takes the larger


class ScaledLinear(Linear):
    """A Linear whose fp8 weight is multiplied by its per-tensor ``scale_weight`` as it runs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.to(device=x.device, dtype=x.dtype)
        scale = self.scale_weight.to(device=x.device, dtype=x.dtype)
        # In place on the cast copy (one temporary, not two), never on the stored weight itself.
        weight = weight * scale if weight.data_ptr() == self.weight.data_ptr() else weight.mul_(scale)
        return F.linear(x, weight, None if self.bias is None else self.bias.to(device=x.device, dtype=x.dtype))


def _use_scales(module: FluxTransformer, scales: Mapping[str, torch.Tensor]) -> None:
    """Make the Linear layers that have a ``scale_weight`` in the file :class:`ScaledLinear`s (before loading)."""
    for key, scale in scales.items():
        layer = module.get_submodule(key[: -len(".scale_weight")])
        layer.__class__ = ScaledLinear
        layer.register_buffer("scale_weight", torch.empty(scale.shape, dtype=scale.dtype, device="meta"))


class _Rescaled:
    """A weight patch on a scaled-fp8 weight: applied to ``weight * scale``, stored divided by ``scale`` again."""

    def __init__(self, value: Any, scale: torch.Tensor) -> None:
        self.value, self.scale = value, scale

    def __call__(self, weight: torch.Tensor, strength: float) -> torch.Tensor:
        scale = self.scale.to(device=weight.device, dtype=torch.float32)
        real = weight * scale
        if isinstance(self.value, torch.Tensor):
            real = real + strength * self.value.to(device=weight.device, dtype=torch.float32).reshape(real.shape)
        else:
            real = self.value(real, strength)
        return real / scale


class _LatentFormat:
    """ComfyUI's ``latent_formats.Flux``: 16 channels, scale 0.3611, shift 0.1159."""

    family = "flux"
    latent_channels = dit_common.LATENT_CHANNELS
    latent_dimensions = 2
    scale_factor = dit_common.LATENT_SCALE
    shift_factor = dit_common.LATENT_SHIFT

    def process_in(self, latent: torch.Tensor) -> torch.Tensor:
        return dit_common.process_latent_in(latent)

    def process_out(self, latent: torch.Tensor) -> torch.Tensor:
        return dit_common.process_latent_out(latent)


class _ModelView:
    """ComfyUI's BaseModel seen through a Flux MODEL (``model_sampling``, ``diffusion_model``, ``latent_format``)."""

    def __init__(self, owner: FluxModel) -> None:
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


def default_sampling(config: FluxConfig) -> Any:
    """ComfyUI's model sampling of the variant: dev (guidance embedded) ModelSamplingFlux at mu 1.15; schnell a
    discrete flow with shift 1 and multiplier 1."""
    return FluxShiftSampling(1.15) if config.guidance_embed else DiscreteFlowSampling(shift=1.0, multiplier=1.0)


class FluxModel(ModelValue):
    """MODEL: a Flux.1 transformer with rectified-flow sampling.

    Reads from the conditioning options ``pooled_output`` (CLIP-L's pooled vector), ``guidance`` (FluxGuidance;
    3.5 when absent and none at all when None, as ComfyUI; schnell has no guidance embedding and ignores it) and
    Flux Kontext's ``reference_latents`` / ``reference_latents_method`` (ReferenceLatent and
    FluxKontextMultiReferenceLatentMethod: raw latents of the images to edit, attended to beside the latent).
    """

    family = "flux"
    WEIGHT_PREFIX = "diffusion_model."

    def __init__(self, module: FluxTransformer, patcher: PatchedModel, source: Any = None,
                 model_options: dict[str, Any] | None = None, object_patches: dict[str, Any] | None = None) -> None:
        super().__init__(patcher, source, model_options=model_options, object_patches=object_patches)
        self.module = module
        self._sampling = default_sampling(module.config)

    def lora_key_aliases(self) -> dict[str, Any]:
        """diffusers' module names -> this model's: a path, or ``(path, (start, end))`` for the rows of a fused
        weight (diffusers' ``to_q`` is the first third of ``img_attn.qkv``)."""
        cfg = self.module.config
        return diffusers_lora_aliases(self.module.state_dict().keys(), cfg.hidden_size, cfg.mlp_hidden)

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
        return self.module._dtype()

    def _rescale_patches(self) -> None:
        """Wrap this clone's patches on scaled-fp8 weights (once) so they act on the dequantized weight."""
        scales = {key[: -len("scale_weight")] + "weight": t for key, t in self.module.state_dict().items()
                  if key.endswith(".scale_weight")}
        for key, patches in self.patcher.patches.items():
            if key in scales:
                self.patcher.patches[key] = [p if isinstance(p.value, _Rescaled) else
                                             dataclasses.replace(p, value=_Rescaled(p.value, scales[key]))
                                             for p in patches]

    def prepare(self, batch_shape: tuple[int, ...]) -> torch.device:
        """Make the transformer resident (patches on) for a latent batch ``[B, 16, H, W]``; the compute device."""
        self._rescale_patches()
        default_manager().load(self.patcher, input_shape=tuple(batch_shape), dtype=self.compute_dtype())
        return self.patcher.load_device

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor,
                options: Mapping[str, Any] | None = None) -> torch.Tensor:
        """One evaluation: the denoised prediction for scaled latents ``x`` ``[B, 16, H, W]`` at ``sigma``."""
        cfg = self.module.config
        options = options or {}
        if x.ndim != 4 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"a Flux model denoises latents [B, {cfg.in_channels}, H, W], got {list(x.shape)}: start "
                             f"from EmptySD3LatentImage or a Flux VAE (ae.safetensors) encode")
        if cond.shape[-1] != cfg.context_in_dim:
            raise ValueError(f"this Flux model reads {cfg.context_in_dim}-wide text, got {cond.shape[-1]}: encode the "
                             f"prompt with DualCLIPLoader type flux (clip_l + t5xxl) and CLIPTextEncode(Flux)")
        if not self.is_ready():
            self.prepare(tuple(x.shape))
        device = self.patcher.load_device
        b = x.shape[0]
        sigma = sigma.reshape(-1).expand(b).to(x.device, torch.float32)
        if cond.shape[0] != b:
            cond = cond.repeat(-(-b // cond.shape[0]), 1, 1)[:b]
        pooled = options.get("pooled_output")
        if pooled is not None:
            pooled = pooled.reshape(pooled.shape[0], -1)
            if pooled.shape[0] != b:
                pooled = pooled.repeat(-(-b // pooled.shape[0]), 1)[:b]
            pooled = pooled.to(device)
        guidance = None
        value = options.get("guidance", DEFAULT_GUIDANCE)  # absent: 3.5; None: switched off, as ComfyUI
        if cfg.guidance_embed and value is not None:
            guidance = torch.as_tensor(value, dtype=torch.float32).reshape(-1)
            guidance = guidance.expand(b).to(device) if guidance.numel() == 1 else guidance.to(device)
        references = [self.process_latent_in(r.to(device, torch.float32)) for r in options.get("reference_latents") or ()]
        references = [r.repeat(-(-b // r.shape[0]), 1, 1, 1)[:b] for r in references]
        sampling = self.sampling
        with torch.no_grad():
            out = self.module(sampling.calculate_input(sigma, x).to(device), sampling.timestep(sigma).to(device),
                              cond.to(device), pooled, guidance, references,
                              options.get("reference_latents_method") or "offset")
        return sampling.calculate_denoised(sigma, out.float().to(x.device), x)

    def __repr__(self) -> str:
        return f"<FluxModel {self.patcher.name!r} {self.sampling!r}>"


# -- files ------------------------------------------------------------------------------------------------------------


def _layout(path: Path, shapes: Mapping[str, tuple[int, ...]]) -> tuple[str, str]:
    """``("published", prefix)`` or ``("diffusers", "")`` for a Flux file, from its header's shapes."""
    for prefix in PREFIXES:
        if prefix + "img_in.weight" in shapes and prefix + "double_blocks.0.img_attn.qkv.weight" in shapes:
            return "published", prefix
    if is_diffusers_layout(shapes):
        return "diffusers", ""
    raise ValueError(f"{path}: not a Flux.1 transformer (neither img_in.weight and double_blocks.0.img_attn.qkv.weight "
                     f"of the published layout nor diffusers' x_embedder/transformer_blocks keys); pick the Flux "
                     f"transformer file (flux1-dev.safetensors, flux1-schnell.safetensors) in UNETLoader")


def read_flux_state(path: str | Path) -> tuple[FluxConfig, dict[str, torch.Tensor]]:
    """The config and published-layout state (memory-mapped, stored dtypes, scales kept) of a Flux file."""
    path = Path(path)
    header = read_header(path)
    layout, prefix = _layout(path, header.shapes)
    state = load_state_dict(path, prefix=prefix) if prefix else load_state_dict(path)
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if layout == "diffusers":
        state = convert_flux_diffusers(state, str(path))
    state = {k: v for k, v in state.items() if k != "scaled_fp8" and not k.endswith(".scale_input")}
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    return config_from_shapes(shapes, header.metadata, str(path)), state


def build_flux(config: FluxConfig, state: Mapping[str, torch.Tensor], source: str | Path = "state dict"
               ) -> FluxTransformer:
    """A :class:`FluxTransformer` holding ``state``'s tensors (no copy); scaled-fp8 layers become ScaledLinear."""
    with torch.device("meta"):
        module = FluxTransformer(config)
    scales = {k: v for k, v in state.items() if k.endswith(".scale_weight")}
    if scales:
        _use_scales(module, scales)
    load_into(module, state, source=source)
    return module.eval().requires_grad_(False)


def _narrow(module: FluxTransformer, dtype: torch.dtype) -> None:
    """Store tensors wider than the compute ``dtype`` in it (smaller, and no cast per layer); fp8 weights and their
    float32 scales stay as they are."""
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        if tensor.is_floating_point() and tensor.dtype.itemsize > dtype.itemsize and not name.endswith("scale_weight"):
            owner, _, leaf = name.rpartition(".")
            target = module.get_submodule(owner)
            narrowed = tensor.detach().to(dtype)
            if isinstance(tensor, torch.nn.Parameter):
                target._parameters[leaf] = torch.nn.Parameter(narrowed, requires_grad=False)
            else:
                target._buffers[leaf] = narrowed


def load_diffusion_model(path: str | Path, weight_dtype: str = "default", device: str | None = None) -> FluxModel:
    """A Flux.1 transformer file as a MODEL (UNETLoader)."""
    path = Path(path)
    if weight_dtype not in WEIGHT_DTYPES:
        raise ValueError(f"weight_dtype {weight_dtype!r}: choose one of {', '.join(WEIGHT_DTYPES)}")
    load_device = torch.device(device) if device is not None else default_device()

    def make() -> Loaded:
        config, state = read_flux_state(path)
        if config.in_channels != config.out_channels:
            raise ValueError(f"{path}: a Flux.1 model that takes {config.in_channels} input channels (Fill, Canny or "
                             f"Depth: the image conditioning is concatenated to the latent), which Hearth does not "
                             f"run yet; use Flux.1 dev or schnell")
        store = WEIGHT_DTYPES[weight_dtype]
        if store is not None and not is_scaled_fp8(state):
            # Matrices only, as ComfyUI stores them: norms, biases and embeddings' vectors keep their precision.
            state = {k: v.to(store) if v.is_floating_point() and v.ndim >= 2 else v for k, v in state.items()}
        module = build_flux(config, state, path)
        dtype = compute_dtype(load_device, (torch.bfloat16, torch.float16, torch.float32))
        _narrow(module, dtype)
        module.compute_dtype = dtype

        def estimate(input_shape, dtype_):
            if input_shape is None or len(input_shape) != 4:
                return 0
            return module.activation_bytes(tuple(input_shape), dtype_ or dtype, TEXT_LENGTH, load_device)

        patcher = PatchedModel(module, name=path.name, load_device=load_device, memory_estimate=estimate)
        return Loaded(path, module=module, patcher=patcher)

    record = load_once("diffusion_model", path, make, weight_dtype, str(load_device))
    return FluxModel(record.module, record.patcher.clone(), record)


def memory_estimate(model: Any, input_shape: tuple[int, ...] | None, dtype: Any) -> int | None:
    """Working memory of a Flux forward on a latent batch (the memory_estimate_for_model hook)."""
    module = getattr(model, "module", None)
    if not isinstance(module, FluxTransformer) or input_shape is None or len(input_shape) != 4:
        return None
    device = getattr(model, "load_device", None) or next(module.parameters()).device  # a PatchedModel knows it
    return module.activation_bytes(tuple(input_shape), dtype or module._dtype(), TEXT_LENGTH, device)

