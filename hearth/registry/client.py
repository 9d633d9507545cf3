"""The one HTTP client for a Hearth (or ComfyUI-compatible) registry: every registry call the CLI makes is here."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import httpx

from hearth.registry.manifest import Manifest


class RegistryError(Exception):
    """A registry call failed; `str()` is one line naming the registry and what it said."""

    def __init__(self, message: str, status: int | None = None, code: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code


class Offline(RegistryError):
    """The registry could not be reached at all (refused, timed out, DNS)."""


class Unauthorized(RegistryError):
    """The registry refused the token (401), or the token may not do this (403)."""


class NotFound(RegistryError):
    """The registry has no such publisher, pack or version."""


def _server_message(response: httpx.Response) -> tuple[str, str]:
    """(code, message) from a Hearth error body, or a ComfyUI-style {"message"}, or the raw text."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "", response.text.strip()[:200] or response.reason_phrase
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("code", "")), str(err.get("message", ""))
        if body.get("message"):
            return "", str(body["message"])
        if body.get("detail"):
            return "", str(body["detail"])
    return "", str(body)[:200]


def _summary_of_comfy_node(node: dict) -> dict:
    """A ComfyUI registry Node in the shape of Hearth's pack summary."""
    latest = node.get("latest_version") or {}
    publisher = node.get("publisher") or {}
    return {"id": node.get("id", ""), "name": node.get("name") or node.get("id", ""),
            "description": node.get("description") or "", "publisher": publisher.get("id") or node.get("author", ""),
            "latest_version": latest.get("version"), "downloads": node.get("downloads") or 0}


class RegistryClient:
    """Calls to one registry; raises :class:`RegistryError` subclasses, never httpx's own exceptions."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None):
        self.url = url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # Requests go to relative paths of this base and redirects are not followed, so a plain-http registry
        # (a loopback or LAN one) never opens TLS: skip loading the CA bundle, a tenth of a second per command.
        verify = not self.url.startswith("http://")
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport,
                                 verify=verify)

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def _request(self, method: str, path_or_url: str, **kwargs) -> httpx.Response:
        try:
            response = self.http.request(method, path_or_url, **kwargs)
        except httpx.TransportError as exc:
            raise Offline(f"registry {self.url} is not reachable ({type(exc).__name__}: {exc or 'no answer'}); "
                          "check the URL and that the server is running") from None
        if response.status_code < 400:
            return response
        code, message = _server_message(response)
        status = response.status_code
        said = f"registry {self.url} answered {status}: {message}"
        if status == 401:
            raise Unauthorized(f"{said} (run `comfy login --registry {self.url}` or pass --token)", status, code)
        if status == 403:
            raise Unauthorized(said, status, code)
        if status == 404:
            raise NotFound(said, status, code)
        raise RegistryError(said, status, code)

    def whoami(self) -> dict:
        """What the client's token is (user, publisher, scope); :class:`Unauthorized` if it is not valid.

        Hearth registries only: the caller treats :class:`NotFound` as "this server cannot check tokens".
        """
        return self._request("GET", "/api/v1/whoami").json()

    def pack(self, name: str) -> dict | None:
        """The pack's details, or None if this registry does not have it (a value: absence is not an error)."""
        try:
            return self._request("GET", f"/api/v1/packs/{name}").json()
        except NotFound:
            return None

    def search(self, query: str, limit: int = 20) -> list[dict]:
        """Packs matching `query`, best first, as {id, name, description, publisher, latest_version, downloads}.

        Hearth's ranked /api/v1/search; a registry without it (ComfyUI's own) is asked through /nodes/search.
        """
        try:
            return list(self._request("GET", "/api/v1/search", params={"q": query, "limit": limit}).json()["results"])
        except NotFound:
            pass
        body = self._request("GET", "/nodes/search", params={"search": query, "limit": limit}).json()
        return [_summary_of_comfy_node(n) for n in body.get("nodes", [])]

    def packs_for_node_class(self, class_name: str) -> list[dict]:
        """The packs whose latest version provides node class `class_name` (empty when none does)."""
        try:
            body = self._request("GET", f"/api/v1/node-classes/{quote(class_name, safe='')}").json()
            return list(body.get("packs", []))
        except NotFound:
            pass  # not a Hearth registry (Hearth answers an unknown class with an empty list): ComfyUI's route
        try:
            node = self._request("GET", f"/comfy-nodes/{quote(class_name, safe='')}/node").json()
        except NotFound:
            return []
        return [_summary_of_comfy_node(node)]

    def pack_details(self, name: str) -> dict | None:
        """:meth:`pack`, or for a registry without Hearth's API (ComfyUI's own) the same shape built from its
        /nodes routes; None when the registry does not have the pack."""
        try:
            return self._request("GET", f"/api/v1/packs/{quote(name, safe='')}").json()
        except NotFound as exc:
            if exc.code == "pack_not_found":
                return None
        try:
            node = self._request("GET", f"/nodes/{quote(name, safe='')}").json()
            versions = self._request("GET", f"/nodes/{quote(name, safe='')}/versions").json()
        except NotFound:
            return None
        summary = _summary_of_comfy_node(node)
        return {**summary, "license": node.get("license") or "", "repository": node.get("repository") or "",
                "versions": [{"version": v.get("version"), "status": v.get("status") or "",
                              "yanked": bool(v.get("yanked")), "uploaded_at": v.get("createdAt"),
                              "dependencies": v.get("dependencies") or [], "download_url": v.get("downloadUrl"),
                              "sha256": v.get("sha256") or "", "node_classes": []} for v in versions]}

    def pack_version(self, name: str, version: str) -> dict | None:
        try:
            return self._request("GET", f"/api/v1/packs/{name}/versions/{version}").json()
        except NotFound:
            return None

    def reserve_version(self, manifest: Manifest, sha256: str, changelog: str = "") -> dict:
        """ComfyUI's publish call: reserves the version and returns {node_version, signedUrl}."""
        node = {
            "id": manifest.name, "name": manifest.display_name or manifest.name,
            "description": manifest.description, "icon": manifest.icon, "banner_url": manifest.banner,
            "repository": manifest.repository, "license": json.dumps({"text": manifest.license}),
            "supported_os": manifest.supported_os, "supported_accelerators": manifest.supported_accelerators,
            "supported_comfyui_version": manifest.requires_comfyui,
        }
        body = {"personal_access_token": self.token, "node": node,
                "node_version": {"version": manifest.version, "dependencies": manifest.dependencies,
                                 "changelog": changelog, "sha256": sha256}}
        return self._request("POST", f"/publishers/{manifest.publisher}/nodes/{manifest.name}/versions",
                             json=body).json()

    def upload(self, signed_url: str, archive: Path, sha256: str,
               progress: Callable[[int], None] | None = None) -> dict:
        """PUT the zip to the signed URL in chunks, reporting each chunk's size to `progress`."""

        def chunks() -> Iterator[bytes]:
            with open(archive, "rb") as f:
                while block := f.read(256 * 1024):
                    if progress:
                        progress(len(block))
                    yield block

        headers = {"Content-Type": "application/zip", "Content-Length": str(archive.stat().st_size),
                   "X-Hearth-Sha256": sha256}
        # Signed URLs may point at another host (S3): no Authorization header goes with them.
        try:
            response = httpx.put(signed_url, content=chunks(), headers=headers, timeout=self.http.timeout)
        except httpx.TransportError as exc:
            raise Offline(f"upload to {signed_url.split('/uploads/')[0]} failed ({type(exc).__name__}: {exc})") from None
        if response.status_code >= 400:
            code, message = _server_message(response)
            raise RegistryError(f"upload of {archive.name} was refused ({response.status_code}): {message}",
                                response.status_code, code)
        try:
            return response.json()
        except json.JSONDecodeError:
            return {}
