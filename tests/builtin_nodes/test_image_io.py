"""LoadImage, SaveImage and PreviewImage: files, names, metadata and masks as ComfyUI writes and reads them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hearth.core.context import Folders
from tests.builtin_nodes.conftest import NODES, call, gradient


def save(images: torch.Tensor, prefix: str = "ComfyUI", **hidden: Any) -> list[dict[str, str]]:
    return call("SaveImage", images=images, filename_prefix=prefix, **hidden)["ui"]["images"]


def saved_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def test_save_then_load_round_trips_pixels(folders: Folders) -> None:
    image = gradient(8, 12, batch=2)
    results = save(image, "roundtrip")
    assert results == [{"filename": "roundtrip_00001_.png", "subfolder": "", "type": "output"},
                       {"filename": "roundtrip_00002_.png", "subfolder": "", "type": "output"}]
    for index, item in enumerate(results):
        loaded, mask = call("LoadImage", image=f"{item['filename']} [output]")
        assert loaded.shape == (1, 8, 12, 3) and loaded.dtype == torch.float32
        assert torch.allclose(loaded[0], image[index], atol=1 / 255)
        assert mask.shape == (1, 64, 64) and float(mask.abs().max()) == 0.0


def test_save_clips_out_of_range_values(folders: Folders) -> None:
    image = torch.tensor([[[[-0.5, 0.5, 1.5]]]])
    (item,) = save(image, "clip")
    with Image.open(folders.output / item["filename"]) as png:
        assert png.getpixel((0, 0)) == (0, 127, 255)  # 127.5 truncates to 127, as ComfyUI's astype(uint8)


def test_prompt_and_workflow_text_chunks(run_prompt: Any, hearth_folders: Folders) -> None:
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 3, "batch_size": 1,
                                                          "color": 0x00FF00}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "meta"}}}
    workflow = {"nodes": [{"id": 1, "type": "EmptyImage"}], "links": [], "version": 0.4}
    result = run_prompt(prompt, extra_data={"extra_pnginfo": {"workflow": workflow, "note": ["é", 1]}})
    assert result.ok, result.error
    assert result.outputs["2"]["images"] == [{"filename": "meta_00001_.png", "subfolder": "", "type": "output"}]
    with Image.open(hearth_folders.output / "meta_00001_.png") as png:
        png.load()
        assert png.size == (4, 3) and png.getpixel((3, 2)) == (0, 255, 0)
        assert set(png.text) == {"prompt", "workflow", "note"}
        assert json.loads(png.text["prompt"]) == prompt
        assert json.loads(png.text["workflow"]) == workflow
        assert json.loads(png.text["note"]) == ["é", 1]


def test_no_text_chunks_without_prompt_or_extra_pnginfo(folders: Folders) -> None:
    (item,) = save(gradient(2, 2), "bare")
    with Image.open(folders.output / item["filename"]) as png:
        png.load()
        assert png.text == {}


def test_counter_continues_across_runs(run_prompt: Any, hearth_folders: Folders) -> None:
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 2, "height": 2, "batch_size": 2, "color": 0}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "run"}}}
    assert run_prompt(prompt).ok
    prompt["1"]["inputs"]["color"] = 1  # an unchanged prompt would come from the cache and save nothing
    assert run_prompt(prompt).ok
    assert saved_names(hearth_folders.output) == [f"run_0000{i}_.png" for i in range(1, 5)]


def test_counter_starts_after_the_highest_existing_file_of_the_prefix(folders: Folders) -> None:
    for name in ("pic_00041_.png", "pic_00007_.png", "picture_00099_.png", "pic_temp_abcde_00077_.png",
                 "other_00500_.png", "pic_notes.txt"):
        (folders.output / name).write_bytes(b"")
    (item,) = save(gradient(2, 2), "pic")
    assert item["filename"] == "pic_00042_.png"


def test_prefix_with_subfolders(folders: Folders) -> None:
    (first,) = save(gradient(2, 2), "runs/day1/img")
    (second,) = save(gradient(2, 2), "runs/day1/img")
    assert first == {"filename": "img_00001_.png", "subfolder": "runs/day1", "type": "output"}
    assert second["filename"] == "img_00002_.png"
    assert saved_names(folders.output / "runs" / "day1") == ["img_00001_.png", "img_00002_.png"]
    (other,) = save(gradient(2, 2), "runs/img")
    assert other["filename"] == "img_00001_.png"  # each folder counts its own files


def test_prefix_size_variables(folders: Folders) -> None:
    (item,) = save(gradient(3, 5), "size_%width%x%height%")
    assert item["filename"] == "size_5x3_00001_.png"


def test_batch_number_in_prefix_does_not_overwrite_earlier_runs(folders: Folders) -> None:
    first = save(gradient(2, 2, batch=2), "b%batch_num%")
    second = save(gradient(2, 2, batch=2), "b%batch_num%")
    assert [i["filename"] for i in first] == ["b0_00001_.png", "b1_00002_.png"]
    assert [i["filename"] for i in second] == ["b0_00003_.png", "b1_00004_.png"]


@pytest.mark.parametrize("prefix", ["../escape", "a/../../escape", "/tmp/hearth_escape", "..\\..\\escape"])
def test_prefix_cannot_leave_the_output_folder(folders: Folders, prefix: str) -> None:
    with pytest.raises(ValueError, match="would save outside the output folder"):
        save(gradient(2, 2), prefix)
    assert not list(folders.output.parent.glob("*escape*"))


def test_path_traversal_in_prefix_fails_the_node_with_a_clear_error(run_prompt: Any) -> None:
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 2, "height": 2, "batch_size": 1, "color": 0}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "../../x"}}}
    result = run_prompt(prompt)
    assert result.status == "error"
    assert result.error["node_id"] == "2" and result.error["exception_type"].endswith("ValueError")
    assert "outside the output folder" in result.error["exception_message"]


def test_preview_image_writes_to_temp(folders: Folders) -> None:
    results = call("PreviewImage", images=gradient(2, 2, batch=2))["ui"]["images"]
    assert [item["type"] for item in results] == ["temp", "temp"]
    first = results[0]["filename"]
    assert first.startswith("ComfyUI_temp_") and first.endswith("_00001_.png") and len(first) == len(
        "ComfyUI_temp_abcde_00001_.png")
    assert saved_names(folders.temp) == sorted(item["filename"] for item in results)
    assert not list(folders.output.iterdir())


def write_rgba(path: Path) -> np.ndarray:
    pixels = np.zeros((4, 6, 4), dtype=np.uint8)
    pixels[..., 0] = 200
    pixels[..., 3] = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    Image.fromarray(pixels, "RGBA").save(path)
    return pixels


def test_load_rgba_gives_mask_from_alpha(folders: Folders) -> None:
    pixels = write_rgba(folders.input / "rgba.png")
    image, mask = call("LoadImage", image="rgba.png")
    assert image.shape == (1, 4, 6, 3) and mask.shape == (1, 4, 6)
    assert torch.allclose(image[0, ..., 0], torch.full((4, 6), 200 / 255))
    assert torch.allclose(mask[0], 1.0 - torch.from_numpy(pixels[..., 3] / 255.0).float())
    assert float(mask[0, 0, 0]) == 1.0  # fully transparent is fully masked


def test_load_rgb_gives_empty_64_mask(folders: Folders) -> None:
    Image.new("RGB", (5, 3), (10, 20, 30)).save(folders.input / "rgb.jpg", quality=100)
    image, mask = call("LoadImage", image="rgb.jpg")
    assert image.shape == (1, 3, 5, 3)
    assert torch.allclose(image[0, 0, 0], torch.tensor([10, 20, 30]) / 255.0, atol=3 / 255)
    assert mask.shape == (1, 64, 64) and float(mask.abs().max()) == 0.0


def test_load_animated_gif_gives_every_frame(folders: Folders) -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (4, 3), colour) for colour in colours]
    frames[0].save(folders.input / "anim.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    image, mask = call("LoadImage", image="anim.gif")
    assert image.shape == (3, 3, 4, 3) and mask.shape[0] == 3
    for index, colour in enumerate(colours):
        assert torch.allclose(image[index, 1, 1], torch.tensor(colour, dtype=torch.float32) / 255.0, atol=2 / 255)


def test_load_palette_image_with_transparency_masks_the_transparent_colour(folders: Folders) -> None:
    img = Image.new("P", (3, 2), 0)
    img.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    img.putpixel((2, 1), 1)
    img.save(folders.input / "pal.png", transparency=0)
    _, mask = call("LoadImage", image="pal.png")
    expected = torch.ones(1, 2, 3)
    expected[0, 1, 2] = 0.0
    assert torch.equal(mask, expected)


def test_load_applies_exif_orientation(folders: Folders) -> None:
    img = Image.new("RGB", (4, 2), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(folders.input / "rotated.jpg", exif=exif)
    image, _ = call("LoadImage", image="rotated.jpg")
    assert image.shape == (1, 4, 2, 3)


def test_load_image_from_subfolder_and_combo_lists_input_files(folders: Folders) -> None:
    (folders.input / "sub").mkdir()
    write_rgba(folders.input / "sub" / "a.png")
    Image.new("RGB", (2, 2)).save(folders.input / "b.webp")
    (folders.input / "notes.txt").write_text("not an image")
    choices = NODES["LoadImage"].INPUT_TYPES()["required"]["image"][0]
    assert choices == ["b.webp", "sub/a.png"]
    image, _ = call("LoadImage", image="sub/a.png")
    assert image.shape == (1, 4, 6, 3)


def test_is_changed_follows_the_file_content(folders: Folders) -> None:
    path = folders.input / "c.png"
    Image.new("RGB", (2, 2), (1, 2, 3)).save(path)
    before = NODES["LoadImage"].IS_CHANGED(image="c.png")
    assert NODES["LoadImage"].IS_CHANGED(image="c.png") == before
    Image.new("RGB", (2, 2), (3, 2, 1)).save(path)
    assert NODES["LoadImage"].IS_CHANGED(image="c.png") != before


def test_validate_inputs_names_a_missing_file(folders: Folders) -> None:
    message = NODES["LoadImage"].VALIDATE_INPUTS(image="missing.png")
    assert message.startswith("Invalid image file: missing.png")
    assert str(folders.input) in message


@pytest.mark.parametrize("name", ["../secret.png", "sub/../../secret.png", "/etc/passwd", "x.png [nowhere]/../.."])
def test_image_name_cannot_leave_the_input_folder(folders: Folders, name: str) -> None:
    (folders.input.parent / "secret.png").write_bytes(b"")
    message = NODES["LoadImage"].VALIDATE_INPUTS(image=name)
    assert isinstance(message, str) and message.startswith(f"image path {name!r} leaves the ")
    with pytest.raises(ValueError, match="leaves the"):
        call("LoadImage", image=name)
    with pytest.raises(ValueError, match="leaves the"):
        NODES["LoadImage"].IS_CHANGED(image=name)


def test_image_name_traversal_is_refused_at_validation(run_prompt: Any, hearth_folders: Folders) -> None:
    Image.new("RGB", (2, 2)).save(hearth_folders.output.parent / "secret.png")
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "../secret.png"}},
              "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    result = run_prompt(prompt)
    assert result.status == "error" and not result.executed
    (err,) = result.validation.node_errors["1"]["errors"]
    assert err["type"] == "custom_validation_failed"
    assert "leaves the" in err["details"] and "secret.png" in err["details"]


def test_missing_image_is_a_validation_error(run_prompt: Any) -> None:
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "nope.png"}},
              "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    result = run_prompt(prompt)
    (err,) = result.validation.node_errors["1"]["errors"]
    assert err["type"] == "custom_validation_failed"
    assert err["details"].startswith("image - Invalid image file: nope.png")  # ComfyUI's "{input} - {message}"


def test_load_then_save_through_the_executor(run_prompt: Any, hearth_folders: Folders) -> None:
    write_rgba(hearth_folders.input / "in.png")
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "in.png"}},
              "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
              "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "inv/out"}}}
    result = run_prompt(prompt)
    assert result.ok, result.error
    with Image.open(hearth_folders.output / "inv" / "out_00001_.png") as png:
        # 1 - 200/255 in float32 is 54.99998/255: ComfyUI's truncating conversion writes 54, not 55.
        assert png.mode == "RGB" and png.getpixel((0, 0)) == (54, 255, 255)


def test_rgba_round_trip_keeps_alpha_as_the_mask(folders: Folders) -> None:
    image = torch.zeros(1, 2, 3, 4)
    image[..., 0] = 1.0
    image[0, :, :, 3] = torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 1.0]])
    (item,) = save(image, "alpha")
    with Image.open(folders.output / item["filename"]) as png:
        assert png.mode == "RGBA"
    loaded, mask = call("LoadImage", image=f"{item['filename']} [output]")
    assert loaded.shape == (1, 2, 3, 3) and torch.allclose(loaded[..., 0], torch.ones(1, 2, 3))
    assert torch.allclose(mask, 1.0 - image[..., 3], atol=1 / 255)


def test_changed_input_file_reruns_load_image(hearth_plugins: Any, folders: Folders) -> None:
    from hearth.core.executor import Executor

    executor = Executor(hearth_plugins.nodes(), folders=folders)
    path = folders.input / "frame.png"
    Image.new("RGB", (2, 2), (255, 0, 0)).save(path)
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "frame.png"}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "f"}}}
    assert executor.run(prompt).executed == ["1", "2"]
    assert executor.run(prompt).executed == []  # same file: everything cached, nothing saved again
    Image.new("RGB", (2, 2), (0, 0, 255)).save(path)
    assert executor.run(prompt).executed == ["1", "2"]
    assert saved_names(folders.output) == ["f_00001_.png", "f_00002_.png"]
    with Image.open(folders.output / "f_00002_.png") as png:
        assert png.getpixel((0, 0)) == (0, 0, 255)


def test_load_transparent_animated_gif_masks_every_frame(folders: Folders) -> None:
    frames = []
    for index in range(3):
        frame = Image.new("P", (4, 3), index + 1)
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
        frame.putpixel((0, 0), 0)  # the transparent palette entry
        frames.append(frame)
    frames[0].save(folders.input / "t.gif", save_all=True, append_images=frames[1:], transparency=0, duration=50,
                   disposal=2)
    image, mask = call("LoadImage", image="t.gif")
    assert image.shape == (3, 3, 4, 3) and mask.shape == (3, 3, 4)
    expected = torch.zeros(3, 3, 4)
    expected[:, 0, 0] = 1.0
    assert torch.equal(mask, expected)
    assert torch.allclose(image[2, 1, 1], torch.tensor([0.0, 0.0, 1.0]))


def test_annotated_image_name_cannot_leave_its_folder(folders: Folders) -> None:
    message = NODES["LoadImage"].VALIDATE_INPUTS(image="../input/x.png [output]")
    assert message == f"image path '../input/x.png' leaves the {folders.output} folder"
    message = NODES["LoadImage"].VALIDATE_INPUTS(image="x.png [temp]")
    assert message == f"Invalid image file: x.png [temp] (no file at {(folders.temp / 'x.png').resolve()})"


def test_load_16_bit_grayscale_png(folders: Folders) -> None:
    levels = np.array([[0, 16384, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(levels).save(folders.input / "depth.png")
    image, mask = call("LoadImage", image="depth.png")
    assert image.shape == (1, 1, 4, 3) and mask.shape == (1, 64, 64)
    expected = torch.tensor([0.0, 0.25, 0.5, 1.0])
    for channel in range(3):
        assert torch.allclose(image[0, 0, :, channel], expected, atol=2 / 255)
