"""Prompt to conditioning: chunking into 77-token windows, emphasis weights, textual inversion and clip skip.

:class:`CLIP` is what ComfyUI's CLIP-typed values are: one or two text encoders of a family, the tokenizer, the
embeddings folders and the clip-skip setting. ``clip.encode(text)`` returns ``(cond, pooled)``: ``cond`` is
``[1, 77 * chunks, context_dim]`` (CLIP-L and bigG side by side for SDXL), ``pooled`` is ``[1, dim]``.

How it matches ComfyUI's results:
- The prompt is split into weighted segments, each segment into space-separated words, each word tokenized on
  its own. Words fill 75-token chunks; a word shorter than 8 tokens that does not fit starts the next chunk, a
  longer one is cut. Each chunk is ``[start] + tokens + [end]`` padded to 77 and encoded on its own; the chunks'
  states are concatenated. The pooled output is the first chunk's.
- A token of weight ``w`` becomes ``z_empty + w * (z - z_empty)``, where ``z_empty`` is the empty prompt's state at
  the same position (so weights scale a token's difference from "nothing", not its raw magnitude).
- ``embedding:name`` words are replaced by that embedding's vectors, one token each.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hearth.core.prompt_weights import parse_prompt_weights

from .embeddings import EmbeddingLibrary
from .families import END_TOKEN, START_TOKEN, Family, TextEncoderSpec
from .ops import compute_dtype_of
from .tokenizer import CLIPTokenizer, find_vocab, get_tokenizer

log = logging.getLogger(__name__)

CHUNK_TOKENS = 75
CONTEXT = CHUNK_TOKENS + 2
LONG_WORD = 8  # words of at least this many tokens may be cut at a chunk boundary
EMBEDDING_PREFIX = "embedding:"
_TRAILING = re.compile(r"[,.;:!?]+$")


@dataclass
class Chunk:
    """One 77-token window: ids, a weight per position, embedding vectors that replace some positions, and which
    word of the prompt each position came from (1-based; 0 for the start, end and padding tokens)."""

    tokens: list[int]
    weights: list[float]
    vectors: dict[int, torch.Tensor] = field(default_factory=dict)
    word_ids: list[int] = field(default_factory=list)

    def window(self, word_ids: bool = False) -> list[tuple]:
        """ComfyUI's form of the window: ``[(token, weight), ...]`` (``(token, weight, word_id)`` with
        ``word_ids``), an embedding's vector in place of the token where the prompt names one."""
        ids = self.word_ids or [0] * len(self.tokens)
        items = [self.vectors.get(pos, token) for pos, token in enumerate(self.tokens)]
        if word_ids:
            return list(zip(items, self.weights, ids, strict=True))
        return list(zip(items, self.weights, strict=True))

    @classmethod
    def from_window(cls, window: Sequence[Sequence[Any]]) -> Chunk:
        """A chunk from ComfyUI's window: ``(token, weight)`` or ``(token, weight, word_id)`` items, where a token
        is an id or an embedding vector ``[D]`` (a tensor, or ComfyUI's ``{"type": "embedding", "data": ...}``)."""
        chunk = cls([], [])
        for pos, item in enumerate(window):
            token, weight = item[0], float(item[1])
            if isinstance(token, Mapping):
                token = token.get("data")
            if isinstance(token, torch.Tensor) and token.numel() > 1:
                chunk.vectors[pos] = token.reshape(-1)
                token = 0  # as chunk_words puts it: any id below the end token
            elif not isinstance(token, (int, torch.Tensor)) and not hasattr(token, "__index__"):
                raise TypeError(f"a token window holds ids or embedding vectors, got {type(token).__name__} at "
                                f"position {pos}")
            chunk.tokens.append(int(token))
            chunk.weights.append(weight)
            chunk.word_ids.append(int(item[2]) if len(item) > 2 else 0)
        return chunk


Word = list[tuple[int | torch.Tensor, float]]


def as_chunks(windows: Sequence[Any]) -> list[Chunk]:
    """An encoder's token windows as :class:`Chunk` s: Hearth's own pass through, ComfyUI's are converted."""
    return [w if isinstance(w, Chunk) else Chunk.from_window(w) for w in windows]


def chunk_words(words: list[Word], pad_token: int) -> list[Chunk]:
    """Pack words into 77-token chunks (see the module docstring for the rule); word ``i`` gets word id ``i + 1``."""
    chunks: list[Chunk] = []
    current: list[tuple[int | torch.Tensor, float, int]] = []

    def flush() -> None:
        items = [(START_TOKEN, 1.0, 0), *current, (END_TOKEN, 1.0, 0)]
        items += [(pad_token, 1.0, 0)] * (CONTEXT - len(items))
        chunk = Chunk([], [])
        for pos, (item, weight, word_id) in enumerate(items):
            if isinstance(item, torch.Tensor):
                chunk.vectors[pos] = item
                item = 0  # any id below the end token; pooling looks for the first end token
            chunk.tokens.append(item)
            chunk.weights.append(weight)
            chunk.word_ids.append(word_id)
        chunks.append(chunk)
        current.clear()

    for number, word in enumerate(words, start=1):
        items = [(item, weight, number) for item, weight in word]
        while items:
            room = CHUNK_TOKENS - len(current)
            if len(items) <= room:
                current.extend(items)
                items = []
            elif len(items) >= LONG_WORD:
                current.extend(items[:room])
                items = items[room:]
                flush()
            else:
                flush()
    if current or not chunks:
        flush()
    return chunks


class CLIP:
    """The text side of a model family: tokenizer, encoders, embeddings and the clip-skip layer.

    :param encoders: the encoder modules by spec name (``"l"``, ``"h"``, ``"g"``), as the family lists them.
    :param vocab_near: a checkpoint path; a vocabulary file beside it is preferred to the packaged one.
    :param layer: clip skip with ``CLIPSetLastLayer`` semantics: None for the family's default (SD1: last layer;
        SD2/SDXL: penultimate), -1 for the last layer, -2 for the penultimate, ...
    """

    def __init__(
        self,
        family: Family,
        encoders: Mapping[str, nn.Module],
        tokenizer: CLIPTokenizer | None = None,
        embeddings: EmbeddingLibrary | None = None,
        layer: int | None = None,
        vocab_near: str | Path | None = None,
    ):
        missing = [s.name for s in family.text_encoders if s.name not in encoders]
        if missing:
            raise ValueError(f"{family.name} needs text encoder(s) {missing}")
        self.family = family
        self.encoders = dict(encoders)
        self._tokenizer = tokenizer
        self.vocab_near = vocab_near
        self.embeddings = embeddings or EmbeddingLibrary()
        self.layer = layer

    @property
    def tokenizer(self) -> CLIPTokenizer:
        """The tokenizer, found when first needed (a vocabulary beside the checkpoint wins over the packaged one)."""
        if self._tokenizer is None:
            self._tokenizer = get_tokenizer(str(find_vocab(self.vocab_near)))
        return self._tokenizer

    def clone(self, **changes) -> CLIP:
        """A copy sharing the encoder modules (weights are never copied)."""
        out = CLIP(self.family, self.encoders, self._tokenizer, self.embeddings, self.layer, self.vocab_near)
        for key, value in changes.items():
            setattr(out, key, value)
        return out

    def set_last_layer(self, layer: int) -> CLIP:
        """``CLIPSetLastLayer``: a clone that reads hidden states ``layer`` layers from the end (-1 = last)."""
        if layer >= 0:
            raise ValueError(f"stop_at_clip_layer must be negative (-1 is the last layer), got {layer}")
        return self.clone(layer=layer)

    # --- tokenizing ------------------------------------------------------------------------------------------

    def _words(self, text: str, spec: TextEncoderSpec) -> list[Word]:
        words: list[Word] = []
        for segment, weight in parse_prompt_weights(text):
            for word in segment.replace("\n", " ").split(" "):
                if not word:
                    continue
                if word.startswith(EMBEDDING_PREFIX):
                    found, vectors, rest = self._embedding(word[len(EMBEDDING_PREFIX) :], spec)
                    if found:
                        # An embedding without vectors for this encoder is dropped (with a warning), not spelled.
                        if vectors is not None:
                            words.append([(v, weight) for v in vectors])
                        if rest:
                            words.append([(t, weight) for t in self.tokenizer.encode(rest)])
                        continue
                words.append([(t, weight) for t in self.tokenizer.encode(word)])
        return words

    def _embedding(self, name: str, spec: TextEncoderSpec) -> tuple[bool, torch.Tensor | None, str]:
        """(found, vectors for this encoder or None, text left after the name)."""
        rest = ""
        if self.embeddings.find(name) is None:
            # "embedding:name," -- trailing punctuation belongs to the prompt, not to the name.
            stripped = _TRAILING.sub("", name)
            name, rest = stripped, name[len(stripped) :]
        found = self.embeddings.get(name)
        if found is None:
            return False, None, ""
        vectors = found.vectors_for(spec.name, spec_width(self.encoders[spec.name]))
        if vectors is None:
            log.warning("embedding %r has no vectors for text encoder %r (width mismatch); ignored", name, spec.name)
        return True, vectors, rest

    def tokenize(self, text: str) -> dict[str, list[Chunk]]:
        """Chunks per text encoder (they differ in padding and in which embedding vectors they take)."""
        return {spec.name: chunk_words(self._words(text, spec), spec.pad_token) for spec in self.family.text_encoders}

    def tokenize_each(self, texts: Mapping[str, str]) -> dict[str, list[Chunk]]:
        """A different prompt per encoder (``CLIPTextEncodeSDXL``'s ``text_l`` / ``text_g``), others get ``""``.

        The encoders' states are joined position by position, so the shorter token list is padded with empty-prompt
        chunks to the longer one's count.
        """
        unknown = set(texts) - {spec.name for spec in self.family.text_encoders}
        if unknown:
            raise ValueError(f"{self.family.name} has no text encoder(s) {sorted(unknown)}")
        tokens = {
            spec.name: chunk_words(self._words(texts.get(spec.name, ""), spec), spec.pad_token)
            for spec in self.family.text_encoders
        }
        count = max(len(chunks) for chunks in tokens.values())
        for spec in self.family.text_encoders:
            chunks = tokens[spec.name]
            chunks.extend(chunk_words([], spec.pad_token)[0] for _ in range(count - len(chunks)))
        return tokens

    # --- encoding --------------------------------------------------------------------------------------------

    def _encode_chunks(self, spec: TextEncoderSpec, chunks: list[Chunk]) -> tuple[torch.Tensor, torch.Tensor]:
        model = self.encoders[spec.name]
        if len({len(c.tokens) for c in chunks}) > 1:
            raise ValueError(f"the token windows of text encoder {spec.name!r} differ in length "
                             f"({sorted({len(c.tokens) for c in chunks})}): pad them to one length")
        param = next(model.parameters())
        weighted = any(w != 1.0 for chunk in chunks for w in chunk.weights)
        rows = list(chunks)
        if weighted:
            rows.append(chunk_words([], spec.pad_token)[0])  # the empty prompt, for interpolation
        ids = torch.tensor([c.tokens for c in rows], device=param.device)
        layer = spec.default_layer if self.layer is None else self.layer
        with torch.no_grad():
            embeds = model.token_embedding(ids).to(compute_dtype_of(model))
            for r, chunk in enumerate(rows):
                for pos, vector in chunk.vectors.items():
                    embeds[r, pos] = vector.to(embeds)
            out = model(ids, input_embeds=embeds, layer=layer, norm_hidden=spec.norm_hidden)
        z = out.hidden.float()
        if weighted:
            z, empty = z[:-1], z[-1:]
            w = torch.tensor([c.weights for c in chunks], device=z.device, dtype=z.dtype)[..., None]
            z = torch.where(w != 1.0, empty + (z - empty) * w, z)
        return z.reshape(1, -1, z.shape[-1]).cpu(), out.pooled[:1].float().cpu()

    def encode_from_tokens(self, tokens: Mapping[str, Sequence[Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cond, pooled)`` for tokens from :meth:`tokenize` (or ComfyUI's windows, see :func:`as_chunks`).
        SDXL joins CLIP-L and bigG states feature-wise and pools from bigG; a family's last listed encoder gives
        the pooled output."""
        missing = [spec.name for spec in self.family.text_encoders if spec.name not in tokens]
        if missing:
            raise ValueError(f"{self.family.name} encodes tokens for text encoder(s) "
                             f"{[s.name for s in self.family.text_encoders]}; missing {missing}")
        hidden, pooled = [], None
        for spec in self.family.text_encoders:
            z, pooled = self._encode_chunks(spec, as_chunks(tokens[spec.name]))
            hidden.append(z)
        length = min(h.shape[1] for h in hidden)
        return torch.cat([h[:, :length] for h in hidden], dim=-1), pooled

    def encode_with(self, name: str, windows: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cond [1, 77*k, width], pooled [1, dim])`` of text encoder ``name`` alone (ComfyUI's
        ``cond_stage_model.clip_l.encode_token_weights``): SDXL's advanced encoders join l and g themselves."""
        for spec in self.family.text_encoders:
            if spec.name == name:
                return self._encode_chunks(spec, as_chunks(windows))
        raise ValueError(f"{self.family.name} has no text encoder {name!r} "
                         f"(it has {[s.name for s in self.family.text_encoders]})")

    def encode(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cond [1, 77*k, context_dim], pooled [1, dim])`` for a prompt, in float32 on the CPU."""
        return self.encode_from_tokens(self.tokenize(text))


def spec_width(model: nn.Module) -> int:
    return model.token_embedding.weight.shape[1]
