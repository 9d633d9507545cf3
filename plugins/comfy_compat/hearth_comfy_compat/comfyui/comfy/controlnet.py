"""ComfyUI's ``comfy.controlnet``: the control objects a ControlNet-apply node puts into a conditioning
(``cond["control"]``), their bookkeeping and arithmetic, and the loaders of ControlNet files.

Real here: :func:`broadcast_image_to`, :class:`StrengthType`, and :class:`ControlBase`'s bookkeeping (hint,
strength, timestep range, the chain of previous controls, ``copy_to``, ``pre_run`` / ``cleanup``) and
``control_merge`` (how a control's outputs are scaled and added to the previous control's). A :class:`ControlNet`
or :class:`T2IAdapter` built around a control model the pack brings computes its control in ``get_control`` as
ComfyUI does.

:func:`load_controlnet`, :func:`load_controlnet_state_dict` and :func:`load_t2i_adapter` return the SD plugin's
CONTROL_NET (ControlNet, diff ControlNet with ``model``, union, Control-LoRA, T2I-Adapter; SD1.x and SDXL), loaded as
ControlNetLoader loads it: ``copy().set_cond_hint(...)`` into ``cond["control"]``, and the SD model adds its
residuals while sampling.

What differs: those loaded values are the SD plugin's classes, not the ones below, so ``isinstance(c,
comfy.controlnet.ControlNet)`` is False for them; the classes here keep ComfyUI's constructor signatures for packs
that subclass them around a control model of their own. DiT ControlNets (Flux, SD3) fail naming the family.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from hearth_comfy_compat import hook

__all__ = ["ControlBase", "ControlLora", "ControlLoraOps", "ControlNet", "StrengthType", "T2IAdapter",
           "broadcast_image_to", "controlnet_config", "controlnet_load_state_dict", "load_controlnet",
           "load_controlnet_state_dict", "load_t2i_adapter"]

_ISSUE = "Hearth's ControlNets are the SD plugin's (SD1.x, SDXL)"


def broadcast_image_to(tensor: torch.Tensor, target_batch_size: int, batched_number: int) -> torch.Tensor:
    """A hint batch repeated to ``target_batch_size`` rows, made of ``batched_number`` equal chunks (the
    sampler batches positive and negative together): a single image is returned as it is."""
    if tensor.shape[0] == 1:
        return tensor
    per_batch = target_batch_size // batched_number
    tensor = tensor[:per_batch]
    if per_batch > tensor.shape[0]:
        repeats = per_batch // tensor.shape[0]
        tensor = torch.cat([tensor] * repeats + [tensor[:per_batch % tensor.shape[0]]], dim=0)
    if tensor.shape[0] == target_batch_size:
        return tensor
    return torch.cat([tensor] * batched_number, dim=0)


class StrengthType(enum.Enum):
    """How a control's strength applies across a block group's outputs: the same for each, or ``strength ** (n - i)``
    for the ``i``-th of ``n`` (``LINEAR_UP``)."""

    CONSTANT = 1
    LINEAR_UP = 2


def _model_management() -> Any:
    from hearth_comfy_compat import model_management

    return model_management


class ControlBase:
    """What every control object shares: the hint, its strength and timestep range, and the previous control in
    the chain (controls applied to one conditioning run one after another and their outputs add up)."""

    def __init__(self, device: Any = None) -> None:
        # ``device``: older ComfyUI's ControlBase took it, and subclasses written then still pass it.
        if device is not None:
            self.device = device
        self.cond_hint_original: torch.Tensor | None = None
        self.cond_hint: torch.Tensor | None = None
        self.strength = 1.0
        self.timestep_percent_range = (0.0, 1.0)
        self.latent_format = None
        self.vae = None
        self.global_average_pooling = False
        self.timestep_range: tuple[Any, Any] | None = None
        self.compression_ratio = 8
        self.upscale_algorithm = "nearest-exact"
        self.extra_args: dict[str, Any] = {}
        self.previous_controlnet: ControlBase | None = None
        self.extra_conds: list[str] = []
        self.strength_type = StrengthType.CONSTANT
        self.concat_mask = False
        self.extra_concat_orig: list[torch.Tensor] = []
        self.extra_concat = None
        self.extra_hooks = None
        self.preprocess_image: Callable[[torch.Tensor], torch.Tensor] = lambda image: image

    def set_cond_hint(self, cond_hint: torch.Tensor, strength: float = 1.0,
                      timestep_percent_range: tuple[float, float] = (0.0, 1.0), vae: Any = None,
                      extra_concat: list[torch.Tensor] | None = None) -> ControlBase:
        """The hint image ``[B, C, H, W]``, its strength and the part of sampling it acts in; returns self."""
        self.cond_hint_original = cond_hint
        self.strength = strength
        self.timestep_percent_range = timestep_percent_range
        if self.latent_format is not None:
            if vae is None:
                raise ValueError("This ControlNet needs a VAE but none was connected, please use a ControlNet "
                                 "node with a VAE input and connect it.")
            self.vae = vae
        self.extra_concat_orig = list(extra_concat or [])
        return self

    def pre_run(self, model: Any, percent_to_timestep_function: Callable[[float], Any]) -> None:
        """Before sampling: turn the percent range into timesteps (the whole chain)."""
        self.timestep_range = (percent_to_timestep_function(self.timestep_percent_range[0]),
                               percent_to_timestep_function(self.timestep_percent_range[1]))
        if self.previous_controlnet is not None:
            self.previous_controlnet.pre_run(model, percent_to_timestep_function)

    def set_previous_controlnet(self, controlnet: ControlBase | None) -> ControlBase:
        self.previous_controlnet = controlnet
        return self

    def cleanup(self) -> None:
        """After sampling: drop what ``pre_run`` and the steps computed (the whole chain)."""
        if self.previous_controlnet is not None:
            self.previous_controlnet.cleanup()
        self.cond_hint = None
        self.extra_concat = None
        self.timestep_range = None

    def get_models(self) -> list[Any]:
        """The models the sampler must load for this chain (ModelPatchers)."""
        return self.previous_controlnet.get_models() if self.previous_controlnet is not None else []

    def get_extra_hooks(self) -> list[Any]:
        out = list(self.extra_hooks.hooks) if self.extra_hooks is not None else []
        if self.previous_controlnet is not None:
            out += self.previous_controlnet.get_extra_hooks()
        return out

    def copy_to(self, c: ControlBase) -> None:
        """Give ``c`` this control's settings (a copy shares the model, never the per-run state)."""
        for name in ("cond_hint_original", "strength", "timestep_percent_range", "global_average_pooling",
                     "compression_ratio", "upscale_algorithm", "latent_format", "extra_args", "vae",
                     "extra_conds", "strength_type", "concat_mask", "extra_concat_orig", "extra_hooks",
                     "preprocess_image"):
            value = getattr(self, name)
            setattr(c, name, value.copy() if isinstance(value, (dict, list)) else value)

    def inference_memory_requirements(self, dtype: torch.dtype) -> int:
        if self.previous_controlnet is not None:
            return self.previous_controlnet.inference_memory_requirements(dtype)
        return 0

    def set_extra_arg(self, argument: str, value: Any = None) -> None:
        self.extra_args[argument] = value

    def control_merge(self, control: Mapping[str, list[Any]] | None, control_prev: Mapping[str, list[Any]] | None,
                      output_dtype: torch.dtype | None) -> dict[str, list[Any]]:
        """This control's outputs (``{"input": [...], "middle": [...], "output": [...]}``) times its strength (the
        ``i``-th of ``n`` times ``strength ** (n - i)`` for ``LINEAR_UP``), averaged over the image first with
        ``global_average_pooling``, in ``output_dtype``, added to the previous control's where both have one."""
        out: dict[str, list[Any]] = {"input": [], "middle": [], "output": []}
        for key, values in (control or {}).items():
            for i, x in enumerate(values or []):
                if x is not None:
                    if self.global_average_pooling:
                        x = torch.mean(x, dim=(2, 3), keepdim=True).repeat(1, 1, x.shape[2], x.shape[3])
                    if self.strength_type == StrengthType.LINEAR_UP:
                        x = x * self.strength ** float(len(values) - i)
                    else:
                        x = x * self.strength
                    if output_dtype is not None and x.dtype != output_dtype:
                        x = x.to(output_dtype)
                out.setdefault(key, []).append(x)
        if control_prev is not None:
            for key in ("input", "middle", "output"):
                mine = out[key]
                for i, prev in enumerate(control_prev.get(key, [])):
                    if i >= len(mine):
                        mine.append(prev)
                    elif prev is not None:
                        if mine[i] is None:
                            mine[i] = prev
                        elif mine[i].shape[0] < prev.shape[0]:
                            mine[i] = prev + mine[i]
                        else:
                            mine[i] = mine[i] + prev
        return out

    def _in_range(self, t: torch.Tensor) -> bool:
        if self.timestep_range is None:
            return True
        return not (t[0] > self.timestep_range[0] or t[0] < self.timestep_range[1])

    def _hint_for(self, x_noisy: torch.Tensor, batched_number: int, dtype: torch.dtype) -> torch.Tensor:
        # The hint upscaled to the pixels the latent stands for, batched like the latent; kept while sizes hold.
        from hearth_comfy_compat.comfy_utils import common_upscale

        width, height = x_noisy.shape[3] * self.compression_ratio, x_noisy.shape[2] * self.compression_ratio
        if self.cond_hint is None or self.cond_hint.shape[2] != height or self.cond_hint.shape[3] != width:
            hint = common_upscale(self.cond_hint_original, width, height, self.upscale_algorithm, "center")
            self.cond_hint = self.preprocess_image(hint).to(x_noisy.device, dtype)
        if x_noisy.shape[0] != self.cond_hint.shape[0]:
            self.cond_hint = broadcast_image_to(self.cond_hint, x_noisy.shape[0], batched_number)
        return self.cond_hint


def _patcher_for(module: Any, load_device: Any) -> Any:
    """A ModelPatcher around a pack's control model, where comfy.model_patcher is served (else None)."""
    if module is None:
        return None
    try:
        from hearth_comfy_compat.comfyui.comfy.model_patcher import ModelPatcher
    except ImportError:
        return None
    mm = _model_management()
    return ModelPatcher(module, load_device=load_device or mm.get_torch_device(), offload_device=mm.unet_offload_device())


class ControlNet(ControlBase):
    """A ControlNet: ``control_model(x=, hint=, timesteps=, context=, **extra)`` gives the outputs added to the
    UNet's skip connections and middle block."""

    def __init__(self, control_model: Any = None, global_average_pooling: bool = False, compression_ratio: int = 8,
                 latent_format: Any = None, load_device: Any = None, manual_cast_dtype: Any = None,
                 extra_conds: list[str] | None = None, strength_type: StrengthType = StrengthType.CONSTANT,
                 concat_mask: bool = False, preprocess_image: Callable[[torch.Tensor], torch.Tensor] = lambda a: a):
        super().__init__()
        self.control_model = control_model
        self.load_device = load_device
        self.control_model_wrapped = _patcher_for(control_model, load_device)
        self.compression_ratio = compression_ratio
        self.global_average_pooling = global_average_pooling
        self.model_sampling_current = None
        self.manual_cast_dtype = manual_cast_dtype
        self.latent_format = latent_format
        self.extra_conds = list(extra_conds) if extra_conds is not None else ["y"]
        self.strength_type = strength_type
        self.concat_mask = concat_mask
        self.preprocess_image = preprocess_image

    def get_control(self, x_noisy: torch.Tensor, t: torch.Tensor, cond: Mapping[str, Any],
                    batched_number: int, transformer_options: Mapping[str, Any] | None = None) -> Any:
        """This chain's control for one model evaluation (None outside every control's timestep range)."""
        prev = None
        if self.previous_controlnet is not None:
            prev = self.previous_controlnet.get_control(x_noisy, t, cond, batched_number, transformer_options)
        if not self._in_range(t) or self.control_model is None:
            return prev
        dtype = self.manual_cast_dtype or getattr(self.control_model, "dtype", x_noisy.dtype)
        hint = self._hint_for(x_noisy, batched_number, dtype)
        context = cond.get("crossattn_controlnet", cond["c_crossattn"])
        extra = {k: v.to(dtype) if isinstance(v, torch.Tensor) else v
                 for k in self.extra_conds if (v := cond.get(k)) is not None}
        sampling = self.model_sampling_current
        timestep = sampling.timestep(t) if sampling is not None else t
        x_in = sampling.calculate_input(t, x_noisy) if sampling is not None else x_noisy
        control = self.control_model(x=x_in.to(dtype), hint=hint, timesteps=timestep.float(),
                                     context=context.to(dtype), **extra)
        if isinstance(control, (list, tuple)):  # older models return the output list (middle last)
            control = {"middle": [control[-1]], "output": list(control[:-1])}
        return self.control_merge(control, prev, x_noisy.dtype)

    def copy(self) -> ControlNet:
        c = type(self).__new__(type(self))
        ControlNet.__init__(c, self.control_model, global_average_pooling=self.global_average_pooling,
                            load_device=self.load_device, manual_cast_dtype=self.manual_cast_dtype)
        c.control_model_wrapped = self.control_model_wrapped
        self.copy_to(c)
        return c

    def get_models(self) -> list[Any]:
        out = super().get_models()
        if self.control_model_wrapped is not None:
            out.append(self.control_model_wrapped)
        return out

    def pre_run(self, model: Any, percent_to_timestep_function: Callable[[float], Any]) -> None:
        super().pre_run(model, percent_to_timestep_function)
        self.model_sampling_current = getattr(model, "model_sampling", None)

    def cleanup(self) -> None:
        self.model_sampling_current = None
        super().cleanup()


class ControlLoraOps:
    """The layer types a Control-LoRA's network is built with (their weights set from the UNet's and the file's)."""

    class Linear(torch.nn.Module):
        def __init__(self, in_features: int, out_features: int, bias: bool = True, device: Any = None,
                     dtype: Any = None) -> None:
            super().__init__()
            self.in_features, self.out_features = in_features, out_features
            self.weight = self.bias = self.up = self.down = None

        def forward(self, input: torch.Tensor) -> torch.Tensor:
            weight = self.weight.to(input)
            if self.up is not None:
                weight = weight + torch.mm(self.up.flatten(1), self.down.flatten(1)).reshape(weight.shape).to(input)
            return torch.nn.functional.linear(input, weight, None if self.bias is None else self.bias.to(input))

    class Conv2d(torch.nn.Module):
        def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                     dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                     device: Any = None, dtype: Any = None) -> None:
            super().__init__()
            self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
            self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
            self.transposed, self.output_padding, self.padding_mode = False, 0, padding_mode
            self.weight = self.bias = self.up = self.down = None

        def forward(self, input: torch.Tensor) -> torch.Tensor:
            weight = self.weight.to(input)
            if self.up is not None:
                weight = weight + torch.mm(self.up.flatten(1), self.down.flatten(1)).reshape(weight.shape).to(input)
            return torch.nn.functional.conv2d(input, weight, None if self.bias is None else self.bias.to(input),
                                              self.stride, self.padding, self.dilation, self.groups)


class ControlLora(ControlNet):
    """A Control-LoRA: a ControlNet built at ``pre_run`` from the model's UNet plus the file's low-rank weights.
    Building it needs ComfyUI's ControlNet network (``comfy.cldm``), which Hearth lacks: ``pre_run`` fails naming
    it."""

    def __init__(self, control_weights: Mapping[str, torch.Tensor], global_average_pooling: bool = False,
                 model_options: Mapping[str, Any] | None = None) -> None:
        ControlBase.__init__(self)
        self.control_weights = control_weights
        self.global_average_pooling = global_average_pooling
        self.extra_conds = ["y"]
        self.control_model = None
        self.control_model_wrapped = None
        self.model_sampling_current = None
        self.manual_cast_dtype = None
        self.load_device = None
        self.model_options = dict(model_options or {})

    def pre_run(self, model: Any, percent_to_timestep_function: Callable[[float], Any]) -> None:
        raise hook.lacking("comfy.controlnet.ControlLora.pre_run", f"{_ISSUE}: a Control-LoRA needs ComfyUI's "
                                                                   f"ControlNet network (comfy.cldm)")

    def copy(self) -> ControlLora:
        c = type(self).__new__(type(self))
        ControlLora.__init__(c, self.control_weights, global_average_pooling=self.global_average_pooling,
                             model_options=self.model_options)
        self.copy_to(c)
        return c

    def get_models(self) -> list[Any]:
        return ControlBase.get_models(self)

    def inference_memory_requirements(self, dtype: torch.dtype) -> int:
        size = torch.empty((), dtype=dtype).element_size()
        params = sum(t.numel() for t in self.control_weights.values() if isinstance(t, torch.Tensor))
        return params * size + ControlBase.inference_memory_requirements(self, dtype)


class T2IAdapter(ControlBase):
    """A T2I-adapter: ``t2i_model(hint)`` once per hint size gives features added to the UNet's input blocks
    (and middle, for SDXL adapters)."""

    def __init__(self, t2i_model: Any, channels_in: int, compression_ratio: int, upscale_algorithm: str,
                 device: Any = None) -> None:
        super().__init__()
        self.t2i_model = t2i_model
        self.channels_in = channels_in
        self.control_input: Any = None
        self.compression_ratio = compression_ratio
        self.upscale_algorithm = upscale_algorithm
        self.device = device if device is not None else _model_management().get_torch_device()

    def scale_image_to(self, width: int, height: int) -> tuple[int, int]:
        """The size the adapter works at: each side rounded up to its unshuffle factor."""
        unshuffle = getattr(self.t2i_model, "unshuffle_amount", 8)
        return math.ceil(width / unshuffle) * unshuffle, math.ceil(height / unshuffle) * unshuffle

    def get_control(self, x_noisy: torch.Tensor, t: torch.Tensor, cond: Mapping[str, Any],
                    batched_number: int, transformer_options: Mapping[str, Any] | None = None) -> Any:
        prev = None
        if self.previous_controlnet is not None:
            prev = self.previous_controlnet.get_control(x_noisy, t, cond, batched_number, transformer_options)
        if not self._in_range(t):
            return prev
        from hearth_comfy_compat.comfy_utils import common_upscale

        width, height = self.scale_image_to(x_noisy.shape[3] * self.compression_ratio,
                                            x_noisy.shape[2] * self.compression_ratio)
        if self.cond_hint is None or self.cond_hint.shape[2] != height or self.cond_hint.shape[3] != width:
            self.control_input = None
            hint = common_upscale(self.cond_hint_original, width, height, self.upscale_algorithm, "center")
            self.cond_hint = hint.float().to(self.device)
            if self.channels_in == 1 and self.cond_hint.shape[1] > 1:
                self.cond_hint = torch.mean(self.cond_hint, 1, keepdim=True)
        if x_noisy.shape[0] != self.cond_hint.shape[0]:
            self.cond_hint = broadcast_image_to(self.cond_hint, x_noisy.shape[0], batched_number)
        if self.control_input is None:
            with torch.no_grad():
                self.control_input = self.t2i_model(self.cond_hint.to(x_noisy.dtype))
        features = self.control_input
        if not isinstance(features, dict):  # an older adapter's list: SDXL ones put the middle feature last
            xl = getattr(self.t2i_model, "xl", False)
            features = {"input": features[:-1], "middle": features[-1:]} if xl else {"input": features}
        control = {key: [None if a is None else a.clone() for a in values] for key, values in features.items()}
        return self.control_merge(control, prev, x_noisy.dtype)

    def copy(self) -> T2IAdapter:
        c = type(self).__new__(type(self))
        T2IAdapter.__init__(c, self.t2i_model, self.channels_in, self.compression_ratio, self.upscale_algorithm,
                            self.device)
        self.copy_to(c)
        return c

    def cleanup(self) -> None:
        self.control_input = None
        super().cleanup()


# -- loaders ---------------------------------------------------------------------------------------------------

def load_controlnet_state_dict(state_dict: Mapping[str, Any], model: Any = None,
                               model_options: Mapping[str, Any] | None = None) -> Any:
    """The ControlNet or T2I-Adapter a state dict holds (``model``: the base MODEL of a diff ControlNet)."""
    from hearth_comfy_compat import comfy_sd

    return comfy_sd._load_tensors("controlnet", state_dict, model=model)


def load_controlnet(ckpt_path: str, model: Any = None, model_options: Mapping[str, Any] | None = None) -> Any:
    """ComfyUI's ControlNet file loader (ControlNetLoader, DiffControlNetLoader with ``model``)."""
    from hearth_comfy_compat import comfy_sd

    return comfy_sd._load("controlnet", ckpt_path, model=model)


def load_t2i_adapter(t2i_data: Mapping[str, Any], model_options: Mapping[str, Any] | None = None) -> Any:
    """The T2I-Adapter a state dict holds."""
    return load_controlnet_state_dict(t2i_data)


def controlnet_config(sd: Mapping[str, Any], model_options: Mapping[str, Any] | None = None) -> Any:
    raise hook.lacking("comfy.controlnet.controlnet_config", f"{_ISSUE}: Hearth has no ControlNet network to "
                                                             f"configure")


def controlnet_load_state_dict(control_model: torch.nn.Module, sd: Mapping[str, Any]) -> torch.nn.Module:
    """Load ``sd`` into a pack's ControlNet module (missing and unexpected keys are logged); returns it."""
    import logging

    missing, unexpected = control_model.load_state_dict(dict(sd), strict=False)
    if missing:
        logging.getLogger(__name__).warning("missing controlnet keys: %s", missing)
    if unexpected:
        logging.getLogger(__name__).debug("unexpected controlnet keys: %s", unexpected)
    return control_model
