"""ComfyUI's token windows on Hearth's CLIP: Hearth's chunks as ``(token, weight[, word_id])`` windows and back, with
embedding vectors in place of their tokens (what efficiency's and Easy-Use's advanced encoders hand back)."""

from __future__ import annotations

import pytest
import torch
from hearth_sd.embeddings import EmbeddingLibrary
from hearth_sd.text_encoding import Chunk, as_chunks

from .test_text_encoding import make_clip


def test_windows_carry_word_ids_and_embedding_vectors_and_encode_as_the_chunks(tmp_path):
    vectors = torch.randn(2, 32, generator=torch.Generator().manual_seed(9))
    torch.save({"string_to_param": {"*": vectors}, "name": "shiny"}, tmp_path / "shiny.pt")
    clip, _ = make_clip("sd1", EmbeddingLibrary([tmp_path]))
    text = "a (embedding:shiny:1.2) cat"
    [chunk] = clip.tokenize(text)["l"]
    window = chunk.window(word_ids=True)
    assert len(window) == 77 and window[0][2] == 0 and window[-1][2] == 0  # start and padding: word 0
    assert window[1][2] == 1  # "a"
    # The embedding's two vectors stand where its tokens would, as one word of weight 1.2.
    assert torch.equal(window[2][0], vectors[0]) and torch.equal(window[3][0], vectors[1])
    assert window[2][1:] == window[3][1:] == (pytest.approx(1.2), 2)
    assert window[4][2] == 3  # "cat"
    back = Chunk.from_window(window)
    assert back.tokens == chunk.tokens and back.weights == chunk.weights and back.word_ids == chunk.word_ids
    assert set(back.vectors) == {2, 3}
    # Two-item windows (the pairs packs rebuild) encode exactly as Hearth's own chunks.
    pairs = [(t, w) for t, w, _ in window]
    cond, pooled = clip.encode_from_tokens({"l": [pairs]})
    want_cond, want_pooled = clip.encode(text)
    assert torch.equal(cond, want_cond) and torch.equal(pooled, want_pooled)


def test_windows_that_cannot_be_encoded_are_refused_by_name():
    clip, _ = make_clip("sd1")
    [chunk] = clip.tokenize("a cat")["l"]
    with pytest.raises(ValueError, match="differ in length"):
        clip.encode_from_tokens({"l": [chunk.window(), chunk.window()[:40]]})
    with pytest.raises(TypeError, match="position 1"):
        as_chunks([[(49406, 1.0), ("cat", 1.0)]])
    with pytest.raises(ValueError, match="missing"):
        make_clip("sdxl")[0].encode_from_tokens({"l": [chunk.window()]})
