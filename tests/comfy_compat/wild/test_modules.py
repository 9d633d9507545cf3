"""Every ComfyUI module name a pack imports resolves: Hearth's implementation where it has one, else a recorded
stand-in that can be imported, subclassed and found on disk, and that fails the node using it naming the module,
the name and the pack. A name ComfyUI does not have still fails to import, as a pack's feature probe expects."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

import hearth_comfy_compat as comfy_compat
import pytest
from click.testing import CliRunner

from hearth.cli.main import cli
from hearth.core.executor import Executor
from hearth.core.model_folders import ModelFolders
from hearth.core.plugins import PluginManager
from hearth.core.runtime import Runtime
from tests.comfy_compat.tiny_sd import node

PACKS = Path(__file__).parent / "packs_modules"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelFolders:
    return ModelFolders(tmp_path_factory.mktemp("models"))  # these packs need no model files


def test_a_pack_importing_comfyuis_modules_and_subclassing_a_stand_in_loads(pm: PluginManager,
                                                                              executor: Executor) -> None:
    record = pm.records["modules_pack"]
    assert record.error is None, record.traceback
    result = executor.run({"1": node("ModulesReport")})
    assert result.ok, result.error
    facts = dict(fact.split(":") for fact in result.outputs["1"]["text"])
    assert facts == {"nonsense": "False", "root_is_dir": "True", "k_diffusion_is_dir": "True", "version": "True",
                     "previews_off": "True", "depth": "3", "width": "7", "server": "True",
                     "flag": "False", "abc": "True", "stage_d": "False",
                     "user_manager": "False", "guarded": "fallback,fallback"}


def test_a_name_comfyui_lacks_is_not_found() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("comfy.nonsense_xyz")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("comfy_extras.not_a_node_module")
    assert importlib.util.find_spec("comfy.nonsense_xyz") is None


def test_served_modules_answer_their_dunders(pm: PluginManager) -> None:
    import comfy
    import comfy.ldm.cascade.stage_c as stage_c
    import comfyui_version
    import folder_paths

    assert os.path.isdir(os.path.dirname(folder_paths.__file__))
    assert os.path.isdir(os.path.join(os.path.dirname(comfy.__file__), "k_diffusion"))
    assert [os.path.isdir(p) for p in comfy.__path__] == [True]
    assert comfy.__spec__.name == "comfy" and comfy.__spec__.origin == comfy.__file__
    assert comfyui_version.__version__.count(".") == 2
    assert stage_c.__file__.endswith(os.path.join("comfy", "ldm", "cascade", "stage_c.py"))
    assert not hasattr(folder_paths, "__path__")


def test_using_a_stand_in_fails_the_node_naming_it(executor: Executor) -> None:
    result = executor.run({"1": node("UsesStandIn")}, targets=["1"])
    assert result.status == "error"
    assert result.error["exception_message"] == (
        "Hearth does not provide comfy.ldm.cascade.stage_c.StageC (used by pack modules_pack)")


def test_comfy_plugins_lists_what_the_pack_touched(pm: PluginManager) -> None:
    result = CliRunner().invoke(cli, ["plugins", "--json", "--custom-nodes", str(PACKS)])
    assert result.exit_code == 0, result.output
    records = {r["name"]: r for r in json.loads(result.stdout)["plugins"]}
    lacks = set(records["modules_pack"]["missing_internals"])
    assert {"comfy.ldm.cascade.stage_c", "comfy.ldm.cascade.stage_c.StageC", "comfy.ldm.cascade.stage_a.StageA",
            "app.model_manager", "app.model_manager.ModelFileManager"} <= lacks
    assert {"comfy.utils.a_sampling_type_hearth_lacks", "comfy.utils.a_guarded_name_hearth_lacks",
            "comfy.utils.a_name_under_another_except_hearth_lacks"} <= lacks
    assert not [name for name in lacks if name.startswith("comfy.comfy_types")]
    assert not {"comfy.ldm.cascade.stage_a.StageD", "server.PromptServer.instance.user_manager"} & lacks
    assert "nodes.ModulesPackFormats" not in lacks and "comfy.model_management.a_flag_hearth_lacks" not in lacks
    assert not {"folder_paths", "comfy.utils", "comfy.cli_args", "comfyui_version"} & lacks
    assert comfy_compat.missing_names()["modules_pack"]


def test_a_served_module_records_what_it_cannot_honour() -> None:
    error = comfy_compat.hook.lacking("comfy.controlnet.load_controlnet", "Hearth has no ControlNet models yet")
    assert isinstance(error, comfy_compat.HearthDoesNotProvide)
    assert str(error) == ("Hearth does not provide comfy.controlnet.load_controlnet (used by pack an unknown pack): "
                          "Hearth has no ControlNet models yet")
    assert "comfy.controlnet.load_controlnet" in comfy_compat.missing_names()["an unknown pack"]


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed here")
def test_a_pack_importing_torchvision_loads_where_it_is_absent(pm: PluginManager, executor: Executor) -> None:
    assert pm.records["vision_pack"].error is None, pm.records["vision_pack"].traceback
    assert executor.run({"1": node("VisionPlain")}, targets=["1"]).ok
    result = executor.run({"1": node("UsesVision")}, targets=["1"])
    assert result.error["exception_message"] == (
        "Hearth does not provide torchvision.transforms.ToTensor (used by pack vision_pack)")
    assert "torchvision.transforms.v2" in comfy_compat.missing_names()["vision_pack"]
    pack = next(m for name, m in sys.modules.items() if name.endswith("vision_pack") and hasattr(m, "GUARDED"))
    assert pack.GUARDED == "fallback"
    # Code that is not a pack's own import sees torchvision absent, as without Hearth (transformers probes so).
    assert comfy_compat.installed()
    assert importlib.util.find_spec("torchvision") is None
    with pytest.raises(ImportError):
        importlib.import_module("torchvision")
    assert not [name for name in sys.modules if name.partition(".")[0] == "torchvision"]


def test_the_input_folder_a_pack_lists_exists(pm: PluginManager) -> None:
    assert pm.nodes().object_info()["ListsInput"]["input"]["required"]["file"][0] == ["none"]


def test_prompt_folders_are_absolute_and_exist(pm: PluginManager, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import folder_paths

    monkeypatch.chdir(tmp_path)  # relative folders, as `comfy plugins` run in a fresh folder has them
    with Runtime.build(model_folders=ModelFolders(tmp_path / "models"), custom_nodes=[], environ={},
                       output=Path("out"), input=Path("in"), temp=Path("tmp")).activate():
        found = [folder_paths.get_input_directory(), folder_paths.get_output_directory(),
                 folder_paths.get_temp_directory()]
    assert found == [str(tmp_path / name) for name in ("in", "out", "tmp")] and all(map(os.path.isdir, found))
