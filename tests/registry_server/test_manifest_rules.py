"""Manifest rules against a real `comfy registry serve`: each injection is refused on upload with a 400 naming the
field, and `comfy node validate` refuses the same pack in one line (exit 2) before anything is uploaded."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from hearth.cli.main import cli
from tests.harness.packs import make_pack
from tests.registry_server.conftest import settings_for
from tests.registry_server.helpers import Hub, unique, zip_bytes
from tests.registry_server.servers import RegistryProcess


@pytest.fixture(scope="module")
def server() -> Iterator[Hub]:
    proc = RegistryProcess(settings_for(Path(tempfile.mkdtemp(prefix="hearth-rules-")))).start()
    hub = Hub(proc.url, proc.settings)
    yield hub
    hub.close()
    proc.stop()


def _pyproject(name: str, publisher: str, *, project: str = "", after: str = "") -> str:
    return (f'[project]\nname = "{name}"\nversion = "1.0.0"\ndescription = "d"\n{project}\n'
            f'[project.urls]\nRepository = "https://example.com/x"\n{after}\n'
            f'[tool.comfy]\nPublisherId = "{publisher}"\n')


NODE = 'NODE_CLASS_MAPPINGS = {}\n'

# name -> (pyproject's extra [project] lines, extra tables after the urls, extra files, the field the refusal names)
CASES = {
    "entry-point name injection": (
        "", '[project.entry-points.hearth]\n"x\\n[console_scripts]\\nevil" = "os:system"\n', {},
        "project.entry-points.hearth"),
    "console scripts group": ("", '[project.entry-points.console_scripts]\nevil = "os:system"\n', {},
                              "project.entry-points.console_scripts"),
    "other group": ("", '[project.entry-points."hearth.default"]\nevil = "evil.plugin"\n', {},
                    "project.entry-points.hearth.default"),
    "value not a dotted path": ("", '[project.entry-points.hearth]\nevil = "evil; import os"\n', {},
                                "project.entry-points.hearth.evil"),
    "another pack's folder": ("", '[project.entry-points."comfyui.custom_nodes"]\nsomeone-else = "x"\n', {},
                              "project.entry-points.comfyui.custom_nodes.someone-else"),
    "console scripts table": ("", '[project.scripts]\nevil = "os:system"\n', {}, "project.scripts"),
    "gui scripts table": ("", '[project.gui-scripts]\nevil = "os:system"\n', {}, "project.gui-scripts"),
    "javascript url": ("", '', {}, "project.urls.Home"),
    "root sitecustomize": ("", "", {"sitecustomize.py": "import os\n"}, "sitecustomize.py"),
    "root usercustomize": ("", "", {"usercustomize.py": "import os\n"}, "usercustomize.py"),
    "root pth": ("", "", {"evil.pth": "import os; os.system('id')\n"}, "evil.pth"),
    "web directory outside": ("", "", {"__init__.py": NODE + 'WEB_DIRECTORY = "../../../etc"\n'},
                              "__init__.py: WEB_DIRECTORY"),
}


def _files(name: str, publisher: str, case: str) -> dict[str, str]:
    project, after, extra, _ = CASES[case]
    if case == "javascript url":
        text = _pyproject(name, publisher).replace('[project.urls]\n', '[project.urls]\nHome = "javascript:alert(1)"\n')
    else:
        text = _pyproject(name, publisher, project=project, after=after)
    return {"pyproject.toml": text, "__init__.py": NODE, **extra}


@pytest.mark.parametrize("case", list(CASES))
def test_the_server_refuses_the_upload_naming_the_field(server: Hub, case: str):
    publisher, token = server.new_publisher()
    name = unique("rules-")
    r = server.reserve(publisher, token, name, "1.0.0")
    assert r.status_code == 201, r.text
    up = server.upload(r.json()["signedUrl"], zip_bytes(_files(name, publisher, case)))
    assert up.status_code == 400, up.text
    error = up.json()["error"] if "error" in up.json() else up.json()
    message = str(error.get("message") or error)
    assert CASES[case][3] in message and "\n" not in message
    # Nothing was stored: the version does not exist.
    assert server.http.get(f"/api/v1/packs/{name}/versions/1.0.0").status_code == 404


@pytest.mark.parametrize("case", list(CASES))
def test_comfy_node_validate_refuses_in_one_line(tmp_path: Path, case: str):
    folder = tmp_path / "pack"
    folder.mkdir()
    for rel, text in _files("my-pack", "acme", case).items():
        (folder / rel).write_text(text)
    result = CliRunner().invoke(cli, ["node", "validate", str(folder)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and CASES[case][3] in lines[0], result.output


def test_a_pack_within_the_rules_still_publishes(server: Hub, tmp_path: Path):
    publisher, token = server.new_publisher()
    name = unique("fine-")
    folder = make_pack(tmp_path, name, publisher=publisher,
                       extra_files={"web/app.js": "1;\n", "__init__.py": NODE + 'WEB_DIRECTORY = "./web"\n'},
                       extra_project=f'[project.entry-points."comfyui.custom_nodes"]\n{name} = "{name.replace("-", "_")}"\n')
    detail = server.publish_dir(folder, token)  # asserts the upload was accepted (200)
    assert detail["version"] == "1.0.0" and detail["status"] not in ("rejected", "banned")


def test_a_version_stored_before_the_rules_gets_a_wheel_within_them(tmp_path: Path):
    """The wheel builder holds a stored manifest to the same rules, so an old version's entry points cannot put a
    command on the PATH or claim another pack's custom-nodes folder either."""
    import zipfile

    from hearth.registry_server.simple.services import build_wheel

    archive = tmp_path / "old.zip"
    archive.write_bytes(zip_bytes({"pyproject.toml": _pyproject("old-pack", "acme"), "__init__.py": NODE}))
    manifest = {"entry_points": {
        "hearth": {"x\n[console_scripts]\nevil": "os:system", "ok": "old_pack.plugin", "bad": "os:system\n"},
        "console_scripts": {"evil": "os:system"}, "hearth.default": {"evil": "old_pack"},
        "comfyui.custom_nodes": {"someone-else": "old_pack"}}}
    wheel = build_wheel(archive, "old-pack", "1.0.0", manifest, [], tmp_path / "out")
    with zipfile.ZipFile(wheel.path) as zf:
        eps = zf.read(next(n for n in zf.namelist() if n.endswith("entry_points.txt"))).decode()
    assert eps == "[comfyui.custom_nodes]\nold-pack = old_pack\n\n[hearth]\nok = old_pack.plugin\n\n"
