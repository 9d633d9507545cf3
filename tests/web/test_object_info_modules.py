"""/object_info reports ComfyUI's module for Hearth's own implementations of ComfyUI's core nodes, so ComfyUI's
frontend shows them as core (its badge reads ``python_module.split(".")[0]``); other nodes keep their module."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from hearth.web.app import create_app
from hearth.web.comfyui_modules import reported_module
from hearth.web.config import ServerConfig


def test_reported_module_rules() -> None:
    assert reported_module("KSampler", "hearth_samplers.nodes_ksampler") == "nodes"
    assert reported_module("GetImageSize", "hearth.core.builtin_nodes.image_resize") == "comfy_extras.nodes_images"
    # A pack's node keeps its module, even under a core name; a node ComfyUI lacks keeps Hearth's.
    assert reported_module("KSampler", "custom_nodes.some_pack") == "custom_nodes.some_pack"
    assert reported_module("LoadAnimateDiffModel", "hearth_video.animatediff_nodes") == "hearth_video.animatediff_nodes"
    assert reported_module("Anything", None) is None


def test_object_info_names_comfyuis_modules(tmp_path: Path) -> None:
    app = create_app(ServerConfig(data=tmp_path / "data", serve_frontend=False))
    with TestClient(app, base_url="http://127.0.0.1:8188") as client:
        info = client.get("/api/object_info").json()
        assert info["KSampler"]["python_module"] == "nodes"
        assert info["SaveImage"]["python_module"] == "nodes"
        assert info["ImageStitch"]["python_module"] == "comfy_extras.nodes_images"
        assert info["SamplerCustomAdvanced"]["python_module"] == "comfy_extras.nodes_custom_sampler"
        one = client.get("/object_info/Video%20Slice").json()
        assert one["Video Slice"]["python_module"].split(".")[0] == "comfy_extras"
