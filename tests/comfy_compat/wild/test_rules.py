"""Packs from the wild, by ComfyUI's rules: "any" types, flexible inputs, unions, and nodes whose INPUT_TYPES fails.

The packs under ``packs_rules/`` are written the way real packs are: rgthree's ``AnyType`` (``__ne__`` only) and
``FlexibleOptionalInputType`` in a ``py/utils.py``, ComfyUI-Logic's ``AlwaysEqualProxy`` (``__eq__`` too), a pack
whose node lists a folder that is missing. They load through Hearth's real loader and run through the executor,
the ``comfy`` commands and the server, as a user's would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from hearth.cli.main import cli
from hearth.core.executor import Executor, parse_prompt
from hearth.core.executor.workflow import ui_to_api
from hearth.core.plugins import PluginManager
from hearth.core.runtime import Runtime
from tests.comfy_compat.tiny_sd import executor_for, node

# The name Starlette's TestClient sends as the Host: allowed as --allow-host would allow it (only loopback
# names reach a server without a token).
TESTSERVER = ["testserver"]

PACKS = Path(__file__).parent / "packs_rules"
BROKEN = "Rules List Presets"


@pytest.fixture(scope="module")
def rules_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    work = tmp_path_factory.mktemp("rules")
    runtime = Runtime.build(custom_nodes=[PACKS], environ={}, models_dir=work / "models", output=work / "output",
                            input=work / "input", temp=work / "temp")
    with runtime.activate():
        runtime.plugins  # noqa: B018 - load now, inside the Runtime
        yield runtime


@pytest.fixture
def hearth_runtime(rules_runtime: Runtime) -> Iterator[Runtime]:
    with rules_runtime.activate():
        yield rules_runtime


@pytest.fixture(scope="module")
def pm(rules_runtime: Runtime) -> PluginManager:
    return rules_runtime.plugins


@pytest.fixture(scope="module")
def executor(pm: PluginManager, tmp_path_factory: pytest.TempPathFactory) -> Executor:
    return executor_for(pm, tmp_path_factory.mktemp("run"))


def test_the_packs_load_with_every_node(pm: PluginManager) -> None:
    for pack in ("rules_switch_pack", "rules_logic_pack", "rules_broken_pack", "rules_video_pack"):
        assert pm.records[pack].error is None, pm.records[pack].traceback
    pm.nodes()  # building the registry counts each pack's nodes
    assert pm.records["rules_switch_pack"].node_count == 4
    assert pm.records["rules_logic_pack"].node_count == 3
    # The broken nodes are registered (and named below), and so is the display-only one without FUNCTION.
    assert pm.records["rules_broken_pack"].node_count == 6 and not pm.records["rules_broken_pack"].notes


def test_int_into_any_inputs_and_any_outputs_into_typed_inputs(executor: Executor) -> None:
    prompt = {
        "1": node("Rules Constant", value=4),
        "2": node("Rules Any Switch", any_01=["1", 0]),  # INT into a flexible "*" input rgthree's way
        "3": node("Rules Add Ints", a=["2", 0], b=3),  # an AnyType output into an INT input
        "4": node("Rules IntPass", value=["3", 0]),  # INT into an always-equal "any" named "any"
        "5": node("Rules Add Ints", a=["4", 0], b=10),
        "6": node("Compare", a=["5", 0], b=17, comparison="a == b"),  # any inputs: a link and a literal
        "7": node("DebugPrint", ANY=["6", 0]),
    }
    result = executor.run(prompt)
    assert result.ok, result.validation.node_errors if result.validation else result.error
    assert result.outputs["7"] == {"value": ["True"]}


def test_comma_unions_take_each_member(executor: Executor) -> None:
    prompt = {"1": node("Rules Constant", value=3),
              "2": node("Rules Number To Text", number=["1", 0]), "3": node("Rules Number To Text", number=["1", 1])}
    result = executor.run(prompt)
    assert result.ok, result.validation.node_errors
    assert result.outputs["2"]["text"] == ["3"] and result.outputs["3"]["text"] == ["1.5"]
    refused = executor.run({"1": node("Rules Fine"), "2": node("Rules Number To Text", number=["1", 0])})
    [problem] = refused.validation.node_errors["2"]["errors"]
    assert problem["details"] == "number, received_type(STRING) mismatch input_type(INT,FLOAT)"


def test_multi_input_types_and_an_open_hidden_section(executor: Executor) -> None:
    # VideoHelperSuite's imageOrLatent takes a LATENT though it is shown as IMAGE; floatOrInt takes an INT; the
    # format widgets its frontend adds (crf, pix_fmt) reach the node through the ContainsAll hidden section.
    prompt = {"1": node("Rules Empty Latent", frames=3),
              "2": node("Rules Video Combine", images=["1", 0], frame_rate=["1", 1], format="video/h264-mp4",
                        crf=19, pix_fmt="yuv420p")}
    result = executor.run(prompt)
    assert result.ok, result.validation.node_errors
    assert result.outputs["2"]["text"] == ["3 frames at 3 as video/h264-mp4", "extra widgets ['crf', 'pix_fmt']"]
    refused = executor.run({"1": node("Rules Fine"), "2": node("Rules Video Combine", images=["1", 0],
                                                                 frame_rate=8, format="image/gif")})
    [problem] = refused.validation.node_errors["2"]["errors"]
    assert problem["details"] == "images, received_type(STRING) mismatch input_type(IMAGE)"


def test_links_to_the_outputs_a_bypass_tuple_adds_validate(executor: Executor) -> None:
    # Impact's inversed switch: as many outputs as the frontend links, each typed as RETURN_TYPES[slot] answers.
    prompt = {"1": node("Rules Constant", value=2), "2": node("Rules Inversed Switch", select=3, input=["1", 0]),
              "3": node("Rules Add Ints", a=["2", 2], b=1)}
    checked = executor.validator.validate(parse_prompt(prompt), ["3"])
    assert checked.ok, checked.node_errors
    missing = executor.validator.validate(parse_prompt({**prompt, "3": node("Rules Add Ints", a=["1", 2], b=1)}),
                                          ["3"])
    assert missing.node_errors["3"]["errors"][0]["message"] == "Bad linked input: no such output slot"


def test_object_info_shows_any_as_star(pm: PluginManager, rules_runtime: Runtime) -> None:
    info = json.loads(json.dumps(rules_runtime.call(pm.nodes().object_info)))
    assert info["Compare"]["input"]["required"]["a"] == ["*", {"default": 0}]
    assert info["Compare"]["input"]["required"]["comparison"][0] == ["a == b", "a != b", "a < b", "a > b"]
    assert info["Rules IntPass"]["input"]["required"]["value"] == ["*", {}]
    assert info["Rules IntPass"]["output"] == info["Rules Any Switch"]["output"] == ["*"]
    assert info["Rules Any Switch"]["display_name"] == "Any Switch (rules)"
    assert BROKEN not in info and "Rules Fine" in info  # ComfyUI's /object_info leaves it out too
    combine = info["Rules Video Combine"]["input"]  # shown as ComfyUI shows them: the MultiInput's own name
    assert combine["required"]["images"] == ["IMAGE"] and combine["required"]["frame_rate"][0] == "FLOAT"
    assert combine["hidden"] == {"prompt": "PROMPT", "unique_id": "UNIQUE_ID"}
    assert info["Rules Inversed Switch"]["output"] == ["*"]


def test_a_ui_workflow_gives_widget_values_to_widgets_only(pm: PluginManager, executor: Executor) -> None:
    # The frontend shows an "any" input as a socket, not a widget: widgets_values hold the widgets only. An
    # always-equal type read as a combo took the first value, and every widget after it shifted.
    workflow = {
        "nodes": [
            {"id": 1, "type": "Rules Constant", "inputs": [], "widgets_values": [5, "fixed"],
             "outputs": [{"name": "INT", "type": "INT", "links": [1]}]},
            {"id": 2, "type": "Compare", "widgets_values": ["a != b"],
             "inputs": [{"name": "a", "type": "*", "link": 1}, {"name": "b", "type": "*", "link": 2}],
             "outputs": [{"name": "result", "type": "BOOLEAN", "links": [3]}]},
            {"id": 3, "type": "Rules Constant", "inputs": [], "widgets_values": [6, "fixed"],
             "outputs": [{"name": "INT", "type": "INT", "links": [2]}]},
            {"id": 4, "type": "DebugPrint", "inputs": [{"name": "ANY", "type": "*", "link": 3}],
             "widgets_values": []},
        ],
        "links": [[1, 1, 0, 2, 0, "INT"], [2, 3, 0, 2, 1, "INT"], [3, 2, 0, 4, 0, "BOOLEAN"]],
    }
    prompt = ui_to_api(workflow, pm.nodes())
    assert prompt["2"]["inputs"] == {"a": ["1", 0], "b": ["3", 0], "comparison": "a != b"}
    result = executor.run(prompt)
    assert result.ok, result.validation.node_errors
    assert result.outputs["4"] == {"value": ["True"]}


def test_running_a_node_whose_input_types_fails_names_the_error(executor: Executor) -> None:
    result = executor.run({"1": node(BROKEN, preset="a"), "2": node("DebugPrint", ANY=["1", 0])})
    [problem] = result.validation.node_errors["1"]["errors"]
    assert "INPUT_TYPES() raised FileNotFoundError" in problem["details"]
    assert "rules_presets_not_installed" in result.validation.first_problem()


def test_a_display_only_node_is_listed_and_says_why_it_cannot_run(pm: PluginManager, executor: Executor,
                                                                    rules_runtime: Runtime) -> None:
    info = rules_runtime.call(pm.nodes().object_info)["Rules Syntax Help"]
    assert info["input"]["required"]["notes"] == ["STRING", {"default": "a;b;c", "multiline": True}]
    assert info["output"] == [] and info["category"] == "rules"
    result = executor.run({"1": node("Rules Syntax Help", notes="x")}, targets=["1"])
    assert not result.ok and "RulesSyntaxHelp has no FUNCTION" in result.error["exception_message"]


def test_a_mapping_entry_that_is_no_usable_node_is_listed_with_why(pm: PluginManager, executor: Executor,
                                                                    rules_runtime: Runtime) -> None:
    # A V3 class whose define_schema() fails looks as if it had no RETURN_TYPES (its V1 attributes come from the
    # schema); what is named is the schema's own error.
    errors = rules_runtime.call(pm.nodes().input_errors)
    assert errors["Rules Preset Picker"].startswith("Rules Preset Picker: define_schema() raised FileNotFoundError")
    assert errors["Rules No Return Types"] == ("Rules No Return Types: node class 'Rules No Return Types' "
                                               "(RulesNoReturnTypes) has no RETURN_TYPES; see the node contract")
    # A class built on a ComfyUI class Hearth lacks: what is named is the missing base, not "has no INPUT_TYPES".
    assert errors["Rules Guide Multi"].startswith("Rules Guide Multi: INPUT_TYPES: HearthDoesNotProvide: ")
    assert "comfy_extras.nodes_lt.LTXVAddGuideRulesProbe" in errors["Rules Guide Multi"]
    result = executor.run({"1": node("Rules Preset Picker", preset="a"), "2": node("DebugPrint", ANY=["1", 0])})
    assert "define_schema() raised FileNotFoundError" in result.validation.first_problem()


def comfy(*args: str) -> Any:
    # A wide terminal: a table cell never wraps, whatever else the process has loaded widens other columns.
    return CliRunner(env={"COLUMNS": "400"}).invoke(cli, [*args, "--custom-nodes", str(PACKS), "--isolation", "off"],
                                                    prog_name="comfy")


def test_comfy_nodes_lists_the_broken_node_with_its_error() -> None:
    out = comfy("nodes", "--json")
    assert out.exit_code == 0, out.output
    info = json.loads(out.stdout)  # the packs' prints went to stderr
    entry = info[BROKEN]
    assert entry["error"].startswith(f"{BROKEN}.INPUT_TYPES() raised FileNotFoundError")
    assert entry["output"] == ["STRING"] and entry["input"] == {"required": {}}
    assert "error" not in info["Rules Fine"]
    assert "[rules_switch_pack] Loaded 4 nodes" in out.stderr
    table = comfy("nodes")
    assert table.exit_code == 0, table.output
    row = next(line for line in table.stdout.splitlines() if BROKEN in line)
    assert f"error: {BROKEN}.INPUT_TYPES() raised FileNotFoundError" in row
    assert f"4 node(s) cannot run, each for the error shown: Rules Guide Multi, {BROKEN}," in table.stderr


def test_comfy_plugins_names_the_broken_node() -> None:
    out = comfy("plugins", "--json")
    assert out.exit_code == 0, out.output
    records = {r["name"]: r for r in json.loads(out.stdout)["plugins"]}
    assert sorted(records["rules_broken_pack"]["node_errors"]) == [
        "Rules Guide Multi", BROKEN, "Rules No Return Types", "Rules Preset Picker"]
    assert "FileNotFoundError" in records["rules_broken_pack"]["node_errors"][BROKEN]
    assert records["rules_switch_pack"]["node_errors"] == {}
    table = comfy("plugins")
    assert table.exit_code == 0, table.output
    assert f"rules_broken_pack: node {BROKEN} cannot run" in " ".join(table.stdout.split())
    row = next(line for line in table.stdout.splitlines() if "rules_broken_pack" in line)
    assert "6 (4 cannot run)" in row  # six nodes, four of which cannot run


def test_the_server_object_info_leaves_the_broken_node_out(rules_runtime: Runtime, tmp_path: Path) -> None:
    from hearth.web.app import create_app
    from hearth.web.config import ServerConfig

    with TestClient(create_app(ServerConfig(allowed_hosts=TESTSERVER, data=tmp_path), rules_runtime)) as http:
        response = http.get("/object_info")
        assert response.status_code == 200
        info = response.json()
    assert BROKEN not in info and info["Compare"]["input"]["required"]["b"] == ["*", {"default": 0}]
