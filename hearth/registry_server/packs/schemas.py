"""Response shapes: ComfyUI registry's Node / NodeVersion dicts, and Hearth's /api/v1 models."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from hearth.registry_server.packs.models import Finding, NodeClass, Pack, Version


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat().replace("+00:00", "Z") if dt else None


def download_url(base: str, version: Version, pack_id: str) -> str:
    return f"{base}/files/{version.sha256}/{pack_id}-{version.version}.zip"


def comfy_version(version: Version, pack: Pack, base: str) -> dict:
    """A NodeVersion as ComfyUI's registry returns it (comfy-cli reads id, version, downloadUrl, ...)."""
    return {
        "id": version.id,
        "node_id": pack.id,
        "version": version.version,
        "changelog": version.changelog,
        "dependencies": version.dependencies,
        "deprecated": version.deprecated,
        "createdAt": _iso(version.uploaded_at),
        "status": version.status,
        "status_reason": version.status_reason,
        "downloadUrl": download_url(base, version, pack.id),
        "sha256": version.sha256,  # not in ComfyUI's schema; lets mirrors and careful clients check the download
        "supported_os": version.supported_os,
        "supported_accelerators": version.supported_accelerators,
        "supported_comfyui_version": version.supported_comfyui_version or version.requires_comfyui,
        "supported_comfyui_frontend_version": version.supported_comfyui_frontend_version,
        "yanked": version.yanked,
    }


def comfy_node(pack: Pack, latest: Version | None, base: str, publisher_name: str = "") -> dict:
    out = {
        "id": pack.id,
        "name": pack.name or pack.id,
        "description": pack.description,
        "author": publisher_name or pack.publisher_id,
        "license": pack.license,
        "icon": pack.icon,
        "banner_url": pack.banner_url,
        "repository": pack.repository,
        "tags": [],
        "downloads": pack.downloads,
        "status": "NodeStatusBanned" if pack.banned else "NodeStatusActive",
        "publisher": {"id": pack.publisher_id, "name": publisher_name or pack.publisher_id},
    }
    if latest is not None:  # comfy-cli reads latest_version only when the key is present
        out["latest_version"] = comfy_version(latest, pack, base)
    return out


class FindingOut(BaseModel):
    rule: str
    severity: str
    path: str
    line: int | None
    snippet: str
    message: str

    @classmethod
    def of(cls, f: Finding) -> FindingOut:
        return cls(rule=f.rule, severity=f.severity, path=f.path, line=f.line, snippet=f.snippet, message=f.message)


class NodeClassOut(BaseModel):
    name: str
    category: str
    kind: str

    @classmethod
    def of(cls, n: NodeClass) -> NodeClassOut:
        return cls(name=n.name, category=n.category, kind=n.kind)


class VersionOut(BaseModel):
    id: str
    version: str
    status: str
    status_reason: str
    yanked: bool
    yanked_reason: str
    sha256: str
    size: int
    uploaded_at: str | None
    requires_python: str | None
    requires_comfyui: str
    dependencies: list[str]
    pack_dependencies: list[str]
    supported_os: list[str]
    supported_accelerators: list[str]
    changelog: str
    download_url: str
    wheel: str | None
    verifier: str
    verdict: str
    findings: list[FindingOut] = []
    node_classes: list[NodeClassOut] = []

    @classmethod
    def of(cls, v: Version, pack: Pack, base: str, findings: list[Finding] = (),
           nodes: list[NodeClass] = ()) -> VersionOut:
        return cls(
            id=v.id, version=v.version, status=v.status, status_reason=v.status_reason, yanked=v.yanked,
            yanked_reason=v.yanked_reason, sha256=v.sha256, size=v.size, uploaded_at=_iso(v.uploaded_at),
            requires_python=v.requires_python, requires_comfyui=v.requires_comfyui, dependencies=v.dependencies,
            pack_dependencies=v.pack_dependencies, supported_os=v.supported_os,
            supported_accelerators=v.supported_accelerators, changelog=v.changelog,
            download_url=download_url(base, v, pack.id),
            wheel=f"{base}/files/{v.wheel_sha256}/{v.wheel_filename}" if v.wheel_sha256 else None,
            verifier=v.verifier, verdict=v.verdict, findings=[FindingOut.of(f) for f in findings],
            node_classes=[NodeClassOut.of(n) for n in nodes])


class PackSummary(BaseModel):
    id: str
    name: str
    description: str
    publisher: str
    latest_version: str | None
    downloads: int
    url: str

    @classmethod
    def of(cls, p: Pack, base: str) -> PackSummary:
        return cls(id=p.id, name=p.name or p.id, description=p.description, publisher=p.publisher_id,
                   latest_version=p.latest_version, downloads=p.downloads, url=f"{base}/api/v1/packs/{p.id}")


class SearchResult(BaseModel):
    query: str
    total: int
    results: list[PackSummary]


class PackDetail(BaseModel):
    id: str
    name: str
    description: str
    publisher: str
    license: str
    repository: str
    icon: str
    downloads: int
    latest_version: str | None
    install: dict[str, str]
    versions: list[VersionOut]
    suppressions: list[dict] = []  # admin rulings applied when verifying this pack, with who and why
    # The publisher's trust level set by this registry's admins ("trusted" / "untrusted"; "" when unknown, as for a
    # mirrored pack): clients that opted in run a trusted publisher's packs without isolation.
    publisher_trust: str = ""
