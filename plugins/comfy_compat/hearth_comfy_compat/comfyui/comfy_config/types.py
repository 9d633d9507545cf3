"""ComfyUI's ``comfy_config.types``: a pack's ``pyproject.toml`` as typed values.

``PyProjectConfig.project`` holds ``[project]`` (name, version, dependencies, license, urls, and the registry's
``supported_*`` lists) and ``PyProjectConfig.tool_comfy`` holds ``[tool.comfy]`` (PublisherId, DisplayName, Icon,
Models, includes, web), under ComfyUI's Python names. :func:`from_toml` builds them from the file's spelling
(``PublisherId``, ``requires-python``). ComfyUI makes these pydantic models; here they are dataclasses with the same
fields, which is all packs read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class URLs:
    homepage: str = ""
    documentation: str = ""
    repository: str = ""
    issues: str = ""


@dataclass
class Model:
    location: str
    model_url: str


@dataclass
class ComfyConfig:
    publisher_id: str = ""
    display_name: str = ""
    icon: str = ""
    models: list[Model] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)
    web: str | None = None
    banner_url: str = ""


@dataclass
class License:
    file: str = ""
    text: str = ""


@dataclass
class ProjectConfig:
    name: str = ""
    version: str = ""
    requires_python: str = ">= 3.9"
    dependencies: list[str] = field(default_factory=list)
    license: License = field(default_factory=License)
    urls: URLs = field(default_factory=URLs)
    supported_os: list[str] = field(default_factory=list)
    supported_accelerators: list[str] = field(default_factory=list)
    supported_comfyui_version: str = ""
    supported_comfyui_frontend_version: str = ""


@dataclass
class PyProjectConfig:
    project: ProjectConfig = field(default_factory=ProjectConfig)
    tool_comfy: ComfyConfig = field(default_factory=ComfyConfig)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def from_toml(data: Mapping[str, Any]) -> PyProjectConfig:
    """The settings of a parsed ``pyproject.toml``; what is missing or malformed keeps its default."""
    project = data.get("project") if isinstance(data.get("project"), Mapping) else {}
    tool = data.get("tool") if isinstance(data.get("tool"), Mapping) else {}
    comfy = tool.get("comfy") if isinstance(tool.get("comfy"), Mapping) else {}
    license_value = project.get("license")
    if isinstance(license_value, str):  # PEP 639: an SPDX expression
        license_ = License(text=license_value)
    elif isinstance(license_value, Mapping):
        license_ = License(file=_text(license_value.get("file")), text=_text(license_value.get("text")))
    else:
        license_ = License()
    urls = project.get("urls") if isinstance(project.get("urls"), Mapping) else {}
    models = [Model(location=_text(m.get("location")), model_url=_text(m.get("model_url")))
              for m in comfy.get("Models") or () if isinstance(m, Mapping)]
    return PyProjectConfig(
        project=ProjectConfig(
            name=_text(project.get("name")), version=_text(project.get("version")),
            requires_python=_text(project.get("requires-python")) or ">= 3.9",
            dependencies=_strings(project.get("dependencies")), license=license_,
            urls=URLs(homepage=_text(urls.get("Homepage")), documentation=_text(urls.get("Documentation")),
                      repository=_text(urls.get("Repository")), issues=_text(urls.get("Issues"))),
            supported_os=_strings(project.get("supported_os")),
            supported_accelerators=_strings(project.get("supported_accelerators")),
            supported_comfyui_version=_text(project.get("supported_comfyui_version")),
            supported_comfyui_frontend_version=_text(project.get("supported_comfyui_frontend_version"))),
        tool_comfy=ComfyConfig(
            publisher_id=_text(comfy.get("PublisherId")), display_name=_text(comfy.get("DisplayName")),
            icon=_text(comfy.get("Icon")), models=models, includes=_strings(comfy.get("includes")),
            web=comfy.get("web") if isinstance(comfy.get("web"), str) else None,
            banner_url=_text(comfy.get("BannerUrl"))))
