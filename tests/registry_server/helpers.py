"""Test helpers: set up accounts directly in the database, publish packs over HTTP, wait for verification."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from pathlib import Path

import httpx
from sqlmodel import Session

from hearth.registry.archive import build_archive
from hearth.registry.manifest import load_manifest
from hearth.registry_server.accounts import services as accounts
from hearth.registry_server.app import open_server
from hearth.registry_server.settings import Settings


def unique(prefix: str = "p") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


class Hub:
    """One running registry plus direct database access for the admin side of a test."""

    def __init__(self, url: str, settings: Settings):
        self.url = url
        self.settings = settings
        self.server = open_server(settings, migrate=False)
        self.http = httpx.Client(base_url=url, timeout=30)

    def session(self) -> Session:
        return Session(self.server.engine, expire_on_commit=False)

    def new_publisher(self, admin: bool = False, trusted: bool = True) -> tuple[str, str]:
        """A fresh user and publisher; returns (publisher id, publish token).

        Trusted by default, as an admin would mark a known publisher, so tests of other things see their clean
        versions go active; the publication-policy tests ask for untrusted publishers.
        """
        user, pub = unique("u"), unique("pub-")
        with self.session() as s:
            accounts.create_user(s, user, is_admin=admin)
            accounts.create_publisher(s, pub, user)
            if trusted:
                accounts.set_trust(s, pub, "trusted", "test")
            secret, _ = accounts.create_token(s, None, pub, "publish")
        return pub, secret

    def token(self, publisher: str | None, scope: str, user: str | None = None, expires_days: float | None = None
              ) -> str:
        with self.session() as s:
            return accounts.create_token(s, user, publisher, scope, expires_days)[0]

    def admin_token(self) -> str:
        name = unique("admin")
        with self.session() as s:
            accounts.create_user(s, name, is_admin=True)
            return accounts.create_token(s, name, None, "admin")[0]

    def reserve(self, publisher: str, token: str | None, pack: str, version: str, **node_version) -> httpx.Response:
        body = {"personal_access_token": token, "node": {"id": pack, "name": pack, "description": "d",
                                                         "license": '{"text": "MIT"}'},
                "node_version": {"version": version, "dependencies": [], **node_version}}
        return self.http.post(f"/publishers/{publisher}/nodes/{pack}/versions", json=body)

    def upload(self, signed_url: str, data: bytes, **headers) -> httpx.Response:
        return httpx.put(signed_url, content=data, headers={"Content-Type": "application/zip", **headers},
                         timeout=30)

    def publish_dir(self, pack_dir: Path, token: str, wait: bool = True) -> dict:
        m = load_manifest(pack_dir)
        arc = build_archive(pack_dir, pack_dir.parent / f"{m.name}-{m.version}.zip")
        r = self.reserve(m.publisher, token, m.name, m.version)
        assert r.status_code == 201, r.text
        up = self.upload(r.json()["signedUrl"], arc.path.read_bytes())
        assert up.status_code == 200, up.text
        return self.wait(m.name, m.version) if wait else up.json()

    def wait(self, pack: str, version: str, timeout: float = 30, headers: dict | None = None) -> dict:
        """Poll until verification has moved the version out of pending; returns its /api/v1 details."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.http.get(f"/api/v1/packs/{pack}/versions/{version}", headers=headers)
            assert r.status_code == 200, r.text
            if r.json()["status"] != "pending" or time.monotonic() > deadline:
                return r.json()
            time.sleep(0.05)

    def close(self) -> None:
        self.http.close()
        self.server.engine.dispose()


def zip_bytes(files: dict[str, bytes | str], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, target)
    return buf.getvalue()
