"""ComfyUI's ``comfy.ldm.models.autoencoder``: the KL autoencoder (SD's VAE) and its latent regulariser, with
ComfyUI's constructors and weight names, so a VAE state dict loads into :class:`AutoencoderKL`. Pure torch.

What differs: ComfyUI's ``AutoencodingEngine`` builds its parts from ``target`` strings naming ComfyUI classes;
here ``encoder_config`` / ``decoder_config`` take this package's ``Encoder``/``Decoder`` parameters directly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hearth_comfy_compat.comfyui.comfy import ops as comfy_ops
from hearth_comfy_compat.comfyui.comfy.ldm.modules.diffusionmodules.model import Decoder, Encoder
from hearth_comfy_compat.comfyui.comfy.ldm.modules.distributions.distributions import (
    DiagonalGaussianDistribution,
)

__all__ = ["AbstractAutoencoder", "AutoencoderKL", "AutoencodingEngine", "AutoencodingEngineLegacy",
           "DiagonalGaussianRegularizer"]


class DiagonalGaussianRegularizer(nn.Module):
    """Turns the encoder's moments into a latent: a sample with ``sample=True``, else the mean."""

    def __init__(self, sample: bool = False) -> None:
        super().__init__()
        self.sample = sample

    def get_trainable_parameters(self) -> Any:
        yield from ()

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        posterior = DiagonalGaussianDistribution(z)
        return (posterior.sample() if self.sample else posterior.mode()), {}


class AbstractAutoencoder(nn.Module):
    """The shared surface: ``encode``/``decode`` and the input key of training code (unused in inference)."""

    def __init__(self, ema_decay: float | None = None, monitor: str | None = None, input_key: str = "jpg",
                 **kwargs: Any) -> None:
        super().__init__()
        self.input_key = input_key
        self.use_ema = ema_decay is not None
        self.monitor = monitor

    def get_input(self, batch: dict[str, Any]) -> torch.Tensor:
        return batch[self.input_key]

    def encode(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        raise NotImplementedError("encode() must be implemented by a subclass")

    def decode(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        raise NotImplementedError("decode() must be implemented by a subclass")


class AutoencodingEngine(AbstractAutoencoder):
    """An encoder, a decoder and a regulariser between them."""

    def __init__(self, *args: Any, encoder_config: dict[str, Any], decoder_config: dict[str, Any],
                 regularizer_config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.encoder = Encoder(**encoder_config.get("params", encoder_config))
        self.decoder = Decoder(**decoder_config.get("params", decoder_config))
        self.regularization = DiagonalGaussianRegularizer(**(regularizer_config or {}).get("params", {}))

    def get_last_layer(self) -> torch.Tensor:
        return self.decoder.conv_out.weight

    def encode(self, x: torch.Tensor, return_reg_log: bool = False, unregularized: bool = False) -> Any:
        z = self.encoder(x)
        if unregularized:
            return z, {}
        z, log = self.regularization(z)
        return (z, log) if return_reg_log else z

    def decode(self, z: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self.decoder(z, **kwargs)

    def forward(self, x: torch.Tensor, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        z, log = self.encode(x, return_reg_log=True)
        return z, self.decode(z, **kwargs), log


class AutoencodingEngineLegacy(AutoencodingEngine):
    """The SD layout: ``ddconfig`` for both halves, ``quant_conv`` / ``post_quant_conv`` around the latent."""

    def __init__(self, embed_dim: int, **kwargs: Any) -> None:
        self.max_batch_size = kwargs.pop("max_batch_size", None)
        ddconfig = kwargs.pop("ddconfig")
        super().__init__(encoder_config=ddconfig, decoder_config=ddconfig, **kwargs)
        conv = comfy_ops.disable_weight_init.Conv2d
        double = 1 + int(ddconfig["double_z"])
        self.quant_conv = conv(double * ddconfig["z_channels"], double * embed_dim, 1)
        self.post_quant_conv = conv(embed_dim, ddconfig["z_channels"], 1)
        self.embed_dim = embed_dim

    def encode(self, x: torch.Tensor, return_reg_log: bool = False) -> Any:
        z, log = self.regularization(self.quant_conv(self.encoder(x)))
        return (z, log) if return_reg_log else z

    def decode(self, z: torch.Tensor, **decoder_kwargs: Any) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(z), **decoder_kwargs)


class AutoencoderKL(AutoencodingEngineLegacy):
    """SD's VAE: ``AutoencoderKL(ddconfig={...}, embed_dim=4)``; ``encode`` gives the latent mean."""

    def __init__(self, **kwargs: Any) -> None:
        if "lossconfig" in kwargs:
            kwargs["loss_config"] = kwargs.pop("lossconfig")
        kwargs.pop("loss_config", None)
        super().__init__(regularizer_config={"params": {"sample": False}}, **kwargs)
