"""Own dependency layers (registry/layers.py) against a real registry and real uv: two ComfyUI-format packs whose
requirements conflict (``tinydep<2`` and ``tinydep>=2``) both install, each with its own layer; the lock, layers.json,
sync from the lock, rollback, the ``always`` setting, and a pack whose own requirements are impossible."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hearth.registry import envs
from hearth.registry.config import ConfigError
from hearth.registry.layers import layer_mode, read_layers
from hearth.registry.lock import Artifact, LockedPackage, LockError, lock_text, parse_lock
from tests.envs.conftest import unique
from tests.harness.packs import Packs


def lock_entries(env: envs.Environment) -> list[tuple[str, str, str]]:
    """(name, version, layer) of every package of the environment's lock, read as plain TOML."""
    data = tomllib.loads(env.lock_path.read_text())
    return sorted((p["name"], p["version"], p.get("tool", {}).get("hearth", {}).get("layer", ""))
                  for p in data.get("packages", []))


def version_in_layer(layer: Path) -> str:
    """tinydep's version as a process that puts `layer` first on sys.path (as a pack host does) imports it."""
    code = f"import sys; sys.path.insert(0, {str(layer)!r}); import tinydep; print(tinydep.VERSION, tinydep.__file__)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    version, where = proc.stdout.split()
    assert Path(where).is_relative_to(layer), where
    return version


def venv_dists(env: envs.Environment) -> set[str]:
    return {p.name.split("-")[0] for p in env.site_packages.glob("*.dist-info")}


@pytest.fixture
def two(packs: Packs) -> tuple[str, str]:
    """Two published ComfyUI-format packs: one needs tinydep<2, the other tinydep>=2."""
    old, new = unique("lold-"), unique("lnew-")
    packs.comfyui(old, requirements=("tinydep<2",), node_class=unique("OldDep"))
    packs.comfyui(new, requirements=("tinydep>=2",), node_class=unique("NewDep"))
    return old, new


def test_conflicting_packs_each_get_their_own_layer(two: tuple[str, str], comfy, home: Path, tmp_path: Path):
    old, new = two
    r = comfy("install", old, new)
    assert r.exit_code == 0, r.output
    assert "its own dependency layer" in r.output, r.output
    env = envs.get_environment()
    gen = env.generation_path
    assert env.generation == 1

    # layers.json beside custom_nodes/ (contract C): each pack's folder, its layer's path, its packages.
    record = json.loads((env.custom_nodes / ".." / "layers.json").read_text())
    assert record == {old: {"path": f"layers/{old}", "pack": old, "packages": {"tinydep": "1.5"}},
                      new: {"path": f"layers/{new}", "pack": new, "packages": {"tinydep": "2.0"}}}
    # Each layer holds its own version; the venv holds neither; the packs themselves are in custom_nodes/.
    assert version_in_layer(gen / "layers" / old) == "1.5"
    assert version_in_layer(gen / "layers" / new) == "2.0"
    assert "tinydep" not in venv_dists(env)
    for pack in (old, new):
        assert "NODE_CLASS_MAPPINGS" in (env.custom_nodes / pack / "__init__.py").read_text()
        assert not (gen / "layers" / pack / pack.replace("-", "_")).exists()
    # The lock says which layer each package belongs to; every entry keeps its hash.
    assert lock_entries(env) == sorted([(old, "1.0.0", old), (new, "1.0.0", new), ("tinydep", "1.5", old),
                                        ("tinydep", "2.0", new)])
    assert all(len(p.artifact.sha256) == 64 for p in parse_lock(env.lock_path.read_text()).packages)
    packs = env.current().packs
    assert packs[old]["layer"] == f"layers/{old}" and packs[new]["format"] == "comfyui"

    # Resolved again, the layers come out the same (each from its own part of the lock): nothing to change.
    r = comfy("install", old, new)
    assert r.exit_code == 0 and "nothing to change" in r.output, r.output
    assert envs.get_environment().generation == 1

    # The lock alone rebuilds the same layers in another environment (hashes checked), and a no-op sync knows
    # the generation matches its lock, layers included.
    r = comfy("sync")
    assert r.exit_code == 0 and "already in sync" in r.output, r.output
    saved = tmp_path / "pylock.toml"
    saved.write_text(env.lock_path.read_text())
    assert comfy("env", "create", "copy").exit_code == 0
    r = comfy("sync", "--lock", saved, "--env", "copy")
    assert r.exit_code == 0, r.output
    copy = envs.get_environment("copy")
    assert read_layers(copy.generation_path) == record
    assert version_in_layer(copy.generation_path / "layers" / old) == "1.5"
    assert version_in_layer(copy.generation_path / "layers" / new) == "2.0"
    assert copy.lock_path.read_text() == saved.read_text()

    # A layer's package changed behind the lock's back: the environment is out of sync, and sync repairs it.
    (gen / "layers" / old / "tinydep-1.5.dist-info").rename(gen / "layers" / old / "tinydep-9.9.dist-info")
    r = comfy("sync")
    assert r.exit_code == 0 and "already in sync" not in r.output, r.output
    assert envs.get_environment().generation == 2
    assert version_in_layer(envs.get_environment().generation_path / "layers" / old) == "1.5"

    # Once the conflict is gone, the remaining pack joins the venv again (mode "conflicts"); rollback restores
    # the generation with both layers, exactly as it was.
    r = comfy("uninstall", new)
    assert r.exit_code == 0, r.output
    env = envs.get_environment()
    assert read_layers(env.generation_path) == {}
    assert "tinydep" in venv_dists(env) and not (env.generation_path / "layers").exists()
    assert lock_entries(env) == sorted([(old, "1.0.0", ""), ("tinydep", "1.5", "")])
    assert comfy("env", "rollback", "1").exit_code == 0
    env = envs.get_environment()
    assert env.generation == 1 and read_layers(env.generation_path) == record
    assert version_in_layer(env.generation_path / "layers" / new) == "2.0"


def test_always_layers_even_without_a_conflict(packs: Packs, comfy, home: Path):
    alone, py = unique("lalone-"), unique("lpy-")
    packs.comfyui(alone, requirements=("otherdep>=0.3", "torch>=2"), node_class=unique("Alone"))
    packs.hearth(py, deps=("tinydep==1.0",))  # a Hearth-format pack runs in-process: never layered
    config = Path(os.environ["COMFY_CONFIG"])
    config.write_text('layers = "always"\n' + config.read_text())
    assert layer_mode() == "always"
    r = comfy("install", alone, py)
    assert r.exit_code == 0, r.output
    env = envs.get_environment()
    layer = env.generation_path / "layers" / alone
    assert read_layers(env.generation_path) == {
        alone: {"path": f"layers/{alone}", "pack": alone, "packages": {"otherdep": "0.3", "tinydep": "2.0"}}}
    assert version_in_layer(layer) == "2.0"  # the layer's own resolution: the newest tinydep otherdep allows
    assert not list(layer.glob("torch*"))  # the base (torch above all) is Hearth's, shared, never in a layer
    assert "otherdep" not in venv_dists(env)
    assert {"tinydep", py.replace("-", "_")} <= venv_dists(env)  # the Hearth pack's tinydep==1.0, in the venv
    assert ("tinydep", "1.0", "") in lock_entries(env) and ("tinydep", "2.0", alone) in lock_entries(env)
    # The lock chooses again only what changed: a second install of the same packs changes nothing.
    r = comfy("install", alone, py)
    assert r.exit_code == 0 and "nothing to change" in r.output.lower(), r.output


def test_a_pack_whose_own_requirements_are_impossible_fails_with_uvs_reason(two: tuple[str, str], packs: Packs,
                                                                            comfy, home: Path):
    old, new = two
    assert comfy("install", old, new).exit_code == 0
    env = envs.get_environment()
    before = (env.generation, env.lock_path.read_text(), read_layers(env.generation_path))
    bad = unique("limpossible-")
    packs.comfyui(bad, requirements=("tinydep>=9",), node_class=unique("Impossible"))
    r = comfy("install", bad)
    assert r.exit_code == 2, r.output
    line = r.output.strip().splitlines()[-1]
    assert f"pack {bad!r} cannot be installed, not even alone in its own dependency layer: " in line, line
    assert "tinydep>=9" in line, line  # uv's reason, named
    env = envs.get_environment()
    assert (env.generation, env.lock_path.read_text(), read_layers(env.generation_path)) == before
    assert sorted(p.name for p in (env.root / "generations").iterdir()) == ["0", "1"]  # nothing left behind


def test_a_hearth_pack_in_a_conflict_stays_in_the_venv_and_the_comfyui_pack_gets_the_layer(packs: Packs, comfy,
                                                                                           home: Path):
    py, node = unique("lhearth-"), unique("lcomfy-")
    packs.hearth(py, deps=("tinydep<2",))
    packs.comfyui(node, requirements=("tinydep>=2",), node_class=unique("Comfy"))
    r = comfy("install", py, node)
    assert r.exit_code == 0, r.output
    env = envs.get_environment()
    assert set(read_layers(env.generation_path)) == {node}
    assert version_in_layer(env.generation_path / "layers" / node) == "2.0"
    assert lock_entries(env) == sorted([(py, "1.0.0", ""), ("tinydep", "1.5", ""), (node, "1.0.0", node),
                                        ("tinydep", "2.0", node)])
    # Bytecode is compiled at install: the pack host sees the layer read-only.
    assert list((env.generation_path / "layers" / node / "tinydep").glob("__pycache__/*.pyc"))


def test_never_keeps_the_joint_resolution_and_its_conflict(two: tuple[str, str], comfy, home: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COMFY_LAYERS", "never")
    old, new = two
    r = comfy("install", old, new)
    assert r.exit_code == 2
    line = r.output.strip().splitlines()[-1]
    assert line.startswith("error: conflict: ") and "tinydep<2" in line and "tinydep>=2" in line, line
    assert envs.get_environment().generation == 0


# -- no registry needed ------------------------------------------------------------------------------------------------

def test_layer_mode_from_the_environment_variable_and_its_errors(home: Path, monkeypatch: pytest.MonkeyPatch):
    assert layer_mode() == "conflicts"
    monkeypatch.setenv("COMFY_LAYERS", "Always")
    assert layer_mode() == "always"
    monkeypatch.setenv("COMFY_LAYERS", "sometimes")
    with pytest.raises(ConfigError, match=r"\$COMFY_LAYERS = 'sometimes' is not a layer mode: use one of conflicts"):
        layer_mode()
    monkeypatch.delenv("COMFY_LAYERS")
    Path(os.environ["COMFY_CONFIG"]).write_text('layers = "all"\n')
    with pytest.raises(ConfigError, match="config.toml: layers = 'all' is not a layer mode"):
        layer_mode()


def test_the_lock_records_layers_and_refuses_a_name_twice_in_one_layer():
    art = Artifact("tinydep-1.0-py3-none-any.whl", "file:///w/tinydep-1.0-py3-none-any.whl", "a" * 64)
    art2 = Artifact("tinydep-2.0-py3-none-any.whl", "file:///w/tinydep-2.0-py3-none-any.whl", "b" * 64)
    packages = [LockedPackage("tinydep", "1.0", art, layer="pack-a"), LockedPackage("tinydep", "2.0", art2),
                LockedPackage("tinydep", "2.0", art2, layer="pack-b")]
    text = lock_text(packages)
    assert '[packages.tool.hearth]\nlayer = "pack-a"' in text
    assert sorted((p.version, p.layer) for p in parse_lock(text).packages) == \
        [("1.0", "pack-a"), ("2.0", ""), ("2.0", "pack-b")]
    with pytest.raises(LockError, match="tinydep appears twice in layer 'pack-a'"):
        parse_lock(lock_text(packages[:1]) + lock_text(packages[:1]).split("\n", 3)[3])
