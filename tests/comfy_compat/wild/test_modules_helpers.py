"""ComfyUI's non-model helper modules work inside a pack's node run by Hearth's executor: comfy_execution's
context, progress registry and type check, execution's helpers, folder_paths' listings, node_helpers,
latent_preview's previewers, cli_args and the server's queue info."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hearth.core.executor import Executor
from hearth.core.model_folders import ModelFolders
from hearth.core.plugins import PluginManager
from tests.comfy_compat.tiny_sd import executor_for, node

PACKS = Path(__file__).parent / "packs_modules"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelFolders:
    return ModelFolders(tmp_path_factory.mktemp("models"))  # these packs need no model files


def test_helper_modules_inside_a_running_node(pm: PluginManager, tmp_path: Path) -> None:
    assert pm.records["helpers_pack"].error is None, pm.records["helpers_pack"].traceback
    executor: Executor = executor_for(pm, tmp_path)
    events: list[tuple[str, dict]] = []
    result = executor.run({"7": node("HelperFacts")}, emit=lambda event, data: events.append((event, data)))
    assert result.ok, result.error
    [facts] = result.outputs["7"]["facts"]
    assert facts["context"] and facts["inner"] and facts["after"]
    assert facts["types"] == (True, False, True, False)
    assert facts["full_type_name"] == "ValueError"
    assert facts["subfolders"] == ["masks", "masks/soft"]
    assert facts["content"] == ["a.png", "b.mp3"]
    assert facts["user_dir"] == "user"
    assert facts["ranges"] == [(None, 0.25, 1.0), (0.25, 0.75, 0.5), (0.75, None, 1.0)]
    assert facts["hasher"] == "sha256"
    assert facts["preview"] == (6, 8)
    assert facts["args"] == (True, True, True, 8188)
    assert facts["queue"] == {"exec_info": {"queue_remaining": 0}}
    assert facts["dynprompt"] is True
    assert facts["input_info"] == (("UNIQUE_ID", "hidden", {}), (None, None, None))
    assert facts["video_options"] == (["auto", "mp4"], ["auto", "h264"])
    # The registry's update for the running node is Hearth's progress event, and the pack's handler heard it.
    assert ("progress", {"value": 1, "max": 4, "prompt_id": result.prompt_id, "node": "7"}) in events
    seen = next(m for name, m in sys.modules.items() if name.endswith("helpers_pack") and hasattr(m, "SEEN")).SEEN
    assert ("7", 1, 4, "running") in seen


def test_prompt_executor_reports_a_failure_as_comfyui_does(pm: PluginManager) -> None:
    import execution

    runner = execution.PromptExecutor()
    runner.handle_execution_error("p1", {"3": {"class_type": "Boom", "inputs": {}}}, ["1"], ["1", "2"],
                                  {"node_id": "3", "exception_message": "no", "exception_type": "ValueError"},
                                  ValueError("no"))
    assert runner.status_messages[-1] == ("execution_error", {
        "prompt_id": "p1", "node_id": "3", "node_type": "Boom", "executed": ["1", "2"], "exception_message": "no",
        "exception_type": "ValueError", "traceback": [], "current_inputs": {}, "current_outputs": ["1"]})


def test_v3_match_and_multi_types(pm: PluginManager, tmp_path: Path) -> None:
    assert pm.records["v3_types_pack"].error is None, pm.records["v3_types_pack"].traceback
    info = pm.nodes().object_info()
    assert info["V3TypesBrightest"]["input"]["required"]["pixels"][0] == "IMAGE,MASK"
    assert info["V3TypesPass"]["input"]["required"]["value"][1]["template"] == {"template_id": "T",
                                                                                "allowed_types": "IMAGE,MASK"}
    prompt = {"1": node("V3TypesSolid"), "2": node("V3TypesPass", value=["1", 0]),
              "3": node("V3TypesBrightest", pixels=["2", 0])}
    result = executor_for(pm, tmp_path).run(prompt, targets=["3"])
    assert result.ok, result.error or result.validation
    assert result.executed == ["1", "2", "3"]
    box = info["V3TypesBoxArea"]["input"]["required"]["box"]
    assert box[0] == "BOUNDING_BOX" and box[1]["default"] == {"x": 0, "y": 0, "width": 512, "height": 512}
    area = executor_for(pm, tmp_path).run(
        {"1": node("V3TypesBoxArea", box={"x": 1, "y": 2, "width": 3, "height": 4})}, targets=["1"])
    assert area.ok, area.error or area.validation


def test_comfy_config_reads_a_packs_manifest(pm: PluginManager, tmp_path: Path) -> None:
    from comfy_config import config_parser
    from comfy_config.types import PyProjectConfig

    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "my-pack"\nversion = "1.2.0"\nlicense = {file = "LICENSE"}\ndependencies = ["numpy"]\n'
        '[project.urls]\nRepository = "https://example.org/my-pack"\n'
        '[tool.comfy]\nPublisherId = "me"\nDisplayName = "My Pack"\nincludes = ["dist"]\n')
    config = config_parser.extract_node_configuration(tmp_path)
    assert isinstance(config, PyProjectConfig)
    assert (config.project.name, config.project.version, config.project.dependencies) == ("my-pack", "1.2.0",
                                                                                          ["numpy"])
    assert config.project.license.file == "LICENSE" and config.project.urls.repository == "https://example.org/my-pack"
    assert (config.tool_comfy.publisher_id, config.tool_comfy.display_name, config.tool_comfy.includes) == (
        "me", "My Pack", ["dist"])
    assert config_parser.extract_node_configuration(tmp_path / "elsewhere") is None


def test_feature_flags_answer_from_the_clients_record(pm: PluginManager) -> None:
    from comfy_api import feature_flags

    clients = {"c1": {"feature_flags": {"supports_preview_metadata": True, "level": 2}}}
    assert feature_flags.supports_feature(clients, "c1", "supports_preview_metadata")
    assert not feature_flags.supports_feature(clients, "c2", "supports_preview_metadata")
    assert feature_flags.get_connection_feature(clients, "c1", "level") == 2
    assert feature_flags.get_server_features()["max_upload_size"] == 100 * 1024 * 1024


def test_latent_preview_carries_the_cli_args_names_packs_read_there(pm: PluginManager) -> None:
    # efficiency-nodes: `args.preview_method = latent_preview.LatentPreviewMethod.Latent2RGB` (a recorded
    # stand-in before, so KSampler (Efficient) failed).
    import comfy.cli_args
    import latent_preview

    assert latent_preview.LatentPreviewMethod is comfy.cli_args.LatentPreviewMethod
    assert latent_preview.args is comfy.cli_args.args
    latent_preview.set_preview_method("latent2rgb")
    try:
        assert comfy.cli_args.args.preview_method is latent_preview.LatentPreviewMethod.Latent2RGB
    finally:
        latent_preview.set_preview_method(None)
