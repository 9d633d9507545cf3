"""The request boundary: every body, query and path is parsed and bounded here before a route sees it.

Routes never call ``json.loads`` or read raw query strings themselves: they take what this module hands them, so a
value that reaches a handler, the queue or the database is one that can always be encoded back out. The rules:

- JSON is strict: ``NaN``/``Infinity``, floats that overflow (``1e400``) and integers beyond 2**64 (seeds reach
  2**64-1) are refused, as are lone surrogates (``"\\ud800"``) in any key or string and nesting beyond
  :data:`MAX_DEPTH`. Each refusal names the field (``prompt.3.inputs.seed``).
- URLs: the path and query string have length limits (414); a path segment or a query value is valid UTF-8
  without NUL, and a path segment fits a file name (255 bytes).
- What the server writes (history entries built from node outputs) passes :func:`storable`, the same rules applied
  as a repair, so nothing stored can later fail to be read back.

Refusals are :class:`BadRequest` exceptions; the app answers them in ComfyUI's error shape.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

from fastapi import Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

# Deep enough for any workflow the frontend saves (subgraph definitions are flat lists), shallow enough that every
# encoder on the way out (FastAPI's, json's, the WebSocket's) stays far from Python's recursion limit.
MAX_DEPTH = 64
MAX_INT = 2**64  # ComfyUI's INT inputs top out at 0xffffffffffffffff (seeds)
MAX_INT_DIGITS = len(str(MAX_INT)) + 1  # a sign or a leading zero; longer literals are refused before int()
MAX_NUMBER = 2**53  # a prompt's `number`: stored as REAL, so it must be exact as a double
MAX_ID = 256  # prompt_id, client_id, setting ids
MAX_PATH_PARTS = 64  # folders and file name of a user-given relative path
MAX_NAME_BYTES = 255  # one path segment: the file system's limit for a name
MAX_PATH = 8192  # the request path, percent-encoded
MAX_QUERY = 16384  # the query string, percent-encoded
MAX_PAGE = 1_000_000  # max_items, limit, offset: more than history can hold
THREAD_PARSE_BYTES = 256 * 1024  # bodies larger than this are parsed off the event loop


class BadRequest(Exception):
    """A request the boundary (or a route) refuses; the app answers ``status`` in ComfyUI's error shape.

    ``field`` names the part of the request at fault (``number``, ``prompt.3.inputs.seed``, ``query max_items``).
    """

    def __init__(self, kind: str, message: str, details: str = "", *, status: int = 400,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.details, self.status, self.field = kind, message, details, status, field


def api_error(kind: str, message: str, details: str = "", field: str | None = None) -> dict[str, Any]:
    """ComfyUI's error shape, as ``/prompt`` answers it; Hearth uses it for every JSON error."""
    extra = {"field": field} if field else {}
    return {"error": {"type": kind, "message": message, "details": details, "extra_info": extra}, "node_errors": {}}


class SafeJSONResponse(JSONResponse):
    """A JSON response that cannot fail to encode: an error message may quote what the client sent."""

    def render(self, content: Any) -> bytes:
        return json.dumps(storable(content), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def error_response(status: int, kind: str, message: str, details: str = "", field: str | None = None) -> JSONResponse:
    return SafeJSONResponse(api_error(kind, message, details, field), status_code=status)


# -- JSON ------------------------------------------------------------------------------------------------------


class _Refused:
    """A literal the parser met and the walk reports with its field: the parser itself cannot know the field."""

    __slots__ = ("literal", "why")

    def __init__(self, literal: str, why: str) -> None:
        self.literal, self.why = literal, why


def _parse_constant(literal: str) -> _Refused:
    return _Refused(literal, "is not a finite number; JSON allows finite numbers only")


def _parse_float(literal: str) -> float | _Refused:
    value = float(literal)
    if math.isfinite(value):
        return value
    return _Refused(literal[:40], "overflows a double; send a finite number")


TOO_BIG = "is beyond ±2**64, the largest integer an input takes"


def _parse_int(literal: str) -> int | _Refused:
    if len(literal) > MAX_INT_DIGITS:  # before int(): 4,301 digits raise, and a million take seconds
        return _Refused(f"{literal[:20]}... ({len(literal)} digits)", TOO_BIG)
    value = int(literal)
    return value if abs(value) <= MAX_INT else _Refused(literal, TOO_BIG)


def _field(path: tuple[Any, ...]) -> str:
    if len(path) > 12:  # a refusal for depth must not quote 64 levels back
        return ".".join(str(p) for p in path[:6]) + f"...({len(path) - 8} more)..." + \
            ".".join(str(p) for p in path[-2:])
    return ".".join(str(p)[:80] for p in path) or "body"


_SURROGATE = re.compile("[\ud800-\udfff]")


def is_text(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (holds no lone surrogate), as every response and the database need."""
    return not _bad_text(text)


def _bad_text(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_value(value: Any, root: str = "", max_depth: int = MAX_DEPTH) -> None:
    """Refuse what JSON cannot carry back out: non-finite or huge numbers, lone surrogates, deep nesting.

    Iterative, so a hostile depth cannot exhaust the stack here; raises :class:`BadRequest` naming the field.
    A fast pass without paths answers for good values; only a bad one pays for the walk that names the field.
    """
    if _looks_fine(value, max_depth):
        return
    _locate_problem(value, root, max_depth)


def _looks_fine(value: Any, max_depth: int) -> bool:
    level, depth = [value], 0
    while level:
        below: list[Any] = []
        for item in level:
            kind = type(item)
            if kind is str:
                if not item.isascii() and _bad_text(item):
                    return False
            elif kind is dict:
                if depth >= max_depth:
                    return False
                for key in item:
                    if type(key) is not str or (not key.isascii() and _bad_text(key)):
                        return False
                below.extend(item.values())
            elif kind is list:
                if depth >= max_depth:
                    return False
                below.extend(item)
            elif kind is float:
                if item - item != 0.0:  # inf - inf and nan - nan are nan: the cheapest finiteness test
                    return False
            elif kind is int:
                if not -MAX_INT <= item <= MAX_INT:
                    return False
            elif kind is not bool and item is not None:
                return False  # _Refused, or a type JSON does not have: the slow walk says which
        level, depth = below, depth + 1
    return True


def _locate_problem(value: Any, root: str, max_depth: int) -> None:
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, (root,) if root else ())]
    base = len(stack[0][1])
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _bad_text(item):
                raise BadRequest("invalid_request", f"{_field(path)}: text is not valid Unicode (a lone surrogate "
                                 "such as \\ud800); send UTF-8 text", field=_field(path))
        elif isinstance(item, _Refused):
            raise BadRequest("invalid_request", f"{_field(path)}: {item.literal} {item.why}", field=_field(path))
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise BadRequest("invalid_request", f"{_field(path)}: {item} is not a finite number",
                                 field=_field(path))
        elif isinstance(item, int) and not isinstance(item, bool):
            if abs(item) > MAX_INT:
                raise BadRequest("invalid_request", f"{_field(path)}: integer is beyond ±2**64", field=_field(path))
        elif isinstance(item, (dict, list)):
            if len(path) - base >= max_depth:
                raise BadRequest("invalid_request", f"{_field(path)}: nested deeper than {max_depth} levels; "
                                 "flatten the value", field=_field(path))
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str) or _bad_text(key):
                        raise BadRequest("invalid_request", f"{_field(path)}: a key is not valid Unicode text",
                                         field=_field(path))
                    stack.append((child, (*path, key)))
            else:
                stack.extend((child, (*path, i)) for i, child in enumerate(item))


def parse_json(raw: bytes | str, root: str = "", kind: str = "invalid_request", max_depth: int = MAX_DEPTH) -> Any:
    """Strict JSON: what :func:`check_value` accepts, or :class:`BadRequest` naming the line, column or field.

    Good bodies take the C parser alone (a 10,000-node prompt parses twice as fast without per-literal hooks); the
    hooks run only to name what is wrong with a body that fails, and accept exactly the same bodies: an overflowing
    float or a NaN parses to a non-finite float and an oversized integer to an int beyond ``MAX_INT``, which the
    check refuses, and an integer of more than 4,300 digits is a ValueError before any quadratic conversion.
    """
    try:
        value = json.loads(raw)
        check_value(value, root, max_depth)
        return value
    except (ValueError, RecursionError, BadRequest):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        pass  # the careful parse below says what is wrong and where
    try:
        value = json.loads(raw, parse_constant=_parse_constant, parse_float=_parse_float, parse_int=_parse_int)
    except UnicodeDecodeError as exc:
        raise BadRequest(kind, "Request body is not UTF-8 JSON.", str(exc)) from None
    except json.JSONDecodeError as exc:
        raise BadRequest(kind, "Request body is not valid JSON.",
                         f"line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise BadRequest(kind, f"Request body is nested deeper than {max_depth} levels.", field=root or "body") \
            from None
    try:
        check_value(value, root, max_depth)
    except BadRequest as exc:
        exc.kind = kind
        raise
    return value


async def json_body(request: Request, *, kind: str = "invalid_request", default: Any = None) -> Any:
    """The request's JSON body, parsed strictly (see :func:`parse_json`); an empty body is ``default`` or a 400."""
    raw = await request.body()
    if not raw.strip():
        if default is not None:
            return default
        raise BadRequest(kind, "Request body is empty; expected JSON.")
    if len(raw) > THREAD_PARSE_BYTES:  # seconds for the largest bodies: the event loop keeps answering meanwhile
        return await run_in_threadpool(parse_json, raw, kind=kind)
    return parse_json(raw, kind=kind)


def storable(value: Any, max_depth: int = MAX_DEPTH + 8, max_int: int | None = MAX_INT) -> Any:
    """``value`` repaired to pass :func:`check_value`: for what the server writes itself (node outputs, errors).

    Non-finite floats become ``None``, integers beyond ``max_int`` (unless it is None) and unknown objects their
    text, lone surrogates U+FFFD, and anything nested deeper than ``max_depth`` the text ``"..."``. Refusing instead
    would lose a finished prompt.
    """

    def fix(item: Any, depth: int) -> Any:
        if isinstance(item, str):
            return _SURROGATE.sub("\ufffd", item) if _bad_text(item) else item
        if item is None or isinstance(item, bool):
            return item
        if isinstance(item, int):
            return item if max_int is None or abs(item) <= max_int else str(item)
        if isinstance(item, float):
            return item if math.isfinite(item) else None
        if isinstance(item, (dict, list, tuple)):
            if depth >= max_depth:
                return "..."
            if isinstance(item, dict):
                return {fix(str(k), depth): fix(v, depth + 1) for k, v in item.items()}
            return [fix(v, depth + 1) for v in item]
        return fix(str(item), depth)

    return fix(value, 0)


# -- fields of the API -----------------------------------------------------------------------------------------


def identifier(value: Any, name: str, kind: str = "invalid_request") -> str:
    """A prompt_id, client_id or setting id: text (or a whole number) of 1..MAX_ID characters, no control codes."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadRequest(kind, f"{name} must be a string.", field=name)
    text = str(value)
    if not text or len(text) > MAX_ID:
        raise BadRequest(kind, f"{name} must be 1 to {MAX_ID} characters long (got {len(text)}).", field=name)
    if _bad_text(text) or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise BadRequest(kind, f"{name} must be printable Unicode text.", field=name)
    return text


@dataclass
class PromptRequest:
    """``POST /prompt``'s body once the boundary accepted it."""

    prompt: dict[str, Any]
    prompt_id: str | None
    number: float | None
    front: bool
    extra_data: dict[str, Any]
    targets: list[str] | None


def prompt_request(body: Any, *, checked: bool = False) -> PromptRequest:
    """The fields of a ``/prompt`` body, each checked; the body itself already passed :func:`parse_json`.

    ``checked``: the body is exactly what :func:`parse_json` returned (no prompt handler replaced or changed it),
    so its values are not walked again.
    """
    kind = "invalid_prompt"
    if not isinstance(body, dict):
        raise BadRequest(kind, "Request body must be a JSON object with a 'prompt' key.", field="body")
    if body.get("prompt") is None:
        raise BadRequest("no_prompt", "No prompt provided", "No prompt provided", field="prompt")
    # Prompt handlers (plugins) may have rewritten the body: what they return is checked like what the client sent.
    if not checked:
        check_value(body)
    prompt = body["prompt"]
    if not isinstance(prompt, dict):
        raise BadRequest(kind, "Invalid prompt", f"a prompt must be a JSON object of nodes, got "
                         f"{type(prompt).__name__}", field="prompt")
    extra_data = body.get("extra_data") or {}
    if not isinstance(extra_data, dict):
        raise BadRequest(kind, "extra_data must be a JSON object.", field="extra_data")
    extra_data = dict(extra_data)
    if body.get("client_id") is not None:
        extra_data["client_id"] = identifier(body["client_id"], "client_id", kind)
    created = extra_data.get("create_time")
    if created is not None and (isinstance(created, bool) or not isinstance(created, (int, float))):
        raise BadRequest(kind, "extra_data.create_time must be a number (milliseconds since 1970).",
                         field="extra_data.create_time")
    number = body.get("number")
    if number is not None:
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise BadRequest(kind, "number must be a number.", field="number")
        if not math.isfinite(number) or abs(number) > MAX_NUMBER:
            raise BadRequest(kind, f"number must be a finite number within ±2**53 (got {number!r:.40}).",
                             field="number")
    targets = body.get("partial_execution_targets")
    if targets is not None:
        if not isinstance(targets, list) or not all(isinstance(t, (str, int)) and not isinstance(t, bool)
                                                    for t in targets):
            raise BadRequest(kind, "partial_execution_targets must be a list of node ids.",
                             field="partial_execution_targets")
        targets = [str(t) for t in targets]
    prompt_id = body.get("prompt_id")
    return PromptRequest(prompt=prompt, prompt_id=identifier(prompt_id, "prompt_id", kind) if prompt_id else None,
                         number=number, front=bool(body.get("front")), extra_data=extra_data, targets=targets)


def relative_path(value: str, name: str) -> str:
    """A user-given relative file path (a query's ``dir``, ``subfolder``, ``filename``): each name fits the file
    system (255 bytes), no NUL, valid Unicode. Leaving the folder is :func:`hearth.web.security.safe_join`'s check."""
    if _bad_text(value) or "\x00" in value:
        raise BadRequest("invalid_request", f"{name} must be Unicode text without NUL characters.", field=name)
    parts = value.replace("\\", "/").split("/")
    if len(parts) > MAX_PATH_PARTS:  # folders are made one level at a time: a thousand levels exhaust the stack
        raise BadRequest("invalid_request", f"{name}: a path of {len(parts)} parts is deeper than the limit of "
                         f"{MAX_PATH_PARTS}; use fewer folders.", field=name)
    for part in parts:
        size = len(part.encode("utf-8"))
        if size > MAX_NAME_BYTES:
            raise BadRequest("invalid_request", f"{name}: a name of {size} bytes is longer than the file system's "
                             f"limit of {MAX_NAME_BYTES} bytes; use a shorter name.", field=name)
    return value


# Query parameters with a numeric range: declared here so every bound lives at the boundary.
PageSize = Annotated[int | None, Query(ge=0, le=MAX_PAGE)]
HistoryOffset = Annotated[int, Query(ge=-1, le=MAX_PAGE)]
PageOffset = Annotated[int, Query(ge=0, le=MAX_PAGE)]


# -- the URL ---------------------------------------------------------------------------------------------------


def url_problem(raw_path: bytes, query_string: bytes) -> BadRequest | None:
    """What is wrong with a request's URL, before routing: lengths, encoding, NUL, over-long path segments."""
    if len(raw_path) > MAX_PATH:
        return BadRequest("uri_too_long", f"The request path is longer than {MAX_PATH} bytes.", status=414,
                          field="path")
    if len(query_string) > MAX_QUERY:
        return BadRequest("uri_too_long", f"The query string is longer than {MAX_QUERY} bytes.", status=414,
                          field="query")
    for segment in raw_path.split(b"/"):
        decoded = unquote_to_bytes(segment)
        problem = _text_problem(decoded)
        if problem:
            return BadRequest("invalid_request", f"The request path {problem}.", field="path")
        # A file name travels URL-encoded in one segment (/userdata/workflows%2Fa.json): check each name in it.
        for name in decoded.replace(b"\\", b"/").split(b"/"):
            if len(name) > MAX_NAME_BYTES:
                return BadRequest("invalid_request", f"A name in the request path is {len(name)} bytes long; names "
                                  f"are limited to {MAX_NAME_BYTES} bytes (the file system's limit).", field="path")
    for pair in query_string.split(b"&"):
        if not pair:
            continue
        key, _, value = pair.partition(b"=")
        name = _query_text(key)
        for part, what in ((key, "name"), (value, "value")):
            problem = _text_problem(unquote_to_bytes(part.replace(b"+", b" ")))
            if problem:
                return BadRequest("invalid_request", f"Query parameter {name!r}: the {what} {problem}.",
                                  field=f"query {name}")
    return None


def _query_text(raw: bytes) -> str:
    return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8", "replace")[:60]


def _text_problem(data: bytes) -> str | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "is not UTF-8 text"
    if b"\x00" in data:
        return "holds a NUL character"
    return None


class Boundary:
    """ASGI middleware: refuses a request whose URL breaks :func:`url_problem` before any route or file sees it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            raw_path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
            problem = url_problem(raw_path, scope.get("query_string", b""))
            if problem is not None:
                await refuse(scope, receive, send, problem)
                return
        await self.app(scope, receive, send)


async def refuse(scope: dict[str, Any], receive: Any, send: Any, problem: BadRequest) -> None:
    """Answer ``problem`` without the app: an HTTP error in ComfyUI's shape, or a refused WebSocket handshake."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.close", "code": 1008, "reason": problem.message[:120]})
        return
    body = json.dumps(api_error(problem.kind, problem.message, problem.details, problem.field)).encode()
    await send({"type": "http.response.start", "status": problem.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
