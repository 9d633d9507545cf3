"""Names that cannot be hijacked, against a real `comfy registry serve`: a pack may not take a Python project's name
(`requests`) unless an admin allows it, and even then a pack depending on `requests` gets the Python project from
the Python package index (a local stand-in here), never the registry's pack."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from hearth.cli.registry import registry
from hearth.registry import envs
from tests.envs.conftest import unique
from tests.harness.packs import Packs, make_pack, project_pack, python_wheel
from tests.registry_server.helpers import Hub


def python_index(root: Path, wheels: list[tuple[str, str]]) -> str:
    """A PEP 503 index in a folder (what uv reads from a file:// URL): the stand-in for the Python package index."""
    for name, version in wheels:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        python_wheel(folder, name, version)
        links = "".join(f'<a href="{w.name}">{w.name}</a>\n' for w in sorted(folder.glob("*.whl")))
        (folder / "index.html").write_text(f"<!DOCTYPE html><html><body>{links}</body></html>")
    projects = "".join(f'<a href="{p.name}/">{p.name}</a>\n' for p in sorted(root.iterdir()) if p.is_dir())
    (root / "index.html").write_text(f"<!DOCTYPE html><html><body>{projects}</body></html>")
    return root.as_uri()


def admin(hub: Hub, *args: str):  # noqa: ANN201
    result = CliRunner().invoke(registry, ["admin", *args, "--data", str(hub.settings.data_dir)])
    assert result.exit_code == 0, result.output
    return result


def make_active(hub: Hub, packs: Packs, name: str, version: str) -> None:
    """Approve the version when the registry's review policy holds it (this test is about names, not review)."""
    read = {"Authorization": f"Bearer {packs.read_token}"}
    if hub.wait(name, version, headers=read)["status"] != "active":
        admin(hub, "approve", f"{name}@{version}")
    assert hub.wait(name, version, headers=read)["status"] == "active"


def test_a_python_projects_name_is_refused_in_one_line_naming_the_rule(hub: Hub, packs: Packs):
    for name in ("requests", "Requests", "typing_extensions", "torch", "hearth-sd"):
        r = hub.reserve(packs.publisher, packs.token, name, "9.0.0")
        assert r.status_code == 403, r.text
        message = r.json()["message"]
        assert "\n" not in message and "reserved" in message and "allow-name" in message
        assert "Python package index" in message or "base packages" in message or "Hearth's own" in message


@pytest.mark.usefixtures("home")
def test_an_allowed_pack_named_requests_never_replaces_the_python_project(hub: Hub, packs: Packs, comfy,
                                                                          tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COMFY_PYPI_URL", python_index(tmp_path / "pypi", [("requests", "2.31.0")]))
    admin(hub, "allow-name", "requests", "--reason", "test: a pack named after a Python project")
    audit = [json.loads(line) for line in admin(hub, "audit", "--json", "--action", "name.allow").stdout.splitlines()]
    assert any(e["target"] == "requests" and e["actor"] == "cli" for e in audit)
    try:
        if hub.http.get("/api/v1/packs/requests/versions/2.99.0").status_code == 404:
            packs.comfyui("requests", "2.99.0")
        make_active(hub, packs, "requests", "2.99.0")
        # The attacker's pack is on the registry's simple index, first in uv's index order ...
        page = hub.http.get("/simple/requests/", headers={"Accept": "application/vnd.pypi.simple.v1+json",
                                                           "Authorization": f"Bearer {packs.read_token}"})
        assert page.status_code == 200 and page.json()["versions"] == ["2.99.0"]
        # ... and a pack that depends on requests still gets the Python project.
        user = unique("uses-requests-")
        packs.comfyui(user, requirements=("requests>=2",))
        make_active(hub, packs, user, "1.0.0")
        r = comfy("install", user)
        assert r.exit_code == 0, r.output
        lock = {p["name"]: p for p in tomllib.loads(envs.get_environment().lock_path.read_text())["packages"]}
        assert lock["requests"]["version"] == "2.31.0"
        assert lock["requests"]["wheels"][0]["url"].startswith((tmp_path / "pypi").as_uri())
        assert lock[user]["wheels"][0]["url"].startswith(hub.url)  # the pack itself from its registry

        # Without a Python package index, the install is refused rather than take the registry's `requests`.
        monkeypatch.setenv("COMFY_PYPI_URL", "none")
        r = comfy("install", user)
        assert r.exit_code == 2, r.output
        assert "'requests' is a Python package index project" in r.output and "COMFY_PYPI_URL" in r.output
    finally:
        admin(hub, "allow-name", "requests", "--undo", "--reason", "test done")
    r = hub.reserve(packs.publisher, packs.token, "requests", "3.0.0")
    assert r.status_code in (201, 409), r.text  # the pack exists now: its publisher may publish new versions


def test_a_python_requirement_of_another_publishers_pack_cannot_become_a_pack(hub: Hub, packs: Packs):
    lib = unique("some-python-lib-")  # on no popular list: reserved here because a pack requires it
    user = unique("needs-lib-")
    hub.publish_dir(project_pack(packs.work, user, publisher=packs.publisher, dependencies=(f"{lib}>=1",)),
                    packs.token, wait=False)
    attacker, token = hub.new_publisher()
    r = hub.reserve(attacker, token, lib, "99.0.0")
    assert r.status_code == 403, r.text
    message = r.json()["message"]
    assert "\n" not in message and f"pack {user} 1.0.0 requires it" in message and "allow-name" in message
    # The publisher of the pack that requires it may still publish a pack of that name (its own pack dependency).
    assert hub.reserve(packs.publisher, packs.token, lib, "1.0.0").status_code == 201

    # A ComfyUI-format pack's requirements.txt counts the same.
    listed, comfy_user = unique("listed-python-lib-"), unique("comfy-needs-lib-")
    hub.publish_dir(make_pack(packs.work, comfy_user, publisher=packs.publisher, requirements=(f"{listed}==2.0",)),
                    packs.token, wait=False)
    r = hub.reserve(attacker, token, listed, "99.0.0")
    assert r.status_code == 403 and f"pack {comfy_user} 1.0.0 requires it" in r.json()["message"], r.text


def test_allow_name_is_only_for_reserved_names_and_is_audited(tmp_path: Path):
    def run(*args: str):  # noqa: ANN202
        return CliRunner().invoke(registry, ["admin", *args, "--data", str(tmp_path / "data")])

    refused = run("allow-name", "my-own-nodes", "--reason", "r")
    assert refused.exit_code == 2 and "'my-own-nodes' is not a reserved name" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    assert run("allow-name", "NumPy", "--reason", "the numpy pack of our lab").exit_code == 0
    assert run("allow-name", "numpy", "--undo", "--reason", "done").exit_code == 0
    entries = [json.loads(line) for line in run("audit", "--json").stdout.splitlines()]
    assert [(e["action"], e["target"], e["detail"]["reason"]) for e in entries[:2]] == [
        ("name.disallow", "numpy", "done"), ("name.allow", "numpy", "the numpy pack of our lab")]
