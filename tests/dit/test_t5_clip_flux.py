"""Flux's text encoders: T5-XXL v1.1 and CLIP-L equal transformers' T5EncoderModel / CLIPTextModel on the tiny
files make-tiny writes, DualCLIPLoader type flux (either order) gives the CONDITIONING Flux reads, scaled-fp8 T5
files load, and wrong or missing files are named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hearth_dit.ae_tiny import TINY_CLIP, TINY_T5
from safetensors.torch import save_file

from hearth.cli.main import cli
from hearth.core.models import load_state_dict
from hearth.core.runtime import Runtime, current_runtime

transformers = pytest.importorskip("transformers")
PROMPT = "a cat sitting on a red chair, oil painting"


@pytest.fixture(autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 2))  # the suite's budget is two cores
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("flux_text") / "models"
    (folder / "text_encoders").mkdir(parents=True)
    for name, file in (("flux-t5xxl", "tiny-t5xxl.safetensors"), ("flux-clip-l", "tiny-flux-clip-l.safetensors")):
        result = CliRunner().invoke(cli, ["models", "make-tiny", name, "--out", str(folder / "text_encoders" / file)])
        assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def folders(models: Path):
    with Runtime.build(models_dir=models, environ={}).activate():
        yield models


def dual(first: str, second: str, type: str = "flux"):
    return current_runtime().nodes["DualCLIPLoader"].cls().load_clip(first, second, type=type)[0]


def t5_reference(path: Path) -> transformers.T5EncoderModel:
    config = transformers.T5Config(vocab_size=TINY_T5.vocab_size, d_model=TINY_T5.d_model, d_kv=TINY_T5.d_kv,
                                   d_ff=TINY_T5.d_ff, num_layers=TINY_T5.num_layers, num_heads=TINY_T5.num_heads,
                                   feed_forward_proj="gated-gelu", relative_attention_num_buckets=32,
                                   relative_attention_max_distance=128, dropout_rate=0.0)
    model = transformers.T5EncoderModel(config).eval()
    missing, unexpected = model.load_state_dict(dict(load_state_dict(path)), strict=False)
    assert not unexpected and set(missing) <= {"encoder.embed_tokens.weight"}
    return model


def clip_reference(path: Path) -> transformers.CLIPTextModel:
    config = transformers.CLIPTextConfig(vocab_size=49408, hidden_size=TINY_CLIP.hidden_size,
                                         intermediate_size=TINY_CLIP.intermediate_size,
                                         num_hidden_layers=TINY_CLIP.num_layers,
                                         num_attention_heads=TINY_CLIP.num_heads, max_position_embeddings=77,
                                         hidden_act="quick_gelu", eos_token_id=49407, bos_token_id=49406)
    model = transformers.CLIPTextModel(config).eval()
    state = {k.removeprefix("text_model."): v for k, v in load_state_dict(path).items()}  # transformers 5's names
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all("position_ids" in k for k in missing)
    return model


def test_dual_clip_loader_flux_gives_t5_states_and_clip_l_pooled(folders: Path) -> None:
    clip = dual("tiny-flux-clip-l.safetensors", "tiny-t5xxl.safetensors")  # CLIP-L first: order does not matter
    tokens = clip.tokenize(PROMPT)
    ((cond, options),) = clip.encode_from_tokens_scheduled(tokens, add_dict={"guidance": 3.5})
    assert cond.shape == (1, 256, TINY_T5.d_model) and options["pooled_output"].shape == (1, TINY_CLIP.hidden_size)
    assert options["guidance"] == 3.5
    text = folders / "text_encoders"
    ids = torch.tensor([tokens["t5xxl"]["ids"]])
    assert ids[0, :len(PROMPT.split())].ne(0).all() and ids[0, -1] == 0  # prompt, </s>, then <pad> up to 256
    with torch.no_grad():
        want = t5_reference(text / "tiny-t5xxl.safetensors")(input_ids=ids).last_hidden_state
        pooled = clip_reference(text / "tiny-flux-clip-l.safetensors")(
            input_ids=torch.tensor([tokens["l"]["ids"]])).pooler_output
    torch.testing.assert_close(cond, want, rtol=0, atol=1e-4)
    torch.testing.assert_close(options["pooled_output"], pooled, rtol=0, atol=1e-4)
    same = dual("tiny-t5xxl.safetensors", "tiny-flux-clip-l.safetensors").encode(PROMPT)
    torch.testing.assert_close(same[0], cond, rtol=0, atol=0)


def test_clip_l_tokens_are_openai_clips(folders: Path) -> None:
    from hearth_sd.tokenizer import get_tokenizer  # the SD plugin's independent CLIP tokenizer

    clip = dual("tiny-flux-clip-l.safetensors", "tiny-t5xxl.safetensors")
    text = "A  Photo of an astronaut &amp; a horse, 8k -- riding on the moon!!"
    ids = clip.tokenize(text)["l"]["ids"]
    expected = get_tokenizer().encode(text)
    assert ids[: len(expected) + 2] == [49406, *expected, 49407] and len(ids) == 77
    assert set(ids[len(expected) + 2:]) == {49407}  # padded with end of text, as ComfyUI pads CLIP-L


def test_prompt_weights_move_t5_states_towards_or_away_from_the_empty_prompt(folders: Path) -> None:
    clip = dual("tiny-t5xxl.safetensors", "tiny-flux-clip-l.safetensors")
    plain, pooled = clip.encode("red chair")
    heavy, heavy_pooled = clip.encode("(red chair:1.5)")
    empty, _ = clip.encode("")
    weight = torch.tensor(clip.tokenize("(red chair:1.5)")["t5xxl"]["weights"])[None, :, None]
    assert weight[0, :2].eq(1.5).all() and weight[0, -1] == 1.0  # the prompt's tokens, not </s> or the padding
    torch.testing.assert_close(heavy, empty + weight * (plain - empty), rtol=0, atol=1e-5)
    torch.testing.assert_close(heavy_pooled, pooled)  # the pooled vector ignores emphasis, as in ComfyUI


def test_a_scaled_fp8_t5_file_loads_as_its_dequantized_weights(folders: Path) -> None:
    text = folders / "text_encoders"
    state = dict(load_state_dict(text / "tiny-t5xxl.safetensors"))
    scaled = {"scaled_fp8": torch.zeros(0, dtype=torch.float8_e4m3fn)}
    dequantized = {}
    for key, value in state.items():
        if key.endswith(".weight") and value.ndim == 2 and ".block." in key:
            scale = value.abs().max() / 448.0
            scaled[key] = (value / scale).to(torch.float8_e4m3fn)
            scaled[key[:-len("weight")] + "scale_weight"] = scale.reshape(())
            dequantized[key] = (scaled[key].float() * scale).to(torch.bfloat16)
        else:
            scaled[key] = dequantized[key] = value
    save_file(scaled, str(text / "t5-fp8.safetensors"))
    save_file({k: v.contiguous() for k, v in dequantized.items()}, str(text / "t5-deq.safetensors"))
    for name in ("t5-fp8", "t5-deq"):
        shutil.copy(text / "tiny-t5xxl.tokenizer.json", text / f"{name}.tokenizer.json")
    fp8 = dual("t5-fp8.safetensors", "tiny-flux-clip-l.safetensors").encode(PROMPT)[0]
    reference = dual("t5-deq.safetensors", "tiny-flux-clip-l.safetensors").encode(PROMPT)[0]
    # Dequantized once at load, into bfloat16 (a full T5-XXL in float32 would be 19 GB).
    torch.testing.assert_close(fp8, reference, rtol=0, atol=1e-5)


def test_wrong_pairs_and_a_missing_tokenizer_are_named(folders: Path) -> None:
    with pytest.raises(ValueError, match="needs one T5-XXL file .* tiny-flux-clip-l.safetensors is CLIP-L, "
                                         "tiny-flux-clip-l.safetensors is CLIP-L"):
        dual("tiny-flux-clip-l.safetensors", "tiny-flux-clip-l.safetensors")
    text = folders / "text_encoders"
    shutil.copy(text / "tiny-t5xxl.safetensors", text / "lonely-t5.safetensors")
    with pytest.raises(FileNotFoundError, match="no T5 tokenizer beside this text encoder.*t5_tokenizer/tokenizer.json"):
        dual("lonely-t5.safetensors", "tiny-flux-clip-l.safetensors")
    (text / "t5_tokenizer").mkdir(exist_ok=True)
    shutil.copy(text / "tiny-t5xxl.tokenizer.json", text / "t5_tokenizer" / "tokenizer.json")
    cond, _ = dual("lonely-t5.safetensors", "tiny-flux-clip-l.safetensors").encode(PROMPT)  # the documented folder
    assert cond.shape == (1, 256, TINY_T5.d_model)


def test_the_loader_offers_flux_and_the_sdxl_pair_still_loads_as_sdxl(folders: Path) -> None:
    spec = current_runtime().nodes["DualCLIPLoader"].cls.INPUT_TYPES()["required"]
    assert "flux" in spec["type"][0] and "tiny-t5xxl.safetensors" in spec["clip_name1"][0]
    with pytest.raises(ValueError, match="type 'sd3' is not supported by Hearth yet"):
        dual("tiny-t5xxl.safetensors", "tiny-flux-clip-l.safetensors", type="sd3")


def test_the_clip_vocabulary_is_found_beside_the_file_first_and_its_absence_named(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    from hearth_dit import clip_tokenizer

    model = tmp_path / "clip_l.safetensors"
    installed = clip_tokenizer.find_vocab(model)  # open-clip-torch's copy: nothing beside the file yet
    assert installed.name == "bpe_simple_vocab_16e6.txt.gz" and installed.parent != tmp_path
    (tmp_path / "clip_tokenizer").mkdir()
    shutil.copy(installed, tmp_path / "clip_tokenizer" / installed.name)
    assert clip_tokenizer.find_vocab(model) == tmp_path / "clip_tokenizer" / installed.name
    shutil.rmtree(tmp_path / "clip_tokenizer")
    monkeypatch.setattr(clip_tokenizer.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=f"put bpe_simple_vocab_16e6.txt.gz .* at {tmp_path}"):
        clip_tokenizer.find_vocab(model)


def test_an_all_in_one_flux_checkpoint_gives_the_same_clip_and_vae(folders: Path) -> None:
    """Comfy-Org's layout: model.diffusion_model.*, text_encoders.{t5xxl,clip_l}.transformer.*, vae.*."""
    from hearth_dit.ae_tiny import tiny_flux_vae_state
    from hearth_dit.flux_tiny import write_tiny_flux

    text, checkpoints = folders / "text_encoders", folders / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    write_tiny_flux(checkpoints / "dit.safetensors", prefix="model.diffusion_model.")
    vae_state = tiny_flux_vae_state(seed=4)
    state = dict(load_state_dict(checkpoints / "dit.safetensors"))
    state |= {f"text_encoders.t5xxl.transformer.{k}": v for k, v in load_state_dict(text / "tiny-t5xxl.safetensors").items()}
    state |= {f"text_encoders.clip_l.transformer.{k}": v
              for k, v in load_state_dict(text / "tiny-flux-clip-l.safetensors").items()}
    state |= {f"vae.{k}": v for k, v in vae_state.items()}
    from hearth.core.models import read_header

    # The tiny files' metadata says what their shapes cannot (Flux's RoPE split, CLIP's head count).
    metadata = {**read_header(checkpoints / "dit.safetensors").metadata,
                **read_header(text / "tiny-flux-clip-l.safetensors").metadata}
    save_file({k: v.contiguous() for k, v in state.items()}, str(checkpoints / "flux-aio.safetensors"),
              metadata=metadata)
    shutil.copy(text / "tiny-t5xxl.tokenizer.json", checkpoints / "flux-aio.tokenizer.json")
    model, clip, vae = current_runtime().nodes["CheckpointLoaderSimple"].cls().load_checkpoint("flux-aio.safetensors")
    assert model is not None and clip is not None and vae is not None
    want = dual("tiny-t5xxl.safetensors", "tiny-flux-clip-l.safetensors").encode(PROMPT)
    for got, expected in zip(clip.encode(PROMPT), want, strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    z = torch.randn(1, 16, 4, 4, generator=torch.Generator().manual_seed(0))
    from hearth_dit.ae_value import load_flux_vae

    (folders / "ae-alone").mkdir(exist_ok=True)
    save_file(vae_state, str(folders / "ae-alone" / "ae.safetensors"))
    torch.testing.assert_close(vae.decode(z), load_flux_vae(folders / "ae-alone" / "ae.safetensors").decode(z))
    # A transformer-only checkpoint gives no CLIP or VAE, as ComfyUI's loader gives None for them.
    _, no_clip, no_vae = current_runtime().nodes["CheckpointLoaderSimple"].cls().load_checkpoint("dit.safetensors")
    assert no_clip is None and no_vae is None
