"""An isolated pack sees Hearth's MODEL (a proxy of Hearth's process in its host) as ComfyUI's types:
ModelPatcher, BaseModel and the SD15 config, as an in-process pack does (packs_model/model_iso_pack.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from hearth.core.runtime import Runtime
from hearth.core.trust import TrustPolicy
from hearth.sandbox import host as sandbox_host
from tests.comfy_compat.tiny_sd import CHECKPOINT, make_models, node

PACK = Path(__file__).parent / "packs_model" / "model_iso_pack.py"
EXPECTED = {"is_patcher": True, "is_base_model": True, "is_sdxl": False, "config_is_sd15": True,
            "config_is_sdxl": False}


def facts(runtime: Runtime) -> dict[str, bool]:
    result = runtime.executor.run({"1": node("CheckpointLoaderSimple", ckpt_name=CHECKPOINT),
                                   "2": node("ModelIsoFacts", model=["1", 0])})
    assert result.ok, result.error
    [found] = result.outputs["2"]["facts"]
    return found


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Runtime]]:
    available, reason = sandbox_host.isolation_available()
    if not available:
        pytest.skip(f"this machine cannot make a pack host's namespaces: {reason}")
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    work = tmp_path_factory.mktemp("work")
    custom = work / "custom_nodes"
    custom.mkdir()
    shutil.copy(PACK, custom / PACK.name)
    models = make_models(work / "models")
    built = {placement: Runtime.build(pack_hosts=sandbox_host, model_folders=models, custom_nodes=[custom],
                                      environ={}, output=work / placement / "output", input=work / placement / "in",
                                      temp=work / placement / "temp", trust=TrustPolicy(mode=mode))
             for placement, mode in (("isolated", "untrusted"), ("in_process", "off"))}
    try:
        yield built
    finally:
        for runtime in built.values():
            loader = runtime.plugins.pm.get_plugin("custom_nodes") if runtime._plugins is not None else None
            if loader is not None:
                loader.close()
        torch.set_num_threads(threads)


PLACEMENTS = {"isolated": "pack host", "in_process": "in-process"}


@pytest.mark.parametrize("placement", list(PLACEMENTS))
def test_the_model_is_comfyuis_types_wherever_the_pack_runs(runtimes: dict[str, Runtime], placement: str) -> None:
    runtime = runtimes[placement]
    with runtime.activate():
        record = runtime.plugins.records[PACK.stem]
        assert record.error is None, record.traceback
        assert record.placement == PLACEMENTS[placement]
        assert facts(runtime) == EXPECTED
