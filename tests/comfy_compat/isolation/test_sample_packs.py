"""The compatibility suite's own sample packs, isolated: a V3 pack and a pack merging models through
get_key_patches behave in pack hosts as they do in-process."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from hearth.core.executor import Executor
from hearth.core.model_folders import ModelFolders
from hearth.core.runtime import Runtime
from hearth.core.trust import TrustPolicy
from hearth.sandbox import host as sandbox_host
from tests.comfy_compat.tiny_sd import (
    CHECKPOINT,
    LORA,
    PACKS,
    make_models,
    node,
    sampling_inputs,
    txt2img_parts,
)

SAMPLES = ("v3_pack", "objects_pack", "cfg_pack", "sampler_pack")
SHOW_PACK = '''
class ShowValue:
    """Hands whatever it gets to the test, untouched (in-process: the pack is trusted)."""
    CATEGORY = "show"
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("*",)}}

    def run(self, value):
        return {"ui": {"value": [value]}}


NODE_CLASS_MAPPINGS = {"ShowValue": ShowValue}
'''


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:

    available, reason = sandbox_host.isolation_available()
    if not available:
        pytest.skip(f"this machine cannot make a pack host's namespaces: {reason}")
    work = tmp_path_factory.mktemp("samples")
    models: ModelFolders = make_models(work / "models")
    for pack in SAMPLES:  # copies: a host sees only its pack's own folder
        shutil.copytree(PACKS / pack, work / "custom_nodes" / pack)
    (work / "custom_nodes" / "show_pack.py").write_text(SHOW_PACK)
    built = Runtime.build(pack_hosts=sandbox_host, model_folders=models, custom_nodes=[work / "custom_nodes"], environ={},
                          output=work / "output", input=work / "input", temp=work / "temp",
                          trust=TrustPolicy(mode="untrusted", trusted={"show_pack"}))
    try:
        with built.activate():
            for pack in SAMPLES:
                record = built.plugins.records[pack]
                assert record.error is None and record.placement == "pack host", record.traceback
            yield built
    finally:
        loader = built.plugins.pm.get_plugin("custom_nodes")
        if loader is not None:
            loader.close()


@pytest.fixture(scope="module")
def executor(runtime: Runtime) -> Executor:
    return runtime.executor


def test_a_v3_nodes_validate_inputs_runs_in_its_host(executor: Executor) -> None:
    result = executor.run({"1": node("V3RepeatText", text="x", times=20, separator="none"),
                           "2": node("V3WhoAmI", label=["1", 0])})
    assert result.status == "error"
    assert result.validation is not None
    [error] = result.validation.node_errors["1"]["errors"]
    assert error["type"] == "custom_validation_failed" and "more than 10 repeats need a separator" in error["details"]


def test_an_execution_blocker_from_an_isolated_node_stops_the_branch(executor: Executor) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    result = executor.run({"1": node("V3Gate", value="x", open=False), "2": node("V3WhoAmI", label=["1", 0])},
                          emit=lambda event, data: events.append((event, data)))
    assert "2" not in result.outputs
    assert [d["exception_message"] for e, d in events if e == "execution_error"] == [
        "Execution Blocked: the gate is closed"]


def test_models_merge_through_get_key_patches_in_batches(executor: Executor) -> None:
    key = "diffusion_model.out.2.weight"
    prompt = {
        "1": node("CheckpointLoaderSimple", ckpt_name=CHECKPOINT),
        "2": node("NudgeOutputWeights", model=["1", 0], amount=0.1),
        "3": node("MergeModels", model1=["1", 0], model2=["2", 0], ratio=0.5),
        "s1": node("ShowValue", value=["1", 0]), "s3": node("ShowValue", value=["3", 0]),
    }
    result = executor.run(prompt)
    assert result.ok, result.error
    original, merged = result.outputs["s1"]["value"][0], result.outputs["s3"]["value"][0]
    # The merge read every UNet weight (more than one message carries) and moved the last conv halfway.
    assert len(original.get_key_patches("diffusion_model.")) > 253
    before, after = original.get_key_patches(key)[key][0], merged.get_key_patches(key)[key][0]
    assert torch.allclose(after.float(), before.float() + 0.05, atol=5e-3)


def sampled(executor: Executor, patch: dict[str, Any] | None = None) -> torch.Tensor:
    """The latent KSampler makes on the tiny model, through the patch node ``patch`` (id "8") when given."""
    prompt = {**txt2img_parts(), "5": node("KSampler", **sampling_inputs(model=["8" if patch else "1", 0]),
                                             denoise=1.0), "s": node("ShowValue", value=["5", 0])}
    if patch:
        prompt["8"] = patch
    result = executor.run(prompt)
    assert result.ok, result.error
    return result.outputs["s"]["value"][0]["samples"]


def test_patch_functions_a_pack_sets_run_in_its_host_while_hearth_samples(executor: Executor) -> None:
    plain = sampled(executor)
    # A UNet wrapper calling back Hearth's apply_model (a function lent to the host) changes nothing at scale 1.
    assert torch.equal(sampled(executor, node("ScaleUnetOutput", model=["1", 0], scale=1.0)), plain)
    assert not torch.allclose(sampled(executor, node("ScaleUnetOutput", model=["1", 0], scale=0.5)), plain)
    # Attention patches get the block's tensors and extra_options (cond_or_uncond...).
    assert torch.allclose(sampled(executor, node("CfgPackScaleMiddle", model=["1", 0], scale=1.0)), plain, atol=1e-6)
    assert not torch.allclose(sampled(executor, node("CfgPackScaleMiddle", model=["1", 0], scale=0.0)), plain)
    assert not torch.allclose(sampled(executor, node("CfgPackMuteNegativeText", model=["1", 0])), plain)
    assert not torch.allclose(sampled(executor, node("MuteCrossAttention", model=["1", 0])), plain)


def test_comfy_sd_load_lora_for_models_in_a_host_patches_hearths_values_as_lora_loader_does(
        executor: Executor) -> None:
    prompt = {"1": node("CheckpointLoaderSimple", ckpt_name=CHECKPOINT),
              "2": node("LoraFromStateDict", model=["1", 0], clip=["1", 1], lora_name=LORA, strength=0.8),
              "3": node("LoraLoader", model=["1", 0], clip=["1", 1], lora_name=LORA, strength_model=0.8,
                        strength_clip=0.8),
              **{f"s{i}": node("ShowValue", value=[n, slot]) for i, (n, slot) in
                 enumerate([("2", 0), ("2", 1), ("3", 0), ("3", 1)])}}
    result = executor.run(prompt)
    assert result.ok, result.error
    ours_model, ours_clip, their_model, their_clip = (result.outputs[f"s{i}"]["value"][0] for i in range(4))
    assert ours_model.patches and sorted(ours_model.patches) == sorted(their_model.patches)
    assert torch.equal(ours_clip.encode("a red cat")[0], their_clip.encode("a red cat")[0])


def test_the_sample_sampler_packs_nodes_sample_as_ksampler(executor: Executor) -> None:
    prompt = {**txt2img_parts(),
              "5": node("KSampler", **sampling_inputs(), denoise=1.0),
              "6": node("PackKSampler", **sampling_inputs(), denoise=1.0),
              "7": node("PackSampleDirect", **sampling_inputs()),
              **{f"s{i}": node("ShowValue", value=link) for i, link in
                 enumerate([["5", 0], ["6", 0], ["7", 0], ["7", 1]])}}
    events: list[tuple[str, dict[str, Any]]] = []
    result = executor.run(prompt, emit=lambda event, data: events.append((event, data)))
    assert result.ok, result.error
    expected = result.outputs["s0"]["value"][0]["samples"]
    for shown in ("s1", "s2"):
        assert torch.equal(result.outputs[shown]["value"][0]["samples"], expected), shown
    # PackSampleDirect's second output: the last x0 its callback kept, through model.model.process_latent_out.
    assert result.outputs["s3"]["value"][0]["samples"].shape == expected.shape
    for isolated in ("6", "7"):
        assert [(d["value"], d["max"]) for e, d in events if e == "progress" and d["node"] == isolated] == [
            (1, 2), (2, 2)], isolated
