"""Publisher trust through a real registry: ``comfy install`` records the pack's publisher and whether the
registry's admins trust it; only where the user opted in (``comfy trust --publishers on``) does that make the pack
run in-process; an admin's change reaches the user at the next install."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from hearth.registry import envs
from hearth.registry_server.accounts import services as accounts
from tests.envs.conftest import comfy, home, hub, uv_cache, wheels  # noqa: F401 - the registry fixtures
from tests.harness.packs import Packs, project_pack
from tests.registry_server.helpers import Hub, unique

pytestmark = pytest.mark.isolation


def plugin_record(comfy, name: str) -> dict:  # noqa: ANN001, F811
    out = comfy("plugins", "--json", "--env", "default")
    assert out.exit_code == 0, out.output
    return next(r for r in json.loads(out.output)["plugins"] if r["name"] == name)


def test_publisher_trust_is_recorded_at_install_and_counts_only_when_opted_in(
        hub: Hub, home: Path, comfy, tmp_path: Path) -> None:  # noqa: ANN001, F811
    publisher = Packs(hub, tmp_path / "work")  # a publisher of its own: the test changes its trust level
    (tmp_path / "config.toml").write_text(f'[[registries]]\nurl = "{hub.url}"\n')
    name = unique("pubtrust-")
    module = name.replace("-", "_")
    publisher.publish(project_pack(tmp_path / "src", name, "1.0.0", publisher.publisher, node_class="PubProbe",
                                   build_system=True, description="publisher trust probe"))
    later = unique("pubtrust-later-")  # installed after the registry's change: any new generation re-records
    publisher.publish(project_pack(tmp_path / "src", later, "1.0.0", publisher.publisher, build_system=True,
                                   description="installed later"))

    installed = comfy("install", name)
    assert installed.exit_code == 0, installed.output
    record = envs.get_environment().current().packs[name]
    assert (record["publisher"], record["publisher_trusted"], record["registry"]) == \
        (publisher.publisher, True, hub.url)

    assert "publisher     trusted by this registry's admins" in comfy("info", name).output
    refused = plugin_record(comfy, module)  # the registry trusts the publisher, but the user has not opted in
    assert (refused["placement_why"], refused["node_count"]) == ("not trusted", 0)
    assert refused["error"].startswith(f"Hearth-format pack {name} runs only in-process")

    assert comfy("trust", "--publishers", "on").exit_code == 0
    allowed = plugin_record(comfy, module)
    assert (allowed["error"], allowed["placement"], allowed["placement_why"], allowed["node_count"]) == \
        (None, "in-process", f"publisher trusted by {hub.url}", 1)
    assert plugin_record(comfy, module) == allowed
    off = comfy("plugins", "--json", "--env", "default", "--isolation", "all")
    assert next(r for r in json.loads(off.output)["plugins"] if r["name"] == module)["placement_why"] == \
        "--isolation all"

    with hub.session() as s:  # the registry's admins take the publisher's trust back
        accounts.set_trust(s, publisher.publisher, "untrusted", "test")
    deadline = time.monotonic() + 30  # a write made outside the server shows within its cache's watch interval
    while hub.http.get(f"/api/v1/packs/{name}").json()["publisher_trust"] != "untrusted":
        assert time.monotonic() < deadline, "the registry still says the publisher is trusted"
        time.sleep(0.2)
    assert "publisher     not trusted by this registry's admins" in comfy("info", name).output
    assert plugin_record(comfy, module)["error"] is None  # what was recorded at install time still holds
    updated = comfy("install", later)
    assert updated.exit_code == 0, updated.output
    assert envs.get_environment().current().packs[name]["publisher_trusted"] is False
    again = plugin_record(comfy, module)
    assert (again["placement_why"], again["node_count"]) == ("not trusted", 0)

    assert comfy("trust", "--publishers", "off").exit_code == 0
    assert comfy("trust", name).exit_code == 0  # the user's own trust needs no registry
    assert plugin_record(comfy, module)["placement_why"] == "trusted by you (comfy trust)"
