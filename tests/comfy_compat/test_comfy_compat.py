"""ComfyUI-format packs that import ComfyUI's internals load in a Runtime and run on Hearth's executor."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import hearth_comfy_compat as comfy_compat
import pytest

from hearth.core.context import Folders
from hearth.core.executor import Executor
from hearth.core.model_folders import ModelFolders, model_folders
from hearth.core.plugins import PluginManager
from hearth.core.runtime import Runtime

PACKS = Path(__file__).parent / "packs"
ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelFolders:
    """An empty models folder: the packs add their own kinds and folders to it (through conftest's packs_runtime)."""
    return ModelFolders(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def pm(packs_runtime: Runtime) -> PluginManager:
    return packs_runtime.plugins


@pytest.fixture
def executor(pm: PluginManager, tmp_path: Path) -> Executor:
    return Executor(pm.nodes(), folders=Folders(tmp_path / "output", tmp_path / "input", tmp_path / "temp"))


def node(class_type: str, **inputs) -> dict:
    return {"class_type": class_type, "inputs": inputs}


def test_packs_load_with_comfyui_imports(pm: PluginManager) -> None:
    assert pm.records["model_pack"].error is None, pm.records["model_pack"].traceback
    assert pm.records["preview_pack"].error is None, pm.records["preview_pack"].traceback
    assert {"CountTo", "AddThree", "NoisePreview"} <= set(pm.nodes())


def test_folder_names_and_paths_edits_reach_hearths_model_folders(pm: PluginManager, executor: Executor,
                                                                   models: ModelFolders) -> None:
    assert model_folders() is models
    assert models.list("pack_models") == ["tiny.bin"]
    assert str(PACKS / "model_pack" / "extra_loras") in [str(p) for p in models.folders("loras")]
    assert pm.nodes()["ListPackModels"].cls.INPUT_TYPES()["required"]["name"][0] == ["tiny.bin"]
    result = executor.run({"1": node("ListPackModels", name="tiny.bin")}, targets=["1"])
    assert result.ok, result.error


def test_folder_paths_functions(pm: PluginManager, models: ModelFolders) -> None:
    import folder_paths

    assert folder_paths.get_full_path("pack_models", "tiny.bin") == str(PACKS / "model_pack" / "models" / "tiny.bin")
    assert folder_paths.get_full_path("pack_models", "absent.bin") is None
    with pytest.raises(FileNotFoundError, match="absent.bin"):
        folder_paths.get_full_path_or_raise("pack_models", "absent.bin")
    assert folder_paths.models_dir == str(models.base)
    folder_paths.add_model_folder_path("checkpoints", "/elsewhere/ckpts", is_default=True)
    assert folder_paths.get_folder_paths("checkpoints")[0] == "/elsewhere/ckpts"
    assert ".safetensors" in folder_paths.supported_pt_extensions
    assert folder_paths.get_annotated_filepath("a.png [output]").endswith("output/a.png")


def test_progress_bar_feeds_progress_events(executor: Executor) -> None:
    events = []
    result = executor.run({"1": node("CountTo", steps=3)}, targets=["1"],
                          emit=lambda event, data: events.append((event, data)))
    assert result.ok, result.error
    progress = [(d["value"], d["max"]) for e, d in events if e == "progress"]
    assert progress == [(1, 3), (2, 3), (3, 3)]


def test_execution_blocker_skips_the_branch(executor: Executor) -> None:
    prompt = {"1": node("Gate", value=4, open=False), "2": node("CountTo", steps=["1", 0])}
    events = []
    result = executor.run(prompt, targets=["2"], emit=lambda event, data: events.append(event))
    assert result.ok and "progress" not in events


def test_graph_builder_expansion_runs(pm: PluginManager, executor: Executor) -> None:
    events = []
    prompt = {"1": node("AddThree", value=4), "2": node("CountTo", steps=["1", 0])}
    result = executor.run(prompt, targets=["2"], emit=lambda event, data: events.append((event, data)))
    assert result.ok, result.error
    assert [d["max"] for e, d in events if e == "progress"][-1] == 7


def test_subclassed_preview_image_saves_to_temp(executor: Executor, tmp_path: Path) -> None:
    from nodes import PreviewImage

    from hearth.core.builtin_nodes.image_io import PreviewImage as Hearths

    assert PreviewImage is Hearths
    result = executor.run({"1": node("NoisePreview", size=8)})
    assert result.ok, result.error
    [image] = result.outputs["1"]["images"]
    assert image["type"] == "temp" and (tmp_path / "temp" / image["filename"]).is_file()


def test_a_missing_name_fails_the_node_naming_the_pack(executor: Executor) -> None:
    result = executor.run({"1": node("UsesMissing")}, targets=["1"])
    assert result.status == "error"
    message = result.error["exception_message"]
    assert message == "Hearth does not provide comfy.utils.tiled_scale_with_magic (used by pack model_pack)"
    assert "comfy.utils.tiled_scale_with_magic" in comfy_compat.missing_names()["model_pack"]


def test_missing_attribute_answers_hasattr_false(pm: PluginManager) -> None:
    import comfy.model_management as mm

    assert not hasattr(mm, "a_flag_hearth_lacks")
    with pytest.raises(AttributeError, match="Hearth does not provide comfy.model_management.a_flag_hearth_lacks"):
        mm.a_flag_hearth_lacks  # noqa: B018


def test_nodes_module_maps_the_registry(pm: PluginManager) -> None:
    import nodes

    assert nodes.NODE_CLASS_MAPPINGS["CountTo"] is pm.nodes()["CountTo"].cls
    assert nodes.NODE_CLASS_MAPPINGS["SaveImage"] is nodes.SaveImage
    assert nodes.MAX_RESOLUTION == 16384


def test_model_management_and_cli_args(pm: PluginManager) -> None:
    import comfy.cli_args
    import comfy.model_management as mm

    from hearth.core.context import InterruptProcessing

    assert mm.InterruptProcessingException is InterruptProcessing
    assert mm.intermediate_device().type == "cpu" and mm.unet_offload_device().type == "cpu"
    assert mm.get_free_memory(mm.intermediate_device()) > 0
    assert comfy.cli_args.args.port == 8188 and comfy.cli_args.args.lowvram is False


def test_state_dict_prefix_replace_and_torch_files(pm: PluginManager, tmp_path: Path) -> None:
    import comfy.utils
    import torch

    sd = {"model.a": torch.ones(1), "other": torch.zeros(1)}
    assert sorted(comfy.utils.state_dict_prefix_replace(dict(sd), {"model.": "m."})) == ["m.a", "other"]
    assert list(comfy.utils.state_dict_prefix_replace(dict(sd), {"model.": ""}, filter_keys=True)) == ["a"]
    comfy.utils.save_torch_file(sd, str(tmp_path / "x.safetensors"), metadata={"k": "v"})
    loaded, meta = comfy.utils.load_torch_file(str(tmp_path / "x.safetensors"), return_metadata=True)
    assert torch.equal(loaded["model.a"], sd["model.a"]) and meta == {"k": "v"}


def test_the_hook_is_only_installed_when_packs_load() -> None:
    code = ("import sys\nfrom hearth.core.runtime import Runtime\nRuntime.build(environ={}, entry_points=False).plugins\n"
            "try:\n    import folder_paths\nexcept ModuleNotFoundError:\n    print('absent')\n"
            f"Runtime.build(environ={{}}, entry_points=False, custom_nodes=[{str(PACKS)!r}]).plugins\n"
            "import folder_paths\nprint(folder_paths.__spec__.loader.__class__.__module__)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["absent", "hearth_comfy_compat.hook"]


def test_uninstall_forgets_served_modules(pm: PluginManager) -> None:
    import folder_paths  # noqa: F401

    try:
        comfy_compat.uninstall()
        assert "folder_paths" not in sys.modules and not comfy_compat.installed()
        with pytest.raises(ModuleNotFoundError):
            import folder_paths  # noqa: F401, F811
    finally:
        comfy_compat.install()


def test_model_kinds_registered_the_ways_real_packs_do(pm: PluginManager, models: ModelFolders) -> None:
    import folder_paths

    assert pm.records["folders_pack"].error is None, pm.records["folders_pack"].traceback
    assert models.list("saved_prompts") == ["cat.txt"]
    assert models.list("inpaint") == ["fill.patch"]
    assert models.list("pack_upscalers") == ["x4.pth"]
    assert folder_paths.get_folder_paths("custom_nodes") == [str(PACKS)]
    assert "custom_nodes" in folder_paths.folder_names_and_paths


def test_submodule_reached_through_the_package(pm: PluginManager) -> None:
    code = ("from hearth.core.runtime import Runtime\n"
            f"Runtime.build(environ={{}}, entry_points=False, custom_nodes=[{str(PACKS)!r}]).plugins\n"
            "import sys\nimport comfy\nsys.modules.pop('comfy.model_management')\n"
            "del comfy.model_management\n"
            "print(comfy.model_management.intermediate_device())\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["cpu"]


def test_load_models_gpu_makes_the_model_resident(pm: PluginManager) -> None:
    import comfy.model_management as mm
    import torch

    from hearth.core.models import ModelManager, PatchedModel

    manager = ModelManager("cpu", budgets={"cpu": 2**30})
    with Runtime.build(environ={}, manager=manager, plugins=pm).activate():
        weights = PatchedModel(torch.nn.Linear(4, 4), name="tiny")

        class Model:  # a MODEL value: the weights are its patcher
            patcher = weights

        mm.load_models_gpu([Model()])
        assert manager.is_loaded(weights)
        mm.unload_all_models()
        assert not manager.is_loaded(weights)


def test_tiled_scale_matches_the_whole_image_and_counts_its_steps(pm: PluginManager) -> None:
    import comfy.utils
    import torch

    image = torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(0))

    def upscale(tile: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(tile, scale_factor=2, mode="nearest")

    bar = comfy.utils.ProgressBar(comfy.utils.get_tiled_scale_steps(56, 40, 16, 16, 4))
    out = comfy.utils.tiled_scale(image, upscale, tile_x=16, tile_y=16, overlap=4, upscale_amount=2, pbar=bar)
    assert out.shape == (2, 3, 80, 112)
    assert torch.allclose(out, upscale(image), atol=1e-5)
    assert bar.current == bar.total == 3 * 5  # rows at y = 0, 12, 24; columns at x = 0, 12, 24, 36, 40


def test_interrupt_stops_a_progress_bar_loop(executor: Executor) -> None:
    def emit(event: str, data: dict) -> None:
        if event == "progress" and data["value"] == 1:
            executor.interrupt()

    result = executor.run({"1": node("CountTo", steps=5)}, targets=["1"], emit=emit)
    assert result.status == "interrupted"


def test_progress_bar_switch_and_preview(pm: PluginManager) -> None:
    import comfy.utils

    from hearth.core import context

    events = []
    ctx = context.ExecutionContext("p", "7", "7", "X", Folders(), lambda e, d: events.append(d),
                                   threading.Event())
    token = context.enter(ctx)
    try:
        comfy.utils.ProgressBar(2).update_absolute(1, preview=("JPEG", "an image", 512))
        comfy.utils.PROGRESS_BAR_ENABLED = False
        comfy.utils.ProgressBar(2).update(1)
    finally:
        comfy.utils.PROGRESS_BAR_ENABLED = True
        context.leave(token)
    assert events == [{"value": 1, "max": 2, "prompt_id": "p", "node": "7", "preview": ("JPEG", "an image", 512)}]


def test_node_helpers(pm: PluginManager, tmp_path: Path) -> None:
    import node_helpers
    from PIL import Image

    Image.new("RGB", (4, 2)).save(tmp_path / "a.png")
    assert node_helpers.pillow(Image.open, tmp_path / "a.png").size == (4, 2)
    original = [["cond", {"strength": 1.0}]]
    changed = node_helpers.conditioning_set_values(original, {"strength": 0.5, "start_percent": 0.2})
    assert changed == [["cond", {"strength": 0.5, "start_percent": 0.2}]]
    assert original == [["cond", {"strength": 1.0}]]
