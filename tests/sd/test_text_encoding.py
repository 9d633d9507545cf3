"""Prompt weighting, chunking, textual inversion and clip skip, each against a result computed independently:
token ids from the tokenizer, states from transformers' CLIP loaded with the same weights, the formulas by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from hearth_sd.clip_text import CLIPTextEncoder
from hearth_sd.embeddings import EmbeddingLibrary, parse_embedding
from hearth_sd.families import FAMILIES
from hearth_sd.open_clip_text import OpenCLIPTextEncoder
from hearth_sd.text_encoding import CLIP
from hearth_sd.tokenizer import get_tokenizer

from hearth.core.prompt_weights import parse_prompt_weights

from .ldm_to_diffusers import convert_open_clip
from .sd_testing import randomize_

transformers = pytest.importorskip("transformers", reason="transformers is a test dependency")

BOS, EOS = 49406, 49407
TOL = 1e-4


def _hf_config(c):
    return transformers.CLIPTextConfig(
        vocab_size=c.vocab_size, hidden_size=c.width, intermediate_size=c.intermediate,
        num_hidden_layers=c.layers, num_attention_heads=c.heads, max_position_embeddings=c.max_positions,
        hidden_act=c.activation, layer_norm_eps=c.eps, bos_token_id=BOS, eos_token_id=EOS,
        projection_dim=c.projection_dim or c.width,
    )  # fmt: skip


class Reference:
    """transformers' CLIP with one of our encoders' weights; ``run(rows)`` gives every layer's states."""

    def __init__(self, ours, spec):
        self.spec = spec
        if spec.layout == "hf":
            self.model = transformers.CLIPTextModel(_hf_config(spec.tiny)).eval()
            state = ours.state_dict()
            if not any(k.startswith("text_model.") for k in self.model.state_dict()):
                state = {k.removeprefix("text_model."): v for k, v in state.items()}
        else:
            self.model = transformers.CLIPTextModelWithProjection(_hf_config(spec.tiny)).eval()
            state = convert_open_clip(ours.state_dict())
        self.model.load_state_dict(state, strict=False)
        self.final_norm = ours.text_model.final_layer_norm if spec.layout == "hf" else ours.ln_final

    def run(self, rows, extra_vectors=None):
        """States for id rows; ``extra_vectors`` [n, width] become ids 49408.. (new vocabulary entries)."""
        model = self.model
        if extra_vectors is not None:
            model.resize_token_embeddings(49408 + len(extra_vectors))
            model.get_input_embeddings().weight.data[49408:] = extra_vectors
        with torch.no_grad():
            out = model(torch.tensor(rows), output_hidden_states=True)
        pooled = out.text_embeds if hasattr(out, "text_embeds") else out.pooler_output
        return out.hidden_states, pooled

    def layer(self, states, layer):
        """The hidden state CLIPSetLastLayer(layer) selects (None = the family default)."""
        layer = self.spec.default_layer if layer is None else layer
        if layer is None:
            return self.final_norm(states[-1])
        return self.final_norm(states[layer]) if self.spec.norm_hidden else states[layer]


def make_clip(family_name, embeddings=None, seed=0):
    family = FAMILIES[family_name]
    encoders, refs = {}, {}
    for i, spec in enumerate(family.text_encoders):
        module_type = CLIPTextEncoder if spec.layout == "hf" else OpenCLIPTextEncoder
        encoders[spec.name] = randomize_(module_type(spec.tiny).eval(), seed=seed + i)
        refs[spec.name] = Reference(encoders[spec.name], spec)
    return CLIP(family, encoders, get_tokenizer(), embeddings), refs


def chunk_row(ids, pad):
    row = [BOS, *ids, EOS]
    return row + [pad] * (77 - len(row))


def ids(text):
    return get_tokenizer().encode(text)


# --- prompt weight syntax -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("a cat", [("a cat", 1.0)]),
        ("(a cat)", [("a cat", 1.1)]),
        ("[a cat]", [("a cat", 1 / 1.1)]),
        ("(a cat:1.3)", [("a cat", 1.3)]),
        ("((a cat))", [("a cat", 1.1 * 1.1)]),
        ("((a cat:1.5))", [("a cat", 1.5 * 1.1)]),
        ("a (b [c] d:0.5) e", [("a ", 1.0), ("b ", 0.5), ("c", 0.5 / 1.1), (" d", 0.5), (" e", 1.0)]),
        (r"\(not weighted\) (yes)", [("(not weighted) ", 1.0), ("yes", 1.1)]),
        ("(unclosed", [("unclosed", 1.1)]),
        ("stray) ]", [("stray) ]", 1.0)]),
        ("(ratio:wide)", [("ratio:wide", 1.1)]),
        ("embedding:x, (a: 0.8 )", [("embedding:x, ", 1.0), ("a", 0.8)]),
        ("", [("", 1.0)]),
    ],
)
def test_prompt_weight_syntax(prompt, expected):
    got = parse_prompt_weights(prompt)
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert [w for _, w in got] == pytest.approx([w for _, w in expected])


# --- chunking ---------------------------------------------------------------------------------------------------


def test_long_prompt_is_chunked_and_concatenated():
    clip, refs = make_clip("sd1")
    ref = refs["l"]
    cat = ids("cat")
    assert len(cat) == 1
    # 74 one-token words, then a 2-token word: it does not fit the first chunk and moves to the second whole.
    two = ids("astronaut's")
    assert len(two) == 2
    cond, pooled = clip.encode("cat " * 74 + "astronaut's cat")

    rows = [chunk_row(cat * 74, EOS), chunk_row(two + cat, EOS)]
    states, want_pooled = ref.run(rows)
    want = ref.layer(states, None).reshape(1, -1, 32)
    assert cond.shape == (1, 154, 32)
    assert (cond - want).abs().max().item() <= TOL
    assert (pooled - want_pooled[:1]).abs().max().item() <= TOL


def test_long_words_are_cut_at_the_chunk_boundary():
    clip, _ = make_clip("sd1")
    word = "qxzjvkwpfhgbtmnrl"
    word_ids = ids(word)
    assert len(word_ids) >= 8  # a "long" word: it may be cut, unlike short ones
    chunks = clip.tokenize("cat " * 70 + word)["l"]
    assert len(chunks) == 2
    assert chunks[0].tokens == chunk_row(ids("cat") * 70 + word_ids[:5], EOS)
    assert chunks[1].tokens == chunk_row(word_ids[5:], EOS)


# --- weighting --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["sd1", "sd2"])
def test_weights_interpolate_from_the_empty_prompt(family):
    clip, refs = make_clip(family)
    spec = clip.family.text_encoders[0]
    ref = refs[spec.name]
    cond, pooled = clip.encode("a (red:1.5) [cat] sitting")

    a, red, cat, sitting = ids("a"), ids("red"), ids("cat"), ids("sitting")
    row = chunk_row(a + red + cat + sitting, spec.pad_token)
    weights = [1.0, 1.0] + [1.5] * len(red) + [1 / 1.1] * len(cat) + [1.0] * (77 - 2 - len(red) - len(cat))
    states, want_pooled = ref.run([row, chunk_row([], spec.pad_token)])
    z, empty = ref.layer(states, None)[0], ref.layer(states, None)[1]
    w = torch.tensor(weights)[:, None]
    want = (empty + w * (z - empty))[None]
    assert (cond - want).abs().max().item() <= TOL
    assert (pooled - want_pooled[:1]).abs().max().item() <= TOL  # pooling ignores weights
    assert (cond - z[None]).abs().max().item() > 1e-3  # and the weights did change the states


# --- textual inversion ----------------------------------------------------------------------------------------


def test_a1111_embedding_replaces_its_word(tmp_path):
    vectors = torch.randn(2, 32, generator=torch.Generator().manual_seed(9))
    torch.save({"string_to_param": {"*": vectors}, "name": "shiny"}, tmp_path / "shiny.pt")
    clip, refs = make_clip("sd1", EmbeddingLibrary([tmp_path]))
    cond, pooled = clip.encode("a embedding:shiny, cat")

    row = chunk_row(ids("a") + [49408, 49409] + ids(",") + ids("cat"), EOS)
    states, want_pooled = refs["l"].run([row], extra_vectors=vectors)
    assert (cond - refs["l"].layer(states, None)).abs().max().item() <= TOL
    assert (pooled - want_pooled).abs().max().item() <= TOL


def test_sdxl_embedding_gives_each_encoder_its_vectors(tmp_path):
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(10)
    l_vec, g_vec = torch.randn(1, 32, generator=gen), torch.randn(1, 32, generator=gen)
    save_file({"clip_l": l_vec, "clip_g": g_vec}, str(tmp_path / "style.safetensors"))
    clip, refs = make_clip("sdxl", EmbeddingLibrary([tmp_path]))
    cond, pooled = clip.encode("embedding:style photo")

    halves = []
    for name, vec in (("l", l_vec), ("g", g_vec)):
        spec = next(s for s in clip.family.text_encoders if s.name == name)
        states, ref_pooled = refs[name].run([chunk_row([49408, *ids("photo")], spec.pad_token)], vec)
        halves.append(refs[name].layer(states, None))
    assert (cond - torch.cat(halves, dim=-1)).abs().max().item() <= TOL
    assert (pooled - ref_pooled).abs().max().item() <= TOL


def test_embedding_layouts(tmp_path):
    v = torch.ones(3, 8)
    assert parse_embedding("a", {"emb_params": v}).vectors_for("h", 8).shape == (3, 8)
    assert parse_embedding("b", {"<token>": v[0]}).vectors_for("l", 8).shape == (1, 8)
    assert parse_embedding("c", {"clip_l": v, "clip_g": torch.ones(3, 16)}).vectors_for("g", 16).shape == (3, 16)
    assert parse_embedding("d", {"emb_params": v}).vectors_for("l", 768) is None  # wrong width: ignored
    with pytest.raises(ValueError, match="unknown layout"):
        parse_embedding("e", {"x": v, "y": v})
    (tmp_path / "outside.pt").write_bytes(b"")
    assert EmbeddingLibrary([tmp_path / "sub"]).find("../outside") is None


def test_missing_embedding_is_plain_text(tmp_path):
    clip, _ = make_clip("sd1", EmbeddingLibrary([tmp_path]))
    tokens = clip.tokenize("embedding:nothere")["l"][0].tokens
    assert tokens[1 : tokens.index(EOS)] == ids("embedding:nothere")


# --- clip skip --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "family, layer",
    [("sd1", None), ("sd1", -2), ("sd1", -1), ("sd2", None), ("sd2", -1), ("sdxl", None), ("sdxl", -1),
     ("sdxl_refiner", None), ("sd1", -24)],
)  # fmt: skip
def test_clip_skip_selects_the_layer(family, layer):
    clip, refs = make_clip(family)
    if layer is not None:
        clip = clip.set_last_layer(layer)
    cond, pooled = clip.encode("a photo of a cat")

    halves = []
    for spec in clip.family.text_encoders:
        states, want_pooled = refs[spec.name].run([chunk_row(ids("a photo of a cat"), spec.pad_token)])
        if layer is not None and -layer > len(states) - 1:
            halves.append(refs[spec.name].final_norm(states[-1]))  # past the first layer: the last, normed
        else:
            halves.append(refs[spec.name].layer(states, layer))
    assert (cond - torch.cat(halves, dim=-1)).abs().max().item() <= TOL
    # Pooled output always comes from the final, normed layer (projected where the model has a projection).
    assert (pooled - want_pooled).abs().max().item() <= TOL


def test_set_last_layer_leaves_the_original_alone():
    clip, _ = make_clip("sd1")
    skipped = clip.set_last_layer(-2)
    assert clip.layer is None and skipped.layer == -2 and skipped.encoders["l"] is clip.encoders["l"]
    with pytest.raises(ValueError, match="negative"):
        clip.set_last_layer(1)


def test_embedding_of_another_width_is_dropped_for_that_encoder(tmp_path):
    """An SD1-style (single width) embedding on SDXL: CLIP-L takes its vectors, bigG (another width) drops it."""
    from safetensors.torch import save_file

    save_file({"emb_params": torch.ones(2, 32)}, str(tmp_path / "one.safetensors"))
    clip, _ = make_clip("sdxl", EmbeddingLibrary([tmp_path]))
    clip.encoders["g"] = OpenCLIPTextEncoder(replace(clip.family.text_encoders[1].tiny, width=16, heads=2)).eval()
    tokens = clip.tokenize("embedding:one cat")
    l_tokens, g_tokens = tokens["l"][0].tokens, tokens["g"][0].tokens
    assert l_tokens[: l_tokens.index(EOS) + 1] == [BOS, 0, 0, *ids("cat"), EOS]
    assert g_tokens[: g_tokens.index(EOS) + 1] == [BOS, *ids("cat"), EOS]


def test_sdxl_separate_prompts_pad_to_the_same_length():
    """CLIPTextEncodeSDXL: text_l and text_g are tokenized apart; the shorter gets empty-prompt chunks."""
    clip, refs = make_clip("sdxl")
    tokens = clip.tokenize_each({"g": "cat " * 80, "l": "a dog"})
    assert len(tokens["g"]) == len(tokens["l"]) == 2
    assert tokens["l"][1].tokens == chunk_row([], EOS)
    cond, pooled = clip.encode_from_tokens(tokens)
    assert cond.shape == (1, 154, 64)
    l_states, _ = refs["l"].run([chunk_row(ids("a dog"), EOS), chunk_row([], EOS)])
    assert (cond[..., :32] - refs["l"].layer(l_states, None).reshape(1, -1, 32)).abs().max().item() <= TOL
    with pytest.raises(ValueError, match="no text encoder"):
        clip.tokenize_each({"h": "x"})
