"""SaveConditioning / ConditioningLoader: a conditioning written by one loads back equal, in ComfyUI's file format."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
import torch
from hearth_sd.nodes_cond_files import NODES, ConditioningLoader, SaveConditioning

from hearth.core.executor import Executor
from hearth.core.models import read_header, write_safetensors
from hearth.core.node_registry import NodeRegistry
from hearth.core.runtime import Runtime


@pytest.fixture
def runtime(tmp_path):
    (tmp_path / "models" / "embeddings").mkdir(parents=True)
    with Runtime.build(models_dir=tmp_path / "models", output=tmp_path / "output", environ={}).activate() as rt:
        yield rt


class Source:
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {}}

    def make(self) -> tuple[Any]:
        gen = torch.Generator().manual_seed(0)
        return ([[torch.randn(1, 77, 8, generator=gen),
                  {"pooled_output": torch.randn(1, 8, generator=gen), "guidance": 3.5, "prompt_type": "positive",
                   "reference_latents": [torch.zeros(1, 16, 2, 2), torch.ones(1, 16, 4, 4)], "mask": None}]],)


def test_saved_conditioning_loads_back_equal_through_the_executor(runtime, tmp_path) -> None:
    executor = Executor(NodeRegistry.from_classes(NODES | {"Source": Source}), folders=runtime.folders)
    result = executor.run({
        "1": {"class_type": "Source", "inputs": {}},
        "2": {"class_type": "SaveConditioning", "inputs": {"conditioning": ["1", 0], "filename_prefix": "cond/a"}},
    })
    assert result.ok, result.error or result.validation.node_errors
    saved = tmp_path / "output" / "cond" / "a_00001_.safetensors"
    header = read_header(saved)
    assert set(header.shapes) == {"conditioning", "pooled_output", "reference_latents.0", "reference_latents.1"}
    assert json.loads(header.metadata["conditioning_options"]) == {"guidance": 3.5, "prompt_type": "positive"}

    shutil.copy(saved, tmp_path / "models" / "embeddings" / "a.safetensors")
    assert "a.safetensors" in ConditioningLoader.INPUT_TYPES()["required"]["conditioning_name"][0]
    ((cond, options),) = ConditioningLoader().load("a.safetensors")[0]
    ((want_cond, want),) = Source().make()[0]
    assert torch.equal(cond, want_cond) and torch.equal(options["pooled_output"], want["pooled_output"])
    assert options["guidance"] == 3.5 and options["prompt_type"] == "positive"
    refs = options["reference_latents"]
    assert [r.shape for r in refs] == [(1, 16, 2, 2), (1, 16, 4, 4)] and refs[1].eq(1).all()


def test_what_cannot_be_saved_or_loaded_is_named(runtime, tmp_path) -> None:
    cond = torch.zeros(1, 77, 8)
    with pytest.raises(ValueError, match="SaveConditioning: conditioning has 2 entries"):
        SaveConditioning().save([[cond, {}], [cond, {}]], "cond/x")
    with pytest.raises(ValueError, match="option 'area' \\(tuple\\) can't be saved"):
        SaveConditioning().save([[cond, {"area": (8, 8, 0, 0)}]], "cond/x")
    write_safetensors({"emb_params": torch.zeros(2, 8)}, tmp_path / "models" / "embeddings" / "ti.safetensors", {})
    with pytest.raises(ValueError, match="ti.safetensors holds no 'conditioning' tensor"):
        ConditioningLoader().load("ti.safetensors")
    assert SaveConditioning.OUTPUT_NODE and SaveConditioning.RETURN_NAMES == ("conditioning",)
    assert ConditioningLoader.DISPLAY_NAME == "Load Conditioning" and ConditioningLoader.CATEGORY == "model/loaders"


def test_t5_tokenizer_options_set_every_t5_tokenizer_on_a_clone() -> None:
    from hearth_sd.nodes_cond_files import T5TokenizerOptions

    class Clip:
        def __init__(self) -> None:
            self.options: dict[str, int] = {}

        def clone(self) -> Clip:
            twin = Clip()
            twin.options = dict(self.options)
            return twin

        def set_tokenizer_option(self, name: str, value: int) -> None:
            self.options[name] = value

    clip = Clip()
    (out,) = T5TokenizerOptions().set_options(clip, 4, 77)
    assert out.options["t5xxl_min_padding"] == 4 and out.options["umt5xxl_min_length"] == 77
    assert len(out.options) == 10 and clip.options == {}
    plain = object.__new__(type("PlainClip", (), {"clone": lambda self: self}))
    assert T5TokenizerOptions().set_options(plain, 1, 1)[0] is plain  # no T5 tokenizer: the clone unchanged
    assert T5TokenizerOptions.INPUT_TYPES()["required"]["min_length"][1]["max"] == 10000
