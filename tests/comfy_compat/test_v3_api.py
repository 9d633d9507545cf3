"""ComfyUI's V3 node API: a pack exporting comfy_entrypoint loads, shows in /object_info and runs on the executor."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import hearth_comfy_compat as comfy_compat
import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from hearth.core.context import Folders
from hearth.core.executor import Executor
from hearth.core.model_folders import ModelFolders
from hearth.core.plugins import PluginManager
from hearth.core.runtime import Runtime
from hearth.web.app import create_app
from hearth.web.config import ServerConfig

# The name Starlette's TestClient sends as the Host: allowed as --allow-host would allow it (only loopback
# names reach a server without a token).
TESTSERVER = ["testserver"]

PACKS = Path(__file__).parent / "packs"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelFolders:
    return ModelFolders(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def pm(packs_runtime: Runtime) -> PluginManager:
    return packs_runtime.plugins


@pytest.fixture
def executor(pm: PluginManager, tmp_path: Path) -> Executor:
    return Executor(pm.nodes(), folders=Folders(tmp_path / "output", tmp_path / "input", tmp_path / "temp"))


@pytest.fixture(scope="module")
def http(pm: PluginManager, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(create_app(ServerConfig(allowed_hosts=TESTSERVER, data=tmp_path_factory.mktemp("data")), plugins=pm)) as client:
        yield client


def node(class_type: str, **inputs) -> dict:
    return {"class_type": class_type, "inputs": inputs}


def v3_module():
    return next(m for name, m in sys.modules.items() if name.endswith("v3_pack") and hasattr(m, "MADE"))


def test_pack_with_comfy_entrypoint_registers_its_nodes(pm: PluginManager) -> None:
    record = pm.records["v3_pack"]
    assert record.error is None, record.traceback
    nodes = pm.nodes()
    for name in ("V3SolidImage", "V3Brightness", "V3RepeatText", "V3WhoAmI", "V3PickThing", "V3PreviewAsync"):
        assert nodes[name].plugin == "v3_pack"
    assert nodes["V3Brightness"].display_name == "Brightness (V3)"
    assert nodes["V3WhoAmI"].display_name == "V3WhoAmI"  # no display name: the node id


def test_a_node_using_a_v3_feature_hearth_lacks_is_skipped_and_reported(pm: PluginManager) -> None:
    assert "V3Growing" not in pm.nodes()
    notes = " ".join(pm.records["v3_pack"].notes)
    assert "Hearth does not provide comfy_api.latest.io.Autogrow (used by pack v3_pack)" in notes
    assert "comfy_api.latest.io.Autogrow" in comfy_compat.missing_names()["v3_pack"]


def test_object_info_shows_v3_nodes_in_comfyuis_shape(http: TestClient) -> None:
    info = http.get("/object_info/V3Brightness").json()["V3Brightness"]
    assert info["input"]["required"] == {
        "image": ["IMAGE", {}],
        "factor": ["FLOAT", {"tooltip": "1.0 keeps the image", "default": 1.0, "min": 0.0, "max": 4.0, "step": 0.05,
                             "display": "slider"}],
    }
    assert info["input_order"] == {"required": ["image", "factor"]}
    assert (info["output"], info["output_name"], info["output_is_list"]) == (["IMAGE"], ["brighter"], [False])
    assert info["category"] == "v3_pack/image" and info["description"] == "Multiplies pixel values, clamped to 0..1."
    assert info["python_module"] == "custom_nodes.v3_pack" and info["output_node"] is False

    text = http.get("/api/object_info/V3RepeatText").json()["V3RepeatText"]
    assert text["input"]["required"]["text"] == ["STRING", {"default": "hi", "multiline": True}]
    assert text["input"]["required"]["separator"] == ["COMBO", {"default": "space", "multiselect": False,
                                                                "options": ["space", "newline", "none"]}]
    assert text["input"]["required"]["times"] == ["INT", {"default": 2, "min": 0, "max": 100}]
    assert text["input"]["optional"] == {"shout": ["BOOLEAN", {"default": False}]}  # the section says optional
    assert text["output"] == ["STRING", "INT"] and text["output_name"] == ["text", "length"]

    who = http.get("/object_info/V3WhoAmI").json()["V3WhoAmI"]
    assert who["input"]["hidden"] == {"unique_id": "UNIQUE_ID", "prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
    assert who["output_node"] is True and who["output_name"] == ["STRING"]  # no display name: the type


def test_v3_nodes_run_and_the_async_preview_saves_the_image(executor: Executor, tmp_path: Path) -> None:
    prompt = {"1": node("V3SolidImage", width=4, height=2, value=0.25),
              "2": node("V3Brightness", image=["1", 0], factor=2.0),
              "3": node("V3PreviewAsync", images=["2", 0])}
    events = []
    result = executor.run(prompt, emit=lambda event, data: events.append((event, data)))
    assert result.ok, result.error
    assert [(d["node"], d["value"], d["max"]) for e, d in events if e == "progress"] == [("3", 1, 1)]
    [saved] = result.outputs["3"]["images"]
    png = Image.open(tmp_path / "temp" / saved["subfolder"] / saved["filename"])
    pixels = np.asarray(png)
    assert pixels.shape == (2, 4, 3) and (pixels == 127).all()  # 0.25 * 2 = 0.5 -> 127.5, truncated as ComfyUI does
    assert json.loads(png.info["prompt"]) == prompt  # cls.hidden.prompt reached the async node's preview


def test_outputs_in_order_and_fingerprint_caching(executor: Executor) -> None:
    prompt = {"1": node("V3RepeatText", text="ab", times=3, separator="none", shout=True),
              "2": node("V3Gate", value=["1", 0], open=True),
              "3": node("V3WhoAmI", label=["2", 0])}
    first = executor.run(prompt)
    assert first.ok, first.error
    assert first.outputs["3"]["text"] == ["ABABAB 3 of 3"]
    again = executor.run(prompt)
    assert "1" in again.cached  # same fingerprint: not run again


def test_validate_inputs_and_combo_choices_are_checked(executor: Executor) -> None:
    result = executor.run({"1": node("V3RepeatText", text="x", times=20, separator="none"),
                           "2": node("V3WhoAmI", label=["1", 0])})
    assert result.status == "error"
    errors = result.validation.node_errors["1"]["errors"]
    assert errors[0]["type"] == "custom_validation_failed"
    assert "more than 10 repeats need a separator" in errors[0]["details"]
    # Inputs validate_inputs takes are left to it, as in ComfyUI; the others get the usual checks.
    bad = executor.run({"1": node("V3SolidImage", width=100, height=2, value=0.5),
                        "2": node("V3Brightness", image=["1", 0], factor=-1.0),
                        "3": node("V3PreviewAsync", images=["2", 0])})
    assert [e["type"] for e in bad.validation.node_errors["1"]["errors"]] == ["value_bigger_than_max"]
    assert [e["type"] for e in bad.validation.node_errors["2"]["errors"]] == ["value_smaller_than_min"]


def test_lazy_inputs_run_only_when_asked_for(executor: Executor) -> None:
    made = v3_module().MADE
    made.clear()
    prompt = {"1": node("V3MakeThing", name="left"), "2": node("V3MakeThing", name="right"),
              "3": node("V3PickThing", use_a=False, a=["1", 0], b=["2", 0]),
              "4": node("V3WhoAmI", label=["3", 0])}
    result = executor.run(prompt)
    assert result.ok, result.error
    assert made == ["right"]
    assert result.outputs["4"]["text"] == ["right 4 of 4"]


def test_output_lists_and_list_inputs(executor: Executor, http: TestClient) -> None:
    prompt = {"1": node("V3SplitWords", text="red green blue"), "2": node("V3JoinAll", words=["1", 0], sep="+"),
              "3": node("V3WhoAmI", label=["2", 0])}
    result = executor.run(prompt)
    assert result.ok, result.error
    assert result.outputs["3"]["text"] == ["red+green+blue@2 3 of 3"]
    split = http.get("/object_info/V3SplitWords").json()["V3SplitWords"]
    assert split["output_is_list"] == [True] and split["output_name"] == ["words"]


def test_image_save_helper_writes_to_the_output_folder(executor: Executor, tmp_path: Path) -> None:
    prompt = {"1": node("V3SolidImage", width=2, height=2, value=1.0),
              "2": node("V3SaveImage", images=["1", 0], filename_prefix="v3/white")}
    result = executor.run(prompt)
    assert result.ok, result.error
    assert result.outputs["2"]["images"] == [{"filename": "white_00001_.png", "subfolder": "v3", "type": "output"}]
    assert (np.asarray(Image.open(tmp_path / "output" / "v3" / "white_00001_.png")) == 255).all()


def test_media_types_hearth_lacks_fail_in_the_node_that_uses_them(executor: Executor) -> None:
    result = executor.run({"1": node("V3SolidImage", width=2, height=2, value=0.5),
                           "2": node("V3Gate", value=["1", 0], open=True),
                           "3": node("V3VideoFrames", video=["2", 0]), "4": node("V3PreviewAsync", images=["3", 0])})
    assert result.status == "error"
    message = result.error["exception_message"]
    assert message == "Hearth does not provide comfy_api.input.VideoInput (used by pack v3_pack)"


def test_block_execution_stops_the_branch(executor: Executor) -> None:
    events = []
    result = executor.run({"1": node("V3Gate", value="x", open=False), "2": node("V3WhoAmI", label=["1", 0])},
                          emit=lambda event, data: events.append((event, data)))
    assert "2" not in result.outputs
    errors = [d["exception_message"] for e, d in events if e == "execution_error"]
    assert errors == ["Execution Blocked: the gate is closed"]


def test_hidden_values_are_not_visible_outside_a_run(pm: PluginManager) -> None:
    cls = pm.nodes()["V3WhoAmI"].cls
    assert cls.hidden.unique_id is None and cls.hidden.prompt is None


def test_schema_mistakes_get_clear_errors() -> None:
    from comfy_api.latest import io

    class NoSchema(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return {"node_id": "x"}

    with pytest.raises(TypeError, match="must return io.Schema"):
        NoSchema.GET_SCHEMA()

    class Twice(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="Twice", inputs=[io.Int.Input("n"), io.Float.Input("n")])

    with pytest.raises(ValueError, match="Twice: input id.* n declared twice"):
        Twice.GET_SCHEMA()
    with pytest.raises(TypeError, match="options must be a list or an Enum"):
        io.Combo.Input("mode", options="abc")


def test_versioned_aliases_are_the_same_api() -> None:
    import comfy_api.latest
    import comfy_api.v0_0_2

    assert comfy_api.v0_0_2.io.ComfyNode is comfy_api.latest.io.ComfyNode


def test_return_shapes_and_newer_schema_fields(tmp_path: Path) -> None:
    from comfy_api.latest import io

    from hearth.core.hookspecs import hookimpl

    class Pair(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            # search_aliases and essentials_category: fields of newer ComfyUI versions, accepted
            return io.Schema(node_id="V3Pair", inputs=[io.Int.Input("n", default=1, some_future_flag=True)],
                             outputs=[io.Int.Output(), io.String.Output()], search_aliases=["two"],
                             essentials_category="math")

        @classmethod
        def execute(cls, n):
            return n * 2, str(n)  # a plain tuple, as V1 nodes return

    class Show(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="V3Show", inputs=[io.Int.Input("n"), io.String.Input("s")],
                             is_output_node=True)

        @classmethod
        def execute(cls, n, s):
            return {"ui": {"text": [f"{n}/{s}"]}}

    class Wrong(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="V3Wrong", outputs=[io.Int.Output()])

        @classmethod
        def execute(cls):
            return [1]

    class Extra:
        @hookimpl
        def register_nodes(self):
            return {"V3Pair": Pair, "V3Show": Show, "V3Wrong": Wrong}

    pm = PluginManager().load(environ={})
    pm.register(Extra(), "v3-extra")
    executor = Executor(pm.nodes(), folders=Folders(tmp_path / "o", tmp_path / "i", tmp_path / "t"))
    assert [o.id for o in Pair.GET_SCHEMA().outputs] == ["_0_INT_", "_1_STRING_"]
    result = executor.run({"1": node("V3Pair", n=21), "2": node("V3Show", n=["1", 0], s=["1", 1])})
    assert result.ok, result.error
    assert result.outputs["2"]["text"] == ["42/21"]
    wrong = executor.run({"1": node("V3Wrong"), "2": node("V3Show", n=["1", 0], s="x")})
    assert wrong.error["exception_message"] == "node V3Wrong: execute() must return io.NodeOutput(...), got list"


def test_entrypoints_run_inside_a_running_event_loop_and_bad_ones_are_reported(hearth_plugins: PluginManager,
                                                                               tmp_path: Path) -> None:
    import asyncio

    from hearth_comfy_compat.loader import CustomNodesLoader

    (tmp_path / "good_v3").mkdir()
    (tmp_path / "good_v3" / "__init__.py").write_text(
        "from comfy_api.latest import ComfyExtension, io\n"
        "class Hello(io.ComfyNode):\n"
        "    @classmethod\n"
        "    def define_schema(cls):\n"
        "        return io.Schema(node_id='GoodHello', display_name='Hello', outputs=[io.String.Output()])\n"
        "    @classmethod\n"
        "    def execute(cls):\n"
        "        return io.NodeOutput('hello')\n"
        "class Ext(ComfyExtension):\n"
        "    async def get_node_list(self):\n"
        "        import comfy.samplers\n"
        "        global SAMPLERS\n"
        "        SAMPLERS = comfy.samplers.KSampler.SAMPLERS\n"
        "        return [Hello]\n"
        "def comfy_entrypoint():\n"  # a plain function is accepted too
        "    return Ext()\n")
    (tmp_path / "bad_v3").mkdir()
    (tmp_path / "bad_v3" / "__init__.py").write_text("async def comfy_entrypoint():\n    return 42\n")

    async def load_from_a_coroutine():  # as a server that loads packs after its loop started would
        loader = CustomNodesLoader([tmp_path])
        return loader, {r.name: r for r in loader.load(hearth_plugins)}

    loader, records = asyncio.run(load_from_a_coroutine())
    assert [(d.name, d.display_name, d.plugin) for d in loader.definitions] == [("GoodHello", "Hello", "good_v3")]
    # The entry point ran in a helper thread, yet read the samplers of the manager loading it.
    good = next(m for name, m in sys.modules.items() if name.endswith("good_v3"))
    assert good.SAMPLERS == list(hearth_plugins.samplers()) and "euler" in good.SAMPLERS
    assert records["good_v3"].error is None
    assert records["bad_v3"].error == ("comfy_entrypoint failed: TypeError: comfy_entrypoint() must return a "
                                       "ComfyExtension, got int")


def test_combo_upload_folder_and_remote_options_serialize() -> None:
    from comfy_api.latest import io

    class Pick(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="V3Pick", inputs=[
                io.Combo.Input("image", options=["a.png"], upload=io.UploadType.image, image_folder=io.FolderType.input),
                io.Combo.Input("voice", options=[], remote=io.RemoteOptions("/voices", refresh_button=True)),
                io.Mesh.Input("mesh", optional=True)])

    required = Pick.INPUT_TYPES()["required"]
    assert required["image"] == ("COMBO", {"multiselect": False, "options": ["a.png"], "image_upload": True,
                                           "image_folder": "input"})
    assert required["voice"][1]["remote"] == {"route": "/voices", "refresh_button": True,
                                              "control_after_refresh": "first"}
    assert Pick.INPUT_TYPES()["optional"]["mesh"] == ("MESH", {})
