"""Pack tables: packs, immutable versions, node classes per version and verification findings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hearth.registry_server.db import utcnow

# Version statuses, as ComfyUI's registry names them. Only these are ever shown to readers.
PENDING, ACTIVE, FLAGGED, BANNED, DELETED = "pending", "active", "flagged", "banned", "deleted"
VISIBLE_STATUSES = (PENDING, ACTIVE, FLAGGED)
# Hearth's publication policy: a verified version a human must look at first ("review"), and one a reviewer
# turned down ("rejected"). Neither is listed, indexed or downloadable; only its own status page shows it.
REVIEW, REJECTED = "review", "rejected"
STATUS_PAGE_STATUSES = (*VISIBLE_STATUSES, REVIEW, REJECTED)


class Pack(SQLModel, table=True):
    __tablename__ = "packs"

    id: str = Field(primary_key=True, max_length=100)
    # PEP 503-normalised id: unique, so "My_Pack" and "my-pack" cannot both exist (the simple index would merge
    # them, and ComfyUI's registry already treats ids case-insensitively).
    key: str = Field(unique=True, index=True, max_length=100)
    publisher_id: str = Field(foreign_key="publishers.id", index=True)
    name: str = ""
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    license: str = ""
    repository: str = ""
    icon: str = ""
    banner_url: str = ""
    origin: str = "local"  # local | upstream (mirror cache)
    banned: bool = False
    downloads: int = 0
    latest_version: str | None = None  # highest active, non-yanked semver; kept by services.refresh_pack
    # Lowercased id, name, description, publisher and latest node classes: what search matches against.
    search_text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Version(SQLModel, table=True):
    __tablename__ = "versions"
    # The database, not the code, guarantees a version string is used once per pack, even after deletion.
    __table_args__ = (UniqueConstraint("pack_id", "version", name="uq_versions_pack_version"),)

    id: str = Field(primary_key=True, max_length=36)
    pack_id: str = Field(foreign_key="packs.id", index=True)
    version: str = Field(max_length=100)
    status: str = Field(default=PENDING, index=True)
    status_reason: str = ""
    yanked: bool = False
    yanked_reason: str = ""
    deprecated: bool = False
    sha256: str = Field(index=True, max_length=64)
    size: int = 0
    blob_key: str = ""
    uploaded_at: datetime = Field(default_factory=utcnow)
    changelog: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    dependencies: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    pack_dependencies: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    requires_python: str | None = None
    requires_comfyui: str = ""
    supported_os: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    supported_accelerators: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    supported_comfyui_version: str = ""
    supported_comfyui_frontend_version: str = ""
    manifest: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Verification: who claimed it and when (so a crashed worker's claim expires), result and verifier used.
    verify_claimed_at: datetime | None = None
    verify_claimed_by: str = Field(default="", sa_column_kwargs={"server_default": ""})  # "host:pid"
    verified_at: datetime | None = None
    verdict: str = ""
    verifier: str = ""
    import_ok: bool | None = None
    # The wheel built from the archive for the simple index.
    wheel_filename: str = ""
    wheel_sha256: str = Field(default="", index=True, max_length=64)
    wheel_size: int = 0
    wheel_key: str = ""
    wheel_metadata_sha256: str = ""


class NodeClass(SQLModel, table=True):
    __tablename__ = "node_classes"

    id: int | None = Field(default=None, primary_key=True)
    version_id: str = Field(foreign_key="versions.id", index=True)
    name: str = Field(index=True, max_length=200)
    category: str = ""
    kind: str = ""
    definition: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Finding(SQLModel, table=True):
    __tablename__ = "findings"

    id: int | None = Field(default=None, primary_key=True)
    version_id: str = Field(foreign_key="versions.id", index=True)
    rule: str
    severity: str  # info | warning | error
    path: str = ""
    line: int | None = None
    snippet: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    message: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
