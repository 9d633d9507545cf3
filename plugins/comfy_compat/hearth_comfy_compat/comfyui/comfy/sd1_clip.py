"""ComfyUI's ``comfy.sd1_clip``: prompt weighting, tokenizing into CLIP's 77-token windows, textual-inversion
embeddings, and the text-encoder classes packs test for and subclass.

Real here: the prompt syntax (:func:`escape_important`, :func:`parse_parentheses`, :func:`token_weights`),
:class:`SDTokenizer` / :class:`SD1Tokenizer` (``tokenize_with_weights`` with ComfyUI's chunking and word ids),
:func:`load_embed`, and :class:`ClipTokenWeightEncoder`'s weighting (``z_empty + w * (z - z_empty)``) over any
``encode``. The tokenizer is CLIP's byte-level BPE (:class:`CLIPTokenizer`), read from a ``vocab.json`` +
``merges.txt`` folder (ComfyUI's ``sd1_tokenizer``) or the ``bpe_simple_vocab_16e6.txt.gz`` that open-clip-torch
ships; it leaves out ftfy's mojibake repair.

What differs: :class:`SDClipModel` builds ComfyUI's own CLIP transformer (``comfy.clip_model``), which Hearth does
not have (its text encoders belong to its SD plugin and come from files: ``comfy.sd.load_clip``). The classes import
and subclass with their real signatures; constructing one fails naming what is missing, recorded for
``comfy plugins``.
"""

from __future__ import annotations

import gzip
import html
import importlib.util
import json
import logging
import os
import re
import unicodedata
import zipfile
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

_ESCAPES = (("\\)", "\0\1"), ("\\(", "\0\2"))
_BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"


# -- the prompt syntax -----------------------------------------------------------------------------------------

def escape_important(text: str) -> str:
    """Hide ``\\(`` and ``\\)`` from :func:`token_weights` (control characters stand in for them)."""
    for escaped, hidden in _ESCAPES:
        text = text.replace(escaped, hidden)
    return text


def unescape_important(text: str) -> str:
    """Undo :func:`escape_important`, leaving the literal parentheses (without their backslash)."""
    for escaped, hidden in _ESCAPES:
        text = text.replace(hidden, escaped[-1])
    return text


def parse_parentheses(string: str) -> list[str]:
    """Split at the outermost parentheses: ``"a (b (c)) d"`` -> ``["a ", "(b (c))", " d"]``. An unclosed group
    runs to the end; a stray ``)`` closes nothing."""
    parts: list[str] = []
    current = ""
    depth = 0
    for char in string:
        if char == "(":
            if depth == 0:
                if current:
                    parts.append(current)
                current = ""
            current += char
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                parts.append(current + ")")
                current = ""
            else:
                current += char
        else:
            current += char
    if current:
        parts.append(current)
    return parts


def token_weights(string: str, current_weight: float) -> list[tuple[str, float]]:
    """``(text, weight)`` segments of a prompt: each ``( )`` level multiplies by 1.1, ``(text:1.3)`` sets 1.3."""
    out: list[tuple[str, float]] = []
    for part in parse_parentheses(string):
        if len(part) >= 2 and part[0] == "(" and part[-1] == ")":
            inner = part[1:-1]
            weight = current_weight * 1.1
            colon = inner.rfind(":")
            if colon > 0:
                try:
                    weight = float(inner[colon + 1:])
                    inner = inner[:colon]
                except ValueError:
                    pass
            out += token_weights(inner, weight)
        else:
            out.append((part, current_weight))
    return out


def gen_empty_tokens(special_tokens: Mapping[str, int], length: int) -> list[int]:
    """The empty prompt's ids: start and end tokens (where the model has them), padded to ``length``."""
    out = [special_tokens[k] for k in ("start", "end") if special_tokens.get(k) is not None]
    return out + [special_tokens.get("pad")] * (length - len(out))


# -- textual inversion -----------------------------------------------------------------------------------------

def expand_directory_list(directories: list[str]) -> list[str]:
    """The folders and every folder below them (embeddings may sit in subfolders)."""
    found = set()
    for folder in directories:
        found.add(folder)
        found.update(root for root, _, _ in os.walk(folder, followlinks=True))
    return list(found)


def bundled_embed(embed: Mapping[str, torch.Tensor], prefix: str, suffix: str) -> torch.Tensor | None:
    """Vectors bundled in a LoRA file (``bundle_emb.<name>.<suffix>``), joined; None when there are none."""
    found = [v for k, v in embed.items() if k.startswith(prefix) and k.endswith(suffix)]
    return torch.cat(found, dim=0) if found else None


def safe_load_embed_zip(embed_path: str) -> torch.Tensor | None:
    """The vectors of an old pickled embedding read as raw float32 data from its zip, without unpickling."""
    with zipfile.ZipFile(embed_path) as archive:
        for name in reversed([n for n in archive.namelist() if "data/" in n]):
            data = archive.read(name)
            count = len(data) // 4
            if count < 768:
                continue
            width = 768 if count % 768 == 0 else 1024
            return torch.frombuffer(bytearray(data), dtype=torch.float32).reshape(count // width, width).clone()
    return None


def load_embed(embedding_name: str, embedding_directory: str | list[str], embedding_size: int,
               embed_key: str | None = None) -> torch.Tensor | None:
    """The vectors ``[n, embedding_size]`` of embedding ``embedding_name`` (a file in the folders, with or without
    its ``.safetensors`` / ``.pt`` / ``.bin`` suffix), or None. Names leaving the folders are not followed."""
    folders = [embedding_directory] if isinstance(embedding_directory, str) else list(embedding_directory)
    found = None
    for folder in expand_directory_list(folders):
        folder = os.path.abspath(folder)
        path = os.path.abspath(os.path.join(folder, embedding_name))
        if os.path.commonpath((folder, path)) != folder:
            continue
        candidates = [path] if os.path.isfile(path) else [path + ext for ext in (".safetensors", ".pt", ".bin")]
        found = next((c for c in candidates if os.path.isfile(c)), None)
        if found is not None:
            break
    if found is None:
        return None
    try:
        if found.lower().endswith(".safetensors"):
            from safetensors.torch import load_file

            embed: Any = load_file(found, device="cpu")
        else:
            try:
                embed = torch.load(found, weights_only=True, map_location="cpu")
            except Exception:  # an old pickle the safe loader refuses: read its raw data instead
                return safe_load_embed_zip(found)
    except Exception:
        log.warning("error loading embedding, skipping it: %s", embedding_name, exc_info=True)
        return None
    if "string_to_param" in embed:
        return next(iter(embed["string_to_param"].values()))
    if isinstance(embed, list):
        parts = [t.reshape(-1, t.shape[-1]) for item in embed for t in item.values() if t.shape[-1] == embedding_size]
        return torch.cat(parts, dim=0)
    if embed_key is not None and embed_key in embed:
        return embed[embed_key]
    out = bundled_embed(embed, "bundle_emb.", ".string_to_param.*")
    if out is None:
        out = bundled_embed(embed, "bundle_emb.", f".{embed_key}")
    return out if out is not None else next(iter(embed.values()))


# -- the tokenizer ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _byte_chars() -> dict[int, str]:
    # Every byte as a printable character (GPT-2's table), so BPE never sees whitespace or control bytes.
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    table = {b: chr(b) for b in printable}
    for extra, b in enumerate(b for b in range(256) if b not in table):
        table[b] = chr(256 + extra)
    return table


def _packaged_bpe() -> Path | None:
    spec = importlib.util.find_spec("open_clip")  # found, never imported (importing it pulls torchvision)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / _BPE_FILE).is_file():
            return Path(folder) / _BPE_FILE
    return None


def _split_numbers(piece: str) -> list[str]:
    """An alphanumeric run as CLIP splits it: letter runs whole, every number character on its own."""
    if not piece[0].isalnum():
        return [piece]
    out: list[str] = []
    for char in piece:
        if unicodedata.category(char)[0] == "N" or not out or unicodedata.category(out[-1][-1])[0] == "N":
            out.append(char)
        else:
            out[-1] += char
    return out


class CLIPTokenizer:
    """CLIP's byte-level BPE, with the part of ``transformers.CLIPTokenizer``'s interface ComfyUI uses:
    ``from_pretrained(folder)``, ``tokenizer(text)["input_ids"]`` (start + ids + end) and ``get_vocab()``."""

    # CLIP's pre-tokenizer splits letter runs, single numbers and runs of anything else; in stdlib ``re`` terms
    # an alphanumeric run is cut into its letter runs and single number characters afterwards (\p{N}: categories N*).
    _pattern = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W_]+|(?:[^\s\w]|_)+")

    def __init__(self, vocab: Mapping[str, int], merges: list[tuple[str, str]]) -> None:
        self.vocab = dict(vocab)
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.start_token = self.vocab["<|startoftext|>"]
        self.end_token = self.vocab["<|endoftext|>"]
        self._cache: dict[str, list[str]] = {}

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str] | None = None, **_: Any) -> CLIPTokenizer:
        """From a folder with ``vocab.json`` and ``merges.txt``, or a ``bpe_simple_vocab_16e6.txt(.gz)`` file
        (open-clip-torch's, the default)."""
        folder = Path(path) if path is not None else None
        if folder is not None and folder.is_dir() and (folder / "vocab.json").is_file():
            vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
            lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()[1:]
            return cls(vocab, [tuple(line.split()) for line in lines if line.strip()])
        file = folder if folder is not None and folder.is_file() else _packaged_bpe()
        if file is None:
            raise FileNotFoundError(f"CLIP tokenizer files not found ({path or 'no path given'}): give a folder "
                                    f"with vocab.json and merges.txt, or install open-clip-torch (--no-deps), which "
                                    f"ships {_BPE_FILE}")
        raw = gzip.open(file).read() if file.suffix == ".gz" else file.read_bytes()
        merges = [tuple(line.split()) for line in raw.decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]]
        base = list(_byte_chars().values())
        tokens = base + [c + "</w>" for c in base] + ["".join(m) for m in merges]
        tokens += ["<|startoftext|>", "<|endoftext|>"]
        return cls({t: i for i, t in enumerate(tokens)}, merges)

    def get_vocab(self) -> dict[str, int]:
        return dict(self.vocab)

    def _bpe(self, piece: str) -> list[str]:
        if piece in self._cache:
            return self._cache[piece]
        word = [*piece[:-1], piece[-1] + "</w>"]
        while len(word) > 1:
            pair = min(zip(word, word[1:], strict=False), key=lambda p: self.ranks.get(p, len(self.ranks)))
            if pair not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == pair:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        self._cache[piece] = word
        return word

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` (HTML unescaped, whitespace collapsed, lower case), without start and end tokens."""
        text = " ".join(html.unescape(html.unescape(text)).split()).lower()
        chars = _byte_chars()
        ids = []
        for match in self._pattern.findall(text):
            for piece in _split_numbers(match):
                ids += [self.vocab[t] for t in self._bpe("".join(chars[b] for b in piece.encode("utf-8")))]
        return ids

    def __call__(self, text: str) -> dict[str, list[int]]:
        return {"input_ids": [self.start_token, *self.encode(text), self.end_token]}


class SDTokenizer:
    """ComfyUI's tokenizer of one CLIP: ``tokenize_with_weights(text)`` -> windows of ``(token, weight)`` (with
    ``return_word_ids``: ``(token, weight, word id)``), ``max_length`` long, start/end tokens around each.

    A token is an id, or an embedding vector where the prompt says ``embedding:name`` (from
    ``embedding_directory``). A word shorter than 8 tokens that does not fit the window starts the next one.
    """

    def __init__(self, tokenizer_path: str | None = None, max_length: int = 77, pad_with_end: bool = True,
                 embedding_directory: Any = None, embedding_size: int = 768, embedding_key: str = "clip_l",
                 tokenizer_class: Any = CLIPTokenizer, has_start_token: bool = True, has_end_token: bool = True,
                 pad_to_max_length: bool = True, min_length: int | None = None, pad_token: int | None = None,
                 end_token: int | None = None, min_padding: int | None = None,
                 tokenizer_data: Mapping[str, Any] | None = None, tokenizer_args: Mapping[str, Any] | None = None):
        self.tokenizer = tokenizer_class.from_pretrained(tokenizer_path, **(tokenizer_args or {}))
        self.max_length = max_length
        self.min_length = min_length
        self.min_padding = min_padding
        empty = self.tokenizer("")["input_ids"]
        self.tokenizer_adds_end_token = has_end_token
        self.tokens_start = 1 if has_start_token else 0
        self.start_token = empty[0] if has_start_token else None
        if end_token is not None:
            self.end_token = end_token
        elif has_end_token or not has_start_token:
            self.end_token = empty[self.tokens_start]
        else:
            self.end_token = None
        self.pad_token = pad_token if pad_token is not None else (self.end_token if pad_with_end else 0)
        self.pad_with_end = pad_with_end
        self.pad_to_max_length = pad_to_max_length
        self.inv_vocab = {v: k for k, v in self.tokenizer.get_vocab().items()}
        self.embedding_directory = embedding_directory
        self.max_word_length = 8
        self.embedding_identifier = "embedding:"
        self.embedding_size = embedding_size
        self.embedding_key = embedding_key

    def _try_get_embedding(self, embedding_name: str) -> tuple[torch.Tensor | None, str]:
        """The embedding a word names and the text left after its name (``embedding:name,`` leaves ``,``)."""
        name, *rest = embedding_name.split()
        leftover = " ".join(rest)
        embed = load_embed(name, self.embedding_directory, self.embedding_size, self.embedding_key)
        if embed is None and name.strip(",") != name:
            stripped = name.strip(",")
            embed = load_embed(stripped, self.embedding_directory, self.embedding_size, self.embedding_key)
            return embed, f"{name[len(stripped):]} {leftover}"
        return embed, leftover

    def _words(self, text: str) -> list[list[tuple[Any, float]]]:
        words = []
        for segment, weight in token_weights(escape_important(text), 1.0):
            pieces = re.split(f" {self.embedding_identifier}|\n{self.embedding_identifier}", unescape_important(segment))
            for word in [pieces[0], *(self.embedding_identifier + p for p in pieces[1:])]:
                if not word:
                    continue
                if word.startswith(self.embedding_identifier) and self.embedding_directory is not None:
                    name = word[len(self.embedding_identifier):].strip("\n")
                    embed, leftover = self._try_get_embedding(name)
                    if embed is None:
                        log.warning("embedding:%s does not exist, ignoring it", name)
                    else:
                        rows = [embed] if embed.ndim == 1 else list(embed)
                        words.append([(row, weight) for row in rows])
                    if not leftover:
                        continue
                    word = leftover
                ids = self.tokenizer(word)["input_ids"]
                ids = ids[self.tokens_start:-1] if self.tokenizer_adds_end_token else ids[self.tokens_start:]
                words.append([(t, weight) for t in ids])
        return words

    def tokenize_with_weights(self, text: str, return_word_ids: bool = False, **_: Any) -> list[list[tuple]]:
        has_end = 1 if self.end_token is not None else 0
        start = [(self.start_token, 1.0, 0)] if self.start_token is not None else []
        batches: list[list[tuple]] = [list(start)]
        batch = batches[0]
        for index, word in enumerate(self._words(text)):
            large = len(word) >= self.max_word_length
            while word:
                room = self.max_length - len(batch) - has_end
                if len(word) <= room:
                    batch.extend((t, w, index + 1) for t, w in word)
                    break
                if large:  # a long word is cut at the window's end
                    batch.extend((t, w, index + 1) for t, w in word[:room])
                    word = word[room:]
                    if has_end:
                        batch.append((self.end_token, 1.0, 0))
                else:  # a short one moves to the next window whole
                    if has_end:
                        batch.append((self.end_token, 1.0, 0))
                    if self.pad_to_max_length:
                        batch.extend([(self.pad_token, 1.0, 0)] * room)
                batch = list(start)
                batches.append(batch)
        if has_end:
            batch.append((self.end_token, 1.0, 0))
        if self.min_padding is not None:
            batch.extend([(self.pad_token, 1.0, 0)] * self.min_padding)
        if self.pad_to_max_length and len(batch) < self.max_length:
            batch.extend([(self.pad_token, 1.0, 0)] * (self.max_length - len(batch)))
        if self.min_length is not None and len(batch) < self.min_length:
            batch.extend([(self.pad_token, 1.0, 0)] * (self.min_length - len(batch)))
        if not return_word_ids:
            return [[(t, w) for t, w, _ in b] for b in batches]
        return batches

    def untokenize(self, token_weight_pair: list[tuple]) -> list[tuple]:
        return [(pair, self.inv_vocab.get(pair[0])) for pair in token_weight_pair]

    def state_dict(self) -> dict[str, Any]:
        return {}


class SD1Tokenizer:
    """The tokenizers of a model's text encoders by name: ``tokenize_with_weights`` gives ``{"l": windows}``."""

    def __init__(self, embedding_directory: Any = None, tokenizer_data: Mapping[str, Any] | None = None,
                 clip_name: str = "l", tokenizer: Any = SDTokenizer, name: str | None = None) -> None:
        tokenizer_data = tokenizer_data or {}
        self.clip_name = name if name is not None else clip_name
        self.clip = name if name is not None else f"clip_{clip_name}"
        tokenizer = tokenizer_data.get(f"{self.clip}_tokenizer_class", tokenizer)
        setattr(self, self.clip, tokenizer(embedding_directory=embedding_directory, tokenizer_data=tokenizer_data))

    def tokenize_with_weights(self, text: str, return_word_ids: bool = False, **kwargs: Any) -> dict[str, Any]:
        return {self.clip_name: getattr(self, self.clip).tokenize_with_weights(text, return_word_ids, **kwargs)}

    def untokenize(self, token_weight_pair: list[tuple]) -> list[tuple]:
        return getattr(self, self.clip).untokenize(token_weight_pair)

    def state_dict(self) -> dict[str, Any]:
        return getattr(self, self.clip).state_dict()


# -- the text encoders -----------------------------------------------------------------------------------------

def _hearth_clip_view(obj: Any) -> tuple[str, str | None] | None:
    """``(family, encoder name)`` of Hearth's ``clip.cond_stage_model`` view (encoder None) or of one of its
    encoders (``cond_stage_model.clip_l``); None for anything else."""
    if isinstance(obj, torch.nn.Module) or not callable(getattr(obj, "encode_token_weights", None)):
        return None
    family = getattr(obj, "family", None)
    if not isinstance(family, str):
        return None
    encoder = getattr(obj, "encoder_name", None)
    return family, encoder if isinstance(encoder, str) else None


class _TextEncoderMeta(type):
    """``isinstance`` of Hearth's CLIP views (see ``hearth_sd``'s ``SDClip.cond_stage_model``): a ComfyUI class
    answers True for the views of the families it holds in ``_hearth_families`` (the whole text side: SD1ClipModel,
    SDXLClipModel...) or the encoders in ``_hearth_encoders`` (a name, or ``(family, name)``: SDClipModel, SDXLClipG);
    as in ComfyUI, SD2's and the SDXL refiner's are SD1ClipModel subclasses. A pack's own subclass answers only for
    its instances."""

    def __instancecheck__(cls, obj: Any) -> bool:
        if type.__instancecheck__(cls, obj):
            return True
        view = _hearth_clip_view(obj)
        if view is None:
            return False
        family, encoder = view
        if encoder is None:
            return family in cls.__dict__.get("_hearth_families", ())
        encoders = cls.__dict__.get("_hearth_encoders", ())
        return encoder in encoders or (family, encoder) in encoders


class ClipTokenWeightEncoder:
    """``encode_token_weights(windows)`` -> ``(cond, pooled)`` for an encoder offering ``encode(ids) -> (hidden,
    pooled)`` and ``special_tokens``: a token of weight ``w`` becomes ``z_empty + w * (z - z_empty)``, where
    ``z_empty`` is the empty prompt's state at its position; windows are joined along the tokens; pooled is the
    first window's."""

    special_tokens: Mapping[str, int] = {"start": 49406, "end": 49407, "pad": 49407}

    def encode_token_weights(self, token_weight_pairs: list[list[tuple]]) -> tuple[Any, ...]:
        ids = [[pair[0] for pair in window] for window in token_weight_pairs]
        weighted = any(pair[1] != 1.0 for window in token_weight_pairs for pair in window)
        longest = max((len(window) for window in ids), default=0)
        if weighted or not ids:
            empty = getattr(self, "gen_empty_tokens", None)
            ids.append(empty(self.special_tokens, longest) if empty else gen_empty_tokens(self.special_tokens, longest))
        encoded = self.encode(ids)
        hidden, pooled = encoded[0], encoded[1]
        windows = []
        for k, window in enumerate(token_weight_pairs):
            z = hidden[k:k + 1].clone()
            if weighted:
                weights = torch.tensor([pair[1] for pair in window], dtype=z.dtype, device=z.device)[:, None]
                z[0] = hidden[-1] + (z[0] - hidden[-1]) * weights
            windows.append(z)
        cond = torch.cat(windows, dim=-2) if windows else hidden[-1:]
        result: tuple[Any, ...] = (cond, None if pooled is None else pooled[0:1])
        if len(encoded) > 2:
            extra = dict(encoded[2])
            if "attention_mask" in extra:
                extra["attention_mask"] = extra["attention_mask"][:len(windows)].flatten().unsqueeze(0)
            result += (extra,)
        return result


def _lacks_text_model(cls: type) -> Exception:
    from hearth_comfy_compat.comfy_sd import lacking

    # Named as ComfyUI names it: the first class of ours in the MRO (a pack's subclass is not ComfyUI's).
    prefix = "hearth_comfy_compat.comfyui."
    ours = next((c for c in cls.__mro__ if c.__module__.startswith(prefix)), cls)
    return lacking(f"{ours.__module__.removeprefix(prefix)}.{ours.__qualname__}()",
                   "ComfyUI's own CLIP text transformer (comfy.clip_model) is not in Hearth; its text encoders come "
                   "from files through its SD plugin (comfy.sd.load_clip, comfy.sd.load_checkpoint_guess_config)")


class SDClipModel(torch.nn.Module, ClipTokenWeightEncoder, metaclass=_TextEncoderMeta):
    """ComfyUI's CLIP text encoder module (a ``comfy.clip_model.CLIPTextModel`` inside); see the module docstring.
    Any encoder view of Hearth's CLIP values is an instance (``isinstance(clip.cond_stage_model.clip_l, ...)``)."""

    _hearth_encoders = frozenset({"l", "g", "h"})

    LAYERS = ["last", "pooled", "hidden", "all"]

    def __init__(self, device: Any = "cpu", max_length: int = 77, freeze: bool = True, layer: str = "last",
                 layer_idx: int | None = None, textmodel_json_config: Any = None, dtype: Any = None,
                 model_class: Any = None, special_tokens: Mapping[str, int] | None = None,
                 layer_norm_hidden_state: bool = True, enable_attention_masks: bool = False,
                 zero_out_masked: bool = False, return_projected_pooled: bool = True,
                 return_attention_masks: bool = False, model_options: Mapping[str, Any] | None = None) -> None:
        raise _lacks_text_model(type(self))


class SD1CheckpointClipModel(SDClipModel):
    _hearth_encoders = frozenset({("sd1", "l")})

    def __init__(self, device: Any = "cpu", dtype: Any = None, model_options: Mapping[str, Any] | None = None):
        super().__init__(device=device, return_projected_pooled=False, dtype=dtype, model_options=model_options)


class SD1ClipModel(torch.nn.Module, metaclass=_TextEncoderMeta):
    """A model's text encoders by name (``clip_l``); ``encode_token_weights({"l": windows})``. The
    ``cond_stage_model`` of Hearth's SD1 CLIP is an instance, and SD2's and the SDXL refiner's (ComfyUI's classes for
    those subclass this one)."""

    _hearth_families = frozenset({"sd1", "sd2", "sdxl_refiner"})

    def __init__(self, device: Any = "cpu", dtype: Any = None, model_options: Mapping[str, Any] | None = None,
                 clip_name: str = "l", clip_model: Any = SD1CheckpointClipModel, name: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__()
        model_options = model_options or {}
        self.clip_name = name if name is not None else clip_name
        self.clip = name if name is not None else f"clip_{clip_name}"
        clip_model = model_options.get(f"{self.clip}_class", clip_model)
        setattr(self, self.clip, clip_model(device=device, dtype=dtype, model_options=model_options, **kwargs))
        self.dtypes = {dtype} if dtype is not None else set()

    def set_clip_options(self, options: Mapping[str, Any]) -> None:
        getattr(self, self.clip).set_clip_options(options)

    def reset_clip_options(self) -> None:
        getattr(self, self.clip).reset_clip_options()

    def encode_token_weights(self, token_weight_pairs: Mapping[str, Any]) -> tuple[Any, ...]:
        return getattr(self, self.clip).encode_token_weights(token_weight_pairs[self.clip_name])

    def load_sd(self, sd: Mapping[str, Any]) -> Any:
        return getattr(self, self.clip).load_sd(sd)
