"""ModelManager with the CPU as its device: budgets, LRU eviction, partial offload, free, status."""

from __future__ import annotations

import pytest
import torch

from hearth.core.models.manager import MiB, ModelManager, ModelTooLargeError
from hearth.core.models.patches import PatchedModel
from tests.models.conftest import TinyNet, mlp


def model(name: str, layers: int = 4, width: int = 32, seed: int = 0, **kwargs) -> PatchedModel:
    return PatchedModel(mlp(layers, width, seed), name=name, load_device="cpu", **kwargs)


def names(manager: ModelManager) -> list[str]:
    return [r.name for r in manager.loaded_models()]


def test_least_recently_used_model_is_evicted_first():
    a, b, c = model("a"), model("b"), model("c")
    manager = ModelManager("cpu", budgets={"cpu": int(2.5 * a.nbytes)})
    manager.load(a)
    manager.load(b)
    manager.load(a)  # a is now more recent than b
    manager.load(c)
    assert names(manager) == ["c", "a"]
    assert manager.stats.evictions == 1
    assert manager.stats.by_model == {"a": 1, "b": 1, "c": 1}, "a stayed resident and was never reloaded"
    manager.load(b)  # now a is least recent
    assert names(manager) == ["b", "c"]
    assert manager.stats.by_model["b"] == 2


def test_models_loaded_together_are_never_evicted_for_each_other():
    a, b, c = model("a"), model("b"), model("c")
    manager = ModelManager("cpu", budgets={"cpu": int(2.5 * a.nbytes)})
    manager.load(c)
    manager.load([a, b])
    assert sorted(names(manager)) == ["a", "b"]
    assert all(not r.partial for r in manager.loaded_models())


def test_partial_offload_gives_the_same_output_as_full(tiny_net):
    x = torch.randn(2, 3, 8, 8)
    reference = tiny_net(x)
    net = PatchedModel(tiny_net, name="tiny", load_device="cpu")
    budget = int(0.4 * net.nbytes)
    manager = ModelManager("cpu", budgets={"cpu": budget})
    manager.load(net)
    record = manager.loaded_models()[0]
    assert record.partial and 0 < record.resident_bytes <= budget
    assert manager.used_bytes("cpu") == record.resident_bytes
    streamed = [u.name for u in record.placement.streamed]
    parked = {n: tiny_net.get_submodule(n).weight.data_ptr() for n in streamed if n}
    assert torch.equal(tiny_net(x), reference)
    assert record.placement.streams >= len(streamed), "every streamed unit is copied in for the forward"
    # After the forward the streamed units are back on their offload tensors, not left on the device.
    assert {n: tiny_net.get_submodule(n).weight.data_ptr() for n in parked} == parked


def test_streamed_unit_sees_its_device_copy_during_forward(tiny_net):
    net = PatchedModel(tiny_net, name="tiny", load_device="cpu")
    manager = ModelManager("cpu", budgets={"cpu": 0})
    manager.load(net)
    at_rest = tiny_net.head.weight.data_ptr()
    during = []
    tiny_net.head.register_forward_hook(lambda m, a, o: during.append(m.weight.data_ptr()), prepend=True)
    tiny_net(torch.randn(1, 3, 8, 8))
    assert during and during[0] != at_rest
    assert tiny_net.head.weight.data_ptr() == at_rest


def test_patches_on_a_partially_offloaded_model(tiny_net):
    x = torch.randn(2, 3, 8, 8)
    base = PatchedModel(tiny_net, name="tiny", load_device="cpu")
    patched = base.clone()
    patched.add_patches({"head.weight": torch.randn(5, 16), "blocks.3.weight": torch.randn(16, 16, 3, 3),
                         "conv_in.bias": torch.randn(16)}, 0.7)
    full = ModelManager("cpu", budgets={"cpu": 10 * base.nbytes})
    full.load(patched)
    expected = tiny_net(x)
    full.unload(patched)
    partial = ModelManager("cpu", budgets={"cpu": int(0.3 * base.nbytes)})
    partial.load(patched)
    assert partial.loaded_models()[0].partial
    assert torch.equal(tiny_net(x), expected)
    partial.load(base)  # patch set change while partially loaded
    assert partial.stats.repatches == 1


def test_partial_load_grows_when_the_budget_allows(tiny_net):
    net = PatchedModel(tiny_net, name="tiny", load_device="cpu")
    manager = ModelManager("cpu", budgets={"cpu": int(0.3 * net.nbytes)})
    manager.load(net)
    assert manager.loaded_models()[0].partial
    manager.load(net)  # nothing changed: stays as it is
    assert manager.stats.loads == 1
    manager.set_budget("cpu", 2 * net.nbytes)
    manager.load(net)
    record = manager.loaded_models()[0]
    assert not record.partial and record.loads == 2
    assert torch.equal(tiny_net(torch.ones(1, 3, 4, 4)), TinyNet()(torch.ones(1, 3, 4, 4)))


def test_inference_memory_evicts_others_and_shrinks_a_resident_model():
    a, b = model("a", memory_estimate=0), model("b", memory_estimate=lambda shape, dtype: 4 * shape[0] if shape else 0)
    budget = int(2.2 * a.nbytes)
    manager = ModelManager("cpu", budgets={"cpu": budget})
    manager.load([a, b])
    assert b.memory_required((a.nbytes // 8,)) == a.nbytes // 2
    manager.load(b, memory_required=b.memory_required((a.nbytes // 8,)))
    assert names(manager) == ["b"], "a must leave so b has working memory"
    manager.load(b, memory_required=int(1.5 * b.nbytes))
    record = manager.loaded_models()[0]
    assert record.partial and record.resident_bytes <= budget - int(1.5 * b.nbytes)
    with pytest.raises(ModelTooLargeError, match=r"running b needs .* MiB of working memory on cpu"):
        manager.load(b, memory_required=budget + 1)


def test_make_room_for_scratch_memory():
    a, b = model("a"), model("b")
    manager = ModelManager("cpu", budgets={"cpu": 3 * a.nbytes})
    manager.load(a)
    manager.load(b)
    freed = manager.make_room(2 * a.nbytes)
    assert freed == a.nbytes and names(manager) == ["b"]


def test_free_unloads_everything_and_status_reports_it():
    a, b = model("a"), model("b")
    manager = ModelManager("cpu", vram_mb=64)
    assert manager.budget() == 64 * MiB
    manager.load([a, b])
    status = manager.status()
    (device,) = status["devices"]
    assert set(device) >= {"name", "type", "index", "vram_total", "vram_free", "torch_vram_total", "torch_vram_free"}
    assert device["type"] == "cpu" and device["vram_total"] > device["vram_free"] > 0
    assert device["hearth"]["used"] == a.nbytes + b.nbytes and device["hearth"]["fixed_budget"]
    assert {m["name"] for m in status["models"]} == {"a", "b"}
    result = manager.free(unload_models=True, free_memory=True)
    assert sorted(result["unloaded"]) == ["a", "b"]
    assert manager.status()["models"] == [] and manager.used_bytes("cpu") == 0
    manager.load(a)
    assert manager.free(unload_models=False)["unloaded"] == [] and names(manager) == ["a"]


def test_automatic_cpu_budget_is_what_the_machine_has():
    manager = ModelManager("cpu")
    assert 0 < manager.budget() <= manager.system_stats_devices()[0]["vram_total"]


def test_cpu_to_cpu_without_a_fixed_budget_never_evicts_or_streams(monkeypatch):
    from hearth.core.models import manager as manager_module
    from hearth.core.models.devices import DeviceMemory

    # A machine that claims to be out of RAM: evicting or streaming CPU weights to the CPU would not help it.
    monkeypatch.setattr(manager_module, "memory_info", lambda device: DeviceMemory(2**30, 1024, 2**30, 1024))
    a, b = model("a"), model("b")
    manager = ModelManager("cpu")
    manager.load(a)
    manager.load(b)
    assert sorted(names(manager)) == ["a", "b"]
    assert manager.stats.evictions == 0 and manager.stats.partial_loads == 0


def test_only_standard_layers_or_marked_ones_stream():
    class Block(torch.nn.Module):  # owns a tensor, may be read by anyone: never streamed
        def __init__(self):
            super().__init__()
            self.pos = torch.nn.Parameter(torch.zeros(64, 64))

    class Marked(Block):
        hearth_streamable = True

    net = torch.nn.Sequential(Block(), Marked(), torch.nn.Linear(64, 64), torch.nn.Linear(64, 64))
    net[3].hearth_streamable = False  # a parent reads its weight directly: keep it resident
    model = PatchedModel(net, name="mixed", load_device="cpu")
    manager = ModelManager("cpu", budgets={"cpu": 0})
    manager.load(model)
    placement = manager.loaded_models()[0].placement
    assert [u.name for u in placement.resident] == ["0", "3"]
    assert [u.name for u in placement.streamed] == ["1", "2"]


def test_a_group_too_big_for_the_budget_loads_the_rest_partially():
    a, b = model("a"), model("b", seed=1)
    x = torch.randn(3, 32)
    expected = b.module(x)
    manager = ModelManager("cpu", budgets={"cpu": int(1.5 * a.nbytes)})
    manager.load([a, b])
    records = {r.name: r for r in manager.loaded_models()}
    assert not records["a"].partial and records["b"].partial
    assert manager.used_bytes("cpu") <= manager.budget()
    assert torch.equal(b.module(x), expected)
