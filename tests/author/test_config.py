"""The user config: where it lives, 0600 tokens, priority order, overrides, and no dependency confusion."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hearth.registry.client import Offline
from hearth.registry.config import (
    ConfigError,
    Index,
    PackNotFound,
    config_path,
    indexes_in_priority,
    load_config,
    save_config,
    source_for_pack,
)

PRIVATE, PUBLIC = "https://private.example", "https://public.example"


def test_config_path_honours_comfy_config_then_xdg(tmp_path: Path):
    assert config_path({"COMFY_CONFIG": str(tmp_path / "c.toml")}) == tmp_path / "c.toml"
    assert config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "hearth" / "config.toml"


def test_tokens_are_saved_0600_and_read_back_in_order(tmp_path: Path):
    path = tmp_path / "cfg" / "config.toml"
    config = load_config(path)
    assert config.indexes == []
    config.set_token(PRIVATE + "/", 'se"cr\\et')
    config.set_token(PUBLIC, "pub")
    save_config(config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_config(path)
    assert again.indexes == [Index(PRIVATE, 'se"cr\\et'), Index(PUBLIC, "pub")]

    path.chmod(0o644)  # a file someone loosened is tightened on the next write
    again.set_token(PRIVATE, "new")
    save_config(again)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_config(path).indexes[0] == Index(PRIVATE, "new")  # re-login keeps the place in the order


def test_priority_order_and_overrides(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text(f'[[registries]]\nurl = "{PRIVATE}"\ntoken = "t1"\n\n[[registries]]\nurl = "{PUBLIC}"\n')
    config = load_config(path)
    assert [r.url for r in indexes_in_priority(config, env={})] == [PRIVATE, PUBLIC]
    # --registry beats COMFY_REGISTRY_URL, and either replaces the list; a stored token still applies.
    assert indexes_in_priority(config, PRIVATE, env={"COMFY_REGISTRY_URL": PUBLIC}) == [Index(PRIVATE, "t1")]
    assert indexes_in_priority(config, env={"COMFY_REGISTRY_URL": PUBLIC}) == [Index(PUBLIC, None)]
    with pytest.raises(ConfigError, match="no registry configured"):
        indexes_in_priority(load_config(tmp_path / "none.toml"), env={})
    with pytest.raises(ConfigError, match="http"):
        indexes_in_priority(config, "private.example", env={})


def test_bad_config_file_names_the_file(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text("[[registries]]\nurl = 3\n")
    with pytest.raises(ConfigError, match=r"config\.toml: registries\[0\]"):
        load_config(path)


def test_a_name_on_a_higher_registry_is_never_taken_from_a_lower_one():
    regs = [Index(PRIVATE), Index(PUBLIC)]
    held = {PRIVATE: {"acme-nodes": "private copy"}, PUBLIC: {"acme-nodes": "impostor", "other": "public"}}

    def lookup(registry: Index, name: str) -> str | None:
        return held[registry.url].get(name)

    assert source_for_pack("acme-nodes", regs, lookup) == (regs[0], "private copy")
    assert source_for_pack("other", regs, lookup) == (regs[1], "public")
    missing = source_for_pack("nope", regs, lookup)
    assert isinstance(missing, PackNotFound) and PRIVATE in missing.message and PUBLIC in missing.message

    def private_down(registry: Index, name: str) -> str | None:
        if registry.url == PRIVATE:
            raise Offline(f"registry {PRIVATE} is not reachable")
        return lookup(registry, name)

    with pytest.raises(Offline):  # falling through to the public registry could hand out the impostor
        source_for_pack("acme-nodes", regs, private_down)
