"""``comfy.model_detection``: the cheap state-dict probes packs call before loading a model themselves.

``unet_prefix_from_state_dict`` says under which prefix a checkpoint keeps its diffusion model; ``count_blocks``
counts numbered blocks. ComfyUI's full UNet-config detection (``detect_unet_config``, ``model_config_from_unet``)
is not offered: Hearth's model plugins detect their families through their own sentinel-key tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Where checkpoints of the families packs load keep their diffusion model, most specific first.
_UNET_PREFIXES = ("model.diffusion_model.", "model.model.", "net.")


def count_blocks(state_dict_keys: Iterable[str], prefix_string: str) -> int:
    """How many consecutive blocks ``prefix_string.format(0)``, ``.format(1)``... the keys have."""
    keys = list(state_dict_keys)
    count = 0
    while any(key.startswith(prefix_string.format(count)) for key in keys):
        count += 1
    return count


def unet_prefix_from_state_dict(state_dict: dict[str, Any]) -> str:
    """The prefix most keys of the diffusion model share (``"model.diffusion_model."`` for an SD checkpoint);
    ``"model."`` when no known prefix has more than a handful of keys."""
    counts = dict.fromkeys(_UNET_PREFIXES, 0)
    for key in state_dict:
        for prefix in _UNET_PREFIXES:
            if key.startswith(prefix):
                counts[prefix] += 1
                break
    best = max(counts, key=lambda prefix: counts[prefix])
    return best if counts[best] > 5 else "model."
