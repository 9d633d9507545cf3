"""A pack placed in a pack host keeps its types' meaning: an "any type" object and a section that claims every
input name cross as what they mean, and a node whose INPUT_TYPES raises in the host is listed with its error
rather than dropped (as an in-process pack's is)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from hearth.core.model_folders import ModelFolders
from hearth.core.runtime import Runtime
from hearth.core.trust import TrustPolicy
from hearth.sandbox import host as sandbox_host
from tests.comfy_compat.tiny_sd import node

PACK_SOURCE = '''
class AnyType(str):
    def __ne__(self, other):
        return False


ANY = AnyType("any")


class FlexibleOptional(dict):
    """rgthree's way: claims every name, each an "any" input."""

    def __contains__(self, key):
        return True

    def __getitem__(self, key):
        return (ANY,)


class IsoInt:
    CATEGORY = "iso"
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 3})}}

    def run(self, value):
        return (value,)


class IsoSwitch:
    CATEGORY = "iso"
    RETURN_TYPES = (ANY,)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"first": (ANY,)}, "optional": FlexibleOptional()}

    def run(self, first, **more):
        return {"ui": {"got": [first, sorted(more.items())]}, "result": (first,)}


class IsoBroken:
    CATEGORY = "iso"
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        raise RuntimeError("the preset list is not there")

    def run(self):
        return (1,)


NODE_CLASS_MAPPINGS = {"IsoInt": IsoInt, "IsoSwitch": IsoSwitch, "IsoBroken": IsoBroken}
'''


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    available, reason = sandbox_host.isolation_available()
    if not available:
        pytest.skip(f"this machine cannot make a pack host's namespaces: {reason}")
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    work: Path = tmp_path_factory.mktemp("work")
    custom = work / "custom_nodes"
    (custom / "iso_types_pack").mkdir(parents=True)
    (custom / "iso_types_pack" / "__init__.py").write_text(textwrap.dedent(PACK_SOURCE))
    built = Runtime.build(pack_hosts=sandbox_host, model_folders=ModelFolders(work / "models"), custom_nodes=[custom],
                          environ={}, output=work / "output", input=work / "input", temp=work / "temp",
                          trust=TrustPolicy(mode="untrusted", trusted=frozenset()))
    try:
        with built.activate():
            record = built.plugins.records["iso_types_pack"]
            assert record.error is None and record.placement == "pack host", record.traceback
            yield built
    finally:
        loader = built.plugins.pm.get_plugin("custom_nodes") if built._plugins is not None else None
        if loader is not None:
            loader.close()
        torch.set_num_threads(threads)


def test_any_types_and_open_sections_cross_to_the_host(runtime: Runtime) -> None:
    info = runtime.nodes.object_info()
    assert info["IsoSwitch"]["output"] == ["*"]
    assert info["IsoSwitch"]["input"]["required"]["first"][0] == "*"
    prompt = {"1": node("IsoInt", value=4), "2": node("IsoSwitch", first=["1", 0], second=["1", 0])}
    result = runtime.executor.run(prompt)
    assert result.ok, result.error or result.validation
    first, more = result.outputs["2"]["got"]
    assert first == 4 and [tuple(pair) for pair in more] == [("second", 4)]


def test_a_node_whose_input_types_raises_in_the_host_is_listed_with_its_error(runtime: Runtime) -> None:
    assert "IsoBroken" in runtime.nodes
    result = runtime.executor.run({"1": node("IsoBroken")}, targets=["1"])
    assert not result.ok
    assert "the preset list is not there" in str(result.error or result.validation)
