"""Style models: the T2I style adapter equals its definition computed by hand, StyleModelApply appends its tokens
(multiply / attn_bias as ComfyUI), Flux Redux and mismatched inputs are refused by name, and a workflow runs."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hearth_sd.clip_vision_loader import Output
from hearth_sd.nodes_clip_vision_style import StyleModelApply, StyleModelLoader
from hearth_sd.style_model import StyleAdapter, StyleAdapterConfig, StyleModel

from hearth.core.executor import Executor
from hearth.core.models import write_safetensors
from hearth.core.runtime import Runtime
from tests.sd.workflow_testing import executor_for, node, preview_pixels, tiny_runtime


def _by_hand(adapter: StyleAdapter, hidden: torch.Tensor) -> torch.Tensor:
    """The adapter's forward from its weights: pre-norm CLIP blocks, softmax attention written out."""
    sd, c = adapter.state_dict(), adapter.config
    ln = lambda x, name: F.layer_norm(x, (c.width,), sd[f"{name}.weight"], sd[f"{name}.bias"])  # noqa: E731
    x = ln(torch.cat([hidden, sd["style_embedding"].expand(hidden.shape[0], -1, -1)], 1), "ln_pre")
    head = c.width // c.heads
    for i in range(c.layers):
        p = f"transformer_layes.{i}."
        h = ln(x, p + "ln_1")
        q, k, v = (h @ sd[p + "attn.in_proj_weight"].T + sd[p + "attn.in_proj_bias"]).chunk(3, -1)
        split = lambda t: t.reshape(t.shape[0], t.shape[1], c.heads, head).transpose(1, 2)  # noqa: E731
        weights = torch.softmax(split(q) @ split(k).transpose(-1, -2) / math.sqrt(head), -1)
        attn = (weights @ split(v)).transpose(1, 2).reshape(x.shape)
        x = x + attn @ sd[p + "attn.out_proj.weight"].T + sd[p + "attn.out_proj.bias"]
        m = ln(x, p + "ln_2") @ sd[p + "mlp.c_fc.weight"].T + sd[p + "mlp.c_fc.bias"]
        x = x + (m * torch.sigmoid(1.702 * m)) @ sd[p + "mlp.c_proj.weight"].T + sd[p + "mlp.c_proj.bias"]
    return ln(x[:, -c.tokens:], "ln_post") @ sd["proj"]


def _output(hidden: torch.Tensor) -> Output:
    out = Output()
    out["last_hidden_state"] = hidden
    return out


def test_the_style_adapter_is_its_definition():
    torch.manual_seed(0)
    adapter = StyleAdapter(StyleAdapterConfig(width=16, context_dim=8, heads=4, layers=2, tokens=3)).eval()
    hidden = torch.randn(2, 5, 16)
    got = StyleModel(adapter).get_cond(_output(hidden))
    assert got.shape == (2, 3, 8)
    torch.testing.assert_close(got, _by_hand(adapter, hidden), rtol=0, atol=1e-5)


def test_apply_appends_tokens_multiplied_or_with_an_attention_bias():
    torch.manual_seed(1)
    model = StyleModel(StyleAdapter(StyleAdapterConfig(width=16, context_dim=8, heads=4, layers=1, tokens=2)).eval())
    images = _output(torch.randn(2, 5, 16))
    tokens = model.get_cond(images).reshape(1, 4, 8)  # both images' tokens in one row
    text = torch.randn(1, 6, 8)
    (out,) = StyleModelApply().apply_stylemodel([[text, {"k": 1}]], model, images, 0.5, "multiply")
    torch.testing.assert_close(out[0][0], torch.cat([text, tokens * 0.5], 1))
    assert out[0][1] == {"k": 1}
    (biased,) = StyleModelApply().apply_stylemodel([[text, {}]], model, images, 0.5, "attn_bias")
    torch.testing.assert_close(biased[0][0], torch.cat([text, tokens], 1))
    mask = biased[0][1]["attention_mask"]
    # 6 text tokens, 4 style tokens, 1 reference slot: log(0.5) from the text and the reference to the style.
    assert mask.shape == (1, 11, 11) and biased[0][1]["attention_mask_img_shape"] == (1, 1)
    expect = torch.zeros(11, 11)
    expect[:6, 6:10] = expect[10:, 6:10] = math.log(0.5)
    torch.testing.assert_close(mask[0].float(), expect, rtol=0, atol=1e-3)
    (plain,) = StyleModelApply().apply_stylemodel([[text, {}]], model, images, 1.0, "attn_bias")
    assert "attention_mask" not in plain[0][1]
    with pytest.raises(ValueError, match="StyleModelApply: the style tokens are 8 wide, the conditioning's text 32"):
        StyleModelApply().apply_stylemodel([[torch.zeros(1, 77, 32), {}]], model, images, 1.0, "multiply")
    with pytest.raises(ValueError, match="StyleModelApply: the CLIP vision encoding is 12 wide"):
        StyleModelApply().apply_stylemodel([[text, {}]], model, _output(torch.zeros(1, 5, 12)), 1.0, "multiply")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    work = tmp_path_factory.mktemp("work")
    models = work / "models"
    built = tiny_runtime(work, ("sd1", "clip-vision-tiny", "style-model-tiny"))
    write_safetensors({"redux_down.weight": torch.zeros(4, 4), "redux_up.weight": torch.zeros(4, 4)},
                      models / "style_models" / "flux1-redux-dev.safetensors")
    write_safetensors({"something.weight": torch.zeros(2)}, models / "style_models" / "other.safetensors")
    with built.activate():
        yield built


@pytest.fixture
def _active(runtime: Runtime) -> Iterator[None]:
    with runtime.activate():
        yield


@pytest.mark.usefixtures("_active")
def test_flux_redux_and_other_files_are_refused_by_name():
    with pytest.raises(ValueError, match=r"StyleModelLoader: style_model_name 'flux1-redux-dev.safetensors'.*Flux"):
        StyleModelLoader().load_style_model("flux1-redux-dev.safetensors")
    with pytest.raises(ValueError, match=r"StyleModelLoader: style_model_name 'other.safetensors'"):
        StyleModelLoader().load_style_model("other.safetensors")


def _run(executor: Executor, strength: float) -> np.ndarray:
    prompt = {
        "1": node("CheckpointLoaderSimple", ckpt_name="tiny-sd1.safetensors"),
        "2": node("CLIPTextEncode", clip=["1", 1], text="a house"),
        "3": node("CLIPTextEncode", clip=["1", 1], text="blurry"),
        "4": node("CLIPVisionLoader", clip_name="tiny-clip-vision.safetensors"),
        "5": node("EmptyImage", width=40, height=32, batch_size=1, color=0x22AA44),
        "6": node("CLIPVisionEncode", clip_vision=["4", 0], image=["5", 0], crop="none"),
        "7": node("StyleModelLoader", style_model_name="tiny-style-model.safetensors"),
        "8": node("StyleModelApply", conditioning=["2", 0], style_model=["7", 0], clip_vision_output=["6", 0],
                  strength=strength, strength_type="multiply"),
        "9": node("EmptyLatentImage", width=64, height=64, batch_size=1),
        "10": node("KSampler", model=["1", 0], seed=1, steps=2, cfg=3.0, sampler_name="euler", scheduler="normal",
                   positive=["8", 0], negative=["3", 0], latent_image=["9", 0], denoise=1.0),
        "11": node("VAEDecode", samples=["10", 0], vae=["1", 2]),
        "12": node("PreviewImage", images=["11", 0]),
    }
    return preview_pixels(executor, prompt, "12")


@pytest.mark.usefixtures("_active")
def test_a_style_workflow_runs_through_the_executor(runtime, tmp_path):
    # One executor for both runs: the second reuses the cached loaders and encodings, as a server would.
    executor = executor_for(runtime, tmp_path)
    styled = _run(executor, 3.0)
    assert styled.shape == (64, 64, 3) and not np.array_equal(styled, _run(executor, 0.0))
