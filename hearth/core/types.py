"""Small value types shared by the core, its hooks and plugins."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

ANY = "*"


@dataclass(frozen=True)
class DataType:
    """A type that flows along links (``"IMAGE"``, ``"LATENT"``), and the other types it accepts."""

    name: str
    description: str = ""
    accepts: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(self, "accepts", frozenset(self.accepts))


@dataclass(frozen=True)
class Route:
    """An HTTP route a plugin adds to ``comfy serve``; ``handler(request) -> response`` is async."""

    method: str
    path: str
    handler: Callable[..., Awaitable[Any]]


class ExecutionBlocker:
    """An output value that stops every node downstream of it from executing.

    A node that receives a blocker as an input does not run; its outputs become the same blocker. With a
    ``message``, an output node reached by the blocker reports that message as an error; with ``None`` the branch
    is skipped silently (ComfyUI's semantics).
    """

    __slots__ = ("message",)

    def __init__(self, message: str | None = None) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"ExecutionBlocker({self.message!r})"
