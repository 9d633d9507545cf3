"""What one ``comfy serve`` process is configured with, and the rules that follow from it (where data lives, tokens)."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from hearth.core.context import Folders

# ComfyUI's default upload limit; it also bounds every request body, so a huge prompt is refused before parsing.
DEFAULT_MAX_UPLOAD_MB = 100.0
# How long a request that needs the plugins (a prompt, /extensions) waits for them to load before a 503: longer
# than twenty real packs take on a slow disk, short enough that a wedged import is reported, not waited on forever.
DEFAULT_LOAD_TIMEOUT_S = 300.0
LOCAL_HOSTNAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only.

    ``0.0.0.0``, ``::`` and ``""`` listen on every interface, so they are not loopback; neither is a name we
    cannot prove local without a DNS lookup.
    """
    host = host.strip().strip("[]")
    if host.lower() in LOCAL_HOSTNAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class ServerConfig:
    """Settings of one server; :func:`hearth.web.app.create_app` takes one of these."""

    host: str = "127.0.0.1"
    port: int = 8188
    data: Path = field(default_factory=lambda: Path(".hearth"))
    folders: Folders | None = None
    cache: str = "classic"
    token: str | None = None
    custom_nodes: list[Path] = field(default_factory=list)
    models_dir: Path | None = None
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    allowed_origins: list[str] = field(default_factory=list)
    allowed_hosts: list[str] = field(default_factory=list)  # Host names accepted without a token, beyond loopback's
    session_days: float = 30.0  # how long a browser stays signed in (token mode)
    serve_frontend: bool = True  # serve the ComfyUI frontend at / when its package is installed
    history_max_items: int = 10000
    load_timeout: float = DEFAULT_LOAD_TIMEOUT_S  # seconds a request waits for the plugins to load

    def __post_init__(self) -> None:
        # Absolute paths: responses name files relative to these, and the process may change directory.
        self.data = Path(self.data).resolve()
        if self.folders is None:
            self.folders = Folders(output=self.data / "output", input=self.data / "input", temp=self.data / "temp")
        self.folders = Folders(self.folders.output.resolve(), self.folders.input.resolve(), self.folders.temp.resolve())
        self.models_dir = Path(self.models_dir or self.data / "models").resolve()

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def database(self) -> Path:
        return self.data / "hearth.sqlite3"

    @property
    def user_dir(self) -> Path:
        """The single user's settings and userdata (workflows, subgraphs): ``<data>/user/default``."""
        return self.data / "user" / "default"

    def require_token(self) -> str | None:
        """The token every request must carry: the one given, or a fresh one when listening beyond loopback."""
        if self.token:
            return self.token
        if not is_loopback(self.host):
            self.token = secrets.token_urlsafe(24)
            return self.token
        return None
