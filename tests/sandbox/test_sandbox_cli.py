"""`comfy node scan`: verdict, findings table or JSON, and exit codes 0/1/2; bad input is one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from hearth.cli.scan import scan

HERE = Path(__file__).parent
STATIC = HERE / "corpus" / "static"
IMPORTS = HERE / "corpus" / "import"


def run(*args: str):
    return CliRunner().invoke(scan, list(args))


def test_pass_prints_the_verdict_and_nodes_and_exits_0():
    result = run(str(IMPORTS / "benign_comfy"), "--timeout", "10")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("PASS") and "SampleBlend" in result.output


def test_flag_prints_a_findings_table_and_exits_1():
    result = run(str(STATIC / "deps.index.fires"), "--no-import")
    assert result.exit_code == 1
    assert result.output.startswith("FLAG") and "deps.index" in result.output
    assert "requirements.txt:1" in result.output and "import skipped" in result.output


def test_reject_exits_2_and_json_is_machine_readable(tmp_path):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escape.py", "x = 1\n")
    result = run(str(archive), "--json")
    assert result.exit_code == 2
    data = json.loads(result.output)
    assert data["verdict"] == "reject" and data["findings"][0]["rule"] == "archive.traversal"


def test_bad_input_is_one_line_without_traceback(tmp_path):
    missing = run(str(tmp_path / "nope.zip"))
    assert missing.exit_code == 2 and missing.output.strip().count("\n") == 0
    assert "nope.zip: no such file or folder" in missing.output and "Traceback" not in missing.output
    (tmp_path / "junk.tar.gz").write_bytes(b"\x00junk")
    junk = run(str(tmp_path / "junk.tar.gz"))
    assert junk.exit_code == 2 and "not a folder, .zip or .tar(.gz) archive" in junk.output
    assert junk.output.strip().count("\n") == 0


def test_the_comfy_command_wires_scan_into_the_node_group():
    comfy = Path(sys.executable).with_name("comfy")
    if not comfy.exists():
        pytest.skip("the comfy command is not installed beside this Python")
    done = subprocess.run([str(comfy), "node", "scan", str(STATIC / "deps.vcs.fires"), "--no-import", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["findings"][0]["rule"] == "deps.vcs"


def test_output_and_json_call_the_scan_a_triage_aid():
    result = run(str(IMPORTS / "benign_comfy"), "--no-import")
    assert "triage aid" in " ".join(result.output.split()) and "not that the pack is safe" in " ".join(result.output.split())
    result = run(str(IMPORTS / "benign_comfy"), "--no-import", "--json")
    assert "triage aid" in json.loads(result.output)["note"]


def test_the_scan_docs_list_every_rule():
    from hearth.sandbox.rules import RULES

    text = (HERE.parents[1] / "docs" / "scan.md").read_text()
    assert "triage aid" in text
    assert [rule for rule in RULES if f"`{rule}`" not in text] == []
