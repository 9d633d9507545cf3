"""End to end: two ComfyUI-format packs whose requirements conflict (``tinydep<2`` and ``tinydep>=2``) are installed
from a real registry, each with its own dependency layer, and their nodes run in ONE workflow through ``comfy run``
with the CLI's default isolation: each node runs in its pack's host, with its layer first on sys.path, and returns
the tinydep version it imported as a STRING.

The versions come back through the core: a builtin StringConcatenate joins them and SaveImage uses the result as its
filename prefix, so the saved file's name (what ``comfy run`` prints) carries what each pack saw."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hearth.registry import envs
from hearth.registry.layers import read_layers
from tests.envs.conftest import ROOT, unique
from tests.harness.packs import Packs, make_pack

LAUNCH = "import sys; from hearth.cli.main import main; sys.exit(main(sys.argv[1:]))"

# A node that says which tinydep its pack sees; imported when it runs (the registry's verification imports the pack
# without its requirements installed).
VERSION_NODE = '''
class {cls}:
    CATEGORY = "layers test"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {{"required": {{}}}}

    def run(self):
        import tinydep

        return (tinydep.VERSION,)


NODE_CLASS_MAPPINGS = {{"{cls}": {cls}}}
'''


def version_pack(packs: Packs, name: str, cls: str, requirement: str) -> None:
    folder = make_pack(packs.work, name, publisher=packs.publisher, node_class=cls, requirements=(requirement,),
                       description=f"test pack {name}")
    (folder / "__init__.py").write_text(VERSION_NODE.format(cls=cls))
    packs.publish(folder)


def test_two_layered_packs_run_in_one_workflow_each_with_its_own_version(packs: Packs, comfy, home: Path,
                                                                         tmp_path: Path):
    old, new = unique("rold-"), unique("rnew-")
    old_cls, new_cls = unique("OldTinydep"), unique("NewTinydep")
    version_pack(packs, old, old_cls, "tinydep<2")
    version_pack(packs, new, new_cls, "tinydep>=2")
    r = comfy("install", old, new)
    assert r.exit_code == 0, r.output
    layers = read_layers(envs.get_environment().generation_path)
    assert {k: v["packages"] for k, v in layers.items()} == {old: {"tinydep": "1.5"}, new: {"tinydep": "2.0"}}

    workflow = tmp_path / "wf.json"
    workflow.write_text(json.dumps({
        "1": {"class_type": old_cls, "inputs": {}},
        "2": {"class_type": new_cls, "inputs": {}},
        "3": {"class_type": "StringConcatenate", "inputs": {"string_a": ["1", 0], "string_b": ["2", 0],
                                                            "delimiter": "_and_"}},
        "4": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": ["3", 0]}},
    }))
    environ = {k: v for k, v in os.environ.items() if k != "HEARTH_ISOLATION"}  # the CLI's default: untrusted
    environ["PYTHONPATH"] = str(ROOT)

    def comfy_process(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", LAUNCH, *args], capture_output=True, text=True, timeout=300,
                              env=environ, cwd=tmp_path)

    done = comfy_process("run", str(workflow), "--env", "default", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stdout + done.stderr
    saved = [Path(line).name for line in done.stdout.splitlines() if line.endswith(".png")]
    assert saved == ["1.5_and_2.0_00001_.png"], done.stdout + done.stderr

    # Where they ran and why, as `comfy plugins` says it.
    done = comfy_process("plugins", "--env", "default", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    placed = {p["name"]: (p["placement"], p["placement_why"]) for p in json.loads(done.stdout)["plugins"]}
    assert placed[old] == placed[new] == ("pack host", "has its own dependency layer"), placed

    # A pack the user trusts, or --isolation off, cannot bring it in-process: its layer would shadow (or be shadowed
    # by) the venv's packages. Both still run in their hosts, each with its own version.
    assert comfy("trust", old).exit_code == 0
    done = comfy_process("plugins", "--env", "default", "--json")
    placed = {p["name"]: (p["placement"], p["placement_why"]) for p in json.loads(done.stdout)["plugins"]}
    assert placed[old] == ("pack host", "has its own dependency layer"), placed
    done = comfy_process("run", str(workflow), "--env", "default", "--out", str(tmp_path / "off"),
                         "--isolation", "off")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [Path(line).name for line in done.stdout.splitlines() if line.endswith(".png")] == \
        ["1.5_and_2.0_00001_.png"], done.stdout + done.stderr
