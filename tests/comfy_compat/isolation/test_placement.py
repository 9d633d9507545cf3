"""Where the loader puts each ComfyUI pack: the trust policy's call, a pack's own dependency layer, and the refusal
when the machine cannot isolate."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from hearth.core.runtime import Runtime
from hearth.core.trust import TrustPolicy
from hearth.sandbox import host as sandbox_host
from tests.comfy_compat.tiny_sd import node

VERSION_PACK = '''
import layerdep


class {cls}:
    CATEGORY = "layers"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {{"required": {{}}}}

    def run(self):
        return {{"ui": {{"text": [layerdep.VERSION]}}, "result": (layerdep.VERSION,)}}


NODE_CLASS_MAPPINGS = {{"{cls}": {cls}}}
'''


def _environment(root: Path) -> Path:
    """An environment generation's layout: custom_nodes/ with two packs needing different layerdep versions, each
    in its own layer (layers/<pack>/), listed in layers.json beside custom_nodes/."""
    custom = root / "custom_nodes"
    layers = {}
    for pack, cls, version in (("old_pack", "OldVersion", "1.5"), ("new_pack", "NewVersion", "2.0")):
        (custom / pack).mkdir(parents=True)
        (custom / pack / "__init__.py").write_text(textwrap.dedent(VERSION_PACK.format(cls=cls)))
        layer = root / "layers" / pack
        layer.mkdir(parents=True)
        (layer / "layerdep.py").write_text(f"VERSION = {version!r}\n")
        layers[pack] = {"path": f"layers/{pack}", "packages": {"layerdep": version}}
    (root / "layers.json").write_text(json.dumps(layers))
    return custom


def _needs_isolation() -> None:
    available, reason = sandbox_host.isolation_available()
    if not available:
        pytest.skip(f"this machine cannot make a pack host's namespaces: {reason}")


def test_packs_with_their_own_layers_run_in_hosts_even_with_isolation_off(tmp_path: Path) -> None:
    _needs_isolation()
    custom = _environment(tmp_path / "env")
    runtime = Runtime.build(pack_hosts=sandbox_host, custom_nodes=[custom], environ={}, models_dir=tmp_path / "models",
                            output=tmp_path / "out", input=tmp_path / "in", trust=TrustPolicy(mode="off"))
    try:
        with runtime.activate():
            records = runtime.plugins.records
            for pack in ("old_pack", "new_pack"):
                assert records[pack].error is None, records[pack].traceback
                assert (records[pack].placement, records[pack].placement_why) == (
                    "pack host", "has its own dependency layer")
            result = runtime.executor.run({"1": node("OldVersion"), "2": node("NewVersion")})
            assert result.ok, result.error
            assert (result.outputs["1"]["text"], result.outputs["2"]["text"]) == (["1.5"], ["2.0"])
    finally:
        loader = runtime.plugins.pm.get_plugin("custom_nodes")
        if loader is not None:
            loader.close()


def test_a_layered_pack_refused_for_want_of_isolation_is_not_offered_isolation_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_host, "isolation_available",
                        lambda: (False, "unshare(CLONE_NEWUSER) failed: Operation not permitted"))
    custom = _environment(tmp_path / "env")
    runtime = Runtime.build(pack_hosts=sandbox_host, custom_nodes=[custom], environ={}, models_dir=tmp_path / "models",
                            output=tmp_path / "out", trust=TrustPolicy(mode="off"))
    with runtime.activate():
        error = runtime.plugins.records["old_pack"].error
    assert "own dependency layer, which only a pack host can run" in error and "--isolation off" not in error


def test_a_pack_that_must_be_isolated_is_not_loaded_where_the_machine_cannot(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # The machine's answer, as a kernel without unprivileged user namespaces gives it.
    monkeypatch.setattr(sandbox_host, "isolation_available",
                        lambda: (False, "unshare(CLONE_NEWUSER) failed: Operation not permitted"))
    custom = tmp_path / "custom_nodes"
    custom.mkdir()
    for pack in ("stranger_pack", "friend_pack"):
        (custom / f"{pack}.py").write_text(textwrap.dedent(f'''
            class {pack.title().replace("_", "")}:
                CATEGORY = "x"
                RETURN_TYPES = ("STRING",)
                FUNCTION = "run"

                @classmethod
                def INPUT_TYPES(cls):
                    return {{"required": {{}}}}

                def run(self):
                    return ("ran",)

            NODE_CLASS_MAPPINGS = {{"{pack.title().replace("_", "")}": {pack.title().replace("_", "")}}}
        '''))
    runtime = Runtime.build(pack_hosts=sandbox_host, custom_nodes=[custom], environ={}, models_dir=tmp_path / "models",
                            output=tmp_path / "out", trust=TrustPolicy(mode="untrusted", trusted={"friend-pack"}))
    with runtime.activate():
        records = runtime.plugins.records
        stranger, friend = records["stranger_pack"], records["friend_pack"]
        assert stranger.error == (
            "pack 'stranger_pack' must run in a pack host but this machine cannot isolate it (unshare(CLONE_NEWUSER) "
            "failed: Operation not permitted); run it unisolated at your own risk with --isolation off (or comfy "
            "trust stranger_pack)")
        assert (stranger.placement, stranger.placement_why) == ("", "not trusted")
        assert "StrangerPack" not in runtime.nodes
        assert friend.error is None and (friend.placement, friend.placement_why) == (
            "in-process", "trusted by you (comfy trust)")
        assert "FriendPack" in runtime.nodes


def test_a_pack_failing_to_import_in_its_host_is_reported_and_the_others_load(tmp_path: Path) -> None:
    _needs_isolation()
    custom = tmp_path / "custom_nodes"
    custom.mkdir()
    (custom / "broken_pack.py").write_text("import a_module_nobody_installed\n")
    (custom / "fine_pack.py").write_text(textwrap.dedent('''
        class FineNode:
            CATEGORY = "x"
            RETURN_TYPES = ("STRING",)
            FUNCTION = "run"

            @classmethod
            def INPUT_TYPES(cls):
                return {"required": {}}

            def run(self):
                return ("fine",)

        NODE_CLASS_MAPPINGS = {"FineNode": FineNode}
    '''))
    runtime = Runtime.build(pack_hosts=sandbox_host, custom_nodes=[custom], environ={}, models_dir=tmp_path / "models",
                            output=tmp_path / "out", trust=TrustPolicy(mode="all"))
    try:
        with runtime.activate():
            records = runtime.plugins.records
            broken = records["broken_pack"]
            assert broken.error is not None and broken.error.startswith("failed to import in its pack host: ")
            assert "broken_pack" in broken.error and "a_module_nobody_installed" in broken.error
            assert "a_module_nobody_installed" in (broken.traceback or "")
            assert broken.placement == "" and broken.placement_why == "--isolation all"
            assert records["fine_pack"].error is None and "FineNode" in runtime.nodes
    finally:
        loader = runtime.plugins.pm.get_plugin("custom_nodes")
        if loader is not None:
            loader.close()
