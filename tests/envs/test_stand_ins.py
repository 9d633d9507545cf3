"""The stand-ins that pin an environment's base in every resolve: made once, reused, rebuilt when the base changes;
and the cheaper ways an install frees the packs it names (`unpin`, `newer_on_registry`)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from hearth.registry import base as base_mod
from hearth.registry import envs
from hearth.registry import install as installer
from hearth.registry.lock import unpin
from hearth.registry.sources import newer_on_registry


def pins(constraints: Path) -> dict[str, Path]:
    """name -> the stand-in wheel file its line in the constraints file names."""
    out = {}
    for line in constraints.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, url = line.partition(" @ ")
            out[name] = Path(unquote(urlparse(url).path))
    return out


def stub_version(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith("/METADATA"))
        return next(line.split(": ", 1)[1] for line in zf.read(meta).decode().splitlines()
                    if line.startswith("Version: "))


def test_stand_ins_are_made_at_create_reused_and_rebuilt_when_the_base_changes(home: Path, monkeypatch):
    env = envs.create_environment("stand-ins")
    made = [p for p in env.root.iterdir() if p.name.startswith(base_mod.STAND_INS)]
    assert len(made) == 1, "env create makes the stand-ins, so the first install need not"
    constraints = installer.base_constraints(env)
    assert constraints.parent == made[0]
    pinned = pins(constraints)
    assert set(pinned) == set(env.base) and "torch" in pinned
    assert all(p.parent == made[0] and p.is_file() for p in pinned.values())
    assert all(stub_version(pinned[n]) == v for n, v in env.base.items())
    before = {p.name: p.stat().st_mtime_ns for p in made[0].iterdir()}

    # Reused: no stand-in is written again by later resolves.
    def no_writes(*a: object) -> None:
        raise AssertionError("a stand-in was rebuilt although the base did not change")

    with monkeypatch.context() as m:
        m.setattr(base_mod, "_write_stub", no_writes)
        assert installer.base_constraints(env) == constraints
    assert {p.name: p.stat().st_mtime_ns for p in made[0].iterdir()} == before

    # A file gone: the set is rebuilt whole (uv would otherwise fail on a missing URL).
    pinned["torch"].unlink()
    assert installer.base_constraints(env) == constraints and pinned["torch"].is_file()

    # The recorded base changes: new stand-ins under a new digest; the old ones and a killed build's leftovers go.
    (env.root / ".stand-ins-999999999").mkdir()
    (env.root / "base").mkdir()  # the layout before stand-ins were keyed by their base
    info = json.loads((env.root / "env.json").read_text())
    info["base"]["torch"] = "9.9.9"
    (env.root / "env.json").write_text(json.dumps(info))
    rebuilt = installer.base_constraints(env)
    assert rebuilt.parent != constraints.parent and not constraints.parent.exists()
    assert stub_version(pins(rebuilt)["torch"]) == "9.9.9" and pins(rebuilt)["torch"].name.startswith("torch-9.9.9-")
    assert not (env.root / ".stand-ins-999999999").exists() and not (env.root / "base").exists()
    assert [p.name for p in env.root.iterdir() if p.name.startswith(".stand-ins-")] == []


def test_stand_ins_follow_a_moved_environment(home: Path):
    env = envs.create_environment("mover")
    old = installer.base_constraints(env)
    moved = env.root.with_name("moved")
    os.replace(env.root, moved)
    now = installer.base_constraints(envs.Environment("moved", moved))
    assert now.parent.name != old.parent.name  # the place is part of the key: the URLs name files that exist
    assert all(p.is_file() and p.parent == now.parent for p in pins(now).values())


UV_LOCK = '''lock-version = "1.0"
created-by = "uv"
requires-python = ">=3.11"

[[packages]]
name = "pack-a"
version = "1.0.0"
index = "http://127.0.0.1:1/simple"
wheels = [{ url = "http://127.0.0.1:1/files/aa/pack_a-1.0.0-py3-none-any.whl", hashes = { sha256 = "aa" } }]

[[packages]]
name = "Pack_B"
version = "2.0"
wheels = [{ url = "http://127.0.0.1:1/files/bb/pack_b-2.0-py3-none-any.whl", hashes = { sha256 = "bb" } }]

[[packages]]
name = "tinydep"
version = "1.0"
wheels = [{ url = "http://127.0.0.1:1/files/cc/tinydep-1.0-py3-none-any.whl", hashes = { sha256 = "cc" } }]
'''


def test_unpin_takes_the_named_packages_out_of_a_lock_and_nothing_else():
    import tomllib

    out, left = unpin(UV_LOCK, ["pack-b", "not-there"])
    assert left == set()
    names = {p["name"]: p["version"] for p in tomllib.loads(out)["packages"]}
    assert names == {"pack-a": "1.0.0", "tinydep": "1.0"}
    assert out.startswith('lock-version = "1.0"\ncreated-by = "uv"')
    out, left = unpin(UV_LOCK, ["pack-a", "Pack-B", "tinydep"])
    assert left == set() and tomllib.loads(out)["packages"] == []  # uv requires the key: an empty lock has it
    assert out.startswith('lock-version = "1.0"\ncreated-by = "uv"')
    inline = 'lock-version = "1.0"\npackages = [{ name = "pack-a", version = "1.0.0" }]\n'
    assert unpin(inline, ["pack-a"]) == (inline, {"pack-a"})  # left for --upgrade-package
    assert unpin("not = toml = at all", ["pack-a"]) == ("not = toml = at all", {"pack-a"})


def test_newer_on_registry_names_packs_a_stale_resolve_held_back():
    pages = {"pack-a": {"versions": ["1.0.0", "1.2.0", "2.0.0", "junk!"]}, "pack-b": {"versions": ["1.0"]}}
    assert newer_on_registry(["pack-a"], {"pack-a": "1.0.0"}, pages) == ["pack-a"]
    assert newer_on_registry(["pack-a<2"], {"pack-a": "1.2.0"}, pages) == []
    assert newer_on_registry(["pack-a<2"], {"pack-a": "1.0.0"}, pages) == ["pack-a"]
    assert newer_on_registry(["Pack_B", "pack-a"], {"pack-b": "1.0", "pack-a": "2.0.0"}, pages) == []
    assert newer_on_registry(["pack-c"], {"pack-c": "1.0"}, pages) == []  # no page: nothing to compare
    assert newer_on_registry(["pack-a"], {"pack-a": "1.0.0"}, {"pack-a": {"versions": ["3.0rc1"]}}) == []
    assert newer_on_registry(["pack-a>=3.0rc1"], {"pack-a": "3.0rc1"}, {"pack-a": {"versions": ["3.0rc2"]}}) \
        == ["pack-a"]
    # With a file list, what its files offer counts: a yanked newest version is no reason to resolve again.
    files = {"pack-a": {"versions": ["1.0.0", "1.1.0", "1.2.0"], "files": [
        {"filename": "pack_a-1.0.0-py3-none-any.whl", "yanked": False},
        {"filename": "pack_a-1.2.0-py3-none-any.whl", "yanked": "broken"},
        {"filename": "pack_a-1.1.0.tar.gz"}]}}
    assert newer_on_registry(["pack-a"], {"pack-a": "1.1.0"}, files) == []
    assert newer_on_registry(["pack-a"], {"pack-a": "1.0.0"}, files) == ["pack-a"]

