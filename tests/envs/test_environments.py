"""comfy env: create, list, use, info, remove, history, and the default environment made on first use."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from hearth.registry import envs


def test_default_environment_is_made_on_first_use(comfy, home: Path):
    r = comfy("env", "info", "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["name"] == "default" and info["generation"] == 0 and info["packs"] == {}
    env = envs.get_environment()
    assert env.root == home / "envs" / "default"
    assert env.python.exists() and env.custom_nodes.is_dir()
    assert Path(os.readlink(env.root / "current")) == Path("generations/0")
    # The base is recorded with exact versions, and the env's interpreter sees Hearth's packages through it.
    from importlib import metadata, util

    assert info["base"]["torch"] == metadata.version("torch") and "comfy-hearth" in info["base"]
    code = ("from importlib import metadata, util; import hearth.registry.envs; "
            "print(metadata.version('torch'), util.find_spec('torch').origin)")
    out = subprocess.run([str(env.python), "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == [metadata.version("torch"), util.find_spec("torch").origin], out.stderr


def test_create_use_list_remove(comfy, home: Path, monkeypatch):
    assert comfy("env", "create", "work").exit_code == 0
    r = comfy("env", "create", "work")
    assert r.exit_code == 2 and "already exists" in r.output
    r = comfy("env", "use", "work")
    assert r.exit_code == 0, r.output
    assert envs.current_env_name() == "work"
    listed = json.loads(comfy("env", "list", "--json").output)
    assert [(e["name"], e["current"]) for e in listed] == [("work", True)]
    monkeypatch.setenv("COMFY_ENV", "default")  # the variable wins over `env use`
    assert envs.get_environment().name == "default"
    monkeypatch.delenv("COMFY_ENV")
    r = comfy("env", "remove", "work", "--yes")
    assert r.exit_code == 0, r.output
    assert not (home / "envs" / "work").exists()
    assert envs.current_env_name() == "default"
    r = comfy("env", "remove", "work", "--yes")
    assert r.exit_code == 2 and "no environment named 'work'" in r.output


def test_bad_names_and_unknown_environments_are_one_line_errors(comfy, home: Path):
    for args, words in ((("env", "create", "../up"), "not valid"),
                        (("env", "use", "ghost"), "no environment named 'ghost'"),
                        (("env", "history", "--env", "ghost"), "comfy env create ghost"),
                        (("env", "rollback"), "nothing to roll back to")):
        r = comfy(*args)
        assert r.exit_code == 2, (args, r.output)
        assert words in r.output and r.output.startswith("error: ") and r.output.count("\n") == 1, r.output


def test_history_table_and_json(comfy, home: Path):
    comfy("env", "create", "h")
    r = comfy("env", "history", "--env", "h")
    assert r.exit_code == 0 and "create" in r.output
    rows = json.loads(comfy("env", "history", "--env", "h", "--json").output)
    assert [(x["generation"], x["action"], x["current"]) for x in rows] == [(0, "create", True)]
