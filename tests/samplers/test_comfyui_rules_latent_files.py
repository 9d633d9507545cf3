"""SaveLatent / LoadLatent: ComfyUI's .latent files, written and read as ComfyUI writes and reads them."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from hearth.core.context import Folders

nodes = pytest.importorskip("hearth_sd.nodes_latent_files")


def _read_header(path) -> dict:
    size = int.from_bytes(path.read_bytes()[:8], "little")
    return json.loads(path.read_bytes()[8:8 + size])


def test_save_then_load_round_trips_a_latent(hearth_folders: Folders) -> None:
    samples = torch.randn(2, 4, 3, 5, generator=torch.Generator().manual_seed(0))
    prompt = {"1": {"class_type": "SaveLatent"}}
    result = nodes.SaveLatent().save({"samples": samples}, "latents/ComfyUI", prompt=prompt,
                                     extra_pnginfo={"workflow": {"nodes": []}})
    (entry,) = result["ui"]["latents"]
    assert entry == {"filename": "ComfyUI_00001_.latent", "subfolder": "latents", "type": "output"}
    path = hearth_folders.output / "latents" / "ComfyUI_00001_.latent"
    header = _read_header(path)
    # ComfyUI's layout: the samples, an empty format marker, the prompt and workflow as JSON metadata.
    assert header["latent_tensor"]["shape"] == [2, 4, 3, 5] and header["latent_format_version_0"]["shape"] == [0]
    assert json.loads(header["__metadata__"]["prompt"]) == prompt
    assert json.loads(header["__metadata__"]["workflow"]) == {"nodes": []}
    again = nodes.SaveLatent().save({"samples": samples}, "latents/ComfyUI")
    assert again["ui"]["latents"][0]["filename"] == "ComfyUI_00002_.latent"  # the counter continues

    shutil.copy(path, hearth_folders.input / "resume.latent")
    assert "resume.latent" in nodes.latent_files()
    assert nodes.LoadLatent.VALIDATE_INPUTS("resume.latent") is True
    (loaded,) = nodes.LoadLatent().load("resume.latent")
    assert torch.equal(loaded["samples"], samples)
    assert nodes.LoadLatent.IS_CHANGED("resume.latent") == nodes.LoadLatent.IS_CHANGED("resume.latent")


def test_a_file_without_the_marker_is_scaled_as_comfyui_scales_it(hearth_folders: Folders) -> None:
    from hearth.core.models import write_safetensors

    samples = torch.full((1, 4, 2, 2), 0.18215)
    write_safetensors({"latent_tensor": samples}, hearth_folders.input / "old.latent")
    (loaded,) = nodes.LoadLatent().load("old.latent")
    assert torch.allclose(loaded["samples"], torch.ones(1, 4, 2, 2))


def test_missing_and_foreign_files_are_refused_by_name(hearth_folders: Folders) -> None:
    from hearth.core.models import write_safetensors

    assert nodes.LoadLatent.VALIDATE_INPUTS("nowhere.latent") == "Invalid latent file: nowhere.latent"
    with pytest.raises(ValueError, match="no latent file 'nowhere.latent'"):
        nodes.LoadLatent().load("nowhere.latent")
    write_safetensors({"weight": torch.zeros(2)}, hearth_folders.input / "model.latent")
    with pytest.raises(ValueError, match="holds no 'latent_tensor'"):
        nodes.LoadLatent().load("model.latent")
