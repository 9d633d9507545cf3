"""The registry's wheels: a Python-project pack keeps its own packages at the root; a ComfyUI pack is nested."""

from __future__ import annotations

import zipfile
from pathlib import Path

from hearth.registry_server.simple.services import build_wheel, pack_layout, requirements_txt


def archive(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def names_and_entry_points(wheel: Path) -> tuple[list[str], str]:
    with zipfile.ZipFile(wheel) as zf:
        names = sorted(zf.namelist())
        ep = next(n for n in names if n.endswith("entry_points.txt"))
        return names, zf.read(ep).decode()


PYPROJECT = """[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"
[project]
name = "hearth-demo"
version = "0.1.0"
[project.entry-points.hearth]
demo = "hearth_demo.plugin"
[tool.setuptools.packages.find]
include = ["hearth_demo*"]
"""


def test_a_python_project_pack_keeps_its_packages_at_the_wheel_root(tmp_path: Path):
    arc = archive(tmp_path / "a.zip", {
        "pyproject.toml": PYPROJECT, "README.md": "# demo", "LICENSE": "Apache-2.0",
        "hearth_demo/__init__.py": "", "hearth_demo/plugin.py": "", "hearth_demo/data/vocab.txt": "a b",
        "tests/__init__.py": "", "tests/test_x.py": "", "other_pkg/__init__.py": "",
    })
    manifest = {"entry_points": {"hearth": {"demo": "hearth_demo.plugin"}, "console_scripts": {"x": "y:z"}}}
    wheel = build_wheel(arc, "hearth-demo", "0.1.0", manifest, ["regex>=2023"], tmp_path / "out")
    names, eps = names_and_entry_points(wheel.path)
    assert [n for n in names if not n.startswith("hearth_demo-0.1.0.dist-info/")] == \
        ["hearth_demo/__init__.py", "hearth_demo/data/vocab.txt", "hearth_demo/plugin.py"]
    assert "hearth_demo-0.1.0.dist-info/licenses/LICENSE" in names
    assert eps == "[hearth]\ndemo = hearth_demo.plugin\n\n"  # no comfyui.custom_nodes, no scripts
    assert b"Requires-Dist: regex>=2023" in wheel.metadata


def test_a_src_layout_project_is_unwrapped(tmp_path: Path):
    names = ["pyproject.toml", "src/pkg_a/__init__.py", "src/pkg_a/mod.py", "setup.py"]
    assert pack_layout(names, b"[project]\nname='x'\n") == ("project", ["pkg_a"])
    arc = archive(tmp_path / "s.zip", {n: "" for n in names})
    wheel = build_wheel(arc, "x", "1.0.0", {}, [], tmp_path / "out")
    assert [n for n in names_and_entry_points(wheel.path)[0] if "dist-info" not in n] == \
        ["pkg_a/__init__.py", "pkg_a/mod.py"]


def test_a_comfyui_pack_is_nested_with_its_requirements_in_the_metadata(tmp_path: Path):
    arc = archive(tmp_path / "c.zip", {
        "__init__.py": "NODE_CLASS_MAPPINGS = {}\n", "nodes/util.py": "", "pyproject.toml": "[project]\n",
        "requirements.txt": "# comment\nopencv-python-headless>=4\n-r other.txt\ngit+https://x/y.git\nnumpy\n",
    })
    wheel = build_wheel(arc, "ComfyUI-Thing", "1.2.0", {}, ["numpy>=1.26"], tmp_path / "out")
    names, eps = names_and_entry_points(wheel.path)
    assert "comfyui_thing/__init__.py" in names and "comfyui_thing/nodes/util.py" in names
    assert eps == "[comfyui.custom_nodes]\nComfyUI-Thing = comfyui_thing\n\n"
    requires = [line for line in wheel.metadata.decode().splitlines() if line.startswith("Requires-Dist")]
    assert requires == ["Requires-Dist: numpy>=1.26", "Requires-Dist: opencv-python-headless>=4"]


def test_requirements_txt_keeps_only_plain_requirements():
    assert requirements_txt("a==1 # pinned\n--extra-index-url x\n\nb[c]>=2; python_version>'3'\nnot valid!!\n") \
        == ["a==1", "b[c]>=2; python_version > \"3\""]
