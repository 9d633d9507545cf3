"""Several registries: a pack name a higher-priority (private, token-protected) registry has is never taken from
a lower one; and `install --workflow` finds the packs a workflow's node classes need."""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.registry import envs
from tests.envs.conftest import unique
from tests.harness.packs import Packs
from tests.registry_server.conftest import settings_for
from tests.registry_server.helpers import Hub
from tests.registry_server.servers import RegistryProcess


@pytest.fixture(scope="module")
def private_hub() -> Iterator[Hub]:
    server = RegistryProcess(settings_for(Path(tempfile.mkdtemp(prefix="hearth-envs-private-")), private=True)).start()
    h = Hub(server.url, server.settings)
    yield h
    h.close()
    server.stop()


def test_private_registry_wins_a_shared_name_and_its_token_is_used(packs: Packs, private_hub: Hub, comfy,
                                                                    home: Path, tmp_path: Path):
    shared, public_only = unique("pshared-"), unique("ppublic-")
    private = Packs(private_hub, tmp_path / "private")
    private.hearth(shared, version="1.0.0", deps=("tinydep<1.5",))
    packs.hearth(shared, version="9.0.0")  # a look-alike on the public registry, with a higher version
    packs.hearth(public_only)
    read_token = private.read_token
    Path(os.environ["COMFY_CONFIG"]).write_text(
        f'[[registries]]\nurl = "{private_hub.url}"\ntoken = "{read_token}"\n\n'
        f'[[registries]]\nurl = "{packs.hub.url}"\n')
    r = comfy("install", shared, public_only)
    assert r.exit_code == 0, r.output
    env = envs.get_environment()
    lock = {p["name"]: p for p in tomllib.loads(env.lock_path.read_text())["packages"]}
    assert lock[shared]["version"] == "1.0.0"
    assert lock[shared]["wheels"][0]["url"].startswith(private_hub.url + "/")
    assert lock[public_only]["wheels"][0]["url"].startswith(packs.hub.url + "/")
    assert read_token not in env.lock_path.read_text()  # credentials never land in the lock
    packs_info = env.current().packs
    assert packs_info[shared]["registry"] == private_hub.url


def test_a_private_registry_without_a_token_is_an_error_not_a_fallthrough(packs: Packs, private_hub: Hub, comfy,
                                                                          home: Path, tmp_path: Path):
    name = unique("pnotoken-")
    packs.hearth(name)
    Path(os.environ["COMFY_CONFIG"]).write_text(
        f'[[registries]]\nurl = "{private_hub.url}"\n\n[[registries]]\nurl = "{packs.hub.url}"\n')
    r = comfy("install", name)
    assert r.exit_code == 2, r.output
    assert private_hub.url in r.output and "401" in r.output
    assert envs.get_environment().generation == 0


def test_install_workflow_installs_the_packs_for_missing_node_classes(packs: Packs, comfy, home: Path,
                                                                       tmp_path: Path):
    pack, cls = unique("pwf-"), unique("WfNode")
    packs.comfyui(pack, node_class=cls)
    workflow = tmp_path / "wf.json"
    workflow.write_text(json.dumps({"1": {"class_type": cls, "inputs": {"text": "hi"}}}))
    r = comfy("install", "--workflow", workflow)
    assert r.exit_code == 0, r.output
    env = envs.get_environment()
    assert (env.custom_nodes / pack / "__init__.py").is_file()
    r = comfy("install", "--workflow", workflow)
    assert r.exit_code == 0 and "already has every node class" in r.output, r.output
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"1": {"class_type": "NoPackHasThisClass", "inputs": {}}}))
    r = comfy("install", "--workflow", unknown)
    assert r.exit_code == 2 and "NoPackHasThisClass" in r.output
