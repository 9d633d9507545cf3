"""``comfy trust`` / ``comfy untrust`` through the real CLI, ``--isolation`` and ``HEARTH_ISOLATION``, and what
``comfy plugins`` says about where each pack runs; the refusal of untrusted Hearth-format packs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness.packs import installed_distribution

pytestmark = pytest.mark.isolation  # HEARTH_ISOLATION=untrusted, the CLI's own default


@pytest.fixture(autouse=True)
def config(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private config folder: trust.toml lands beside $COMFY_CONFIG, never in the user's own."""
    path = workdir / "cfg" / "config.toml"
    monkeypatch.setenv("COMFY_CONFIG", str(path))
    monkeypatch.setenv("HEARTH_HOME", str(workdir / "hearth-home"))
    return path.parent / "trust.toml"


def comfy_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``comfy`` as its own process (what persists must survive the process)."""
    return subprocess.run([sys.executable, "-m", "hearth.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def third_party(workdir: Path, monkeypatch: pytest.MonkeyPatch, dist: str = "acme-probe") -> tuple[Path, str]:
    """An installed third-party Hearth-format pack (entry point ``acme_probe``) this Python can see."""
    tag = workdir.name.replace("-", "_").lower()[-20:]
    module, node = f"acme_probe_{tag}", f"AcmeProbe{tag.title().replace('_', '')}"
    site = workdir / "site"
    installed_distribution(site, dist, module, node, entry_point="acme_probe")
    monkeypatch.syspath_prepend(str(site))
    return site, node


def plugins_json(comfy: Callable[..., Any], *args: str) -> dict[str, Any]:
    out = comfy("plugins", "--json", *args)
    assert out.exit_code == 0, out.stderr
    return json.loads(out.stdout)


def records(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in data["plugins"]}


# -- trust, untrust, list ------------------------------------------------------------------------------------

def test_trust_untrust_and_list_persist_across_processes(config: Path) -> None:
    listed = comfy_process("trust", "--list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == {"file": str(config), "trusted": [], "network": [], "publishers": False}

    done = comfy_process("trust", "ComfyUI_Acme.Nodes", "other-pack")
    assert done.returncode == 0, done.stderr
    assert "trusted ComfyUI_Acme.Nodes: it runs in Hearth's process" in done.stdout
    assert "warning: no installed pack is named 'other-pack'" in done.stderr  # allowed: trust before install
    network = comfy_process("trust", "api-nodes", "--network")
    assert network.returncode == 0 and "api-nodes may use the network from its pack host" in network.stdout
    assert "recorded anyway: its pack host may use the network once installed" in network.stderr
    assert comfy_process("trust", "--publishers", "on").returncode == 0

    shown = json.loads(comfy_process("trust", "--json").stdout)  # `comfy trust` alone lists too
    assert shown == {"file": str(config), "trusted": ["comfyui-acme-nodes", "other-pack"], "network": ["api-nodes"],
                     "publishers": True}

    gone = comfy_process("untrust", "comfyui_acme_nodes")  # any spelling of the same name
    assert gone.returncode == 0 and "is no longer trusted" in gone.stdout
    assert comfy_process("untrust", "api-nodes", "--network").returncode == 0
    assert comfy_process("trust", "--publishers", "off").returncode == 0
    assert json.loads(comfy_process("trust", "--list", "--json").stdout) == {
        "file": str(config), "trusted": ["other-pack"], "network": [], "publishers": False}

    table = comfy_process("trust", env={"COLUMNS": "200"})
    assert "other-pack" in table.stdout and "registry publisher trust: off" in table.stdout


def test_untrusting_a_pack_that_was_not_trusted_changes_nothing_and_says_so(comfy: Any, config: Path) -> None:
    out = comfy("untrust", "never-trusted")
    assert out.exit_code == 0 and "never-trusted was not trusted; nothing changed" in out.stderr
    assert not config.exists() or "never-trusted" not in config.read_text()


def test_a_misspelled_pack_gets_a_suggestion(comfy: Any, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    third_party(workdir, monkeypatch)
    out = comfy("trust", "acme-prob")
    assert out.exit_code == 0
    assert "warning: no installed pack is named 'acme-prob' (did you mean 'acme-probe'?)" in out.stderr
    assert "warning" not in comfy("trust", "acme-probe").stderr  # an installed one is known


def test_bad_trust_commands_are_one_line_errors(comfy: Any, config: Path) -> None:
    for args, message in ((("trust", "../evil"), "'../evil' is not a pack name"),
                          (("trust", "--network"), "--network needs the pack to allow"),
                          (("trust", "x", "--json"), "--json goes with --list"),
                          (("trust", "--list", "x"), "--list shows the trust list; give it alone"),
                          (("trust", "--publishers", "maybe"), "'maybe' is not one of 'on', 'off'"),
                          (("untrust",), "Missing argument")):
        out = comfy(*args)
        assert out.exit_code == 2, (args, out.stdout)
        assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr, (args, out.stderr)
    assert not config.exists()


def test_a_broken_trust_file_is_named(comfy: Any, config: Path) -> None:
    config.parent.mkdir(parents=True)
    config.write_text("trusted = 'not-a-list'\n")
    for args in (("trust", "--list"), ("trust", "x"), ("plugins",), ("run", "--check", "missing.json")):
        out = comfy(*args)
        assert out.exit_code == 2, (args, out.stdout)
        assert f"error: {config}: trusted must be a list of pack names" in out.stderr, (args, out.stderr)
    config.write_text("trusted = [\n")
    assert f"{config}: not valid TOML" in comfy("trust").stderr
    config.write_text("publishers = 'yes'\n")
    assert "publishers must be true or false" in comfy("trust").stderr
    config.write_text("trustd = []\n")
    assert "unknown setting trustd" in comfy("trust").stderr


def test_trusting_a_first_party_plugin_says_it_always_runs_in_process(comfy: Any) -> None:
    out = comfy("trust", "hearth-sd")
    assert out.exit_code == 0 and "hearth-sd is one of Hearth's own plugins" in out.stdout


# -- --isolation and HEARTH_ISOLATION -----------------------------------------------------------------------

@pytest.mark.parametrize("command", ["run", "serve", "plugins", "nodes"])
def test_a_bad_isolation_value_is_named(comfy: Any, command: str, write_json: Any) -> None:
    args = [command, "--isolation", "sometimes"]
    if command == "run":
        args.insert(1, str(write_json("w.json", {})))
    out = comfy(*args)
    assert out.exit_code == 2
    assert out.stderr.strip() == ("error: --isolation: 'sometimes' is not an isolation mode; use one of untrusted, "
                                  "all, off (untrusted: packs you have not trusted run isolated; all: every pack "
                                  "but Hearth's own runs isolated; off: every pack runs in Hearth's process, at "
                                  "your own risk)")


def test_isolation_comes_from_the_flag_then_the_variable_then_untrusted(comfy: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    assert plugins_json(comfy)["isolation"] == "untrusted"
    monkeypatch.setenv("HEARTH_ISOLATION", "all")
    assert plugins_json(comfy)["isolation"] == "all"
    assert plugins_json(comfy, "--isolation", "OFF")["isolation"] == "off"
    monkeypatch.delenv("HEARTH_ISOLATION")
    assert plugins_json(comfy)["isolation"] == "untrusted"
    monkeypatch.setenv("HEARTH_ISOLATION", "bogus")
    out = comfy("plugins")
    assert out.exit_code == 2 and "error: HEARTH_ISOLATION: 'bogus' is not an isolation mode" in out.stderr
    assert plugins_json(comfy, "--isolation", "all")["isolation"] == "all"  # the flag wins over a bad variable


def test_isolation_reaches_the_runtime_of_run(comfy: Any, write_json: Any, workdir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`comfy run` passes --isolation into the Runtime: the third-party pack's node is refused, then allowed."""
    _, node = third_party(workdir, monkeypatch)
    workflow = write_json("w.json", {"1": {"class_type": node, "inputs": {"text": "hi"}}})
    refused = comfy("run", "--check", str(workflow))
    assert refused.exit_code != 0
    assert ("warning: plugin acme_probe not loaded: Hearth-format pack acme-probe runs only in-process: trust it "
            "with `comfy trust acme-probe` or use --isolation off (see `comfy plugins`)") in refused.stderr
    assert node in refused.stderr  # the workflow names a node type no loaded plugin has
    allowed = comfy("run", "--check", str(workflow), "--isolation", "off")
    assert allowed.exit_code == 0, allowed.stderr
    assert "acme_probe not loaded" not in allowed.stderr


# -- comfy plugins: where each pack runs and why -----------------------------------------------------------------

def test_plugins_shows_where_first_party_plugins_run(comfy: Any) -> None:
    for mode in ("untrusted", "all", "off"):
        found = records(plugins_json(comfy, "--isolation", mode))
        for name in ("executor", "builtin_nodes", "model_loaders", "comfy_compat"):
            assert (found[name]["placement"], found[name]["placement_why"], found[name]["network"]) == \
                ("in-process", "first-party plugin", False), (mode, name)


def test_plugins_shows_the_hearth_format_refusal_and_the_way_out(comfy: Any, workdir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _, node = third_party(workdir, monkeypatch)
    record = records(plugins_json(comfy))["acme_probe"]
    assert record["error"] == ("Hearth-format pack acme-probe runs only in-process: trust it with "
                               "`comfy trust acme-probe` or use --isolation off")
    assert (record["placement"], record["placement_why"], record["node_count"]) == ("", "not trusted", 0)
    assert record["distribution"] == "acme-probe"
    assert records(plugins_json(comfy, "--isolation", "all"))["acme_probe"]["placement_why"] == "--isolation all"

    off = records(plugins_json(comfy, "--isolation", "off"))["acme_probe"]
    assert (off["error"], off["placement"], off["placement_why"], off["node_count"]) == \
        (None, "in-process", "--isolation off", 1)

    assert comfy("trust", "acme-probe", "--network").exit_code == 0  # the network is not trust
    still = records(plugins_json(comfy))["acme_probe"]
    assert still["error"] is not None and still["network"] is True
    assert comfy("trust", "acme-probe").exit_code == 0
    trusted = records(plugins_json(comfy))["acme_probe"]
    assert (trusted["error"], trusted["placement"], trusted["placement_why"], trusted["network"]) == \
        (None, "in-process", "trusted by you (comfy trust)", True)
    assert node in json.loads(comfy("nodes", "--json").stdout)

    monkeypatch.setenv("COLUMNS", "200")
    table = comfy("plugins").stdout
    [row] = [line for line in table.splitlines() if "acme_probe" in line]
    assert "in-process: trusted by you (comfy trust); network: allowed" in row
    assert "isolation: untrusted" in table
    comfy("untrust", "acme-probe")
    [row] = [line for line in comfy("plugins").stdout.splitlines() if "acme_probe" in line]
    assert "not loaded: not trusted" in row and "Hearth-format pack acme-probe runs only in-process" in row


def test_the_isolation_marker_turns_the_suite_default_back_to_untrusted() -> None:
    """tests/conftest.py: HEARTH_ISOLATION=off for the suite; this module's marker sets the CLI's default again."""
    assert os.environ["HEARTH_ISOLATION"] == "untrusted"


@pytest.mark.parametrize(("flag", "mode"), [((), "untrusted"), (("--isolation", "all"), "all"),
                                            (("--isolation", "off"), "off")])
def test_serve_passes_isolation_into_the_servers_runtime(comfy: Any, monkeypatch: pytest.MonkeyPatch,
                                                         workdir: Path, flag: tuple[str, ...], mode: str) -> None:
    import uvicorn

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.append(app))  # stop short of listening
    assert comfy("trust", "some-pack").exit_code == 0
    out = comfy("serve", "--port", "0", "--data", str(workdir / "data"), *flag)
    assert out.exit_code == 0, out.stderr
    trust = served[0].state.hearth.runtime.options.trust
    assert trust.mode == mode and trust.trusted == {"some-pack"}


def test_trusting_a_pack_with_its_own_layer_says_it_still_runs_in_a_pack_host(comfy: Any) -> None:
    from hearth.registry import envs

    env = envs.create_environment("layered")  # HEARTH_HOME is this test's own
    gen = env.current().path
    envs.write_generation(gen, action="install", requested=["numpy-one"], parent=None,
                          packs={"numpy-one": {"version": "1.0.0", "registry": "", "format": "comfyui",
                                               "folder": "numpy_one", "requested": "numpy-one"}})
    (gen / "layers.json").write_text(json.dumps({"numpy_one": {"path": "layers/numpy_one", "packages": {}}}))
    for name in ("numpy-one", "numpy_one"):  # the pack id or its folder
        out = comfy("trust", name)
        assert out.exit_code == 0 and "no installed pack" not in out.stderr
        assert (f"note: {name} has its own dependency layer in environment 'layered': there it runs in a pack host "
                f"even when trusted") in out.stderr
    assert "note:" not in comfy("trust", "numpy-one", "--network").stderr
