"""The client's search, node-class and pack lookups against a registry that speaks only ComfyUI's routes."""

from __future__ import annotations

import httpx

from hearth.registry.client import RegistryClient

NODE = {"id": "comfy-pack", "name": "Comfy Pack", "description": "made for ComfyUI's registry", "downloads": 42,
        "publisher": {"id": "someone", "name": "Someone"}, "license": "MIT", "repository": "https://x/y",
        "latest_version": {"version": "2.0.0", "downloadUrl": "https://x/f.zip"}}


def comfy_only_registry(request: httpx.Request) -> httpx.Response:
    """ComfyUI's registry: no /api/v1 at all (its 404 body has no Hearth error code)."""
    path = request.url.path
    if path == "/nodes/search":
        assert request.url.params["search"] == "paint"
        return httpx.Response(200, json={"nodes": [NODE], "total": 1, "page": 1, "limit": 10, "totalPages": 1})
    if path == "/comfy-nodes/PaintNode/node":
        return httpx.Response(200, json=NODE)
    if path == "/nodes/comfy-pack":
        return httpx.Response(200, json=NODE)
    if path == "/nodes/comfy-pack/versions":
        return httpx.Response(200, json=[{"version": "2.0.0", "status": "NodeVersionStatusActive",
                                          "downloadUrl": "https://x/f.zip", "dependencies": ["numpy"],
                                          "createdAt": "2026-01-02T00:00:00Z"}])
    return httpx.Response(404, json={"message": "Not Found"})


def client() -> RegistryClient:
    return RegistryClient("https://comfy.example", transport=httpx.MockTransport(comfy_only_registry))


def test_search_falls_back_to_nodes_search():
    with client() as c:
        assert c.search("paint") == [{"id": "comfy-pack", "name": "Comfy Pack",
                                      "description": "made for ComfyUI's registry", "publisher": "someone",
                                      "latest_version": "2.0.0", "downloads": 42}]


def test_node_class_falls_back_to_comfy_nodes_route():
    with client() as c:
        assert [p["id"] for p in c.packs_for_node_class("PaintNode")] == ["comfy-pack"]
        assert c.packs_for_node_class("NoSuchNode") == []


def test_pack_details_are_built_from_the_nodes_routes():
    with client() as c:
        detail = c.pack_details("comfy-pack")
        assert detail is not None and detail["latest_version"] == "2.0.0" and detail["license"] == "MIT"
        assert [(v["version"], v["dependencies"]) for v in detail["versions"]] == [("2.0.0", ["numpy"])]
        assert c.pack_details("absent") is None
