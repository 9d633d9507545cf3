"""CLIP's byte-level BPE tokenizer for Flux's CLIP-L, with the merges read from disk (never the network).

The merges file is ``bpe_simple_vocab_16e6.txt.gz`` (or ``.txt``, or a ``merges.txt``) beside the model file, in a
``clip_tokenizer`` folder beside it, or the copy the ``open-clip-torch`` package ships (found without importing
it). Ids match OpenAI's ``SimpleTokenizer`` for prompts (HTML entities decoded, whitespace collapsed, lower case;
ftfy's mojibake repair is not done). Flux's prompt is ``<start> tokens <end>`` padded with ``<end>`` to 77, the
prompt cut at 75 tokens: only the pooled output is used, which reads the first 77-token window as ComfyUI does.
"""

from __future__ import annotations

import gzip
import html
import importlib.util
from functools import lru_cache
from pathlib import Path

import regex

VOCAB_FILENAMES = ("bpe_simple_vocab_16e6.txt.gz", "bpe_simple_vocab_16e6.txt", "merges.txt")
LENGTH = 77
_MERGES = 49152 - 256 - 2
_PATTERN = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"""
                         r"""[^\s\p{L}\p{N}]+""", regex.IGNORECASE)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map of bytes to printable characters (BPE works on these)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, map(chr, chars), strict=True))


def find_vocab(model_path: str | Path | None = None) -> Path:
    """The CLIP merges file for a model file, or a clear error naming where to put one."""
    places = []
    if model_path is not None:
        folder = Path(model_path).parent
        places += [folder / name for name in VOCAB_FILENAMES]
        places += [folder / "clip_tokenizer" / name for name in VOCAB_FILENAMES]
    spec = importlib.util.find_spec("open_clip")
    for location in (spec.submodule_search_locations or []) if spec else []:
        places.append(Path(location) / VOCAB_FILENAMES[0])
    for place in places:
        if place.is_file():
            return place
    where = places[0] if places else Path(VOCAB_FILENAMES[0])
    raise FileNotFoundError(f"no CLIP BPE vocabulary found: put bpe_simple_vocab_16e6.txt.gz (OpenAI CLIP's merges) "
                            f"at {where}, or install open-clip-torch, which ships it")


class CLIPTokenizer:
    START, END = 49406, 49407

    def __init__(self, vocab_path: str | Path) -> None:
        self.path = Path(vocab_path)
        opener = gzip.open if self.path.suffix == ".gz" else open
        with opener(self.path, "rt", encoding="utf-8") as handle:
            lines = handle.read().split("\n")
        merges = [tuple(line.split()) for line in lines[1:_MERGES + 1] if line.strip()]
        self.byte_encoder = _bytes_to_unicode()
        vocab = list(self.byte_encoder.values())
        vocab += [v + "</w>" for v in vocab] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = {token: i for i, token in enumerate(vocab)}
        self.ranks = {merge: i for i, merge in enumerate(merges)}
        self._bpe = lru_cache(maxsize=10000)(self._bpe_uncached)

    def _bpe_uncached(self, token: str) -> tuple[str, ...]:
        word = (*token[:-1], token[-1] + "</w>")
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda pair: self.ranks.get(pair, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        return word

    def encode(self, text: str) -> list[int]:
        text = " ".join(html.unescape(html.unescape(text)).split()).lower()
        ids = []
        for piece in _PATTERN.findall(text):
            chars = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids += [self.encoder[part] for part in self._bpe(chars)]
        return ids

    def __call__(self, text: str) -> list[int]:
        """Flux's 77 ids: start, at most 75 prompt tokens, end, padded with end."""
        ids = [self.START, *self.encode(text)[: LENGTH - 2], self.END]
        return ids + [self.END] * (LENGTH - len(ids))
