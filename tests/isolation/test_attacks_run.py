"""The issue's attacks through ``comfy run``, with the CLI's default isolation: a hostile pack in custom_nodes/
runs in a pack host, and every attack fails while its honest node works. The same workflow with
``--isolation off`` succeeds at every attack, which is what shows the isolation is what stops them.

One ``comfy run`` of the attack workflow serves every per-attack test (one host start); the memory attack, the
run after it and ``comfy plugins`` are one command each.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.isolation.scene import (
    ALLOWED_ENV,
    HONEST_VALUE,
    PACK,
    Scene,
    error_lines,
    isolation_missing,
    keyrings_work,
    leaked,
    new_marker,
    processes_with,
    wait_no_process,
)

pytestmark = pytest.mark.skipif(bool(isolation_missing()), reason=f"no pack hosts here: {isolation_missing()}")


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    stage = Scene(tmp_path_factory.mktemp("attacks-run"))
    yield stage
    stage.close()


@pytest.fixture(scope="module")
def attacked(scene: Scene) -> Iterator[dict[str, Any]]:
    """One ``comfy run`` of every attack with HEARTH_ISOLATION unset (the CLI's default: untrusted)."""
    tag, marker = "run", new_marker()
    workflow = scene.write_workflow("attacks", scene.attack_prompt(tag, marker))
    scene.user_types()
    result = scene.comfy("run", str(workflow), "--out", str(scene.output), *scene.folder_args(), isolation=None)
    yield {"tag": tag, "marker": marker, "result": result}
    scene.clean(marker)


def _ran(attacked: dict[str, Any]) -> None:
    result = attacked["result"]
    assert result.returncode == 0, f"comfy run failed ({result.returncode}):\n{result.stderr}"


def test_home_files_cannot_be_read(scene: Scene, attacked: dict[str, Any]) -> None:
    _ran(attacked)
    report = scene.report("home", attacked["tag"])
    assert leaked(report, scene.secrets) == [], report
    assert not any(path.startswith(str(scene.home)) for path in report["read"]), report["read"]
    assert isinstance(report["listing"][str(scene.home)], str), f"the real home was listed: {report['listing']}"


def test_environment_secrets_are_not_there(scene: Scene, attacked: dict[str, Any]) -> None:
    _ran(attacked)
    report = scene.report("env", attacked["tag"])
    assert leaked(report, scene.secrets) == [], report
    assert set(report["environ"]) <= ALLOWED_ENV, sorted(set(report["environ"]) - ALLOWED_ENV)


def test_loopback_listener_sees_no_connection(scene: Scene, attacked: dict[str, Any]) -> None:
    _ran(attacked)
    report = scene.report("network", attacked["tag"])
    assert report["connected"] is False, report
    assert not scene.listener.saw(f"stolen-{attacked['tag']}"), scene.listener.received


def test_unix_sockets_of_the_machine_cannot_be_reached(scene: Scene, attacked: dict[str, Any]) -> None:
    """No network means no Unix-domain sockets either: docker.sock or a local database under /run is a way out."""
    _ran(attacked)
    report = scene.report("unix", attacked["tag"])
    assert not scene.listener.saw(f"unix-{attacked['tag']}"), report
    assert report["connected"] is False, report


def test_the_session_keyring_cannot_be_read(scene: Scene, attacked: dict[str, Any]) -> None:
    """Kernel keyrings are not files: the session keyring a process inherits holds Kerberos tickets and tokens."""
    if not keyrings_work():
        pytest.skip("this kernel or container refuses session keyrings: nothing to steal")
    _ran(attacked)
    report = scene.report("keyring", attacked["tag"])
    assert leaked(report, scene.secrets) == [], report


def test_the_users_terminal_cannot_be_read_or_written(scene: Scene, attacked: dict[str, Any]) -> None:
    """A terminal of the same user under /dev/pts: reading it steals what they type (a sudo password), writing
    to it shows them whatever the pack likes."""
    if not scene.terminal_path:
        pytest.skip("no pseudo-terminal here")
    _ran(attacked)
    report = scene.report("terminal", attacked["tag"])
    assert leaked(report, scene.secrets) == [], report
    assert f"injected-by-{attacked['tag']}" not in scene.terminal_shows(), report


def test_a_namespace_of_the_packs_own_does_not_undo_the_hosts(scene: Scene, attacked: dict[str, Any]) -> None:
    """Inside a user namespace it makes itself, a pack has every capability -- over mounts it inherited locked:
    what hides the home folder stays, the input folder stays read-only."""
    _ran(attacked)
    report = scene.report("unshare", attacked["tag"])
    assert leaked(report, scene.secrets) == [], report
    assert report.get("write input") != "wrote" and scene.dropped_files(attacked["marker"]) == [], report


def test_writes_land_only_in_the_output_folder(scene: Scene, attacked: dict[str, Any]) -> None:
    _ran(attacked)
    report = scene.report("write", attacked["tag"])
    assert scene.dropped_files(attacked["marker"]) == [], report
    allowed = scene.output / f"allowed-{attacked['marker']}.txt"
    assert allowed.read_text() == "written by hostile-pack"


def test_what_the_pack_prints_stays_out_of_comfy_runs_output(attacked: dict[str, Any]) -> None:
    """comfy run's stdout lists the files a workflow saved, for scripts to use: a pack's print is no path there."""
    _ran(attacked)
    assert f"pwned-{attacked['marker']}" not in attacked["result"].stdout, attacked["result"].stdout


def test_a_started_process_does_not_outlive_the_run(scene: Scene, attacked: dict[str, Any]) -> None:
    _ran(attacked)
    report = scene.report("spawn", attacked["tag"])
    assert report["pid"] > 0  # it did start one, inside the host
    assert wait_no_process(attacked["marker"]) == []


def test_the_packs_import_and_prestartup_script_run_in_the_host(scene: Scene, attacked: dict[str, Any]) -> None:
    _ran(attacked)
    assert scene.import_drops() == []


def test_the_honest_node_works(scene: Scene, attacked: dict[str, Any]) -> None:
    _ran(attacked)
    assert scene.report("honest", attacked["tag"])["value"] == HONEST_VALUE


def test_exhausting_memory_fails_that_run_in_one_line_and_the_next_run_works(scene: Scene) -> None:
    workflow = scene.write_workflow("memory", scene.memory_prompt("memory"))
    result = scene.comfy("run", str(workflow), "--out", str(scene.output), *scene.folder_args(),
                         isolation="untrusted")
    assert result.returncode == 1, f"the memory bomb was not stopped ({result.returncode}):\n{result.stderr}"
    assert not (scene.output / "attack-memory-memory.json").exists()
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and PACK in lines[0], result.stderr
    assert "Traceback" not in result.stderr

    workflow = scene.write_workflow("honest", scene.honest_prompt("after-memory"))
    result = scene.comfy("run", str(workflow), "--out", str(scene.output), *scene.folder_args(),
                         isolation="untrusted")
    assert result.returncode == 0, result.stderr
    assert scene.report("honest", "after-memory")["value"] == HONEST_VALUE


def test_processes_and_open_files_stop_at_the_hosts_limits(scene: Scene) -> None:
    """A fork bomb and a descriptor leak, capped at 2,000 each: the host's limits stop both well before, and the run
    goes on. Processes: RLIMIT_NPROC (256) for an ordinary user; the real root user, whom it does not bind, meets the
    pid namespace's own pid_max (256 + 301, so that the host keeps 256 once pids wrap). Open files: 1,024. (Not run
    in-process: there only the cap would stop them.)"""
    workflow = scene.write_workflow("exhaust", {"1": {"class_type": "HostileExhaust",
                                                      "inputs": {"cap": 2000, "tag": "exhaust"}}})
    result = scene.comfy("run", str(workflow), "--out", str(scene.output), *scene.folder_args(),
                         isolation="untrusted")
    assert result.returncode == 0, result.stderr
    report = scene.report("exhaust", "exhaust")
    assert report["processes"] < 560 and "processes" in report["stopped"], report
    assert report["files"] < 1100 and "files" in report["stopped"], report


def test_an_array_header_without_shared_memory_is_refused(scene: Scene) -> None:
    """The pack rewrites the host's encoder (it runs in the pack's process) to describe its 1x1 image as 64x64 with no
    shared memory behind it. Believed, that makes Hearth's process allocate what the host claims -- outside the
    host's memory limit, uninitialised -- and save it; the frame must be refused, failing the node in one line."""
    workflow = scene.write_workflow("forge", {
        "1": {"class_type": "HostileForge", "inputs": {"height": 64, "width": 64, "tag": "forge"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "forged"}}})
    result = scene.comfy("run", str(workflow), "--out", str(scene.output), *scene.folder_args(),
                         isolation="untrusted")
    if not (scene.output / "forge-armed-forge").exists():
        pytest.fail(f"the forge could not arm itself (the wire changed?): {result.stderr}")
    assert not list(scene.output.glob("forged_*.png")), "Hearth saved an image the host only claimed"
    assert result.returncode == 1, result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and PACK in lines[0], result.stderr


def test_comfy_plugins_shows_the_pack_in_a_pack_host(scene: Scene) -> None:
    result = scene.comfy("plugins", "--json", "--custom-nodes", str(scene.custom_nodes), isolation="untrusted")
    assert result.returncode == 0, result.stderr
    record = next(r for r in json.loads(result.stdout)["plugins"] if r["name"] == PACK)
    assert record["error"] is None, record
    assert (record["placement"], record["placement_why"], record["network"]) == ("pack host", "not trusted", False)
    assert record["node_count"] == 17  # its nodes but the SaveImage it tried to take over
    clash = [c for c in json.loads(result.stdout)["collisions"] if c["node"] == "SaveImage"]
    assert clash == [{"node": "SaveImage", "provider": "builtin_nodes", "refused": [PACK], "overridden": ""}], clash

    table = scene.comfy("plugins", "--custom-nodes", str(scene.custom_nodes), isolation="untrusted")
    row = next(line for line in table.stdout.splitlines() if PACK in line)
    assert "pack host" in row, table.stdout


def test_with_isolation_off_the_same_attacks_succeed(scene: Scene) -> None:
    """The control: in-process, the same nodes read the key and the registry token, the environment's secrets,
    the session keyring and the user's terminal, reach the loopback and Unix-socket listeners, write everywhere,
    drop files at import and prestartup, and leave a process behind. (The memory bomb is not run in-process: nothing
    there would stop it.)"""
    tag, marker = "off", new_marker()
    workflow = scene.write_workflow("attacks-off", scene.attack_prompt(tag, marker))
    scene.terminal_shows()  # what earlier tests typed and echoed
    scene.user_types()
    try:
        result = scene.comfy("run", str(workflow), "--isolation", "off", "--out", str(scene.output),
                             *scene.folder_args(), isolation="untrusted")
        assert result.returncode == 0, result.stderr
        assert scene.ssh_key.splitlines()[1] in json.dumps(scene.report("home", tag))
        assert scene.registry_token in json.dumps(scene.report("home", tag))
        environ = scene.report("env", tag)["environ"]
        assert {k: environ.get(k) for k in scene.env_secrets} == scene.env_secrets
        assert scene.report("network", tag)["connected"] is True and scene.listener.saw(f"stolen-{tag}", 5)
        assert scene.report("unix", tag)["connected"] is True and scene.listener.saw(f"unix-{tag}", 5)
        if keyrings_work():
            assert scene.report("keyring", tag)["found"]["session"] == scene.keyring_secret
        drops = scene.import_drops()
        assert [p.name for p in drops] == ["pwned-at-import.json", "pwned-at-prestartup.json"]
        assert scene.env_secrets["AWS_SECRET_ACCESS_KEY"] in drops[0].read_text()
        if scene.terminal_path:
            assert scene.typed_secret in scene.report("terminal", tag)["typed"]
            assert f"injected-by-{tag}" in scene.terminal_shows()
        assert sorted(scene.dropped_files(marker)) == sorted(f / f"pwned-{marker}.txt"
                                                             for f in scene.forbidden_folders())
        assert processes_with(marker), "the in-process spawn left no process: the control proves nothing"
        assert f"/etc/cron.d/pwned-{marker}" in result.stdout.splitlines()
        assert scene.report("honest", tag)["value"] == HONEST_VALUE
    finally:
        scene.clean(marker)
        for path in scene.import_drops():
            path.unlink()
    assert wait_no_process(marker) == []


def test_a_pack_allowed_the_network_reaches_it_and_nothing_more(scene: Scene) -> None:
    """``comfy trust PACK --network``: the pack host keeps the machine's network (the listener sees the payload,
    the pack still runs in a host) while the home folder, the secrets and the folders stay out of its reach."""
    allowed = scene.comfy("trust", PACK, "--network")
    assert allowed.returncode == 0, allowed.stderr
    tag, marker = "network-allowed", new_marker()
    workflow = scene.write_workflow("attacks-network", scene.attack_prompt(tag, marker))
    try:
        plugins = scene.comfy("plugins", "--json", "--custom-nodes", str(scene.custom_nodes), isolation="untrusted")
        record = next(r for r in json.loads(plugins.stdout)["plugins"] if r["name"] == PACK)
        assert (record["placement"], record["network"]) == ("pack host", True), record
        result = scene.comfy("run", str(workflow), "--out", str(scene.output), *scene.folder_args(),
                             isolation="untrusted")
        assert result.returncode == 0, result.stderr
        assert scene.report("network", tag)["connected"] is True and scene.listener.saw(f"stolen-{tag}", 5)
        for kind in ("home", "env", "write"):
            assert leaked(scene.report(kind, tag), scene.secrets) == [], kind
        assert scene.dropped_files(marker) == [] and scene.import_drops() == []
        assert wait_no_process(marker) == []
    finally:
        scene.clean(marker)
        assert scene.comfy("untrust", PACK, "--network").returncode == 0
