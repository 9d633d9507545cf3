"""The AUDIO value as ComfyUI shapes it, checks of it, and resampling as ComfyUI's nodes resample.

AUDIO is a dict ``{"waveform": float tensor [batch, channels, samples], "sample_rate": int}``; samples are
nominally in -1..1. Nodes take it through :func:`audio_input`, which refuses anything else with the node's and the
input's name.

:func:`resample` is band-limited sinc interpolation with a Hann window (zero-crossings 6, roll-off 0.99): the
definition ``torchaudio.functional.resample`` uses with its defaults, which ComfyUI calls wherever two sample rates
meet (AudioConcat, AudioMerge, JoinAudioChannels, the Opus saver). torchaudio is not a Hearth dependency; this is
the same filter computed here.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

ZERO_CROSSINGS = 6
ROLLOFF = 0.99
MAX_SAMPLE_RATE = 192000


def audio_input(value: Any, node: str, name: str = "audio") -> tuple[torch.Tensor, int]:
    """``(waveform, sample_rate)`` of an AUDIO input, or a ValueError naming ``node`` and input ``name``."""
    if not isinstance(value, dict) or "waveform" not in value or "sample_rate" not in value:
        raise ValueError(f"{node}: {name} must be an AUDIO value ({{'waveform': [batch, channels, samples], "
                         f"'sample_rate': int}}), got {type(value).__name__}; connect an audio output (LoadAudio...)")
    waveform, rate = value["waveform"], value["sample_rate"]
    if not isinstance(waveform, torch.Tensor) or waveform.ndim != 3 or not waveform.is_floating_point():
        shape = tuple(waveform.shape) if isinstance(waveform, torch.Tensor) else type(waveform).__name__
        raise ValueError(f"{node}: {name}'s waveform must be a float tensor [batch, channels, samples], got {shape}")
    if isinstance(rate, bool) or not isinstance(rate, int) or not 0 < rate <= MAX_SAMPLE_RATE:
        raise ValueError(f"{node}: {name}'s sample_rate must be a whole number of Hz in 1..{MAX_SAMPLE_RATE}, "
                         f"got {rate!r}")
    return waveform, rate


def make_audio(waveform: torch.Tensor, sample_rate: int) -> dict[str, Any]:
    return {"waveform": waveform, "sample_rate": int(sample_rate)}


def _sinc_kernel(orig: int, new: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, int]:
    base = min(orig, new) * ROLLOFF  # the cutoff, a little under the lower Nyquist frequency
    width = math.ceil(ZERO_CROSSINGS * orig / base)
    offsets = torch.arange(-width, width + orig, dtype=torch.float64, device=device)[None, None] / orig
    phases = torch.arange(0, -new, -1, dtype=torch.float64, device=device)[:, None, None] / new
    t = ((phases + offsets) * base).clamp(-ZERO_CROSSINGS, ZERO_CROSSINGS)
    window = torch.cos(t * math.pi / ZERO_CROSSINGS / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / torch.where(t == 0, torch.ones_like(t), t))
    return (sinc * window * (base / orig)).to(dtype), width


def resample(waveform: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """``waveform [..., samples]`` from ``orig_rate`` to ``new_rate`` Hz; ``ceil(new * samples / orig)`` samples."""
    if orig_rate == new_rate:
        return waveform
    divisor = math.gcd(int(orig_rate), int(new_rate))
    orig, new = orig_rate // divisor, new_rate // divisor
    shape = waveform.shape
    flat = waveform.reshape(-1, shape[-1])
    kernel, width = _sinc_kernel(orig, new, flat.dtype, flat.device)
    padded = F.pad(flat, (width, width + orig))
    out = F.conv1d(padded[:, None], kernel, stride=orig)  # [N, new phases, steps]
    out = out.transpose(1, 2).reshape(flat.shape[0], -1)
    length = math.ceil(new * shape[-1] / orig)
    return out[..., :length].reshape(*shape[:-1], -1)


def match_sample_rates(first: torch.Tensor, first_rate: int, second: torch.Tensor,
                       second_rate: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Both waveforms at the higher of the two rates (ComfyUI's rule: the lower-rate one is resampled up)."""
    if first_rate == second_rate:
        return first, second, first_rate
    if first_rate > second_rate:
        return first, resample(second, second_rate, first_rate), first_rate
    return resample(first, first_rate, second_rate), second, second_rate


def same_batch(node: str, first: torch.Tensor, second: torch.Tensor, names: tuple[str, str]) -> None:
    if first.shape[0] != second.shape[0]:
        raise ValueError(f"{node}: {names[0]} has a batch of {first.shape[0]} clips and {names[1]} of "
                         f"{second.shape[0]}; give both the same number of clips")
