"""The issue's attacks through ``comfy serve``: one real server (HEARTH_ISOLATION=untrusted, no flag) with the
hostile pack in its custom_nodes folder; the prompts go in over HTTP and the tests read what each node achieved from
/history. The memory bomb fails its prompt with one line naming the pack and the next prompt runs; when the server
stops, nothing the pack started is left on the machine.

The tests run in file order: the last one stops the server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.isolation.scene import (
    ALLOWED_ENV,
    HONEST_VALUE,
    LAUNCH,
    PACK,
    Scene,
    isolation_missing,
    keyrings_work,
    leaked,
    new_marker,
    processes_with,
    wait_no_process,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from hearth_server import free_port, queue, wait_history, wait_running  # noqa: E402 - the server tests' helpers


class Server:
    """``comfy serve`` in the scene, on a free loopback port, its output in ``log``."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.port = free_port()
        self.output = scene.root / "server-output"
        self.log = scene.root / "server.log"
        cmd = [sys.executable, "-c", LAUNCH, "serve", "--port", str(self.port), "--data", str(scene.root / "data"),
               "--out", str(self.output), "--log-level", "warning", *scene.folder_args()]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=scene.root, env=scene.env("untrusted"), stdout=log,
                                         stderr=subprocess.STDOUT, preexec_fn=scene.keyring())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"comfy serve exited with {self.proc.returncode}:\n{self.text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/api/features", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"comfy serve did not answer within 120 s:\n{self.text()}")

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


pytestmark = pytest.mark.skipif(bool(isolation_missing()), reason=f"no pack hosts here: {isolation_missing()}")


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    stage = Scene(tmp_path_factory.mktemp("attacks-server"))
    yield stage
    stage.close()


@pytest.fixture(scope="module")
def server(scene: Scene) -> Iterator[Server]:
    instance = Server(scene)
    yield instance
    instance.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.http() as http:
        yield http


def wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (alive := [pid for pid in pids if Path(f"/proc/{pid}").exists()]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def run_prompt(client: httpx.Client, prompt: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    return wait_history(client, queue(client, prompt), timeout=timeout)


def text_output(entry: dict[str, Any], node: str) -> dict[str, Any]:
    assert entry["status"]["status_str"] == "success", entry["status"]
    return json.loads(entry["outputs"][node]["text"][0])


@pytest.fixture(scope="module")
def attacked(scene: Scene, server: Server) -> Iterator[dict[str, Any]]:
    tag, marker = "server", new_marker()
    scene.user_types()
    with server.http() as http:
        entry = run_prompt(http, scene.attack_prompt(tag, marker))
    yield {"tag": tag, "marker": marker, "entry": entry}
    server.stop()
    scene.clean(marker)


def test_the_hostile_nodes_are_served_like_any_other(client: httpx.Client) -> None:
    info = client.get("/object_info/HostileNetwork").json()["HostileNetwork"]
    assert info["input"]["required"]["port"][0] == "INT"
    assert info["output"] == ["STRING"] and info["output_node"] is True


def test_home_files_cannot_be_read(scene: Scene, attacked: dict[str, Any]) -> None:
    report = text_output(attacked["entry"], "1")
    assert leaked(report, scene.secrets) == [], report
    assert not any(path.startswith(str(scene.home)) for path in report["read"]), report["read"]


def test_environment_secrets_are_not_there(scene: Scene, attacked: dict[str, Any]) -> None:
    report = text_output(attacked["entry"], "2")
    assert leaked(report, scene.secrets) == [], report
    assert set(report["environ"]) <= ALLOWED_ENV, sorted(set(report["environ"]) - ALLOWED_ENV)


def test_loopback_listener_sees_no_connection(scene: Scene, attacked: dict[str, Any]) -> None:
    report = text_output(attacked["entry"], "3")
    assert report["connected"] is False, report
    assert not scene.listener.saw(f"stolen-{attacked['tag']}"), scene.listener.received


def test_unix_sockets_of_the_machine_cannot_be_reached(scene: Scene, attacked: dict[str, Any]) -> None:
    report = text_output(attacked["entry"], "7")
    assert not scene.listener.saw(f"unix-{attacked['tag']}"), report
    assert report["connected"] is False, report


def test_the_session_keyring_cannot_be_read(scene: Scene, attacked: dict[str, Any]) -> None:
    if not keyrings_work():
        pytest.skip("this kernel or container refuses session keyrings: nothing to steal")
    report = text_output(attacked["entry"], "8")
    assert leaked(report, scene.secrets) == [], report


def test_the_users_terminal_cannot_be_read_or_written(scene: Scene, attacked: dict[str, Any]) -> None:
    if not scene.terminal_path:
        pytest.skip("no pseudo-terminal here")
    report = text_output(attacked["entry"], "9")
    assert leaked(report, scene.secrets) == [], report
    assert f"injected-by-{attacked['tag']}" not in scene.terminal_shows(), report


def test_writes_land_only_in_the_output_folder(scene: Scene, server: Server, attacked: dict[str, Any]) -> None:
    report = text_output(attacked["entry"], "4")
    assert scene.dropped_files(attacked["marker"]) == [], report
    assert (server.output / f"allowed-{attacked['marker']}.txt").read_text() == "written by hostile-pack"
    assert scene.report("write", attacked["tag"], server.output) == report


def test_the_packs_import_and_prestartup_script_run_in_the_host(scene: Scene, attacked: dict[str, Any]) -> None:
    assert scene.import_drops() == []


def test_the_honest_node_works(attacked: dict[str, Any]) -> None:
    assert text_output(attacked["entry"], "6")["value"] == HONEST_VALUE


def test_no_secret_reached_the_history_or_the_output_folder(scene: Scene, server: Server,
                                                           attacked: dict[str, Any]) -> None:
    assert leaked(json.dumps(attacked["entry"]), scene.secrets) == []
    for path in server.output.rglob("*"):
        if path.is_file() and not path.is_symlink():  # links are the next test's: the pack cannot follow them
            assert leaked(path.read_text(errors="replace"), scene.secrets) == [], path


def test_links_the_pack_plants_in_the_output_folder_do_not_lead_hearth_outside(scene: Scene, client: httpx.Client,
                                                                              server: Server) -> None:
    """The pack cannot reach the home folder, but Hearth can: a link in the output folder must not make the
    server serve a file from there, nor SaveImage (in-process) write into it; a named pipe must not hang /view."""
    links = {"leak.txt": str(scene.home / ".ssh" / "id_test"), "escape": str(scene.home)}
    planted = text_output(run_prompt(client, {"1": {"class_type": "HostileSymlinks", "inputs": {
        "links": json.dumps(links), "tag": "links"}}}), "1")
    assert planted["made"] == {"leak.txt": "linked", "escape": "linked", "trap-links.png": "fifo"}, planted
    view = client.get("/view", params={"filename": "leak.txt", "type": "output"})
    assert view.status_code != 200 and leaked(view.text, scene.secrets) == [], view.text
    trap = client.get("/view", params={"filename": "trap-links.png", "type": "output"}, timeout=10)
    assert trap.status_code != 200, trap.text  # answered at once, not stuck reading a pipe
    entry = run_prompt(client, {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 2, "height": 2, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "escape/stolen"}}})
    assert entry["status"]["status_str"] == "error", entry["status"]
    assert not list(scene.home.glob("stolen*")), sorted(p.name for p in scene.home.iterdir())


def test_a_host_cannot_change_an_image_after_its_node_returned(server: Server, client: httpx.Client) -> None:
    """HostileLater returns the image it was given and overwrites it 0.3 s later. The same prompt again takes
    that node's output from the cache: the second SaveImage must save what the first one saved."""
    def prompt(prefix: str) -> dict[str, Any]:
        return {"1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 0}},
                "2": {"class_type": "HostileLater", "inputs": {"image": ["1", 0], "delay": 0.3, "value": 1.0}},
                "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}}}

    first = run_prompt(client, prompt("later-first"))
    assert first["status"]["status_str"] == "success", first["status"]
    time.sleep(1.0)
    second = run_prompt(client, prompt("later-second"))
    assert second["status"]["status_str"] == "success", second["status"]
    pixels = []
    for entry in (first, second):
        saved = entry["outputs"]["3"]["images"][0]
        with Image.open(server.output / saved["subfolder"] / saved["filename"]) as png:
            pixels.append(png.convert("RGB").getpixel((0, 0)))
    assert pixels[0] == (0, 0, 0), pixels  # saved by Hearth's SaveImage: the pack's claim on the name was refused
    assert pixels[1] == pixels[0], f"the cached image changed after its node returned: {pixels}"


def test_a_crashing_host_fails_its_prompt_in_one_line_and_takes_its_processes_along(
        scene: Scene, client: httpx.Client, server: Server, attacked: dict[str, Any]) -> None:
    """The host dies (SIGKILL, as a native crash): the prompt fails naming the pack, the sleep the spawn node left
    running dies with the host while the server lives on, and the next prompt starts a fresh host."""
    assert text_output(attacked["entry"], "5")["pid"] > 0
    entry = run_prompt(client, {"1": {"class_type": "HostileCrash", "inputs": {"tag": "crash"}}})
    assert entry["status"]["status_str"] == "error", entry["status"]
    message = str(dict(entry["status"]["messages"])["execution_error"]["exception_message"])
    assert PACK in message and "\n" not in message.strip(), message
    assert wait_no_process(attacked["marker"]) == []
    after = run_prompt(client, scene.honest_prompt("after-crash"))
    assert text_output(after, "1")["value"] == HONEST_VALUE
    assert server.proc.poll() is None


def test_a_host_that_ignores_the_interrupt_is_killed_and_the_next_prompt_runs(scene: Scene, client: httpx.Client,
                                                                              server: Server) -> None:
    """Cancel reaches a node that never checks for it: past the grace time (5 s) its host is killed, the prompt ends,
    and the next prompt starts a fresh host."""
    prompt_id = queue(client, {"1": {"class_type": "HostileHang", "inputs": {"tag": "hang"}}})
    wait_running(client, prompt_id)
    time.sleep(0.5)  # inside the node, not before it
    started = time.monotonic()
    assert client.post("/interrupt", json={"prompt_id": prompt_id}).status_code == 200
    entry = wait_history(client, prompt_id, timeout=60)
    assert time.monotonic() - started < 30, "the hung host was not killed after the grace time"
    assert entry["status"]["status_str"] != "success", entry["status"]
    events = dict(entry["status"]["messages"])
    assert "execution_interrupted" in events or PACK in str(events.get("execution_error")), events
    after = run_prompt(client, scene.honest_prompt("after-hang"))
    assert text_output(after, "1")["value"] == HONEST_VALUE


def test_exhausting_memory_fails_that_prompt_in_one_line_and_the_next_prompt_works(
        scene: Scene, client: httpx.Client, server: Server, attacked: dict[str, Any]) -> None:
    entry = run_prompt(client, scene.memory_prompt("memory"))
    assert entry["status"]["status_str"] == "error", entry["status"]
    error = dict(entry["status"]["messages"])["execution_error"]
    message = str(error["exception_message"])
    assert PACK in message and "\n" not in message.strip(), error
    assert not (server.output / "attack-memory-memory.json").exists()

    after = run_prompt(client, scene.honest_prompt("after-memory"))
    assert text_output(after, "1")["value"] == HONEST_VALUE
    assert server.proc.poll() is None


def test_stopping_the_server_leaves_no_process_the_pack_started(scene: Scene, server: Server,
                                                                attacked: dict[str, Any]) -> None:
    assert text_output(attacked["entry"], "5")["pid"] > 0  # the spawn node did start its sleep, in the host
    # After a crash, a kill past the interrupt and a memory bomb: one pack, so one host and its warden at most.
    hosts = processes_with("host_worker.py", under=server.proc.pid)
    assert 1 <= len(hosts) <= 2, [Path(f"/proc/{pid}/cmdline").read_bytes()[:300] for pid in hosts]
    server.stop()
    assert wait_gone(hosts) == [], "a warden or host outlived comfy serve"
    assert server.proc.returncode is not None
    assert wait_no_process(attacked["marker"]) == [], server.text()[-4000:]
