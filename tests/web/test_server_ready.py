"""``comfy serve`` ready at once (issue 22 item 3), on a real server: with a fresh node catalogue it answers
/object_info and the frontend's boot routes while its plugins still load; a prompt sent meanwhile waits and then
runs; a pack that fails to load gives the error it gives today; a stale catalogue is never served.

The load is held deterministically: a custom-node pack waits at import for a file the test creates.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hearth_server import HearthServer, slow_prompt, wait_history

SLOW_PACK = '''"""Holds the server's plugin load until the file named by $SLOW_PACK_GATE exists (a minute at most)."""
import os
import time

_gate = os.environ.get("SLOW_PACK_GATE", "")
_deadline = time.monotonic() + 60
while _gate and not os.path.exists(_gate) and time.monotonic() < _deadline:
    time.sleep(0.05)


class SlowPackEcho:
    CATEGORY = "testing"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "ready"})}}

    def run(self, text):
        return {"ui": {"text": [text]}, "result": (text,)}


NODE_CLASS_MAPPINGS = {"SlowPackEcho": SlowPackEcho}
'''
BROKEN_PACK = 'raise ImportError("broken_pack needs a module this machine lacks")\n'
BROKEN_PROMPT = {"1": {"class_type": "BrokenPackNode", "inputs": {}}}
# What the official frontend reads while it boots (besides /object_info), each answered without the plugins.
BOOT_ROUTES = ("/api/system_stats", "/api/features", "/api/settings", "/api/users", "/api/embeddings",
               "/api/experiment/models", "/api/userdata?dir=workflows&recurse=true&split=false&full_info=true",
               "/api/v2/userdata", "/api/i18n", "/api/internal/folder_paths", "/api/internal/logs/raw",
               "/api/queue", "/api/history?max_items=64", "/api/prompt", "/api/global_subgraphs", "/api/models")


@dataclass
class Site:
    root: Path
    server: HearthServer
    gate: Path
    reference: dict[str, Any] = field(default_factory=dict)

    @property
    def pack(self) -> Path:
        return self.root / "packs" / "slow_pack" / "__init__.py"

    def catalogues(self) -> list[Path]:
        return sorted((self.root / "xdg" / "hearth" / "cache" / "catalogue").glob("*.json"))


def backdate(folder: Path) -> None:
    """Files older than the catalogue's two-second "racy" window, as packs installed a while ago are."""
    past = time.time() - 600
    for path in folder.rglob("*"):
        os.utime(path, (past, past))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server whose first start (the plugins loaded, no catalogue yet) gave the reference answers and cached the
    catalogue the later starts read."""
    root = tmp_path_factory.mktemp("ready")
    for name, code in (("slow_pack", SLOW_PACK), ("broken_pack", BROKEN_PACK)):
        (root / "packs" / name).mkdir(parents=True)
        (root / "packs" / name / "__init__.py").write_text(code)
    backdate(root / "packs")
    gate = root / "gate"
    gate.touch()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("XDG_DATA_HOME", str(root / "xdg"))  # the catalogue's cache folder, this test's own
        env.setenv("SLOW_PACK_GATE", str(gate))
        server = HearthServer(root / "data", "--models-dir", str(root / "models"), "--custom-nodes",
                              str(root / "packs"))
        site = Site(root, server, gate)
        assert not site.catalogues()
        server.start()
        try:
            with server.http() as http:
                site.reference = {"all": http.get("/object_info").json(),
                                  "one": http.get("/api/object_info/SlowPackEcho").json(),
                                  "broken": http.post("/prompt", json={"prompt": BROKEN_PROMPT}).json()}
                deadline = time.monotonic() + 60
                while not site.catalogues():  # written once the plugins are in, for the next start
                    assert time.monotonic() < deadline, server.output()
                    time.sleep(0.1)
        finally:
            server.stop()
        yield site
        server.stop()


def post_in_background(server: HearthServer, body: dict[str, Any]) -> tuple[threading.Thread, list[httpx.Response]]:
    answers: list[httpx.Response] = []

    def post() -> None:
        with server.http() as http:
            answers.append(http.post("/prompt", json=body))

    thread = threading.Thread(target=post)
    thread.start()
    return thread, answers


def test_a_fresh_catalogue_answers_while_the_plugins_load_and_a_prompt_waits_for_them(site: Site) -> None:
    assert "SlowPackEcho" in site.reference["all"] and "HearthTestSlow" in site.reference["all"]
    site.gate.unlink()  # the slow pack now holds the plugin load until the gate is back
    site.server.start()
    with site.server.http() as http:
        assert http.get("/api/object_info").json() == site.reference["all"]
        assert http.get("/object_info/SlowPackEcho").json() == site.reference["one"]
        assert http.get("/object_info/NoSuchNode").json() == {}
        for route in BOOT_ROUTES:
            assert http.get(route).status_code == 200, route
        with pytest.raises(httpx.ReadTimeout):  # a pack's web folder needs the pack: it waits
            http.get("/api/extensions", timeout=0.5)
        slow, slow_answer = post_in_background(site.server, {"prompt": slow_prompt("waited", 0.1, 1)})
        broken, broken_answer = post_in_background(site.server, {"prompt": BROKEN_PROMPT})
        slow.join(1.0)
        assert slow.is_alive() and broken.is_alive()  # neither is answered (nor refused) while the plugins load
        assert http.get("/api/queue").json() == {"queue_running": [], "queue_pending": []}

        site.gate.touch()
        slow.join(60)
        broken.join(60)
        assert slow_answer[0].status_code == 200, slow_answer[0].text
        entry = wait_history(http, slow_answer[0].json()["prompt_id"])
        assert entry["status"]["status_str"] == "success" and entry["outputs"]["1"]["text"] == ["waited"]
        # The broken pack's node is unknown, exactly as when the plugins had loaded before the prompt came.
        assert broken_answer[0].status_code == 400 and broken_answer[0].json() == site.reference["broken"]
        assert "Cannot execute because node BrokenPackNode does not exist." in broken_answer[0].text
        assert "/extensions/hearth_test_pack/hello.js" in http.get("/api/extensions").json()
        assert http.get("/api/object_info").json() == site.reference["all"]  # now from the loaded plugins
    site.server.stop()
    assert "broken_pack" in site.server.output() and "plugins loaded in" in site.server.output()


def test_a_stale_catalogue_is_not_served(site: Site) -> None:
    # The pack gains a node: its file changes, so the catalogue's key does.
    site.pack.write_text(SLOW_PACK.replace('NODE_CLASS_MAPPINGS = {"SlowPackEcho": SlowPackEcho}',
                                           'NODE_CLASS_MAPPINGS = {"SlowPackEcho": SlowPackEcho, '
                                           '"SlowPackEcho2": SlowPackEcho}'))
    backdate(site.root / "packs")
    site.gate.unlink(missing_ok=True)
    site.server.start()
    with site.server.http() as http:
        with pytest.raises(httpx.ReadTimeout):  # no definitions until the plugins give today's
            http.get("/api/object_info", timeout=1.0)
        assert http.get("/api/system_stats").status_code == 200
        site.gate.touch()
        info = http.get("/api/object_info").json()
        assert "SlowPackEcho2" in info and info["SlowPackEcho"] == site.reference["all"]["SlowPackEcho"]
    site.server.stop()
