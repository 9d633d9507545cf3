"""Every weight patch kind ComfyUI's ``comfy.lora.load_lora`` writes (lora with LoCon mid and DoRA, LoHa with and
without Tucker cores, LoKr whole and low-rank, GLoRA, diff, set) goes on a real tiny SD1 MODEL through
``add_patches`` and gives the weight that the published definition, computed here independently in float64, gives; and a LyCORIS
file read by a pack through ``comfy.lora`` patches the weights as Hearth's own LoraLoader does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from hearth.core.models import lora_math, write_safetensors
from hearth.core.plugins import active_plugins
from tests.sd.nodes_testing import in_runtime

CONV = "diffusion_model.input_blocks.4.0.in_layers.2.weight"  # (64, 32, 3, 3)
LINEAR = "diffusion_model.input_blocks.1.1.transformer_blocks.0.ff.net.2.weight"  # (32, 128)

Expected = Callable[[torch.Tensor], torch.Tensor]


def kohya(path: str) -> str:
    return "lora_unet_" + path[len("diffusion_model."):-len(".weight")].replace(".", "_")


def lycoris_file() -> dict[str, torch.Tensor]:
    """A LyCORIS-style file in kohya naming: LoHa, DoRA, LoCon with mid, LoKr (whole and low-rank)."""
    lin, q, k, conv, conv2 = (LINEAR, LINEAR.replace("ff.net.2", "attn1.to_q"), LINEAR.replace("ff.net.2", "attn2.to_k"),
                              CONV, CONV.replace("input_blocks.4", "input_blocks.5"))
    tensors = {f"{kohya(lin)}.hada_w1_a": rand(32, 4, seed=1), f"{kohya(lin)}.hada_w1_b": rand(4, 128, seed=2),
               f"{kohya(lin)}.hada_w2_a": rand(32, 4, seed=3), f"{kohya(lin)}.hada_w2_b": rand(4, 128, seed=4),
               f"{kohya(lin)}.alpha": torch.tensor(2.0),
               f"{kohya(conv)}.lokr_w1": rand(8, 4, seed=5), f"{kohya(conv)}.lokr_w2": rand(8, 8, 3, 3, seed=6),
               f"{kohya(q)}.lora_up.weight": rand(32, 4, seed=7), f"{kohya(q)}.lora_down.weight": rand(4, 32, seed=8),
               f"{kohya(q)}.alpha": torch.tensor(4.0), f"{kohya(q)}.dora_scale": rand(1, 32, seed=9).abs() + 0.5,
               f"{kohya(conv2)}.lora_up.weight": rand(64, 4, 1, 1, seed=10),
               f"{kohya(conv2)}.lora_mid.weight": rand(4, 4, 3, 3, seed=11),
               f"{kohya(conv2)}.lora_down.weight": rand(4, 64, 1, 1, seed=12), f"{kohya(conv2)}.alpha": torch.tensor(4.0),
               f"{kohya(k)}.lokr_w1": rand(4, 4, seed=13), f"{kohya(k)}.lokr_w2_a": rand(8, 2, seed=14),
               f"{kohya(k)}.lokr_w2_b": rand(2, 8, seed=15), f"{kohya(k)}.alpha": torch.tensor(1.0)}
    return tensors


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hearth_sd.tiny import make_tiny_checkpoint

    folder = tmp_path_factory.mktemp("models")
    make_tiny_checkpoint("sd1", folder / "checkpoints" / "tiny-sd1.safetensors")
    (folder / "loras").mkdir()
    write_safetensors(lycoris_file(), folder / "loras" / "lycoris.safetensors")
    return folder


@pytest.fixture(scope="module")
def model(models: Path) -> Iterator[Any]:
    with in_runtime(models):
        from hearth_sd import loaders

        yield loaders.checkpoint(models / "checkpoints" / "tiny-sd1.safetensors")[0]


def rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 0.3


def d(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float64)


def dora(weight: torch.Tensor, delta: torch.Tensor, scale: torch.Tensor, strength: float) -> torch.Tensor:
    """DoRA (Liu et al. 2024): the adapted weight's direction, each input column's magnitude from ``scale``,
    blended with the original by the strength."""
    adapted = weight + delta
    other = [dim for dim in range(adapted.ndim) if dim != 1]
    magnitude = adapted.pow(2).sum(dim=other, keepdim=True).sqrt()
    return weight + strength * (adapted * d(scale) / magnitude - weight)


def cases() -> dict[str, tuple[str, tuple[str, tuple[Any, ...]], float, Expected]]:
    """name -> (weight key, ComfyUI patch, strength, the patched weight from the original, in float64)."""
    found: dict[str, tuple[str, tuple[str, tuple[Any, ...]], float, Expected]] = {}

    up, down = rand(32, 4, seed=1), rand(4, 128, seed=2)
    found["lora"] = (LINEAR, ("lora", (up, down, 2.0, None, None, None)), 0.8,
                     lambda w: w + 0.8 * (2.0 / 4) * d(up) @ d(down))

    cup, cmid, cdown = rand(64, 4, 1, 1, seed=3), rand(4, 4, 3, 3, seed=4), rand(4, 32, 1, 1, seed=5)
    # LoCon: out <- up (1x1) <- mid (3x3 between the ranks) <- down (1x1) <- in.
    found["locon mid"] = (CONV, ("lora", (cup, cdown, 4.0, cmid, None, None)), 1.0,
                          lambda w: w + torch.einsum("oa,abhw,bi->oihw", d(cup[:, :, 0, 0]), d(cmid),
                                                     d(cdown[:, :, 0, 0])))

    scale = rand(1, 128, seed=6).abs() + 0.5
    found["dora linear"] = (LINEAR, ("lora", (up, down, None, None, scale, None)), 0.7,
                            lambda w: dora(w, d(up) @ d(down), scale, 0.7))
    kup, kdown, kscale = rand(64, 2, 1, 1, seed=7), rand(2, 32, 3, 3, seed=8), rand(1, 32, 1, 1, seed=9).abs() + 1
    found["dora conv"] = (CONV, ("lora", (kup, kdown, 2.0, None, kscale, None)), 1.0,
                          lambda w: dora(w, torch.einsum("or,rihw->oihw", d(kup[:, :, 0, 0]), d(kdown)), kscale,
                                         1.0))

    w1a, w1b, w2a, w2b = rand(32, 4, seed=10), rand(4, 128, seed=11), rand(32, 4, seed=12), rand(4, 128, seed=13)
    found["loha"] = (LINEAR, ("loha", (w1a, w1b, 2.0, w2a, w2b, None, None)), 1.5,
                     lambda w: w + 1.5 * (2.0 / 4) * (d(w1a) @ d(w1b)) * (d(w2a) @ d(w2b)))

    # LoHa with Tucker cores (LyCORIS' CP form): factor[p, r, k, l] = sum_ij t[i, j, k, l] wa[i, p] wb[j, r].
    t1, t2 = rand(4, 4, 3, 3, seed=14), rand(4, 4, 3, 3, seed=15)
    ta1, tb1, ta2, tb2 = rand(4, 64, seed=16), rand(4, 32, seed=17), rand(4, 64, seed=18), rand(4, 32, seed=19)

    def tucker(t: torch.Tensor, wa: torch.Tensor, wb: torch.Tensor) -> torch.Tensor:
        return torch.tensordot(torch.tensordot(d(wa), d(t), dims=([0], [0])), d(wb), dims=([1], [0])) \
            .permute(0, 3, 1, 2)

    found["loha tucker"] = (CONV, ("loha", (ta1, tb1, None, ta2, tb2, t1, t2)), 1.0,
                            lambda w: w + tucker(t1, ta1, tb1) * tucker(t2, ta2, tb2))

    k1, k2 = rand(8, 4, seed=20), rand(8, 8, 3, 3, seed=21)

    def kron4(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # [a0*b0, a1*b1, h, w]
        return torch.einsum("ab,cdhw->acbdhw", d(a), d(b)).reshape(a.shape[0] * b.shape[0],
                                                                  a.shape[1] * b.shape[1], *b.shape[2:])

    found["lokr"] = (CONV, ("lokr", (k1, k2, 5.0, None, None, None, None, None)), 1.0,
                     lambda w: w + kron4(k1, k2))  # both factors whole: alpha does not scale
    l1, l2a, l2b = rand(4, 8, seed=22), rand(8, 2, seed=23), rand(2, 16, seed=24)
    found["lokr low rank"] = (LINEAR, ("lokr", (l1, None, 1.0, None, None, l2a, l2b, None)), 1.0,
                              lambda w: w + 0.5 * torch.kron(d(l1), d(l2a) @ d(l2b)))

    a1, a2, b1, b2 = rand(128, 4, seed=25), rand(4, 128, seed=26), rand(32, 4, seed=27), rand(4, 128, seed=28)
    found["glora"] = (LINEAR, ("glora", (a1, a2, b1, b2, 2.0)), 1.0,
                      lambda w: w + (2.0 / 4) * (w @ d(a1) @ d(a2) + d(b1) @ d(b2)))

    delta, replacement = rand(32, 128, seed=29), rand(32, 128, seed=30)
    found["diff"] = (LINEAR, ("diff", (delta,)), 0.5, lambda w: w + 0.5 * d(delta))
    found["set"] = (LINEAR, ("set", (replacement,)), 0.5, lambda w: d(replacement))
    return found


CASES = cases()


@pytest.mark.parametrize("name", list(CASES))
def test_each_kind_patches_the_weight_by_its_definition(model: Any, name: str) -> None:
    key, patch, strength, expected = CASES[name]
    original = model.model_state_dict()[key]
    clone = model.clone()
    assert clone.add_patches({key: patch}, strength) == [key]
    got = clone.get_key_patches(key)[key][0]
    want = expected(d(original))
    # Stored in float16, computed in float32 on the CPU: the patched weight is kept in float32 (as ComfyUI, which
    # holds the whole model in float32 there), not rounded back to the file's float16.
    assert original.dtype == torch.float16 and got.dtype == torch.float32 and got.shape == original.shape
    assert (want - d(original)).abs().max() > 0.05, "the patch must change the weight visibly"
    torch.testing.assert_close(d(got), d(want.to(got.dtype)), rtol=1e-4, atol=1e-5)
    assert not model.patches and torch.equal(model.model_state_dict()[key], original)


def test_every_kind_at_once_is_what_the_model_samples_with(model: Any) -> None:
    """Loaded for a denoise, the patched clone computes with the defined weights (LoCon and LoKr on one conv, LoHa
    and DoRA on one linear stack in order, as ComfyUI applies a key's patches)."""
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    sigma, cond = torch.tensor([2.0]), torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(1))
    base = model.denoise(x, sigma, cond)
    patched, by_definition = model.clone(), model.clone()
    weights: dict[str, torch.Tensor] = {}
    for name in ("locon mid", "lokr", "loha", "dora linear", "glora"):
        key, patch, strength, expected = CASES[name]
        patched.add_patches({key: patch}, strength)
        weights[key] = expected(weights.get(key, d(model.model_state_dict()[key])))
    by_definition.add_patches({key: ("set", (w.float(),)) for key, w in weights.items()})
    got, want = patched.denoise(x, sigma, cond), by_definition.denoise(x, sigma, cond)
    assert (got - base).abs().max() > 1e-2
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(model.denoise(x, sigma, cond), base, rtol=0, atol=0)


def test_a_malformed_patch_is_refused_when_added_naming_its_kind(model: Any) -> None:
    weight = model.model_state_dict()[LINEAR]
    with pytest.raises(ValueError, match="'loha'"):
        model.clone().add_patches({LINEAR: ("loha", (weight,))})
    with pytest.raises(ValueError, match="'boft'"):
        model.clone().add_patches({LINEAR: ("boft", (weight,))})


def test_comfy_lora_computes_with_the_same_code() -> None:
    """comfy.lora (the compat plugin) applies ComfyUI's stored patch lists with core's arithmetic."""
    from hearth_comfy_compat.comfyui.comfy import lora as comfy_lora

    assert comfy_lora.weight_decompose is lora_math.weight_decompose
    assert comfy_lora.pad_tensor_to_shape is lora_math.pad_tensor_to_shape
    key, patch, strength, expected = CASES["loha"]
    weight = rand(32, 128, seed=40)
    got = comfy_lora.calculate_weight([(strength, patch, 1.0, None, None)], weight.clone(), key)
    torch.testing.assert_close(d(got), expected(d(weight)), rtol=1e-5, atol=1e-5)


def test_a_lycoris_file_gives_the_same_weights_through_comfy_lora_as_through_loraloader(model: Any,
                                                                                      models: Path) -> None:
    """Two readings of one file agree: Hearth's LoRA plugin (LoraLoaderModelOnly, its own parser) and a pack's
    comfy.lora.load_lora patch dict put on the MODEL with add_patches (core's arithmetic)."""
    from hearth_comfy_compat.comfyui.comfy import lora as comfy_lora

    with in_runtime(models):
        loader = active_plugins().nodes()["LoraLoaderModelOnly"].cls
        (by_node,) = loader().load_lora_model_only(model, "lycoris.safetensors", 0.8)
    by_pack = model.clone()
    patches = comfy_lora.load_lora(lycoris_file(), comfy_lora.model_lora_keys_unet(model))
    assert len(by_pack.add_patches(patches, 0.8)) == len(patches) == 5
    for key in patches:
        original = model.model_state_dict()[key]
        ours, theirs = by_pack.get_key_patches(key)[key][0], by_node.get_key_patches(key)[key][0]
        assert (d(ours) - d(original)).abs().max() > 0.05, key
        torch.testing.assert_close(d(ours), d(theirs), rtol=1e-3, atol=1e-3)
