"""`comfy node pack` outside git: its own output (dist/ by default, or --out inside the pack) never goes in."""

from __future__ import annotations

import zipfile
from pathlib import Path

from tests.harness.packs import make_pack


def test_repacking_a_non_git_pack_gives_the_same_archive(comfy, tmp_path: Path):
    pack = make_pack(tmp_path, "plain-pack", "1.0.0")  # no git, no .comfyignore: every file is a candidate
    (pack / "dist").mkdir()
    (pack / "dist" / "plain-pack-0.9.0.zip").write_bytes(b"an older archive")
    first = comfy("node", "pack", pack)
    assert first.exit_code == 0, first.output
    second = comfy("node", "pack", pack)
    assert second.exit_code == 0, second.output
    assert first.output == second.output  # same sha256, same size: the first archive did not go into the second
    names = zipfile.ZipFile(pack / "dist" / "plain-pack-1.0.0.zip").namelist()
    assert sorted(names) == ["__init__.py", "pyproject.toml"]

    out = pack / "here.zip"
    for _ in range(2):
        r = comfy("node", "pack", pack, "--out", out)
        assert r.exit_code == 0, r.output
    assert "here.zip" not in zipfile.ZipFile(out).namelist()
