"""The routes the official frontend (comfyui-frontend-package 1.58.1) reads beyond the core API, on a real server:
/internal/*, /view_metadata, model previews, /templates/* and /docs/* (the last two from their packages, test
dependencies). Hostile names (``..``, absolute paths, links out of the folder) get a 4xx. The jobs API is in
test_jobs_api.py.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hearth_server import HearthServer
from PIL import Image


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    """A server of its own: these tests put model files and links in its folders."""
    root = tmp_path_factory.mktemp("frontend-routes")
    (root / "models" / "checkpoints").mkdir(parents=True)
    # A pack whose example workflows sit in examples/, one of the folder names ComfyUI also accepts.
    pack = root / "packs" / "examples_pack"
    (pack / "examples").mkdir(parents=True)
    (pack / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    (pack / "examples" / "wf.json").write_text('{"nodes": [], "links": []}')
    instance = HearthServer(root / "data", "--models-dir", str(root / "models"), "--custom-nodes", str(root / "packs"))
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def http(site: HearthServer) -> Iterator[httpx.Client]:
    with site.http() as client:
        yield client


def test_internal_folder_paths_and_files(site: HearthServer, http: httpx.Client, tmp_path: Path) -> None:
    paths = http.get("/internal/folder_paths").json()
    assert paths["checkpoints"] == [str((site.data.parent / "models" / "checkpoints").resolve())]
    assert all(isinstance(v, list) for v in paths.values())

    inputs = site.data / "input"
    (inputs / "older.png").write_bytes(b"x")
    time.sleep(0.02)
    (inputs / "newer.png").write_bytes(b"x")
    (inputs / ".hidden.png").write_bytes(b"x")
    (inputs / "folder").mkdir(exist_ok=True)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"x")
    (inputs / "link-out.png").symlink_to(secret)
    listing = http.get("/internal/files/input").json()
    assert listing[:2] == ["newer.png", "older.png"] and len(listing) == 2
    assert isinstance(http.get("/internal/files/output").json(), list)
    assert http.get("/internal/files/temp").status_code == 200
    for bad in ("models", "..", "user"):
        assert http.get(f"/internal/files/{bad}").status_code in (400, 404), bad
    raw = http.get("/internal/logs/raw").json()
    assert isinstance(raw["entries"], list) and raw["size"]["cols"] > 0
    assert isinstance(http.get("/internal/logs").json(), str)
    assert http.patch("/internal/logs/subscribe", json={"enabled": True, "clientId": "x"}).status_code == 200


def _safetensors(path: Path, metadata: dict[str, str]) -> None:
    header = json.dumps({"__metadata__": metadata, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})
    data = header.encode()
    path.write_bytes(struct.pack("<Q", len(data)) + data + b"\0\0\0\0")


def _png(color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_view_metadata_and_model_previews(site: HearthServer, http: httpx.Client, tmp_path: Path) -> None:
    folder = site.data.parent / "models" / "checkpoints"
    (folder / "sub").mkdir(exist_ok=True)
    _safetensors(folder / "sub" / "tiny.safetensors", {"modelspec.title": "Tiny", "ss_network_dim": "4"})
    (folder / "sub" / "tiny.png").write_bytes(_png("red"))
    cover = base64.b64encode(_png("blue")).decode()
    _safetensors(folder / "covered.safetensors", {"ssmd_cover_images": json.dumps([cover])})
    _safetensors(folder / "plain.safetensors", {})
    outside = tmp_path / "outside.safetensors"
    _safetensors(outside, {"secret": "yes"})
    (tmp_path / "outside.png").write_bytes(_png("green"))
    (folder / "linked.safetensors").symlink_to(outside)
    (folder / "linked.png").symlink_to(tmp_path / "outside.png")

    meta = http.get("/api/view_metadata/checkpoints", params={"filename": "sub/tiny.safetensors"})
    assert meta.status_code == 200 and meta.json() == {"modelspec.title": "Tiny", "ss_network_dim": "4"}
    for params in ({"filename": "missing.safetensors"}, {"filename": "sub/tiny.png"}, {}):
        assert http.get("/api/view_metadata/checkpoints", params=params).status_code == 404, params
    assert http.get("/api/view_metadata/nonsense", params={"filename": "a.safetensors"}).status_code == 404
    for hostile in ("../../outside.safetensors", str(outside), "linked.safetensors"):
        answer = http.get("/api/view_metadata/checkpoints", params={"filename": hostile})
        assert answer.status_code in (400, 403, 404) and "secret" not in answer.text, hostile

    preview = http.get("/api/experiment/models/preview/checkpoints/0/sub/tiny.safetensors")
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(preview.content)).convert("RGB").getpixel((4, 4))[0] > 200  # the red png
    # The frontend asks with the model's extension swapped for .webp.
    assert http.get("/api/experiment/models/preview/checkpoints/0/sub/tiny.webp").content == preview.content
    covered = http.get("/api/experiment/models/preview/checkpoints/0/covered.webp")
    assert covered.status_code == 200 and Image.open(io.BytesIO(covered.content)).convert("RGB").getpixel((4, 4))[2] > 200
    assert http.get("/api/experiment/models/preview/checkpoints/0/plain.safetensors").status_code == 404
    for hostile in ("checkpoints/0/..%2F..%2Foutside.safetensors", "checkpoints/0/linked.safetensors",
                    "checkpoints/7/sub/tiny.safetensors", "checkpoints/x/sub/tiny.safetensors",
                    "nonsense/0/tiny.safetensors", "checkpoints/0/%2Ftmp%2Foutside.safetensors"):
        answer = http.get(f"/api/experiment/models/preview/{hostile}")
        assert answer.status_code in (400, 403, 404), (hostile, answer.status_code)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.mark.skipif(not _installed("comfyui_workflow_templates_json"),
                    reason="comfyui-workflow-templates-json (a dev dependency) is not installed")
def test_templates_from_the_installed_packages(http: httpx.Client) -> None:
    index = http.get("/templates/index.json")
    assert index.status_code == 200 and index.headers["content-type"].startswith("application/json")
    categories = index.json()
    assert isinstance(categories, list) and categories and all("templates" in c for c in categories)
    name = categories[0]["templates"][0]["name"]
    template = http.get(f"/templates/{name}.json")
    assert template.status_code == 200 and "nodes" in template.json()
    logos = http.get("/templates/index_logo.json")
    assert logos.status_code == 200 and isinstance(logos.json(), dict)
    assert http.get("/templates/no-such-template.json").status_code == 404
    for hostile in ("..%2F__init__.py", "..%2F..%2F__init__.py", "%2Fetc%2Fpasswd"):
        answer = http.get(f"/templates/{hostile}")
        assert answer.status_code in (400, 403, 404), (hostile, answer.status_code)


@pytest.mark.skipif(not _installed("comfyui_embedded_docs"),
                    reason="comfyui-embedded-docs (a dev dependency) is not installed")
def test_node_docs_from_the_embedded_docs_package(http: httpx.Client) -> None:
    page = http.get("/docs/KSampler/en.md")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/markdown")
    assert "KSampler" in page.text
    assert http.get("/docs/NoSuchNode/en.md").status_code == 404
    for hostile in ("..%2F__init__.py", "..%2F..%2Fcomfyui_embedded_docs%2F__init__.py", "%2Fetc%2Fpasswd"):
        answer = http.get(f"/docs/{hostile}")
        assert answer.status_code in (400, 403, 404), (hostile, answer.status_code)


def test_pack_example_workflows_in_any_folder_comfyui_reads(http: httpx.Client) -> None:
    listed = http.get("/api/workflow_templates").json()
    assert listed["examples_pack"] == ["wf"] and listed["hearth_test_pack"] == ["demo"]
    assert http.get("/api/workflow_templates/examples_pack/wf.json").json() == {"nodes": [], "links": []}
    assert http.get("/api/workflow_templates/examples_pack/..%2F__init__.py").status_code in (403, 404)

