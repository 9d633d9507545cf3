"""Mistakes an author can make: each is one line on stderr naming the thing at fault, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.registry.config import load_config
from tests.registry_server.helpers import Hub, unique
from tests.registry_server.servers import free_port


def _one_line_error(result) -> str:  # noqa: ANN001 - click's Result
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.stderr
    return lines[0]


@pytest.fixture
def pack(comfy, tmp_path: Path) -> Path:
    path = tmp_path / unique("nodes-")
    assert comfy("node", "init", path, "--publisher", "acme").exit_code == 0
    return path


@pytest.mark.parametrize("command", ["validate", "pack", "publish"])
def test_missing_pyproject(comfy, tmp_path: Path, command: str):
    line = _one_line_error(comfy("node", command, tmp_path, "--token", "t") if command == "publish"
                           else comfy("node", command, tmp_path))
    assert "pyproject.toml" in line and "not found" in line


def test_bad_version(comfy, pack: Path):
    toml = pack / "pyproject.toml"
    toml.write_text(toml.read_text().replace('version = "0.1.0"', 'version = "1.0"'))
    line = _one_line_error(comfy("node", "validate", pack))
    assert "project.version" in line and "'1.0'" in line


def test_bad_publisher_in_init(comfy, tmp_path: Path):
    line = _one_line_error(comfy("node", "init", tmp_path / "x", "--publisher", "Not Valid"))
    assert "--publisher" in line and not (tmp_path / "x").exists()


def test_wrong_token(comfy, hub: Hub, pack: Path, config_file: Path):
    line = _one_line_error(comfy("login", "--registry", hub.url, input="not-a-token\n"))
    assert "401" in line and hub.url in line
    assert not config_file.exists()  # a refused token is not stored

    publisher, _ = hub.new_publisher()
    toml = pack / "pyproject.toml"
    toml.write_text(toml.read_text().replace('"acme"', f'"{publisher}"'))
    line = _one_line_error(comfy("node", "publish", pack, "--registry", hub.url, "--token", "not-a-token"))
    assert "401" in line and "publish" in line


def test_login_prompts_without_echo(comfy, hub: Hub, config_file: Path):
    _, token = hub.new_publisher()
    r = comfy("login", "--registry", hub.url, input=token + "\n")
    assert r.exit_code == 0, r.output
    assert token not in r.output  # the prompt is hidden
    assert load_config(config_file).token_for(hub.url) == token


def test_server_down(comfy, pack: Path):
    url = f"http://127.0.0.1:{free_port()}"
    line = _one_line_error(comfy("node", "publish", pack, "--registry", url, "--token", "t"))
    assert "not reachable" in line and url in line
    line = _one_line_error(comfy("login", "--registry", url, "--token", "t"))
    assert "not reachable" in line


def test_no_registry_and_no_token(comfy, pack: Path, monkeypatch: pytest.MonkeyPatch):
    line = _one_line_error(comfy("node", "publish", pack))
    assert "no registry configured" in line
    monkeypatch.setenv("COMFY_REGISTRY_URL", "http://127.0.0.1:9")
    line = _one_line_error(comfy("node", "publish", pack))
    assert "no token for http://127.0.0.1:9" in line


def test_validate_exit_codes_follow_the_scan(comfy, pack: Path):
    import json

    nodes = next(pack.glob("*/nodes.py"))
    nodes.write_text(nodes.read_text() + '\nimport os\nos.system("true")\n')
    r = comfy("node", "validate", pack, "--json")
    assert r.exit_code == 1, r.output
    report = json.loads(r.stdout)
    assert report["manifest"]["publisher"] == "acme" and report["scan"]["verdict"] == "flag"
    assert any(f["rule"] == "process.spawn" for f in report["scan"]["findings"])

    (pack / "link.txt").symlink_to("/etc/passwd")
    r = comfy("node", "validate", pack)
    assert r.exit_code == 2 and r.stdout.startswith("REJECT"), r.output
    line = _one_line_error(comfy("node", "publish", pack, "--registry", "http://127.0.0.1:9", "--token", "t"))
    assert "rejects" in line and "link.txt" in line  # refused before any network call
