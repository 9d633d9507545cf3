"""Qwen3 as Z-Image's text encoder: the network against transformers' Qwen3Model, the tokenizer and template."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hearth_dit import zimage_loaders
from hearth_dit.qwen3_text import (
    CHAT_TEMPLATE,
    Qwen3Encoder,
    Qwen3Tokenizer,
    config_from_shapes,
    full_size_config,
    state_for_encoder,
)
from hearth_dit.zimage_tiny import tokenizer_path, write_tiny_qwen3
from safetensors.torch import load_file, save_file

transformers = pytest.importorskip("transformers")


@pytest.fixture(autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 2))  # the suite's budget is two cores
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("qwen3") / "qwen_3_4b.safetensors"
    write_tiny_qwen3(path, seed=5)
    return path


def reference_model(state: dict[str, torch.Tensor]):
    cfg = config_from_shapes({k: tuple(v.shape) for k, v in state.items()})
    config = transformers.Qwen3Config(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_kv_heads,
        head_dim=cfg.head_dim, rope_theta=1e6, rms_norm_eps=1e-6, attn_implementation="eager")
    model = transformers.Qwen3Model(config).eval()
    model.load_state_dict({k[len("model."):]: v for k, v in state.items()}, strict=True)
    return model


def test_encoder_equals_transformers_qwen3_at_the_layer_z_image_reads(encoder_file: Path) -> None:
    state = load_file(str(encoder_file))
    reference = reference_model(state)
    ours = Qwen3Encoder(config_from_shapes({k: tuple(v.shape) for k, v in state.items()})).eval()
    ours.load_state_dict(state_for_encoder(state), strict=True)
    ids = torch.randint(0, ours.config.vocab_size, (2, 13), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 13, dtype=torch.long)
    mask[1, 9:] = 0  # the second prompt is padded
    with torch.no_grad():
        hidden = reference(ids, attention_mask=mask, output_hidden_states=True).hidden_states
        for layer in (-2, -1, 1):
            found = ours(ids, mask, layer)
            assert (found[0] - hidden[layer][0]).abs().max() <= 1e-4, layer
            assert (found[1, :9] - hidden[layer][1, :9]).abs().max() <= 1e-4, layer
        assert (ours(ids[:1], None, -2) - hidden[-2][:1]).abs().max() <= 1e-4  # causal without a mask
    assert hidden[-2].abs().mean() > 0.05 and not torch.allclose(hidden[-2], hidden[-1])


def test_clip_encodes_the_chat_template_at_the_second_to_last_layer(encoder_file: Path) -> None:
    clip = zimage_loaders.load_text_encoder(encoder_file, device="cpu")
    tokenizer = Qwen3Tokenizer(tokenizer_path(encoder_file))
    ids = tokenizer("a red fox in the snow")
    text = tokenizer.tokenizer.decode(ids, skip_special_tokens=False)
    assert text == CHAT_TEMPLATE.format("a red fox in the snow")
    assert ids[0] == tokenizer.tokenizer.token_to_id("<|im_start|>")  # special tokens are single ids
    cond, pooled = clip.encode("a red fox in the snow")
    assert pooled is None and cond.shape == (1, len(ids), 32) and cond.dtype == torch.float32
    with torch.no_grad():
        expected = reference_model(load_file(str(encoder_file)))(torch.tensor([ids]), output_hidden_states=True)
    assert (cond - expected.hidden_states[-2]).abs().max() <= 1e-4
    ((scheduled, options),) = clip.encode_from_tokens_scheduled(clip.tokenize("a red fox in the snow"),
                                                                add_dict={"strength": 0.5})
    assert torch.equal(scheduled, cond) and options == {"pooled_output": None, "strength": 0.5}
    with pytest.raises(ValueError, match="layer"):
        clip.clone().set_last_layer(-1)


def test_tokenizer_is_found_beside_the_file_or_in_the_documented_folder(encoder_file: Path, tmp_path: Path) -> None:
    lonely = tmp_path / "qwen_3_4b.safetensors"
    lonely.write_bytes(encoder_file.read_bytes())
    with pytest.raises(FileNotFoundError, match=r"no Qwen3 tokenizer.*does not download.*qwen3_tokenizer"):
        zimage_loaders.load_text_encoder(lonely)
    folder = tmp_path / "qwen3_tokenizer"
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes(tokenizer_path(encoder_file).read_bytes())
    clip = zimage_loaders.load_text_encoder(lonely, device="cpu")
    assert clip.encode("a cat")[0].shape[-1] == 32


def test_a_tokenizer_that_is_not_qwens_is_refused(encoder_file: Path, tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models

    model = tmp_path / "qwen.safetensors"
    model.write_bytes(encoder_file.read_bytes())
    Tokenizer(models.WordLevel({"a": 0, "<unk>": 1}, unk_token="<unk>")).save(str(tmp_path / "qwen.tokenizer.json"))
    with pytest.raises(ValueError, match=r"not a Qwen tokenizer \(no <\|endoftext\|>"):
        zimage_loaders.load_text_encoder(model)
    (tmp_path / "qwen.tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a tokenizers tokenizer.json"):
        zimage_loaders.load_text_encoder(model)


def test_another_text_encoder_says_what_it_is_not(tmp_path: Path) -> None:
    other = tmp_path / "t5xxl.safetensors"
    save_file({"encoder.block.0.layer.0.SelfAttention.q.weight": torch.zeros(4, 4)}, str(other))
    with pytest.raises(ValueError, match="t5xxl.safetensors: not a Qwen3 text encoder.*qwen_3_4b"):
        zimage_loaders.load_text_encoder(other)


def test_full_size_config_is_qwen3_4b() -> None:
    cfg = full_size_config()
    with torch.device("meta"):
        params = sum(p.numel() for p in Qwen3Encoder(cfg).parameters())
    assert 4.0e9 < params < 4.1e9  # Qwen3-4B (tied embeddings: no separate lm_head)


def test_tiny_tokenizer_splits_as_transformers_qwen2_tokenizer_does(encoder_file: Path) -> None:
    """The tiny tokenizer.json is Qwen's kind (NFC, Qwen2's split pattern, byte-level BPE): transformers' own
    Qwen2Tokenizer, given the same vocabulary and merges, gives the same ids for contractions, digits, newlines,
    runs of spaces, accents and emoji."""
    import json

    found = json.loads(tokenizer_path(encoder_file).read_text(encoding="utf-8"))["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in found["merges"]]
    reference = transformers.Qwen2Tokenizer(vocab=found["vocab"], merges=merges)
    ours = Qwen3Tokenizer(tokenizer_path(encoder_file)).tokenizer
    text = "It's a cat's 1024x768 photo!!\n\nCafé   über  naïve don't\tTAB 3.14 — emoji 🦊"
    ids = ours.encode(text, add_special_tokens=False).ids
    assert len(ids) > 40 and ids == reference.encode(text, add_special_tokens=False)
