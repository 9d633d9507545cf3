"""`install --workflow`'s lookups: the classes an environment lacks, and the packs the registries say provide them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hearth.registry.client import Offline
from hearth.registry.config import Index
from hearth.registry.workflow_deps import (
    WorkflowError,
    missing_node_classes,
    packs_for_classes,
    workflow_node_classes,
)
from tests.harness.packs import custom_node, installed_distribution, make_pack
from tests.registry_server.helpers import Hub, unique


def api_workflow(*classes: str) -> dict:
    return {str(i): {"class_type": c, "inputs": {}} for i, c in enumerate(classes, 1)}


def ui_workflow() -> dict:
    """Two real nodes, the frontend-only ones, and a subgraph instance whose inside uses a third class."""
    sub = "5f0c8c2e-0000-4000-8000-000000000001"
    return {
        "nodes": [{"id": 1, "type": "EmptyImage"}, {"id": 2, "type": "Reroute"}, {"id": 3, "type": "Note"},
                  {"id": 4, "type": "PrimitiveNode"}, {"id": 5, "type": "MutedPackNode", "mode": 2},
                  {"id": 6, "type": sub}, {"id": 7, "type": "MarkdownNote"}],
        "links": [],
        "definitions": {"subgraphs": [{"id": sub, "nodes": [{"id": 1, "type": "InsideSubgraphNode"}],
                                       "links": []}]},
    }


def test_node_classes_of_both_formats():
    assert workflow_node_classes(api_workflow("SaveImage", "KSampler", "SaveImage")) == {"SaveImage", "KSampler"}
    assert workflow_node_classes({"prompt": api_workflow("A"), "extra_data": {}}) == {"A"}
    assert workflow_node_classes(ui_workflow()) == {"EmptyImage", "MutedPackNode", "InsideSubgraphNode"}
    with pytest.raises(WorkflowError, match="node 2 has no class_type"):
        workflow_node_classes({"1": {"class_type": "A"}, "2": {"inputs": {}}}, "wf.json")
    with pytest.raises(WorkflowError, match="not a workflow"):
        workflow_node_classes([1, 2], "wf.json")


def test_missing_classes_are_what_neither_builtins_nor_the_environment_provide(make_env, tmp_path: Path):
    env = make_env("wf")
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(api_workflow("EmptyImage", "SaveImage", "EnvHasThis", "ComfyPackHasThis",
                                            "NobodyHasThis", "KSampler")))
    # KSampler comes from the samplers pack of Hearth's own venv: the environment does not have it.
    assert missing_node_classes(path, env) == {"EnvHasThis", "ComfyPackHasThis", "NobodyHasThis", "KSampler"}
    installed_distribution(env.site_packages, "has-this", "has_this_probe", "EnvHasThis")
    custom_node(env.custom_nodes, "comfy_has_this", "ComfyPackHasThis")
    assert missing_node_classes(path, env) == {"NobodyHasThis", "KSampler"}

    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(WorkflowError, match="invalid JSON at line 1"):
        missing_node_classes(tmp_path / "bad.json", env)
    with pytest.raises(WorkflowError, match="no such file"):
        missing_node_classes(tmp_path / "absent.json", env)


def test_a_class_on_the_private_registry_wins_and_unknown_classes_are_reported(hub: Hub, private_hub: Hub,
                                                                                tmp_path: Path):
    shared_cls, public_cls, unknown_cls = unique("SharedNode"), unique("PublicNode"), unique("NoSuchNode")
    private_pack, public_pack, public_other = unique("priv-"), unique("pub-"), unique("pubother-")
    for h, name, cls in ((private_hub, private_pack, shared_cls), (hub, public_pack, shared_cls),
                         (hub, public_other, public_cls)):
        publisher, token = h.new_publisher()
        detail = h.publish_dir(make_pack(tmp_path / h.url.rsplit(":", 1)[1], name, "1.0.0", publisher,
                                         node_class=cls), token)
        assert detail["status"] == "active", detail

    found, missing = packs_for_classes([shared_cls, public_cls, unknown_cls],
                                       [Index(private_hub.url), Index(hub.url)])
    assert found == {shared_cls: private_pack, public_cls: public_other}
    assert missing == [unknown_cls]

    # With the public registry first, the same class comes from the public pack: priority decides, not luck.
    found, _ = packs_for_classes([shared_cls], [Index(hub.url), Index(private_hub.url)])
    assert found == {shared_cls: public_pack}


def test_an_offline_registry_stops_the_lookup_rather_than_falling_through(hub: Hub):
    with pytest.raises(Offline, match="127.0.0.1:9"):
        packs_for_classes(["AnyNode"], [Index("http://127.0.0.1:9"), Index(hub.url)])
