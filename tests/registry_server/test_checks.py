"""Hearth's fallback checks (used when the sandbox package is absent) and the choice between the two."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.registry_server.settings import Settings
from hearth.registry_server.verification import checks, services
from tests.registry_server.helpers import zip_bytes

NODE = '''
class Louder:
    CATEGORY = "text"
    RETURN_TYPES = ("STRING",)

NODE_CLASS_MAPPINGS = {"Louder": Louder}
'''


def _zip(tmp_path: Path, files: dict, links: dict | None = None) -> Path:
    path = tmp_path / "a.zip"
    path.write_bytes(zip_bytes(files, links))
    return path


@pytest.mark.parametrize(("files", "links", "rule"), [
    ({"../x.py": ""}, None, "archive.path_traversal"),
    ({"/abs.py": ""}, None, "archive.absolute_path"),
    ({"C:/win.py": ""}, None, "archive.absolute_path"),
    ({}, {"l": "/etc/passwd"}, "archive.special_file"),
    ({"big.bin": b"\0" * (5 << 20)}, None, "archive.compression_ratio"),
])
def test_archive_dangers_are_errors(tmp_path: Path, files: dict, links: dict | None, rule: str):
    found = checks.check_archive(str(_zip(tmp_path, files, links)))
    assert rule in {f.rule for f in found} and all(f.severity == "error" for f in found)


def test_limits_on_count_and_unpacked_size(tmp_path: Path):
    path = _zip(tmp_path, {f"f{i}.txt": "x" * 100 for i in range(20)})
    rules = {f.rule for f in checks.check_archive(str(path), checks.Limits(10, 1000, 200))}
    assert rules == {"archive.too_many_files", "archive.too_large_unpacked"}
    assert checks.check_archive(str(tmp_path / "missing.zip"))[0].rule == "archive.not_zip"


def test_static_scan_flags_and_reads_nodes_without_importing(tmp_path: Path):
    report = checks.scan_archive(str(_zip(tmp_path, {
        "__init__.py": NODE, "tools.py": "import subprocess\nsubprocess.run(['ls'])\n",
        "broken.py": "def (:\n", "never_run.py": "raise SystemExit('imported!')\n"})))
    assert report.verdict == "flag" and not report.import_ok
    assert {(f.rule, f.path, f.line) for f in report.findings} >= {("python.subprocess.run", "tools.py", 2),
                                                                  ("python.syntax_error", "broken.py", 1)}
    assert report.nodes == [{"name": "Louder", "category": "text", "inputs": {}, "outputs": ["STRING"],
                             "kind": "comfyui"}]
    clean = checks.scan_archive(str(_zip(tmp_path, {"__init__.py": NODE})))
    assert (clean.verdict, clean.findings) == ("pass", [])


def test_fallback_is_used_and_named_when_sandbox_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(services, "_sandbox", lambda: None)
    report, verifier = services.run_checks(_zip(tmp_path, {"__init__.py": NODE}), Settings(data_dir=tmp_path))
    assert verifier.startswith("hearth-builtin") and "sandbox not installed" in verifier
    assert [n["name"] for n in report.nodes] == ["Louder"]
    assert services.archive_problems(_zip(tmp_path, {"../x": ""}), Settings(data_dir=tmp_path))


def test_sandbox_is_used_when_installed(tmp_path: Path):
    pytest.importorskip("hearth.sandbox", reason="the sandbox package is not importable here")
    if services._sandbox() is None:
        pytest.skip("hearth.sandbox.verify is not available")
    report, verifier = services.run_checks(_zip(tmp_path, {"__init__.py": NODE,
                                                           "pyproject.toml": "[project]\nname='louder'\n"}),
                                           Settings(data_dir=tmp_path))
    assert verifier == "sandbox" and report.verdict in ("pass", "flag", "reject")
