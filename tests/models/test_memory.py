"""Dropping a model frees its memory for real: what the executor's ``ram`` cache relies on when it evicts."""

from __future__ import annotations

import weakref

import psutil
import pytest
import torch
from torch import nn

from hearth.core.executor.cache import CacheEntry, RAMCache
from hearth.core.models.loading import load_into, load_state_dict
from hearth.core.models.manager import ModelManager
from hearth.core.models.patches import PatchedModel
from tests.models.conftest import write_safetensors

MB = 1024 * 1024


def rss() -> int:
    return psutil.Process().memory_info().rss


def many_small_layers(total_mb: int = 200) -> nn.Module:
    # 1 MiB tensors: small enough that glibc serves them from its heap rather than mmap, which is the case where
    # dropping a model used to leave its memory parked in the allocator.
    with torch.device("meta"):
        module = nn.Sequential(*[nn.Linear(512, 512) for _ in range(total_mb)])
    return _filled(module)


def _filled(module: nn.Module) -> nn.Module:
    module = module.to_empty(device="cpu")
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(0.5)  # touch every page, so the memory is really resident
    return module


def evict_through_ram_cache(model: PatchedModel) -> RAMCache:
    """Put a model in the executor's ram cache as a loader node's output, then make the cache evict it."""
    cache = RAMCache(min_free_gb=0, available=lambda: -1)  # "always short of memory": evict everything old
    cache.put("loader-signature", CacheEntry(outputs=([model],)))
    cache.make_room()
    return cache


@pytest.mark.parametrize("partial", [False, True])
def test_evicting_an_in_memory_model_gives_its_memory_back(partial):
    before = rss()
    module = many_small_layers(200)
    model = PatchedModel(module, name="big", load_device="cpu")
    model.add_patches({"0.weight": torch.ones(512, 512)}, 0.5)
    manager = ModelManager("cpu", budgets={"cpu": model.nbytes // 2 if partial else 2 * model.nbytes})
    manager.load(model)
    assert manager.loaded_models()[0].partial is partial
    if partial:
        with torch.no_grad():
            module(torch.ones(1, 512))  # streams every offloaded layer in and out once
    loaded = rss()
    assert loaded - before > 180 * MB
    alive = weakref.ref(module)
    del module
    cache = evict_through_ram_cache(model)
    del model
    # Reference counting alone frees it (no cycles through hooks or the manager), at once, no gc.collect().
    assert alive() is None and cache.evicted == 1 and len(cache) == 0
    assert loaded - rss() > 170 * MB, f"only {(loaded - rss()) / MB:.0f} MB came back"
    assert manager.loaded_models() == [] and manager.stats.collected == 1


def test_dropping_a_memory_mapped_model_unmaps_it(tmp_path):
    torch.manual_seed(0)
    source = {f"{i}.weight": torch.randn(1024, 1024) for i in range(50)}  # 200 MiB of float32
    path = write_safetensors(tmp_path / "big.safetensors", source)
    del source
    before = rss()
    with torch.device("meta"):
        module = nn.Sequential(*[nn.Linear(1024, 1024, bias=False) for _ in range(50)])
    load_into(module, load_state_dict(path), source=path)
    model = PatchedModel(module, name="big", load_device="cpu")
    ModelManager("cpu", budgets={"cpu": 2 * model.nbytes}).load(model)
    with torch.no_grad():
        module(torch.ones(1, 1024))  # every weight read: the mapping is resident
    loaded = rss()
    assert loaded - before > 180 * MB
    del module
    cache = evict_through_ram_cache(model)
    del model
    assert cache.evicted == 1
    assert loaded - rss() > 180 * MB
