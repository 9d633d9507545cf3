"""Wan's UMT5 text encoder matches transformers' UMT5EncoderModel; its tokenizer reads a tokenizer.json beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hearth_video.wan_text import (
    UMT5Config,
    UMT5Encoder,
    UMT5Tokenizer,
    config_from_shapes,
    encode,
    relative_position_bucket,
    state_for_encoder,
    tokenizer_path_for,
)


@pytest.fixture(autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 2))  # the suite's budget is two cores
    yield
    torch.set_num_threads(before)


TINY = UMT5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=48, num_layers=3, num_heads=4,
                  relative_attention_num_buckets=32)


def random_state(config: UMT5Config, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {k: torch.randn_like(v) * 0.3 for k, v in UMT5Encoder(config).state_dict().items()}


def reference_encoder(config: UMT5Config, state: dict[str, torch.Tensor]):
    transformers = pytest.importorskip("transformers")
    hf = transformers.UMT5EncoderModel(transformers.UMT5Config(
        vocab_size=config.vocab_size, d_model=config.d_model, d_kv=config.d_kv, d_ff=config.d_ff,
        num_layers=config.num_layers, num_heads=config.num_heads,
        relative_attention_num_buckets=config.relative_attention_num_buckets,
        relative_attention_max_distance=config.relative_attention_max_distance, feed_forward_proj="gated-gelu",
        dropout_rate=0.0, layer_norm_epsilon=config.layer_norm_epsilon)).eval()
    result = hf.load_state_dict({**state, "encoder.embed_tokens.weight": state["shared.weight"]}, strict=False)
    assert not result.unexpected_keys and not [k for k in result.missing_keys if "embed_tokens" not in k]
    return hf


@pytest.mark.parametrize("length,padded", [(9, 0), (150, 40)])
def test_matches_transformers_umt5_encoder(length: int, padded: int) -> None:
    # 150 tokens reach past max_distance 128: the logarithmic buckets and their clamp are exercised.
    state = random_state(TINY)
    ours = UMT5Encoder(TINY).eval()
    ours.load_state_dict(state)
    reference = reference_encoder(TINY, state)
    torch.manual_seed(3)
    ids = torch.randint(2, TINY.vocab_size, (2, length))
    mask = torch.ones(2, length, dtype=torch.long)
    if padded:
        mask[1, -padded:] = 0
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        got = ours(ids, mask)
    keep = mask.bool()
    assert expected[keep].abs().max() > 0.1
    assert (got[keep] - expected[keep]).abs().max().item() <= 1e-4


def test_relative_buckets_are_t5s() -> None:
    transformers = pytest.importorskip("transformers")
    from transformers.models.umt5.modeling_umt5 import UMT5Attention

    attention = UMT5Attention(transformers.UMT5Config(relative_attention_num_buckets=32,
                                                      relative_attention_max_distance=128), has_relative_attention_bias=True)
    relative = torch.arange(-300, 301)[None, :]
    assert torch.equal(relative_position_bucket(relative, 32, 128), attention._relative_position_bucket(relative))


def write_tokenizer(path: Path, words: list[str]) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(path))
    return path


def test_tokenizer_pads_to_512_after_the_end_token(tmp_path: Path) -> None:
    write_tokenizer(tmp_path / "tokenizer.json", ["a", "fox", "runs"])
    tokenizer = UMT5Tokenizer(tokenizer_path_for(tmp_path / "umt5.safetensors"))
    ids, mask = tokenizer("a fox jumps")
    assert ids[:5] == [3, 4, 2, 1, 0]  # unknown word, then </s>, then padding
    assert len(ids) == len(mask) == 512 and sum(mask) == 4
    long_ids, long_mask = tokenizer("fox " * 600)
    assert len(long_ids) == 512 and long_ids[-1] == 1 and sum(long_mask) == 512


def test_a_named_tokenizer_beside_the_file_wins(tmp_path: Path) -> None:
    write_tokenizer(tmp_path / "tokenizer.json", ["a"])
    named = write_tokenizer(tmp_path / "enc.tokenizer.json", ["b"])
    assert tokenizer_path_for(tmp_path / "enc.safetensors") == named


def test_missing_or_bad_tokenizer_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        tokenizer_path_for(tmp_path / "umt5.safetensors")
    (tmp_path / "tokenizer.json").write_text(json.dumps({"nope": 1}))
    with pytest.raises(ValueError, match="tokenizer.json"):
        UMT5Tokenizer(tmp_path / "tokenizer.json")


def test_encode_zeroes_the_padding_and_config_comes_from_keys() -> None:
    state = random_state(TINY)
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    assert config_from_shapes(shapes) == TINY
    assert set(state_for_encoder({**state, "spiece_model": torch.zeros(3)})) == set(state)
    encoder = UMT5Encoder(TINY).eval()
    encoder.load_state_dict(state)
    context = encode(encoder, [5, 6, 1, 0, 0], [1, 1, 1, 0, 0], torch.device("cpu"))
    assert context.shape == (1, 5, 32)
    assert context[0, 3:].abs().max() == 0 and context[0, :3].abs().min() > 0
    with pytest.raises(ValueError, match="not a UMT5"):
        config_from_shapes({"shared.weight": (4, 4)})


def test_emphasis_weights_scale_a_tokens_difference_from_the_empty_prompt(tmp_path: Path) -> None:
    write_tokenizer(tmp_path / "tokenizer.json", ["a", "red", "fox"])
    tokenizer = UMT5Tokenizer(tmp_path / "tokenizer.json", min_length=8)
    ids, mask, weights = tokenizer.weighted("a (red:1.5) fox")
    assert ids == [3, 4, 5, 1, 0, 0, 0, 0] and weights[:4] == [1.0, 1.5, 1.0, 1.0]
    assert tokenizer.weighted("a red fox")[0] == ids
    assert sum(tokenizer("a (red:1.5) fox")[1]) > 4  # without emphasis the syntax is text
    state = random_state(TINY)
    encoder = UMT5Encoder(TINY).eval()
    encoder.load_state_dict(state)
    cpu = torch.device("cpu")
    plain = encode(encoder, ids, mask, cpu)
    empty = encode(encoder, [1] + [0] * 7, [1] + [0] * 7, cpu)
    weighted = encode(encoder, ids, mask, cpu, weights)
    assert torch.allclose(weighted[0, 1], empty[0, 1] + 1.5 * (plain[0, 1] - empty[0, 1]), atol=1e-5)
    assert torch.allclose(weighted[0, [0, 2, 3]], plain[0, [0, 2, 3]], atol=1e-6)
    assert not weighted[0, 4:].any()
