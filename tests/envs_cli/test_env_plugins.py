"""`--env NAME` on nodes, plugins, run and serve: exactly that environment's plugins, nothing else installed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.envs_cli.conftest import COMFY, ROOT, comfy_process
from tests.harness.packs import custom_node, installed_distribution
from tests.registry_server.servers import free_port

# Hearth's own .venv has the first-party packs installed (editable): none of their nodes may appear under --env.
# (CheckpointLoaderSimple and the other generic loader nodes are the core's: every environment lists them.)
FIRST_PARTY_NODES = {"CLIPTextEncode", "KSampler", "LoraLoader", "VAEDecode"}


def test_nodes_and_plugins_list_only_the_environments_packs(make_env, tmp_path: Path):
    a, b = make_env("alpha"), make_env("beta")
    installed_distribution(a.site_packages, "alpha-nodes", "alpha_nodes_probe", "AlphaProbe")
    installed_distribution(b.site_packages, "beta-nodes", "beta_nodes_probe", "BetaProbe", version="2.1.0")
    custom_node(a.custom_nodes, "alpha_comfy_pack", "AlphaComfyNode")

    done = comfy_process("nodes", "--env", "alpha", "--json")
    assert done.returncode == 0, done.stderr
    names = set(json.loads(done.stdout))
    assert {"AlphaProbe", "AlphaComfyNode", "SaveImage", "EmptyImage"} <= names  # its packs plus the builtins
    assert "BetaProbe" not in names and not names & FIRST_PARTY_NODES
    assert json.loads(done.stdout)["AlphaProbe"]["category"] == "alpha-nodes"

    done = comfy_process("plugins", "--env", "beta", "--json")
    assert done.returncode == 0, done.stderr
    records = {r["name"]: r for r in json.loads(done.stdout)["plugins"]}
    installed = {name for name, r in records.items() if r["tier"] == "installed"}
    assert installed == {"beta-nodes"}
    assert records["beta-nodes"]["version"] == "2.1.0" and records["beta-nodes"]["node_count"] == 1
    assert records["beta-nodes"]["module"] == "beta_nodes_probe"
    assert {"executor", "builtin_nodes"} <= set(records)

    # Without --env nothing changes: the environments' packs are not on this Python's path.
    done = comfy_process("nodes", "--json", env={"HEARTH_DISABLE_PLUGINS": "sd,samplers,lora,video,dit,upscale,audio"})
    assert done.returncode == 0, done.stderr
    assert not {"AlphaProbe", "BetaProbe", "AlphaComfyNode"} & set(json.loads(done.stdout))


def test_custom_nodes_option_replaces_the_environments_folder(make_env, tmp_path: Path):
    env = make_env("gamma")
    custom_node(env.custom_nodes, "own_pack", "OwnPackNode")
    other = tmp_path / "elsewhere"
    custom_node(other, "other_pack", "OtherPackNode")
    done = comfy_process("nodes", "--env", "gamma", "--custom-nodes", other, "--json")
    assert done.returncode == 0, done.stderr
    names = set(json.loads(done.stdout))
    assert "OtherPackNode" in names and "OwnPackNode" not in names


def test_the_environments_copy_of_a_pack_wins_over_one_on_the_base_path(make_env, tmp_path: Path):
    env = make_env("delta")
    installed_distribution(env.site_packages, "shadow-nodes", "shadow_nodes_probe", "ShadowFromEnv")
    base = tmp_path / "base"
    (base / "shadow_nodes_probe").mkdir(parents=True)
    (base / "shadow_nodes_probe" / "__init__.py").write_text(
        "from hearth.core.hookspecs import hookimpl\n\n\n@hookimpl\ndef register_nodes():\n    return {}\n")
    done = comfy_process("nodes", "--env", "delta", "--json", env={"PYTHONPATH": f"{ROOT}:{base}"})
    assert done.returncode == 0, done.stderr
    assert "ShadowFromEnv" in json.loads(done.stdout)


@pytest.mark.slow
def test_run_uses_the_environments_nodes(make_env, tmp_path: Path):
    env = make_env("eps")
    installed_distribution(env.site_packages, "echo-nodes", "echo_nodes_probe", "EchoProbe")
    workflow = tmp_path / "wf.json"
    workflow.write_text(json.dumps({"1": {"class_type": "EchoProbe", "inputs": {"text": "hi"}}}))

    done = comfy_process("run", "--check", workflow, "--env", "eps")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok: 1 nodes, outputs 1"
    done = comfy_process("run", workflow, "--env", "eps", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr

    # The same workflow outside the environment: the node is unknown, one line, exit 2.
    done = comfy_process("run", "--check", workflow, env={"HEARTH_DISABLE_PLUGINS": "sd,samplers,lora,video,dit,upscale,audio"})
    assert done.returncode == 2
    assert "EchoProbe" in done.stderr and done.stderr.strip().count("\n") == 0


def test_an_unknown_environment_is_one_line_naming_the_ones_that_exist(make_env, home: Path):
    make_env("zeta")
    for command in (["nodes"], ["plugins"], ["run", "wf.json"], ["serve", "--data", "srv"]):
        done = comfy_process(*command, "--env", "nope")
        assert done.returncode == 2, (command, done.stderr)
        line = done.stderr.strip()
        assert line.count("\n") == 0 and "--env nope" in line and "zeta" in line, (command, line)
    assert not (home / "envs" / "nope").exists()  # --env never creates an environment


@pytest.mark.slow
def test_serve_with_env_serves_the_environments_nodes(make_env, tmp_path: Path):
    env = make_env("srv")
    installed_distribution(env.site_packages, "served-nodes", "served_nodes_probe", "ServedProbe")
    port = free_port()
    proc = subprocess.Popen([*COMFY, "serve", "--env", "srv", "--port", str(port),
                             "--data", str(tmp_path / "data")], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        info = _wait_json(f"http://127.0.0.1:{port}/object_info", proc)
        assert "ServedProbe" in info and "SaveImage" in info
        assert not set(info) & FIRST_PARTY_NODES
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_json(url: str, proc: subprocess.Popen, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"comfy serve exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            return httpx.get(url, timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout}s")
