"""Hostile requests for ``comfy serve``, generated from a seed: the source of tests/web/test_fuzz.py and bench/fuzz.py.

Every route family gets values a careless or malicious client sends: NaN and ±Infinity, integers of 4,301+ digits,
nesting hundreds deep, lone surrogates (as JSON escapes and as bytes that are not UTF-8), names over 255 bytes,
path tricks, wrong types, bodies over the limit, broken multipart and decompression-bomb images. The same seed
gives the same requests, so a failure is reproduced by its seed alone.

The prompts it builds use only cheap nodes (primitives, string nodes, the test pack's slow node pinned to zero
seconds), so an accepted hostile prompt runs in milliseconds: the fuzz measures the server, not the nodes.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import random
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

FAMILIES = ("prompt", "queue", "history", "jobs", "view", "upload", "userdata", "settings", "object_info",
            "interrupt", "free", "ws", "misc")


@dataclass(frozen=True)
class Raw:
    """JSON text emitted as it is: what ``json.dumps`` will not write (``NaN``, ``"\\ud800"``, 5,000 brackets)."""

    text: str


@dataclass
class HostileRequest:
    """One request: ``path`` is already percent-encoded (and may hold bytes that are not UTF-8 on purpose)."""

    family: str
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    ws_messages: list[str | bytes] = field(default_factory=list)  # for family "ws": sent after the handshake

    def label(self) -> str:
        size = f" body={len(self.body)}B" if self.body is not None else ""
        return f"{self.method} {self.path[:160]}{size}"


def dumps(value: Any) -> str:
    """JSON text of ``value``, with :class:`Raw` parts written verbatim."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{k.text if isinstance(k, Raw) else json.dumps(str(k))}:{dumps(v)}"
                              for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


@functools.cache
def png(size: tuple[int, int] = (4, 4), mode: str = "RGB") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims ``width`` x ``height`` (CRC fixed, so decoders believe it)."""
    data = bytearray(png((1, 1), "L"))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


# -- pools of hostile values -----------------------------------------------------------------------------------

DEEP = [Raw("[" * n + "]" * n) for n in (64, 65, 300, 950, 5000)] + [Raw('{"a":' * 300 + "1" + "}" * 300)]
NUMBERS = [Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e400"), Raw("-1e400"), Raw("9" * 4301),
           Raw("9" * 20000), Raw(str(2**64)), Raw(str(2**64 + 1)), Raw("-" + str(2**63)), Raw("100000000000000000000"),
           Raw("1" + "0" * 400), Raw("-0"), Raw("1e-400"), Raw("0.1e999999999"), 2**31, -(2**31) - 1, 2**53 + 1,
           0, -1, 1, 1.5, -0.5, 1e308, 5e-324, 4294967296]
TEXTS = [Raw('"\\ud800"'), Raw('"\\udfff tail"'), Raw('"a\\ud83d"'), Raw('"\\u0000"'), "", " ", "a" * 100_000,
         "\x00", "\x7f", "../../etc/passwd", "<script>alert(1)</script>", "\u202egnp.exe", "💥" * 64, "é" * 200,
         "%s%n%x", "{{7*7}}", "'; DROP TABLE history; --", "\r\nX-Injected: 1", "x" * 300]
SHAPES = [None, True, False, [], {}, [1, 2, 3], {"a": 1}, ["1", 0], ["1", 99], ["nope", 0], [["1", 0]],
          {"__proto__": {}}, list(range(5000)), {str(i): i for i in range(3000)}]
VALUES = DEEP + NUMBERS + TEXTS + SHAPES

NAMES = ["", ".", "..", "../x.png", "..\\..\\x.png", "/etc/passwd", "C:\\Windows\\win.ini", "a/../../b",
         "%2e%2e%2fx", "x" * 255, "y" * 256, "é" * 128, "é" * 127 + "e", "a/" * 600 + "z", "a\x00b", "nul",
         ".hidden", "dir/", "//", " ", "\t", "a\nb", "💥.png", "\u202eevil.png", "x.png", "workflows",
         "workflows/a.json", "comfy.settings.json", "?", "#", "%", "%zz", "a;b", "*", "~", "$HOME", "..%2f..%2f",
         "fuzz-file.png", "fuzz-file.png/under", "fuzz-dir", "fuzz-dir/inner.json", "q" * 5000]
# Raw query values: bytes that are not UTF-8, a CESU-encoded surrogate, NUL, odd escapes.
RAW_QUERY = ["%FF", "%ED%A0%80", "%00", "%C0%AF", "%", "%2", "%%", "+", "%2B", "a%FFb", "%E2%80%AE"]

CHEAP_NODES = {
    "PrimitiveString": {"value": "s"},
    "PrimitiveInt": {"value": 1},
    "PrimitiveFloat": {"value": 0.5},
    "PrimitiveBoolean": {"value": True},
    "StringLength": {"string": "abc"},
    "CaseConverter": {"string": "abc", "mode": "UPPERCASE"},
    "StringTrim": {"string": " a ", "mode": "Both"},
    "StringSubstring": {"string": "abcdef", "start": 1, "end": 3},
}
# Inputs a mutation never touches: the slow node's duration, so an accepted prompt cannot hold the queue.
PINNED = {"seconds"}


def base_prompt(rng: random.Random) -> dict[str, Any]:
    """A valid cheap prompt: a few primitives feeding a concatenation, ending in the test pack's slow node."""
    prompt: dict[str, Any] = {}
    for i in range(1, rng.randint(2, 5)):
        kind = rng.choice(list(CHEAP_NODES))
        prompt[str(i)] = {"class_type": kind, "inputs": dict(CHEAP_NODES[kind]), "_meta": {"title": f"n{i}"}}
    n = len(prompt)
    prompt[str(n + 1)] = {"class_type": "StringConcatenate",
                          "inputs": {"string_a": "a", "string_b": "b", "delimiter": "-"}}
    prompt[str(n + 2)] = {"class_type": "HearthTestSlow",
                          "inputs": {"label": [str(n + 1), 0], "seconds": 0.0, "steps": 1}}
    return prompt


def valid_prompt_body(rng: random.Random) -> dict[str, Any]:
    return {"prompt": base_prompt(rng), "client_id": f"fuzz-{rng.randrange(10**6)}"}


# -- the generator ---------------------------------------------------------------------------------------------


class Generator:
    """``Generator(seed).requests(n)``: ``n`` hostile requests, every family in turn and then at random."""

    def __init__(self, seed: int, max_body: int = 2 * 1024 * 1024) -> None:
        self.rng = random.Random(seed)
        self.max_body = max_body

    def requests(self, count: int) -> Iterator[HostileRequest]:
        """The issue's known causes first (every run replays them), then every family, then families at random."""
        known = known_causes(self.max_body)
        makers = [getattr(self, f"_{family}") for family in FAMILIES]
        for i in range(count):
            if i < len(known):
                yield known[i]
                continue
            j = i - len(known)
            maker = makers[j] if j < len(makers) else self.rng.choice(makers)
            request = maker()
            if self.rng.random() < 0.05:
                request.headers.update(self.headers())
            yield request

    def headers(self) -> dict[str, str]:
        """Odd headers a proxy or a browser extension might add (latin-1 text, as HTTP carries)."""
        key, value = self.rng.choice([
            ("origin", "null"), ("origin", "http://evil.example"), ("origin", "http://127.0.0.1:1"),
            ("cookie", "hearth_token=\xff; ;;=; a"), ("authorization", "Bearer " + "x" * 5000),
            ("accept", "*/*;q=NaN"), ("accept-encoding", "gzip;q=1e400"),
            ("x-forwarded-for", ", ".join(["::1"] * 100)),
            ("content-type", "application/json; charset=utf-7"), ("content-type", "multipart/form-data; boundary="),
            ("if-range", "\xff\xfe"), ("range", "bytes=0-1"), ("expect", "100-continue"),
            ("host", "evil.example"), ("x-long", "h" * 60_000),
        ])
        return {key: value}

    # helpers

    def value(self) -> Any:
        return copy.deepcopy(self.rng.choice(VALUES))  # a fresh copy: mutations must not reach the pool

    def name(self) -> str:
        return self.rng.choice(NAMES)

    def prefix(self) -> str:
        return self.rng.choice(("", "/api"))

    def enc(self, text: str, safe: str = "") -> str:
        return quote(text, safe=safe) if self.rng.random() < 0.85 else self.rng.choice(RAW_QUERY)

    def query(self, keys: list[str]) -> str:
        pairs = []
        for key in self.rng.sample(keys, self.rng.randint(1, len(keys))):
            choice = self.rng.random()
            if choice < 0.35:
                number = self.rng.choice(NUMBERS + ["-1", "1e20", "abc", "", "0x10", "１２"])
                value = self.enc(number.text if isinstance(number, Raw) else str(number))
            elif choice < 0.7:
                value = self.enc(self.name())
            else:
                value = self.rng.choice(RAW_QUERY)
            pairs.append(f"{key}={value}")
        if self.rng.random() < 0.1:
            pairs.append(pairs[0])  # a repeated key
        return "?" + "&".join(pairs)

    def json_body(self, base: Any) -> bytes:
        """``base`` with one hostile mutation, or a body that is not JSON at all."""
        roll = self.rng.random()
        if roll < 0.08:
            return self.rng.choice([b"", b"{", b"nul", b"\xff\xfe{}", b'{"a": 1,}', b"[" * 100_000,
                                    b'{"a": "\xed\xa0\x80"}', b"\x00" * 10, "{\"a\": \"\u00e9\"}".encode("latin-1")])
        if roll < 0.16:
            return dumps(self.value()).encode()
        body = json.loads(json.dumps(base))
        for _ in range(self.rng.randint(1, 3)):
            body = self.mutate(body)
        return dumps(body).encode()

    def mutate(self, value: Any, depth: int = 0) -> Any:
        """``value`` with one place (a key, a list item, the value itself) replaced by something hostile."""
        if depth > 6 or not isinstance(value, (dict, list)) or not value or self.rng.random() < 0.15:
            return self.value()
        if isinstance(value, dict):
            keys = [k for k in value if k not in PINNED]
            if not keys:
                return value
            key = self.rng.choice(keys)
            roll = self.rng.random()
            if roll < 0.1:
                value[self.rng.choice([Raw('"\\ud800"'), Raw('"k\\udc00"'), "x" * 300, "", "__class__",
                                       "0" * 50])] = self.value()
            elif roll < 0.15:
                del value[key]
            else:
                value[key] = self.mutate(value[key], depth + 1)
            return value
        index = self.rng.randrange(len(value))
        value[index] = self.mutate(value[index], depth + 1)
        return value

    # families

    def _prompt(self) -> HostileRequest:
        if self.rng.random() < 0.08:
            return HostileRequest("prompt", "GET", self.prefix() + "/prompt" + self.query(["x", "prompt_id"]))
        body = valid_prompt_body(self.rng)
        roll = self.rng.random()
        if roll < 0.1:  # fields of the body itself
            body[self.rng.choice(["prompt_id", "number", "front", "extra_data", "client_id",
                                  "partial_execution_targets"])] = self.value()
            data = dumps(body).encode()
        elif roll < 0.15:  # a big graph, a cycle, or a link to nowhere
            size = self.rng.choice([50, 200, 300])
            graph = {str(i): {"class_type": "StringConcatenate",
                              "inputs": {"string_a": [str(i - 1 if self.rng.random() < 0.9 else size), 0],
                                         "string_b": "b", "delimiter": ""}} for i in range(1, size)}
            graph["0"] = {"class_type": "PrimitiveString", "inputs": {"value": "x"}}
            graph[str(size)] = {"class_type": "HearthTestSlow",
                                "inputs": {"label": [str(size - 1), 0], "seconds": 0.0, "steps": 1}}
            data = dumps({"prompt": graph}).encode()
        elif roll < 0.17:
            data = b'{"prompt": ' + b"x" * (self.max_body + 1024) + b"}"
        else:
            data = self.json_body(body)
        headers = {"content-type": self.rng.choice(["application/json"] * 8 + ["text/plain", "multipart/form-data"])}
        return HostileRequest("prompt", "POST", self.prefix() + "/prompt", data, headers)

    def _queue(self) -> HostileRequest:
        if self.rng.random() < 0.3:
            return HostileRequest("queue", "GET", self.prefix() + "/queue" + self.query(["a"]))
        return HostileRequest("queue", "POST", self.prefix() + "/queue",
                              self.json_body({"delete": ["x"], "clear": False}))

    def _history(self) -> HostileRequest:
        roll = self.rng.random()
        if roll < 0.45:
            return HostileRequest("history", "GET", self.prefix() + "/history" + self.query(["max_items", "offset"]))
        if roll < 0.8:
            return HostileRequest("history", "GET", f"{self.prefix()}/history/{self.enc(self.name())}")
        return HostileRequest("history", "POST", self.prefix() + "/history",
                              self.json_body({"delete": ["nope"], "clear": False}))

    def _jobs(self) -> HostileRequest:
        if self.rng.random() < 0.7:
            return HostileRequest("jobs", "GET", self.prefix() + "/jobs" + self.query(
                ["status", "limit", "offset", "sort_by", "sort_order"]))
        return HostileRequest("jobs", "GET", f"{self.prefix()}/jobs/{self.enc(self.name())}")

    def _view(self) -> HostileRequest:
        keys = ["filename", "subfolder", "type", "preview", "channel"]
        path = self.prefix() + "/view" + self.query(keys)
        if self.rng.random() < 0.5:  # a real file, hostile options
            preview = self.rng.choice(["webp;999", "jpeg;0", "webp;1e9", "png", "jpeg;99999999999999999999",
                                       "webp;50", "jpeg;90", "", "%FF", "gif;-1", "webp;%ED%A0%80",
                                       "webp;" + "9" * 5000])
            channel = self.rng.choice(["a", "rgb", "rgba", "x", "%00"])
            name = self.rng.choice(["fuzz-file.png", "fuzz-bomb.png", "fuzz-cut.png", "fuzz-16bit.png",
                                    "fuzz-upload.png"])  # the last is whatever the uploads stored there
            path = f"{self.prefix()}/view?filename={name}&type=input&preview={preview}&channel={channel}"
        headers = {}
        if self.rng.random() < 0.15:
            headers["range"] = self.rng.choice(["bytes=0-0", "bytes=-1", "bytes=999999999-", "bytes=5-1",
                                                "bytes=" + ",".join(f"{i}-{i}" for i in range(500)), "items=0-1",
                                                "bytes=0-" + "9" * 400])
        return HostileRequest("view", "GET", path, headers=headers)

    def _upload(self) -> HostileRequest:
        route = self.rng.choice(["/upload/image"] * 3 + ["/upload/mask"])
        boundary = "fuzzboundary" + str(self.rng.randrange(10**9))
        roll = self.rng.random()
        if roll < 0.15:  # broken multipart
            body = self.rng.choice([
                b"nonsense", b"", f"--{boundary}\r\n".encode(), f"--{boundary}--\r\n".encode(),
                f"--{boundary}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--{boundary}--\r\n".encode(),
                f"--{boundary}\r\n{'X-A: ' + 'b' * 20000}\r\n\r\nx\r\n--{boundary}--\r\n".encode(),
                b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nx\r\n".encode()
                         for i in range(3000)) + f"--{boundary}--\r\n".encode(),
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n"
                .encode() + png(),  # never closed
            ])
            ctype = self.rng.choice([f"multipart/form-data; boundary={boundary}", "multipart/form-data",
                                     "application/x-www-form-urlencoded", "text/plain",
                                     f"multipart/form-data; boundary={'b' * 300}"])
            return HostileRequest("upload", "POST", self.prefix() + route, body, {"content-type": ctype})
        content = self.rng.choice([png(), png((3, 3), "RGBA"), png((2, 2), "I;16"), png((2, 2), "P"),
                                   bomb_png(50000, 50000), bomb_png(10000, 10000), bomb_png(1, 2**31 - 1),
                                   png()[:40], b"GIF89a" + b"\x00" * 20, b"\x89PNG\r\n\x1a\n", b"",
                                   b"<svg onload=alert(1)>", bytes(self.rng.randrange(256) for _ in range(64))])
        if roll < 0.2:
            content = b"\0" * (self.max_body + 4096)
        fields: list[tuple[str, str | bytes, bytes | None]] = []
        filename: str | bytes = self.rng.choice([self.name(), "fuzz-upload.png", "fuzz-file.png", "fuzz-dir"])
        if self.rng.random() < 0.1:
            filename = self.rng.choice([b"\xff\xfe.png", b"\xed\xa0\x80.png", b'a"b.png', b"a\r\nb.png"])
        if self.rng.random() > 0.05:
            fields.append(("image", filename, content))
        else:
            fields.append(("image", "", None))  # a text field where the file belongs
        for key, pool in (("subfolder", NAMES + ["", "", "fuzz-sub", "fuzz-file.png"]),
                          ("type", ["input", "temp", "output", "", "models", "../input", "x" * 300]),
                          ("overwrite", ["true", "1", "false", "", "yes", "💥"])):
            if self.rng.random() < 0.6:
                fields.append((key, "", str(self.rng.choice(pool)).encode("utf-8", "replace")))
        if route.endswith("mask") or self.rng.random() < 0.1:
            ref = self.rng.choice([{"filename": "fuzz-file.png", "type": "input"},
                                   {"filename": "fuzz-bomb.png", "type": "input"},
                                   {"filename": self.name(), "subfolder": self.name(), "type": "input"},
                                   {"filename": "fuzz-file.png", "type": self.value()}, self.value(), []])
            fields.append(("original_ref", "", dumps(ref).encode()))
        body = b""
        for key, name, data in fields:
            disposition = f'form-data; name="{key}"'.encode()
            if name:
                raw = name if isinstance(name, bytes) else name.encode("utf-8", "replace")
                disposition += b'; filename="' + raw + b'"'
            if data is None:
                data = b"not a file"
            body += f"--{boundary}\r\n".encode() + b"Content-Disposition: " + disposition + b"\r\n"
            if name:
                body += b"Content-Type: image/png\r\n"
            body += b"\r\n" + data + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        return HostileRequest("upload", "POST", self.prefix() + route, body,
                              {"content-type": f"multipart/form-data; boundary={boundary}"})

    def _userdata(self) -> HostileRequest:
        roll = self.rng.random()
        if roll < 0.2:
            return HostileRequest("userdata", "GET", self.prefix() + "/userdata" + self.query(
                ["dir", "recurse", "full_info", "split"]))
        if roll < 0.3:
            return HostileRequest("userdata", "GET", self.prefix() + "/v2/userdata" + self.query(["path"]))
        target = self.enc(self.name(), safe=self.rng.choice(["", "/"]))
        if roll < 0.45:
            dest = self.enc(self.name(), safe=self.rng.choice(["", "/"]))
            return HostileRequest("userdata", "POST", f"{self.prefix()}/userdata/{target}/move/{dest}"
                                  + self.query(["overwrite", "full_info"]))
        method = self.rng.choice(["GET", "POST", "POST", "DELETE"])
        body = None
        if method == "POST":
            body = self.rng.choice([b"{}", b"x" * 1000, dumps(self.value()).encode(), b"\xff\xfe"])
        return HostileRequest("userdata", method, f"{self.prefix()}/userdata/{target}"
                              + (self.query(["overwrite", "full_info"]) if self.rng.random() < 0.3 else ""), body)

    def _settings(self) -> HostileRequest:
        roll = self.rng.random()
        if roll < 0.25:
            return HostileRequest("settings", "GET", self.prefix() + "/settings")
        if roll < 0.5:
            return HostileRequest("settings", "POST", self.prefix() + "/settings",
                                  self.json_body({"Comfy.Fuzz": 1, "Comfy.Other": "x"}))
        setting = self.enc(self.rng.choice(["Comfy.Fuzz", "", "x" * 300, "a/b", "..", "💥"] + NAMES))
        if roll < 0.7:
            return HostileRequest("settings", "GET", f"{self.prefix()}/settings/{setting}")
        return HostileRequest("settings", "POST", f"{self.prefix()}/settings/{setting}",
                              dumps(self.value()).encode() if self.rng.random() < 0.8 else self.json_body({}))

    def _object_info(self) -> HostileRequest:
        if self.rng.random() < 0.1:
            return HostileRequest("object_info", "GET", self.prefix() + "/object_info")
        name = self.rng.choice(["PrimitiveInt", "HearthTestSlow", "Nope", "", "x" * 300] + NAMES)
        return HostileRequest("object_info", "GET", f"{self.prefix()}/object_info/{self.enc(name)}")

    def _interrupt(self) -> HostileRequest:
        return HostileRequest("interrupt", "POST", self.prefix() + "/interrupt", self.json_body({"prompt_id": "x"}))

    def _free(self) -> HostileRequest:
        return HostileRequest("free", "POST", self.prefix() + "/free",
                              self.json_body({"unload_models": False, "free_memory": False}))

    def _ws(self) -> HostileRequest:
        client = self.enc(self.rng.choice(["fuzz", "", "x" * 300, "💥", "a b", "../x"] + NAMES))
        messages: list[str | bytes] = []
        for _ in range(self.rng.randint(0, 3)):
            messages.append(self.rng.choice([
                "not json", "", dumps(self.value()), '{"type": "feature_flags", "data": ' + dumps(self.value()) + "}",
                '{"type": "feature_flags", "data": {"supports_preview_metadata": true}}', "[" * 5000,
                b"\x00\x01binary", b"\xff" * 1000, "x" * 200_000]))
        return HostileRequest("ws", "WS", f"/ws?clientId={client}", ws_messages=messages)

    def _misc(self) -> HostileRequest:
        path, method = self.rng.choice([
            ("/prompt", "PUT"), ("/history", "DELETE"), ("/view", "POST"), ("/nope", "GET"),
            ("/" + "a/" * 2000, "GET"), ("/%2e%2e/%2e%2e/etc/passwd", "GET"), ("/extensions/../../x", "GET"),
            ("/api/" + "x" * 300, "GET"), ("/%FF", "GET"), ("/api/%00", "GET"), ("/embeddings", "GET"),
            ("/models/" + self.enc(self.name()), "GET"), ("/system_stats", "GET"), ("/features", "GET"),
            ("/api/jobs?" + "a=1&" * 5000, "GET"), ("/queue", "PATCH"), ("/hearth/" + self.enc(self.name()), "GET"),
            ("/ws", "GET"), ("/" + self.enc(self.name()), "GET"), ("/templates/" + self.enc(self.name()), "GET"),
        ])
        return HostileRequest("misc", method, path)


def known_causes(max_body: int) -> list[HostileRequest]:
    """Each request issue 24 found a 500 (or a freeze) with, sent first in every run."""

    def post(family: str, path: str, body: Any, raw: bool = False) -> HostileRequest:
        data = body if raw else dumps(body).encode()
        return HostileRequest(family, "POST", path, data, {"content-type": "application/json"})

    def prompt(value: Any = "v", **body: Any) -> HostileRequest:
        graph = {"1": {"class_type": "PrimitiveString", "inputs": {"value": value}},
                 "2": {"class_type": "HearthTestSlow", "inputs": {"label": ["1", 0], "seconds": 0.0, "steps": 1}}}
        return post("prompt", "/prompt", {"prompt": graph, **body})

    surrogate = Raw('"\\ud800"')
    cycle = {str(i): {"class_type": "StringConcatenate",
                      "inputs": {"string_a": [str((i + 1) % 5000), 0], "string_b": "b", "delimiter": ""}}
             for i in range(5000)}
    cycle["out"] = {"class_type": "HearthTestSlow", "inputs": {"label": ["0", 0], "seconds": 0.0, "steps": 1}}
    regex = {"1": {"class_type": "RegexReplace", "inputs": {"string": "a" * 27 + "!", "regex_pattern": "(a+)+$",
                                                            "replace": "", "case_insensitive": False,
                                                            "multiline": False, "dotall": False}},
             "2": {"class_type": "HearthTestSlow", "inputs": {"label": ["1", 0], "seconds": 0.0, "steps": 1}}}
    bomb = bomb_png(50000, 50000)
    boundary = "knownboundary"

    def upload(route: str, name: str, content: bytes, **fields: str) -> HostileRequest:
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
                f"Content-Type: image/png\r\n\r\n").encode() + content + b"\r\n"
        for key, value in fields.items():
            body += f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        body += f"--{boundary}--\r\n".encode()
        return HostileRequest("upload", "POST", route, body,
                              {"content-type": f"multipart/form-data; boundary={boundary}"})

    long = "L" * 300
    return [
        prompt(Raw("NaN")), prompt(Raw("Infinity")), prompt(Raw("-Infinity")), prompt(surrogate),
        prompt(Raw("9" * 4301)), prompt(Raw("1" + "0" * 400)), prompt(Raw("[" * 950 + "]" * 950)),
        post("prompt", "/prompt", {"prompt": {"1": {"class_type": surrogate, "inputs": {}}}}),
        prompt(prompt_id=surrogate), prompt(number=Raw("Infinity")), prompt(number=Raw("100000000000000000000")),
        prompt(number=Raw("NaN")), prompt(extra_data=Raw('{"a":' * 300 + "1" + "}" * 300)),
        prompt(extra_data={"x": surrogate}), prompt(client_id=surrogate),
        post("prompt", "/prompt", {"prompt": {"1": {"class_type": "HearthTestSlow", "_meta": {"title": surrogate},
                                                    "inputs": {"label": "t", "seconds": 0.0, "steps": 1}}}}),
        post("prompt", "/prompt", {"prompt": cycle}), post("prompt", "/prompt", {"prompt": regex}),
        post("settings", "/settings/x", surrogate), HostileRequest("settings", "GET", "/settings"),
        HostileRequest("history", "GET", "/history"), HostileRequest("jobs", "GET", "/jobs"),
        HostileRequest("history", "GET", "/history?max_items=" + "1" + "0" * 20),
        HostileRequest("history", "GET", "/history?offset=" + "1" + "0" * 20),
        HostileRequest("userdata", "GET", f"/userdata/{long}"), post("userdata", f"/userdata/{long}", b"x", True),
        HostileRequest("userdata", "DELETE", f"/userdata/{long}"),
        HostileRequest("userdata", "GET", f"/userdata?dir={long}"),
        HostileRequest("userdata", "GET", f"/v2/userdata?path={long}"),
        post("userdata", f"/userdata/fuzz-file.png/move/{long}", b"", True),
        post("userdata", "/userdata/fuzz-dir", b"x", True),  # onto a folder
        post("userdata", "/userdata/fuzz-file.png%2Funder", b"x", True),  # a file under a file
        post("userdata", "/userdata/fuzz-dir%2Finner.json/move/fuzz-dir", b"", True),  # a move onto a folder
        HostileRequest("view", "GET", f"/view?filename={long}&type=input"),
        HostileRequest("view", "GET", "/view?filename=fuzz-file.png&type=input&preview=webp;999"),
        HostileRequest("view", "GET", "/view?filename=fuzz-file.png&type=input&preview=jpeg;" + "9" * 30),
        upload("/upload/image", long, png()), upload("/upload/image", "x.png", png(), subfolder="fuzz-file.png"),
        upload("/upload/image", "known-bomb.png", bomb),
        HostileRequest("view", "GET", "/view?filename=fuzz-bomb.png&type=input&preview=webp;50"),
        HostileRequest("view", "GET", "/view?filename=fuzz-bomb.png&type=input&channel=a"),
        upload("/upload/mask", "m.png", png((2, 2), "RGBA"),
               original_ref='{"filename": "fuzz-bomb.png", "type": "input"}'),
        HostileRequest("ws", "WS", "/ws?clientId=known", ws_messages=["a" * 17_000_000]),
    ]


def benign(rng: random.Random) -> HostileRequest:
    """An everyday request, for the benchmark's baseline: the reads a browser polls and a small valid prompt."""
    roll = rng.random()
    if roll < 0.01:
        return HostileRequest("prompt", "POST", "/prompt", dumps(valid_prompt_body(rng)).encode(),
                              {"content-type": "application/json"})
    path = rng.choice(["/queue", "/history?max_items=5", "/jobs?limit=5", "/object_info/PrimitiveInt", "/settings",
                       "/view?filename=fuzz-file.png&type=input", "/userdata?dir=fuzz-dir", "/prompt",
                       "/system_stats"])
    return HostileRequest(path.split("?")[0].strip("/").split("/")[0], "GET", path)


def seed_files(data: Any) -> None:
    """Files the requests name: a small image, a stored bomb, a cut-off image, a 16-bit image, a userdata folder.

    ``data`` is the server's data folder (a Path); the bomb stands for a file copied in by hand, never uploaded.
    """
    inputs = data / "input"
    inputs.mkdir(parents=True, exist_ok=True)
    (inputs / "fuzz-file.png").write_bytes(png((8, 8)))
    (inputs / "fuzz-bomb.png").write_bytes(bomb_png(50000, 50000))
    (inputs / "fuzz-cut.png").write_bytes(png((64, 64))[:-30])
    (inputs / "fuzz-16bit.png").write_bytes(png((4, 4), "I;16"))
    (inputs / "fuzz-dir").mkdir(exist_ok=True)
    user = data / "user" / "default"
    (user / "fuzz-dir").mkdir(parents=True, exist_ok=True)
    (user / "fuzz-dir" / "inner.json").write_text("{}")
    (user / "fuzz-file.png").write_bytes(png())


# -- sending ---------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What came back: an HTTP status (a WebSocket's handshake status, 101 when it opened), or a transport error."""

    status: int | None
    seconds: float
    error: str | None = None


def send(http: Any, port: int, request: HostileRequest, timeout: float = 30.0) -> Outcome:
    """Send ``request`` with ``http`` (an ``httpx.Client`` on the server's base URL); WebSockets to ``port``."""
    import time

    import httpx

    started = time.perf_counter()
    if request.family == "ws":
        return _send_ws(port, request, started, timeout)
    try:
        headers = {key: value.encode("latin-1") for key, value in request.headers.items()}  # httpx sends str as ASCII
        response = http.request(request.method, request.path, content=request.body, headers=headers,
                                timeout=timeout)
        return Outcome(response.status_code, time.perf_counter() - started)
    except httpx.TimeoutException as exc:
        return Outcome(None, time.perf_counter() - started, f"timeout: {exc!r}")
    except httpx.TransportError as exc:
        return Outcome(None, time.perf_counter() - started, f"transport: {exc!r}")


def _send_ws(port: int, request: HostileRequest, started: float, timeout: float) -> Outcome:
    import time

    from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
    from websockets.sync.client import connect

    try:
        with connect(f"ws://127.0.0.1:{port}{request.path}", open_timeout=timeout, close_timeout=2,
                     max_size=None) as ws:
            ws.recv(timeout=timeout)  # the status greeting: a socket that opens and says nothing is a failure
            try:
                for message in request.ws_messages:
                    ws.send(message)
            except ConnectionClosed:
                pass  # the server may close a socket that sent garbage; that is an answer
        return Outcome(101, time.perf_counter() - started)
    except InvalidStatus as exc:
        return Outcome(exc.response.status_code, time.perf_counter() - started)
    except TimeoutError as exc:
        return Outcome(None, time.perf_counter() - started, f"timeout: {exc!r}")
    except (WebSocketException, OSError) as exc:
        return Outcome(None, time.perf_counter() - started, f"transport: {exc!r}")
