"""ComfyUI's ModelPatcher details of the SD MODEL: the UNet run that honours ``model_options`` patches, and the
``model.model`` view custom nodes read.

Custom nodes written for ComfyUI change a MODEL by cloning it and calling ``set_model_*`` methods, which store
functions in ``model.model_options`` in ComfyUI's layout::

    {"transformer_options": {"patches": {"attn1_patch": [fn, ...], ...},
                             "patches_replace": {"attn2": {("input", 4, 0): fn, ...}}},
     "model_function_wrapper": fn, "sampler_cfg_function": fn, ...}

What the SD UNet applies, with ComfyUI's call signatures:

* ``model_function_wrapper(apply_model, {"input", "timestep", "c", "cond_or_uncond"})`` around each evaluation;
  ``apply_model(x, sigma, **c)`` returns the denoised latent.
* ``attn1_patch`` / ``attn2_patch`` ``(n, context, value, extra_options) -> (n, context, value)`` before the
  self / cross attention of every transformer block, ``attn1_output_patch`` / ``attn2_output_patch``
  ``(n, extra_options) -> n`` after it, ``middle_patch`` ``(x, extra_options) -> x`` between the two (after the
  self attention's output is added), and ``patches_replace["attn1" | "attn2"][(block, id, index)]``
  ``(q, k, v, extra_options) -> out`` instead of it.
* ``input_block_patch`` ``(h, transformer_options) -> h`` after each input block (before its skip is kept),
  ``input_block_patch_after_skip`` after the skip is kept, and ``output_block_patch``
  ``(h, skip, transformer_options) -> (h, skip)`` before each output block joins its skip (FreeU's hook).

``transformer_options`` and ``extra_options`` carry ComfyUI's ``sigmas`` and ``cond_or_uncond`` (per equal chunk
of the batch, 0 for a positive-prompt chunk and 1 for a negative one), built from the ``cond_index`` the
samplers put in the evaluation's options.

The ``set_model_*`` setters that record these, ``clone()`` and the weight patches are the core's
(:class:`hearth.core.models.ModelValue`); this module is what the SD UNet does with them. The sampler's keys
(``sampler_cfg_function``...) are not the UNet's: the samplers plugin reads them from ``model.model_options`` and
applies them around the model calls (docs/data-types.md, the MODEL protocol).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from types import SimpleNamespace
from typing import Any

import torch

from hearth.core.models.attention import unet_attention

from .ops import compute_dtype_of
from .unet import BasicTransformerBlock, ControlResiduals, UNetModel, timestep_embedding

ATTENTION_PATCHES = ("attn1_patch", "attn2_patch", "attn1_output_patch", "attn2_output_patch", "middle_patch")
BLOCK_PATCHES = ("input_block_patch", "input_block_patch_after_skip", "output_block_patch")


def cond_or_uncond(cond_index: Any, batch: int) -> list[int]:
    """ComfyUI's ``cond_or_uncond`` for a batch: one entry per equal chunk, the CONDITIONING list that chunk
    predicts (0: positive, 1: negative), from the samplers' per-item ``cond_index`` ``[B]``; ``[0]`` without one.

    The chunks are the fewest equal ones that each predict one list: ``[0, 0, 1, 1]`` gives ``[0, 1]``.
    """
    if not isinstance(cond_index, torch.Tensor) or cond_index.ndim != 1 or cond_index.shape[0] != batch:
        return [0]
    values = [int(v) for v in cond_index.tolist()]
    for chunks in range(1, batch + 1):
        if batch % chunks:
            continue
        size = batch // chunks
        parts = [values[i * size:(i + 1) * size] for i in range(chunks)]
        if all(len(set(part)) == 1 for part in parts):
            return [part[0] for part in parts]
    return [0]  # an empty batch


def has_attention_patches(transformer_options: Mapping[str, Any]) -> bool:
    patches = transformer_options.get("patches", {})
    replace = transformer_options.get("patches_replace", {})
    return any(patches.get(key) for key in ATTENTION_PATCHES) or bool(replace.get("attn1") or replace.get("attn2"))


def transformer_blocks(unet: UNetModel) -> Iterator[tuple[str, int, int, BasicTransformerBlock]]:
    """Every transformer block with ComfyUI's address: ``("input" | "middle" | "output", block id, index)``."""
    parts = [("input", i, block) for i, block in enumerate(unet.input_blocks)]
    parts.append(("middle", 0, unet.middle_block))
    parts += [("output", i, block) for i, block in enumerate(unet.output_blocks)]
    for name, number, block in parts:
        index = 0
        for module in block.modules():
            if isinstance(module, BasicTransformerBlock):
                yield name, number, index, module
                index += 1


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head attention on projected ``[B, N, heads * dim]`` tensors, merged back to that layout."""
    return unet_attention(q, k, v, heads)


def _patched_forward(block: BasicTransformerBlock, where: tuple[str, int, int],
                     transformer_options: Mapping[str, Any], extra: dict[str, Any]) -> Callable[..., torch.Tensor]:
    patches = transformer_options.get("patches", {})
    replace = transformer_options.get("patches_replace", {})
    name, number, index = where
    heads = block.attn1.heads
    extra = {**extra, "block": (name, number), "block_index": index, "transformer_index": index,
             "n_heads": heads, "dim_head": block.attn1.to_q.out_features // heads}

    def attention(which: str, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        attn = getattr(block, which)
        n = getattr(block, "norm1" if which == "attn1" else "norm2")(x)
        context = n if context is None else context
        value = context
        for patch in patches.get(f"{which}_patch", ()):
            n, context, value = patch(n, context, value, extra)
        swap = replace.get(which, {})
        fn = swap.get((name, number, index)) or swap.get((name, number))
        if fn is not None:
            out = attn.to_out[0](fn(attn.to_q(n), attn.to_k(context), attn.to_v(value), extra))
        else:
            out = attn.to_out[0](_attend(attn.to_q(n), attn.to_k(context), attn.to_v(value), heads))
        for patch in patches.get(f"{which}_output_patch", ()):
            out = patch(out, extra)
        return out

    def forward(x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = attention("attn1", x, None) + x
        for patch in patches.get("middle_patch", ()):
            x = patch(x, extra)
        x = attention("attn2", x, context) + x
        return block.ff(block.norm3(x)) + x

    return forward


@contextlib.contextmanager
def attention_patches(unet: UNetModel, transformer_options: Mapping[str, Any],
                      extra: dict[str, Any]) -> Iterator[None]:
    """While inside, every transformer block of ``unet`` runs with the attention patches of
    ``transformer_options`` (``extra`` goes into their ``extra_options``). Nothing changes without such patches.

    The blocks are shared by every clone of the model; the executor runs one prompt at a time, so one clone's
    patches are on them only while that clone evaluates.
    """
    if not has_attention_patches(transformer_options):
        yield
        return
    blocks = []
    try:
        for name, number, index, block in transformer_blocks(unet):
            block.forward = _patched_forward(block, (name, number, index), transformer_options, extra)
            blocks.append(block)
        yield
    finally:
        for block in blocks:
            del block.forward


@contextlib.contextmanager
def object_patches(root: Any, patches: Mapping[str, Any]) -> Iterator[None]:
    """Attributes under ``root`` (dotted names, ``diffusion_model.out.2``) replaced while inside, then restored."""
    saved = []
    try:
        for name, value in patches.items():
            owner_path, _, attr = name.rpartition(".")
            owner = root
            for part in owner_path.split(".") if owner_path else ():
                owner = owner[int(part)] if part.isdigit() else getattr(owner, part)
            saved.append((owner, attr, getattr(owner, attr)))
            setattr(owner, attr, value)
        yield
    finally:
        for owner, attr, value in reversed(saved):
            setattr(owner, attr, value)


def has_block_patches(transformer_options: Mapping[str, Any]) -> bool:
    patches = transformer_options.get("patches", {})
    return any(patches.get(key) for key in BLOCK_PATCHES)


def run_unet(unet: UNetModel, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor,
             y: torch.Tensor | None, transformer_options: Mapping[str, Any],
             control: Mapping[str, Any] | None = None) -> torch.Tensor:
    """``unet(x, timesteps, context, y, control)`` with the block patches of ``transformer_options`` applied.

    The same steps as ``UNetModel.forward``, with ComfyUI's hook points between the blocks; without block
    patches it is ``UNetModel.forward`` itself. ``control`` (ControlNet / T2I-Adapter residuals) is added where
    ComfyUI's UNet adds it: an input block's residual before ``input_block_patch``, a skip's before
    ``output_block_patch``.
    """
    if not has_block_patches(transformer_options):
        return unet(x, timesteps, context, y) if control is None else unet(x, timesteps, context, y, control=control)
    patches = transformer_options.get("patches", {})
    options = {**transformer_options, "original_shape": list(x.shape), "transformer_index": 0}
    c = unet.config
    if (y is None) != (c.adm_in_channels is None):
        raise ValueError("y (the ADM vector) is required exactly when the UNet has adm_in_channels")
    dtype = compute_dtype_of(unet)
    if timesteps.ndim == 0:
        timesteps = timesteps[None]
    emb = unet.time_embed(timestep_embedding(timesteps.expand(x.shape[0]), c.model_channels).to(dtype))
    if y is not None:
        emb = emb + unet.label_emb(y.to(dtype))
    context = context.to(dtype)
    residuals = ControlResiduals(control)
    h = x.to(dtype)
    skips = []
    for number, block in enumerate(unet.input_blocks):
        options["block"] = ("input", number)
        h = residuals.apply(block(h, emb, context), "input")
        for patch in patches.get("input_block_patch", ()):
            h = patch(h, options)
        skips.append(h)
        for patch in patches.get("input_block_patch_after_skip", ()):
            h = patch(h, options)
    options["block"] = ("middle", 0)
    h = residuals.apply(unet.middle_block(h, emb, context), "middle")
    for number, block in enumerate(unet.output_blocks):
        options["block"] = ("output", number)
        skip = residuals.apply(skips.pop(), "output")
        for patch in patches.get("output_block_patch", ()):
            h, skip = patch(h, skip, options)
        h = torch.cat([h, skip], dim=1)
        size = skips[-1].shape[-2:] if skips else None
        h = block(h, emb, context, size)
    return unet.out(h).to(x.dtype)


class LatentFormat:
    """ComfyUI's ``model.latent_format``: the latent scale and channel count of the model's VAE latents."""

    def __init__(self, diffusion: Any) -> None:  # a DiffusionModel
        self.family = diffusion.family.name  # which latent-to-RGB preview map fits
        self.scale_factor = diffusion.latent_scale
        self.latent_channels = diffusion.latent_channels
        self._diffusion = diffusion

    def process_in(self, latent: torch.Tensor) -> torch.Tensor:
        return self._diffusion.process_latent_in(latent)

    def process_out(self, latent: torch.Tensor) -> torch.Tensor:
        return self._diffusion.process_latent_out(latent)


class ModelType:
    """ComfyUI's ``model.model.model_type`` for an SD MODEL: ``name`` ``"EPS"`` or ``"V_PREDICTION"`` and
    ComfyUI's ``value`` (``comfy.model_base.ModelType``'s numbering).

    It is not ComfyUI's enum (this plugin does not import the compat layer), but it compares equal to any enum
    member of the same name and hashes as one (an ``Enum`` member hashes its name), so
    ``model.model.model_type == comfy.model_base.ModelType.EPS`` and a dict keyed by that enum both work.
    """

    _VALUES = {"EPS": 1, "V_PREDICTION": 2}
    _BY_PREDICTION = {"eps": "EPS", "v": "V_PREDICTION"}

    def __init__(self, prediction: str) -> None:
        self.name = self._BY_PREDICTION[prediction]
        self.value = self._VALUES[self.name]

    def __eq__(self, other: object) -> bool:
        return isinstance(getattr(other, "name", None), str) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"<ModelType.{self.name}: {self.value}>"


class BaseModelView:
    """ComfyUI's ``model_patcher.model`` (its BaseModel), as much of it as custom nodes read from an SD MODEL.

    ``current_patcher`` is the MODEL this view belongs to (ComfyUI sets it on the BaseModel of the patcher that
    loaded it): a pack's ``ModelPatcher(model.model, ...)`` re-wrap becomes a clone of that MODEL.
    ``model_config`` carries ComfyUI's fields packs read: ``unet_config`` (the UNet's shape as a dict),
    ``latent_format``, ``sampling_settings``, and the loader options Hearth does not take (``custom_operations``
    and ``scaled_fp8`` None, ``optimizations`` without fp8, ``manual_cast_dtype`` None).
    """

    def __init__(self, owner: Any) -> None:  # an SDModel
        self._owner = owner
        self.current_patcher = owner
        self.diffusion_model = owner.diffusion.unet
        self.latent_format = LatentFormat(owner.diffusion)
        self.model_type = ModelType(owner.diffusion.sampling.prediction)
        self.manual_cast_dtype = None
        self.model_config = SimpleNamespace(
            unet_config=dataclasses.asdict(owner.diffusion.unet.config), latent_format=self.latent_format,
            sampling_settings={}, custom_operations=None, scaled_fp8=None, optimizations={"fp8": False},
            manual_cast_dtype=None)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The UNet's weights under ComfyUI's ``diffusion_model.`` prefix (as loaded: without this MODEL's
        weight patches unless it is loaded with them)."""
        return {f"diffusion_model.{k}": v for k, v in self.diffusion_model.state_dict().items()}

    @property
    def model_sampling(self) -> Any:
        return self._owner.sampling

    def get_dtype(self) -> torch.dtype:
        return self._owner.model_dtype()

    def memory_required(self, input_shape: tuple[int, ...]) -> int:
        return self._owner.diffusion.memory_required(tuple(input_shape))

    def process_latent_in(self, latent: torch.Tensor) -> torch.Tensor:
        return self._owner.process_latent_in(latent)

    def process_latent_out(self, latent: torch.Tensor) -> torch.Tensor:
        return self._owner.process_latent_out(latent)

    def __repr__(self) -> str:
        return f"<{self._owner.family} model of {self._owner!r}>"
