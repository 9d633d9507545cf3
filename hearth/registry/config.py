"""The user's index configuration: which registries packs come from (each an :class:`Index`), in what priority,
and the tokens for them. The file keeps its ``[[registries]]`` tables; only the code calls one entry an index."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

ENV_CONFIG = "COMFY_CONFIG"
ENV_REGISTRY = "COMFY_REGISTRY_URL"


class ConfigError(ValueError):
    """The config file or a registry setting is unusable; the message names the file or the setting."""


@dataclass
class Index:
    """One configured registry as a source of packs: its base URL and, once `comfy login` has run, a token."""

    url: str
    token: str | None = None


@dataclass
class Config:
    """Indexes in priority order: the first that has a pack name is the only one it is ever taken from."""

    path: Path
    indexes: list[Index] = field(default_factory=list)
    layers: str = ""  # own dependency layers: "conflicts" | "always" | "never" (registry/layers.py; "" = default)

    def find(self, url: str) -> Index | None:
        url = normalize_url(url)
        return next((r for r in self.indexes if r.url == url), None)

    def set_token(self, url: str, token: str) -> Index:
        """Store a token; a registry not yet listed is added last, so it never outranks one the user ordered."""
        entry = self.find(url)
        if entry is None:
            entry = Index(normalize_url(url))
            self.indexes.append(entry)
        entry.token = token
        return entry

    def token_for(self, url: str) -> str | None:
        entry = self.find(url)
        return entry.token if entry else None


def normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"registry URL {url!r} must start with http:// or https://")
    return url


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """`$COMFY_CONFIG`, else `$XDG_CONFIG_HOME/hearth/config.toml`, else `~/.config/hearth/config.toml`."""
    env = os.environ if env is None else env
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "hearth" / "config.toml"


def load_config(path: Path | None = None) -> Config:
    """The config at `path` (default: :func:`config_path`); a missing file is an empty config."""
    path = path or config_path()
    if not path.exists():
        return Config(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    entries = data.get("registries", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{path}: registries must be a list of [[registries]] tables")
    indexes = []
    for i, entry in enumerate(entries):
        url, token = entry.get("url"), entry.get("token")
        if not isinstance(url, str) or (token is not None and not isinstance(token, str)):
            raise ConfigError(f"{path}: registries[{i}] needs url = \"https://...\" and an optional string token")
        try:
            indexes.append(Index(normalize_url(url), token))
        except ConfigError as exc:
            raise ConfigError(f"{path}: registries[{i}]: {exc}") from None
    layers = data.get("layers", "")
    if not isinstance(layers, str):
        raise ConfigError(f"{path}: layers must be a string (\"conflicts\", \"always\" or \"never\")")
    return Config(path, indexes, layers)


def save_config(config: Config) -> None:
    """Write the config atomically, readable by the user only: it holds tokens."""
    lines = ["# Hearth registries, highest priority first. Written by `comfy login`; reorder by hand.", ""]
    if config.layers:  # a top-level key: before the first table
        lines[1:1] = [f"layers = {json.dumps(config.layers)}", ""]
    for r in config.indexes:
        # JSON string escapes are valid TOML basic-string escapes, so no TOML writer is needed for these values.
        lines += ["[[registries]]", f"url = {json.dumps(r.url)}"]
        if r.token:
            lines.append(f"token = {json.dumps(r.token)}")
        lines.append("")
    config.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = config.path.with_name(config.path.name + ".tmp")
    # Created 0600 from the start: a token must never sit in a world-readable file, even for a moment.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply when the temporary file was left by an earlier crash
    os.replace(tmp, config.path)


def indexes_in_priority(config: Config, override: str | None = None,
                           env: Mapping[str, str] | None = None) -> list[Index]:
    """The registries a command uses, highest priority first.

    `--registry URL` (``override``), else `COMFY_REGISTRY_URL`, replaces the configured list rather than joining
    it: the user named one registry, and adding others would let them supply packs it was meant to. The token
    stored for that URL still applies.
    """
    env = os.environ if env is None else env
    chosen = override or env.get(ENV_REGISTRY)
    if chosen:
        url = normalize_url(chosen)
        return [Index(url, config.token_for(url))]
    if not config.indexes:
        raise ConfigError(f"no registry configured: pass --registry URL, set {ENV_REGISTRY}, "
                          f"or run `comfy login --registry URL` (config: {config.path})")
    return list(config.indexes)


def primary_index(config: Config, override: str | None = None, env: Mapping[str, str] | None = None) -> Index:
    """The registry that publishing and login talk to: the highest-priority one."""
    return indexes_in_priority(config, override, env)[0]


T = TypeVar("T")


@dataclass(frozen=True)
class PackNotFound:
    """No configured registry has the pack: a value, so callers can list every missing name at once."""

    name: str
    searched: tuple[str, ...]

    @property
    def message(self) -> str:
        return f"pack {self.name!r} not found on {', '.join(self.searched) or 'any registry'}"


def source_for_pack(name: str, indexes: list[Index],
                    lookup: Callable[[Index, str], T | None]) -> tuple[Index, T] | PackNotFound:
    """The first registry, by priority, that has `name`, and what it said about it.

    A name held by a higher-priority registry is never taken from a lower one (no dependency confusion). So an
    error from `lookup` (for example a registry that is offline) propagates rather than falling through: the
    registry that cannot answer might be the one that owns the name.
    """
    for index in indexes:
        found = lookup(index, name)
        if found is not None:
            return index, found
    return PackNotFound(name, tuple(r.url for r in indexes))
