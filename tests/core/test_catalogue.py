"""The node catalogue: what it keys on, when it is rebuilt, and that a cached answer equals the loaded plugins'."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from hearth.core.catalogue import (
    Catalogue,
    build_catalogue,
    catalogue_for,
    catalogue_key,
    catalogue_path,
    load_catalogue,
    save_catalogue,
)
from hearth.core.executor import parse_prompt
from hearth.core.executor.validation import Validator
from hearth.core.hookspecs import hookimpl
from hearth.core.plugins import PluginManager
from hearth.core.runtime import Runtime
from hearth.core.testing import runtime_on

# The builtin nodes and the ComfyUI loader are enough to show the catalogue's rules; the model packs would only
# make each build import torch.
ONLY_CORE = {"HEARTH_DISABLE_PLUGINS": "sd,samplers,lora,video,dit,upscale,audio"}

PACK = '''
class Echo:
    CATEGORY = "testing"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "%s"})}}

    def run(self, text):
        return (text,)

NODE_CLASS_MAPPINGS = {"%s": Echo}
'''


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("HEARTH_CACHE_DIR", str(folder))
    monkeypatch.delenv("HEARTH_CATALOGUE", raising=False)
    return folder


def write_pack(custom: Path, name: str, node: str, default: str = "hi") -> Path:
    (custom / name).mkdir(parents=True, exist_ok=True)
    path = custom / name / "__init__.py"
    path.write_text(PACK % (default, node))
    return path


def age(*roots: Path, seconds: float = 60) -> None:
    """Move every file's time stamp back, as if written a minute ago (a fresh file makes a catalogue 'racy')."""
    stamp = time.time() - seconds
    for root in roots:
        for path in [root, *root.rglob("*")]:
            os.utime(path, (stamp, stamp))


def runtime(tmp_path: Path, custom: Path | None = None, name: str = "rt") -> Runtime:
    return runtime_on(tmp_path / name, environ=ONLY_CORE, custom_nodes=[custom] if custom else [])


def real_info(rt: Runtime) -> dict[str, Any]:
    """What ``comfy nodes --json`` printed before the catalogue: the loaded registry, read now."""
    registry = rt.nodes
    errors: dict[str, str] = {}
    info = rt.call(registry.object_info, errors)
    return json.loads(json.dumps({n: info[n] if n in info else registry[n].broken_info(errors[n])
                                  for n in registry}, default=str))


def test_a_saved_catalogue_gives_back_what_the_plugins_say(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    built, cached = catalogue_for(rt)
    assert not cached and catalogue_path(rt.options).is_file()
    age(catalogue_path(rt.options).parent)
    fresh = runtime(tmp_path)  # a new process's Runtime: nothing loaded
    loaded = load_catalogue(fresh.options, fresh.model_folders)
    assert loaded is not None and not fresh.has_plugins()
    assert json.dumps(loaded.object_info(fresh)) == json.dumps(real_info(rt))
    assert loaded.object_info_json(fresh) == json.dumps(real_info(rt), indent=2), "what comfy nodes --json prints"
    assert loaded.key == catalogue_key(fresh.options) == built.key
    assert [r.as_dict() for r in loaded.plugin_records()] == [r.as_dict() for r in rt.plugins.records.values()]


def test_a_pack_installed_edited_or_removed_makes_the_catalogue_stale(tmp_path: Path) -> None:
    custom = tmp_path / "custom_nodes"
    write_pack(custom, "pack_a", "EchoA")
    age(custom)
    rt = runtime(tmp_path, custom)
    save_catalogue(build_catalogue(rt), rt.options)
    keys = [catalogue_key(rt.options)]
    assert load_catalogue(rt.options) is not None

    source = write_pack(custom, "pack_a", "EchoA", default="ho")  # same size: only the time stamp tells
    age(custom, seconds=30)
    keys.append(catalogue_key(rt.options))
    write_pack(custom, "pack_b", "EchoB")
    age(custom)
    keys.append(catalogue_key(rt.options))
    for path in sorted((custom / "pack_b").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (custom / "pack_b").rmdir()
    keys.append(catalogue_key(rt.options))
    assert len(set(keys)) == 4, "install, edit and removal each change the key"
    assert load_catalogue(rt.options) is None, "the catalogue built before the edit is not trusted"

    rebuilt, cached = catalogue_for(runtime(tmp_path, custom, "rt2"))
    assert not cached
    assert rebuilt.nodes["EchoA"].info["input"]["required"]["text"] == ["STRING", {"default": "ho"}]
    assert "EchoB" not in rebuilt.nodes
    assert '"ho"' in source.read_text()


def test_an_edit_its_time_stamp_cannot_show_is_still_caught(tmp_path: Path) -> None:
    custom = tmp_path / "custom_nodes"
    source = write_pack(custom, "pack_a", "EchoA")
    rt = runtime(tmp_path, custom)
    built = build_catalogue(rt)
    save_catalogue(built, rt.options)
    # Rewritten right after the build, same size, and the clock's tick too coarse to tell: the stat is unchanged.
    stat = source.stat()
    write_pack(custom, "pack_a", "EchoA", default="ho")
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert catalogue_key(rt.options) == built.key, "the stat-based key cannot see this edit"
    assert load_catalogue(rt.options) is None, "a catalogue built within two seconds of a change is not trusted"
    rebuilt, cached = catalogue_for(runtime(tmp_path, custom, "rt2"))
    assert not cached and rebuilt.nodes["EchoA"].info["input"]["required"]["text"][1] == {"default": "ho"}
    age(custom)
    settled = runtime(tmp_path, custom, "rt3")
    save_catalogue(build_catalogue(settled), settled.options)
    assert load_catalogue(settled.options) is not None, "files older than the build by two seconds are trusted"


def test_a_new_model_file_refreshes_the_lists_not_the_catalogue(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    built = build_catalogue(rt)
    save_catalogue(built, rt.options)
    age(catalogue_path(rt.options).parent)
    assert built.nodes["CheckpointLoaderSimple"].info["input"]["required"]["ckpt_name"][0] == []
    (rt.model_folders.folders("checkpoints")[0] / "sub").mkdir(parents=True)
    (rt.model_folders.folders("checkpoints")[0] / "sub" / "new.safetensors").write_bytes(b"x")
    (rt.model_folders.folders("loras")[0]).mkdir(parents=True, exist_ok=True)
    (rt.model_folders.folders("loras")[0] / "style.safetensors").write_bytes(b"x")

    loaded = load_catalogue(rt.options, rt.model_folders)
    assert loaded is not None and loaded.built_ns == built.built_ns, "same catalogue, no rebuild"
    assert loaded.nodes["CheckpointLoaderSimple"].info["input"]["required"]["ckpt_name"][0] == ["sub/new.safetensors"]
    assert loaded.object_info(rt) == real_info(rt)
    assert loaded.object_info_json(rt) == json.dumps(real_info(rt), indent=2)


def test_an_image_in_the_input_folder_is_listed_by_load_image(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    built = build_catalogue(rt)
    assert built.nodes["LoadImage"].depends == ["input"], "LoadImage lists the input folder"
    assert not built.nodes["CheckpointLoaderSimple"].dynamic
    save_catalogue(built, rt.options)
    age(catalogue_path(rt.options).parent)
    from PIL import Image

    Image.new("RGB", (2, 2)).save(rt.folders.input / "cat.png")
    loaded = load_catalogue(rt.options, rt.model_folders)
    assert loaded is not None
    assert loaded.node_info("LoadImage", rt)["input"]["required"]["image"][0] == ["cat.png"]
    assert loaded.changed and loaded.object_info(rt) == real_info(rt)
    assert loaded.object_info_json(rt) == json.dumps(real_info(rt), indent=2)


@pytest.mark.parametrize("damage", [b"", b"{not json", b'{"format": 1, "key": "x"}', b"[1, 2]",
                                    b'{"format": 999}'])
def test_a_corrupt_catalogue_is_rebuilt_never_trusted(tmp_path: Path, damage: bytes) -> None:
    rt = runtime(tmp_path)
    catalogue_for(rt)
    path = catalogue_path(rt.options)
    good = json.loads(path.read_text())
    if damage == b'{"format": 1, "key": "x"}':
        damage = json.dumps({**good, "nodes": {"LoadImage": {"info": 1}}}).encode()  # right key, broken entry
    path.write_bytes(damage)
    age(path.parent)
    assert load_catalogue(rt.options) is None
    rebuilt, cached = catalogue_for(runtime(tmp_path, name="rt2"))
    assert not cached and json.loads(path.read_text())["key"] == good["key"]


def test_catalogue_off_reads_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = runtime_on(tmp_path / "rt", environ={**ONLY_CORE, "HEARTH_CATALOGUE": "off"})
    assert save_catalogue(build_catalogue(rt), rt.options) is None
    assert not catalogue_path(rt.options).exists()


class _Clock:
    """A node whose INPUT_TYPES changes on every call, and one that says it is dynamic."""

    calls = 0

    class Tick:
        CATEGORY = "testing"
        RETURN_TYPES = ("INT",)
        FUNCTION = "run"

        @classmethod
        def INPUT_TYPES(cls) -> dict[str, Any]:
            _Clock.calls += 1
            return {"required": {"n": ("INT", {"default": _Clock.calls})}}

        def run(self, n: int) -> tuple[int]:
            return (n,)

    class Remote:
        CATEGORY = "testing"
        RETURN_TYPES = ("STRING",)
        FUNCTION = "run"
        DYNAMIC_INPUT_TYPES = True  # what it lists comes from a server no probe can see

        @classmethod
        def INPUT_TYPES(cls) -> dict[str, Any]:
            return {"required": {"model": (["a", "b"],)}}

        def run(self, model: str) -> tuple[str]:
            return (model,)

    @hookimpl
    def register_nodes(self) -> dict[str, type]:
        return {"Tick": self.Tick, "Remote": self.Remote}


def test_nodes_that_read_state_each_call_are_read_again_every_time(tmp_path: Path) -> None:
    plugins = PluginManager().load(entry_points=False, environ={})
    plugins.register(_Clock(), "clock")
    rt = Runtime.build(plugins=plugins, models_dir=tmp_path / "models", output=tmp_path / "out",
                       input=tmp_path / "in", environ={})
    built = build_catalogue(rt)
    assert built.nodes["Tick"].depends == ["always"] and built.nodes["Remote"].depends == ["always"]
    first = built.node_info("Tick", rt)["input"]["required"]["n"][1]["default"]
    again = built.node_info("Tick", rt)["input"]["required"]["n"][1]["default"]
    assert again == first + 1, "read from the class each time"


def test_validation_from_the_catalogue_matches_the_loaded_plugins(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    catalogue = Catalogue.from_dict(json.loads(json.dumps(build_catalogue(rt).as_dict())))
    fresh = runtime(tmp_path, name="rt2")
    prompts = [
        {"1": {"class_type": "PrimitiveInt", "inputs": {"value": 3}},
         "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}},
        {"1": {"class_type": "PrimitiveInt", "inputs": {"value": "three"}},
         "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}},
        {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "missing.safetensors"}},
         "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}},
        {"1": {"class_type": "NoSuchNode", "inputs": {}}},
    ]
    for prompt in prompts:
        cached = Validator(catalogue.registry(fresh), fresh).validate(parse_prompt(json.loads(json.dumps(prompt))))
        loaded = Validator(rt.nodes, rt).validate(parse_prompt(json.loads(json.dumps(prompt))))
        assert cached.response() == loaded.response()
        assert cached.outputs == loaded.outputs
    assert not fresh.has_plugins()


class _Dist:
    """A distribution installed from a checkout the old way (an egg-link): no direct_url.json says "editable"."""

    def read_text(self, name: str) -> None:
        return None


def test_a_package_run_from_a_checkout_is_keyed_by_its_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hearth.core.catalogue_key import Stamp

    (tmp_path / "checkout" / "fake_nodes_pkg").mkdir(parents=True)
    module = tmp_path / "checkout" / "fake_nodes_pkg" / "__init__.py"
    module.write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "checkout"))
    before = Stamp().editable_dist(_Dist(), {"fake_nodes_pkg"})  # type: ignore[arg-type]
    module.write_text("X = 2\n")
    os.utime(module, ns=(time.time_ns() + 5_000_000_000,) * 2)
    after = Stamp().editable_dist(_Dist(), {"fake_nodes_pkg"})  # type: ignore[arg-type]
    assert before and before != after, "an edit of a package outside site-packages changes the key"


def test_a_class_is_imported_by_name_only_from_the_file_it_came_from(tmp_path: Path) -> None:
    from hearth.core.catalogue import CatalogueMiss

    catalogue = build_catalogue(runtime(tmp_path))
    assert catalogue.definition("LoadImage") is not None
    catalogue.nodes["LoadImage"].origin = str(tmp_path / "another" / "image_io.py")  # a namesake module elsewhere
    assert catalogue.definition("LoadImage") is None
    with pytest.raises(CatalogueMiss, match="LoadImage"):
        catalogue.registry()["LoadImage"]
