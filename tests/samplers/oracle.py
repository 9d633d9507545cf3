"""k-diffusion's ``sampling.py`` loaded by path, the oracle of the parity tests, and the toy models they share.

The ``k-diffusion`` package imports torchvision and more from its ``__init__``; its sampling module needs only
``append_dims`` from ``utils``, so a stand-in package provides that and the sampler math stays k-diffusion's own.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest
import torch

_PACKAGE = "_kdiffusion_oracle"


def load_k_diffusion_sampling() -> types.ModuleType:
    """k-diffusion's sampling module, or a pytest skip naming the install line when it is missing."""
    if f"{_PACKAGE}.sampling" in sys.modules:
        return sys.modules[f"{_PACKAGE}.sampling"]
    spec = importlib.util.find_spec("k_diffusion")
    for needed in ("scipy", "torchdiffeq", "torchsde", "tqdm"):
        if spec is None or importlib.util.find_spec(needed) is None:
            pytest.skip("k-diffusion oracle missing: pip install --no-deps k-diffusion; "
                        "pip install torchsde torchdiffeq scipy tqdm")
    path = Path(spec.submodule_search_locations[0]) / "sampling.py"
    package = types.ModuleType(_PACKAGE)
    package.__path__ = []
    utils = types.ModuleType(f"{_PACKAGE}.utils")

    def append_dims(x, target_dims):
        return x[(...,) + (None,) * (target_dims - x.ndim)]

    utils.append_dims = append_dims
    package.utils = utils
    sys.modules[_PACKAGE] = package
    sys.modules[f"{_PACKAGE}.utils"] = utils
    module_spec = importlib.util.spec_from_file_location(f"{_PACKAGE}.sampling", path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module
    module_spec.loader.exec_module(module)
    return module


def toy_denoiser(x: torch.Tensor, sigma: torch.Tensor, shift: float = 0.0) -> torch.Tensor:
    """A smooth, nonlinear stand-in for a network: its output depends on x, on sigma and on an extra argument."""
    s = sigma.reshape(-1, *([1] * (x.ndim - 1)))
    channel = torch.linspace(0.5, 1.5, x.shape[1], dtype=x.dtype).reshape(1, -1, *([1] * (x.ndim - 2)))
    return torch.tanh(x * channel / (1 + s)) * 0.8 + shift * s / (1 + s)


def seeded_noise(x: torch.Tensor, seed: int = 1234):
    """The same noise sequence for whichever sampler calls it, one draw per call."""
    generator = torch.Generator().manual_seed(seed)
    return lambda sigma, sigma_next: torch.randn(x.shape, generator=generator, dtype=x.dtype)
