"""The trained miniature SD1.x model: its training code learns, its shipped files load like a real SD1.5 checkpoint
and LoRA, and the training script names bad input."""

from __future__ import annotations

import pytest
import torch
from hearth_lora.nodes import LoraLoader
from hearth_sd.checkpoint import read_state_dict
from hearth_sd.clip_text import CLIPTextEncoder, TextEncoderConfig
from hearth_sd.trained import train as script
from hearth_sd.trained.shapes import BACKGROUND, make_shapes
from hearth_sd.trained.train_diffusion import alphas_cumprod, diffusion_loss, encode_text, token_ids
from hearth_sd.trained.train_lora import train_lora
from hearth_sd.trained.train_vae import (
    LATENT_SCALE,
    LATENT_STD,
    background_distances,
    encode_means,
    normalize_latents,
    to_pixels,
    vae_loss,
)
from hearth_sd.unet import UNetConfig, UNetModel
from hearth_sd.vae import AutoencoderKL, VAEConfig

from hearth.core.models.loader_nodes import CheckpointLoaderSimple
from tests.sd.nodes_testing import in_runtime

MICRO_TEXT = TextEncoderConfig(width=32, layers=1, heads=2, intermediate=64, activation="quick_gelu")
MICRO_UNET = UNetConfig(model_channels=32, channel_mult=(1,), num_res_blocks=1, transformer_depth=(1,),
                        transformer_depth_middle=0, context_dim=32, num_heads=2)
CHECKPOINT = script.SHIPPED_DIR / "checkpoints" / script.CHECKPOINT_NAME
LORA = script.SHIPPED_DIR / "loras" / script.LORA_NAME


def _fit(loss_of, params, steps=4, lr=3e-3) -> tuple[float, float]:
    """The loss of one fixed batch before and after ``steps`` Adam steps on it."""
    opt = torch.optim.Adam(params, lr=lr)
    with torch.no_grad():
        before = float(loss_of())
    for _ in range(steps):
        opt.zero_grad()
        loss_of().backward()
        opt.step()
    with torch.no_grad():
        return before, float(loss_of())


def test_a_few_diffusion_steps_lower_the_loss_of_a_batch():
    torch.manual_seed(0)
    unet, text = UNetModel(MICRO_UNET), CLIPTextEncoder(MICRO_TEXT)
    ids = token_ids(["a red circle", "a blue square", "", "a white cross"], text)
    assert ids[0, :5].tolist() == [49406, 320, 736, 7117, 49407]  # start, "a", "red", "circle", end (real BPE)
    latents, abar = torch.randn(4, 4, 8, 8), alphas_cumprod()
    assert abar[0] == pytest.approx(1 - 0.00085) and abar[-1] == pytest.approx(0.0047, abs=1e-4)  # SD's schedule

    def loss():  # the same timesteps and noise every call, so the numbers compare
        return diffusion_loss(unet, encode_text(text, ids), latents, abar, torch.Generator().manual_seed(1))

    before, after = _fit(loss, [*unet.parameters(), *text.parameters()])
    assert after < 0.9 * before


def test_the_agreement_term_is_the_gap_between_the_prompted_and_the_empty_prediction():
    torch.manual_seed(0)
    unet, text = UNetModel(MICRO_UNET), CLIPTextEncoder(MICRO_TEXT)
    captions = ["a red circle", "a blue square", "a green cross", "a white triangle", "a yellow circle", "a red cross"]
    ids = token_ids(captions, text)
    latents, abar = torch.randn(len(captions), 4, 8, 8), alphas_cumprod()
    with torch.no_grad():
        context, empty = encode_text(text, ids), encode_text(text, token_ids([""], text))

        def loss(**agree):  # the same timesteps and noise every call
            with torch.no_grad():
                return float(diffusion_loss(unet, context, latents, abar, torch.Generator().manual_seed(3), **agree))

        g = torch.Generator().manual_seed(3)  # diffusion_loss's draws, by hand
        t = torch.randint(0, len(abar), (len(captions),), generator=g)
        noise = torch.randn(latents.shape, generator=g)
        a = abar[t][:, None, None, None]
        noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
        gap = (unet(noisy, t.float(), context) - unet(noisy, t.float(), empty.expand(len(t), -1, -1))).pow(2)
        gap = gap.mean(dim=(1, 2, 3))
    cut = int(t.sort().values[len(t) // 2])  # half the rows below it
    low = t < cut
    assert 0 < int(low.sum()) < len(t)
    plain = loss()
    assert loss(empty=empty, agree_below=0) == plain  # off: the same single call
    assert loss(agree_below=cut) == plain  # no empty prompt given: off
    expected = plain + 2.0 * float(gap[low].sum()) / len(t)  # only the low-noise rows, averaged over the batch
    assert loss(empty=empty, agree_below=cut, agree_weight=2.0) == pytest.approx(expected, rel=1e-5)
    assert float(gap[low].sum()) > 0


def test_the_agreement_term_moves_the_empty_prediction_and_leaves_the_prompted_one_alone():
    """Its gradient reaches the empty prompt's context (that prediction learns to read the picture) and adds nothing
    to the prompted context's: the prompted prediction is not pulled toward what the noisy latent shows."""
    torch.manual_seed(0)
    unet, text = UNetModel(MICRO_UNET), CLIPTextEncoder(MICRO_TEXT)
    with torch.no_grad():  # past the zero-initialized output layers, so the prompt reaches the prediction
        for p in unet.parameters():
            if not p.any():
                p.normal_(0.0, 0.05)
    captions = ["a red circle", "a blue square", "a green cross", "a white triangle", "a yellow circle", "a red cross"]
    with torch.no_grad():
        context = encode_text(text, token_ids(captions, text))
        empty = encode_text(text, token_ids([""], text))
    latents, abar = torch.randn(len(captions), 4, 8, 8), alphas_cumprod()

    def grads(**agree):
        c, e = context.clone().requires_grad_(), empty.clone().requires_grad_()
        loss = diffusion_loss(unet, c, latents, abar, torch.Generator().manual_seed(3), empty=e, **agree)
        loss.backward()
        return c.grad, e.grad

    plain_c, plain_e = grads(agree_below=0)
    assert plain_e is None  # off: the empty context is not used
    agree_c, agree_e = grads(agree_below=1000)  # every row below the cut
    scale = float(plain_c.abs().max())  # the prompt does reach the loss
    assert scale > 0
    # Pulling both predictions together would change the prompted context's gradient by about 1.5% of its size.
    assert float((agree_c - plain_c).abs().max()) < 1e-4 * scale
    assert agree_e is not None and float(agree_e.abs().max()) > 1e-2 * scale


def test_a_few_vae_steps_lower_the_reconstruction_loss_and_normalizing_keeps_the_decode():
    torch.manual_seed(0)
    vae = AutoencoderKL(VAEConfig(ch=32, ch_mult=(1, 1, 1, 1), num_res_blocks=1))
    x = to_pixels(torch.from_numpy(make_shapes(2, seed=0).images))[:, :, 16:32, 16:32]
    before, after = _fit(lambda: vae_loss(vae, x, torch.Generator().manual_seed(2))[0], vae.parameters())
    assert after < 0.9 * before
    with torch.no_grad():
        raw = vae.encode(x)
        decoded = vae.decode(raw)
        scaled = normalize_latents(vae, raw)
        # The fold moves the latents, not the pictures: decoding the new latents gives the same image.
        torch.testing.assert_close(vae.decode(scaled), decoded, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(vae.encode(x), scaled, atol=1e-4, rtol=1e-4)
    assert (0.18215 * scaled).std(dim=(0, 2, 3)) == pytest.approx(torch.full((4,), LATENT_STD), abs=2e-3)
    assert (0.18215 * normalize_latents(vae, vae.encode(x), std=1.0)).std(dim=(0, 2, 3)) == pytest.approx(
        torch.ones(4), abs=1e-3)


def test_background_distance_is_zero_for_the_plain_background_and_grows_with_the_shape():
    torch.manual_seed(0)
    vae = AutoencoderKL(VAEConfig(ch=32, ch_mult=(1, 1, 1, 1), num_res_blocks=1)).eval()
    shapes = make_shapes(2, seed=0)
    plain = torch.tensor(BACKGROUND, dtype=torch.uint8).expand(64, 64, 3)[None]
    pixels = to_pixels(torch.cat([plain, torch.from_numpy(shapes.images)]))
    latents = encode_means(vae, pixels) * LATENT_SCALE
    far = background_distances(vae, latents, torch.tensor([0, 2, 2]), BACKGROUND)  # no colour 1: no entry
    own = (latents[1:] - latents[:1]).flatten(1).norm(dim=1).mean()
    assert set(far) == {0, 2} and far[2] == pytest.approx(float(own), rel=1e-2)
    assert far[0] < 0.01 * far[2]  # the background itself (up to float error between batch sizes)


def test_lora_training_writes_kohya_keys_and_restores_the_unet():
    torch.manual_seed(0)
    unet, text = UNetModel(MICRO_UNET), CLIPTextEncoder(MICRO_TEXT)
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    tensors, curve = train_lora(unet, text, torch.randn(4, 4, 8, 8), ["a red circle"] * 4, steps=3, batch=2,
                                lr=1e-2, generator=torch.Generator().manual_seed(0), log=lambda _: None)
    assert len(curve) == 3
    assert "lora_unet_input_blocks_1_1_transformer_blocks_0_attn2_to_k.lora_down.weight" in tensors
    assert all(k.startswith("lora_unet_") and k.rsplit(".", 2)[-2] in ("lora_down", "lora_up", "alpha")
               or k.endswith(".alpha") for k in tensors)
    assert any(v.abs().sum() > 0 for k, v in tensors.items() if k.endswith("lora_up.weight"))
    assert all(torch.equal(before[k], v) for k, v in unet.state_dict().items())


def test_shipped_files_have_the_sd1_layout():
    tensors, metadata = read_state_dict(CHECKPOINT)
    prefixes = {k.split(".")[0] for k in tensors}
    assert prefixes == {"model", "first_stage_model", "cond_stage_model"}
    assert "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight" in tensors
    assert tensors["cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"].shape[0] == 49408
    assert metadata["modelspec.prediction_type"] == "epsilon"
    assert all(v.dtype == torch.float16 for v in tensors.values())
    total = CHECKPOINT.stat().st_size + LORA.stat().st_size
    assert total < 12e6  # a few MB


def test_shipped_files_load_through_the_real_loader_nodes():
    with in_runtime(script.SHIPPED_DIR):
        model, clip, vae = CheckpointLoaderSimple().load_checkpoint(script.CHECKPOINT_NAME)
        assert model.family == "sd1" and vae.downscale_ratio == 8
        # The VAE reconstructs a shapes picture it never saw (another seed) closely.
        image = torch.from_numpy(make_shapes(4, seed=99).images).float() / 255
        back = vae.decode(vae.encode(image))
        assert back.shape == image.shape and (back - image).abs().mean() < 0.04
        lora_model, lora_clip = LoraLoader().load_lora(model, clip, script.LORA_NAME, 1.0, 1.0)
        lora_tensors, _ = read_state_dict(LORA)
        modules = {k.rsplit(".", 2)[0] for k in lora_tensors if k.endswith("lora_down.weight")}
        assert len(lora_model.patcher.patches) == len(modules)  # every module of the file found its layer


def test_the_script_names_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        script.main(["--bogus"])
    assert info.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        script.main(["--unet-steps", "0"])
    assert info.value.code == 2 and "--unet-steps must be at least 1" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit, match=f"cannot write to --out {blocker / 'out'}"):
        script.main(["--out", str(blocker / "out")])


def test_the_same_options_and_seed_write_the_same_files(tmp_path):
    # The model card's promise: the script reproduces the shipped files byte for byte. A few steps of every stage,
    # twice, at the default thread count.
    tiny = ["--images", "24", "--vae-steps", "3", "--unet-steps", "3", "--lora-steps", "2", "--batch", "4"]
    runs, threads = [], torch.get_num_threads()
    for name in ("a", "b"):
        assert script.main([*tiny, "--out", str(tmp_path / name)]) == 0
        runs.append([(tmp_path / name / sub / file).read_bytes() for sub, file in
                     (("checkpoints", script.CHECKPOINT_NAME), ("loras", script.LORA_NAME))])
    assert runs[0] == runs[1]
    assert not torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == threads
    assert torch.utils.deterministic.fill_uninitialized_memory, "the NaN-fill flag training turns off comes back"
