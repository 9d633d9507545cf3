"""Weight patches: clones share weights, patches apply on load and come off bit for bit, no reload from disk."""

from __future__ import annotations

import pytest
import torch

from hearth.core.models import loading
from hearth.core.models.loading import load_into, load_state_dict
from hearth.core.models.manager import ModelManager
from hearth.core.models.patches import PatchedModel, PatchError
from tests.models.conftest import TinyNet, mlp, write_safetensors


def bits(t: torch.Tensor) -> torch.Tensor:
    """A tensor's raw bits, so equality means bit for bit (NaN payloads and -0.0 included)."""
    return t.detach().contiguous().view(-1).view(torch.uint8).clone()


def snapshot(module) -> dict[str, torch.Tensor]:
    return {k: bits(v) for k, v in module.state_dict().items()}


def test_clone_shares_weights_and_copies_only_patch_lists():
    base = PatchedModel(mlp(3, 8), name="mlp", load_device="cpu")
    clone = base.clone()
    assert clone.module is base.module and clone.shares_weights(base)
    clone.add_patches({"0.weight": torch.ones(8, 8)}, 0.5)
    assert base.patches == {} and list(clone.patches) == ["0.weight"]


def test_delta_and_function_patches_apply_in_order_and_restore_exactly():
    module = mlp(2, 8).half()
    # Values an fp32 round trip would not preserve: -0.0 and a NaN with a payload.
    module[0].weight.data[0, 0] = -0.0
    module[0].weight.data.view(torch.int16)[0, 1] = 0x7E01
    before = snapshot(module)
    original = module[0].weight.detach().float().clone()
    model = PatchedModel(module, name="mlp", load_device="cpu")
    delta = torch.randn(8, 8)
    assert model.add_patches({"0.weight": delta, "nope.weight": delta}, 0.5) == ["0.weight"]
    model.add_patches({"0.weight": lambda w, s: w * (1 + s)}, 2.0)
    model.patch_weights()
    expected = ((original + 0.5 * delta) * 3.0).half()
    assert torch.equal(bits(module[0].weight)[2:], bits(expected)[2:])
    assert bits(module[1].weight).equal(before["1.weight"])  # unpatched keys untouched
    model.unpatch_weights()
    after = snapshot(module)
    assert all(after[k].equal(before[k]) for k in before), "restore must be bit for bit"


def test_strength_model_scales_the_original():
    module = mlp(1, 4)
    original = module[0].weight.detach().clone()
    model = PatchedModel(module, name="mlp", load_device="cpu")
    delta = torch.ones(4, 4)
    model.add_patches({"0.weight": delta}, 1.0, strength_model=0.0)
    model.patch_weights()
    assert torch.equal(module[0].weight.detach(), delta)
    model.unpatch_weights()
    assert torch.equal(module[0].weight.detach(), original)


def test_patch_shape_errors_name_the_model_and_key():
    model = PatchedModel(mlp(1, 4), name="my-unet", load_device="cpu")
    with pytest.raises(PatchError, match=r"my-unet: patch for '0.weight' has shape \(3, 3\), the weight has \(4, 4\) "
                                         r"\(from lora.safetensors\)"):
        model.add_patches({"0.weight": torch.zeros(3, 3)}, source="lora.safetensors")
    before = snapshot(model.module)
    model.add_patches({"0.bias": torch.ones(4)})
    model.add_patches({"0.weight": lambda w, s: w[:2]})
    with pytest.raises(PatchError, match="my-unet: patch function for '0.weight' returned shape"):
        model.patch_weights()
    assert all(snapshot(model.module)[k].equal(v) for k, v in before.items()), "a failed patch set leaves nothing"


def test_switching_clones_swaps_patch_sets_without_touching_the_file(tmp_path, monkeypatch):
    source = TinyNet()
    path = write_safetensors(tmp_path / "tiny.safetensors", {k: v.half() for k, v in source.state_dict().items()})
    opens = []
    real_open = loading._open
    monkeypatch.setattr(loading, "_open", lambda p: opens.append(p) or real_open(p))

    with torch.device("meta"):
        module = TinyNet()
    load_into(module, load_state_dict(path), source=path)
    assert opens, "the spy must see the checkpoint being read"
    opens.clear()
    base = PatchedModel(module, name="tiny", load_device="cpu")
    pristine = snapshot(module)
    manager = ModelManager("cpu", budgets={"cpu": 10 * base.nbytes})

    delta = {"head.weight": torch.randn(5, 16), "blocks.0.weight": torch.randn(16, 16, 3, 3)}
    outputs = {}
    for strength in (0.25, 1.0, 0.25, 0.0):
        lora = base.clone()
        lora.add_patches(delta, strength)
        manager.load(lora)
        got = snapshot(module)
        head = pristine["head.weight"].view(torch.float16).float().reshape(5, 16)
        expected_head = (head + strength * delta["head.weight"]).half()
        assert got["head.weight"].equal(bits(expected_head))
        outputs.setdefault(strength, got["blocks.0.weight"])
        assert got["blocks.0.weight"].equal(outputs[strength]), "same strength, same weights"
    manager.load(base)  # the unpatched base: originals back, bit for bit
    assert all(snapshot(module)[k].equal(v) for k, v in pristine.items())
    assert opens == [], "changing a patch strength must not read the checkpoint again"
    assert manager.stats.loads == 1 and manager.stats.repatches == 4


def test_unload_restores_originals(tmp_path):
    module = mlp(2, 8)
    before = snapshot(module)
    model = PatchedModel(module, name="mlp", load_device="cpu")
    model.add_patches({"1.bias": torch.ones(8)}, 3.0)
    manager = ModelManager("cpu", budgets={"cpu": 10 * model.nbytes})
    manager.load(model)
    assert not snapshot(module)["1.bias"].equal(before["1.bias"])
    assert manager.status()["models"][0]["patched_keys"] == 1
    manager.unload(model)
    assert all(snapshot(module)[k].equal(v) for k, v in before.items())
