"""ComfyUI-format packs leave their wheel only for custom_nodes/<pack>/, and never for anywhere else."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from hearth.registry.artifacts import comfyui_entry, extract_custom_node
from hearth.registry.sources import InstallError


def pack_wheel(path: Path, members: dict[str, str], entry: str = "my_pack", symlink: str = "") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, "/etc/passwd")
        zf.writestr("my_pack-1.0.dist-info/entry_points.txt",
                    f"[comfyui.custom_nodes]\nMy-Pack = {entry}\n" if entry else "[hearth]\nx = y\n")
    return path


def test_a_comfyui_pack_is_extracted_under_its_id(tmp_path: Path):
    wheel = pack_wheel(tmp_path / "my_pack-1.0-py3-none-any.whl",
                       {"my_pack/__init__.py": "NODE_CLASS_MAPPINGS = {}\n", "my_pack/web/app.js": "//\n"})
    assert comfyui_entry(wheel) == ("My-Pack", "my_pack")
    target = extract_custom_node(wheel, "My-Pack", "my_pack", tmp_path / "custom_nodes")
    assert target == tmp_path / "custom_nodes" / "My-Pack"
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == \
        ["__init__.py", "web/app.js"]


def test_a_python_pack_is_not_a_custom_node(tmp_path: Path):
    wheel = pack_wheel(tmp_path / "w.whl", {"hearth_x/__init__.py": ""}, entry="")
    assert comfyui_entry(wheel) is None


@pytest.mark.parametrize("members, symlink", [
    ({"my_pack/../../evil.py": "x"}, ""),
    ({"my_pack/__init__.py": ""}, "my_pack/link"),
])
def test_members_that_escape_are_refused(tmp_path: Path, members: dict, symlink: str):
    wheel = pack_wheel(tmp_path / "w.whl", members, symlink=symlink)
    with pytest.raises(InstallError, match="refused"):
        extract_custom_node(wheel, "My-Pack", "my_pack", tmp_path / "custom_nodes")
    assert not (tmp_path / "evil.py").exists()


def test_an_unsafe_folder_name_is_refused(tmp_path: Path):
    wheel = pack_wheel(tmp_path / "w.whl", {"my_pack/__init__.py": ""})
    with pytest.raises(InstallError, match="not a safe folder name"):
        extract_custom_node(wheel, "..", "my_pack", tmp_path / "custom_nodes")
