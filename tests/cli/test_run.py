"""``comfy run``: API and UI workflows, --set, --out, --cache and --check, and every kind of bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.cli.conftest import api_prompt, stderr_lines

REPO = Path(__file__).resolve().parents[2]
UI_FIXTURES = REPO / "tests" / "fixtures" / "workflows" / "ui"


def test_run_api_workflow(comfy: Any, write_json: Any, workdir: Path) -> None:
    path = write_json("wf.json", api_prompt())
    out = comfy("run", str(path))
    assert out.exit_code == 0, out.stderr_lines
    assert out.stdout.splitlines() == [str(Path("output") / "cli_00001_.png")]
    with Image.open(workdir / "output" / "cli_00001_.png") as png:
        png.load()
        assert png.size == (4, 3) and png.getpixel((0, 0)) == (255, 255, 0)
        assert json.loads(png.text["prompt"]) == api_prompt()
        assert "workflow" not in png.text
    assert out.stderr_lines == []


def test_run_twice_continues_the_counter(comfy: Any, write_json: Any) -> None:
    path = write_json("wf.json", api_prompt())
    assert comfy("run", str(path)).exit_code == 0
    out = comfy("run", str(path))
    assert out.exit_code == 0 and out.stdout.splitlines() == [str(Path("output") / "cli_00002_.png")]


def test_run_ui_workflow_embeds_prompt_and_workflow(comfy: Any, workdir: Path) -> None:
    shutil.copy(UI_FIXTURES / "basic.json", workdir / "basic.json")
    out = comfy("run", "basic.json", "--out", "renders")
    assert out.exit_code == 0, out.stderr_lines
    expected = Path("renders") / "basic" / "inverted_00001_.png"
    assert out.stdout.splitlines() == [str(expected)]
    with Image.open(workdir / expected) as png:
        png.load()
        assert png.getpixel((0, 0)) == (0, 126, 255)  # 126.99 truncated, as ComfyUI's SaveImage
        assert json.loads(png.text["workflow"]) == json.loads((UI_FIXTURES / "basic.json").read_text())
        prompt = json.loads(png.text["prompt"])
        assert prompt["3"] == {"class_type": "SaveImage",
                               "inputs": {"images": ["2", 0], "filename_prefix": "basic/inverted"}}


def test_run_subgraph_workflow_prints_every_output(comfy: Any, workdir: Path) -> None:
    out = comfy("run", str(UI_FIXTURES / "subgraph.json"))
    assert out.exit_code == 0, out.stderr_lines
    lines = out.stdout.splitlines()
    assert str(Path("output") / "sub_00001_.png") in lines
    assert len(lines) == 3 and all((workdir / line).is_file() for line in lines)
    assert sum(line.startswith(str(Path("output") / "temp" / "ComfyUI_temp_")) for line in lines) == 2


def test_run_prompt_wrapper_format(comfy: Any, write_json: Any, workdir: Path) -> None:
    workflow = {"nodes": [], "links": [], "note": "from a /prompt request"}
    path = write_json("req.json", {"prompt": api_prompt(), "extra_data": {"extra_pnginfo": {"workflow": workflow}}})
    out = comfy("run", str(path))
    assert out.exit_code == 0, out.stderr_lines
    with Image.open(workdir / "output" / "cli_00001_.png") as png:
        png.load()
        assert json.loads(png.text["workflow"]) == workflow


def test_set_overrides_inputs_with_json_and_plain_values(comfy: Any, write_json: Any, workdir: Path) -> None:
    path = write_json("wf.json", api_prompt())
    out = comfy("run", str(path), "--set", "1.width=7", "--set", "3.filename_prefix=runs/a b",
                "--set", "1.color=16711680")
    assert out.exit_code == 0, out.stderr_lines
    saved = workdir / "output" / "runs" / "a b_00001_.png"
    assert out.stdout.splitlines() == [str(Path("output") / "runs" / "a b_00001_.png")]
    with Image.open(saved) as png:
        png.load()
        assert png.size == (7, 3) and png.getpixel((0, 0)) == (0, 255, 255)
        assert json.loads(png.text["prompt"])["1"]["inputs"]["width"] == 7  # the prompt as run
    assert json.loads(path.read_text()) == api_prompt(), "--set must not rewrite the workflow file"


def test_set_json_value_for_a_string_input_is_converted(comfy: Any, write_json: Any, workdir: Path) -> None:
    out = comfy("run", str(write_json("wf.json", api_prompt())), "--set", "3.filename_prefix=2024")
    assert out.exit_code == 0, out.stderr_lines
    assert (workdir / "output" / "2024_00001_.png").is_file()


def test_set_unknown_node_is_an_error(comfy: Any, write_json: Any) -> None:
    write_json("wf.json", api_prompt())
    out = comfy("run", "wf.json", "--set", "9.width=3")
    assert out.exit_code == 2
    assert out.stderr_lines == ["error: --set 9.width: node 9 is not in wf.json"]


@pytest.mark.parametrize("assignment", ["width=3", "1.width", "=3", ".width=3", "1.=3"])
def test_set_malformed_is_an_error(comfy: Any, write_json: Any, assignment: str) -> None:
    out = comfy("run", str(write_json("wf.json", api_prompt())), "--set", assignment)
    assert out.exit_code == 2
    assert len(out.stderr_lines) == 1 and "expected NODE.INPUT=VALUE" in out.stderr_lines[0]


@pytest.mark.parametrize("spec", ["classic", "none", "lru:4", "ram:0.5"])
def test_cache_strategies_run(comfy: Any, write_json: Any, workdir: Path, spec: str) -> None:
    out = comfy("run", str(write_json("wf.json", api_prompt())), "--cache", spec, "--out", "o")
    assert out.exit_code == 0, out.stderr_lines
    assert (workdir / "o" / "cli_00001_.png").is_file()


@pytest.mark.parametrize("spec", ["bogus", "lru:x", "ram:", "lru:-1"])
def test_unknown_cache_spec(comfy: Any, write_json: Any, workdir: Path, spec: str) -> None:
    out = comfy("run", str(write_json("wf.json", api_prompt())), "--cache", spec)
    assert out.exit_code == 2
    assert len(out.stderr_lines) == 1 and out.stderr_lines[0].startswith("error: --cache: ")
    assert not (workdir / "output").exists()


def test_check_ok(comfy: Any, write_json: Any, workdir: Path) -> None:
    out = comfy("run", "--check", str(write_json("wf.json", api_prompt())))
    assert out.exit_code == 0 and out.stdout.strip() == "ok: 3 nodes, outputs 3"
    assert not (workdir / "output").exists(), "--check must not run anything"


def test_check_json_ok(comfy: Any, write_json: Any) -> None:
    out = comfy("run", "--check", "--json", str(write_json("wf.json", api_prompt())))
    assert out.exit_code == 0 and json.loads(out.stdout) == {"node_errors": {}}


def test_check_ui_workflow(comfy: Any) -> None:
    out = comfy("run", "--check", str(UI_FIXTURES / "modes.json"))
    assert out.exit_code == 0 and out.stdout.startswith("ok: ")


def test_check_json_has_comfyui_prompt_response_shape(comfy: Any, write_json: Any) -> None:
    prompt = api_prompt(width=0)
    out = comfy("run", "--check", "--json", str(write_json("wf.json", prompt)))
    assert out.exit_code == 2
    response = json.loads(out.stdout)
    assert set(response) == {"error", "node_errors"}
    assert response["error"]["type"] == "prompt_outputs_failed_validation"
    assert set(response["error"]) == {"type", "message", "details", "extra_info"}
    entry = response["node_errors"]["1"]
    assert entry["class_type"] == "EmptyImage" and entry["dependent_outputs"] == ["3"]
    (err,) = entry["errors"]
    assert err["type"] == "value_smaller_than_min"
    assert err["extra_info"]["input_name"] == "width" and err["extra_info"]["received_value"] == 0
    assert out.stderr_lines == []


def test_check_json_for_an_unknown_node(comfy: Any, write_json: Any) -> None:
    out = comfy("run", "--check", "--json", str(write_json("wf.json", {"5": {"class_type": "Nope", "inputs": {}}})))
    assert out.exit_code == 2
    assert json.loads(out.stdout) == {
        "error": {"type": "invalid_prompt", "message": "Cannot execute because node Nope does not exist.",
                  "details": "Node ID '#5'", "extra_info": {}},
        "node_errors": {}}


def test_check_json_without_outputs(comfy: Any, write_json: Any) -> None:
    out = comfy("run", "--check", "--json", str(write_json("wf.json", {"1": {"class_type": "PrimitiveInt",
                                                                               "inputs": {"value": 1}}})))
    assert out.exit_code == 2
    assert json.loads(out.stdout) == {
        "error": {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}},
        "node_errors": {}}


def test_check_text_failure_is_one_line(comfy: Any, write_json: Any) -> None:
    out = comfy("run", "--check", str(write_json("wf.json", api_prompt(width=0))))
    assert out.exit_code == 2 and out.stdout == ""
    assert out.stderr_lines == ["error: node 1 (EmptyImage) input 'width': value_smaller_than_min: "
                                "Value 0 smaller than min of 1: width"]


def test_workflow_file_with_a_byte_order_mark(comfy: Any, workdir: Path) -> None:
    (workdir / "bom.json").write_text(json.dumps(api_prompt()), encoding="utf-8-sig")
    out = comfy("run", "bom.json")
    assert out.exit_code == 0, out.stderr_lines


def test_workflow_file_that_is_not_text(comfy: Any, workdir: Path) -> None:
    (workdir / "image.json").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    out = comfy("run", "image.json")
    assert out.exit_code == 2 and len(out.stderr_lines) == 1
    assert out.stderr_lines[0].startswith("error: image.json: not UTF-8 text")


def test_check_json_partial_failure_still_ok(comfy: Any, write_json: Any) -> None:
    prompt = api_prompt()
    prompt["9"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}
    out = comfy("run", "--check", "--json", str(write_json("wf.json", prompt)))
    assert out.exit_code == 0
    response = json.loads(out.stdout)
    assert "error" not in response and response["node_errors"]["9"]["errors"][0]["type"] == "bad_linked_input"


def test_a_failing_output_is_reported_and_the_others_run(comfy: Any, write_json: Any, workdir: Path) -> None:
    prompt = api_prompt()
    prompt["9"] = {"class_type": "PreviewImage", "inputs": {}}
    out = comfy("run", str(write_json("wf.json", prompt)))
    assert out.exit_code == 0
    assert (workdir / "output" / "cli_00001_.png").is_file()
    assert out.stdout.splitlines() == [str(Path("output") / "cli_00001_.png")]
    assert "warning: outputs 9 skipped: node 9 (PreviewImage): Required input is missing" in out.stderr


BAD_INPUTS: dict[str, tuple[Any, list[str]]] = {
    "unknown node class": ({"1": {"class_type": "NoSuchNode", "inputs": {}}},
                           ["invalid_prompt", "NoSuchNode", "#1"]),
    "type mismatch": ({"1": {"class_type": "PrimitiveString", "inputs": {"value": "x"}},
                       "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}},
                      ["node 2", "'images'", "return_type_mismatch", "STRING", "IMAGE"]),
    "value out of range": (api_prompt(width=100000), ["node 1", "'width'", "value_bigger_than_max", "100000"]),
    "value below min": (api_prompt(width=0), ["node 1", "'width'", "value_smaller_than_min"]),
    "invalid value type": ({**api_prompt(), "1": {"class_type": "EmptyImage", "inputs": {
        "width": "wide", "height": 3, "batch_size": 1, "color": 0}}}, ["node 1", "'width'", "invalid_input_type"]),
    "missing input": ({**api_prompt(), "2": {"class_type": "ImageInvert", "inputs": {}}},
                      ["node 2", "'image'", "required_input_missing"]),
    "link to a missing node": ({**api_prompt(), "2": {"class_type": "ImageInvert", "inputs": {"image": ["7", 0]}}},
                               ["node 2", "'image'", "bad_linked_input"]),
    "value not in list": ({"1": {"class_type": "EmptyImage", "inputs": {
        "width": 4, "height": 4, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "magic", "scale_by": 1}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}},
        ["node 2", "'upscale_method'", "value_not_in_list", "magic"]),
    "dependency cycle": ({"1": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
                          "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
                          "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}},
                         ["dependency_cycle", "1 -> 2", "2 -> 1"]),
    "no outputs": ({"1": {"class_type": "PrimitiveInt", "inputs": {"value": 1}}}, ["prompt_no_outputs"]),
    "not a prompt": ([1, 2, 3], ["invalid_prompt", "JSON object"]),
    "node without class_type": ({"1": {"inputs": {}}}, ["invalid_prompt", "node 1", "class_type"]),
    "missing image file": ({"1": {"class_type": "LoadImage", "inputs": {"image": "nope.png"}},
                            "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}},
                           ["node 1", "'image'", "custom_validation_failed", "nope.png"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2(comfy: Any, write_json: Any, workdir: Path, case: str) -> None:
    prompt, needles = BAD_INPUTS[case]
    out = comfy("run", str(write_json("wf.json", prompt)))
    assert out.exit_code == 2, out.stdout
    assert len(out.stderr_lines) == 1, out.stderr_lines
    line = out.stderr_lines[0]
    assert line.startswith("error: ")
    for needle in needles:
        assert needle in line
    assert "Traceback" not in line and out.stdout == ""
    assert not (workdir / "output").exists() or not any((workdir / "output").rglob("*.png"))


def test_missing_file(comfy: Any) -> None:
    out = comfy("run", "missing.json")
    assert out.exit_code == 2 and out.stderr_lines == ["error: missing.json: no such file"]


def test_invalid_json_names_line_and_column(comfy: Any, workdir: Path) -> None:
    (workdir / "bad.json").write_text('{\n  "1": {"class_type": "EmptyImage",,}\n}')
    out = comfy("run", "bad.json")
    assert out.exit_code == 2
    assert len(out.stderr_lines) == 1
    assert out.stderr_lines[0].startswith("error: bad.json: invalid JSON at line 2 column ")


def test_folder_instead_of_file(comfy: Any, workdir: Path) -> None:
    out = comfy("run", str(workdir))
    assert out.exit_code == 2 and out.stderr_lines == [f"error: {workdir}: is a folder, not a workflow file"]


def test_broken_ui_workflow(comfy: Any, write_json: Any) -> None:
    path = write_json("ui.json", {"nodes": [{"id": 1, "type": "Reroute", "inputs": [{"link": 1}],
                                             "outputs": [{"links": [1]}]},
                                            {"id": 2, "type": "PreviewImage", "inputs": [{"name": "images",
                                                                                          "link": 1}]}],
                                  "links": [[1, 1, 0, 1, 0, "IMAGE"]]})
    out = comfy("run", path.name)
    assert out.exit_code == 2 and len(out.stderr_lines) == 1
    assert out.stderr_lines[0].startswith("error: ui.json: not a valid UI-format workflow: link loop through node 1")


def test_node_failure_at_run_time(comfy: Any, write_json: Any, workdir: Path) -> None:
    out = comfy("run", str(write_json("wf.json", api_prompt(prefix="../escape"))))
    assert out.exit_code == 1
    assert len(out.stderr_lines) == 1
    line = out.stderr_lines[0]
    assert line.startswith("error: node 3 (SaveImage) failed: ValueError: filename_prefix '../escape'")
    assert line.endswith("(run with --debug for the traceback)")
    assert not (workdir / "escape_00001_.png").exists()


def test_debug_shows_the_node_traceback(comfy: Any, write_json: Any) -> None:
    out = comfy("--debug", "run", str(write_json("wf.json", api_prompt(prefix="../escape"))))
    assert out.exit_code == 1
    text = "\n".join(out.stderr_lines)
    assert "Traceback (most recent call last)" in text and "save_path" in text
    assert out.stderr_lines[-1].startswith("error: node 3 (SaveImage) failed")
    assert "--debug" not in out.stderr_lines[-1]


def test_unexpected_error_is_one_line_and_debug_shows_its_traceback(comfy: Any, write_json: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import hearth.cli.run

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(hearth.cli.run, "parse_prompt", explode)
    path = str(write_json("wf.json", api_prompt()))
    out = comfy("run", path)
    assert out.exit_code == 2 and out.stderr_lines == ["error: RuntimeError: disk on fire"]
    out = comfy("--debug", "run", path)
    assert out.exit_code == 2
    assert out.stderr_lines[0] == "Traceback (most recent call last):"
    assert out.stderr_lines[-1] == "error: RuntimeError: disk on fire"


# -- real processes --------------------------------------------------------------------------------------


def comfy_process(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).with_name("comfy")
    env = {**os.environ, "HEARTH_DISABLE_PLUGINS": "sd"}
    env.pop("HEARTH_PLUGINS", None)
    return subprocess.run([str(executable), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_process_runs_a_ui_workflow(workdir: Path) -> None:
    shutil.copy(UI_FIXTURES / "reroute_primitive.json", workdir / "wf.json")
    proc = comfy_process("run", "wf.json", "--out", "out", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    saved = str(Path("out") / "reroute" / "out_00001_.png")
    lines = proc.stdout.splitlines()
    assert sorted(lines)[0] == saved and len(lines) == 2 and (workdir / lines[1]).is_file()
    with Image.open(workdir / saved) as png:
        png.load()
        assert set(png.text) == {"prompt", "workflow"} and png.size == (12, 12)
    assert stderr_lines(proc.stderr) == []


def test_process_bad_input_exit_code_and_single_line(workdir: Path) -> None:
    (workdir / "wf.json").write_text(json.dumps(api_prompt(width=100000)))
    proc = comfy_process("run", "wf.json", cwd=workdir)
    assert proc.returncode == 2
    lines = stderr_lines(proc.stderr)
    assert lines == ["error: node 1 (EmptyImage) input 'width': value_bigger_than_max: "
                     "Value 100000 bigger than max of 16384: width"]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_set_on_a_node_inside_a_subgraph(comfy: Any, workdir: Path) -> None:
    shutil.copy(UI_FIXTURES / "subgraph.json", workdir / "wf.json")
    out = comfy("run", "wf.json", "--set", "2:11.scale_by=0.25", "--set", "3.filename_prefix=small")
    assert out.exit_code == 0, out.stderr_lines
    with Image.open(workdir / "output" / "small_00001_.png") as png:
        assert png.size == (4, 2)


def test_input_dir(comfy: Any, write_json: Any, workdir: Path) -> None:
    (workdir / "pictures").mkdir()
    Image.new("RGBA", (5, 4), (10, 20, 30, 0)).save(workdir / "pictures" / "in.png")
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "in.png"}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "copy"}}}
    out = comfy("run", str(write_json("wf.json", prompt)), "--input-dir", "pictures")
    assert out.exit_code == 0, out.stderr_lines
    with Image.open(workdir / "output" / "copy_00001_.png") as png:
        assert png.size == (5, 4) and png.getpixel((0, 0)) == (10, 20, 30)
    out = comfy("run", "wf.json")  # ./input has no in.png
    assert out.exit_code == 2 and "Invalid image file: in.png" in out.stderr_lines[0]


def test_json_without_check_is_refused(comfy: Any, write_json: Any, workdir: Path) -> None:
    out = comfy("run", "--json", str(write_json("wf.json", api_prompt())))
    assert out.exit_code == 2 and len(out.stderr_lines) == 1 and "--json works with --check only" in out.stderr_lines[0]
    assert not (workdir / "output").exists()


def test_debug_shows_a_traceback_for_bad_input(comfy: Any) -> None:
    out = comfy("--debug", "run", "missing.json")
    assert out.exit_code == 2
    assert "Traceback (most recent call last)" in out.stderr
    assert out.stderr_lines[-1] == "error: missing.json: no such file"


# Builtin-node examples only: these tests disable the SD plugin, and its examples need models; tests/test_examples.py
# runs every example against `comfy models make-tiny all`'s models.
@pytest.mark.parametrize("example", sorted(p.name for p in (REPO / "examples" / "workflows").glob("builtin_*.json")))
def test_example_workflows_run(comfy: Any, workdir: Path, example: str) -> None:
    out = comfy("run", str(REPO / "examples" / "workflows" / example), "--out", "demo")
    assert out.exit_code == 0, out.stderr_lines
    saved = [workdir / line for line in out.stdout.splitlines()]
    assert saved and all(path.suffix == ".png" and path.is_file() for path in saved)
