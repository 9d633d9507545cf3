"""`comfy nodes` and `comfy run --check` in fresh processes: the same bytes and exit codes with the node catalogue
as without it (HEARTH_CATALOGUE=off), through a pack installed, edited and removed, a model file appearing and a
corrupt catalogue file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hearth.core.catalogue_key import FORMAT, RACY_NS

ROOT = Path(__file__).resolve().parents[2]
# A pack that says when it is imported: a command answered from the catalogue never imports it.
PACK = '''import sys
print("pack %(name)s imported", file=sys.stderr)


class Echo:
    CATEGORY = "testing"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "%(default)s"})}}

    def run(self, text):
        return (text,)


NODE_CLASS_MAPPINGS = {"%(node)s": Echo}
'''


def write_pack(folder: Path, name: str, node: str, default: str = "hi") -> None:
    (folder / "custom_nodes" / name).mkdir(parents=True, exist_ok=True)
    (folder / "custom_nodes" / name / "__init__.py").write_text(PACK % {"name": name, "node": node,
                                                                        "default": default})


def settle(folder: Path) -> None:
    """Date the packs a minute back: a file changed within two seconds of a build makes it untrusted."""
    stamp = time.time() - 60
    for path in (folder / "custom_nodes").rglob("*"):
        os.utime(path, (stamp, stamp))


class Comfy:
    """`comfy ARGS` in a fresh process, in one working folder, with the catalogue on or off."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {**os.environ, "HEARTH_CACHE_DIR": str(folder / "cache"), "HEARTH_HOME": str(folder / "home"),
                    "HEARTH_ISOLATION": "off",
                    "HEARTH_DISABLE_PLUGINS": "sd,samplers,lora,video,dit,upscale,audio"}
        for name in ("HEARTH_PLUGINS", "HEARTH_CUSTOM_NODES", "HEARTH_CATALOGUE", "COMFY_ENV"):
            self.env.pop(name, None)

    def __call__(self, *args: str, catalogue: bool = True) -> subprocess.CompletedProcess[str]:
        env = self.env if catalogue else {**self.env, "HEARTH_CATALOGUE": "off"}
        return subprocess.run([sys.executable, "-m", "hearth.cli.main", *args], cwd=self.folder, env=env,
                              capture_output=True, text=True, timeout=120)

    def catalogue_files(self) -> list[Path]:
        return sorted((self.folder / "cache" / "catalogue").glob("*.json"))

    def cached(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A run expected to answer from the catalogue. Run again if someone edited Hearth's own files in this
        checkout meanwhile, which rebuilds it for a reason outside the test (see :func:`rebuilt_by_others`); `run
        --check` leaves a stale catalogue to a background build (none starts in a test), so it is rebuilt here."""
        for _ in range(3):
            before = catalogue_state(self.folder)
            result = self(*args)
            if args[0] == "run" and "imported" in result.stderr:
                self("nodes", "--json")
            elif not rebuilt_by_others(before, catalogue_state(self.folder)):
                return result
        return result


def catalogue_state(folder: Path) -> list[tuple[str, int, int]]:
    """(key, built_ns, newest_ns) of each catalogue file under ``folder/cache``."""
    found = []
    for path in sorted((folder / "cache").rglob("*.json")):
        data = json.loads(path.read_text())
        found.append((data.get("key", ""), data.get("built_ns", 0), data.get("newest_ns", 0)))
    return found


def rebuilt_by_others(before: list[tuple[str, int, int]], after: list[tuple[str, int, int]]) -> bool:
    """Whether a run rebuilt the catalogue because of files the test never touched: its key changed (the test's
    own files do not change during a run), or it had been built within two seconds of the newest keyed file (the
    test's files are dated a minute back, so that file was someone else's)."""
    if [k for k, _, _ in before] != [k for k, _, _ in after]:
        return True
    return any(b != a and b[1] - b[2] < RACY_NS for b, a in zip(before, after, strict=True))


@pytest.fixture
def comfy(tmp_path: Path) -> Comfy:
    write_pack(tmp_path, "pack_a", "EchoA")
    settle(tmp_path)
    return Comfy(tmp_path)


def same_as_without(comfy: Comfy, *args: str) -> subprocess.CompletedProcess[str]:
    cached, plain = comfy.cached(*args), comfy(*args, catalogue=False)
    assert cached.returncode == plain.returncode, (cached.stderr, plain.stderr)
    assert cached.stdout == plain.stdout
    return cached


def test_nodes_json_is_byte_for_byte_the_same_through_installs_edits_removals_and_new_models(comfy: Comfy) -> None:
    plain = comfy("nodes", "--json", catalogue=False)
    built = comfy("nodes", "--json")
    cached = comfy.cached("nodes", "--json")
    assert plain.returncode == built.returncode == cached.returncode == 0
    assert built.stdout == plain.stdout and cached.stdout == plain.stdout
    assert "pack pack_a imported" in built.stderr and "pack pack_a imported" not in cached.stderr
    assert len(comfy.catalogue_files()) == 1

    # Each change below rebuilds the catalogue (the pack is imported again) and the listing follows it.
    write_pack(comfy.folder, "pack_b", "EchoB")  # installed
    settle(comfy.folder)
    result = comfy("nodes", "--json")
    assert "EchoB" in json.loads(result.stdout) and "pack pack_b imported" in result.stderr

    write_pack(comfy.folder, "pack_a", "EchoA", default="yo")  # edited, same size
    settle(comfy.folder)
    result = comfy("nodes", "--json")
    assert json.loads(result.stdout)["EchoA"]["input"]["required"]["text"] == ["STRING", {"default": "yo"}]

    for path in (comfy.folder / "custom_nodes" / "pack_b").iterdir():  # removed
        path.unlink()
    (comfy.folder / "custom_nodes" / "pack_b").rmdir()
    result = comfy("nodes", "--json")
    assert "EchoB" not in json.loads(result.stdout) and "pack pack_a imported" in result.stderr

    checkpoints = comfy.folder / "models" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "tiny.safetensors").write_bytes(b"x")  # a model file appears
    result = same_as_without(comfy, "nodes", "--json")
    listing = json.loads(result.stdout)
    assert listing["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] == ["tiny.safetensors"]
    assert "imported" not in result.stderr, "a new model file refreshes the lists without loading the packs"


def test_a_corrupt_catalogue_file_is_rebuilt(comfy: Comfy) -> None:
    first = comfy("nodes", "--json")
    (path,) = comfy.catalogue_files()
    path.write_text(path.read_text()[:1000])  # cut short, as by a full disk (the core tests try other damage)
    again = comfy("nodes", "--json")
    assert again.returncode == 0 and again.stdout == first.stdout
    assert "pack pack_a imported" in again.stderr, "rebuilt from the packs, not read from the damaged file"
    assert json.loads(path.read_text())["format"] == FORMAT


WORKFLOWS = {
    "valid": {"1": {"class_type": "EchoA", "inputs": {"text": "hello"}},
              "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}},
    "missing_model": {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "nope.safetensors"}},
                      "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}},
}


def test_run_check_and_plugins_give_the_same_answers_and_exit_codes_cached_and_uncached(comfy: Comfy) -> None:
    comfy("nodes", "--json")  # builds the catalogue
    plugins = same_as_without(comfy, "plugins", "--json")
    assert "pack pack_a imported" not in plugins.stderr
    assert {p["name"]: p["node_count"] for p in json.loads(plugins.stdout)["plugins"]}["pack_a"] == 1
    for name, json_flag in (("valid", ()), ("missing_model", ("--json",))):
        workflow = comfy.folder / f"{name}.json"
        workflow.write_text(json.dumps(WORKFLOWS[name]))
        args = ("run", "--check", *json_flag, workflow.name)
        cached, plain = comfy.cached(*args), comfy(*args, catalogue=False)
        assert (cached.returncode, cached.stdout) == (plain.returncode, plain.stdout)
        assert [line for line in cached.stderr.splitlines() if "imported" not in line] == \
            [line for line in plain.stderr.splitlines() if "imported" not in line]
        assert cached.returncode == (0 if name == "valid" else 2), cached.stderr
        assert "pack pack_a imported" not in cached.stderr
