"""Registry server settings: one object built from the CLI or the environment, read by every service."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REVIEW_POLICIES = ("all", "untrusted", "none")


@dataclass
class Settings:
    """Where the registry keeps its data and how it behaves.

    `db_url` defaults to a SQLite file under `data_dir`; `storage_url` to a `files/` folder under it.
    """

    data_dir: Path = field(default_factory=lambda: Path("registry-data"))
    db_url: str | None = None
    storage_url: str | None = None
    private: bool = False
    upstream: str | None = None
    # Public base URL for links we hand out (signed upload URLs, downloads); None = the request's own host.
    public_url: str | None = None
    max_upload_bytes: int = 100 * 1024 * 1024
    upload_url_ttl_s: int = 15 * 60
    # Blobs with no version are removed at start only when older than this, so a blob another server process
    # has just stored (and is about to commit) is never collected.
    gc_grace_s: int = 600
    verify_workers: int = 1
    verify_poll_s: float = 2.0
    # A verifier renews its claim on a version every quarter of this while it works; a claim not renewed for
    # this long belongs to a process that died (kill -9, lost host) and a surviving process takes it over.
    verify_claim_timeout_s: float = 20.0
    # Limits for uploaded archives (zip-bomb and abuse guards).
    max_archive_files: int = 10_000
    max_unpacked_bytes: int = 1024 * 1024 * 1024
    max_compression_ratio: int = 200
    upstream_timeout_s: float = 10.0
    # Seconds a public read response may be served from memory. Writes through this process clear it at once;
    # writes by other processes (CLI admin, other servers) are noticed through the audit log within
    # cache_watch_s, since every change a reader can see is audited.
    cache_ttl_s: float = 60.0
    cache_watch_s: float = 0.5
    # Threads for request handlers (see app.py for why few).
    threads: int = 8
    # Run the sandbox's isolated import (slower, finds node classes by importing in a subprocess).
    isolate_import: bool = True
    # Publication policy: which verified versions wait for a human reviewer before they go active.
    # "untrusted": versions of publishers an admin has not marked trusted; "all": every version; "none": none
    # (a passing scan is enough, as before trust levels existed).
    review: str = "untrusted"

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.review not in REVIEW_POLICIES:
            raise ValueError(f"review policy {self.review!r} is not one of {', '.join(REVIEW_POLICIES)} "
                             "(HEARTH_REGISTRY_REVIEW or --review)")

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{(self.data_dir / 'hearth.registry.db').resolve()}"

    @property
    def storage(self) -> str:
        return self.storage_url or str((self.data_dir / "files").resolve())

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from HEARTH_REGISTRY_* variables (used when uvicorn imports the app factory)."""
        env = os.environ
        s = cls(data_dir=Path(env.get("HEARTH_REGISTRY_DATA", "registry-data")),
                review=env.get("HEARTH_REGISTRY_REVIEW") or "untrusted")
        s.db_url = env.get("HEARTH_REGISTRY_DB") or None
        s.storage_url = env.get("HEARTH_REGISTRY_STORAGE") or None
        s.private = env.get("HEARTH_REGISTRY_PRIVATE", "") in ("1", "true", "yes")
        s.upstream = env.get("HEARTH_REGISTRY_UPSTREAM") or None
        s.public_url = env.get("HEARTH_REGISTRY_PUBLIC_URL") or None
        for name in ("max_upload_bytes", "upload_url_ttl_s", "gc_grace_s", "verify_workers", "threads"):
            if f"HEARTH_REGISTRY_{name.upper()}" in env:
                setattr(s, name, int(env[f"HEARTH_REGISTRY_{name.upper()}"]))
        for name in ("verify_poll_s", "verify_claim_timeout_s", "cache_ttl_s", "cache_watch_s"):
            if f"HEARTH_REGISTRY_{name.upper()}" in env:
                setattr(s, name, float(env[f"HEARTH_REGISTRY_{name.upper()}"]))
        if "HEARTH_REGISTRY_ISOLATE_IMPORT" in env:
            s.isolate_import = env["HEARTH_REGISTRY_ISOLATE_IMPORT"] not in ("0", "false", "no")
        return s

    def to_env(self) -> dict[str, str]:
        """The inverse of from_env, for starting server processes."""
        env = {"HEARTH_REGISTRY_DATA": str(self.data_dir), "HEARTH_REGISTRY_PRIVATE": "1" if self.private else "0",
               "HEARTH_REGISTRY_ISOLATE_IMPORT": "1" if self.isolate_import else "0",
               "HEARTH_REGISTRY_REVIEW": self.review}
        for key, value in (("DB", self.db_url), ("STORAGE", self.storage_url), ("UPSTREAM", self.upstream),
                           ("PUBLIC_URL", self.public_url)):
            if value:
                env[f"HEARTH_REGISTRY_{key}"] = value
        for name in ("max_upload_bytes", "upload_url_ttl_s", "gc_grace_s", "verify_workers", "verify_poll_s",
                     "verify_claim_timeout_s", "cache_ttl_s", "cache_watch_s", "threads"):
            env[f"HEARTH_REGISTRY_{name.upper()}"] = str(getattr(self, name))
        return env
