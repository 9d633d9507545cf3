"""With ``--json``, standard output is exactly one JSON document, whatever the packs print.

Real packs print while they load (banners, "### Loading: ...", dependency checks), from Python, from C extensions
writing to descriptor 1 and from the subprocesses they start; some print again while their nodes are asked for
inputs or at exit. The real ``comfy`` command runs here as a subprocess, as a script would run it, on a
``custom_nodes`` folder of packs printing every way; ``json.loads(stdout)`` must succeed and what the packs printed
must reach standard error instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHATTY_PACK = '''
import atexit, os, subprocess, sys

print("chatty: print at import")
sys.stdout.write("chatty: sys.stdout.write at import\\n")
sys.stdout.flush()
os.write(1, b"chatty: os.write(1) at import\\n")
subprocess.run([sys.executable, "-c", "print('chatty: a subprocess at import')"], check=True)
atexit.register(print, "chatty: print at exit")


class ChattyNumber:
    @classmethod
    def INPUT_TYPES(cls):
        print("chatty: print in INPUT_TYPES")
        os.write(1, b"chatty: os.write(1) in INPUT_TYPES\\n")
        return {"required": {"value": ("INT", {"default": 1})}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    CATEGORY = "chatty"

    def run(self, value):
        print("chatty: print while running")
        return (value,)


class ChattyShow:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"forceInput": True})}}

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = "chatty"

    def run(self, value):
        return {"ui": {"value": [value]}}


NODE_CLASS_MAPPINGS = {"ChattyNumber": ChattyNumber, "ChattyShow": ChattyShow}
'''

# A package pack whose __init__ prints through a logging handler bound to sys.stdout, as many packs set up.
LOGGING_PACK = '''
import logging, sys

handler = logging.StreamHandler(sys.stdout)
log = logging.getLogger("chatty_logging")
log.addHandler(handler)
log.setLevel(logging.INFO)
log.info("chatty: a logging handler on sys.stdout")
NODE_CLASS_MAPPINGS = {}
'''

PRINTED = ["print at import", "sys.stdout.write at import", "os.write(1) at import", "a subprocess at import",
           "a logging handler on sys.stdout"]


@pytest.fixture
def packs(workdir: Path) -> Path:
    folder = workdir / "custom_nodes"
    folder.mkdir()
    (folder / "chatty_pack.py").write_text(CHATTY_PACK, encoding="utf-8")
    (folder / "chatty_logging").mkdir()
    (folder / "chatty_logging" / "__init__.py").write_text(LOGGING_PACK, encoding="utf-8")
    return folder


def comfy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command in a process of its own (HEARTH_ISOLATION=off, as the suite sets it: the packs load in it)."""
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)  # buffered, as in a pipe: the guard must flush what packs left in the buffer
    return subprocess.run([sys.executable, "-m", "hearth.cli.main", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def one_document(done: subprocess.CompletedProcess[str]) -> object:
    assert "chatty:" not in done.stdout, done.stdout[:2000]
    data = json.loads(done.stdout)  # exactly one document: any text before or after fails here
    for line in PRINTED:
        assert f"chatty: {line}" in done.stderr, done.stderr[-3000:]
    return data


def test_nodes_json(packs: Path) -> None:
    done = comfy("nodes", "--json", "--custom-nodes", str(packs), cwd=packs.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    info = one_document(done)
    assert info["ChattyNumber"]["input"]["required"]["value"] == ["INT", {"default": 1}]
    assert "chatty: print in INPUT_TYPES" in done.stderr
    assert "chatty: print at exit" in done.stderr


def test_plugins_json(packs: Path) -> None:
    done = comfy("plugins", "--json", "--custom-nodes", str(packs), cwd=packs.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    records = {p["name"]: p for p in one_document(done)["plugins"]}
    assert records["chatty_pack"]["error"] is None and records["chatty_pack"]["node_count"] == 2
    assert records["chatty_logging"]["error"] is None


def test_run_check_json(packs: Path) -> None:
    workflow = packs.parent / "workflow.json"
    workflow.write_text(json.dumps({"1": {"class_type": "ChattyNumber", "inputs": {"value": 3}},
                                    "2": {"class_type": "ChattyShow", "inputs": {"value": ["1", 0]}}}))
    done = comfy("run", "--check", "--json", str(workflow), "--custom-nodes", str(packs), cwd=packs.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    assert one_document(done) == {"node_errors": {}}
    assert "chatty: os.write(1) in INPUT_TYPES" in done.stderr  # validation reads INPUT_TYPES


def test_make_tiny_json(packs: Path) -> None:
    done = comfy("models", "make-tiny", "--json", "--custom-nodes", str(packs), cwd=packs.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    assert isinstance(one_document(done), dict)


def test_without_json_the_packs_print_where_they_did(packs: Path) -> None:
    done = comfy("nodes", "--custom-nodes", str(packs), cwd=packs.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "chatty: print at import" in done.stdout and "ChattyNumber" in done.stdout


def test_make_tiny_still_writes_with_out_and_models_dir(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The guard around the listing once took the name of make-tiny's --out option: both forms broke.
    from click.testing import CliRunner

    from hearth.cli.main import cli

    monkeypatch.delenv("HEARTH_DISABLE_PLUGINS")  # the tiny models come from the first-party model plugins
    out = workdir / "made" / "tiny-embedding.safetensors"
    by_file = CliRunner().invoke(cli, ["models", "make-tiny", "embedding", "--out", str(out)])
    assert by_file.exit_code == 0, by_file.output
    assert out.is_file() and by_file.stdout.startswith(f"wrote {out}")
    by_folder = CliRunner().invoke(cli, ["models", "make-tiny", "embedding", "--models-dir", str(workdir / "models")])
    assert by_folder.exit_code == 0, by_folder.output
    assert (workdir / "models" / "embeddings" / "tiny-embedding.safetensors").is_file()
