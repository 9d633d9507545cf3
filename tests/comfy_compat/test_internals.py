"""ComfyUI's sampling internals for packs: comfy.samplers, comfy.sample, nodes.common_ksampler, latent_preview,
comfy.comfy_types and execution, run through the executor on a tiny SD1 model; and the report of what Hearth lacks
(missing_pack) at run time and in `comfy plugins`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import hearth_comfy_compat as comfy_compat
import numpy as np
import pytest
from click.testing import CliRunner

from hearth.cli.main import cli
from hearth.core.executor import Executor
from hearth.core.model_folders import ModelFolders
from hearth.core.plugins import PluginManager
from hearth.core.runtime import Runtime
from tests.comfy_compat.tiny_sd import (
    PACKS,
    executor_for,
    make_models,
    node,
    preview_pixels,
    sampling_inputs,
    txt2img_parts,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelFolders:
    return make_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def pm(packs_runtime: Runtime) -> PluginManager:
    return packs_runtime.plugins


@pytest.fixture(scope="module")
def executor(pm: PluginManager, tmp_path_factory: pytest.TempPathFactory) -> Executor:
    # One executor for the module: its cache spares re-sampling the reference graph in each test.
    return executor_for(pm, tmp_path_factory.mktemp("run"))


def decoded(sampler_node: dict, output: int = 0) -> dict:
    """txt2img with ``sampler_node`` as node 5, decoded (6) and previewed (7)."""
    return {**txt2img_parts(), "5": sampler_node, "6": node("VAEDecode", samples=["5", output], vae=["1", 2]),
            "7": node("PreviewImage", images=["6", 0])}


def test_the_packs_load(pm: PluginManager) -> None:
    for pack in ("sampler_pack", "objects_pack", "missing_pack"):
        assert pm.records[pack].error is None, pm.records[pack].traceback
    assert {"PackKSampler", "PackSampleDirect", "MergeModels", "UsesMissingSampler"} <= set(pm.nodes())


def test_sampler_lists_are_the_registered_samplers(pm: PluginManager) -> None:
    import sys

    import comfy.samplers

    registered, schedules = list(pm.samplers()), list(pm.schedulers())
    assert "euler" in registered and "karras" in schedules
    assert comfy.samplers.KSampler.SAMPLERS == registered == comfy.samplers.SAMPLER_NAMES
    assert comfy.samplers.KSampler.SCHEDULERS == schedules == comfy.samplers.SCHEDULER_NAMES
    # Read at the pack's import, before the plugin manager was active: the installed plugins were asked.
    pack = next(m for name, m in sys.modules.items() if name.endswith("sampler_pack"))
    assert pack.SAMPLERS_AT_IMPORT == registered and pack.SCHEDULERS_AT_IMPORT == schedules
    info = pm.nodes().object_info()["PackKSampler"]
    assert info["input"]["required"]["sampler_name"][0] == registered
    assert info["input"]["required"]["model"][0] == "MODEL" and info["output"] == ["LATENT"]


def test_common_ksampler_in_a_pack_samples_as_hearths_ksampler(executor: Executor) -> None:
    ours = executor.run(decoded(node("KSampler", **sampling_inputs(), denoise=1.0)))
    assert ours.ok, ours.error
    expected = preview_pixels(ours, "7", executor.folders)
    for pack_node in ("PackKSampler", "PackSampleDirect", "PackGuidedSampler"):
        events: list = []
        extra = {"denoise": 1.0} if pack_node == "PackKSampler" else {}
        result = executor.run(decoded(node(pack_node, **sampling_inputs(), **extra)),
                              emit=lambda event, data, events=events: events.append((event, data)))
        assert result.ok, (pack_node, result.error)
        assert np.array_equal(preview_pixels(result, "7", executor.folders), expected), pack_node
        progress = [(d["value"], d["max"]) for e, d in events if e == "progress" and d["node"] == "5"]
        # PackGuidedSampler passes no callback to its guider: no progress, as in ComfyUI.
        assert progress == ([] if pack_node == "PackGuidedSampler" else [(1, 2), (2, 2)]), pack_node
    # A different sampler really samples differently: the comparison above can fail.
    other = executor.run(decoded(node("PackKSampler", **sampling_inputs(sampler_name="heun"), denoise=1.0)))
    assert other.ok, other.error
    assert not np.array_equal(preview_pixels(other, "7", executor.folders), expected)


def test_builtin_node_classes_by_comfyui_name_inside_a_pack_node(executor: Executor) -> None:
    graph = executor.run(decoded(node("KSampler", **sampling_inputs(), denoise=1.0)))
    one = executor.run({"1": txt2img_parts()["1"],
                        "5": node("OneNodeTxt2Img", model=["1", 0], clip=["1", 1], vae=["1", 2], positive="a red cat",
                                  negative="blurry", seed=7, steps=2, size=64),
                        "7": node("PreviewImage", images=["5", 0])})
    assert graph.ok and one.ok, (graph.error, one.error)
    assert np.array_equal(preview_pixels(one, "7", executor.folders), preview_pixels(graph, "7", executor.folders))


def test_latent_preview_callback_sends_previews_and_keeps_x0(executor: Executor) -> None:
    events = []
    result = executor.run(decoded(node("PackSampleDirect", **sampling_inputs()), output=1),
                          emit=lambda event, data: events.append((event, data)))
    assert result.ok, result.error
    previews = [d.get("preview") for e, d in events if e == "progress" and d["node"] == "5"]
    assert len(previews) == 2 and all(p is not None and p[0] == "JPEG" and p[2] == 512 for p in previews)
    assert previews[-1][1].size == (8, 8)  # the latent, one preview pixel per latent pixel


def test_a_packs_own_sampler_function_runs_in_sampler_custom(executor: Executor) -> None:
    def custom(scale: float) -> dict:
        prompt = {**txt2img_parts(), "8": node("HalfwaySampler", scale=scale),
                  "9": node("BasicScheduler", model=["1", 0], scheduler="normal", steps=2, denoise=1.0),
                  "5": node("SamplerCustom", model=["1", 0], add_noise=True, noise_seed=7, cfg=4.0,
                            positive=["2", 0], negative=["3", 0], sampler=["8", 0], sigmas=["9", 0],
                            latent_image=["4", 0]),
                  "6": node("VAEDecode", samples=["5", 0], vae=["1", 2]), "7": node("PreviewImage", images=["6", 0])}
        result = executor.run(prompt)
        assert result.ok, result.error
        return preview_pixels(result, "7", executor.folders).astype(int)

    euler = executor.run(decoded(node("KSampler", **sampling_inputs(), denoise=1.0)))
    full, half = custom(1.0), custom(0.5)
    # Scale 1 is plain Euler (the same math, float rounding aside); scale 0.5 stops halfway each step.
    assert np.abs(full - preview_pixels(euler, "7", executor.folders).astype(int)).max() <= 2
    assert np.abs(full - half).max() > 10


def test_calculate_sigmas_and_sampler_object(pm: PluginManager) -> None:
    import comfy.samplers
    import torch
    from hearth_sd.sampling import ModelSampling

    sigmas = comfy.samplers.calculate_sigmas(ModelSampling(), "karras", 4)
    assert sigmas.shape == (5,) and float(sigmas[-1]) == 0.0 and torch.all(sigmas[:-1] > sigmas[1:])
    assert float(sigmas[0]) == pytest.approx(ModelSampling().sigma_max, rel=1e-4)
    assert callable(comfy.samplers.sampler_object("euler").sample)
    with pytest.raises(ValueError, match="unknown sampler 'nope'; installed samplers: .*euler"):
        comfy.samplers.sampler_object("nope")
    with pytest.raises(ValueError, match="unknown scheduler 'nope'"):
        comfy.samplers.calculate_sigmas(ModelSampling(), "nope", 4)


ENGINE_NAMES = ("Sampler", "sampler_object", "calculate_sigmas", "ksampler_sigmas", "Guider", "common_ksampler",
                "prepare_noise", "fix_empty_latent_channels", "progress_callback", "progress_preview")


def test_hook_resolve_sampling_engine(pm: PluginManager) -> None:
    import torch
    from hearth_sd.sampling import ModelSampling

    engine = pm.hook.resolve_sampling_engine()
    assert all(callable(getattr(engine, name, None)) for name in ENGINE_NAMES)
    latent = torch.zeros(2, 4, 8, 8)
    assert torch.equal(engine.prepare_noise(latent, 7, None), engine.prepare_noise(latent, 7, None))
    assert not torch.equal(engine.prepare_noise(latent, 7, None), engine.prepare_noise(latent, 8, None))
    sigmas = engine.calculate_sigmas(ModelSampling(), "karras", 4)
    assert sigmas.shape == (5,) and float(sigmas[-1]) == 0.0


def test_comfy_samplers_name_the_missing_engine(pm: PluginManager) -> None:
    import comfy.sample
    import torch

    samplers = pm.pm.get_plugin("samplers")
    pm.pm.unregister(samplers)
    try:
        with pytest.raises(RuntimeError, match="need a plugin that samples .*hearth-samplers"):
            comfy.sample.prepare_noise(torch.zeros(1, 4, 8, 8), 1)
    finally:
        pm.pm.register(samplers, name="samplers")


def test_a_guider_that_overrides_outer_sample_is_called(pm: PluginManager) -> None:
    import comfy.samplers

    class MyGuider(comfy.samplers.CFGGuider):  # predict_noise too: tests/comfy_compat/wild/test_sampling.py
        def outer_sample(self, *args, **kwargs):
            return ("mine", len(args))

    guider = MyGuider(object())
    guider.set_conds([], None)
    assert guider.sample(None, None, None, None) == ("mine", 8)


def test_comfy_types(pm: PluginManager) -> None:
    from comfy.comfy_types import IO, ComfyNodeABC
    from comfy.comfy_types.node_typing import InputTypeDict

    assert IO.ANY == "*" and IO.IMAGE == "IMAGE" and str(IO.LATENT) == "LATENT"
    assert json.dumps([IO.IMAGE, IO.ANY]) == '["IMAGE", "*"]'
    assert not (IO.ANY != "IMAGE") and not (IO.NUMBER != "INT") and IO.IMAGE != "MASK"
    assert {IO.MODEL: 1}["MODEL"] == 1

    class NoInputs(ComfyNodeABC):
        pass

    with pytest.raises(TypeError, match="INPUT_TYPES"):
        NoInputs()
    assert "required" in InputTypeDict.__annotations__


def test_latent_preview_get_previewer(pm: PluginManager) -> None:
    import torch
    from hearth_sd import loaders

    from hearth.core.model_folders import model_folders

    model = loaders.checkpoint(model_folders().find("checkpoints", "tiny-sd1.safetensors"))[0]
    latent = torch.zeros(1, 4, 6, 10)
    latent[:, 0] = 2.0
    (image,) = pm.nodes()["LatentPreviewOf"].cls().preview(model, {"samples": latent})
    assert image.shape == (1, 6, 10, 3)
    # SD1's latent-to-RGB map: channel 0 weighs 0.3512 into red, on the scaled latent (x 0.18215).
    red = int((2.0 * 0.18215 * 0.3512 + 1) * 127.5) / 255
    assert float(image[0, 0, 0, 0]) == pytest.approx(red, abs=1.5 / 255)


def test_execution_prompt_executor_and_validate_prompt(pm: PluginManager, tmp_path: Path) -> None:
    import execution

    messages = []

    class Server:
        client_id = "c1"

        def send_sync(self, event, data, sid):
            messages.append((event, sid))

    prompt = decoded(node("PackKSampler", **sampling_inputs(), denoise=1.0))
    runner = execution.PromptExecutor(Server())
    runner.execute(prompt, "p1", {}, ["7"])
    assert runner.success and runner.history_result["outputs"]["7"]["images"][0]["type"] == "temp"
    assert ("executing", "c1") in messages and runner.status_messages
    valid, error, outputs, node_errors = asyncio.run(execution.validate_prompt("p2", prompt, None))
    assert (valid, error, outputs, node_errors) == (True, None, ["7"], {})
    prompt["5"]["inputs"]["sampler_name"] = "no_such_sampler"
    valid, error, outputs, node_errors = asyncio.run(execution.validate_prompt("p3", prompt, None))
    assert not valid and node_errors["5"]["errors"][0]["type"] == "value_not_in_list"
    runner.execute(prompt, "p4")
    assert not runner.success


def test_missing_names_fail_only_the_nodes_that_use_them(executor: Executor, pm: PluginManager) -> None:
    count = executor.run({"1": node("CountSamplers")}, targets=["1"])
    assert count.ok, count.error
    for node_type, name in (("UsesMissingSampler", "comfy.samplers.sampler_with_a_name_hearth_lacks"),
                            ("UsesMissingAttribute", "comfy.sd.load_unet_the_old_way")):
        result = executor.run({"1": node(node_type)})
        assert result.status == "error"
        assert result.error["exception_message"] == f"Hearth does not provide {name} (used by pack missing_pack)"
        assert name in comfy_compat.missing_names()["missing_pack"]


def test_comfy_run_reports_the_missing_name(models: ModelFolders, pm: PluginManager, tmp_path: Path) -> None:
    workflow = tmp_path / "uses_missing.json"
    workflow.write_text(json.dumps({"1": node("UsesMissingSampler")}))
    result = CliRunner().invoke(cli, ["run", str(workflow), "--custom-nodes", str(PACKS), "--models-dir",
                                      str(models.base), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert ("node 1 (UsesMissingSampler) failed: HearthDoesNotProvide: Hearth does not provide "
            "comfy.samplers.sampler_with_a_name_hearth_lacks (used by pack missing_pack)") in result.output


def test_comfy_plugins_lists_the_internals_each_pack_lacks(pm: PluginManager) -> None:
    result = CliRunner().invoke(cli, ["plugins", "--json", "--custom-nodes", str(PACKS)])
    assert result.exit_code == 0, result.output
    records = {r["name"]: r for r in json.loads(result.output)["plugins"]}
    lacks = records["missing_pack"]["missing_internals"]
    assert {"comfy.samplers.sampler_with_a_name_hearth_lacks", "comfy.sd.load_diffusion_model_from_a_place_hearth_lacks",
            "nodes.NodeHearthLacks"} <= set(lacks)
    assert "nodes.KSampler" not in lacks
    assert records["sampler_pack"]["missing_internals"] == []
    assert records["objects_pack"]["missing_internals"] == []
    table = CliRunner().invoke(cli, ["plugins", "--custom-nodes", str(PACKS)], env={"COLUMNS": "400"})
    assert table.exit_code == 0, table.output
    [row] = [line for line in table.output.splitlines() if "missing_pack" in line]
    assert "comfy.sd.load_diffusion_model_from_a_place_hearth_lacks" in row
    assert "missing internals" in table.output
