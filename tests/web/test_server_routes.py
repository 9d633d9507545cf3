"""Every route answers in the shape a ComfyUI client expects, bare and under /api."""

from __future__ import annotations

import httpx
import pytest
from hearth_server import REPO, demo_prompt, queue, slow_prompt, wait_history, wait_running

BOTH = pytest.mark.parametrize("prefix", ["", "/api"])


@BOTH
def test_frontend_boot_routes(client: httpx.Client, prefix: str) -> None:
    assert client.get(f"{prefix}/users").json() == {"storage": "server", "migrated": True}
    assert isinstance(client.get(f"{prefix}/settings").json(), dict)
    assert client.get(f"{prefix}/i18n").status_code in (200, 404)
    assert client.get(f"{prefix}/global_subgraphs").json() == {}
    assert client.get(f"{prefix}/workflow_templates").status_code == 200
    assert client.get(f"{prefix}/userdata", params={"dir": "subgraphs", "recurse": "true"}).json() == []
    assert client.get(f"{prefix}/embeddings").json() == ["style"]
    features = client.get(f"{prefix}/features").json()
    assert features["supports_preview_metadata"] is True and features["max_upload_size"] == 2 * 1024 * 1024
    listing = client.get(f"{prefix}/userdata", params={"dir": "workflows", "recurse": "true", "split": "false",
                                                       "full_info": "true"})
    assert listing.status_code == 200 and isinstance(listing.json(), list)


def test_object_info_has_comfyui_shape(client: httpx.Client) -> None:
    info = client.get("/api/object_info").json()
    save = info["SaveImage"]
    for key in ("input", "input_order", "output", "output_is_list", "output_name", "name", "display_name",
                "description", "python_module", "category", "output_node"):
        assert key in save, key
    assert save["output_node"] is True and "images" in save["input"]["required"]
    assert "HearthTestSlow" in info  # the custom_nodes pack loaded
    one = client.get("/object_info/SaveImage").json()
    assert one == {"SaveImage": save}
    assert client.get("/object_info/NoSuchNode").json() == {}


def test_extensions_list_and_serve_pack_web_folders(client: httpx.Client) -> None:
    urls = client.get("/api/extensions").json()
    assert urls == ["/extensions/hearth_test_pack/hello.js"]
    script = client.get(urls[0])
    assert script.status_code == 200 and "hearth" in script.text
    assert "javascript" in script.headers["content-type"]


def test_models_lists_folders_and_model_files(client: httpx.Client) -> None:
    folders = client.get("/api/models").json()
    assert "checkpoints" in folders and "loras" in folders
    assert client.get("/api/models/checkpoints").json() == ["sd/tiny.safetensors"]
    assert client.get("/api/models/loras").json() == ["extra-style.safetensors"]  # from extra_model_paths.yaml
    assert client.get("/api/models/nonsense").status_code == 404


def test_system_stats(client: httpx.Client) -> None:
    stats = client.get("/system_stats").json()
    system = stats["system"]
    for key in ("os", "ram_total", "ram_free", "comfyui_version", "python_version", "pytorch_version",
                "embedded_python", "argv", "required_frontend_version"):
        assert key in system, key
    assert system["ram_total"] > system["ram_free"] > 0
    device = stats["devices"][0]
    for key in ("name", "type", "index", "vram_total", "vram_free", "torch_vram_total", "torch_vram_free"):
        assert key in device, key


def test_settings_round_trip(client: httpx.Client) -> None:
    assert client.post("/api/settings", json={"Comfy.Theme": "dark", "Comfy.Zoom": 2}).status_code == 200
    assert client.post("/api/settings/Comfy.Zoom", json=3).status_code == 200
    assert client.get("/api/settings/Comfy.Zoom").json() == 3
    settings = client.get("/settings").json()
    assert settings["Comfy.Theme"] == "dark" and settings["Comfy.Zoom"] == 3
    assert client.get("/api/settings/Unset.Key").json() is None
    assert client.post("/api/settings", content=b"{nope").status_code == 400


def test_userdata_save_list_move_delete(client: httpx.Client) -> None:
    body = b'{"nodes": []}'
    saved = client.post("/api/userdata/workflows%2Fmine%2Fa.json", params={"full_info": "true"}, content=body)
    assert saved.status_code == 200
    assert saved.json()["path"] == "workflows/mine/a.json" and saved.json()["size"] == len(body)
    assert client.get("/api/userdata/workflows%2Fmine%2Fa.json").content == body
    conflict = client.post("/api/userdata/workflows%2Fmine%2Fa.json", params={"overwrite": "false"}, content=b"{}")
    assert conflict.status_code == 409
    names = client.get("/api/userdata", params={"dir": "workflows", "recurse": "true"}).json()
    assert "mine/a.json" in names
    split = client.get("/api/userdata", params={"dir": "workflows", "recurse": "true", "split": "true"}).json()
    assert ["mine/a.json", "mine", "a.json"] in split
    moved = client.post("/api/userdata/workflows%2Fmine%2Fa.json/move/workflows%2Fb.json")
    assert moved.status_code == 200 and moved.json() == "workflows/b.json"
    assert client.get("/api/userdata/workflows%2Fmine%2Fa.json").status_code == 404
    assert client.delete("/api/userdata/workflows%2Fb.json").status_code == 204
    assert client.get("/api/userdata/workflows%2Fb.json").status_code == 404


@pytest.mark.parametrize("name", ["..%2F..%2Fhearth.sqlite3", "%2Fetc%2Fpasswd", "workflows%2F..%2F..%2Fx"])
def test_userdata_refuses_paths_outside_the_user_folder(client: httpx.Client, name: str) -> None:
    assert client.get(f"/api/userdata/{name}").status_code == 403
    assert client.post(f"/api/userdata/{name}", content=b"x").status_code == 403
    assert client.get("/api/userdata", params={"dir": "../.."}).status_code == 403


def test_queue_history_and_jobs_shapes(client: httpx.Client) -> None:
    blocker = queue(client, slow_prompt("routes-blocker", seconds=1.0))
    wait_running(client, blocker)
    waiting = queue(client, demo_prompt(), extra_data={"extra_pnginfo": {"workflow": {"id": "wf-1"}}})
    q = client.get("/api/queue").json()
    assert [item[1] for item in q["queue_running"]] == [blocker]
    pending = {item[1]: item for item in q["queue_pending"]}
    number, prompt_id, prompt, extra, outputs = pending[waiting]
    assert prompt_id == waiting and prompt == demo_prompt() and outputs == ["7"]
    assert extra["extra_pnginfo"]["workflow"]["id"] == "wf-1"
    assert client.get("/prompt").json() == {"exec_info": {"queue_remaining": 2}}
    jobs = client.get("/api/jobs", params={"status": "pending,in_progress"}).json()
    assert {j["id"]: j["status"] for j in jobs["jobs"]} == {blocker: "in_progress", waiting: "pending"}
    assert jobs["pagination"] == {"offset": 0, "limit": None, "total": 2, "has_more": False}

    entry = wait_history(client, waiting)
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert [event for event, _ in entry["status"]["messages"]] == [
        "execution_start", "execution_cached", "execution_success"]
    image = entry["outputs"]["7"]["images"][0]
    assert image["subfolder"] == "hearth-demo" and image["type"] == "output"
    assert entry["prompt"][1] == waiting
    job = client.get(f"/api/jobs/{waiting}").json()
    assert job["status"] == "completed" and job["outputs_count"] == 1 and job["workflow_id"] == "wf-1"
    assert job["preview_output"] == {**image, "nodeId": "7", "mediaType": "images"}  # the frontend's schema
    assert job["execution_end_time"] >= job["execution_start_time"]
    page = client.get("/api/jobs", params={"limit": 1, "status": "completed"}).json()
    assert len(page["jobs"]) == 1 and page["pagination"]["has_more"] is (page["pagination"]["total"] > 1)
    assert client.get("/api/jobs/not-a-job").status_code == 404
    assert client.get("/api/jobs", params={"status": "bogus"}).status_code == 400
    newest = client.get("/history", params={"max_items": 1}).json()
    assert list(newest) == [waiting]


def test_queue_delete_clear_and_history_delete(client: httpx.Client) -> None:
    blocker = queue(client, slow_prompt("delete-blocker", seconds=0.6))
    wait_running(client, blocker)
    a = queue(client, slow_prompt("delete-a", seconds=0))
    b = queue(client, slow_prompt("delete-b", seconds=0))
    c = queue(client, slow_prompt("delete-c", seconds=0), front=True)
    assert [item[1] for item in client.get("/queue").json()["queue_pending"]] == [c, a, b]
    assert client.post("/api/queue", json={"delete": [a]}).status_code == 200
    assert [item[1] for item in client.get("/queue").json()["queue_pending"]] == [c, b]
    assert client.post("/api/queue", json={"clear": True}).status_code == 200
    assert client.get("/queue").json()["queue_pending"] == []
    wait_history(client, blocker)
    assert client.post("/api/history", json={"delete": [blocker]}).status_code == 200
    assert client.get(f"/history/{blocker}").json() == {}
    assert client.post("/api/queue", content=b"[1,").status_code == 400


def test_interrupt_stops_the_running_prompt_only(client: httpx.Client) -> None:
    running = queue(client, slow_prompt("interrupt-me", seconds=20, steps=200))
    wait_running(client, running)
    client.post("/api/interrupt", json={"prompt_id": "someone-else"})
    assert any(i[1] == running for i in client.get("/queue").json()["queue_running"])
    assert client.post("/api/interrupt", json={"prompt_id": running}).status_code == 200
    entry = wait_history(client, running, timeout=10)
    assert "execution_interrupted" in [event for event, _ in entry["status"]["messages"]]
    job = client.get(f"/api/jobs/{running}").json()
    assert job["status"] == "cancelled"


def test_free_is_accepted(client: httpx.Client) -> None:
    assert client.post("/api/free", json={"unload_models": True, "free_memory": True}).status_code == 200
    assert client.post("/free", json=[1]).status_code == 400


def test_hearth_ui_api(client: httpx.Client) -> None:
    plugins = client.get("/api/hearth/plugins").json()
    names = {p["name"]: p for p in plugins["plugins"]}
    assert names["hearth_test_pack"]["node_count"] == 3 and names["builtin_nodes"]["tier"] == "default"
    assert plugins["nodes"]["HearthTestSlow"] == "hearth_test_pack"
    ui = (REPO / "examples/workflows/builtin_demo_ui.json").read_text()
    converted = client.post("/api/hearth/workflow", content=ui).json()
    assert converted["workflow"]["nodes"] and all("class_type" in n for n in converted["prompt"].values())
    memory = client.get("/api/hearth/memory").json()
    assert memory["devices"] and "models" in memory


def test_ui_served_at_hearth_and_root(client: httpx.Client) -> None:
    page = client.get("/hearth/")
    assert page.status_code == 200 and "<title>Hearth</title>" in page.text
    assert client.get("/hearth/app.js").status_code == 200
    assert client.get("/hearth", follow_redirects=True).status_code == 200
    root = client.get("/")
    assert root.status_code == 200 and "<html" in root.text.lower()


def test_workflow_templates_of_packs(client: httpx.Client) -> None:
    assert client.get("/api/workflow_templates").json() == {"hearth_test_pack": ["demo"]}
    template = client.get("/api/workflow_templates/hearth_test_pack/demo.json")
    assert template.status_code == 200 and template.json()["nodes"]
    assert client.get("/api/workflow_templates/hearth_test_pack/..%2F__init__.py").status_code in (403, 404)
    assert client.get("/api/workflow_templates/nope/demo.json").status_code == 404


def test_experiment_models(client: httpx.Client) -> None:
    folders = {f["name"]: f["folders"] for f in client.get("/api/experiment/models").json()}
    assert "checkpoints" in folders
    assert folders["loras"][-1].endswith("shared/my-loras")
    assert [(f["name"], f["pathIndex"]) for f in client.get("/api/experiment/models/loras").json()] == [
        ("extra-style.safetensors", len(folders["loras"]) - 1)]
    files = client.get("/api/experiment/models/checkpoints").json()
    assert [(f["name"], f["pathIndex"]) for f in files] == [("sd/tiny.safetensors", 0)]
