"""`comfy search` and `comfy info` against real registry processes: tables, --json, priority, one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hearth.registry.config import Config, Index, save_config
from tests.harness.packs import make_pack
from tests.registry_server.helpers import Hub, unique


def publish(hub: Hub, root: Path, name: str, version: str = "1.0.0", **kwargs) -> dict:
    publisher, token = hub.new_publisher()
    detail = hub.publish_dir(make_pack(root, name, version, publisher, **kwargs), token)
    assert detail["status"] == "active", detail
    return detail


def use_registries(*hubs: Hub) -> None:
    """The user's config lists these registries, highest priority first (COMFY_CONFIG is per test)."""
    save_config(Config(Path(os.environ["COMFY_CONFIG"]), [Index(h.url) for h in hubs]))


def test_search_finds_a_pack_by_a_word_of_its_description(comfy, hub: Hub, tmp_path: Path):
    word = unique("zebra")
    name = unique("srch-")
    publish(hub, tmp_path, name, description=f"Nodes that paint {word} stripes")

    r = comfy("search", word, "--registry", hub.url, "--json")
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)
    assert [p["id"] for p in body["results"]] == [name]
    assert body["results"][0]["latest_version"] == "1.0.0" and body["results"][0]["registry"] == hub.url
    assert body["hidden"] == []

    r = comfy("search", word, "--registry", hub.url)
    assert r.exit_code == 0, r.output
    assert name in r.output and "1.0.0" in r.output and "stripes" in r.output

    r = comfy("search", unique("nothing-matches-"), "--registry", hub.url)
    assert r.exit_code == 0 and r.output.startswith("no packs match")


def test_search_hides_a_name_a_higher_priority_registry_holds(comfy, hub: Hub, private_hub: Hub, tmp_path: Path):
    word = unique("okapi")
    shared, public_only = unique("shared-"), unique("pub-")
    publish(private_hub, tmp_path / "private", shared, description="the private team's pack")
    publish(hub, tmp_path / "public", shared, description=f"a public {word} impostor")
    publish(hub, tmp_path / "public", public_only, description=f"a public {word} pack")
    use_registries(private_hub, hub)

    r = comfy("search", word, "--json")
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)
    assert body["registries"] == [private_hub.url, hub.url]
    assert [(p["id"], p["registry"]) for p in body["results"]] == [(public_only, hub.url)]
    assert body["hidden"] == [{"id": shared, "registry": hub.url, "held_by": private_hub.url}]

    r = comfy("search", word)
    assert r.exit_code == 0, r.output
    assert "hidden" in r.output and private_hub.url in r.output


def test_info_shows_versions_and_node_classes_from_the_registry_that_owns_the_name(comfy, hub: Hub,
                                                                                    private_hub: Hub, tmp_path: Path):
    name = unique("inf-")
    cls = unique("InfoNode")
    publisher, token = private_hub.new_publisher()
    for version in ("1.0.0", "1.1.0"):
        private_hub.publish_dir(make_pack(tmp_path / "private", name, version, publisher, node_class=cls), token)
    publish(hub, tmp_path / "public", name, "9.0.0")  # the same name on a lower-priority registry
    use_registries(private_hub, hub)

    r = comfy("info", name, "--json")
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)
    assert body["registry"] == private_hub.url and body["latest_version"] == "1.1.0"
    assert sorted(v["version"] for v in body["versions"]) == ["1.0.0", "1.1.0"]
    assert all(v["status"] == "active" for v in body["versions"])
    assert [n["name"] for n in body["versions"][0]["node_classes"]] == [cls]

    r = comfy("info", name)
    assert r.exit_code == 0, r.output
    assert name in r.output and "1.1.0" in r.output and cls in r.output and private_hub.url in r.output
    assert "9.0.0" not in r.output


def test_unknown_pack_missing_config_and_offline_registry_are_one_line_errors(comfy, hub: Hub):
    missing = unique("absent-")
    r = comfy("info", missing, "--registry", hub.url)
    assert r.exit_code == 2 and r.output.count("\n") == 1
    assert f"pack '{missing}' not found on {hub.url}" in r.output

    r = comfy("search", "anything")  # no config, no --registry, no COMFY_REGISTRY_URL
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "no registry configured" in r.output

    r = comfy("info", "x", "--registry", "http://127.0.0.1:9")
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "not reachable" in r.output
    r = comfy("search", "x", "--registry", "http://127.0.0.1:9")
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "not reachable" in r.output


def test_an_offline_higher_priority_registry_is_an_error_not_skipped(comfy, hub: Hub, tmp_path: Path):
    name = unique("fallthrough-")
    publish(hub, tmp_path, name)
    save_config(Config(Path(os.environ["COMFY_CONFIG"]), [Index("http://127.0.0.1:9"), Index(hub.url)]))
    r = comfy("info", name)  # the lower registry has it, but the offline one might own the name
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "127.0.0.1:9" in r.output
