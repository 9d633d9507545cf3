"""The trust file and the policy a command builds from it (hearth/registry/trust.py): concurrent edits all land,
install records of publisher trust are read only where the user opted in, and a registry that cannot say never
fails an install."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hearth.core.trust import TrustPolicy
from hearth.registry.trust import (
    TrustConfig,
    TrustConfigError,
    editing_trust,
    load_trust,
    policy_for,
    record_publishers,
    save_trust,
    trust_path,
)


def test_the_trust_file_sits_beside_the_registry_config(tmp_path: Path) -> None:
    assert trust_path({"COMFY_CONFIG": str(tmp_path / "c" / "config.toml")}) == tmp_path / "c" / "trust.toml"
    assert trust_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "hearth" / "trust.toml"


def test_a_round_trip_keeps_canonical_names_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "trust.toml"
    config = TrustConfig(path)
    config.trust("My_Pack")
    config.trust("Net.Pack", network=True)
    config.publishers = True
    save_trust(config)
    assert load_trust(path) == TrustConfig(path, {"my-pack"}, {"net-pack"}, True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trust.toml"]
    assert load_trust(tmp_path / "missing.toml") == TrustConfig(tmp_path / "missing.toml")


def test_an_edit_that_fails_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "trust.toml"
    with pytest.raises(RuntimeError), editing_trust(path) as config:
        config.trust("half-done")
        raise RuntimeError("interrupted")
    assert not path.exists()


def test_concurrent_trust_commands_all_land(tmp_path: Path) -> None:
    env = {**os.environ, "COMFY_CONFIG": str(tmp_path / "config.toml"), "HEARTH_HOME": str(tmp_path / "home")}
    names = [f"pack-{i}" for i in range(8)]
    procs = [subprocess.Popen([sys.executable, "-m", "hearth.cli.main", "trust", name], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in names]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert load_trust(tmp_path / "trust.toml").trusted == set(names)


def _generation(root: Path, packs: dict[str, dict]) -> Path:
    """A generation folder as an install leaves it: generation.json beside custom_nodes/."""
    (root / "custom_nodes").mkdir(parents=True)
    (root / "generation.json").write_text(json.dumps({"packs": packs}))
    return root / "custom_nodes"


def test_publisher_trust_from_install_records_counts_only_where_the_user_opted_in(tmp_path: Path) -> None:
    hub = "http://hub.example"
    custom_nodes = _generation(tmp_path / "gen", {
        "acme-nodes": {"registry": hub, "publisher": "acme", "publisher_trusted": True, "folder": "ComfyUI-Acme"},
        "shady-nodes": {"registry": hub, "publisher": "shady", "publisher_trusted": False, "folder": "shady"},
        "local-nodes": {"registry": "", "publisher": "", "publisher_trusted": True, "folder": ""},
    })
    path = tmp_path / "trust.toml"
    env = {"HEARTH_ISOLATION": "untrusted"}
    assert policy_for(custom_nodes=[custom_nodes], env=env, path=path).publisher_packs == frozenset()

    save_trust(TrustConfig(path, publishers=True))
    policy = policy_for(custom_nodes=[custom_nodes], env=env, path=path)
    assert policy.publisher_packs == {("acme-nodes", "acme", hub), ("comfyui-acme", "acme", hub)}
    for name in ("acme-nodes", "ComfyUI-Acme"):  # the pack id and the folder the loader names it by
        assert policy.placement(name).why == f"publisher trusted by {hub}"
    assert policy.placement("shady").why == "not trusted"
    assert policy.placement("local-nodes").why == "not trusted"  # no registry vouched for it
    # A plain custom_nodes folder (no install record beside it) adds nothing.
    plain = tmp_path / "plain" / "custom_nodes"
    plain.mkdir(parents=True)
    assert policy_for(custom_nodes=[plain], env=env, path=path).publisher_packs == frozenset()


def test_the_policy_mode_comes_from_the_flag_then_the_variable_then_untrusted(tmp_path: Path) -> None:
    path = tmp_path / "trust.toml"
    assert policy_for(env={}, path=path) == TrustPolicy(mode="untrusted")
    assert policy_for(env={"HEARTH_ISOLATION": "all"}, path=path).mode == "all"
    assert policy_for("off", env={"HEARTH_ISOLATION": "all"}, path=path).mode == "off"
    with pytest.raises(TrustConfigError, match="HEARTH_ISOLATION: 'x' is not an isolation mode"):
        policy_for(env={"HEARTH_ISOLATION": "x"}, path=path)


def test_a_registry_that_cannot_say_leaves_the_pack_untrusted_and_the_install_going() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    packs = {"a": {"registry": url}, "b": {"registry": ""}}
    record_publishers(packs, {url: None})
    assert packs == {"a": {"registry": url, "publisher": "", "publisher_trusted": False},
                     "b": {"registry": "", "publisher": "", "publisher_trusted": False}}
    offline = {"a": {"registry": url}}
    record_publishers(offline, {}, offline=True)
    assert offline["a"]["publisher_trusted"] is False
