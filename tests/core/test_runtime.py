"""The Runtime: two in one process each see their own folders, plugins and model manager, in any thread."""

from __future__ import annotations

import contextvars
import threading
from pathlib import Path
from typing import Any

import pytest

from hearth.core import context
from hearth.core.context import Folders
from hearth.core.hookspecs import hookimpl
from hearth.core.model_folders import ModelFolders, model_folders
from hearth.core.models import default_manager
from hearth.core.plugins import active_plugins
from hearth.core.runtime import NoRuntimeError, Runtime, current_runtime
from hearth.core.testing import runtime_on

seen: list[dict[str, Any]] = []


class Probe:
    """Lists checkpoints in its input (checked while validating), and records what it sees while it runs."""

    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"ckpt_name": (model_folders().list("checkpoints"),)}}

    def run(self, ckpt_name: str) -> dict[str, Any]:
        seen.append({"ckpt": ckpt_name, "runtime": current_runtime(), "models": model_folders(),
                     "output": context.folders().output, "plugins": active_plugins(),
                     "manager": default_manager(), "thread": threading.get_ident()})
        return {"ui": {"text": [ckpt_name]}}


class ProbePlugin:
    @hookimpl
    def register_nodes(self) -> dict[str, type]:
        return {"Probe": Probe}


def runtime_with_checkpoint(root: Path, checkpoint: str) -> Runtime:
    runtime = runtime_on(root, entry_points=False)
    folder = runtime.model_folders.folders("checkpoints")[0]
    folder.mkdir(parents=True)
    (folder / checkpoint).write_bytes(b"")  # listed by name; nothing here loads it
    runtime.plugins.register(ProbePlugin(), "probe")
    return runtime


def workflow(checkpoint: str, prefix: str) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 255}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
        "3": {"class_type": "Probe", "inputs": {"ckpt_name": checkpoint}},
    }


@pytest.fixture
def two(tmp_path: Path) -> tuple[Runtime, Runtime]:
    seen.clear()
    return (runtime_with_checkpoint(tmp_path / "a", "only-in-a.safetensors"),
            runtime_with_checkpoint(tmp_path / "b", "only-in-b.safetensors"))


def listed(runtime: Runtime) -> list[str]:
    loader = runtime.nodes["CheckpointLoaderSimple"].cls
    return runtime.call(loader.INPUT_TYPES)["required"]["ckpt_name"][0]


def test_each_runtime_lists_its_own_checkpoints_through_the_loader_node(two) -> None:
    a, b = two
    assert listed(a) == ["only-in-a.safetensors"]
    assert listed(b) == ["only-in-b.safetensors"]
    with a.activate():
        assert listed(b) == ["only-in-b.safetensors"]  # call() switches even from inside another Runtime
        assert model_folders().list("checkpoints") == ["only-in-a.safetensors"]


def test_each_runtime_validates_and_runs_in_its_own_folders(two) -> None:
    a, b = two
    # Outside both: validation reads INPUT_TYPES inside the executor's Runtime, so each name is valid only there.
    assert a.executor.run(workflow("only-in-a.safetensors", "a")).ok
    assert b.executor.run(workflow("only-in-b.safetensors", "b")).ok
    assert [p.name for p in a.folders.output.iterdir()] == ["a_00001_.png"]
    assert [p.name for p in b.folders.output.iterdir()] == ["b_00001_.png"]
    refused = a.executor.run(workflow("only-in-b.safetensors", "a"))  # b's checkpoint is not in a's list
    assert "3" in refused.validation.node_errors and "3" not in refused.outputs
    first, second = seen
    for record, runtime in ((first, a), (second, b)):
        assert record["runtime"] is runtime and record["models"] is runtime.model_folders
        assert record["output"] == runtime.folders.output
        assert record["plugins"] is runtime.plugins and record["manager"] is runtime.manager
    assert first["manager"] is not second["manager"]


def test_two_runtimes_run_at_once_in_two_threads(two) -> None:
    a, b = two
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def run(runtime: Runtime, name: str) -> None:
        barrier.wait()  # both threads start empty-handed (no Runtime in a new thread's context) at the same time
        for n in range(3):
            results[f"{name}{n}"] = (current_runtime(), listed(runtime),
                                     runtime.executor.run(workflow(f"only-in-{name}.safetensors", f"{name}{n}"),
                                                          prompt_id=f"{name}{n}"))

    threads = [threading.Thread(target=run, args=(a, "a")), threading.Thread(target=run, args=(b, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for key, (before, names, result) in results.items():
        assert before is None and names == [f"only-in-{key[0]}.safetensors"]
        assert result.ok and "3" in result.outputs, (result.error, result.validation.node_errors)
    assert len(list(a.folders.output.glob("a*.png"))) == 3 and not list(a.folders.output.glob("b*"))
    assert len(list(b.folders.output.glob("b*.png"))) == 3 and not list(b.folders.output.glob("a*"))
    # Each Probe ran once in its own Runtime (later runs of the same inputs are cached).
    assert sorted(record["ckpt"] for record in seen) == ["only-in-a.safetensors", "only-in-b.safetensors"]
    for record in seen:
        runtime = a if record["ckpt"] == "only-in-a.safetensors" else b
        assert record["runtime"] is runtime and record["output"] == runtime.folders.output


def test_a_runtime_is_current_only_inside_activate(two) -> None:
    a, b = two
    outer = current_runtime()
    with a.activate():
        assert current_runtime() is a and active_plugins() is a.plugins and model_folders() is a.model_folders
        with b.activate():
            assert current_runtime() is b and context.folders() is b.folders
        assert current_runtime() is a and default_manager() is a.manager
    assert current_runtime() is outer


def outside(fn: Any) -> Any:
    """``fn()`` in a fresh context: no Runtime, whatever the test around it activated."""
    return contextvars.Context().run(fn)


def test_accessors_outside_every_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert outside(current_runtime) is None
    assert outside(active_plugins) is None
    folders = outside(model_folders)
    assert isinstance(folders, ModelFolders) and folders.base == Path("models")
    folders.add("checkpoints", tmp_path / "elsewhere")  # forgotten: the next call answers afresh
    assert tmp_path / "elsewhere" not in outside(model_folders).folders("checkpoints")
    assert outside(context.folders) == Folders()
    with pytest.raises(NoRuntimeError, match=r"no Hearth Runtime is active.*Runtime\.build"):
        outside(default_manager)


def test_plugins_load_inside_the_runtime_and_see_it(tmp_path: Path) -> None:
    saw: list[Any] = []

    class ReadsAtLoad:
        @hookimpl
        def register_nodes(self) -> dict[str, type]:
            # What a ComfyUI pack does at import time: read folder_paths (the Runtime's folders), ask for samplers.
            saw.append((current_runtime(), model_folders(), active_plugins()))
            return {}

    runtime = runtime_on(tmp_path, entry_points=False)
    runtime.plugins.register(ReadsAtLoad(), "reads")
    outside(lambda: runtime.nodes)
    assert saw == [(runtime, runtime.model_folders, runtime.plugins)]


def test_the_manager_is_made_on_first_use_with_the_budget_and_the_plugins(tmp_path: Path) -> None:
    runtime = runtime_on(tmp_path, entry_points=False, vram_mb=64)
    assert not runtime.has_manager()
    runtime.plugins  # noqa: B018 - loading plugins does not make a manager (that would import torch)
    assert not runtime.has_manager()
    manager = runtime.manager
    assert manager is runtime.manager and manager.budget(manager.device) == 64 * 1024 * 1024
    assert manager._plugins is runtime.plugins


def test_a_bad_extra_model_paths_file_names_itself(tmp_path: Path) -> None:
    config = tmp_path / "extra.yaml"
    config.write_text("comfyui: [not, a, mapping]\n")
    with pytest.raises(ValueError, match="extra.yaml: section 'comfyui'"):
        Runtime.build(extra_model_paths=[config])
