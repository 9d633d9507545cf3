"""The whole path on a real registry: publish a pack, install it (by name or by a workflow), load it with --env."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.envs_cli.conftest import comfy_process
from tests.harness.packs import project_pack
from tests.registry_server.helpers import Hub, unique


@pytest.fixture
def offline_registry(home: Path, hub: Hub, monkeypatch: pytest.MonkeyPatch) -> Hub:
    """Installs use this registry alone: no PyPI, so the test never leaves the machine."""
    monkeypatch.setenv("COMFY_REGISTRY_URL", hub.url)
    monkeypatch.setenv("COMFY_PYPI_URL", "none")
    return hub


@pytest.mark.slow
def test_install_by_name_then_nodes_and_run_with_env(offline_registry: Hub, make_env, tmp_path: Path):
    hub = offline_registry
    name, cls = unique("e2e-"), unique("EndToEnd")
    publisher, token = hub.new_publisher()
    assert hub.publish_dir(project_pack(tmp_path, name, publisher=publisher, node_class=cls), token)["status"] == "active"
    make_env("e2e")

    done = comfy_process("install", name, "--env", "e2e")
    assert done.returncode == 0, done.stderr
    done = comfy_process("nodes", "--env", "e2e", "--json")
    assert done.returncode == 0, done.stderr
    assert cls in json.loads(done.stdout) and "KSampler" not in json.loads(done.stdout)

    workflow = tmp_path / "wf.json"
    workflow.write_text(json.dumps({"1": {"class_type": cls, "inputs": {"text": "x"}}}))
    done = comfy_process("run", workflow, "--env", "e2e", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_install_workflow_finds_the_pack_through_the_node_class_index(offline_registry: Hub, make_env,
                                                                      tmp_path: Path):
    hub = offline_registry
    name, cls = unique("wfpack-"), unique("WorkflowOnly")
    publisher, token = hub.new_publisher()
    assert hub.publish_dir(project_pack(tmp_path, name, publisher=publisher, node_class=cls), token)["status"] == "active"
    make_env("wfenv")
    workflow = tmp_path / "wf.json"
    workflow.write_text(json.dumps({"1": {"class_type": cls, "inputs": {}},
                                    "2": {"class_type": "EmptyImage", "inputs": {}}}))

    done = comfy_process("install", "--workflow", workflow, "--env", "wfenv", "--json")
    assert done.returncode == 0, done.stderr
    done = comfy_process("list", "--env", "wfenv", "--json")
    assert done.returncode == 0, done.stderr
    assert name in done.stdout

    unknown = unique("NoPackHasThis")
    workflow.write_text(json.dumps({"1": {"class_type": unknown, "inputs": {}}}))
    done = comfy_process("install", "--workflow", workflow, "--env", "wfenv")
    assert done.returncode == 2 and unknown in done.stderr and done.stderr.strip().count("\n") == 0
