"""The executor's ``ram`` cache and a loaded checkpoint: evicting the loader's outputs frees the weights for real."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import psutil
import torch
from hearth_sd.checkpoint import CONFIG_METADATA_KEY
from hearth_sd.nodes_text import CLIPTextEncode
from hearth_sd.tiny import tiny_state_dict
from hearth_sd.unet import UNetConfig, UNetModel

from hearth.core.executor.cache import CacheEntry, RAMCache
from hearth.core.models import load_cache, release_memory, write_safetensors
from hearth.core.models.loader_nodes import CheckpointLoaderSimple
from tests.sd.nodes_testing import in_runtime

MB = 1024 * 1024


def rss() -> int:
    return psutil.Process().memory_info().rss


def write_sd1_checkpoint(path: Path) -> int:
    """An SD1-layout checkpoint with a ~190 MB UNet (float16, small constant weights): big enough to see in RSS."""
    tensors, metadata = tiny_state_dict("sd1")
    tensors = {k: v for k, v in tensors.items() if not k.startswith("model.diffusion_model.")}
    config = UNetConfig(model_channels=128, channel_mult=(1, 2, 4), transformer_depth=(1, 1, 1), context_dim=32,
                        num_heads=4)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in UNetModel(config).state_dict().items()}
    for key, shape in shapes.items():
        tensors["model.diffusion_model." + key] = torch.full(shape, 0.01, dtype=torch.float16)
    assert json.loads(metadata[CONFIG_METADATA_KEY])["unet"]["num_heads"] == config.num_heads  # tiny SD1's heads
    path.parent.mkdir(parents=True)
    write_safetensors(tensors, path, metadata)
    return sum(t.numel() * t.element_size() for k, t in tensors.items() if k.startswith("model.diffusion_model."))


def test_evicting_the_loader_output_frees_the_checkpoint(tmp_path):
    unet_bytes = write_sd1_checkpoint(tmp_path / "checkpoints" / "big-sd1.safetensors")
    assert unet_bytes > 150 * MB
    with in_runtime(tmp_path):
        gc.collect()
        release_memory()  # earlier tests' garbage must not leave the heap during this measurement
        before = rss()
        outputs = CheckpointLoaderSimple().load_checkpoint("big-sd1.safetensors")
        model, clip = outputs[:2]
        (cond,) = CLIPTextEncode().encode(clip, "a fox")
        model.denoise(torch.zeros(1, 4, 8, 8), torch.tensor([1.0]), cond[0][0], cond[0][1])  # reads every weight
        loaded = rss()
        assert loaded - before > 0.8 * unet_bytes
        alive = weakref.ref(model.diffusion.unet)
        del model, clip, cond
        cache = RAMCache(min_free_gb=0, available=lambda: -1)  # "always short of memory": evict everything old
        cache.put("loader-signature", CacheEntry(outputs=tuple([value] for value in outputs)))
        del outputs
        cache.make_room()
        # Reference counting alone frees it, at once: no cycle, and neither the load cache nor the manager holds it.
        assert cache.evicted == 1 and alive() is None
        assert loaded - rss() > 0.8 * unet_bytes, f"only {(loaded - rss()) / MB:.0f} MB came back"
        assert not [key for key, _ in load_cache().records("checkpoint") if "big-sd1" in key[1]]
