"""ComfyUI's HypernetworkLoader (comfy_extras/nodes_hypernetwork.py): an A1111-style hypernetwork on a MODEL.

A hypernetwork file (``models/hypernetworks``, a ``.pt`` dict) holds, per attention width (320, 640, 768, 1280...),
two small MLPs: one for the keys and one for the values of every attention layer whose context has that width.
The loader puts them on a clone of the MODEL as ``attn1_patch`` and ``attn2_patch`` (self and cross attention)
that turn ``k`` into ``k + mlp_k(k) * strength`` and ``v`` into ``v + mlp_v(v) * strength``, exactly as ComfyUI's;
the weights themselves are untouched. The file's options are honoured as ComfyUI reads them: the activation after
each linear layer (see :func:`build_mlp` for ComfyUI's exact rule), ``is_layer_norm``; dropout only matters in
training and is left out. An activation ComfyUI does not know is refused with the file's name (ComfyUI logs it
and returns the model unchanged).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hearth.core.model_folders import model_folders

if TYPE_CHECKING:
    import torch

ACTIVATIONS = ("linear", "relu", "leakyrelu", "elu", "swish", "tanh", "sigmoid", "softsign", "mish")


def _activation(name: str) -> Any:
    import torch.nn as nn

    return {"linear": nn.Identity, "relu": nn.ReLU, "leakyrelu": nn.LeakyReLU, "elu": nn.ELU,
            "swish": nn.Hardswish, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "softsign": nn.Softsign,
            "mish": nn.Mish}[name]()


def build_mlp(weights: dict[str, torch.Tensor], activation: str, layer_norm: bool, activate_output: bool) -> Any:
    """One of a hypernetwork's MLPs from its state dict (``linear.N.weight``/``bias``, in file order): each linear
    layer, its activation, and with ``layer_norm`` a LayerNorm (the next ``.weight``/``.bias`` pair). As ComfyUI
    counts it, the activation is left out only when the linear is the file's very last layer (and not
    ``activate_output``): with layer norms, the last layer is a LayerNorm, so every linear is activated."""
    import torch.nn as nn

    names = [key[:-len(".weight")] for key in weights if key.endswith(".weight")]
    layers: list[nn.Module] = []
    i = 0
    while i < len(names):
        weight, bias = weights[f"{names[i]}.weight"], weights[f"{names[i]}.bias"]
        linear = nn.Linear(weight.shape[1], weight.shape[0])
        linear.load_state_dict({"weight": weight, "bias": bias})
        layers.append(linear)
        if activation != "linear" and (i != len(names) - 1 or activate_output):
            layers.append(_activation(activation))
        if layer_norm:
            i += 1
            norm_weight, norm_bias = weights[f"{names[i]}.weight"], weights[f"{names[i]}.bias"]
            norm = nn.LayerNorm(norm_weight.shape[0])
            norm.load_state_dict({"weight": norm_weight, "bias": norm_bias})
            layers.append(norm)
        i += 1
    return nn.Sequential(*layers).eval().requires_grad_(False)


class HypernetworkPatch:
    """The attention patch: ``(q, k, v, extra_options) -> (q, k + mlp_k(k) * s, v + mlp_v(v) * s)`` where the
    hypernetwork has MLPs for ``k``'s width; other widths pass unchanged."""

    def __init__(self, networks: dict[int, tuple[Any, Any]], strength: float) -> None:
        self.networks = networks
        self.strength = strength

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 extra_options: Any = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pair = self.networks.get(k.shape[-1])
        if pair is None:
            return q, k, v
        mlp_k, mlp_v = (self._placed(mlp, k) for mlp in pair)
        return q, k + mlp_k(k) * self.strength, v + mlp_v(v) * self.strength

    @staticmethod
    def _placed(mlp: Any, like: torch.Tensor) -> Any:
        # The MLPs are tiny: move them where the UNet computes (ComfyUI moves them when the model loads).
        first = next(mlp.parameters(), None)
        if first is not None and (first.device != like.device or first.dtype != like.dtype):
            mlp.to(device=like.device, dtype=like.dtype)
        return mlp

    def to(self, device: Any) -> HypernetworkPatch:
        for pair in self.networks.values():
            for mlp in pair:
                mlp.to(device)
        return self


def load_hypernetwork(path: str | Path, strength: float) -> HypernetworkPatch:
    """The patch of a hypernetwork ``.pt`` file.

    :raises ValueError: naming the file when it is not a hypernetwork or uses an unknown activation.
    """
    import torch

    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
        raise ValueError(f"HypernetworkLoader: {Path(path).name} could not be read as a hypernetwork (.pt): "
                         f"{exc}") from None
    if not isinstance(state, dict):
        raise ValueError(f"HypernetworkLoader: {Path(path).name} is not a hypernetwork (no dict of layers)")
    activation = state.get("activation_func", "linear")
    if activation not in ACTIVATIONS:
        raise ValueError(f"HypernetworkLoader: {Path(path).name} uses the activation {activation!r}, which is not "
                         f"supported (known: {', '.join(ACTIVATIONS)})")
    layer_norm = bool(state.get("is_layer_norm", False))
    activate_output = bool(state.get("activate_output", False))
    networks = {}
    for key, value in state.items():
        try:
            width = int(key)
        except (TypeError, ValueError):
            continue
        networks[width] = tuple(build_mlp(value[i], activation, layer_norm, activate_output) for i in (0, 1))
    if not networks:
        raise ValueError(f"HypernetworkLoader: {Path(path).name} holds no layers (no attention widths as keys)")
    return HypernetworkPatch(networks, strength)


class HypernetworkLoader:
    CATEGORY = "loaders"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load_hypernetwork"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "model": ("MODEL",),
            "hypernetwork_name": (model_folders().list("hypernetworks"),),
            "strength": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01}),
        }}

    def load_hypernetwork(self, model: Any, hypernetwork_name: str, strength: float) -> tuple[Any]:
        path = model_folders().find("hypernetworks", hypernetwork_name)
        patched = model.clone()
        patch = load_hypernetwork(path, strength)
        patched.set_model_attn1_patch(patch)
        patched.set_model_attn2_patch(patch)
        return (patched,)


NODES = {"HypernetworkLoader": HypernetworkLoader}
