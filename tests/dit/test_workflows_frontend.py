"""The official frontend's default workflow (Z-Image Turbo), as the installed frontend package ships it, validates
and runs on tiny models saved under the file names it references; the templates package's Flux and Z-Image
templates validate once tiny files exist under their names.

The default workflow is a TypeScript literal in the frontend's sources (``src/scripts/defaultGraph.ts``), which the
package ships in its source maps: :func:`default_workflow` reads it from there and turns it into JSON.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from hearth.cli.main import cli
from hearth.core.executor.workflow import ui_to_api
from hearth.core.runtime import Runtime

LOADERS = {"UNETLoader": "diffusion_models", "CLIPLoader": "text_encoders", "DualCLIPLoader": "text_encoders",
           "VAELoader": "vae", "CheckpointLoaderSimple": "checkpoints"}


@pytest.fixture(autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 2))  # the suite's budget is two cores
    yield
    torch.set_num_threads(before)


def _package(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{name} is not installed: the test reads the workflow the package ships")
    return Path(next(iter(spec.submodule_search_locations)))


def ts_literal_to_json(text: str) -> Any:
    """A TypeScript object literal (unquoted keys, single-quoted strings, trailing commas) as Python data."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "'\"`":
            j, chars = i + 1, []
            while text[j] != ch:
                if text[j] == "\\":
                    j += 1
                    chars.append({"n": "\n", "t": "\t"}.get(text[j], text[j]))
                else:
                    chars.append(text[j])
                j += 1
            out.append(json.dumps("".join(chars)))
            i = j + 1
        elif ch.isalpha() or ch in "_$":
            word = re.match(r"[\w$]+", text[i:]).group(0)
            i += len(word)
            out.append(word if word in ("true", "false", "null") else json.dumps(word))
        elif text.startswith("//", i):
            i = text.index("\n", i)
        elif ch in "}]":
            while out and (out[-1].isspace() or out[-1] == ","):
                out.pop()  # a trailing comma
            out.append(ch)
            i += 1
        else:
            out.append(ch)
            i += 1
    return json.loads("".join(out))


def default_workflow() -> dict[str, Any]:
    """The frontend's production default graph (``prodDefaultGraph``), read from the package's source maps."""
    assets = _package("comfyui_frontend_package") / "static" / "assets"
    maps = sorted(assets.glob("workflowStore-*.js.map")) or sorted(assets.glob("*.js.map"))
    for path in maps:
        text = path.read_text(encoding="utf-8")
        if "defaultGraph.ts" not in text:
            continue
        data = json.loads(text)
        source = data["sourcesContent"][next(i for i, s in enumerate(data["sources"]) if s.endswith("defaultGraph.ts"))]
        start = source.index("{", source.index("const prodDefaultGraph"))
        end = source.index("export const defaultGraph")
        return ts_literal_to_json(source[start:source.rindex("}", start, end) + 1])
    pytest.skip("the installed frontend package ships no defaultGraph.ts source map")


def referenced_models(workflow: dict[str, Any]) -> dict[str, set[str]]:
    """The model files a UI workflow's loader nodes name (subgraphs included), by folder kind."""
    nodes = list(workflow["nodes"])
    for subgraph in (workflow.get("definitions") or {}).get("subgraphs", []):
        nodes += subgraph.get("nodes", [])
    found: dict[str, set[str]] = {}
    for node in nodes:
        kind = LOADERS.get(node["type"])
        if kind is not None:
            names = [v for v in node.get("widgets_values") or [] if isinstance(v, str) and v.endswith(".safetensors")]
            found.setdefault(kind, set()).update(names)
    return found


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """make-tiny z-image and flux (the families' own tiny files) in one folder."""
    folder = tmp_path_factory.mktemp("tiny_dit") / "models"
    for bundle in ("z-image", "flux"):
        result = CliRunner().invoke(cli, ["models", "make-tiny", bundle, "--out", str(folder)])
        if result.exit_code != 0 and "no tiny model" in result.output.lower():
            pytest.skip(f"make-tiny {bundle} is not available yet: {result.output.strip()}")
        assert result.exit_code == 0, result.output
    for name, target in (("flux-dit-schnell", "diffusion_models/tiny-flux-schnell.safetensors"),
                         ("flux-checkpoint", "checkpoints/tiny-flux-schnell-aio.safetensors")):
        (folder / target).parent.mkdir(parents=True, exist_ok=True)
        result = CliRunner().invoke(cli, ["models", "make-tiny", name, "--out", str(folder / target)])
        assert result.exit_code == 0, result.output
    return folder


def place(tiny: Path, models: Path, kind: str, source: str, name: str) -> None:
    """Copy a tiny file under the name a workflow references, with its tokenizer renamed beside it."""
    found = next(tiny.rglob(source))
    (models / kind).mkdir(parents=True, exist_ok=True)
    shutil.copy(found, models / kind / name)
    tokenizer = found.with_name(found.stem + ".tokenizer.json")
    if tokenizer.is_file():
        shutil.copy(tokenizer, models / kind / (Path(name).stem + ".tokenizer.json"))


def test_the_default_workflow_is_z_image_turbo() -> None:
    workflow = default_workflow()
    types = {node["type"] for node in workflow["nodes"]}
    assert {"UNETLoader", "CLIPLoader", "VAELoader", "ModelSamplingAuraFlow", "EmptySD3LatentImage", "KSampler",
            "SaveImage"} <= types
    assert referenced_models(workflow) == {"diffusion_models": {"z_image_turbo_bf16.safetensors"},
                                           "text_encoders": {"qwen_3_4b.safetensors"}, "vae": {"ae.safetensors"}}


def test_the_default_workflow_validates_and_runs_on_tiny_models(tiny: Path, tmp_path: Path) -> None:
    workflow = default_workflow()
    models = tmp_path / "models"
    place(tiny, models, "diffusion_models", "tiny-zimage.safetensors", "z_image_turbo_bf16.safetensors")
    place(tiny, models, "text_encoders", "tiny-qwen3.safetensors", "qwen_3_4b.safetensors")
    place(tiny, models, "vae", "tiny-flux-ae.safetensors", "ae.safetensors")
    runtime = Runtime.build(models_dir=models, output=tmp_path / "out", input=tmp_path / "in",
                            temp=tmp_path / "temp", environ={})
    with runtime.activate():
        prompt = ui_to_api(workflow, runtime.nodes)
        checked = runtime.executor.validate(prompt)
        assert checked.ok, checked.error or checked.node_errors
        # As shipped: 1024x1024. The run is the same graph at 64x64 and 2 steps, for CI's two cores.
        for node in prompt.values():
            if node["class_type"] == "EmptySD3LatentImage":
                assert (node["inputs"]["width"], node["inputs"]["height"]) == (1024, 1024)
                node["inputs"].update(width=64, height=64)
            if node["class_type"] == "KSampler":
                node["inputs"]["steps"] = 2
        result = runtime.executor.run(prompt)
        assert result.ok, result.error or result.validation.node_errors
    (saved,) = (tmp_path / "out").rglob("*.png")
    with Image.open(saved) as image:
        assert image.size == (64, 64) and json.loads(image.text["prompt"])
        assert min(high - low for low, high in image.getextrema()) > 0  # a decoded latent, not a flat fill


TEMPLATES = ("flux_schnell", "flux_schnell_full_text_to_image", "flux_dev_full_text_to_image", "image_z_image_turbo")
# Which tiny file stands in for each file name the templates reference.
STAND_INS = {"diffusion_models": {"schnell": "tiny-flux-schnell.safetensors", "flux": "tiny-flux.safetensors",
                                  "z_image": "tiny-zimage.safetensors"},
             "text_encoders": {"t5": "tiny-t5xxl.safetensors", "clip_l": "tiny-flux-clip-l.safetensors",
                               "qwen": "tiny-qwen3.safetensors"},
             "vae": {"ae": "tiny-flux-ae.safetensors"},
             "checkpoints": {"flux": "tiny-flux-schnell-aio.safetensors"}}


def template_models(name: str, tiny: Path, models: Path) -> dict[str, Any]:
    """The template as the package ships it, with a tiny stand-in saved under each model file name it references."""
    path = _package("comfyui_workflow_templates_json") / "templates" / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"the installed templates package has no {name}.json")
    workflow = json.loads(path.read_text(encoding="utf-8"))
    for kind, names in referenced_models(workflow).items():
        for file in names:
            source = next((tiny_name for key, tiny_name in STAND_INS.get(kind, {}).items() if key in file.lower()),
                          None)
            assert source, f"{name} references {kind}/{file}, which no tiny stand-in covers"
            place(tiny, models, kind, source, file)
    return workflow


@pytest.mark.parametrize("name", TEMPLATES)
def test_flux_and_z_image_templates_validate_with_their_model_files(name: str, tiny: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    workflow = template_models(name, tiny, models)
    runtime = Runtime.build(models_dir=models, output=tmp_path / "out", environ={})
    with runtime.activate():
        prompt = ui_to_api(workflow, runtime.nodes)
        checked = runtime.executor.validate(prompt)
    assert checked.ok, checked.error or checked.node_errors


@pytest.mark.parametrize("name", ["flux_schnell_full_text_to_image", "flux_schnell"])
def test_the_flux_schnell_templates_run_on_tiny_models(name: str, tiny: Path, tmp_path: Path) -> None:
    """As shipped: DualCLIPLoader flux, CLIPTextEncodeFlux, ConditioningZeroOut, UNETLoader, VAELoader; or an
    all-in-one checkpoint through CheckpointLoaderSimple with CLIPTextEncode; KSampler and VAEDecode."""
    models = tmp_path / "models"
    workflow = template_models(name, tiny, models)
    runtime = Runtime.build(models_dir=models, output=tmp_path / "out", input=tmp_path / "in",
                            temp=tmp_path / "temp", environ={})
    with runtime.activate():
        prompt = ui_to_api(workflow, runtime.nodes)
        for node in prompt.values():  # 64x64 and 2 steps instead of 1024x1024 and 4, for CI's two cores
            if node["class_type"] == "EmptySD3LatentImage":
                node["inputs"].update(width=64, height=64)
            if node["class_type"] == "KSampler":
                node["inputs"]["steps"] = 2
        result = runtime.executor.run(prompt)
        assert result.ok, result.error or result.validation.node_errors
    (saved,) = (tmp_path / "out").rglob("*.png")
    with Image.open(saved) as image:
        assert image.size == (64, 64) and min(high - low for low, high in image.getextrema()) > 0
