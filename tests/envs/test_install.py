"""comfy install and friends against a real registry: resolution, locks, hashes, generations, rollback, sync."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

from hearth.registry import envs
from hearth.registry_server.storage.services import wheel_key
from tests.envs.conftest import comfy_process, unique
from tests.harness.packs import Packs, project_pack


def lock_of(env: envs.Environment) -> dict[str, dict]:
    data = tomllib.loads(env.lock_path.read_text())
    return {p["name"]: p for p in data.get("packages", [])}


def site_names(env: envs.Environment) -> set[str]:
    return {p.name for p in env.site_packages.iterdir()}


def run_in_env(env: envs.Environment, code: str) -> str:
    proc = subprocess.run([str(env.python), "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_install_locks_every_artifact_with_its_hash_and_switches_generation(packs: Packs, comfy, home: Path):
    a = unique("pa-")
    packs.hearth(a, deps=("tinydep>=1.5,<2",))
    r = comfy("install", a)
    assert r.exit_code == 0, r.output
    env = envs.get_environment()
    assert env.generation == 1
    lock = lock_of(env)
    assert set(lock) == {a, "tinydep"}
    assert lock["tinydep"]["version"] == "1.5"  # the newest the pack allows, not 2.0
    for entry in lock.values():
        wheel = entry["wheels"][0]
        assert wheel["url"] and len(wheel["hashes"]["sha256"]) == 64
    pkg = a.replace("-", "_")
    # The pack's own package sits at the root of site-packages: its `hearth` entry point imports as written.
    assert run_in_env(env, f"import {pkg}.plugin, tinydep; print(tinydep.VERSION)") == "1.5"
    # A dependency's command runs on the environment's interpreter; activate names the generation's venv.
    script = env.python.parent / "tinydep-version"
    assert subprocess.run([str(script)], capture_output=True, text=True).stdout.strip() == "1.5"
    assert script.read_text().splitlines()[0] == f"#!{env.python}"
    assert f"VIRTUAL_ENV='{env.python.parent.parent}'" in (env.python.parent / "activate").read_text()
    eps = run_in_env(env, "from importlib.metadata import entry_points; "
                          "print(sorted(e.value for e in entry_points(group='hearth')))")
    assert f"{pkg}.plugin" in eps
    listed = json.loads(comfy("list", "--json").output)
    assert [(p["pack"], p["version"], p["registry"]) for p in listed["packs"]] == [(a, "1.0.0", packs.hub.url)]


def test_pack_on_pack_dependency_comes_from_the_registry(packs: Packs, comfy, home: Path):
    base, top = unique("pbase-"), unique("ptop-")
    packs.hearth(base, deps=("tinydep",))
    packs.hearth(top, deps=(f"{base}>=1.0",))
    r = comfy("install", top)
    assert r.exit_code == 0, r.output
    env = envs.get_environment()
    info = env.current().packs
    assert info[top]["requested"] == top
    assert info[base]["requested"] == "" and info[base]["registry"] == packs.hub.url
    run_in_env(env, f"import {base.replace('-', '_')}, {top.replace('-', '_')}")


def test_conflicting_packs_are_named_with_their_requirements(packs: Packs, comfy, home: Path):
    x, y = unique("px-"), unique("py-")
    packs.hearth(x, deps=("tinydep<1.5",))
    packs.hearth(y, deps=("tinydep>=2",))
    r = comfy("install", x, y)
    assert r.exit_code == 2
    line = r.output.strip().splitlines()[-1]  # above it: progress lines on stderr
    assert line.startswith("error: conflict: ")
    assert f"{x}" in line and f"{y}" in line and "tinydep<1.5" in line and "tinydep>=2" in line, line
    assert envs.get_environment().generation == 0


def test_a_pack_that_needs_old_torch_is_refused_naming_the_base(packs: Packs, comfy, home: Path):
    old = unique("poldtorch-")
    packs.hearth(old, deps=("torch<2",))
    r = comfy("install", old)
    assert r.exit_code == 2
    from importlib import metadata

    assert f"{old} 1.0.0 needs torch<2 but the environment's base has torch {metadata.version('torch')}" \
        in r.output, r.output
    assert envs.get_environment().generation == 0


def test_a_pack_that_needs_torch_uses_hearths_torch_and_never_fetches_one(packs: Packs, comfy, home: Path):
    # No PyPI is configured: were uv to look torch up on an index at all, resolution would fail.
    p = unique("ptorch-")
    packs.hearth(p, deps=("torch>=2", "numpy", "comfy-hearth>=0.1"))
    r = comfy("install", p)
    assert r.exit_code == 0, r.output
    env = envs.get_environment()
    assert set(lock_of(env)) == {p}
    assert not any(n.startswith(("torch", "numpy", "comfy_hearth")) for n in site_names(env))
    from importlib import metadata, util

    # The environment's interpreter finds Hearth's own torch (found, not imported: importing torch takes seconds).
    assert run_in_env(env, "from importlib import metadata, util; "
                           "print(metadata.version('torch'), util.find_spec('torch').origin)") == \
        f"{metadata.version('torch')} {util.find_spec('torch').origin}"


def test_comfyui_pack_goes_to_custom_nodes_with_its_requirements_in_the_lock(packs: Packs, comfy, home: Path):
    c = unique("pcomfy-")
    packs.comfyui(c, requirements=("otherdep>=0.3",), node_class="UpperCaser")
    r = comfy("install", c)
    assert r.exit_code == 0, r.output
    env = envs.get_environment()
    folder = env.custom_nodes / c
    assert "NODE_CLASS_MAPPINGS" in (folder / "__init__.py").read_text()
    assert set(lock_of(env)) == {c, "otherdep", "tinydep"}
    assert not any(n.startswith(c.replace("-", "_")) for n in site_names(env))  # not also in site-packages
    assert run_in_env(env, "import otherdep; print(otherdep.VERSION)") == "0.3"
    assert env.current().packs[c]["format"] == "comfyui"
    # A cached copy changed behind the cache's back is caught before it is unpacked into another environment.
    [cached] = (home / "cache" / "artifacts").rglob(f"{c.replace('-', '_')}-*.whl")
    with zipfile.ZipFile(cached, "a") as zf:
        zf.writestr(f"{c.replace('-', '_')}/evil.py", "x = 1\n")
    assert comfy("env", "create", "second").exit_code == 0
    r = comfy("install", c, "--env", "second")
    assert r.exit_code == 2 and "tampered or corrupt" in r.output, r.output
    assert envs.get_environment("second").generation == 0


def _tamper_stored_wheel(packs: Packs, detail: dict) -> None:
    sha, filename = detail["wheel"].rsplit("/", 2)[-2:]
    path = packs.hub.server.storage._path(wheel_key(sha, filename))
    path.write_bytes(path.read_bytes() + b"tampered")


def test_tampered_download_is_refused_and_the_environment_is_unchanged(packs: Packs, comfy, home: Path):
    good, bad = unique("pgood-"), unique("pbad-")
    packs.hearth(good)
    assert comfy("install", good).exit_code == 0
    env = envs.get_environment()
    before = (env.generation, env.lock_path.read_text(), sorted(site_names(env)))
    _tamper_stored_wheel(packs, packs.hearth(bad))
    r = comfy("install", bad)
    assert r.exit_code == 2
    assert "hash mismatch" in r.output and bad in r.output, r.output
    assert (env.generation, env.lock_path.read_text(), sorted(site_names(env))) == before
    cached = list((home / "cache" / "artifacts").rglob(f"{bad.replace('-', '_')}*"))
    assert cached == []  # the bad file was not kept


def test_a_lock_with_a_wrong_hash_is_refused_by_sync(packs: Packs, comfy, home: Path, tmp_path: Path):
    p = unique("plock-")
    packs.hearth(p, deps=("tinydep",))
    assert comfy("env", "create", "other").exit_code == 0
    assert comfy("install", p, "--env", "other").exit_code == 0
    other = envs.get_environment("other")
    text = other.lock_path.read_text()
    sha = lock_of(other)["tinydep"]["wheels"][0]["hashes"]["sha256"]
    forged = tmp_path / "pylock.toml"
    forged.write_text(text.replace(sha, "0" * 64))
    r = comfy("sync", "--lock", forged)  # into the default environment, whose cache has nothing yet
    assert r.exit_code == 2 and "hash mismatch" in r.output and "tinydep" in r.output, r.output
    assert envs.get_environment().generation == 0


def test_killed_install_leaves_the_environment_as_it_was(packs: Packs, comfy, home: Path, tmp_path: Path):
    first, second = unique("pfirst-"), unique("psecond-")
    packs.hearth(first)
    packs.hearth(second, deps=("tinydep",))
    assert comfy("install", first).exit_code == 0
    env = envs.get_environment()
    before = (env.generation, env.lock_path.read_text(), sorted(site_names(env)), env.current().packs)
    flag = tmp_path / "paused"
    proc = comfy_process("install", second, env={**os.environ, "HEARTH_TEST_PAUSE_BEFORE_SWITCH": str(flag)})
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "install never reached the switch"
        time.sleep(0.05)
    r = comfy("install", second)  # while the first holds the environment, a second change is refused
    assert r.exit_code == 2 and "being changed by another comfy command" in r.output, r.output
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (env.generation, env.lock_path.read_text(), sorted(site_names(env)), env.current().packs) == before
    assert [g.number for g in env.generations()] == [0, 1]  # the half-made generation is not history
    assert run_in_env(env, f"import {first.replace('-', '_')}; print('ok')") == "ok"
    r = comfy("install", second)  # the next change clears the half-built generation and succeeds
    assert r.exit_code == 0, r.output
    assert env.generation == 2
    assert [g.number for g in env.generations()] == [0, 1, 2]


def test_rollback_switches_back_and_forward(packs: Packs, comfy, home: Path):
    a, b = unique("pra-"), unique("prb-")
    packs.hearth(a)
    packs.hearth(b)
    assert comfy("install", a).exit_code == 0
    assert comfy("install", b).exit_code == 0
    env = envs.get_environment()
    assert set(env.current().packs) == {a, b}
    r = comfy("env", "rollback")
    assert r.exit_code == 0, r.output
    assert env.generation == 1 and set(env.current().packs) == {a}
    assert set(lock_of(env)) == {a}
    assert not any(n.startswith(b.replace("-", "_")) for n in site_names(env))
    assert comfy("env", "rollback", "2").exit_code == 0
    assert set(env.current().packs) == {a, b}
    history = json.loads(comfy("env", "history", "--json").output)
    assert [(h["generation"], h["current"]) for h in history] == [(0, False), (1, False), (2, True)]
    r = comfy("env", "rollback", "9")
    assert r.exit_code == 2 and "no generation 9" in r.output
    assert comfy("env", "rollback", "1").exit_code == 0
    r = comfy("env", "prune", "--keep", "1")
    assert r.exit_code == 0 and "removed generation 0" in r.output, r.output  # the newest and the current stay
    assert [g.number for g in env.generations()] == [1, 2] and env.generation == 1
    assert set(env.current().packs) == {a}


def test_uninstall_and_update(packs: Packs, comfy, home: Path):
    a, b = unique("pua-"), unique("pub-")
    packs.hearth(a, deps=("tinydep<2",))
    packs.hearth(b)
    assert comfy("install", a, b).exit_code == 0
    r = comfy("uninstall", b)
    assert r.exit_code == 0, r.output
    env = envs.get_environment()
    assert set(env.current().packs) == {a}
    packs.hearth(a, version="1.1.0", deps=("tinydep>=2",))
    r = comfy("update", a, "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["changed"] == {a: ["1.0.0", "1.1.0"]}
    assert lock_of(env)["tinydep"]["version"] == "2.0"
    r = comfy("uninstall", "nope")
    assert r.exit_code == 2 and "nope" in r.output
    generation = env.generation
    for again in (("install", a), ("update",)):
        r = comfy(*again)
        assert r.exit_code == 0 and "nothing to change" in r.output, r.output
    assert env.generation == generation


def test_sync_restores_the_lock_and_a_noop_sync_is_fast(packs: Packs, comfy, home: Path):
    p = unique("psync-")
    packs.hearth(p, deps=("tinydep",))
    assert comfy("install", p).exit_code == 0
    env = envs.get_environment()
    started = time.perf_counter()
    r = comfy("sync")
    assert r.exit_code == 0 and "already in sync" in r.output
    assert time.perf_counter() - started < 1.0
    for d in env.site_packages.glob("tinydep*"):  # someone broke the environment by hand
        import shutil

        shutil.rmtree(d)
    r = comfy("sync", "--offline")  # everything is cached: no network needed
    assert r.exit_code == 0, r.output
    assert env.generation == 2
    assert run_in_env(env, "import tinydep; print(tinydep.VERSION)") == "2.0"
    paths = env.paths()
    assert (paths.number, paths.site_packages, paths.custom_nodes) == (2, env.site_packages, env.custom_nodes)
    extra = env.site_packages / "stray-1.0.dist-info"  # something installed behind the lock's back
    extra.mkdir()
    r = comfy("sync", "--offline")
    assert r.exit_code == 0 and env.generation == 3, r.output
    assert not (env.site_packages / "stray-1.0.dist-info").exists()


def test_sync_from_a_lock_works_offline_from_the_cache(packs: Packs, comfy, home: Path, tmp_path: Path):
    p = unique("poff-")
    packs.hearth(p, deps=("otherdep",))
    assert comfy("install", p).exit_code == 0
    saved = tmp_path / "pylock.toml"
    saved.write_text(envs.get_environment().lock_path.read_text())
    assert comfy("env", "create", "copy").exit_code == 0
    # A registry that cannot be reached: sync must not need it.
    (Path(os.environ["COMFY_CONFIG"])).write_text('[[registries]]\nurl = "http://127.0.0.1:9"\n')
    r = comfy("sync", "--lock", saved, "--env", "copy", "--offline")
    assert r.exit_code == 0, r.output
    copy = envs.get_environment("copy")
    assert copy.lock_path.read_text() == saved.read_text()
    assert set(copy.current().packs) == {p}
    run_in_env(copy, f"import {p.replace('-', '_')}, otherdep, tinydep")


def test_unknown_pack_and_bad_spec_are_one_line_errors(packs: Packs, comfy, home: Path):
    r = comfy("install", "no-such-pack-xyz")
    last = r.output.strip().splitlines()[-1]  # after the progress lines, one line of error
    assert r.exit_code == 2 and last.startswith("error: pack 'no-such-pack-xyz' not found on http"), r.output
    r = comfy("install", "bad spec!!")
    assert r.exit_code == 2 and "not valid" in r.output
    r = comfy("install", "x", "--env", "missing-env")
    assert r.exit_code == 2 and "no environment named 'missing-env'" in r.output


@pytest.mark.skipif(sys.platform != "linux", reason="flock and symlink semantics checked on Linux")
def test_lock_without_installing(packs: Packs, comfy, home: Path):
    p = unique("ponly-")
    packs.hearth(p, deps=("tinydep<1.5",))
    r = comfy("lock", p)
    assert r.exit_code == 0, r.output
    data = tomllib.loads(r.output)
    assert {x["name"]: x["version"] for x in data["packages"]} == {p: "1.0.0", "tinydep": "1.0"}
    assert envs.get_environment().generation == 0


def test_a_pack_with_no_installable_version_says_so(packs: Packs, comfy, home: Path):
    name = unique("pflagged-")
    folder = project_pack(packs.work, name, "1.0.0", packs.publisher)
    (folder / name.replace("-", "_") / "__init__.py").write_text(
        "exec(__import__('base64').b64decode('cHJpbnQoMSk='))\n")  # the registry's scan flags this
    assert packs.publish(folder)["status"] == "flagged"
    r = comfy("install", name)
    assert r.exit_code == 2
    assert f"pack {name!r} is on {packs.hub.url} but none of its versions can be installed" in r.output, r.output


def test_install_offline_from_a_warm_cache(comfy, home: Path, tmp_path: Path):
    # A registry of its own, stopped halfway: what it served before must still install, offline.
    from tests.registry_server.conftest import settings_for
    from tests.registry_server.helpers import Hub
    from tests.registry_server.servers import RegistryProcess

    server = RegistryProcess(settings_for(tmp_path / "registry")).start()
    try:
        own = Packs(Hub(server.url, server.settings), tmp_path / "packs")
        p = unique("pwarm-")
        own.hearth(p, deps=("otherdep",))
        Path(os.environ["COMFY_CONFIG"]).write_text(f'[[registries]]\nurl = "{server.url}"\n')
        assert comfy("install", p).exit_code == 0
        assert comfy("env", "create", "offline").exit_code == 0
    finally:
        own.hub.close()
        server.stop()
    r = comfy("install", p, "--env", "offline", "--offline")
    assert r.exit_code == 0, r.output
    offline = envs.get_environment("offline")
    assert set(offline.current().packs) == {p}
    assert lock_of(offline) == lock_of(envs.get_environment())
    r = comfy("uninstall", p, "--env", "offline", "--offline")
    assert r.exit_code == 0, r.output
    r = comfy("install", p, "--env", "offline")  # online, the stopped registry is an error that names it
    assert r.exit_code == 2 and server.url in r.output and "not reachable" in r.output, r.output


def test_the_only_pack_installs_again_at_another_version(packs: Packs, comfy, home: Path):
    # Its lock, less the pack being changed, held no package at all; uv refused that preference file ("missing
    # field `packages`") and the second install failed.
    a = unique("ponly-")
    packs.hearth(a)
    assert comfy("install", f"{a}==1.0.0").exit_code == 0
    packs.hearth(a, version="1.0.1")
    r = comfy("install", f"{a}==1.0.1", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["changed"] == {a: ["1.0.0", "1.0.1"]}
    assert lock_of(envs.get_environment())[a]["version"] == "1.0.1"


def test_install_again_takes_a_version_published_since(packs: Packs, comfy, home: Path, monkeypatch):
    a = unique("pnew-")
    packs.hearth(a, deps=("tinydep<2",))
    assert comfy("install", a).exit_code == 0
    env = envs.get_environment()
    dep = lock_of(env)["tinydep"]["version"]
    packs.hearth(a, version="1.1.0", deps=("tinydep<2",))
    r = comfy("install", a, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["changed"] == {a: ["1.0.0", "1.1.0"]}
    assert lock_of(env)["tinydep"]["version"] == dep  # what was not named keeps its version

    # A resolve that missed a version the registry's page lists (a cached page) is redone, refreshing the pack.
    from hearth.registry import install as installer

    calls = []
    real = installer.resolve
    monkeypatch.setattr(installer, "resolve", lambda *a, **k: calls.append(k.get("refresh")) or real(*a, **k))
    monkeypatch.setattr(installer, "newer_on_registry", lambda specs, chosen, pages: [a] if len(calls) == 1 else [])
    r = comfy("install", a)
    assert r.exit_code == 0 and "nothing to change" in r.output, r.output
    assert calls == [False, True]
