"""bench/comfyui_parity.py without ComfyUI: the checkpoint maker's layout, the LoRA names, the report and targets.

The key/shape pairs below are read off the published files (v1-5-pruned-emaonly.safetensors and
sd_xl_base_1.0.safetensors); Hearth's own detection must call the made layout the right family. Nothing here
allocates a full-size tensor: shapes come from modules on the meta device.
"""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

ckpt = importlib.import_module("parity.checkpoint")
report = importlib.import_module("parity.report")
workflows = importlib.import_module("parity.workflows")
parity = importlib.import_module("comfyui_parity")

SD15_PUBLISHED = {
    "model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
    "model.diffusion_model.time_embed.0.weight": (1280, 320),
    "model.diffusion_model.input_blocks.1.1.proj_in.weight": (320, 320, 1, 1),
    "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
    "model.diffusion_model.middle_block.1.transformer_blocks.0.ff.net.0.proj.weight": (10240, 1280),
    "model.diffusion_model.output_blocks.2.1.conv.weight": (1280, 1280, 3, 3),
    "model.diffusion_model.output_blocks.11.0.skip_connection.weight": (320, 640, 1, 1),
    "model.diffusion_model.out.2.weight": (4, 320, 3, 3),
    "first_stage_model.encoder.conv_in.weight": (128, 3, 3, 3),
    "first_stage_model.quant_conv.weight": (8, 8, 1, 1),
    "first_stage_model.decoder.mid.attn_1.q.weight": (512, 512, 1, 1),
    "first_stage_model.decoder.conv_out.weight": (3, 128, 3, 3),
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
    "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight": (77, 768),
    "cond_stage_model.transformer.text_model.embeddings.position_ids": (1, 77),
    "cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc1.weight": (3072, 768),
    "cond_stage_model.transformer.text_model.final_layer_norm.weight": (768,),
}
SDXL_PUBLISHED = {
    "model.diffusion_model.label_emb.0.0.weight": (1280, 2816),
    "model.diffusion_model.input_blocks.4.1.proj_in.weight": (640, 640),
    "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, 2048),
    "model.diffusion_model.input_blocks.8.1.transformer_blocks.9.attn1.to_q.weight": (1280, 1280),
    "model.diffusion_model.middle_block.1.transformer_blocks.9.ff.net.2.weight": (1280, 5120),
    "model.diffusion_model.output_blocks.6.0.skip_connection.weight": (320, 960, 1, 1),
    "model.diffusion_model.output_blocks.8.0.skip_connection.weight": (320, 640, 1, 1),
    "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
    "conditioner.embedders.1.model.token_embedding.weight": (49408, 1280),
    "conditioner.embedders.1.model.positional_embedding": (77, 1280),
    "conditioner.embedders.1.model.transformer.resblocks.31.attn.in_proj_weight": (3840, 1280),
    "conditioner.embedders.1.model.text_projection": (1280, 1280),
    "conditioner.embedders.1.model.logit_scale": (),
    "first_stage_model.post_quant_conv.weight": (4, 4, 1, 1),
}


@pytest.mark.parametrize("family, published, keys, billions, detected", [
    ("sd15", SD15_PUBLISHED, 1131, 1.066, "sd1"),
    ("sdxl", SDXL_PUBLISHED, 2515, 3.469, "sdxl"),
])
def test_checkpoint_has_the_published_keys_and_shapes(family, published, keys, billions, detected):
    from hearth_sd.checkpoint import detect_family

    shapes = ckpt.checkpoint_shapes(family)
    assert {k: shapes[k][0] for k in published} == published
    assert len(shapes) == keys
    assert sum(math.prod(s) for s, _ in shapes.values()) / 1e9 == pytest.approx(billions, abs=5e-4)
    assert not any(k.startswith(("model_ema.", "loss.")) for k in shapes)
    meta = {k: torch.empty(s, dtype=d, device="meta") for k, (s, d) in shapes.items()}
    assert detect_family(meta).name == detected


def test_random_tensors_are_seeded_non_zero_and_scaled():
    weight = ckpt.random_tensor("a.weight", (64, 32, 3, 3), torch.float16, seed=0)
    assert weight.dtype == torch.float16
    assert torch.equal(weight, ckpt.random_tensor("a.weight", (64, 32, 3, 3), torch.float16, seed=0))
    assert not torch.equal(weight, ckpt.random_tensor("a.weight", (64, 32, 3, 3), torch.float16, seed=1))
    assert not torch.equal(weight, ckpt.random_tensor("b.weight", (64, 32, 3, 3), torch.float16, seed=0))
    assert (weight != 0).all()
    assert weight.float().std().item() == pytest.approx(1 / math.sqrt(32 * 9), rel=0.1)
    norm = ckpt.random_tensor("norm.weight", (512,), torch.float16, seed=0)
    assert norm.float().mean().item() == pytest.approx(1.0, abs=0.02)
    bias = ckpt.random_tensor("norm.bias", (512,), torch.float16, seed=0)
    assert (bias != 0).all() and bias.float().abs().max().item() < 0.1
    ids = ckpt.random_tensor("embeddings.position_ids", (1, 77), torch.int64, seed=0)
    assert ids.tolist() == [list(range(77))]


def test_streamed_file_reads_back_and_is_reused(tmp_path, monkeypatch):
    import safetensors.torch

    shapes = {"a.bias": ((3,), torch.float16), "a.weight": ((3, 2), torch.float16),
              "ids": ((1, 4), torch.int64)}
    monkeypatch.setattr(ckpt, "checkpoint_shapes", lambda family: shapes)
    path = ckpt.make_checkpoint("sd15", tmp_path / "small.safetensors", seed=3)
    loaded = safetensors.torch.load_file(str(path))
    for key, (shape, dtype) in shapes.items():
        assert torch.equal(loaded[key], ckpt.random_tensor(key, shape, dtype, 3))
    stamp = path.stat().st_mtime_ns
    assert ckpt.make_checkpoint("sd15", path, seed=3).stat().st_mtime_ns == stamp  # cached: not rewritten
    ckpt.make_checkpoint("sd15", path, seed=4)  # another seed: the metadata differs, so it is rewritten
    assert not torch.equal(safetensors.torch.load_file(str(path))["a.weight"], loaded["a.weight"])


def test_lora_names_are_kohya_names_of_the_checkpoint():
    sd15 = ckpt.lora_modules("sd15")
    assert sum(k.startswith("lora_unet_") for k in sd15) == 128  # 16 transformer blocks x 8 projections
    assert sd15["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"] == (320, 320)
    assert sd15["lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k"] == (1280, 768)
    assert sd15["lora_te_text_model_encoder_layers_0_self_attn_q_proj"] == (768, 768)
    sdxl = ckpt.lora_modules("sdxl")
    assert sdxl["lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"] == (640, 2048)
    assert sdxl["lora_te2_text_model_encoder_layers_0_self_attn_q_proj"] == (1280, 1280)
    assert sdxl["lora_te1_text_model_encoder_layers_0_self_attn_v_proj"] == (768, 768)


def _png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def _latent(path: Path, value: np.ndarray) -> None:
    import safetensors.numpy

    path.parent.mkdir(parents=True, exist_ok=True)
    safetensors.numpy.save_file({"latent_tensor": value.astype(np.float32)}, str(path))


def test_compare_counts_pixel_and_latent_differences(tmp_path):
    base = np.full((8, 8, 3), 100, dtype=np.uint8)
    other = base.copy()
    other[0, 0, 0] = 103  # one channel of one pixel, 3 levels off: max 3, mean 3 / 192
    _png(tmp_path / "c" / "img_00001_.png", base)
    _png(tmp_path / "h" / "img_00001_.png", other)
    _latent(tmp_path / "c.safetensors", np.zeros((1, 4, 1, 1)))
    _latent(tmp_path / "h.safetensors", np.array([0.0, 0.25, 0.0, -0.5]).reshape(1, 4, 1, 1))
    row = report.compare("euler-normal", tmp_path / "c", tmp_path / "h", tmp_path / "c.safetensors",
                         tmp_path / "h.safetensors")
    assert (row.max_diff, row.images, row.latent_diff) == (3, 1, 0.5)
    assert row.mean_diff == pytest.approx(3 / 192)
    assert not row.identical
    same = report.compare("same", tmp_path / "c", tmp_path / "c", tmp_path / "c.safetensors",
                          tmp_path / "c.safetensors")
    assert same.identical and same.latent_diff == 0.0
    failed = report.compare("x", tmp_path / "c", tmp_path / "h", tmp_path / "c.safetensors",
                            tmp_path / "h.safetensors", (None, "KSampler (node 5): boom"))
    assert failed.note == "Hearth: KSampler (node 5): boom" and failed.max_diff is None
    missing = report.compare("y", tmp_path / "c", tmp_path / "nothing", tmp_path / "c.safetensors",
                             tmp_path / "h.safetensors")
    assert missing.note == "images saved: ComfyUI 1, Hearth 0"


def test_report_prints_rows_figures_and_targets():
    rows = [report.Row("euler-normal", 0, 0.0, 1e-6, 1), report.Row("lora-euler", 1, 0.5, 0.23, 1)]
    text = report.table(rows)
    assert "| euler-normal | 1 | 0 | 0.000 | 1e-06 |  |" in text
    assert "| lora-euler | 1 | 1 | 0.500 | 0.23 |  |" in text
    warm = report.Measure("warm run", 5.4, 8.8, "s")
    rss = report.Measure("peak RSS", 4.5 * 2**30, 2.4 * 2**30, "bytes")
    measures = report.measures_table([warm, rss])
    assert "| warm run | 5.40 s | 8.80 s | 1.63 |" in measures
    assert "| peak RSS | 4.50 GiB | 2.40 GiB | 0.53 |" in measures
    lines = report.targets_text(report.targets(rows, warm, rss)).splitlines()
    assert lines == ["FAIL  every PNG identical (max diff 0): 1/2 identical; differ or failed: lora-euler",
                     "FAIL  Hearth's warm run <= ComfyUI's: 8.80 s vs 5.40 s",
                     "PASS  Hearth's peak RSS <= ComfyUI's: 2.40 GiB vs 4.50 GiB"]
    missing = report.targets([], report.Measure("w", None, 1.0, "s"), rss)
    assert [ok for _, ok, _ in missing] == [False, False, True]


def test_workflows_are_closed_graphs_and_samplers_are_picked_from_both_lists(tmp_path):
    settings = workflows.Settings("c.safetensors", "l.safetensors", 4, 64, "in.png", tmp_path)
    found = workflows.all_workflows(settings, ["euler", "dpmpp_2m"])
    assert list(found)[:4] == ["euler-normal", "euler-karras", "dpmpp_2m-normal", "dpmpp_2m-karras"]
    assert {"lora-euler", "img2img-0.6", "area-euler", "batch2-euler_ancestral"} <= set(found)
    for prompt in found.values():
        links = [v[0] for node in prompt.values() for v in node["inputs"].values() if isinstance(v, list)]
        assert set(links) <= set(prompt)
    area = found["area-euler"]
    assert [area[n]["inputs"]["x"] for n in ("13", "14")] == [0, 64]  # areas are 64 pixels or more
    assert [area[n]["inputs"]["width"] for n in ("13", "14")] == [64, 64] and area["4"]["inputs"]["width"] == 128
    assert found["img2img-0.6"]["5"]["inputs"]["denoise"] == 0.6
    pairs, only = parity.pick_samplers("euler,dpmpp_2m:karras", ["euler", "dpmpp_2m", "ddim"], ["euler", "dpmpp_2m"])
    assert pairs == [("euler", "normal"), ("euler", "karras"), ("dpmpp_2m", "karras")] and only == ["ddim"]
    with pytest.raises(SystemExit, match="'ddim' is not listed by both"):
        parity.pick_samplers("ddim", ["euler", "ddim"], ["euler"])


def test_cli_refuses_a_folder_without_comfyui(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parity.parse_args(["--comfyui", str(tmp_path)])
    assert f"--comfyui {tmp_path}: no main.py there" in capsys.readouterr().err


class FakeServer:
    """Stands in for a started server: each prompt "runs" by writing one PNG (all ``level``) and a latent."""

    def __init__(self, log: list, label: str, outputs: Path, latents: Path, level: int) -> None:
        self.log, self.label, self.outputs, self.latents, self.level = log, label, outputs, latents, level
        self.peak_rss = 100 if label == "ComfyUI" else 50

    def wait_ready(self) -> float:
        return 0.1

    def run(self, prompt: dict):
        from parity.servers import RunResult

        name = prompt["7"]["inputs"]["filename_prefix"].split("/")[1]
        self.log.append((self.label, name))
        _png(self.outputs / "parity" / name / "img_00001_.png", np.full((8, 8, 3), self.level))
        _latent(self.latents / f"{name}.safetensors", np.zeros((1, 4, 1, 1)))
        return RunResult(1.0 if self.label == "ComfyUI" else 2.0)

    def stop(self) -> None:
        self.log.append((self.label, "stopped"))


def _sides(tmp_path: Path, log: list, hearth_level: int):
    session = importlib.import_module("parity.session")
    sides = []
    for label, level in (("ComfyUI", 10), ("Hearth", hearth_level)):
        out, lat = tmp_path / label / "out", tmp_path / label / "lat"
        settings = workflows.Settings("c", "l", 4, 64, "in.png", lat)
        prompts = dict(workflows.sampler_workflow(settings, s, "normal") for s in ("euler", "heun"))
        sides.append(session.Side(label, lambda label=label, out=out, lat=lat, level=level: FakeServer(
            log, label, out, lat, level), prompts, lambda seed, s=settings: workflows.warm_workflow(s, seed), out, lat))
    return session, sides


def test_interleaved_alternates_servers_and_sequential_stops_one_before_the_other(tmp_path):
    log: list = []
    session, (comfy, hearth) = _sides(tmp_path, log, hearth_level=12)
    rows = session.interleaved(comfy, hearth, ["euler-normal", "heun-normal"], deadline=float("inf"))
    assert log[:4] == [("ComfyUI", "euler-normal"), ("Hearth", "euler-normal"), ("ComfyUI", "heun-normal"),
                       ("Hearth", "heun-normal")]
    assert [(r.name, r.max_diff) for r in rows] == [("euler-normal", 2), ("heun-normal", 2)]
    assert (comfy.figures["warm_run_s"], hearth.figures["warm_run_s"]) == (1.0, 2.0)
    assert (comfy.figures["peak_rss"], hearth.figures["peak_rss"]) == (100, 50)
    log.clear()
    session, (comfy, hearth) = _sides(tmp_path / "seq", log, hearth_level=10)
    rows = session.sequential(comfy, hearth, ["euler-normal", "heun-normal"], deadline=float("inf"))
    assert log.index(("ComfyUI", "stopped")) < log.index(("Hearth", "euler-normal"))
    assert all(r.identical for r in rows) and len(rows) == 2
    log.clear()
    session, (comfy, hearth) = _sides(tmp_path / "late", log, hearth_level=10)
    assert session.interleaved(comfy, hearth, ["euler-normal"], deadline=0.0) == []  # past the deadline: none


def test_the_latent_pack_gives_an_old_comfyui_the_cpu_step_noise_fix_and_leaves_a_fixed_one_alone() -> None:
    import types

    fixes = importlib.import_module("parity.latent_pack.upstream_fixes")

    def old_rule(x, seed=None):  # ComfyUI 0.3.64: the CPU generator takes the seed itself
        generator = torch.Generator().manual_seed(seed)
        return lambda sigma, sigma_next: torch.randn(x.shape, generator=generator)

    old = types.SimpleNamespace(default_noise_sampler=old_rule)
    assert fixes.follow_cpu_step_noise_fix(old)
    x = torch.zeros(2, 3)
    first = old.default_noise_sampler(x, seed=7)(1.0, 0.5)
    assert torch.equal(first, torch.randn(2, 3, generator=torch.Generator().manual_seed(8)))
    assert not fixes.follow_cpu_step_noise_fix(old)  # patched once only
    # Hearth's own comfy.k_diffusion.sampling already follows the fix: nothing to patch there.
    from hearth_samplers import stepping

    fixed = types.SimpleNamespace(default_noise_sampler=stepping.default_noise_sampler)
    assert not fixes.follow_cpu_step_noise_fix(fixed)
    assert fixed.default_noise_sampler is stepping.default_noise_sampler
