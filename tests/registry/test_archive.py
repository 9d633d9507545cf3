"""Pack archives: git-tracked files minus .comfyignore, includes, reproducible bytes, refused links."""

import zipfile
from pathlib import Path

import pytest

from hearth.registry.archive import ArchiveError, build_archive, is_ignored, list_pack_files, parse_ignore
from tests.harness.packs import make_pack


def test_archive_has_tracked_files_minus_comfyignore(tmp_path: Path):
    pack = make_pack(tmp_path, "p", git=True, extra_files={
        ".comfyignore": "*.log\nbuild/\n!keep.log\n", "a.log": "x", "keep.log": "k",
        "build/out.bin": "b", "web/app.js": "js", "docs/build.md": "d"})
    (pack / "untracked.py").write_text("not in git")
    arc = build_archive(pack, tmp_path / "out.zip")
    names = set(zipfile.ZipFile(arc.path).namelist())
    assert names == {".comfyignore", "__init__.py", "pyproject.toml", "keep.log", "web/app.js", "docs/build.md"}
    assert arc.size == arc.path.stat().st_size
    assert len(arc.sha256) == 64


def test_archive_is_reproducible(tmp_path: Path):
    pack = make_pack(tmp_path, "p", git=True)
    a = build_archive(pack, tmp_path / "a.zip")
    (pack / "__init__.py").touch()  # a new mtime must not change the bytes
    b = build_archive(pack, tmp_path / "b.zip")
    assert a.sha256 == b.sha256


def test_includes_add_untracked_build_output(tmp_path: Path):
    pack = make_pack(tmp_path, "p", git=True, extra_files={".comfyignore": "dist/\n"})
    (pack / "dist").mkdir()
    (pack / "dist" / "ui.js").write_text("ui")
    assert "dist/ui.js" not in list_pack_files(pack)
    assert "dist/ui.js" in list_pack_files(pack, includes=["dist"])  # includes win over .comfyignore
    with pytest.raises(ArchiveError, match="outside the pack"):
        list_pack_files(pack, includes=["../.."])


def test_outside_git_takes_all_files_but_vcs_and_caches(tmp_path: Path):
    pack = make_pack(tmp_path, "p", extra_files={"__pycache__/x.pyc": "", "sub/y.py": ""})
    assert list_pack_files(pack) == ["__init__.py", "pyproject.toml", "sub/y.py"]


def test_missing_pyproject_is_an_error(tmp_path: Path):
    pack = make_pack(tmp_path, "p", extra_files={".comfyignore": "pyproject.toml\n"})
    with pytest.raises(ArchiveError, match="pyproject.toml"):
        build_archive(pack, tmp_path / "x.zip")


def test_symlink_refused(tmp_path: Path):
    pack = make_pack(tmp_path, "p")
    (pack / "link").symlink_to("/etc/passwd")
    with pytest.raises(ArchiveError, match="symbolic link"):
        list_pack_files(pack)


@pytest.mark.parametrize(("path", "expected"), [
    ("a.log", True), ("deep/b.log", True), ("build/x", True), ("src/build/x", True),
    ("/abs", False), ("keep.log", False), ("docs/readme.md", False), ("node_modules/z/q.js", True),
])
def test_ignore_rules(path: str, expected: bool):
    rules = parse_ignore(["# c", "*.log", "!keep.log", "build/", "**/node_modules", "/docs/*.txt"])
    assert is_ignored(path.lstrip("/"), rules) is expected
