"""The user's trust configuration: the packs they trust, the packs allowed the network, and whether a registry's
publisher trust counts; and the :class:`~hearth.core.trust.TrustPolicy` a command runs under.

The file is ``trust.toml`` beside the index configuration (``$COMFY_CONFIG``'s folder, else
``$XDG_CONFIG_HOME/hearth``, else ``~/.config/hearth``)::

    publishers = false          # true: packs whose publisher their registry marks trusted run in-process
    trusted = ["my-pack"]       # run in-process under --isolation untrusted
    network = ["api-nodes"]     # their pack host may use the network

Names are stored canonical (lower-case, ``-`` for ``_`` and ``.``). Changes are written atomically under a lock,
so two ``comfy trust`` commands at once both land.

Publisher trust is a registry's fact at install time: ``comfy install`` records, for each pack from a Hearth
registry, its publisher and whether the registry's admins mark that publisher trusted (:func:`record_publishers`,
into the generation's ``generation.json``). A command reads those records from the environments its custom-node
folders belong to; only where the user opted in (``publishers = true``) do they make a pack run in-process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hearth.core.trust import ENV_ISOLATION, TrustModeError, TrustPolicy, canonical_pack_name, check_mode
from hearth.registry.config import ConfigError, config_path

TRUST_FILE = "trust.toml"
DEFAULT_MODE = "untrusted"  # the CLI's default isolation mode


class TrustConfigError(ConfigError):
    """The trust file or an isolation setting is unusable; the message names the file or the setting."""


@dataclass
class TrustConfig:
    """The user's trust choices, as stored in :data:`TRUST_FILE`."""

    path: Path
    trusted: set[str] = field(default_factory=set)
    network: set[str] = field(default_factory=set)
    publishers: bool = False

    def trust(self, pack: str, *, network: bool = False) -> None:
        """Trust ``pack`` to run in-process; with ``network``, only allow its pack host the network instead."""
        (self.network if network else self.trusted).add(canonical_pack_name(pack))

    def untrust(self, pack: str, *, network_only: bool = False) -> bool:
        """Take back trust (and the network) from ``pack``; whether anything was there to take back."""
        name = canonical_pack_name(pack)
        had = name in self.network or (not network_only and name in self.trusted)
        self.network.discard(name)
        if not network_only:
            self.trusted.discard(name)
        return had


def trust_path(env: Mapping[str, str] | None = None) -> Path:
    """``trust.toml`` in the folder of the index configuration (:func:`hearth.registry.config.config_path`)."""
    return config_path(env).parent / TRUST_FILE


def _names(path: Path, data: dict, key: str) -> set[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise TrustConfigError(f"{path}: {key} must be a list of pack names, for example {key} = [\"my-pack\"]; "
                               f"fix it or remove the file (comfy trust writes it again)")
    return {canonical_pack_name(v) for v in value}


def load_trust(path: Path | None = None) -> TrustConfig:
    """The trust file at ``path`` (default :func:`trust_path`); a missing file trusts nothing."""
    path = path or trust_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return TrustConfig(path)
    except OSError as exc:
        raise TrustConfigError(f"{path}: cannot read the trust file: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TrustConfigError(f"{path}: not valid TOML ({exc}); fix it or remove the file") from None
    unknown = sorted(set(data) - {"trusted", "network", "publishers"})
    if unknown:
        raise TrustConfigError(f"{path}: unknown setting {', '.join(unknown)}; the trust file holds trusted, "
                               f"network and publishers")
    publishers = data.get("publishers", False)
    if not isinstance(publishers, bool):
        raise TrustConfigError(f"{path}: publishers must be true or false (comfy trust --publishers on|off)")
    return TrustConfig(path, _names(path, data, "trusted"), _names(path, data, "network"), publishers)


def save_trust(config: TrustConfig) -> None:
    """Write the trust file atomically (a reader sees the old file or the new one, never half of one)."""
    lines = ["# Hearth trust: which packs run in Hearth's own process. Written by `comfy trust`; edit with care.",
             "# publishers: also trust packs whose publisher their registry marks trusted (at install time).",
             f"publishers = {'true' if config.publishers else 'false'}",
             # JSON strings are valid TOML basic strings, so no TOML writer is needed.
             f"trusted = {json.dumps(sorted(config.trusted))}",
             f"network = {json.dumps(sorted(config.network))}", ""]
    config.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = config.path.with_name(f"{config.path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text("\n".join(lines), encoding="utf-8")
        os.replace(tmp, config.path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def editing_trust(path: Path | None = None) -> Iterator[TrustConfig]:
    """Read, change and write the trust file under an exclusive lock (two commands at once both land)."""
    path = path or trust_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        config = load_trust(path)
        yield config
        save_trust(config)


# -- the policy a command runs under --------------------------------------------------------------------------

def isolation_mode(flag: str | None, env: Mapping[str, str] | None = None) -> str:
    """``--isolation`` when given, else ``$HEARTH_ISOLATION``, else ``untrusted``; a bad value is named."""
    env = os.environ if env is None else env
    try:
        if flag is not None:
            return check_mode(flag, "--isolation")
        if env.get(ENV_ISOLATION, "").strip():
            return check_mode(env[ENV_ISOLATION], ENV_ISOLATION)
    except TrustModeError as exc:
        raise TrustConfigError(str(exc)) from None
    return DEFAULT_MODE


def publisher_records(generations: Iterable[Path]) -> list[tuple[str, str, str]]:
    """``(pack, publisher, registry)`` for each pack the given generation folders' records say was installed from
    a registry that marked its publisher trusted. A ComfyUI pack is named by its pack id and by its folder."""
    found: list[tuple[str, str, str]] = []
    for gen in generations:
        try:
            data = json.loads((gen / "generation.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not an environment's generation (a plain ./custom_nodes): no install records
        packs = data.get("packs") if isinstance(data, dict) else None
        for name, info in (packs or {}).items():
            if not isinstance(info, dict) or info.get("publisher_trusted") is not True:
                continue
            publisher, registry = str(info.get("publisher") or ""), str(info.get("registry") or "")
            if not publisher or not registry:
                continue
            for pack in dict.fromkeys((name, str(info.get("folder") or ""))):
                if pack:
                    found.append((pack, publisher, registry))
    return found


def policy_for(isolation: str | None = None, *, custom_nodes: Iterable[Path] = (),
               env: Mapping[str, str] | None = None, path: Path | None = None) -> TrustPolicy:
    """The trust policy of a command: its ``--isolation`` (or ``$HEARTH_ISOLATION``), the user's trust file and,
    where the user opted in, the publisher trust recorded by the installs of the environments ``custom_nodes``
    folders belong to (a generation's ``custom_nodes/`` sits beside its ``generation.json``)."""
    mode = isolation_mode(isolation, env)
    config = load_trust(path or trust_path(env))
    publisher_packs: list[tuple[str, str, str]] = []
    if config.publishers:
        publisher_packs = publisher_records(Path(folder).resolve().parent for folder in custom_nodes)
    return TrustPolicy(mode=mode, trusted=frozenset(config.trusted), network=frozenset(config.network),
                       publisher_packs=frozenset(publisher_packs))


# -- install time ---------------------------------------------------------------------------------------------

def record_publishers(packs: dict[str, dict], tokens: Mapping[str, str | None], *, offline: bool = False) -> None:
    """Add ``publisher`` and ``publisher_trusted`` to each registry pack of a generation's packs record.

    Asked of each pack's registry (Hearth's JSON API says ``publisher_trust``). This is a hint for the user's
    opt-in, never a reason for an install to fail: a registry that cannot say leaves the pack untrusted.
    ``tokens``: registry URL -> its token.
    """
    from hearth.registry.client import RegistryClient, RegistryError  # deferred: httpx only when installing

    by_registry: dict[str, list[str]] = {}
    for name, info in packs.items():
        info.setdefault("publisher", "")
        info.setdefault("publisher_trusted", False)
        if info.get("registry") and not offline:
            by_registry.setdefault(info["registry"], []).append(name)
    for url, names in by_registry.items():
        try:
            with RegistryClient(url, tokens.get(url), timeout=10.0) as client:
                for name in names:
                    details = client.pack(name) or {}
                    packs[name]["publisher"] = str(details.get("publisher") or "")
                    packs[name]["publisher_trusted"] = details.get("publisher_trust") == "trusted"
        except RegistryError:
            continue
