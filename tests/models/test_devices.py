"""Devices: compute dtype per device, memory figures, byte counts (CUDA answers faked where there is no GPU)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hearth.core.models.devices import compute_dtype, memory_info, module_bytes
from hearth.core.models.manager import DEFAULT_CUDA_RESERVE, ModelManager


@pytest.fixture
def fake_gpu(monkeypatch):
    """A CUDA device with a settable capability and 24 GiB, 20 GiB free, 3 GiB reserved by torch (1 GiB in use)."""
    state = {"capability": (8, 6), "bf16": True}
    cuda = torch.cuda
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "current_device", lambda: 0)
    monkeypatch.setattr(cuda, "get_device_capability", lambda device=None: state["capability"])
    monkeypatch.setattr(cuda, "is_bf16_supported", lambda *a, **k: state["bf16"])
    monkeypatch.setattr(cuda, "get_device_name", lambda device=None: "Fake RTX")
    monkeypatch.setattr(cuda, "mem_get_info", lambda device=None: (20 * 2**30, 24 * 2**30))
    monkeypatch.setattr(cuda, "memory_stats", lambda device=None: {"reserved_bytes.all.current": 3 * 2**30,
                                                                    "active_bytes.all.current": 2**30})
    return state


def test_cpu_computes_in_float32():
    assert compute_dtype("cpu") == torch.float32
    assert compute_dtype("cpu", (torch.bfloat16, torch.float16)) == torch.float32


@pytest.mark.parametrize(("capability", "bf16", "preferred", "expected"), [
    ((8, 6), True, (torch.float16, torch.bfloat16, torch.float32), torch.float16),
    ((8, 6), True, (torch.bfloat16, torch.float32), torch.bfloat16),
    ((7, 5), False, (torch.bfloat16, torch.float32), torch.float32),  # Turing: no fast bf16
    ((7, 5), False, (torch.bfloat16, torch.float16, torch.float32), torch.float16),
    ((6, 1), False, (torch.float16, torch.float32), torch.float32),  # Pascal: fp16 storage only
])
def test_cuda_compute_dtype_follows_capability(fake_gpu, capability, bf16, preferred, expected):
    fake_gpu.update(capability=capability, bf16=bf16)
    assert compute_dtype("cuda", preferred) == expected


def test_cuda_memory_counts_torch_cached_memory_as_free(fake_gpu):
    mem = memory_info("cuda")
    assert mem.total == 24 * 2**30
    assert mem.free == 22 * 2**30  # 20 free in the driver + 2 reserved by torch but not in use
    assert (mem.torch_total, mem.torch_free) == (3 * 2**30, 2 * 2**30)


def test_cuda_status_entry_and_automatic_budget(fake_gpu):
    manager = ModelManager("cuda")
    (entry,) = manager.system_stats_devices()
    assert entry == {"name": "cuda:0 Fake RTX", "type": "cuda", "index": 0, "vram_total": 24 * 2**30,
                     "vram_free": 22 * 2**30, "torch_vram_total": 3 * 2**30, "torch_vram_free": 2 * 2**30}
    assert manager.budget() == 22 * 2**30 - DEFAULT_CUDA_RESERVE
    assert ModelManager("cuda", vram_mb=4096).budget() == 4096 * 2**20


def test_module_bytes_counts_tied_weights_once():
    embed = nn.Embedding(100, 8)
    head = nn.Linear(8, 100, bias=False)
    head.weight = embed.weight
    tied = nn.ModuleDict({"embed": embed, "head": head})
    assert module_bytes(tied) == 100 * 8 * 4
    assert module_bytes(nn.Linear(4, 4).half()) == (16 + 4) * 2


def test_module_bytes_counts_views_of_one_storage_each():
    fused = torch.zeros(3, 8, 8)  # q, k and v of an attention layer, kept as views of one buffer
    attn = nn.Module()
    for name, view in zip("qkv", fused.unbind(0), strict=True):
        setattr(attn, name, nn.Parameter(view))
    assert module_bytes(attn) == 3 * 8 * 8 * 4

