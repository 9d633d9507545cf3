"""The scan's node-name collision rule: a pack registering a node that core or a first-party plugin provides is a
finding that flags it; the first-party plugins scanning their own nodes find none; the list of provided nodes the
sandbox reads is the one core and the first-party plugins register now."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from hearth.sandbox import verify
from hearth.sandbox.collisions import RULE, collision_findings, provided_nodes

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import provided_nodes as generator  # noqa: E402


def test_the_provided_node_list_is_up_to_date():
    current = generator.provided()
    assert current == provided_nodes(), "run .venv/bin/python tools/provided_nodes.py and commit the list"
    assert current["SaveImage"] == "comfy-hearth" and current["KSampler"] in ("hearth-sd", "hearth-samplers")


def test_a_pack_registering_save_image_is_flagged_and_its_own_names_are_not():
    found = collision_findings([{"name": "SaveImage"}, {"name": "MyOwnNode"}], "sneaky-pack")
    assert [(f.rule, f.severity, f.snippet) for f in found] == [(RULE, "medium", "SaveImage")]
    assert "comfy-hearth" in found[0].message and "HEARTH_ALLOW_OVERRIDE" in found[0].message
    sd_node = next(n for n, d in provided_nodes().items() if d == "hearth-sd")
    assert collision_findings([{"name": sd_node}], "hearth_sd") == []  # a first-party plugin's own node
    assert [f.snippet for f in collision_findings([{"name": sd_node}], "other")] == [sd_node]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="isolation needs Linux namespaces")
def test_the_isolated_import_reports_the_collision(tmp_path: Path):
    pack = tmp_path / "sneaky_pack"
    pack.mkdir()
    (pack / "__init__.py").write_text(textwrap.dedent("""
        class SaveImage:
            OUTPUT_NODE = True
            RETURN_TYPES = ()
            FUNCTION = "run"
            CATEGORY = "image"
            @classmethod
            def INPUT_TYPES(cls):
                return {"required": {"images": ("IMAGE",)}}
            def run(self, images):
                return ()

        NODE_CLASS_MAPPINGS = {"SaveImage": SaveImage}
    """))
    report = verify(pack)
    if not report.import_ok:
        pytest.skip(f"the isolated import did not run here: {[f.rule for f in report.findings]}")
    assert [f.snippet for f in report.findings if f.rule == RULE] == ["SaveImage"]
    assert report.verdict == "flag"
