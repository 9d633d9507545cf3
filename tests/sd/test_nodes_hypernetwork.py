"""HypernetworkLoader: A1111 hypernetwork files as ComfyUI's attn1/attn2 patches on a MODEL clone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hearth_sd.nodes_hypernetwork import HypernetworkLoader, load_hypernetwork
from hearth_sd.tiny import make_tiny_checkpoint

from hearth.core.models.loader_nodes import CheckpointLoaderSimple
from hearth.core.runtime import Runtime


def mlp_state(width: int, hidden: int, seed: int, layer_norm: bool = False) -> dict[str, torch.Tensor]:
    """A1111's layout: linear.0, (LayerNorm linear.1), linear.2 / linear.1, (LayerNorm linear.3) in file order."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for size_in, size_out in ((width, hidden), (hidden, width)):
        index = len(state) // 2
        state |= {f"linear.{index}.weight": torch.randn(size_out, size_in, generator=gen) * 0.2,
                  f"linear.{index}.bias": torch.randn(size_out, generator=gen) * 0.1}
        if layer_norm:
            state |= {f"linear.{index + 1}.weight": torch.rand(size_out, generator=gen) + 0.5,
                      f"linear.{index + 1}.bias": torch.randn(size_out, generator=gen) * 0.1}
    return state


def write_hypernetwork(path: Path, widths: tuple[int, ...], **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    norm = options.get("is_layer_norm", False)
    state = {width: [mlp_state(width, 2 * width, width, norm), mlp_state(width, 2 * width, width + 1, norm)]
             for width in widths}
    state |= {"activation_func": "relu", **options}
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    make_tiny_checkpoint("sd1", folder / "checkpoints" / "tiny-sd1.safetensors")
    # The tiny SD1 UNet attends at widths 32 and 64 (its text context is 32 wide too).
    write_hypernetwork(folder / "hypernetworks" / "tiny.pt", (32, 64))
    write_hypernetwork(folder / "hypernetworks" / "odd.pt", (32,), activation_func="gelu-ish")
    return folder


@pytest.fixture
def runtime(models, tmp_path):
    with Runtime.build(models_dir=models, output=tmp_path / "output", temp=tmp_path / "temp",
                       environ={}).activate() as rt:
        yield rt


def test_patch_adds_the_mlps_outputs_scaled_by_strength(tmp_path) -> None:
    path = write_hypernetwork(tmp_path / "h.pt", (8,), is_layer_norm=True)
    patch = load_hypernetwork(path, 0.5)
    raw = torch.load(path, weights_only=True)[8]
    q, k, v = (torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(i)) for i in range(3))

    def reference(x: torch.Tensor, sd: dict[str, torch.Tensor]) -> torch.Tensor:
        # ComfyUI's reading with layer norms: every linear is followed by a LayerNorm, and the activation is left
        # out only after the file's very last layer -- a LayerNorm here -- so both linears are activated.
        h = torch.relu(x @ sd["linear.0.weight"].T + sd["linear.0.bias"])
        h = torch.nn.functional.layer_norm(h, (16,), sd["linear.1.weight"], sd["linear.1.bias"])
        h = torch.relu(h @ sd["linear.2.weight"].T + sd["linear.2.bias"])
        return torch.nn.functional.layer_norm(h, (8,), sd["linear.3.weight"], sd["linear.3.bias"])

    q2, k2, v2 = patch(q, k, v, {})
    assert q2 is q
    torch.testing.assert_close(k2, k + reference(k, raw[0]) * 0.5)
    torch.testing.assert_close(v2, v + reference(v, raw[1]) * 0.5)
    plain = load_hypernetwork(write_hypernetwork(tmp_path / "plain.pt", (8,)), 2.0)
    sd = torch.load(tmp_path / "plain.pt", weights_only=True)[8][0]
    no_norm = torch.relu(k @ sd["linear.0.weight"].T + sd["linear.0.bias"]) @ sd["linear.1.weight"].T
    torch.testing.assert_close(plain(q, k, v, {})[1], k + (no_norm + sd["linear.1.bias"]) * 2.0)
    other = torch.randn(2, 5, 12)
    assert patch(q, other, other, {})[1] is other  # a width the file has no MLP for passes unchanged


def test_loader_patches_a_clone_and_changes_the_prediction(runtime) -> None:
    assert "tiny.pt" in HypernetworkLoader.INPUT_TYPES()["required"]["hypernetwork_name"][0]
    assert HypernetworkLoader.INPUT_TYPES()["required"]["strength"][1] == {"default": 1.0, "min": -10.0,
                                                                          "max": 10.0, "step": 0.01}
    model, _, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sd1.safetensors")
    gen = torch.Generator().manual_seed(0)
    x, cond = torch.randn(1, 4, 8, 8, generator=gen), torch.randn(1, 77, 32, generator=gen)
    base = model.denoise(x, torch.tensor([1.5]), cond, {})
    (patched,) = HypernetworkLoader().load_hypernetwork(model, "tiny.pt", 1.0)
    (off,) = HypernetworkLoader().load_hypernetwork(model, "tiny.pt", 0.0)
    patches = patched.model_options["transformer_options"]["patches"]
    assert len(patches["attn1_patch"]) == len(patches["attn2_patch"]) == 1
    assert "patches" not in model.model_options["transformer_options"]  # the input MODEL is untouched
    assert (patched.denoise(x, torch.tensor([1.5]), cond, {}) - base).abs().max() > 1e-3
    torch.testing.assert_close(off.denoise(x, torch.tensor([1.5]), cond, {}), base, rtol=1e-5, atol=1e-5)


def test_a_workflow_with_a_hypernetwork_runs_and_bad_files_are_named(runtime) -> None:
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-sd1.safetensors"}},
        "2": {"class_type": "HypernetworkLoader", "inputs": {"model": ["1", 0], "hypernetwork_name": "tiny.pt",
                                                             "strength": 0.8}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a cat"}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 16, "height": 16, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {"model": ["2", 0], "seed": 1, "steps": 2, "cfg": 2.0,
                                                   "sampler_name": "euler", "scheduler": "normal",
                                                   "positive": ["3", 0], "negative": ["3", 0],
                                                   "latent_image": ["4", 0], "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "PreviewImage", "inputs": {"images": ["6", 0]}},
    }
    result = runtime.executor.run(prompt)
    assert result.ok, result.error or result.validation.node_errors
    model, _, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sd1.safetensors")
    with pytest.raises(ValueError, match="odd.pt uses the activation 'gelu-ish'"):
        HypernetworkLoader().load_hypernetwork(model, "odd.pt", 1.0)
