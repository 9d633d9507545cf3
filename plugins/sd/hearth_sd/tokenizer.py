"""The CLIP byte-level BPE tokenizer, with the vocabulary read from disk (never the network).

Token ids equal those of OpenAI's / open_clip's ``SimpleTokenizer``: the same text cleaning (minus ftfy's mojibake
repair, see :func:`clean_text`), the same pre-tokenizer pattern, the same 48,894 merges. The merges file is
``bpe_simple_vocab_16e6.txt.gz`` (or a ``merges.txt``) beside the checkpoint, or the copy that the
``open-clip-torch`` package ships, found without importing that package (importing it pulls torchvision).
"""

from __future__ import annotations

import gzip
import html
import html.entities
import importlib.util
import re as std_re
import unicodedata
from functools import lru_cache
from pathlib import Path

import regex

VOCAB_FILENAMES = ("bpe_simple_vocab_16e6.txt.gz", "bpe_simple_vocab_16e6.txt", "merges.txt")
START_OF_TEXT = "<start_of_text>"
END_OF_TEXT = "<end_of_text>"
_MERGES = 49152 - 256 - 2


# --- text cleaning ----------------------------------------------------------------------------------------------
# open_clip runs ftfy.fix_text before tokenizing. These are the parts of it that matter for prompts, written out so
# the tokenizer needs no ftfy: entity decoding, C1 controls, Latin ligatures, full/half-width forms, curly quotes,
# line breaks, terminal escapes, stray control characters, NFC. What is left out is ftfy's mojibake repair
# ("cafÃ©" -> "café"), which is heuristic and rarely wanted in a prompt.


def _entity_table() -> dict[str, str]:
    table = {}
    for name, char in html.entities.html5.items():
        if name.endswith(";"):
            table["&" + name] = char
            # All-caps spellings (&EACUTE;) of lower-case names decode too, where that is unambiguous.
            if name == name.lower() and html.unescape("&" + name.upper()) == "&" + name.upper():
                table["&" + name.upper()] = char.upper()
    return table


_ENTITIES = _entity_table()
_ENTITY_RE = std_re.compile(r"&#?[0-9A-Za-z]{1,24};")
_ANSI_RE = std_re.compile("\033\\[((?:\\d|;)*)([a-zA-Z])")
_SINGLE_QUOTES = std_re.compile("[\u02bc\u2018-\u201b]")
_DOUBLE_QUOTES = std_re.compile("[\u201c-\u201f]")
_C1_RE = std_re.compile("[\x80-\x9f]")
_SURROGATE_PAIR_RE = std_re.compile("[\ud800-\udbff][\udc00-\udfff]")
_SURROGATE_RE = std_re.compile("[\ud800-\udfff]")
_LIGATURES = str.maketrans(
    {
        "Ĳ": "IJ", "ĳ": "ij", "ŉ": "ʼn", "Ǳ": "DZ", "ǲ": "Dz", "ǳ": "dz", "Ǆ": "DŽ", "ǅ": "Dž", "ǆ": "dž",
        "Ǉ": "LJ", "ǈ": "Lj", "ǉ": "lj", "Ǌ": "NJ", "ǋ": "Nj", "ǌ": "nj", "ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl",
        "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "ſt", "ﬆ": "st",
    }
)  # fmt: skip
_WIDTH = str.maketrans(
    {0x3000: " "}
    | {
        i: unicodedata.normalize("NFKC", chr(i))
        for i in range(0xFF01, 0xFFF0)
        if unicodedata.normalize("NFKC", chr(i)) != chr(i)
    }
)
_CONTROL = str.maketrans(
    dict.fromkeys(
        [*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F, *range(0x206A, 0x2070), 0xFEFF, *range(0xFFF9, 0xFFFD)]
    )
)


def _decode_entity(match: std_re.Match[str]) -> str:
    text = match.group(0)
    if text in _ENTITIES:
        return _ENTITIES[text]
    if text.startswith("&#"):
        decoded = html.unescape(text)
        return text if ";" in decoded else decoded
    return text


def _c1_to_cp1252(match: std_re.Match[str]) -> str:
    # Browsers read stray C1 controls as Windows-1252; the five bytes it leaves undefined stay as they are.
    try:
        return match.group(0).encode("latin-1").decode("cp1252")
    except UnicodeDecodeError:
        return match.group(0)


def _fix_segment(text: str, unescape: bool) -> str:
    while True:
        before = text
        if unescape:
            text = _ENTITY_RE.sub(_decode_entity, text)
        text = _C1_RE.sub(_c1_to_cp1252, text)
        text = text.translate(_LIGATURES).translate(_WIDTH)
        text = _SINGLE_QUOTES.sub("'", _DOUBLE_QUOTES.sub('"', text))
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
        text = text.replace("\x85", "\n")
        if _SURROGATE_RE.search(text):
            pair = _SURROGATE_PAIR_RE.sub(
                lambda m: chr(0x10000 + (ord(m[0][0]) - 0xD800) * 0x400 + (ord(m[0][1]) - 0xDC00)), text
            )
            text = _SURROGATE_RE.sub("\ufffd", pair)
        text = _ANSI_RE.sub("", text).translate(_CONTROL)
        text = unicodedata.normalize("NFC", text)
        if text == before:
            return text


def clean_text(text: str) -> str:
    """Normalise a prompt as CLIP's tokenizer expects: fixed Unicode, decoded HTML, single spaces, lower case."""
    parts = []
    unescape = True
    # ftfy works line by line, on "\n" only (str.splitlines would also split on \r, \x0c, \u2028...).
    for line in std_re.findall(r"[^\n]*\n|[^\n]+", text):
        # Entities are left alone from the first line that looks like markup on, as ftfy does.
        unescape = unescape and "<" not in line
        parts.append(_fix_segment(line, unescape))
    text = html.unescape(html.unescape("".join(parts))).strip()
    return " ".join(text.split()).lower()


# --- byte-level BPE ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _byte_to_unicode() -> dict[int, str]:
    """Every byte as a printable character, so BPE works on text without whitespace or control bytes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def find_vocab(near: str | Path | None = None) -> Path:
    """The BPE merges file: beside ``near`` (a checkpoint file or folder) if there is one, else open-clip-torch's.

    :raises FileNotFoundError: naming the places looked in and how to provide the file.
    """
    looked = []
    if near is not None:
        folder = Path(near) if Path(near).is_dir() else Path(near).parent
        for name in VOCAB_FILENAMES:
            candidate = folder / name
            looked.append(str(candidate))
            if candidate.is_file():
                return candidate
    spec = importlib.util.find_spec("open_clip")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / VOCAB_FILENAMES[0]
            looked.append(str(candidate))
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(
        "CLIP tokenizer vocabulary not found (looked in: "
        + (", ".join(looked) or "nothing: open-clip-torch is not installed")
        + "). Put bpe_simple_vocab_16e6.txt.gz beside the checkpoint, or install it with "
        "`pip install --no-deps open-clip-torch`."
    )


class CLIPTokenizer:
    """Text to CLIP token ids (``encode``), without start/end tokens or padding: chunking is the caller's."""

    def __init__(self, vocab_path: str | Path | None = None):
        path = Path(vocab_path) if vocab_path is not None else find_vocab()
        raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
        lines = raw.decode("utf-8").split("\n")
        # The first line is a version header; the file may hold more merges than CLIP was trained with.
        merges = [tuple(line.split()) for line in lines[1 : _MERGES + 1]]
        if len(merges) != _MERGES or any(len(m) != 2 for m in merges):
            raise ValueError(f"{path} is not a CLIP BPE merges file ({_MERGES} merges after a header line)")
        self.byte_encoder = _byte_to_unicode()
        base = list(self.byte_encoder.values())
        vocab = base + [c + "</w>" for c in base] + ["".join(m) for m in merges] + [START_OF_TEXT, END_OF_TEXT]
        self.encoder = {token: i for i, token in enumerate(vocab)}
        self.decoder = {i: token for token, i in self.encoder.items()}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.start_token = self.encoder[START_OF_TEXT]
        self.end_token = self.encoder[END_OF_TEXT]
        self.vocab_size = len(vocab)
        self._cache: dict[str, list[str]] = {START_OF_TEXT: [START_OF_TEXT], END_OF_TEXT: [END_OF_TEXT]}
        self._pattern = regex.compile(
            rf"{START_OF_TEXT}|{END_OF_TEXT}|'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}]+|[\p{{N}}]|[^\s\p{{L}}\p{{N}}]+",
            regex.IGNORECASE,
        )

    def _bpe(self, token: str) -> list[str]:
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        word = [*token[:-1], token[-1] + "</w>"]
        while len(word) > 1:
            # Merge the best-ranked adjacent pair everywhere it occurs, left to right, until no pair is known.
            best = min(zip(word, word[1:], strict=False), key=lambda pair: self.ranks.get(pair, _MERGES))
            if best not in self.ranks:
                break
            first, second = best
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        self._cache[token] = word
        return word

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` after :func:`clean_text`, with no start/end token."""
        ids = []
        for piece in self._pattern.findall(clean_text(text)):
            mapped = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(mapped))
        return ids

    def decode(self, ids: list[int]) -> str:
        """Text for token ids (lossy: cleaning and case are not undone); end-of-word marks become spaces."""
        byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        data = bytearray()
        for i in ids:
            token = self.decoder[i]
            word_end = token.endswith("</w>")
            data.extend(byte_decoder[c] for c in token.removesuffix("</w>"))
            if word_end:
                data.append(32)
        return data.decode("utf-8", errors="replace")


@lru_cache(maxsize=4)
def get_tokenizer(vocab_path: str | None = None) -> CLIPTokenizer:
    """A shared tokenizer per vocabulary file (building one reads and indexes 49k merges)."""
    return CLIPTokenizer(vocab_path)
