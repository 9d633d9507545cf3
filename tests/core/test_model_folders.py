"""Model folders: ComfyUI's layout under --models-dir, extra_model_paths.yaml, listing and finding files."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.core.model_folders import (
    ModelFileNotFound,
    ModelFolders,
    UnknownFolderKind,
    read_extra_model_paths,
)


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0")
    return path


def test_list_is_recursive_relative_and_filtered(tmp_path):
    touch(tmp_path / "checkpoints" / "sd" / "a.safetensors")
    touch(tmp_path / "checkpoints" / "b.ckpt")
    touch(tmp_path / "checkpoints" / "notes.txt")
    touch(tmp_path / "checkpoints" / ".cache" / "hidden.safetensors")
    folders = ModelFolders(tmp_path)
    assert folders.list("checkpoints") == ["b.ckpt", "sd/a.safetensors"]
    assert folders.find("checkpoints", "sd/a.safetensors") == tmp_path / "checkpoints" / "sd" / "a.safetensors"


def test_legacy_names_share_one_list(tmp_path):
    touch(tmp_path / "clip" / "old.safetensors")
    touch(tmp_path / "text_encoders" / "new.safetensors")
    touch(tmp_path / "unet" / "u.safetensors")
    folders = ModelFolders(tmp_path)
    assert folders.list("clip") == folders.list("text_encoders") == ["new.safetensors", "old.safetensors"]
    assert folders.list("diffusion_models") == ["u.safetensors"]


def test_missing_file_names_the_folders_searched_and_close_names(tmp_path):
    touch(tmp_path / "checkpoints" / "tiny-sd1.safetensors")
    folders = ModelFolders(tmp_path)
    with pytest.raises(ModelFileNotFound) as info:
        folders.find("checkpoints", "tiny-sd2.safetensors")
    message = str(info.value)
    assert str(tmp_path / "checkpoints") in message and "tiny-sd1.safetensors" in message
    with pytest.raises(ModelFileNotFound, match="no absolute path"):
        folders.find("checkpoints", "../checkpoints/tiny-sd1.safetensors")
    with pytest.raises(UnknownFolderKind, match="known: .*checkpoints"):
        folders.list("chekpoints")


def test_extra_model_paths_yaml(tmp_path, monkeypatch):
    a1111 = tmp_path / "webui"
    touch(a1111 / "models" / "Stable-diffusion" / "from-a1111.safetensors")
    touch(a1111 / "models" / "Lora" / "one.safetensors")
    touch(a1111 / "models" / "LyCORIS" / "two.safetensors")
    shared = tmp_path / "shared"
    touch(shared / "checkpoints" / "from-shared.safetensors")
    touch(tmp_path / "base" / "checkpoints" / "from-shared.safetensors")  # shadowed: the default section wins
    touch(tmp_path / "cfg" / "relative" / "x.pt")
    monkeypatch.setenv("SHARED_MODELS", str(shared))
    config = tmp_path / "cfg" / "extra_model_paths.yaml"
    config.write_text(f"""
a111:
    base_path: {a1111}
    checkpoints: models/Stable-diffusion
    loras: |
        models/Lora
        models/LyCORIS
    my_pack_models: models/Lora
comfyui:
    base_path: $SHARED_MODELS
    is_default: true
    checkpoints: checkpoints/
empty:
nobase:
    upscale_models: relative
""")
    extra = read_extra_model_paths(config)
    assert [(e.section, e.kind, e.is_default) for e in extra] == [
        ("a111", "checkpoints", False), ("a111", "loras", False), ("a111", "loras", False),
        ("a111", "my_pack_models", False), ("comfyui", "checkpoints", True), ("nobase", "upscale_models", False)]
    folders = ModelFolders(tmp_path / "base", extra_configs=[config])
    assert folders.folders("checkpoints") == [shared / "checkpoints", tmp_path / "base" / "checkpoints",
                                              a1111 / "models" / "Stable-diffusion"]
    assert folders.list("checkpoints") == ["from-a1111.safetensors", "from-shared.safetensors"]
    assert folders.find("checkpoints", "from-shared.safetensors") == shared / "checkpoints" / "from-shared.safetensors"
    assert folders.list("loras") == ["one.safetensors", "two.safetensors"]
    # An unknown kind is kept for the pack that reads it; without base_path, paths are relative to the file.
    assert folders.list("my_pack_models") == ["one.safetensors"]
    assert folders.list("upscale_models") == ["x.pt"]


def test_bad_yaml_names_the_file_and_section(tmp_path):
    config = tmp_path / "extra.yaml"
    config.write_text("comfyui:\n  - checkpoints\n")
    with pytest.raises(ValueError, match=r"extra.yaml: section 'comfyui' must map folder kinds"):
        read_extra_model_paths(config)
    config.write_text("comfyui:\n  checkpoints: [a, b]\n")
    with pytest.raises(ValueError, match=r"comfyui.checkpoints must be a path"):
        read_extra_model_paths(config)


def test_comfy_run_reads_models_through_an_extra_model_paths_file(tmp_path):
    from click.testing import CliRunner

    from hearth.cli.main import cli

    workflow = Path(__file__).resolve().parents[2] / "examples" / "workflows" / "sd_vae_roundtrip_api.json"
    shared = tmp_path / "shared"
    touch(shared / "ckpts" / "tiny-sd1.safetensors")  # --check validates names, it does not load the file
    config = tmp_path / "extra_model_paths.yaml"
    config.write_text(f"mine:\n  base_path: {shared}\n  checkpoints: ckpts\n")
    runner = CliRunner()
    empty = tmp_path / "empty"
    found = runner.invoke(cli, ["run", "--check", str(workflow), "--models-dir", str(empty),
                                "--extra-model-paths-config", str(config)])
    assert found.exit_code == 0, found.output
    missing = runner.invoke(cli, ["run", "--check", str(workflow), "--models-dir", str(empty)])
    assert missing.exit_code == 2 and "ckpt_name" in missing.output
    bad = runner.invoke(cli, ["run", "--check", str(workflow), "--extra-model-paths-config", str(tmp_path / "no.yaml")])
    assert bad.exit_code == 2 and "--extra-model-paths-config" in bad.output and "no such file" in bad.output
