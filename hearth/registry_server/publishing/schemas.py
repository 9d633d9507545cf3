"""Request bodies of ComfyUI's publish call (comfy-cli sends these fields; unknown ones are tolerated)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PublishNode(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    name: str | None = None
    description: str | None = None
    icon: str | None = None
    license: str | None = None  # a JSON string such as "{\"text\": \"MIT\"}"
    repository: str | None = None
    banner_url: str | None = None
    supported_os: list[str] | None = None
    supported_accelerators: list[str] | None = None
    supported_comfyui_version: str | None = None
    supported_comfyui_frontend_version: str | None = None


class PublishNodeVersion(BaseModel):
    model_config = ConfigDict(extra="allow")

    version: str
    dependencies: list[str] = Field(default_factory=list)
    changelog: str | None = None
    sha256: str | None = Field(default=None, description="Optional: the archive's sha256, checked at upload")
    supported_os: list[str] | None = None
    supported_accelerators: list[str] | None = None
    supported_comfyui_version: str | None = None
    supported_comfyui_frontend_version: str | None = None


class PublishRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    personal_access_token: str | None = None
    node: PublishNode = Field(default_factory=PublishNode)
    node_version: PublishNodeVersion
