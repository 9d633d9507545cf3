"""ComfyUI-format packs under the trust policy, through the real CLI: ``comfy plugins`` says where each runs and
why (a pack host for an untrusted one, in-process for a trusted one, the network where allowed), and a machine
that cannot isolate refuses an untrusted pack with the way out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hearth.core.trust import isolation_refusal
from hearth.sandbox import host
from tests.harness.packs import custom_node

pytestmark = pytest.mark.isolation  # HEARTH_ISOLATION=untrusted, the CLI's own default


@pytest.fixture(autouse=True)
def config(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = workdir / "cfg" / "config.toml"
    monkeypatch.setenv("COMFY_CONFIG", str(path))
    monkeypatch.setenv("HEARTH_HOME", str(workdir / "hearth-home"))
    return path.parent / "trust.toml"


@pytest.fixture
def pack(workdir: Path) -> str:
    """``./custom_nodes/trust_probe_pack`` with one node; the name is what `comfy trust` takes."""
    custom_node(workdir / "custom_nodes", "trust_probe_pack", "TrustProbeSeven")
    return "trust_probe_pack"


def record(comfy: Any, name: str, *args: str) -> dict[str, Any]:
    out = comfy("plugins", "--json", *args)
    assert out.exit_code == 0, out.stderr
    return next(r for r in json.loads(out.stdout)["plugins"] if r["name"] == name)


def test_a_machine_that_cannot_isolate_refuses_an_untrusted_pack_and_names_the_way_out(
        comfy: Any, pack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    reason = "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0)"
    monkeypatch.setattr(host, "isolation_available", lambda: (False, reason))
    refused = record(comfy, pack)
    assert refused["error"] == isolation_refusal(pack, reason)
    data = json.loads(comfy("plugins", "--json").stdout)
    assert data["pack_hosts"] == {"available": False, "reason": reason}
    assert json.loads(comfy("plugins", "--json", "--isolation", "off").stdout)["pack_hosts"] is None
    monkeypatch.setenv("COLUMNS", "300")
    assert f"pack hosts: unavailable on this machine ({reason})" in comfy("plugins").stdout
    assert refused["error"].endswith(f"; run it unisolated at your own risk with --isolation off (or comfy trust "
                                     f"{pack})")
    assert refused["node_count"] == 0 and refused["placement_why"] == "not trusted"
    run = comfy("run", "--check", str(Path("w.json")))
    assert f"warning: plugin {pack} not loaded: pack '{pack}' must run in a pack host" in run.stderr

    loader = record(comfy, "custom_nodes")  # the compatibility plugin's loader is Hearth's own
    assert (loader["placement"], loader["placement_why"]) == ("in-process", "first-party plugin")
    off = record(comfy, pack, "--isolation", "off")
    assert (off["error"], off["placement"], off["placement_why"], off["node_count"]) == \
        (None, "in-process", "--isolation off", 1)
    assert comfy("trust", pack).exit_code == 0
    trusted = record(comfy, pack)
    assert (trusted["error"], trusted["placement"], trusted["placement_why"], trusted["node_count"]) == \
        (None, "in-process", "trusted by you (comfy trust)", 1)


@pytest.mark.skipif(not host.isolation_available()[0], reason="this machine cannot make a pack host's namespaces")
def test_plugins_shows_an_untrusted_pack_in_a_pack_host_with_the_network_it_was_allowed(
        comfy: Any, pack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    isolated = record(comfy, pack)
    assert json.loads(comfy("plugins", "--json").stdout)["pack_hosts"] == {"available": True, "reason": ""}
    assert (isolated["error"], isolated["placement"], isolated["placement_why"], isolated["network"],
            isolated["node_count"]) == (None, "pack host", "not trusted", False, 1)
    assert comfy("trust", pack, "--network").exit_code == 0
    allowed = record(comfy, pack)
    assert (allowed["placement"], allowed["network"]) == ("pack host", True)
    monkeypatch.setenv("COLUMNS", "200")
    [row] = [line for line in comfy("plugins").stdout.splitlines() if pack in line]
    assert "pack host: not trusted; network: allowed" in row


@pytest.mark.skipif(not host.isolation_available()[0], reason="this machine cannot make a pack host's namespaces")
def test_serve_names_the_packs_it_runs_in_pack_hosts(comfy: Any, pack: str, workdir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    def run_until_loaded(app: Any, **kwargs: Any) -> None:  # start the app (its plugins load), never listen
        from starlette.testclient import TestClient

        with TestClient(app):
            app.state.hearth.loaded.result(timeout=60)

    monkeypatch.setattr(uvicorn, "run", run_until_loaded)
    out = comfy("serve", "--port", "0", "--data", str(workdir / "data"))
    assert out.exit_code == 0, out.stderr
    assert f"isolation untrusted: 1 pack in pack hosts ({pack})" in out.stdout
    assert comfy("trust", pack).exit_code == 0
    again = comfy("serve", "--port", "0", "--data", str(workdir / "data2"))
    assert again.exit_code == 0 and "pack hosts" not in again.stdout
