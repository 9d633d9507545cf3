"""Control-LoRA files (Stability AI's ``control-lora-*``): a ControlNet stored as low-rank changes to its MODEL's UNet.

A Control-LoRA file (``lora_controlnet`` marks it) holds the ControlNet's own layers in full (``input_hint_block``,
``zero_convs``, ``middle_block_out``, norms...) and, for layers it shares with the UNet's encoder, ``<layer>.up`` /
``<layer>.down`` pairs. As ComfyUI's ``ControlLora`` does, the network is assembled when a MODEL first evaluates
with it: the UNet's weights, then the file's full weights, and each shared layer's weight plus
``up.flatten(1) @ down.flatten(1)`` reshaped to the weight. One network is kept per MODEL's weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from hearth.core.models import PatchedModel, load_into

from .controlnet import ControlNet
from .controlnet_model import ControlNetConfig, ControlNetModel, hint_shape
from .ops import cast_layers, compute_dtype_of

MARKER = "lora_controlnet"


def assemble(weights: Mapping[str, torch.Tensor], unet_state: Mapping[str, torch.Tensor],
             config: ControlNetConfig, source: str, dtype: torch.dtype) -> ControlNetModel:
    """The ControlNet of a Control-LoRA's ``weights`` on a UNet's ``unet_state``, computing in ``dtype``.

    Weights keep their stored dtype, except that a layer's weight plus its low-rank change is kept at least as
    wide as ``dtype``: ComfyUI adds the change to the weight cast to the compute dtype, so a float16 UNet on a
    float32 CPU sums in float32.
    """
    with torch.device("meta"):
        module = ControlNetModel(config)
    state = {}
    for key, shape in ((k, v.shape) for k, v in module.state_dict().items()):
        layer = key.rsplit(".", 1)[0]
        if key in weights:
            value = weights[key]
        elif key in unet_state:
            value = unet_state[key].to("cpu")
        else:
            continue  # load_into names what is missing
        if key.endswith(".weight") and f"{layer}.up" in weights and key not in weights:
            up, down = weights[f"{layer}.up"].float(), weights[f"{layer}.down"].float()
            wide = dtype if torch.finfo(dtype).bits >= torch.finfo(value.dtype).bits else value.dtype
            value = (value.float() + (up.flatten(1) @ down.flatten(1)).reshape(shape)).to(wide)
        state[key] = value
    # Layers of mixed dtypes: each casts its weights to the input's dtype as it runs.
    return cast_layers(load_into(module, state, source=source).eval().requires_grad_(False), dtype)


class ControlLora(ControlNet):
    """CONTROL_NET of a Control-LoRA file; its network exists once a MODEL has evaluated with it."""

    kind = "Control-LoRA"

    def __init__(self, weights: Mapping[str, torch.Tensor], family: str, name: str, source: Any = None) -> None:
        self.weights = weights
        self.file_name = name
        # id of a MODEL's weights -> the network built on them, kept with the file's load record (loads share it)
        self.built: dict[int, PatchedModel] = getattr(source, "built", None)
        if self.built is None:
            self.built = {}
        super().__init__(None, family, source)  # type: ignore[arg-type]

    @property
    def name(self) -> str:
        return self.file_name

    @property
    def hint_channels(self) -> int:
        return self.weights["input_hint_block.0.weight"].shape[1]

    def get_models(self) -> list[PatchedModel]:
        earlier = self.previous_controlnet.get_models() if self.previous_controlnet is not None else []
        return [*earlier, *self.built.values()]

    def get_control(self, x_in: torch.Tensor, sigma: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor,
                    y: torch.Tensor | None, model: Any = None, batched_number: int = 1,
                    **_: Any) -> dict[str, list[Any]] | None:
        if model is None or not hasattr(getattr(model, "diffusion", None), "unet"):
            raise ValueError(f"Control-LoRA {self.name!r} is built on the MODEL's UNet, and no SD MODEL was given")
        self.patcher = self._network_for(model)
        return super().get_control(x_in, sigma, timestep, context, y, model=model, batched_number=batched_number)

    def _network_for(self, model: Any) -> PatchedModel:
        key = id(model.patcher.weights)
        if key not in self.built:
            unet = model.diffusion.unet
            if any(k.startswith("label_emb.") for k in self.weights) != (unet.config.adm_in_channels is not None):
                raise self._mismatch(model, "")
            config = ControlNetConfig(unet.config, *hint_shape(self.weights))
            module = assemble(self.weights, unet.state_dict(), config, f"{self.name} (Control-LoRA)",
                              compute_dtype_of(unet))
            self.built[key] = PatchedModel(module, name=self.name, load_device=model.patcher.load_device)
        return self.built[key]
