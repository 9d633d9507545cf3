"""ComfyUI's ``comfy_config.types``: a pack's ``pyproject.toml`` as typed values.

``PyProjectConfig.project`` holds ``[project]`` (name, version, dependencies, license, urls, and the registry's
``supported_*`` lists) and ``PyProjectConfig.tool_comfy`` holds ``[tool.comfy]`` (PublisherId, DisplayName, Icon,
Models, includes, web). Fields take ComfyUI's Python names or the file's spelling (``PublisherId``,
``requires-python``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Settings(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class URLs(_Settings):
    homepage: str = Field(default="", alias="Homepage")
    documentation: str = Field(default="", alias="Documentation")
    repository: str = Field(default="", alias="Repository")
    issues: str = Field(default="", alias="Issues")


class Model(_Settings):
    location: str
    model_url: str


class ComfyConfig(_Settings):
    publisher_id: str = Field(default="", alias="PublisherId")
    display_name: str = Field(default="", alias="DisplayName")
    icon: str = Field(default="", alias="Icon")
    models: list[Model] = Field(default_factory=list, alias="Models")
    includes: list[str] = Field(default_factory=list)
    web: str | None = None
    banner_url: str = Field(default="", alias="BannerUrl")


class License(_Settings):
    file: str = ""
    text: str = ""


class ProjectConfig(_Settings):
    name: str = ""
    version: str = ""
    requires_python: str = Field(default=">= 3.9", alias="requires-python")
    dependencies: list[str] = Field(default_factory=list)
    license: License = Field(default_factory=License)
    urls: URLs = Field(default_factory=URLs)
    supported_os: list[str] = Field(default_factory=list)
    supported_accelerators: list[str] = Field(default_factory=list)
    supported_comfyui_version: str = ""
    supported_comfyui_frontend_version: str = ""


class PyProjectConfig(_Settings):
    project: ProjectConfig = Field(default_factory=ProjectConfig)
    tool_comfy: ComfyConfig = Field(default_factory=ComfyConfig)
