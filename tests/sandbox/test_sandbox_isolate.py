"""The isolated import: sample packs run only inside the sandbox child; what they try becomes findings, and
the caller always gets an answer within the limits."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from hearth.sandbox.isolate import ImportLimits, hearth_entry_points, import_pack, interpret

IMPORTS = Path(__file__).parent / "corpus" / "import"
# Tight limits so greedy samples fail fast; the wall clock is generous so that on a busy machine the CPU,
# memory and process limits are what stop them (the hang test sets its own short wall clock).
FAST = ImportLimits(wall_seconds=30, cpu_seconds=1, memory_bytes=4 * 1024**3, file_size_bytes=1024 * 1024)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="isolation needs Linux namespaces")


def imported(name: str, limits: ImportLimits = FAST):
    started = time.monotonic()
    result = import_pack(IMPORTS / name, limits)
    if result.isolation.get("available") is False:
        pytest.skip(f"this machine cannot isolate: {result.isolation.get('reason')}")
    assert time.monotonic() - started < limits.wall_seconds + 5, "the caller must never wait past the limit"
    return result


def rules(result) -> set[str]:
    return {f.rule for f in result.findings}


def test_comfyui_pack_lists_its_nodes_with_types_and_categories():
    result = imported("benign_comfy")
    assert result.import_ok and result.findings == []
    nodes = {n["name"]: n for n in result.nodes}
    assert set(nodes) == {"SampleBlend", "SampleCaption"}
    blend = nodes["SampleBlend"]
    assert blend["kind"] == "comfyui" and blend["category"] == "sample/image"
    assert blend["display_name"] == "Blend (sample)"
    assert blend["inputs"]["required"] == {"a": "IMAGE", "b": "IMAGE", "mode": "COMBO"}
    assert blend["inputs"]["optional"] == {"factor": "FLOAT"} and blend["outputs"] == ["IMAGE"]
    caption = nodes["SampleCaption"]
    assert caption["outputs"] == ["STRING", "INT"] and caption["output_names"] == ["text", "length"]
    assert caption["inputs"]["hidden"] == {"id": "UNIQUE_ID"}


def test_hearth_plugin_is_found_through_its_entry_point():
    assert hearth_entry_points(IMPORTS / "hearth_plugin") == [("sample", "sample_hearth.plugin")]
    result = imported("hearth_plugin")
    assert result.import_ok, result.findings
    assert [(n["name"], n["kind"], n["outputs"]) for n in result.nodes] == [("SampleUpper", "hearth", ["STRING"])]


def test_a_default_tier_entry_point_is_imported_too(tmp_path):
    # A pack may declare its plugin in the default tier's group; the plugin manager loads it, so the sandbox must too.
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\n[project.entry-points.hearth]\na = "p.one"\n'
        '[project.entry-points."hearth.default"]\nb = "p.two"\n')
    assert hearth_entry_points(tmp_path) == [("a", "p.one"), ("b", "p.two")]


def test_the_pack_sees_no_network_no_secrets_no_privileges_and_only_a_private_home(monkeypatch):
    monkeypatch.setenv("HEARTH_SAMPLE_SECRET_TOKEN", "must-not-leak")
    result = imported("probe")
    assert result.import_ok, result.findings
    seen = json.loads(result.nodes[0]["category"])
    assert seen["env"] == ["HOME", "LANG", "PATH", "TMPDIR"]
    assert seen["write_own_folder"] is False and seen["write_tmp"] is False
    assert seen["write_home"] is True
    assert seen["interfaces"] == ["lo"]
    assert seen["capabilities"] == "0000000000000000"
    assert seen["pid"] == 1  # pid 1 of its own namespace: when it dies, everything it started dies
    assert not os.path.exists("/tmp/hearth-sandbox-probe-marker")
    assert not (IMPORTS / "probe" / "marker.txt").exists()


@pytest.mark.parametrize(("pack", "expected"), [
    ("hang", "import.timeout"),
    ("spin", "import.cpu-limit"),
    ("forkbomb", "import.process-limit"),
    ("crash", "import.crash"),
    ("memory", "import.memory-limit"),
    ("bigfile", "import.file-size-limit"),
])
def test_misbehaving_imports_become_findings(pack, expected):
    result = imported(pack, replace(FAST, wall_seconds=2) if pack == "hang" else FAST)
    assert expected in rules(result), result.findings
    assert not result.import_ok


def test_network_and_process_attempts_are_reported():
    assert "import.network" in rules(imported("network"))
    assert "import.subprocess" in rules(imported("spawn"))


def test_an_import_error_is_a_low_finding_with_the_reason():
    result = imported("failing")
    (finding,) = result.findings
    assert finding.rule == "import.failed" and finding.severity == "low"
    assert "needs a dependency" in finding.message and not result.import_ok


# -- reading the child's answer (no child needed) ----------------------------------------------------------------


def warden_output(result: object, state: str = "sealed", **outer: object) -> str:
    report = {"state": state, "result": result if isinstance(result, str) else json.dumps(result)}
    return json.dumps({"isolation": {"available": True}, "exit_code": 0, "timed_out": False, "report": report,
                       **outer})


def test_forged_or_malformed_child_output_is_validated():
    forged = {"nodes": [{"name": "X", "kind": "root", "inputs": {"required": {"a": ["IMAGE"]}}, "outputs": "IMAGE"},
                        "not a node", {"name": 7}], "error": None}
    result = interpret(warden_output(forged))
    assert [(n["name"], n["kind"], n["outputs"]) for n in result.nodes] == [("X", "comfyui", [])]
    assert result.nodes[0]["inputs"] == {"required": {"a": "['IMAGE']"}}
    garbage = interpret(warden_output("{not json"))
    assert [f.rule for f in garbage.findings] == ["import.crash"] and not garbage.import_ok
    assert [f.rule for f in interpret("nonsense").findings] == ["import.crash"]


def test_unavailable_isolation_is_reported_and_nothing_is_imported():
    result = interpret(json.dumps({"isolation": {"available": False, "reason": "unshare(CLONE_NEWNET) failed"}}))
    (finding,) = result.findings
    assert finding.rule == "import.isolation-unavailable" and "CLONE_NEWNET" in finding.message
    assert not result.import_ok and result.nodes == []


def test_platforms_without_namespaces_refuse_to_import(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    result = import_pack(IMPORTS / "benign_comfy", FAST)
    assert [f.rule for f in result.findings] == ["import.isolation-unavailable"] and result.nodes == []


def test_links_in_an_unchecked_folder_are_not_copied_into_the_sandbox(tmp_path):
    pack = tmp_path / "linked"
    pack.mkdir()
    (tmp_path / "secret.txt").write_text("outside the pack")
    (pack / "secret").symlink_to(tmp_path / "secret.txt")
    (pack / "outside").symlink_to(tmp_path, target_is_directory=True)
    (pack / "__init__.py").write_text(
        "import os\nhere = os.path.dirname(__file__)\n"
        "class Seen:\n    CATEGORY = ','.join(sorted(os.listdir(here)))\n    RETURN_TYPES = ()\n    FUNCTION = 'f'\n"
        "    @classmethod\n    def INPUT_TYPES(cls):\n        return {}\n"
        "NODE_CLASS_MAPPINGS = {'Seen': Seen}\n")
    result = import_pack(pack, FAST)
    if result.isolation.get("available") is False:
        pytest.skip("this machine cannot isolate")
    assert result.nodes[0]["category"] == "__init__.py"


def test_a_child_that_still_holds_privileges_refuses_to_import():
    result = interpret(warden_output({"isolation_failed": "CapInh is 00000000a80425fb after dropping capabilities"}))
    assert [f.rule for f in result.findings] == ["import.isolation-unavailable"]
    assert "CapInh" in result.findings[0].message and result.nodes == []


def test_a_warden_that_dies_without_answering_is_a_crash_finding(monkeypatch, tmp_path):
    broken = tmp_path / "worker.py"
    broken.write_text("import sys\nsys.stderr.write('warden broke')\nsys.exit(5)\n")
    monkeypatch.setattr("hearth.sandbox.isolate.WORKER", broken)
    result = import_pack(IMPORTS / "benign_comfy", FAST)
    (finding,) = result.findings
    assert finding.rule == "import.crash" and "exited with 5" in finding.message
    assert finding.snippet == "warden broke" and not result.import_ok


# -- a report the pack cannot forge ------------------------------------------------------------------------------

FORGER = """# ruff: noqa
import json, os
fake = json.dumps({"nodes": [{"name": "ForgedNode", "kind": "comfyui", "inputs": {}, "outputs": []}],
                   "events": [], "counts": {}, "error": None}).encode()
for fd in range(1024):
    for data in (fake, b"KEY?\\n" + fake, b"REPORT " + b"0" * 64 + b"\\n" + fake):
        try:
            os.write(fd, data)
        except OSError:
            pass
os._exit(0)
"""


def test_a_pack_that_writes_a_fake_report_everywhere_and_exits_gets_no_pass_and_no_nodes(tmp_path):
    pack = tmp_path / "forger"
    pack.mkdir()
    (pack / "__init__.py").write_text(FORGER)
    result = imported_from(pack)
    assert "import.forged-report" in rules(result), result.findings
    assert result.nodes == [] and not result.import_ok
    from hearth.sandbox import verify
    report = verify(pack, import_limits=FAST)
    assert report.verdict != "pass" and report.nodes == []
    assert not any(n["name"] == "ForgedNode" for n in report.nodes)


def test_a_pack_that_leaves_a_thread_running_gets_an_unsealed_report(tmp_path):
    pack = tmp_path / "lingering"
    pack.mkdir()
    (pack / "__init__.py").write_text("import threading, time\nthreading.Thread(target=time.sleep, args=(30,), daemon=True)"
                                      ".start()\nNODE_CLASS_MAPPINGS = {}\n")
    result = imported_from(pack)
    assert "import.forged-report" in rules(result) and "thread" in next(
        f.snippet for f in result.findings if f.rule == "import.forged-report")
    assert not result.import_ok


def test_an_honest_import_is_sealed(tmp_path):
    result = imported("benign_comfy")
    assert "import.forged-report" not in rules(result) and result.nodes


@pytest.mark.parametrize("state", ["forged: bytes came before the harness asked for its key",
                                   "forged: the report's seal does not match", "unsealed: 1 thread(s) still running"])
def test_an_unsealed_or_forged_report_gives_no_nodes_and_no_clean_import(state):
    claimed = {"nodes": [{"name": "X", "kind": "comfyui"}], "error": None, "isolation_failed": "claimed"}
    result = interpret(warden_output(claimed, state=state))
    assert result.nodes == [] and not result.import_ok
    assert "import.forged-report" in rules(result) and "import.isolation-unavailable" not in rules(result)


def imported_from(pack: Path):
    result = import_pack(pack, FAST)
    if result.isolation.get("available") is False:
        pytest.skip(f"this machine cannot isolate: {result.isolation.get('reason')}")
    return result
